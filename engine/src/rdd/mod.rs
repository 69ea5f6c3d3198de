//! Resilient distributed datasets: lazy, partitioned collections that know their lineage.
//!
//! An [`Rdd`] is a handle to a node of the lineage graph. Each node knows its dependencies on its
//! parents (one-to-one, a range of a union, groups of a coalesce, or a shuffle), how many
//! partitions it has, which worker should compute each one, and how to compute one partition as
//! an iterator. Transformations only build nodes; actions hand the graph to the scheduler.

pub(crate) mod actions;
pub mod barrier;
pub(crate) mod deep;
pub mod formats;
pub(crate) mod narrow;
pub(crate) mod pair;
pub(crate) mod sample;
pub(crate) mod source;
pub(crate) mod text;
pub(crate) mod union;

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;

use crate::blocks::{SizeOf, Sizer, StorageLevel};
use crate::checkpoint::{CheckpointCell, CheckpointState};
use crate::context::Context;
use crate::data::Data;
use crate::shuffle::{PartitionerDesc, ShuffleDepBase};
use crate::task::TaskContext;

/// The iterator a partition is computed as.
pub type BoxIter<T> = Box<dyn Iterator<Item = T>>;

/// How a child partition depends on its parents' partitions.
#[derive(Clone)]
pub(crate) enum Dependency {
    /// Child partition `i` reads parent partition `i`.
    OneToOne(Rc<dyn RddBase>),
    /// Child partitions `out_start..out_start + len` read parent partitions from `in_start` on.
    Range {
        parent: Rc<dyn RddBase>,
        in_start: usize,
        out_start: usize,
        len: usize,
    },
    /// Child partition `i` reads the parent partitions in `groups[i]`.
    Groups {
        parent: Rc<dyn RddBase>,
        groups: Rc<Vec<Vec<usize>>>,
    },
    /// Child partitions read the output of a shuffle of the parent.
    Shuffle(Rc<dyn ShuffleDepBase>),
}

/// What a partition is computed from, by its first dependency that covers it.
pub(crate) enum Parent {
    /// Partition `.1` of a narrow parent.
    Narrow(Rc<dyn RddBase>, usize),
    /// A shuffle output (of the same partition number).
    Shuffle,
}

/// The parent partition `split` reads, following the first dependency that covers it; `None`
/// for sources and cut lineages.
pub(crate) fn first_parent(deps: &[Dependency], split: usize) -> Option<Parent> {
    for dep in deps {
        match dep {
            Dependency::OneToOne(parent) => return Some(Parent::Narrow(Rc::clone(parent), split)),
            Dependency::Range {
                parent,
                in_start,
                out_start,
                len,
            } => {
                if (*out_start..out_start + len).contains(&split) {
                    let p = split - out_start + in_start;
                    return Some(Parent::Narrow(Rc::clone(parent), p));
                }
            }
            Dependency::Groups { parent, groups } => {
                if let Some(&first) = groups[split].first() {
                    return Some(Parent::Narrow(Rc::clone(parent), first));
                }
            }
            Dependency::Shuffle(_) => return Some(Parent::Shuffle),
        }
    }
    None
}

/// The untyped view of a lineage node, for the scheduler and `lineage()`.
pub(crate) trait RddBase {
    fn id(&self) -> usize;
    fn op(&self) -> &str;
    fn call_site(&self) -> &'static Location<'static>;
    fn num_partitions(&self) -> usize;
    fn dependencies(&self) -> Vec<Dependency>;
    fn storage_level(&self) -> Option<StorageLevel>;
    fn partitioner(&self) -> Option<PartitionerDesc>;
    /// The worker that computes partition `split`: where its input lives.
    fn task_worker(&self, split: usize) -> usize;
    /// Whether `checkpoint()` was called and the checkpoint is not written yet.
    fn checkpoint_requested(&self) -> bool;
    /// Writes a requested checkpoint (a job) and cuts the lineage.
    fn write_checkpoint(&self) -> crate::error::Result<()>;
    /// Once checkpointed: whether the checkpoint is on a local path, and the worker that wrote
    /// each partition (empty when it was written by an earlier run).
    fn checkpoint_location(&self) -> Option<(bool, Vec<usize>)>;
    /// A source partition's preferred workers and hosts.
    fn source_preferences(&self, split: usize) -> (Vec<usize>, Vec<String>);
    /// Whether this node runs in a barrier stage (`rdd.barrier().map_partitions(..)`).
    fn is_barrier(&self) -> bool;
    /// Steps of narrow chain (`map`, `filter`...) from the nearest node that is not one.
    fn chain_depth(&self) -> usize;
    /// The parent, when this node is a plain step of a chain: computed from its one parent by
    /// [`RddBase::apply_any`], and neither cached nor read from a written checkpoint.
    fn chain_link(&self) -> Option<Rc<dyn RddBase>>;
    /// What a source's output depends on besides its lineage (its input files' sizes and
    /// versions, its in-memory data, its parameters), part of the checkpoint fingerprint; `None`
    /// for nodes that compute from their dependencies only.
    fn source_version(&self) -> crate::error::Result<Option<String>>;
    /// [`RddNode::iterator`], type-erased (see [`deep`]).
    fn iterator_any(&self, split: usize, tc: &Rc<TaskContext>) -> deep::AnyIter;
    /// This node's step applied to its parent's erased iterator.
    fn apply_any(&self, split: usize, parent: deep::AnyIter, tc: &Rc<TaskContext>)
        -> deep::AnyIter;
    /// An erased iterator of this node's elements, collected into memory.
    fn materialize_any(&self, it: deep::AnyIter) -> deep::AnyIter;
}

/// How a node computes its partitions; one implementation per kind of node.
pub(crate) trait Compute<T> {
    fn num_partitions(&self) -> usize;
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<T>;
    fn partitioner(&self) -> Option<PartitionerDesc> {
        None
    }
    /// Workers a source partition should run on (its data lives there).
    fn preferred_workers(&self, _split: usize) -> Vec<usize> {
        Vec::new()
    }
    /// Hosts a source partition's input is local to (input splits whose store knows them).
    fn preferred_hosts(&self, _split: usize) -> Vec<String> {
        Vec::new()
    }
    /// Whether the node's tasks must run together as a barrier stage.
    fn is_barrier(&self) -> bool {
        false
    }
    /// See [`RddBase::source_version`]. Every source implements it: a checkpoint whose
    /// fingerprint ignored a source's data would be reused over different data.
    fn source_version(&self) -> crate::error::Result<Option<String>> {
        Ok(None)
    }
    /// The one parent of a chain step, whose partition `split` this node computes partition
    /// `split` from with [`Compute::compute_from`].
    fn chain_parent(&self) -> Option<Rc<dyn RddBase>> {
        None
    }
    /// A chain step applied to the parent's partition (a `Box<BoxIter<P>>`); `None` when this
    /// is not a chain step or the parent's type does not match.
    fn compute_from(
        &self,
        _split: usize,
        _parent: deep::AnyIter,
        _tc: &Rc<TaskContext>,
    ) -> Option<BoxIter<T>> {
        None
    }
}

/// What a dropped node's compute is replaced by (its own is dropped by [`deep::drop_later`]).
struct Dropped;

impl<T: 'static> Compute<T> for Dropped {
    fn num_partitions(&self) -> usize {
        0
    }
    fn compute(&self, _split: usize, _tc: &Rc<TaskContext>) -> BoxIter<T> {
        Box::new(std::iter::empty())
    }
}

/// A node of the lineage graph holding elements of type `T`.
pub(crate) struct RddNode<T: 'static> {
    id: usize,
    pub(crate) ctx: Context,
    op: String,
    site: &'static Location<'static>,
    storage: Cell<Option<StorageLevel>>,
    /// Element sizes for the block manager, captured by `persist` (where `T: SizeOf`).
    sizer: Cell<Option<Sizer<T>>>,
    pub(crate) checkpoint: CheckpointCell<T>,
    compute: Box<dyn Compute<T>>,
    /// `compute.num_partitions()`, `compute.partitioner()` and the chain depth, fixed when the
    /// node is made (asking the parent each time recursed along the whole chain).
    partitions: usize,
    partitioner: Option<PartitionerDesc>,
    depth: usize,
}

impl<T: Data> RddNode<T> {
    /// The partition's elements: from the cache when persisted and present, else computed (and
    /// cached when persisted).
    pub(crate) fn iterator(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<T> {
        match (self.storage.get(), self.sizer.get()) {
            (Some(level), Some(sizer)) => crate::blocks::read_or_compute(
                &self.ctx.shared().blocks,
                (self.id, split),
                self.ctx.worker_index(),
                level,
                sizer,
                tc,
                || self.compute_or_read_checkpoint(split, tc),
            ),
            _ => self.compute_or_read_checkpoint(split, tc),
        }
    }

    /// The partition computed from lineage, or read from the checkpoint once written.
    fn compute_or_read_checkpoint(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<T> {
        if let CheckpointState::Done { dir, .. } = &*self.checkpoint.borrow() {
            let config = self.ctx.conf().storage_config();
            return crate::checkpoint::read_partition(dir, split, tc, &config);
        }
        if self.depth >= deep::SEGMENT {
            if let Some(parent) = self.compute.chain_parent() {
                let it = deep::parent_iterator(parent, split, tc);
                if let Some(it) = self.compute.compute_from(split, it, tc) {
                    return it;
                }
            }
        }
        self.compute.compute(split, tc)
    }

    /// Whether this node is neither cached nor read from a written checkpoint.
    fn plain(&self) -> bool {
        self.storage.get().is_none()
            && !matches!(*self.checkpoint.borrow(), CheckpointState::Done { .. })
    }
}

impl<T: Data> RddBase for RddNode<T> {
    fn id(&self) -> usize {
        self.id
    }
    fn op(&self) -> &str {
        &self.op
    }
    fn call_site(&self) -> &'static Location<'static> {
        self.site
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.deps()
    }
    fn storage_level(&self) -> Option<StorageLevel> {
        self.storage.get()
    }
    fn partitioner(&self) -> Option<PartitionerDesc> {
        self.partitioner.clone()
    }
    fn task_worker(&self, split: usize) -> usize {
        self.owner(split)
    }
    fn checkpoint_requested(&self) -> bool {
        matches!(*self.checkpoint.borrow(), CheckpointState::Requested { .. })
    }
    fn source_preferences(&self, split: usize) -> (Vec<usize>, Vec<String>) {
        (
            self.compute.preferred_workers(split),
            self.compute.preferred_hosts(split),
        )
    }
    fn is_barrier(&self) -> bool {
        self.compute.is_barrier()
    }
    fn chain_depth(&self) -> usize {
        self.depth
    }
    fn chain_link(&self) -> Option<Rc<dyn RddBase>> {
        self.compute.chain_parent().filter(|_| self.plain())
    }
    fn source_version(&self) -> crate::error::Result<Option<String>> {
        // A written checkpoint stands for the lineage it cut, which its directory names.
        if let CheckpointState::Done { dir, .. } = &*self.checkpoint.borrow() {
            return Ok(Some(format!("checkpoint {}", dir.display())));
        }
        self.compute.source_version()
    }
    fn iterator_any(&self, split: usize, tc: &Rc<TaskContext>) -> deep::AnyIter {
        Box::new(self.iterator(split, tc))
    }
    fn apply_any(
        &self,
        split: usize,
        parent: deep::AnyIter,
        tc: &Rc<TaskContext>,
    ) -> deep::AnyIter {
        match self.compute.compute_from(split, parent, tc) {
            Some(it) => Box::new(it),
            // Not reached: only chain steps are applied, to their parent's iterator.
            None => Box::new(self.compute.compute(split, tc)),
        }
    }
    fn materialize_any(&self, it: deep::AnyIter) -> deep::AnyIter {
        deep::materialize::<T>(it)
    }
    fn checkpoint_location(&self) -> Option<(bool, Vec<usize>)> {
        match &*self.checkpoint.borrow() {
            CheckpointState::Done { dir, writers } => {
                Some((crate::checkpoint::is_local(dir), writers.clone()))
            }
            _ => None,
        }
    }
    fn write_checkpoint(&self) -> crate::error::Result<()> {
        let node = match &*self.checkpoint.borrow() {
            CheckpointState::Requested { node, .. } => node.upgrade(),
            _ => None,
        };
        match node {
            Some(node) => Rdd { node }.write_checkpoint(),
            None => Ok(()),
        }
    }
}

impl<T: 'static> RddNode<T> {
    /// The dependencies: none once the checkpoint is written (the lineage is cut).
    fn deps(&self) -> Vec<Dependency> {
        if matches!(*self.checkpoint.borrow(), CheckpointState::Done { .. }) {
            Vec::new()
        } else {
            self.compute.dependencies()
        }
    }

    /// The home worker of `split`: the owner of its first narrow ancestor's partition, or of
    /// the shuffle output it reads, or `split % peers` for sources (a loop down the lineage).
    fn owner(&self, split: usize) -> usize {
        let (mut deps, mut split) = (self.deps(), split);
        while let Some(Parent::Narrow(parent, p)) = first_parent(&deps, split) {
            (deps, split) = (parent.dependencies(), p);
        }
        split % self.ctx.num_workers()
    }
}

impl<T: 'static> Drop for RddNode<T> {
    fn drop(&mut self) {
        // The compute holds the parent: dropped in a loop, not one nested drop per node.
        let compute = std::mem::replace(&mut self.compute, Box::new(Dropped));
        deep::drop_later(Box::new(compute));
        // Each worker drops the blocks it stored; peers drop theirs with their own handles.
        if self.storage.get().is_some() {
            self.ctx.inner.registry.borrow_mut().remove_rdd(self.id);
            self.ctx
                .shared()
                .blocks
                .remove_rdd(self.id, self.ctx.worker_index());
        }
    }
}

/// Iterates a shared block, cloning each element out.
pub(crate) struct SharedVecIter<T> {
    data: Arc<Vec<T>>,
    pos: usize,
}

impl<T> SharedVecIter<T> {
    pub(crate) fn new(data: Arc<Vec<T>>) -> Self {
        SharedVecIter { data, pos: 0 }
    }
}

impl<T: Clone> Iterator for SharedVecIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        let v = self.data.get(self.pos)?.clone();
        self.pos += 1;
        Some(v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.data.len() - self.pos;
        (n, Some(n))
    }
}

/// A resilient distributed dataset of `T`: lazy, partitioned, and rebuilt from its lineage.
///
/// Cloning an `Rdd` clones the handle, not the data.
pub struct Rdd<T: Data> {
    pub(crate) node: Rc<RddNode<T>>,
}

impl<T: Data> Clone for Rdd<T> {
    fn clone(&self) -> Self {
        Rdd {
            node: Rc::clone(&self.node),
        }
    }
}

impl<T: Data> Rdd<T> {
    #[track_caller]
    pub(crate) fn from_source(
        ctx: &Context,
        op: &str,
        compute: impl Compute<T> + 'static,
    ) -> Rdd<T> {
        Rdd::with_site(ctx, op, Location::caller(), Box::new(compute))
    }

    pub(crate) fn with_site(
        ctx: &Context,
        op: &str,
        site: &'static Location<'static>,
        compute: Box<dyn Compute<T>>,
    ) -> Rdd<T> {
        let partitions = compute.num_partitions();
        let partitioner = compute.partitioner();
        let depth = compute.chain_parent().map_or(0, |p| p.chain_depth() + 1);
        Rdd {
            node: Rc::new(RddNode {
                partitions,
                partitioner,
                depth,
                id: ctx.new_rdd_id(),
                ctx: ctx.clone(),
                op: op.to_string(),
                site,
                storage: Cell::new(None),
                sizer: Cell::new(None),
                checkpoint: RefCell::new(CheckpointState::None),
                compute,
            }),
        }
    }

    pub(crate) fn base(&self) -> Rc<dyn RddBase> {
        Rc::clone(&self.node) as Rc<dyn RddBase>
    }

    /// This RDD's id, unique within the application and the same on every worker.
    pub fn id(&self) -> usize {
        self.node.id
    }

    /// The number of partitions.
    pub fn num_partitions(&self) -> usize {
        self.node.num_partitions()
    }

    /// The context this RDD belongs to.
    pub fn context(&self) -> &Context {
        &self.node.ctx
    }

    /// The persistence level, if persisted.
    pub fn storage_level(&self) -> Option<StorageLevel> {
        self.node.storage.get()
    }

    /// Keeps computed partitions for reuse by later actions, at the given level, within the
    /// block manager's budgets (see [`crate::blocks`]). Elements are sized with [`SizeOf`].
    /// Changing the level of an RDD drops the blocks stored at the old one.
    pub fn persist(&self, level: StorageLevel) -> Rdd<T>
    where
        T: SizeOf,
    {
        if self.node.storage.get().is_some_and(|old| old != level) {
            self.drop_blocks();
        }
        let blocks = &self.node.ctx.shared().blocks;
        self.node.storage.set(Some(level));
        self.node.sizer.set(Some(crate::blocks::size_pair::<T>));
        let site = self.node.site;
        blocks.register_rdd(
            self.id(),
            format!("{} at {}:{}", self.node.op, site.file(), site.line()),
            self.num_partitions(),
            level,
        );
        self.clone()
    }

    /// Drops this process's cached partitions and what the scheduler knows of their holders.
    fn drop_blocks(&self) {
        let ctx = &self.node.ctx;
        ctx.shared()
            .blocks
            .remove_rdd(self.id(), ctx.worker_index());
        ctx.inner.registry.borrow_mut().remove_rdd(self.id());
    }

    /// `persist(StorageLevel::MemoryOnly)`.
    pub fn cache(&self) -> Rdd<T>
    where
        T: SizeOf,
    {
        self.persist(StorageLevel::MemoryOnly)
    }

    /// Stops persisting and drops the cached partitions (of this process).
    pub fn unpersist(&self) -> Rdd<T> {
        self.drop_blocks();
        self.node.storage.set(None);
        self.node.sizer.set(None);
        self.clone()
    }

    /// The lineage graph with stage boundaries (`+-` marks a shuffle) and storage levels, in the
    /// style of Spark's `toDebugString`.
    pub fn lineage(&self) -> String {
        crate::lineage::render(&self.base())
    }
}
