//! A summary of an event log: per job and stage, how many tasks ran where, at which locality,
//! how long they waited and ran, and where their cached data came from (`ember-events`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::events::{Event, LogLine};
use super::metrics::TaskMetrics;

/// What one stage did, from its task-end events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageSummary {
    /// The stage's number.
    pub stage: usize,
    /// Its name.
    pub name: String,
    /// Tasks that ended.
    pub tasks: usize,
    /// Tasks that failed.
    pub failed: usize,
    /// Wall-clock milliseconds, when the stage completed.
    pub duration_ms: Option<f64>,
    /// Tasks per locality level.
    pub locality: BTreeMap<String, usize>,
    /// Tasks per worker.
    pub workers: BTreeMap<usize, usize>,
    /// Median and largest task run time, milliseconds.
    pub run_ms: (f64, f64),
    /// Median and largest scheduler delay, milliseconds.
    pub delay_ms: (f64, f64),
    /// Cached bytes read in the task's own process.
    pub bytes_local: u64,
    /// Cached bytes fetched from other processes.
    pub bytes_remote: u64,
    /// Tasks per cached-block source (`local`, `fetched`, `recomputed`).
    pub block_sources: BTreeMap<String, usize>,
}

/// What one job did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobSummary {
    /// The job's number.
    pub job: usize,
    /// The action.
    pub action: String,
    /// Wall-clock milliseconds, when it ended.
    pub duration_ms: Option<f64>,
    /// The error that failed it.
    pub error: Option<String>,
    /// Its stages, in order.
    pub stages: Vec<StageSummary>,
}

/// The summary of a whole log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LogSummary {
    /// The application's id.
    pub app_id: String,
    /// Workers over all processes.
    pub workers: usize,
    /// The configured waits (process, node), milliseconds.
    pub locality_wait_ms: (u64, u64),
    /// Jobs in order.
    pub jobs: Vec<JobSummary>,
    /// Tasks per locality level over the whole application.
    pub locality: BTreeMap<String, usize>,
}

fn median_max(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

fn stage_summary(stage: usize, name: String, tasks: &[TaskMetrics]) -> StageSummary {
    let mut s = StageSummary {
        stage,
        name,
        tasks: tasks.len(),
        ..StageSummary::default()
    };
    for t in tasks {
        *s.locality.entry(t.locality.name().to_string()).or_insert(0) += 1;
        *s.workers.entry(t.worker).or_insert(0) += 1;
        s.failed += usize::from(t.failed);
        s.bytes_local += t.bytes_read_local;
        s.bytes_remote += t.bytes_read_remote;
        if let Some(src) = t.block_source {
            *s.block_sources.entry(src.name().to_string()).or_insert(0) += 1;
        }
    }
    s.run_ms = median_max(tasks.iter().map(|t| t.run_us as f64 / 1e3).collect());
    s.delay_ms = median_max(
        tasks
            .iter()
            .map(|t| t.scheduler_delay_us as f64 / 1e3)
            .collect(),
    );
    s
}

/// Summarizes the lines of an event log (in the order they were written).
pub fn summarize(lines: &[LogLine]) -> LogSummary {
    let mut out = LogSummary::default();
    let mut tasks: BTreeMap<usize, Vec<TaskMetrics>> = BTreeMap::new();
    let mut names: BTreeMap<usize, String> = BTreeMap::new();
    let mut durations: BTreeMap<usize, f64> = BTreeMap::new();
    let mut job_stages: Vec<(JobSummary, Vec<usize>)> = Vec::new();
    for line in lines {
        match &line.event {
            Event::ApplicationStart {
                app_id,
                workers,
                locality_wait_process_ms,
                locality_wait_node_ms,
                ..
            } => {
                out.app_id = app_id.clone();
                out.workers = *workers;
                out.locality_wait_ms = (*locality_wait_process_ms, *locality_wait_node_ms);
            }
            Event::JobStart { job, action } => job_stages.push((
                JobSummary {
                    job: *job,
                    action: action.clone(),
                    ..JobSummary::default()
                },
                Vec::new(),
            )),
            Event::StageSubmitted { stage, name, .. } => {
                names.insert(*stage, name.clone());
                if let Some((_, stages)) = job_stages.last_mut() {
                    stages.push(*stage);
                }
            }
            Event::TaskEnd { stage, task } => tasks.entry(*stage).or_default().push(task.clone()),
            Event::StageCompleted {
                stage, duration_us, ..
            } => {
                durations.insert(*stage, *duration_us as f64 / 1e3);
            }
            Event::JobEnd {
                job,
                duration_us,
                error,
            } => {
                if let Some((j, _)) = job_stages.iter_mut().rev().find(|(j, _)| j.job == *job) {
                    j.duration_ms = Some(*duration_us as f64 / 1e3);
                    j.error = error.clone();
                }
            }
        }
    }
    for (mut job, stages) in job_stages {
        for stage in stages {
            let name = names.get(&stage).cloned().unwrap_or_default();
            let ts = tasks.remove(&stage).unwrap_or_default();
            let mut s = stage_summary(stage, name, &ts);
            s.duration_ms = durations.get(&stage).copied();
            for (l, n) in &s.locality {
                *out.locality.entry(l.clone()).or_insert(0) += n;
            }
            job.stages.push(s);
        }
        out.jobs.push(job);
    }
    out
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn counts<K: fmt::Display>(m: &BTreeMap<K, usize>) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for LogSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "application {}: {} workers; locality wait process {} ms, node {} ms",
            self.app_id, self.workers, self.locality_wait_ms.0, self.locality_wait_ms.1
        )?;
        for j in &self.jobs {
            let took = j
                .duration_ms
                .map_or("unfinished".to_string(), |d| format!("{d:.1} ms"));
            let status = j
                .error
                .as_deref()
                .map_or("ok".to_string(), |e| format!("FAILED: {e}"));
            writeln!(f, "job {} ({}): {took}, {status}", j.job, j.action)?;
            for s in &j.stages {
                let took = s.duration_ms.map_or("-".into(), |d| format!("{d:.1} ms"));
                writeln!(
                    f,
                    "  stage {} {}: {} tasks{} in {took}",
                    s.stage,
                    s.name,
                    s.tasks,
                    if s.failed > 0 {
                        format!(" ({} failed)", s.failed)
                    } else {
                        String::new()
                    }
                )?;
                writeln!(f, "    locality: {}", counts(&s.locality))?;
                writeln!(f, "    tasks per worker: {}", counts(&s.workers))?;
                writeln!(
                    f,
                    "    run ms median {:.1} max {:.1}; scheduler delay ms median {:.1} max {:.1}",
                    s.run_ms.0, s.run_ms.1, s.delay_ms.0, s.delay_ms.1
                )?;
                if s.bytes_local + s.bytes_remote > 0 || !s.block_sources.is_empty() {
                    writeln!(
                        f,
                        "    cached reads: {} local, {} fetched; blocks {}",
                        bytes(s.bytes_local),
                        bytes(s.bytes_remote),
                        counts(&s.block_sources)
                    )?;
                }
            }
        }
        writeln!(f, "all tasks by locality: {}", counts(&self.locality))
    }
}
