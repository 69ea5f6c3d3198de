//! Running one task: a partition computed on this worker, with panics caught, errors recorded,
//! accumulator updates held back until the attempt succeeds, and retries up to
//! `ember.task.maxFailures`.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::accumulator::{AccUpdate, Pending};
use crate::error::{EngineError, Result, TaskFailure};
use crate::watchdog::Watchdog;

/// Where a task got the cached block it read, if it read one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockSource {
    /// From its own process's block manager.
    Local,
    /// Fetched from the worker holding it in another process.
    Fetched,
    /// Recomputed from lineage: held elsewhere but fetching was judged slower, or lost.
    Recomputed,
}

impl BlockSource {
    /// The name used in metrics and the event log.
    pub fn name(self) -> &'static str {
        match self {
            BlockSource::Local => "local",
            BlockSource::Fetched => "fetched",
            BlockSource::Recomputed => "recomputed",
        }
    }
}

/// How a task reads a cached block held in another process: fetched from `from`, or (with
/// `from: None`) recomputed from lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RemoteRead {
    pub rdd: usize,
    pub split: usize,
    pub from: Option<usize>,
}

/// Fetches a cached block from the worker holding it in another process: `Ok(None)` when the
/// holder no longer has it. The scheduler implements it over its stage mailbox and hands it to
/// the task in [`TaskIo`], so the task and block layers need not know the scheduler.
pub(crate) trait BlockFetch {
    /// Block `id` from worker `holder`.
    fn fetch_block(&self, holder: usize, id: (usize, usize)) -> Result<Option<Vec<u8>>>;
}

/// What a task read, over all its attempts, and the scheduler's plan for a cached block held in
/// another process.
#[derive(Default)]
pub(crate) struct TaskIo {
    /// Fetch or recompute the block held elsewhere (set by the scheduler at launch).
    pub remote: Option<RemoteRead>,
    /// How to fetch it (set by the scheduler with `remote`).
    pub fetch: Option<Rc<dyn BlockFetch>>,
    /// Bytes of cached blocks read from this process's block manager.
    pub bytes_local: Cell<u64>,
    /// Bytes of cached blocks fetched from another process.
    pub bytes_remote: Cell<u64>,
    /// Where the cached block came from, if one was read.
    pub source: Cell<Option<BlockSource>>,
}

impl TaskIo {
    /// The plan for block `id`, if the scheduler made one.
    pub(crate) fn remote_for(&self, id: (usize, usize)) -> Option<RemoteRead> {
        self.remote.filter(|r| (r.rdd, r.split) == id)
    }

    /// Counts a block read from this process.
    pub(crate) fn read_local(&self, bytes: u64) {
        self.bytes_local.set(self.bytes_local.get() + bytes);
        if self.source.get().is_none() {
            self.source.set(Some(BlockSource::Local));
        }
    }

    /// Counts a block fetched from another process.
    pub(crate) fn read_remote(&self, bytes: u64) {
        self.bytes_remote.set(self.bytes_remote.get() + bytes);
        self.source.set(Some(BlockSource::Fetched));
    }
}

/// What a running task knows about itself. Sources use it to report errors (a bad file, invalid
/// UTF-8) without panicking: they record the error and end their iterator, and the attempt fails.
pub struct TaskContext {
    /// The stage this task belongs to.
    pub stage: usize,
    /// The partition being computed.
    pub partition: usize,
    /// 0 for the first attempt.
    pub attempt: usize,
    /// The worker running it.
    pub worker: usize,
    pub(crate) io: Rc<TaskIo>,
    error: RefCell<Option<EngineError>>,
    pub(crate) acc_updates: RefCell<Vec<Pending>>,
}

impl TaskContext {
    fn new(stage: usize, partition: usize, attempt: usize, io: &Rc<TaskIo>) -> Rc<TaskContext> {
        Rc::new(TaskContext {
            stage,
            partition,
            attempt,
            worker: WORKER.with(|w| w.get()),
            io: Rc::clone(io),
            error: RefCell::new(None),
            acc_updates: RefCell::new(Vec::new()),
        })
    }

    /// Records an error; the attempt fails once the task's iterator stops. The first error wins.
    pub fn fail(&self, err: EngineError) {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(err);
        }
    }

    /// Whether an error has been recorded (sources stop producing once it is).
    pub fn failed(&self) -> bool {
        self.error.borrow().is_some()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<TaskContext>>> = const { RefCell::new(None) };
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    static WORKER: Cell<usize> = const { Cell::new(0) };
    static WATCHDOG: RefCell<Option<Arc<Watchdog>>> = const { RefCell::new(None) };
}

/// Gives this worker thread the process's watchdog, told about every attempt it runs.
pub(crate) fn set_watchdog(watchdog: Option<Arc<Watchdog>>) {
    WATCHDOG.with(|w| *w.borrow_mut() = watchdog);
}

/// Tells the watchdog (if any) that this thread starts or ends an attempt.
fn watch_attempt(stage: usize, partition: usize, attempt: Option<usize>) {
    WATCHDOG.with(|w| {
        if let Some(w) = w.borrow().as_ref() {
            let worker = WORKER.with(|c| c.get());
            match attempt {
                Some(a) => w.task_started(worker, stage, partition, a),
                None => w.task_ended(worker),
            }
        }
    });
}

/// Records which worker this thread is (set once when the worker starts).
pub(crate) fn set_worker(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// The index of the worker running the current task, if any: for code that must behave
/// differently on one worker (a fault or straggler injected by a test or benchmark).
pub fn current_worker() -> Option<usize> {
    in_task().then(|| WORKER.with(|w| w.get()))
}

/// The task running on this thread, if any: accumulators buffer their updates in it, and code
/// inside a transformation that meets bad input records the error with [`TaskContext::fail`]
/// and ends its iterator, so the attempt fails with that error instead of panicking.
pub fn current_task() -> Option<Rc<TaskContext>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The attempt number (0 for the first) of the task running on this thread, if any; like
/// Spark's `TaskContext.attemptNumber`, for code that must behave differently on retries.
pub fn current_attempt() -> Option<usize> {
    CURRENT.with(|c| c.borrow().as_ref().map(|t| t.attempt))
}

/// Whether this thread is inside a task: actions there would deadlock the round protocol.
pub(crate) fn in_task() -> bool {
    IN_TASK.with(|c| c.get())
}

/// A task's successful result with the accumulator updates of the attempt that produced it.
pub(crate) struct TaskSuccess<R> {
    pub value: R,
    pub attempt: usize,
    pub acc_updates: Vec<AccUpdate>,
}

/// Runs `body` for `partition` until an attempt succeeds or `max_failures` attempts failed;
/// attempts are numbered from `first_attempt` (a restarted barrier stage's attempt number).
pub(crate) fn run_task<R>(
    stage: usize,
    partition: usize,
    first_attempt: usize,
    max_failures: usize,
    io: &Rc<TaskIo>,
    mut body: impl FnMut(&Rc<TaskContext>) -> R,
) -> Result<TaskSuccess<R>, TaskFailure> {
    let mut last = String::new();
    let attempts = first_attempt..first_attempt + max_failures.max(1);
    for attempt in attempts.clone() {
        let tc = TaskContext::new(stage, partition, attempt, io);
        CURRENT.with(|c| *c.borrow_mut() = Some(Rc::clone(&tc)));
        IN_TASK.with(|c| c.set(true));
        watch_attempt(stage, partition, Some(attempt));
        let outcome = catch_unwind(AssertUnwindSafe(|| body(&tc)));
        watch_attempt(stage, partition, None);
        IN_TASK.with(|c| c.set(false));
        CURRENT.with(|c| *c.borrow_mut() = None);
        let retryable = match (outcome, tc.error.borrow_mut().take()) {
            (Ok(value), None) => {
                let acc_updates = tc
                    .acc_updates
                    .borrow()
                    .iter()
                    .map(Pending::encode)
                    .collect();
                return Ok(TaskSuccess {
                    value,
                    attempt,
                    acc_updates,
                });
            }
            (_, Some(err)) => {
                last = err.to_string();
                err.is_retryable()
            }
            (Err(panic), None) => {
                last = format!("panic: {}", panic_message(&panic));
                true
            }
        };
        tracing::warn!(stage, partition, attempt, error = %last, "task attempt failed");
        if !retryable {
            return Err(TaskFailure {
                partition,
                attempts: attempt + 1,
                message: last,
            });
        }
    }
    Err(TaskFailure {
        partition,
        attempts: attempts.end,
        message: last,
    })
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
