//! Shuffles: the map side buckets (and, where the operation allows, combines) each map
//! partition's records by reduce partition and sends them through a timely exchange round to the
//! worker that owns each reduce partition; the reduce side reads them back from the process's
//! shuffle store. Outputs stay in the store for later jobs (a completed shuffle is never re-run)
//! until the dependency is dropped.

mod cogroup;
mod partitioner;

pub(crate) use cogroup::{CoGrouped, Side};
pub(crate) use partitioner::IdentityPartitioner;
pub use partitioner::{
    mix64, stable_hash, HashPartitioner, Partitioner, PartitionerDesc, RangePartitioner,
};

use std::any::Any;
use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::rc::Rc;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::accumulator::AccUpdate;
use crate::context::Context;
use crate::data::{Data, Key};
use crate::error::{EngineError, Result, TaskFailure};
use crate::rdd::{BoxIter, Compute, Dependency, RddBase, RddNode};
use crate::scheduler::{Polling, StageRun, StageStats};
use crate::task::TaskContext;

/// Spark's `Aggregator`: how values become combiners and combiners merge.
pub(crate) struct Aggregator<V, C> {
    pub create: Rc<dyn Fn(V) -> C>,
    pub merge_value: Rc<dyn Fn(C, V) -> C>,
    pub merge_combiners: Rc<dyn Fn(C, C) -> C>,
}

/// Folds `t` into the combiner of `k`. Combiners sit in an `Option` so they can be moved into
/// the (by-value) merge function and back; a panic inside it fails the task, which discards the
/// map, so the momentarily empty slot is never read.
pub(crate) fn combine_into<K: Key, T, C>(
    map: &mut FxHashMap<K, Option<C>>,
    k: K,
    t: T,
    create: impl FnOnce(T) -> C,
    merge: impl FnOnce(C, T) -> C,
) {
    match map.entry(k) {
        Entry::Occupied(mut e) => {
            let slot = e.get_mut();
            let c = slot.take().expect("combiner present outside a merge");
            *slot = Some(merge(c, t));
        }
        Entry::Vacant(e) => {
            e.insert(Some(create(t)));
        }
    }
}

/// The combined records of a map built with [`combine_into`].
pub(crate) fn combined<K, C>(map: FxHashMap<K, Option<C>>) -> impl Iterator<Item = (K, C)> {
    map.into_iter()
        .map(|(k, c)| (k, c.expect("combiner present outside a merge")))
}

impl<V, C> Clone for Aggregator<V, C> {
    fn clone(&self) -> Self {
        Aggregator {
            create: Rc::clone(&self.create),
            merge_value: Rc::clone(&self.merge_value),
            merge_combiners: Rc::clone(&self.merge_combiners),
        }
    }
}

/// What the map side does with records before sending them.
pub(crate) enum MapSide<V, C> {
    /// Send every record as it is (`C` is `V`; the function is the identity).
    Plain(fn(V) -> C),
    /// Combine records by key within the map partition first.
    Combine(Aggregator<V, C>),
}

/// One message of a shuffle round.
#[derive(Clone, Serialize, Deserialize)]
enum ShuffleMsg<K, C> {
    /// Records of one map attempt for one reduce partition; `seq` orders a map task's batches.
    Data {
        reduce: u32,
        map: u32,
        attempt: u32,
        seq: u32,
        records: Vec<(K, C)>,
    },
    /// The outcome of one map task, sent to every worker.
    Status {
        map: u32,
        outcome: Result<u32, TaskFailure>,
        acc: Vec<AccUpdate>,
    },
}

/// The untyped view of a shuffle dependency, for the scheduler.
pub(crate) trait ShuffleDepBase {
    fn shuffle_id(&self) -> usize;
    fn parent(&self) -> Rc<dyn RddBase>;
    /// The operation that asked for the shuffle, for stage names.
    fn op(&self) -> &str;
    fn is_complete(&self) -> bool;
    /// Runs the map stage and stores this process's reduce outputs.
    fn run_map_stage(
        &self,
        ctx: &Context,
        job: usize,
        stage: usize,
        name: &str,
    ) -> Result<StageStats>;
}

/// A shuffle of `parent`'s `(K, V)` records into `(K, C)` records by `partitioner`.
pub(crate) struct ShuffleDependency<K: 'static, V: 'static, C> {
    id: usize,
    op: String,
    parent: Rc<RddNode<(K, V)>>,
    partitioner: Rc<dyn Partitioner<K>>,
    map_side: MapSide<V, C>,
    complete: Cell<bool>,
    ctx: Context,
}

/// A reduce partition's shuffle output: batches ordered by (map partition, sequence).
type Block<K, C> = Vec<Vec<(K, C)>>;

impl<K: Key, V: Data, C: Data> ShuffleDependency<K, V, C> {
    pub(crate) fn new(
        op: &str,
        parent: Rc<RddNode<(K, V)>>,
        partitioner: Rc<dyn Partitioner<K>>,
        map_side: MapSide<V, C>,
    ) -> Rc<Self> {
        let ctx = parent.ctx.clone();
        Rc::new(ShuffleDependency {
            id: ctx.new_shuffle_id(),
            op: op.to_string(),
            parent,
            partitioner,
            map_side,
            complete: Cell::new(false),
            ctx,
        })
    }

    pub(crate) fn num_reduce_partitions(&self) -> usize {
        self.partitioner.num_partitions()
    }

    /// The shuffle output of `reduce` held by this process, or an error in `tc`.
    pub(crate) fn block(&self, reduce: usize, tc: &TaskContext) -> Option<Arc<Block<K, C>>> {
        let found = self
            .ctx
            .shared()
            .shuffles
            .lock()
            .expect("shuffle store lock")
            .get(&(self.id, reduce))
            .cloned();
        match found.and_then(|b| b.downcast::<Block<K, C>>().ok()) {
            Some(b) => Some(b),
            None => {
                tc.fail(EngineError::ShuffleOutputMissing {
                    shuffle: self.id,
                    partition: reduce,
                });
                None
            }
        }
    }

    /// Runs one map task, sending its records through `send(reduce, records)`.
    fn map_task(
        &self,
        split: usize,
        tc: &Rc<TaskContext>,
        batch: usize,
        send: &mut dyn FnMut(usize, Vec<(K, C)>),
    ) {
        let reduces = self.partitioner.num_partitions();
        let records = Polling::new(self.parent.iterator(split, tc));
        match &self.map_side {
            MapSide::Plain(to_c) => {
                let mut buffers: Vec<Vec<(K, C)>> = (0..reduces).map(|_| Vec::new()).collect();
                for (k, v) in records {
                    let r = self.partitioner.partition(&k);
                    let buffer = &mut buffers[r];
                    buffer.push((k, to_c(v)));
                    if buffer.len() >= batch {
                        send(r, std::mem::take(buffer));
                    }
                }
                for (r, buffer) in buffers.into_iter().enumerate() {
                    if !buffer.is_empty() {
                        send(r, buffer);
                    }
                }
            }
            MapSide::Combine(agg) => {
                // One map for the whole partition: the partitioner runs once per distinct key
                // when the combined records are bucketed, not once per record.
                let mut map: FxHashMap<K, Option<C>> = FxHashMap::default();
                for (k, v) in records {
                    combine_into(&mut map, k, v, &*agg.create, &*agg.merge_value);
                }
                if tc.failed() {
                    return;
                }
                let mut buffers: Vec<Vec<(K, C)>> = (0..reduces).map(|_| Vec::new()).collect();
                for (k, c) in combined(map) {
                    let r = self.partitioner.partition(&k);
                    let buffer = &mut buffers[r];
                    buffer.push((k, c));
                    if buffer.len() >= batch {
                        send(r, std::mem::take(buffer));
                    }
                }
                for (r, buffer) in buffers.into_iter().enumerate() {
                    if !buffer.is_empty() {
                        send(r, buffer);
                    }
                }
            }
        }
    }
}

impl<K: Key, V: Data, C: Data> ShuffleDepBase for ShuffleDependency<K, V, C> {
    fn shuffle_id(&self) -> usize {
        self.id
    }
    fn parent(&self) -> Rc<dyn RddBase> {
        Rc::clone(&self.parent) as Rc<dyn RddBase>
    }
    fn op(&self) -> &str {
        &self.op
    }
    fn is_complete(&self) -> bool {
        self.complete.get()
    }

    fn run_map_stage(
        &self,
        ctx: &Context,
        job: usize,
        stage: usize,
        name: &str,
    ) -> Result<StageStats> {
        let me = ctx.worker_index();
        let peers = ctx.num_workers();
        let batch = ctx
            .conf()
            .get_usize("ember.shuffle.batchSize")
            .unwrap_or(8192);
        let parent = Rc::clone(&self.parent) as Rc<dyn RddBase>;
        let maps: Vec<usize> = (0..parent.num_partitions()).collect();
        let mut run = StageRun::start(ctx, stage, name, &parent, &maps)?;
        let mut round = ctx.round::<ShuffleMsg<K, C>>(&format!("shuffle-{}", self.id));
        while let Some(launch) = run.next_task()? {
            let split = launch.partition;
            let outcome = run.run_task(&launch, |tc| {
                let mut seq = 0u32;
                let attempt = tc.attempt as u32;
                let mut send = |reduce: usize, records: Vec<(K, C)>| {
                    let msg = ShuffleMsg::Data {
                        reduce: reduce as u32,
                        map: split as u32,
                        attempt,
                        seq,
                        records,
                    };
                    round.send(reduce % peers, msg);
                    seq += 1;
                };
                self.map_task(split, tc, batch, &mut send);
            })?;
            let status = match outcome {
                Ok(ok) => ShuffleMsg::Status {
                    map: split as u32,
                    outcome: Ok(ok.attempt as u32),
                    acc: ok.acc_updates,
                },
                Err(failure) => ShuffleMsg::Status {
                    map: split as u32,
                    outcome: Err(failure),
                    acc: Vec::new(),
                },
            };
            round.send_to_all(status);
        }
        let stats = run.finish()?;

        let mut winners: FxHashMap<u32, u32> = FxHashMap::default();
        let mut statuses = Vec::new();
        let mut data = Vec::new();
        for msg in round.finish()? {
            match msg {
                ShuffleMsg::Status { map, outcome, acc } => statuses.push((map, outcome, acc)),
                ShuffleMsg::Data {
                    reduce,
                    map,
                    attempt,
                    seq,
                    records,
                } => data.push((reduce, map, attempt, seq, records)),
            }
        }
        // A restarted barrier stage reports a map task once per stage attempt: the last counts.
        let order = |o: &Result<u32, TaskFailure>| match o {
            Ok(attempt) => *attempt as usize,
            Err(f) => f.attempts.saturating_sub(1),
        };
        statuses.sort_by_key(|s| (s.0, order(&s.1)));
        statuses.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        let mut failure: Option<TaskFailure> = None;
        for (map, outcome, acc) in &statuses {
            match outcome {
                Ok(attempt) => {
                    winners.insert(*map, *attempt);
                    ctx.apply_acc_updates(acc)?;
                }
                Err(f) => {
                    failure.get_or_insert_with(|| f.clone());
                }
            }
        }
        if let Some(f) = failure {
            return Err(EngineError::JobFailed {
                job,
                stage,
                stage_name: name.to_string(),
                partition: f.partition,
                attempts: f.attempts,
                cause: f.message,
            });
        }

        // Keep only the batches of each map task's successful attempt, in a deterministic order.
        data.retain(|(_, map, attempt, _, _)| winners.get(map) == Some(attempt));
        data.sort_by_key(|(reduce, map, _, seq, _)| (*reduce, *map, *seq));
        let mut blocks: FxHashMap<usize, Block<K, C>> = FxHashMap::default();
        for (reduce, _, _, _, records) in data {
            blocks.entry(reduce as usize).or_default().push(records);
        }
        let mut store = ctx.shared().shuffles.lock().expect("shuffle store lock");
        for reduce in (0..self.num_reduce_partitions()).filter(|r| r % peers == me) {
            let block = blocks.remove(&reduce).unwrap_or_default();
            store.insert(
                (self.id, reduce),
                Arc::new(block) as Arc<dyn Any + Send + Sync>,
            );
        }
        drop(store);
        self.complete.set(true);
        Ok(stats)
    }
}

impl<K, V, C> Drop for ShuffleDependency<K, V, C> {
    fn drop(&mut self) {
        // Each worker forgets the reduce partitions it owns.
        let (me, peers) = (self.ctx.worker_index(), self.ctx.num_workers());
        if let Ok(mut store) = self.ctx.shared().shuffles.lock() {
            store.retain(|(id, reduce), _| *id != self.id || reduce % peers != me);
        }
    }
}

/// The reduce side of a shuffle: each partition's records, merged by key when the shuffle
/// combines (Spark's `ShuffledRDD`).
pub(crate) struct Shuffled<K: 'static, V: 'static, C> {
    dep: Rc<ShuffleDependency<K, V, C>>,
    merge: Option<Rc<dyn Fn(C, C) -> C>>,
}

impl<K: Key, V: Data, C: Data> Shuffled<K, V, C> {
    pub(crate) fn new(dep: Rc<ShuffleDependency<K, V, C>>) -> Self {
        let merge = match &dep.map_side {
            MapSide::Combine(agg) => Some(Rc::clone(&agg.merge_combiners)),
            MapSide::Plain(_) => None,
        };
        Shuffled { dep, merge }
    }
}

/// Iterates the records of a shuffle block, cloning them out of the shared store.
pub(crate) fn block_records<K: Data, C: Data>(
    block: Arc<Block<K, C>>,
) -> impl Iterator<Item = (K, C)> {
    let batches = block.len();
    (0..batches).flat_map(move |b| {
        let block = Arc::clone(&block);
        (0..block[b].len()).map(move |i| block[b][i].clone())
    })
}

impl<K: Key, V: Data, C: Data> Compute<(K, C)> for Shuffled<K, V, C> {
    fn num_partitions(&self) -> usize {
        self.dep.num_reduce_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Shuffle(
            Rc::clone(&self.dep) as Rc<dyn ShuffleDepBase>
        )]
    }
    fn partitioner(&self) -> Option<PartitionerDesc> {
        Some(self.dep.partitioner.desc())
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<(K, C)> {
        let Some(block) = self.dep.block(split, tc) else {
            return Box::new(std::iter::empty());
        };
        match &self.merge {
            None => Box::new(block_records(block)),
            Some(merge) => {
                let mut map: FxHashMap<K, Option<C>> = FxHashMap::default();
                for (k, c) in block_records(block) {
                    combine_into(&mut map, k, c, |c| c, &**merge);
                }
                Box::new(combined(map))
            }
        }
    }
}
