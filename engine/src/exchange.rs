//! One all-to-all exchange round over timely: every worker sends messages addressed to workers,
//! and gets back every message addressed to it once all workers have finished sending.
//!
//! This is the only place the engine's jobs talk to timely (`differential` builds differential
//! dataflows beside them on the same workers). Shuffles, action results, broadcasts and
//! accumulator updates are all rounds; each round is a tiny dataflow (input -> exchange -> sink)
//! that timely removes once its frontier is empty. Every worker creates the same rounds in the
//! same order because every worker runs the same driver code; a worker waiting in a round stops
//! with an error when a peer cannot join it ([`crate::peers`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::InputHandle;
use timely::worker::Worker;
use timely::ExchangeData;

use crate::error::Result;
use crate::peers::Peers;

/// An open exchange round carrying messages of type `D`.
pub(crate) struct Round<D: ExchangeData + Clone> {
    input: Option<InputHandle<u64, CapacityContainerBuilder<Vec<(u64, D)>>>>,
    received: Rc<RefCell<Vec<D>>>,
    done: Rc<Cell<bool>>,
    worker: Worker,
    peers: Arc<Peers>,
    /// This round's number among the rounds this worker opened (every worker numbers alike).
    seq: u64,
    name: String,
}

impl<D: ExchangeData + Clone> Round<D> {
    /// Opens this worker's round number `seq`: builds its dataflow on this worker (every worker
    /// must do the same, in the same order).
    pub(crate) fn open(worker: &Worker, peers: &Arc<Peers>, seq: u64, name: &str) -> Round<D> {
        let mut worker = worker.clone();
        let received = Rc::new(RefCell::new(Vec::new()));
        let done = Rc::new(Cell::new(false));
        let mut input = InputHandle::new();
        let (sink_received, sink_done) = (Rc::clone(&received), Rc::clone(&done));
        worker.dataflow_named::<u64, _, _>(name, |scope| {
            input.to_stream(scope).sink(
                Exchange::new(|msg: &(u64, D)| msg.0),
                "EmberExchangeSink",
                move |(input, frontier)| {
                    input.for_each(|_time, data| {
                        sink_received
                            .borrow_mut()
                            .extend(data.drain(..).map(|(_, d)| d));
                    });
                    if frontier.is_empty() {
                        sink_done.set(true);
                    }
                },
            );
        });
        Round {
            input: Some(input),
            received,
            done,
            worker,
            peers: Arc::clone(peers),
            seq,
            name: name.to_string(),
        }
    }

    /// Sends one message to worker `to`, and lets timely move data so buffers stay small.
    pub(crate) fn send(&mut self, to: usize, msg: D) {
        let input = self.input.as_mut().expect("round is open");
        input.send((to as u64, msg));
        input.flush();
        self.worker.step();
    }

    /// Sends one message to worker `to` and makes it visible at once: the input's epoch
    /// advances, which flushes timely's exchange buffers (a mailbox needs this; bulk rounds
    /// let the buffers fill).
    pub(crate) fn send_now(&mut self, to: usize, msg: D) {
        let input = self.input.as_mut().expect("round is open");
        input.send((to as u64, msg));
        let next = *input.time() + 1;
        input.advance_to(next);
        self.worker.step();
    }

    /// Sends a copy of `msg` to every worker.
    pub(crate) fn send_to_all(&mut self, msg: D) {
        let peers = self.worker.peers();
        for to in 0..peers {
            self.send(to, msg.clone());
        }
    }

    /// The messages that have arrived so far, while the round stays open (a mailbox): lets
    /// timely move data once, waiting at most `park` for something to arrive.
    pub(crate) fn poll(&mut self, park: Option<Duration>) -> Result<Vec<D>> {
        self.check_aborted()?;
        if self.received.borrow().is_empty() {
            match park {
                Some(d) if !d.is_zero() => self.worker.step_or_park(Some(d)),
                _ => self.worker.step(),
            };
        }
        Ok(std::mem::take(&mut *self.received.borrow_mut()))
    }

    /// An error when what this round waits for cannot come (see [`Peers::check`]).
    fn check_aborted(&self) -> Result<()> {
        self.peers.check(self.seq, &self.name)
    }

    /// Closes this worker's side and waits until every worker's messages have arrived.
    pub(crate) fn finish(mut self) -> Result<Vec<D>> {
        drop(self.input.take());
        while !self.done.get() {
            self.check_aborted()?;
            self.worker.step_or_park(Some(Duration::from_millis(5)));
        }
        Ok(std::mem::take(&mut *self.received.borrow_mut()))
    }
}
