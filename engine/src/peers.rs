//! What every worker knows about its peers' liveness: whether the application was aborted (a
//! worker's driver code panicked, a task ran past `ember.task.timeout`) and, for each worker
//! whose driver code has returned, how many exchange rounds it opened before returning.
//!
//! Rounds ([`crate::exchange`]) check this state while they wait, so a worker never waits for a
//! peer that cannot come: a peer that returned from the driver after `n` rounds will never join
//! round `n` or later (an action run on some workers but not others), and an aborted
//! application has nothing left to wait for.
//!
//! Workers of other processes learn the same facts through the control dataflow ([`Control`]),
//! the first dataflow of every worker, which lives for the whole application: a worker announces
//! once, when its driver code returns, how many rounds it opened and why it stopped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::InputHandle;
use timely::worker::Worker;

use crate::error::{EngineError, Result};

/// The liveness state shared by the workers of one process.
#[derive(Default)]
pub(crate) struct Peers {
    aborted: AtomicBool,
    /// Why the application was aborted (the first reason wins).
    reason: Mutex<Option<EngineError>>,
    /// Workers whose driver code returned, with the rounds each opened.
    finished: Mutex<BTreeMap<usize, u64>>,
}

impl Peers {
    /// Aborts the application: every worker waiting in a round fails with `err` (the first
    /// abort's error; later ones are logged only).
    pub(crate) fn abort(&self, err: EngineError) {
        let mut slot = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            None => {
                tracing::error!(error = %err, "aborting the application");
                *slot = Some(err);
            }
            Some(first) => tracing::debug!(error = %err, first = %first, "already aborted"),
        }
        self.aborted.store(true, Ordering::SeqCst);
    }

    /// Whether the application was aborted.
    pub(crate) fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// The abort's error, if the application was aborted.
    pub(crate) fn abort_error(&self) -> Option<EngineError> {
        if !self.aborted() {
            return None;
        }
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records that `worker`'s driver code returned after opening `rounds` rounds.
    pub(crate) fn finished(&self, worker: usize, rounds: u64) {
        let mut map = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(worker, rounds);
    }

    /// An error when this worker, waiting in its round number `seq` (named `name`), waits for
    /// something that cannot come: the application was aborted, or a peer returned from the
    /// driver code without opening this round.
    pub(crate) fn check(&self, seq: u64, name: &str) -> Result<()> {
        if let Some(err) = self.abort_error() {
            return Err(err);
        }
        let map = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((worker, rounds)) = map.iter().find(|(_, &rounds)| rounds <= seq) {
            return Err(EngineError::PeerFailed(format!(
                "worker {worker} returned from the driver code after {rounds} exchange \
                 round(s), while this worker waits in round {seq} (`{name}`): every worker must \
                 run the same actions in the same order (an action run only under a condition \
                 such as `if ctx.worker_index() == 0` is the usual cause)"
            )));
        }
        Ok(())
    }

    /// Whether some peer's driver code returned after a number of rounds other than `rounds`:
    /// then a round this worker opened may never complete.
    pub(crate) fn mismatch(&self, rounds: u64) -> bool {
        let map = self.finished.lock().unwrap_or_else(|p| p.into_inner());
        map.values().any(|&r| r != rounds)
    }
}

/// What a worker announces when its driver code returns.
#[derive(Clone, Serialize, Deserialize)]
struct Announce {
    worker: usize,
    rounds: u64,
    /// Why it stopped, when the application was aborted there.
    abort: Option<String>,
}

/// The control dataflow of one worker (see the module documentation).
pub(crate) struct Control {
    input: InputHandle<u64, CapacityContainerBuilder<Vec<(u64, Announce)>>>,
    dataflow: usize,
}

impl Control {
    /// Builds the control dataflow; every worker calls it first, before any round.
    pub(crate) fn open(worker: &mut Worker, peers: &std::sync::Arc<Peers>) -> Control {
        let dataflow = worker.next_dataflow_index();
        let mut input = InputHandle::new();
        let peers = std::sync::Arc::clone(peers);
        worker.dataflow_named::<u64, _, _>("ember-control", |scope| {
            input.to_stream(scope).sink(
                Exchange::new(|msg: &(u64, Announce)| msg.0),
                "EmberControlSink",
                move |(input, _frontier)| {
                    input.for_each(|_time, data| {
                        for (_, a) in data.drain(..) {
                            if let Some(reason) = a.abort {
                                peers.abort(EngineError::PeerFailed(format!(
                                    "worker {} stopped: {reason}",
                                    a.worker
                                )));
                            }
                            peers.finished(a.worker, a.rounds);
                        }
                    });
                },
            );
        });
        Control { input, dataflow }
    }

    /// The dataflow's identifier (it is not one of the rounds).
    pub(crate) fn dataflow(&self) -> usize {
        self.dataflow
    }

    /// Tells every worker that this one's driver code returned after `rounds` rounds, and why
    /// it stopped if the application was aborted; then closes this worker's side.
    pub(crate) fn announce(mut self, worker: &mut Worker, rounds: u64, abort: Option<String>) {
        let msg = Announce {
            worker: worker.index(),
            rounds,
            abort,
        };
        for to in 0..worker.peers() {
            self.input.send((to as u64, msg.clone()));
        }
        let next = *self.input.time() + 1;
        self.input.advance_to(next);
        drop(self.input);
        worker.step();
    }
}
