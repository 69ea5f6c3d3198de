//! What the scheduler does from inside a running task, through the stage registered on this
//! thread while a [`StageRun`](super::stage::StageRun) is open.
//!
//! A task lets the scheduler in while it consumes its input (every ~200 us, [`Polling`]): the
//! coordinator keeps taking finished tasks and handing out new ones during a task of its own,
//! and every worker answers block fetches. A worker busy in user code that does not read its
//! input (a long closure, a sleep) answers at its next read or between tasks; the
//! fetch-or-recompute rule counts that wait. A task reading a cached block held in another
//! process fetches it here ([`fetch_block`]), and a barrier task's collectives find the stage's
//! mailbox here ([`barrier_mailbox`]).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::error::{EngineError, Result};

use super::coordinator::Coordinator;
use super::mailbox::{BarrierLaunch, Mailbox, SchedMsg};
use super::stage::PARK;

/// The stage running on this thread, for work done from inside a task: fetches, and the
/// coordinator's bookkeeping while it runs a task of its own.
struct Current {
    mailbox: Rc<RefCell<Mailbox>>,
    coordinator: Option<Rc<RefCell<Coordinator>>>,
    ctx: Context,
    stage: usize,
    /// The barrier task running on this thread, if one is, and the number of its next
    /// collective.
    barrier: Option<(BarrierLaunch, Rc<Cell<u32>>)>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Registers the stage opening on this thread (no barrier task running yet); the returned guard
/// clears it when the stage ends, on success or error.
pub(super) fn enter(
    mailbox: &Rc<RefCell<Mailbox>>,
    coordinator: Option<&Rc<RefCell<Coordinator>>>,
    ctx: &Context,
    stage: usize,
) -> CurrentGuard {
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(Current {
            mailbox: Rc::clone(mailbox),
            coordinator: coordinator.cloned(),
            ctx: ctx.clone(),
            stage,
            barrier: None,
        })
    });
    CurrentGuard
}

/// Clears the thread's stage when dropped.
pub(super) struct CurrentGuard;

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// Records the barrier task about to run on this thread (or that none is); its collectives
/// are numbered from 0.
pub(super) fn set_current_barrier(barrier: Option<BarrierLaunch>) {
    CURRENT.with(|c| {
        if let Some(c) = c.borrow_mut().as_mut() {
            c.barrier = barrier.map(|b| (b, Rc::new(Cell::new(0))));
        }
    });
}

/// What a barrier task's collectives work with: the stage's mailbox, the task's launch, and the
/// counter numbering its collectives. One counter per task, shared by every
/// [`BarrierTask`](super::BarrierTask) the task makes (a stage computing two barrier RDDs, or
/// one twice): the messages of two collectives of one task never carry the same number.
pub(super) fn barrier_mailbox() -> Option<(Rc<RefCell<Mailbox>>, BarrierLaunch, Rc<Cell<u32>>)> {
    CURRENT.with(|c| {
        let c = c.borrow();
        let c = c.as_ref()?;
        let (launch, seq) = c.barrier.as_ref()?;
        Some((Rc::clone(&c.mailbox), launch.clone(), Rc::clone(seq)))
    })
}

/// How often a running task lets the scheduler in, at most.
const POLL_EVERY: Duration = Duration::from_micros(200);

/// Lets the scheduler in from inside a running task: answers block fetches and, on the
/// coordinator, takes finished tasks and hands out new ones, so workers do not wait for the
/// coordinator's own task to end.
fn poll_during_task() {
    let current = CURRENT.with(|c| {
        c.borrow().as_ref().map(|c| {
            (
                Rc::clone(&c.mailbox),
                c.coordinator.clone(),
                c.ctx.clone(),
                c.stage,
            )
        })
    });
    let Some((mailbox, coordinator, ctx, stage)) = current else {
        return;
    };
    // Busy (a fetch in progress holds them): the next poll will do.
    let Ok(mut mb) = mailbox.try_borrow_mut() else {
        return;
    };
    if mb.pump(Duration::ZERO).is_err() {
        return;
    }
    let Some(coordinator) = coordinator else {
        return;
    };
    let Ok(mut c) = coordinator.try_borrow_mut() else {
        return;
    };
    let mut kept = VecDeque::new();
    while let Some(msg) = mb.inbox.pop_front() {
        match msg {
            SchedMsg::Ready { worker } => c.register(worker),
            SchedMsg::Done { metrics, changes } => c.done(&ctx, stage, metrics, &changes),
            other => kept.push_back(other),
        }
    }
    mb.inbox = kept;
    c.schedule(&ctx, &mut mb, Instant::now());
}

/// What a result task's function reads: its partition, polled. Not boxed again, so an action's
/// loop (`count`, `fold`...) makes one dynamic call per element, not two.
pub(crate) type TaskInput<T> = Polling<crate::rdd::BoxIter<T>>;

/// A task's input, letting the scheduler in every [`POLL_EVERY`] or so while it is consumed.
pub(crate) struct Polling<I> {
    inner: I,
    count: u32,
    last: Instant,
}

impl<I> Polling<I> {
    /// Wraps a task's input iterator.
    pub(crate) fn new(inner: I) -> Self {
        Polling {
            inner,
            count: 0,
            last: Instant::now(),
        }
    }
}

impl<I: Iterator> Iterator for Polling<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        self.count = self.count.wrapping_add(1);
        if self.count.is_multiple_of(256) && self.last.elapsed() >= POLL_EVERY {
            poll_during_task();
            self.last = Instant::now();
        }
        self.inner.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// Fetches block `id` from worker `holder` in another process, serving this worker's own
/// fetch requests while it waits. `Ok(None)` when the holder no longer has it.
/// [`crate::task::BlockFetch`] over the stage mailbox registered on this thread.
pub(crate) struct MailboxFetch;

impl crate::task::BlockFetch for MailboxFetch {
    fn fetch_block(&self, holder: usize, id: (usize, usize)) -> Result<Option<Vec<u8>>> {
        fetch_block(holder, id)
    }
}

fn fetch_block(holder: usize, id: (usize, usize)) -> Result<Option<Vec<u8>>> {
    let mailbox = CURRENT
        .with(|c| c.borrow().as_ref().map(|c| Rc::clone(&c.mailbox)))
        .ok_or_else(|| EngineError::InvalidArgument {
            operation: "fetch block".into(),
            reason: "no stage is running on this worker".into(),
        })?;
    let mut mb = mailbox.borrow_mut();
    let me = mb.me;
    let request = SchedMsg::Fetch {
        requester: me,
        rdd: id.0,
        split: id.1,
    };
    mb.round.send_now(holder, request);
    loop {
        let pos = mb
            .inbox
            .iter()
            .position(|m| matches!(m, SchedMsg::Block { rdd, split, .. } if (*rdd, *split) == id));
        if let Some(pos) = pos {
            let Some(SchedMsg::Block { bytes, error, .. }) = mb.inbox.remove(pos) else {
                unreachable!("position found a block message");
            };
            return match error {
                Some(e) => Err(EngineError::PeerFailed(format!(
                    "worker {holder} could not send block rdd_{}_{}: {e}",
                    id.0, id.1
                ))),
                None => Ok(bytes),
            };
        }
        mb.pump(PARK)?;
    }
}
