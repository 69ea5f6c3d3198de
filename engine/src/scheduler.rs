//! Running jobs: an action's lineage is cut into stages at shuffle dependencies; the missing
//! shuffle map stages run first (parents before children), then the result stage. Each worker
//! runs the tasks of the partitions that live with it; results and failures travel to every
//! worker, so every worker returns the same answer or the same error.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use timely::ExchangeData;

use crate::accumulator::AccUpdate;
use crate::context::Context;
use crate::data::Data;
use crate::error::{EngineError, Result, TaskFailure};
use crate::rdd::{BoxIter, Dependency, Rdd, RddBase};
use crate::shuffle::ShuffleDepBase;
use crate::task::{in_task, run_task, TaskContext};

/// What a finished job did, for tests and tuning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStats {
    /// The job's number within this context.
    pub job: usize,
    /// The action that ran it.
    pub action: String,
    /// Stages run, in order: shuffle map stages, then the result stage.
    pub stages: Vec<StageStats>,
}

/// One stage of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageStats {
    /// The stage's number within this context.
    pub stage: usize,
    /// `shuffle map for <op>` or `result for <action>`.
    pub name: String,
    /// Tasks (partitions) in the stage, over all workers.
    pub tasks: usize,
}

thread_local! {
    static LAST_JOB: RefCell<Option<JobStats>> = const { RefCell::new(None) };
}

/// The statistics of the last job this worker ran.
pub fn last_job_stats() -> Option<JobStats> {
    LAST_JOB.with(|j| j.borrow().clone())
}

/// The shuffle dependencies `rdd` needs that have not run yet, parents first. A completed
/// shuffle hides its whole upstream lineage (Spark's skipped stages).
pub(crate) fn missing_shuffles(rdd: &Rc<dyn RddBase>) -> Vec<Rc<dyn ShuffleDepBase>> {
    fn visit(
        rdd: &Rc<dyn RddBase>,
        seen: &mut HashSet<usize>,
        seen_shuffles: &mut HashSet<usize>,
        out: &mut Vec<Rc<dyn ShuffleDepBase>>,
    ) {
        if !seen.insert(rdd.id()) {
            return;
        }
        for dep in rdd.dependencies() {
            match dep {
                Dependency::Shuffle(s) => {
                    if !s.is_complete() && seen_shuffles.insert(s.shuffle_id()) {
                        visit(&s.parent(), seen, seen_shuffles, out);
                        out.push(s);
                    }
                }
                Dependency::OneToOne(p)
                | Dependency::Range { parent: p, .. }
                | Dependency::Groups { parent: p, .. } => visit(&p, seen, seen_shuffles, out),
            }
        }
    }
    let mut out = Vec::new();
    visit(rdd, &mut HashSet::new(), &mut HashSet::new(), &mut out);
    out
}

#[derive(Clone, Serialize, Deserialize)]
struct ResultMsg<R> {
    partition: usize,
    outcome: Result<R, TaskFailure>,
    acc: Vec<AccUpdate>,
}

impl<T: Data> Rdd<T> {
    /// Runs `func` over every partition and returns the per-partition results in order.
    pub(crate) fn run_partitions<R: ExchangeData + Clone>(
        &self,
        action: &str,
        func: impl Fn(&Rc<TaskContext>, BoxIter<T>) -> R,
    ) -> Result<Vec<R>> {
        let all: Vec<usize> = (0..self.num_partitions()).collect();
        self.run_partitions_subset(action, &all, func)
    }

    /// Runs `func` over the given partitions (ascending) and returns their results in order.
    pub(crate) fn run_partitions_subset<R: ExchangeData + Clone>(
        &self,
        action: &str,
        partitions: &[usize],
        func: impl Fn(&Rc<TaskContext>, BoxIter<T>) -> R,
    ) -> Result<Vec<R>> {
        if in_task() {
            return Err(EngineError::InvalidArgument {
                operation: action.into(),
                reason: "actions cannot run inside a task (a closure passed to a transformation or action)".into(),
            });
        }
        let ctx: &Context = self.context();
        let job = ctx.new_job_id();
        let mut stats = JobStats {
            job,
            action: action.to_string(),
            stages: Vec::new(),
        };
        for dep in missing_shuffles(&self.base()) {
            let stage = ctx.new_stage_id();
            tracing::debug!(job, stage, op = dep.op(), "shuffle map stage");
            stats.stages.push(StageStats {
                stage,
                name: format!("shuffle map for {}", dep.op()),
                tasks: dep.parent().num_partitions(),
            });
            dep.run_map_stage(ctx, job, stage)?;
        }

        let stage = ctx.new_stage_id();
        let stage_name = format!("result for {action}");
        stats.stages.push(StageStats {
            stage,
            name: stage_name.clone(),
            tasks: partitions.len(),
        });
        let me = ctx.worker_index();
        let max_failures = ctx.inner.max_failures;
        let mut round = ctx.round::<ResultMsg<R>>(&format!("result-{job}"));
        for &split in partitions {
            if self.node.task_worker(split) != me {
                continue;
            }
            let outcome = run_task(stage, split, max_failures, |tc| {
                func(tc, self.node.iterator(split, tc))
            });
            let msg = match outcome {
                Ok(ok) => ResultMsg {
                    partition: split,
                    outcome: Ok(ok.value),
                    acc: ok.acc_updates,
                },
                Err(failure) => ResultMsg {
                    partition: split,
                    outcome: Err(failure),
                    acc: Vec::new(),
                },
            };
            round.send_to_all(msg);
        }
        let mut msgs = round.finish()?;
        msgs.sort_by_key(|m| m.partition);
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
        LAST_JOB.with(|j| *j.borrow_mut() = Some(stats));
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
        // Checkpoints requested in this lineage are written by a second job, as in Spark.
        crate::checkpoint::after_job(&self.base())?;
        Ok(results)
    }
}
