//! The coordinator's view of where data lives: which workers hold which cached blocks (learned
//! from the block changes every finished task reports), and from it, with the lineage, the
//! preferred locations of a stage's tasks.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use crate::blocks::BlockChange;
use crate::rdd::{first_parent, Dependency, Parent, RddBase};

use super::locality::{CachedBlock, Placement, Topology};

#[derive(Debug, Clone, Default)]
struct Held {
    holders: Vec<usize>,
    bytes: u64,
    compute: Duration,
}

/// Which workers hold which cached blocks, as far as the coordinator has been told.
#[derive(Debug, Default)]
pub(crate) struct BlockRegistry {
    blocks: HashMap<(usize, usize), Held>,
}

impl BlockRegistry {
    /// Applies the changes a task on `worker` reported; `run` is the task's run time, recorded
    /// as the compute cost of the blocks it added.
    pub(crate) fn apply(&mut self, worker: usize, changes: &[BlockChange], run: Duration) {
        for &c in changes {
            match c {
                BlockChange::Added(rdd, p, bytes) => {
                    let held = self.blocks.entry((rdd, p)).or_default();
                    if !held.holders.contains(&worker) {
                        held.holders.push(worker);
                    }
                    held.bytes = bytes;
                    held.compute = held.compute.max(run);
                }
                BlockChange::Removed(rdd, p) => {
                    if let Some(held) = self.blocks.get_mut(&(rdd, p)) {
                        held.holders.retain(|&w| w != worker);
                        if held.holders.is_empty() {
                            self.blocks.remove(&(rdd, p));
                        }
                    }
                }
            }
        }
    }

    /// Forgets an RDD's blocks (unpersisted or dropped).
    pub(crate) fn remove_rdd(&mut self, rdd: usize) {
        self.blocks.retain(|(r, _), _| *r != rdd);
    }

    /// The workers holding a block.
    pub(crate) fn holders(&self, id: (usize, usize)) -> &[usize] {
        self.blocks.get(&id).map_or(&[], |h| &h.holders)
    }

    /// Where partition `split` of `rdd` would best be computed: with the workers holding its
    /// cached block, else where its first narrow ancestor's input lives (the worker owning the
    /// shuffle output it reads, the host of its checkpoint); sources without known hosts have
    /// only the preferences the source states. A partition that reads a shuffle output is pinned to the process holding it.
    pub(crate) fn placement(
        &self,
        rdd: &Rc<dyn RddBase>,
        split: usize,
        topo: &Topology,
        peers: usize,
    ) -> Placement {
        let mut placement = self.preferred(rdd, split, topo, peers);
        placement.process = pinned_process(rdd, split, topo, peers);
        placement
    }

    /// Follows narrow dependencies down (a loop: lineages can be thousands of steps deep) to
    /// the first node that says where `split` should run.
    fn preferred(
        &self,
        rdd: &Rc<dyn RddBase>,
        split: usize,
        topo: &Topology,
        peers: usize,
    ) -> Placement {
        let (mut rdd, mut split) = (Rc::clone(rdd), split);
        loop {
            if rdd.storage_level().is_some() {
                if let Some(held) = self.blocks.get(&(rdd.id(), split)) {
                    return Placement {
                        workers: held.holders.clone(),
                        block: Some(CachedBlock {
                            id: (rdd.id(), split),
                            bytes: held.bytes,
                            compute: held.compute,
                        }),
                        ..Placement::default()
                    };
                }
            }
            if let Some((local_path, writers)) = rdd.checkpoint_location() {
                let hosts = match writers.get(split) {
                    Some(&w) if local_path => vec![topo.host_of(w).to_string()],
                    _ => Vec::new(),
                };
                return Placement {
                    hosts,
                    ..Placement::default()
                };
            }
            match first_parent(&rdd.dependencies(), split) {
                Some(Parent::Narrow(parent, p)) => (rdd, split) = (parent, p),
                Some(Parent::Shuffle) => {
                    return Placement {
                        workers: vec![split % peers],
                        ..Placement::default()
                    }
                }
                None => {
                    let (workers, hosts) = rdd.source_preferences(split);
                    return Placement {
                        workers: workers.into_iter().filter(|&w| w < peers).collect(),
                        hosts,
                        ..Placement::default()
                    };
                }
            }
        }
    }
}

/// The process whose shuffle store holds an output this partition reads through narrow
/// dependencies, if any (shuffle outputs are not fetched across processes).
fn pinned_process(
    rdd: &Rc<dyn RddBase>,
    split: usize,
    topo: &Topology,
    peers: usize,
) -> Option<usize> {
    // A depth-first search in dependency order, with an explicit stack.
    enum Step {
        Visit(Rc<dyn RddBase>, usize),
        Found(usize),
    }
    let mut stack = vec![Step::Visit(Rc::clone(rdd), split)];
    while let Some(step) = stack.pop() {
        let (rdd, split) = match step {
            Step::Found(process) => return Some(process),
            Step::Visit(rdd, split) => (rdd, split),
        };
        if rdd.checkpoint_location().is_some() {
            continue;
        }
        let mut next = Vec::new();
        for dep in rdd.dependencies() {
            match dep {
                Dependency::Shuffle(_) => next.push(Step::Found(topo.process_of(split % peers))),
                Dependency::OneToOne(parent) => next.push(Step::Visit(parent, split)),
                Dependency::Range {
                    parent,
                    in_start,
                    out_start,
                    len,
                } => {
                    if (out_start..out_start + len).contains(&split) {
                        next.push(Step::Visit(parent, split - out_start + in_start));
                    }
                }
                Dependency::Groups { parent, groups } => next.extend(
                    groups[split]
                        .iter()
                        .map(|&p| Step::Visit(Rc::clone(&parent), p)),
                ),
            }
        }
        stack.extend(next.into_iter().rev());
    }
    None
}
