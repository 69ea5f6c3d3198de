//! Running one stage's tasks on this worker, over the stage's mailbox round.
//!
//! Every worker opens the stage ([`StageRun::start`]), asks for tasks ([`StageRun::next_task`]),
//! runs the tasks it is given ([`StageRun::run_task`]) and reports them done, until the stage
//! ends for everyone; then it closes the mailbox ([`StageRun::finish`]). Worker 0 also holds
//! the stage's [`Coordinator`], which places the tasks with delay scheduling and hands them out
//! as workers become free; this loop feeds it the messages that arrive between tasks, and the
//! in-task poll ([`super::during_task`]) the ones that arrive during worker 0's own tasks.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::error::TaskFailure;
use crate::error::{EngineError, Result};
use crate::rdd::{Dependency, RddBase};
use crate::task::{run_task, RemoteRead, TaskContext, TaskIo, TaskSuccess};

use super::coordinator::Coordinator;
use super::during_task::{self, set_current_barrier, CurrentGuard};
use super::events::Event;
use super::locality::Locality;
use super::mailbox::{BarrierLaunch, Mailbox, SchedMsg};
use super::metrics::{StageStats, TaskMetrics};

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
pub(super) const PARK: Duration = Duration::from_millis(1);

/// Whether the stage computing `partitions` of `rdd` is a barrier stage: a barrier RDD in its
/// narrow lineage (shuffles end a stage). An error when its tasks could not each compute, at
/// their rank, one partition of every barrier RDD in it, among all of that RDD's partitions:
/// the job computes only some partitions (`first`, `take`, `zip_with_index`...), or a union or
/// a coalesce lies between a barrier RDD and the stage's result. Spark refuses the same.
fn barrier_stage(
    rdd: &Rc<dyn RddBase>,
    partitions: &[usize],
    stage: usize,
    name: &str,
) -> Result<bool> {
    let refuse = |reason: String| EngineError::InvalidArgument {
        operation: "barrier stage".into(),
        reason: format!("stage {stage} ({name}) {reason}"),
    };
    // Each node with the first regrouping node (a union or coalesce) on the way to it, if any.
    let mut stack: Vec<(Rc<dyn RddBase>, Option<Rc<dyn RddBase>>)> = vec![(Rc::clone(rdd), None)];
    let mut seen = HashSet::new();
    let mut barrier = false;
    while let Some((r, regrouped)) = stack.pop() {
        if !seen.insert((r.id(), regrouped.is_some())) {
            continue;
        }
        if r.is_barrier() {
            barrier = true;
            if let Some(via) = &regrouped {
                return Err(refuse(format!(
                    "reads the barrier RDD made at {} through a {} (made at {}), so its tasks \
                     would not each compute one partition of it at their rank: run the \
                     barrier map_partitions after the {}, or repartition in between",
                    r.call_site(),
                    via.op(),
                    via.call_site(),
                    via.op()
                )));
            }
        }
        for dep in r.dependencies() {
            match dep {
                Dependency::OneToOne(p) => stack.push((p, regrouped.clone())),
                Dependency::Range { parent: p, .. } | Dependency::Groups { parent: p, .. } => {
                    let via = regrouped.clone().unwrap_or_else(|| Rc::clone(&r));
                    stack.push((p, Some(via)));
                }
                Dependency::Shuffle(_) => {}
            }
        }
    }
    if barrier && partitions.len() != rdd.num_partitions() {
        return Err(refuse(format!(
            "computes {} of the {} partitions of a barrier stage, whose tasks run together \
             and see each other: run an action that computes every partition (collect, \
             count...), or repartition after the barrier map_partitions so that this action \
             runs in a stage of its own",
            partitions.len(),
            rdd.num_partitions()
        )));
    }
    Ok(barrier)
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
    _guard: CurrentGuard,
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
        let barrier = barrier_stage(rdd, partitions, stage, name)?;
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
            let c = Coordinator::new(ctx, stage, name, rdd, partitions, barrier, now);
            Rc::new(RefCell::new(c))
        });
        let guard = during_task::enter(&mailbox, coordinator.as_ref(), ctx, stage);
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
            _guard: guard,
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
                if let Some(mut own) = c.take_own() {
                    own.waited = now.duration_since(self.idle_since);
                    return Ok(Some(own));
                }
                if c.finished() {
                    self.ended = Some(c.end(&mut mb, self.ctx.num_workers()));
                    return Ok(None);
                }
                if let Some(d) = c.time_to_deadline(now) {
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
            fetch: launch.remote.map(|_| {
                Rc::new(super::during_task::MailboxFetch) as Rc<dyn crate::task::BlockFetch>
            }),
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
