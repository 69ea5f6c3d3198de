//! The coordinator of one stage: worker 0's state and decisions while the stage runs.
//!
//! It places the stage's tasks ([`TaskSet`]), registers workers as they join, hands tasks to
//! free workers in offer rounds (all at once for a barrier stage), plans how a task away from
//! its cached block reads it (fetch or recompute), records finished tasks and what they cached
//! (the block registry), restarts a barrier stage whose task failed, and ends the stage for
//! everyone with every task's metrics. [`StageRun`](super::stage::StageRun) drives it from the
//! stage loop, and the in-task poll ([`super::during_task`]) while worker 0 runs a task of its
//! own.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::blocks::BlockChange;
use crate::context::Context;
use crate::rdd::RddBase;
use crate::task::RemoteRead;

use super::events::Event;
use super::locality::Placement;
use super::mailbox::{BarrierLaunch, Mailbox, SchedMsg};
use super::metrics::TaskMetrics;
use super::progress::StageProgress;
use super::stage::Launch;
use super::task_set::TaskSet;

/// How a task away from its cached block reads it (`ember.scheduler.remoteBlock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RemotePolicy {
    Auto,
    Fetch,
    Recompute,
}

/// The coordinator's state for one stage.
pub(super) struct Coordinator {
    set: TaskSet,
    partitions: Vec<usize>,
    registered: Vec<bool>,
    free: Vec<usize>,
    /// Running workers, and since when.
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
    /// Worker 0's coordinator for `partitions` of `rdd`, placed from the block registry and
    /// the lineage, with worker 0 registered; logs the stage's submission.
    pub(super) fn new(
        ctx: &Context,
        stage: usize,
        name: &str,
        rdd: &Rc<dyn RddBase>,
        partitions: &[usize],
        barrier: bool,
        now: Instant,
    ) -> Coordinator {
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
        c.register(ctx.worker_index());
        c
    }

    fn all_registered(&self) -> bool {
        self.registered.iter().all(|&r| r)
    }

    pub(super) fn register(&mut self, w: usize) {
        if let Some(r) = self.registered.get_mut(w) {
            if !*r {
                *r = true;
                self.free.push(w);
            }
        }
    }

    /// Whether the stage is over: every task done (or one failed for good), none running.
    pub(super) fn finished(&self) -> bool {
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
    pub(super) fn schedule(&mut self, ctx: &Context, mb: &mut Mailbox, now: Instant) {
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
    pub(super) fn done(
        &mut self,
        ctx: &Context,
        stage: usize,
        metrics: TaskMetrics,
        changes: &[BlockChange],
    ) {
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

    /// The task the last offer round gave this worker (the coordinator's own), if any.
    pub(super) fn take_own(&mut self) -> Option<Launch> {
        self.own.take()
    }

    /// How long until delay scheduling can loosen the allowed locality level, if it can.
    pub(super) fn time_to_deadline(&self, now: Instant) -> Option<Duration> {
        self.set.time_to_deadline(now)
    }

    /// Ends the finished stage: sends every other worker the tasks' metrics (by partition) and
    /// returns them.
    pub(super) fn end(&mut self, mb: &mut Mailbox, workers: usize) -> Vec<TaskMetrics> {
        let mut tasks = std::mem::take(&mut self.metrics);
        tasks.sort_by_key(|t| t.partition);
        let me = mb.me;
        for w in (0..workers).filter(|&w| w != me) {
            mb.round.send_now(
                w,
                SchedMsg::End {
                    tasks: tasks.clone(),
                },
            );
        }
        if let Some(p) = self.progress.take() {
            p.finish();
        }
        tasks
    }
}
