//! RDDs whose partition `w` is what worker `w` holds of a differential dataflow's output.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crate::context::Context;
use crate::data::Data;
use crate::error::{EngineError, Result};
use crate::rdd::{BoxIter, Compute, Rdd, SharedVecIter};
use crate::task::TaskContext;

/// The outputs of one operator, by worker, shared by the workers of this process.
type Slots<T> = Mutex<HashMap<usize, Arc<Vec<T>>>>;

/// Partition `w` is worker `w`'s part of an output; it prefers worker `w`, and any worker of the
/// same process can read it.
struct WorkerLocal<T> {
    slots: Arc<Slots<T>>,
    workers: usize,
    what: String,
}

impl<T: Data> Compute<T> for WorkerLocal<T> {
    fn num_partitions(&self) -> usize {
        self.workers
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<T> {
        let part = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&split)
            .cloned();
        match part {
            Some(values) => Box::new(SharedVecIter::new(values)),
            None => {
                tc.fail(EngineError::InvalidArgument {
                    operation: self.what.clone(),
                    reason: format!(
                        "partition {split} is held by worker {split}, in another process than \
                         this task's worker {}, and has no lineage to recompute it from: the \
                         task must run on its worker (raise ember.locality.wait.process so the \
                         scheduler waits for it)",
                        crate::task::current_worker().unwrap_or(usize::MAX)
                    ),
                });
                Box::new(std::iter::empty())
            }
        }
    }
    fn preferred_workers(&self, split: usize) -> Vec<usize> {
        vec![split]
    }
    fn source_version(&self) -> Result<Option<String>> {
        // The contents are a dataflow's output at one moment: no checkpoint can vouch for them.
        Err(EngineError::InvalidArgument {
            operation: "checkpoint".into(),
            reason: format!(
                "the output of {} has no lineage to fingerprint; persist it instead",
                self.what
            ),
        })
    }
}

/// An RDD of `local` on this worker and what every other worker passes (every worker calls it
/// at the same point of the driver code). `key` names the output among this process's values.
pub(crate) fn worker_local_rdd<T: Data>(
    ctx: &Context,
    key: &str,
    what: &str,
    local: Vec<T>,
) -> Result<Rdd<T>> {
    let slots: Arc<Slots<T>> = ctx.process_value(key, Slots::<T>::default)?;
    slots
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(ctx.worker_index(), Arc::new(local));
    // Every worker of the process has put its part before any task reads one.
    ctx.round::<()>(&format!("{what}-output")).finish()?;
    Ok(Rdd::from_source(
        ctx,
        what,
        WorkerLocal {
            slots,
            workers: ctx.num_workers(),
            what: what.to_string(),
        },
    ))
}
