//! The output end of Ember's differential dataflows: a collection's updates accumulated on the
//! worker that produced them, and a probe that tells when they are complete for a version.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use timely::dataflow::operators::probe::Handle as ProbeHandle;

use super::{CollectionIn, DiffData, Version};
use crate::context::Context;
use crate::error::{EngineError, Result};

/// The accumulated contents of a collection on this worker (record -> multiplicity), kept up
/// to date by the dataflow as differences arrive.
pub(crate) struct Capture<T> {
    state: Rc<RefCell<HashMap<T, isize>>>,
    probe: ProbeHandle<Version>,
}

impl<T: DiffData> Capture<T> {
    /// Accumulates `collection` into a new capture (called while building a dataflow).
    pub(crate) fn attach(collection: CollectionIn<'_, T>) -> Capture<T> {
        let state: Rc<RefCell<HashMap<T, isize>>> = Rc::default();
        let sink = Rc::clone(&state);
        let probe = ProbeHandle::new();
        collection
            .inspect(move |(record, _time, diff)| {
                let mut s = sink.borrow_mut();
                let count = s.entry(record.clone()).or_insert(0);
                *count += *diff;
                if *count == 0 {
                    s.remove(record);
                }
            })
            .probe_with(&probe);
        Capture { state, probe }
    }

    /// Steps the dataflows until this capture holds every update up to `version`.
    pub(crate) fn wait(&self, ctx: &Context, version: Version, what: &str) -> Result<()> {
        let probe = self.probe.clone();
        ctx.step_until(what, move || !probe.less_equal(&version))
    }

    /// The records this worker holds, each as many times as its multiplicity. A negative
    /// multiplicity (more removals than additions of a record) is an error naming the record.
    pub(crate) fn snapshot(&self, what: &str) -> Result<Vec<T>> {
        let state = self.state.borrow();
        // Sorted, so that a view's partitions come out the same on every run.
        let mut records: Vec<(&T, isize)> = state.iter().map(|(r, &c)| (r, c)).collect();
        records.sort_unstable();
        let mut out = Vec::with_capacity(records.len());
        for (record, count) in records {
            if count < 0 {
                return Err(EngineError::InvalidArgument {
                    operation: what.to_string(),
                    reason: format!(
                        "record {record:?} has multiplicity {count}: more removals than \
                         additions reached it (an update removed records that were not there)"
                    ),
                });
            }
            out.extend(std::iter::repeat_n(record, count as usize).cloned());
        }
        Ok(out)
    }

    /// [`Capture::snapshot`], agreed by every worker (see [`agree`]).
    pub(crate) fn snapshot_agreed(&self, ctx: &Context, what: &str) -> Result<Vec<T>> {
        agree(ctx, what, self.snapshot(what))
    }

    /// The probe of the captured collection.
    pub(crate) fn probe(&self) -> &ProbeHandle<Version> {
        &self.probe
    }
}

/// `local` when every worker succeeded; otherwise an error on every worker (a failed worker its
/// own, the others one naming it), so that no worker goes on into an exchange that a failed one
/// will never join. Every worker calls it at the same point.
pub(crate) fn agree<T>(ctx: &Context, what: &str, local: Result<T>) -> Result<T> {
    let mut round = ctx.round::<Option<(usize, String)>>(&format!("{what}-agree"));
    round.send_to_all(
        local
            .as_ref()
            .err()
            .map(|e| (ctx.worker_index(), e.to_string())),
    );
    let failed = round.finish()?.into_iter().flatten().min_by_key(|f| f.0);
    match (local, failed) {
        (Err(e), _) => Err(e),
        (Ok(_), Some((worker, message))) => Err(EngineError::InvalidArgument {
            operation: what.to_string(),
            reason: format!("worker {worker} failed: {message}"),
        }),
        (Ok(v), None) => Ok(v),
    }
}
