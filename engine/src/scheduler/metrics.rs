//! What jobs, stages and tasks did: where each task ran, at which locality, how long it waited
//! and ran, and where the cached data it read came from.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::locality::Locality;

pub use crate::task::BlockSource;

/// One task's metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMetrics {
    /// The partition the task computed.
    pub partition: usize,
    /// The worker that ran it.
    pub worker: usize,
    /// Its locality on that worker.
    pub locality: Locality,
    /// Microseconds the worker waited between asking for work and starting this task
    /// (delay scheduling and messaging).
    pub scheduler_delay_us: u64,
    /// Microseconds the task ran (all attempts).
    pub run_us: u64,
    /// Bytes of cached blocks read from this process's block manager.
    pub bytes_read_local: u64,
    /// Bytes of cached blocks fetched from another process.
    pub bytes_read_remote: u64,
    /// Where the cached block it read came from, when it read one that was cached somewhere.
    pub block_source: Option<BlockSource>,
    /// Whether the task failed (after its retries).
    pub failed: bool,
}

/// One stage of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageStats {
    /// The stage's number within this context.
    pub stage: usize,
    /// `shuffle map for <op>` or `result for <action>`.
    pub name: String,
    /// Tasks (partitions) in the stage, over all workers.
    pub tasks: usize,
    /// Wall-clock microseconds from submission to completion.
    pub duration_us: u64,
    /// Every task that ran, in partition order.
    pub task_metrics: Vec<TaskMetrics>,
}

impl StageStats {
    /// How many tasks ran at each locality level.
    pub fn locality_mix(&self) -> BTreeMap<Locality, usize> {
        let mut mix = BTreeMap::new();
        for t in &self.task_metrics {
            *mix.entry(t.locality).or_insert(0) += 1;
        }
        mix
    }

    /// How many tasks each worker ran.
    pub fn tasks_per_worker(&self) -> BTreeMap<usize, usize> {
        let mut per = BTreeMap::new();
        for t in &self.task_metrics {
            *per.entry(t.worker).or_insert(0) += 1;
        }
        per
    }

    /// How many tasks got their cached block from each source.
    pub fn block_sources(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in self.task_metrics.iter().filter_map(|t| t.block_source) {
            *out.entry(s.name().to_string()).or_insert(0) += 1;
        }
        out
    }
}

/// What a finished job did, for tests and tuning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStats {
    /// The job's number within this context.
    pub job: usize,
    /// The action that ran it.
    pub action: String,
    /// Stages run, in order: shuffle map stages, then the result stage.
    pub stages: Vec<StageStats>,
}

impl JobStats {
    /// The locality mix over all of the job's stages.
    pub fn locality_mix(&self) -> BTreeMap<Locality, usize> {
        let mut mix = BTreeMap::new();
        for s in &self.stages {
            for (l, n) in s.locality_mix() {
                *mix.entry(l).or_insert(0) += n;
            }
        }
        mix
    }

    /// The result stage (the last one).
    pub fn result_stage(&self) -> Option<&StageStats> {
        self.stages.last()
    }
}

thread_local! {
    static LAST_JOB: RefCell<Option<JobStats>> = const { RefCell::new(None) };
}

/// The statistics of the last job this worker ran (every worker gets every task's metrics).
pub fn last_job_stats() -> Option<JobStats> {
    LAST_JOB.with(|j| j.borrow().clone())
}

pub(crate) fn set_last_job(stats: JobStats) {
    LAST_JOB.with(|j| *j.borrow_mut() = Some(stats));
}
