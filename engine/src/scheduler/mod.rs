//! Running jobs: an action's lineage is cut into stages at shuffle dependencies; the missing
//! shuffle map stages run first (parents before children), then the result stage. Within a stage
//! worker 0 hands tasks to free workers by locality with delay scheduling; results and failures
//! travel to every worker, so every worker returns the same answer or the same error, and every
//! worker gets every task's metrics ([`JobStats`]).
//!
//! The parts, one per module:
//! - `stage`: one stage's loop on every worker (open, take tasks, run them, report, close);
//! - `coordinator`: worker 0's state and decisions for a stage (offer rounds, fetch or
//!   recompute, finished tasks, barrier restarts, the end of the stage);
//! - `task_set`: delay scheduling of a stage's pending tasks; `locality`: locality levels,
//!   placements and the cluster's topology; `registry`: which worker caches which block;
//! - `mailbox`: the stage's message round and its messages; `during_task`: what the scheduler
//!   does from inside a running task (polling, block fetches, a barrier task's mailbox);
//! - `collective`: the collectives of a barrier stage's tasks ([`BarrierTask`]); `messages`:
//!   their point-to-point messages;
//! - `metrics`, `events`, `summary`, `progress`: task and stage statistics, the event log and
//!   its summaries, the console progress bar.

mod collective;
mod coordinator;
mod during_task;
mod events;
mod locality;
mod mailbox;
mod messages;
mod metrics;
mod progress;
mod registry;
mod stage;
mod summary;
mod task_set;

pub use collective::{BarrierTask, CommStats, ReduceOp};
pub(crate) use during_task::{Polling, TaskInput};
pub(crate) use events::EventLog;
pub use events::{read_event_log, Event, LogLine};
pub(crate) use locality::Topology;
pub use locality::{Locality, LocalityWaits};
pub use metrics::{last_job_stats, BlockSource, JobStats, StageStats, TaskMetrics};
pub(crate) use registry::BlockRegistry;
pub(crate) use stage::StageRun;
pub use summary::{summarize, JobSummary, LogSummary, StageSummary};

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use timely::ExchangeData;

use crate::accumulator::AccUpdate;
use crate::context::Context;
use crate::data::Data;
use crate::error::{EngineError, Result, TaskFailure};
use crate::rdd::{Dependency, Rdd, RddBase};
use crate::shuffle::ShuffleDepBase;
use crate::task::{in_task, TaskContext};

/// The shuffle dependencies `rdd` needs that have not run yet, parents first. A completed
/// shuffle hides its whole upstream lineage (Spark's skipped stages).
pub(crate) fn missing_shuffles(rdd: &Rc<dyn RddBase>) -> Vec<Rc<dyn ShuffleDepBase>> {
    // A depth-first walk with an explicit stack (lineages can be thousands of steps deep), in
    // the order a recursive walk would take: a shuffle is listed after its parent's shuffles.
    enum Step {
        Visit(Rc<dyn RddBase>),
        Shuffle(Rc<dyn ShuffleDepBase>),
        Emit(Rc<dyn ShuffleDepBase>),
    }
    let (mut seen, mut seen_shuffles) = (HashSet::new(), HashSet::new());
    let mut out = Vec::new();
    let mut stack = vec![Step::Visit(Rc::clone(rdd))];
    while let Some(step) = stack.pop() {
        match step {
            Step::Emit(s) => out.push(s),
            Step::Shuffle(s) => {
                if !s.is_complete() && seen_shuffles.insert(s.shuffle_id()) {
                    let parent = s.parent();
                    stack.push(Step::Emit(s));
                    stack.push(Step::Visit(parent));
                }
            }
            Step::Visit(rdd) => {
                if !seen.insert(rdd.id()) {
                    continue;
                }
                let next: Vec<Step> = rdd
                    .dependencies()
                    .into_iter()
                    .map(|dep| match dep {
                        Dependency::Shuffle(s) => Step::Shuffle(s),
                        Dependency::OneToOne(p)
                        | Dependency::Range { parent: p, .. }
                        | Dependency::Groups { parent: p, .. } => Step::Visit(p),
                    })
                    .collect();
                stack.extend(next.into_iter().rev());
            }
        }
    }
    out
}

#[derive(Clone, Serialize, Deserialize)]
struct ResultMsg<R> {
    partition: usize,
    /// The task's attempt: a restarted barrier stage sends a partition's result once per
    /// stage attempt, and the last one counts.
    attempt: usize,
    outcome: Result<R, TaskFailure>,
    acc: Vec<AccUpdate>,
}

impl<T: Data> Rdd<T> {
    /// Runs `func` over every partition and returns the per-partition results in order.
    pub(crate) fn run_partitions<R: ExchangeData + Clone>(
        &self,
        action: &str,
        func: impl Fn(&Rc<TaskContext>, TaskInput<T>) -> R,
    ) -> Result<Vec<R>> {
        let all: Vec<usize> = (0..self.num_partitions()).collect();
        self.run_partitions_subset(action, &all, func)
    }

    /// Runs `func` over the given partitions (ascending) and returns their results in order.
    pub(crate) fn run_partitions_subset<R: ExchangeData + Clone>(
        &self,
        action: &str,
        partitions: &[usize],
        func: impl Fn(&Rc<TaskContext>, TaskInput<T>) -> R,
    ) -> Result<Vec<R>> {
        if in_task() {
            return Err(EngineError::InvalidArgument {
                operation: action.into(),
                reason: "actions cannot run inside a task (a closure passed to a transformation or action)".into(),
            });
        }
        let ctx: &Context = self.context();
        let job = ctx.new_job_id();
        let started = Instant::now();
        ctx.log_event(&Event::JobStart {
            job,
            action: action.to_string(),
        });
        let mut stats = JobStats {
            job,
            action: action.to_string(),
            stages: Vec::new(),
        };
        let outcome = self.run_job(ctx, job, action, partitions, &func, &mut stats);
        ctx.log_event(&Event::JobEnd {
            job,
            duration_us: started.elapsed().as_micros() as u64,
            error: outcome.as_ref().err().map(|e| e.to_string()),
        });
        ctx.flush_events();
        metrics::set_last_job(stats);
        let results = outcome?;
        // Checkpoints requested in this lineage are written by a second job, as in Spark.
        crate::checkpoint::after_job(&self.base())?;
        Ok(results)
    }

    /// The stages of one job: missing shuffle map stages, then the result stage.
    fn run_job<R: ExchangeData + Clone>(
        &self,
        ctx: &Context,
        job: usize,
        action: &str,
        partitions: &[usize],
        func: &impl Fn(&Rc<TaskContext>, TaskInput<T>) -> R,
        stats: &mut JobStats,
    ) -> Result<Vec<R>> {
        for dep in missing_shuffles(&self.base()) {
            let stage = ctx.new_stage_id();
            let name = format!("shuffle map for {}", dep.op());
            tracing::debug!(job, stage, op = dep.op(), "shuffle map stage");
            stats
                .stages
                .push(dep.run_map_stage(ctx, job, stage, &name)?);
        }

        let stage = ctx.new_stage_id();
        let stage_name = format!("result for {action}");
        let mut run = StageRun::start(ctx, stage, &stage_name, &self.base(), partitions)?;
        let mut round = ctx.round::<ResultMsg<R>>(&format!("result-{job}"));
        while let Some(launch) = run.next_task()? {
            let split = launch.partition;
            let outcome = run.run_task(&launch, |tc| {
                func(tc, Polling::new(self.node.iterator(split, tc)))
            })?;
            let msg = match outcome {
                Ok(ok) => ResultMsg {
                    partition: split,
                    attempt: ok.attempt,
                    outcome: Ok(ok.value),
                    acc: ok.acc_updates,
                },
                Err(failure) => ResultMsg {
                    partition: split,
                    attempt: failure.attempts.saturating_sub(1),
                    outcome: Err(failure),
                    acc: Vec::new(),
                },
            };
            round.send_to_all(msg);
        }
        stats.stages.push(run.finish()?);
        let mut msgs = round.finish()?;
        msgs.sort_by_key(|m| (m.partition, m.attempt));
        // One result per partition: its last attempt's.
        msgs.dedup_by(|later, earlier| {
            if later.partition == earlier.partition {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        let mut results = Vec::with_capacity(msgs.len());
        let mut failure = None;
        for msg in msgs {
            ctx.apply_acc_updates(&msg.acc)?;
            match msg.outcome {
                Ok(r) => results.push(r),
                Err(f) => {
                    failure.get_or_insert(f);
                }
            }
        }
        if let Some(f) = failure {
            return Err(EngineError::JobFailed {
                job,
                stage,
                stage_name,
                partition: f.partition,
                attempts: f.attempts,
                cause: f.message,
            });
        }
        Ok(results)
    }
}
