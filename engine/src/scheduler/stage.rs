//! Running one stage's tasks with delay scheduling, over a mailbox round.
//!
//! Worker 0 is the coordinator: it places the tasks ([`TaskSet`]), hands them to workers as they
//! become free, learns from each finished task what it cached (the block registry), and ends the
//! stage for everyone with every task's metrics. Every worker, the coordinator included, runs
//! the tasks it is given. A running task lets the scheduler in while it consumes its input
//! (every ~200 us, [`Polling`]): the coordinator keeps taking finished tasks and handing out new
//! ones during a task of its own, and every worker answers block fetches. A worker busy in user
//! code that does not read its input (a long closure, a sleep) answers at its next read or
//! between tasks; the fetch-or-recompute rule counts that wait.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::error::TaskFailure;
use crate::error::{EngineError, Result};
use crate::rdd::{Dependency, RddBase};
use crate::task::{run_task, TaskContext, TaskIo, TaskSuccess};

use super::events::Event;
use super::locality::{Locality, Placement};
use super::mailbox::{BarrierLaunch, Mailbox, RemoteRead, SchedMsg};
use super::metrics::{StageStats, TaskMetrics};
use super::progress::StageProgress;
use super::registry::BlockChange;
use super::task_set::TaskSet;

/// A task handed to this worker.
pub(crate) struct Launch {
    /// The partition to compute.
    pub partition: usize,
    /// Its locality here.
    pub level: Locality,
    /// The plan for a cached block held in another process.
    pub remote: Option<RemoteRead>,
    /// For a task of a barrier stage: its rank, its peers and the stage attempt.
    pub barrier: Option<BarrierLaunch>,
    /// How long this worker waited for it.
    pub waited: Duration,
}

/// The longest a waiting worker parks between polls.
pub(crate) const PARK: Duration = Duration::from_millis(1);

/// Whether the stage computing `rdd` is a barrier stage: a barrier RDD in its narrow lineage
/// (shuffles end a stage).
fn is_barrier_stage(rdd: &Rc<dyn RddBase>) -> bool {
    let mut stack = vec![Rc::clone(rdd)];
    let mut seen = std::collections::HashSet::new();
    while let Some(r) = stack.pop() {
        if !seen.insert(r.id()) {
            continue;
        }
        if r.is_barrier() {
            return true;
        }
        for dep in r.dependencies() {
            match dep {
                Dependency::OneToOne(p)
                | Dependency::Range { parent: p, .. }
                | Dependency::Groups { parent: p, .. } => stack.push(p),
                Dependency::Shuffle(_) => {}
            }
        }
    }
    false
}

/// The stage running on this thread, for work done from inside a task: fetches, and the
/// coordinator's bookkeeping while it runs a task of its own.
struct Current {
    mailbox: Rc<RefCell<Mailbox>>,
    coordinator: Option<Rc<RefCell<Coordinator>>>,
    ctx: Context,
    stage: usize,
    /// The barrier task running on this thread, if one is.
    barrier: Option<BarrierLaunch>,
}

/// What a barrier task's collectives work with: the stage's mailbox and the task's launch.
pub(crate) fn barrier_mailbox() -> Option<(Rc<RefCell<Mailbox>>, BarrierLaunch)> {
    CURRENT.with(|c| {
        let c = c.borrow();
        let c = c.as_ref()?;
        Some((Rc::clone(&c.mailbox), c.barrier.clone()?))
    })
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
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
pub(crate) fn fetch_block(holder: usize, id: (usize, usize)) -> Result<Option<Vec<u8>>> {
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

/// How a task away from its cached block reads it (`ember.scheduler.remoteBlock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RemotePolicy {
    Auto,
    Fetch,
    Recompute,
}

/// The coordinator's state for one stage.
struct Coordinator {
    set: TaskSet,
    partitions: Vec<usize>,
    registered: Vec<bool>,
    free: Vec<usize>,
    /// Running workers: since when, and the task's partition.
    running: HashMap<usize, Instant>,
    /// Mean run time of the finished tasks of each worker in this stage.
    run_times: HashMap<usize, (Duration, u32)>,
    metrics: Vec<TaskMetrics>,
    failed: bool,
    policy: RemotePolicy,
    bandwidth: f64,
    own: Option<Launch>,
    progress: Option<StageProgress>,
    /// A barrier stage: every task launched at once, and restarted together.
    barrier: bool,
    /// The barrier stage's attempt, and whether one of its tasks failed.
    attempt: u32,
    attempt_failed: bool,
    max_attempts: u32,
}

impl Coordinator {
    fn all_registered(&self) -> bool {
        self.registered.iter().all(|&r| r)
    }

    fn register(&mut self, w: usize) {
        if let Some(r) = self.registered.get_mut(w) {
            if !*r {
                *r = true;
                self.free.push(w);
            }
        }
    }

    fn finished(&self) -> bool {
        (self.failed || !self.set.has_pending()) && self.running.is_empty()
    }

    /// How long a holder may take to answer a fetch: what is left of its current task. While
    /// the task is within the holder's mean run time in this stage, the rest of that mean; once
    /// it has run longer (or with no finished task to go by), as long again as it has run so far.
    fn busy_for(&self, holder: usize, now: Instant) -> Duration {
        let Some(since) = self.running.get(&holder) else {
            return Duration::ZERO;
        };
        let elapsed = now.duration_since(*since);
        match self.run_times.get(&holder) {
            Some((total, n)) if elapsed < *total / (*n).max(1) => *total / (*n).max(1) - elapsed,
            _ => elapsed,
        }
    }

    /// The fetch-or-recompute rule for a task on `worker` whose cached block is held only in
    /// other processes: fetch when the estimated fetch time (the holder's remaining busy time
    /// plus bytes / `ember.scheduler.fetchBandwidth`) is below the block's recorded compute time.
    fn remote_plan(
        &self,
        ctx: &Context,
        worker: usize,
        task: usize,
        now: Instant,
    ) -> Option<RemoteRead> {
        let block = self.set.placement(task).block?;
        let topo = ctx.topology();
        let registry = ctx.inner.registry.borrow();
        let holders = registry.holders(block.id);
        if holders.is_empty() || holders.iter().any(|&h| topo.same_process(h, worker)) {
            return None;
        }
        let transfer = Duration::from_secs_f64(block.bytes as f64 / self.bandwidth);
        let (holder, estimate) = holders
            .iter()
            .map(|&h| (h, self.busy_for(h, now) + transfer))
            .min_by_key(|(_, e)| *e)?;
        let from = match self.policy {
            RemotePolicy::Fetch => Some(holder),
            RemotePolicy::Recompute => None,
            RemotePolicy::Auto => (estimate < block.compute).then_some(holder),
        };
        Some(RemoteRead {
            rdd: block.id.0,
            split: block.id.1,
            from,
        })
    }

    /// An offer round over the free workers; launches go out, this worker's own is kept.
    fn schedule(&mut self, ctx: &Context, mb: &mut Mailbox, now: Instant) {
        if self.failed || !self.all_registered() || self.free.is_empty() {
            return;
        }
        if self.barrier && !self.running.is_empty() {
            return;
        }
        let (offers, barrier) = if self.barrier {
            if !self.set.has_pending() {
                return;
            }
            match self.set.offer_all(&self.free) {
                Some(all) => {
                    let mut workers = vec![0u32; self.partitions.len()];
                    for a in &all {
                        workers[a.task] = a.worker as u32;
                    }
                    (all, Some(workers))
                }
                // Checked before the stage starts; only a pinned task can get here.
                None => {
                    tracing::error!("a barrier stage's tasks cannot all be placed at once");
                    self.failed = true;
                    return;
                }
            }
        } else {
            (self.set.offer(&self.free, now), None)
        };
        for a in offers {
            let barrier = barrier.as_ref().map(|workers| BarrierLaunch {
                attempt: self.attempt,
                rank: a.task as u32,
                workers: workers.clone(),
            });
            self.free.retain(|&w| w != a.worker);
            self.running.insert(a.worker, now);
            let remote = self.remote_plan(ctx, a.worker, a.task, now);
            let partition = self.partitions[a.task];
            tracing::trace!(partition, worker = a.worker, level = %a.level, "launch");
            if a.worker == mb.me {
                self.own = Some(Launch {
                    partition,
                    level: a.level,
                    remote,
                    barrier,
                    waited: Duration::ZERO,
                });
            } else {
                let msg = SchedMsg::Launch {
                    partition,
                    level: a.level,
                    remote,
                    barrier,
                };
                mb.round.send_now(a.worker, msg);
            }
        }
    }

    /// Records a finished task.
    fn done(&mut self, ctx: &Context, stage: usize, metrics: TaskMetrics, changes: &[BlockChange]) {
        let w = metrics.worker;
        let run = Duration::from_micros(metrics.run_us);
        ctx.inner.registry.borrow_mut().apply(w, changes, run);
        let slot = self.run_times.entry(w).or_insert((Duration::ZERO, 0));
        slot.0 += run;
        slot.1 += 1;
        self.running.remove(&w);
        self.free.push(w);
        if metrics.failed {
            if self.barrier {
                self.attempt_failed = true;
            } else {
                self.failed = true;
            }
        }
        if let Some(p) = &mut self.progress {
            p.task_done(metrics.locality);
        }
        ctx.log_event(&Event::TaskEnd {
            stage,
            task: metrics.clone(),
        });
        self.metrics.push(metrics);
        if self.barrier && self.attempt_failed && self.running.is_empty() {
            // Spark's barrier mode: one failed task restarts every task of the stage.
            self.attempt_failed = false;
            if self.attempt + 1 < self.max_attempts {
                self.attempt += 1;
                tracing::warn!(
                    stage,
                    attempt = self.attempt,
                    "restarting the barrier stage"
                );
                self.set.repend_all();
            } else {
                self.failed = true;
            }
        }
    }
}

/// One stage being run on this worker.
pub(crate) struct StageRun {
    ctx: Context,
    mailbox: Rc<RefCell<Mailbox>>,
    coordinator: Option<Rc<RefCell<Coordinator>>>,
    stage: usize,
    name: String,
    tasks: usize,
    started: Instant,
    idle_since: Instant,
    asked: bool,
    ended: Option<Vec<TaskMetrics>>,
    _guard: MailboxGuard,
}

impl StageRun {
    /// Opens the stage on this worker (every worker calls it, in the same order). The
    /// coordinator places `partitions` of `rdd` from the block registry and the lineage.
    pub(crate) fn start(
        ctx: &Context,
        stage: usize,
        name: &str,
        rdd: &Rc<dyn RddBase>,
        partitions: &[usize],
    ) -> Result<StageRun> {
        let me = ctx.worker_index();
        let barrier = is_barrier_stage(rdd);
        if barrier && partitions.len() > ctx.num_workers() {
            // Every worker sees the same numbers, so every worker fails here alike.
            return Err(EngineError::InvalidArgument {
                operation: "barrier stage".into(),
                reason: format!(
                    "stage {stage} ({name}) has {} partitions but the application has {} \
                     workers, and a barrier stage runs all its tasks at once: repartition \
                     or coalesce to at most {} partitions, or start more workers",
                    partitions.len(),
                    ctx.num_workers(),
                    ctx.num_workers()
                ),
            });
        }
        let round = ctx.round::<SchedMsg>(&format!("stage-{stage}"));
        let mailbox = Rc::new(RefCell::new(Mailbox {
            round,
            inbox: VecDeque::new(),
            blocks: Arc::clone(&ctx.shared().blocks),
            me,
        }));
        let now = Instant::now();
        let coordinator = (me == 0).then(|| {
            let topo = ctx.topology();
            let peers = ctx.num_workers();
            let placements: Vec<Placement> = {
                let registry = ctx.inner.registry.borrow();
                partitions
                    .iter()
                    .map(|&p| registry.placement(rdd, p, topo, peers))
                    .collect()
            };
            let conf = ctx.conf();
            let policy = match conf.get("ember.scheduler.remoteBlock") {
                Some("fetch") => RemotePolicy::Fetch,
                Some("recompute") => RemotePolicy::Recompute,
                _ => RemotePolicy::Auto,
            };
            let bandwidth = conf
                .get_bytes("ember.scheduler.fetchBandwidth")
                .unwrap_or(200 << 20)
                .max(1) as f64;
            ctx.log_event(&Event::StageSubmitted {
                stage,
                name: name.to_string(),
                tasks: partitions.len(),
            });
            let mut c = Coordinator {
                set: TaskSet::new(placements, ctx.locality_waits(), topo.clone(), now),
                partitions: partitions.to_vec(),
                registered: vec![false; peers],
                free: Vec::new(),
                running: HashMap::new(),
                run_times: HashMap::new(),
                metrics: Vec::new(),
                failed: false,
                policy,
                bandwidth,
                own: None,
                progress: StageProgress::start(ctx.conf(), stage, name, partitions.len()),
                barrier,
                attempt: 0,
                attempt_failed: false,
                max_attempts: ctx.inner.max_failures.max(1) as u32,
            };
            c.register(me);
            Rc::new(RefCell::new(c))
        });
        CURRENT.with(|c| {
            *c.borrow_mut() = Some(Current {
                mailbox: Rc::clone(&mailbox),
                coordinator: coordinator.clone(),
                ctx: ctx.clone(),
                stage,
                barrier: None,
            })
        });
        Ok(StageRun {
            ctx: ctx.clone(),
            mailbox,
            coordinator,
            stage,
            name: name.to_string(),
            tasks: partitions.len(),
            started: now,
            idle_since: now,
            asked: false,
            ended: None,
            _guard: MailboxGuard,
        })
    }

    /// The next task for this worker, waiting (and serving fetches) until one is handed out;
    /// `None` once the stage is over.
    pub(crate) fn next_task(&mut self) -> Result<Option<Launch>> {
        if self.ended.is_some() {
            return Ok(None);
        }
        let mut mb = self.mailbox.borrow_mut();
        let coordinator = self.coordinator.clone();
        let mut coordinator = coordinator.as_ref().map(|c| c.borrow_mut());
        if coordinator.is_none() && !self.asked {
            self.asked = true;
            let me = mb.me;
            mb.round.send_now(0, SchedMsg::Ready { worker: me });
        }
        loop {
            let now = Instant::now();
            // One message at a time, collectives left queued: a barrier peer's message can
            // arrive before this worker's launch, and what follows a launch stays queued too.
            while let Some(msg) = mb.take(|m| !m.is_collective()) {
                match (msg, coordinator.as_deref_mut()) {
                    (SchedMsg::Ready { worker }, Some(c)) => c.register(worker),
                    (SchedMsg::Done { metrics, changes }, Some(c)) => {
                        c.done(&self.ctx, self.stage, metrics, &changes)
                    }
                    (
                        SchedMsg::Launch {
                            partition,
                            level,
                            remote,
                            barrier,
                        },
                        None,
                    ) => {
                        return Ok(Some(Launch {
                            partition,
                            level,
                            remote,
                            barrier,
                            waited: now.duration_since(self.idle_since),
                        }));
                    }
                    (SchedMsg::End { tasks }, None) => {
                        self.ended = Some(tasks);
                        return Ok(None);
                    }
                    _ => tracing::warn!(stage = self.stage, "unexpected scheduler message"),
                }
            }
            let mut park = PARK;
            if let Some(c) = coordinator.as_deref_mut() {
                c.schedule(&self.ctx, &mut mb, now);
                if let Some(mut own) = c.own.take() {
                    own.waited = now.duration_since(self.idle_since);
                    return Ok(Some(own));
                }
                if c.finished() {
                    let mut tasks = std::mem::take(&mut c.metrics);
                    tasks.sort_by_key(|t| t.partition);
                    let me = mb.me;
                    for w in (0..self.ctx.num_workers()).filter(|&w| w != me) {
                        mb.round.send_now(
                            w,
                            SchedMsg::End {
                                tasks: tasks.clone(),
                            },
                        );
                    }
                    if let Some(p) = c.progress.take() {
                        p.finish();
                    }
                    self.ended = Some(tasks);
                    return Ok(None);
                }
                if let Some(d) = c.set.time_to_deadline(now) {
                    park = park.min(d.max(Duration::from_micros(50)));
                }
            }
            mb.pump(park)?;
        }
    }

    /// Runs a task handed out by [`StageRun::next_task`] (its attempts, with the scheduler's
    /// plan for a remote block) and reports it done.
    pub(crate) fn run_task<R>(
        &mut self,
        launch: &Launch,
        body: impl FnMut(&Rc<TaskContext>) -> R,
    ) -> Result<std::result::Result<TaskSuccess<R>, TaskFailure>> {
        let io = Rc::new(TaskIo {
            remote: launch.remote,
            ..TaskIo::default()
        });
        let started = Instant::now();
        // A barrier task gets one attempt, numbered by the stage attempt: the stage restarts
        // as a whole (its tasks' collectives cannot resume half-way).
        let (first, attempts) = match &launch.barrier {
            Some(b) => (b.attempt as usize, 1),
            None => (0, self.ctx.inner.max_failures),
        };
        set_current_barrier(launch.barrier.clone());
        let outcome = run_task(self.stage, launch.partition, first, attempts, &io, body);
        set_current_barrier(None);
        if let (Some(b), Err(failure)) = (&launch.barrier, &outcome) {
            // Peers blocked in a collective with this task stop waiting for it.
            let mut mb = self.mailbox.borrow_mut();
            for (rank, &w) in b.workers.iter().enumerate() {
                if rank as u32 != b.rank {
                    let msg = SchedMsg::BarrierAbort {
                        attempt: b.attempt,
                        rank: b.rank,
                        reason: failure.message.clone(),
                    };
                    mb.round.send_now(w as usize, msg);
                }
            }
        }
        self.task_done(launch, &io, started.elapsed(), outcome.is_err())?;
        Ok(outcome)
    }

    /// Reports a finished task (this worker is free again).
    fn task_done(
        &mut self,
        launch: &Launch,
        io: &TaskIo,
        run: Duration,
        failed: bool,
    ) -> Result<()> {
        let me = self.ctx.worker_index();
        let metrics = TaskMetrics {
            partition: launch.partition,
            worker: me,
            locality: launch.level,
            scheduler_delay_us: launch.waited.as_micros() as u64,
            run_us: run.as_micros() as u64,
            bytes_read_local: io.bytes_local.get(),
            bytes_read_remote: io.bytes_remote.get(),
            block_source: io.source.get(),
            failed,
        };
        let changes = self.ctx.shared().blocks.take_changes(me);
        self.idle_since = Instant::now();
        match &self.coordinator {
            Some(c) => c
                .borrow_mut()
                .done(&self.ctx, self.stage, metrics, &changes),
            None => {
                let msg = SchedMsg::Done { metrics, changes };
                self.mailbox.borrow_mut().round.send_now(0, msg);
            }
        }
        Ok(())
    }

    /// Closes the stage's mailbox once every worker has, and returns the stage's statistics.
    pub(crate) fn finish(self) -> Result<StageStats> {
        drop(self._guard);
        let duration = self.started.elapsed();
        let tasks = self.ended.unwrap_or_default();
        if self.coordinator.is_some() {
            self.ctx.log_event(&Event::StageCompleted {
                stage: self.stage,
                name: self.name.clone(),
                duration_us: duration.as_micros() as u64,
            });
        }
        let mailbox = Rc::try_unwrap(self.mailbox)
            .map_err(|_| EngineError::InvalidArgument {
                operation: "stage".into(),
                reason: "the stage mailbox is still in use".into(),
            })?
            .into_inner();
        mailbox.round.finish()?;
        Ok(StageStats {
            stage: self.stage,
            name: self.name,
            tasks: self.tasks,
            duration_us: duration.as_micros() as u64,
            task_metrics: tasks,
        })
    }
}

/// Records the barrier task about to run on this thread (or that none is).
fn set_current_barrier(barrier: Option<BarrierLaunch>) {
    CURRENT.with(|c| {
        if let Some(c) = c.borrow_mut().as_mut() {
            c.barrier = barrier;
        }
    });
}

/// Clears the thread's mailbox when the stage ends, on success or error.
struct MailboxGuard;

impl Drop for MailboxGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}
