//! The event log (the role of Spark's event log): one JSON object per line for the application,
//! each job, stage and task, written by worker 0 when `ember.eventLog.dir` is set, and read back
//! by [`read_event_log`] for summaries (`ember-submit events FILE`).
//!
//! A local directory gets `<app>.jsonl`, appended and flushed as events happen. At a URL
//! (`s3://...`, `memory://...`) the log is written whole, as one object, at the end of every
//! job, so a reader always sees a complete prefix of the application's events.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ember_storage::{Location, StorageConfig};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

use super::metrics::TaskMetrics;

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event")]
pub enum Event {
    /// The application started.
    ApplicationStart {
        /// The application's id (also the log's file name).
        app_id: String,
        /// Workers over all processes.
        workers: usize,
        /// Worker threads per process.
        threads: usize,
        /// `ember.locality.wait.process` in milliseconds.
        locality_wait_process_ms: u64,
        /// `ember.locality.wait.node` in milliseconds.
        locality_wait_node_ms: u64,
    },
    /// An action started a job.
    JobStart {
        /// The job's number.
        job: usize,
        /// The action.
        action: String,
    },
    /// A stage's tasks were submitted.
    StageSubmitted {
        /// The stage's number.
        stage: usize,
        /// Its name.
        name: String,
        /// How many tasks it has.
        tasks: usize,
    },
    /// A task finished (successfully or not).
    TaskEnd {
        /// The task's stage.
        stage: usize,
        /// What it did.
        task: TaskMetrics,
    },
    /// A stage finished.
    StageCompleted {
        /// The stage's number.
        stage: usize,
        /// Its name.
        name: String,
        /// Wall-clock microseconds from submission.
        duration_us: u64,
    },
    /// A job finished.
    JobEnd {
        /// The job's number.
        job: usize,
        /// Wall-clock microseconds from its start.
        duration_us: u64,
        /// The error that failed it, if any.
        error: Option<String>,
    },
}

/// A line of the log: an event and when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

enum Sink {
    File(std::io::BufWriter<std::fs::File>),
    Url {
        location: Box<Location>,
        buffer: Vec<u8>,
    },
}

/// The open event log of an application (on worker 0).
pub(crate) struct EventLog {
    sink: Sink,
    /// Where it is written.
    pub target: String,
}

impl EventLog {
    /// Opens `<dir>/<app_id>.jsonl` at a local directory or a URL.
    pub(crate) fn open(dir: &str, app_id: &str, config: &StorageConfig) -> Result<EventLog> {
        let name = format!("{app_id}.jsonl");
        let local = match dir.strip_prefix("file://") {
            Some(path) => Some(PathBuf::from(path)),
            None if dir.contains("://") => None,
            None => Some(PathBuf::from(dir)),
        };
        match local {
            Some(dir) => {
                std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
                let path = dir.join(name);
                let file = std::fs::File::create(&path).map_err(|e| EngineError::io(&path, e))?;
                Ok(EventLog {
                    sink: Sink::File(std::io::BufWriter::new(file)),
                    target: path.display().to_string(),
                })
            }
            None => {
                let url = format!("{}/{name}", dir.trim_end_matches('/'));
                let location = Location::resolve(&url, config)?;
                Ok(EventLog {
                    sink: Sink::Url {
                        location: Box::new(location),
                        buffer: Vec::new(),
                    },
                    target: url,
                })
            }
        }
    }

    /// Appends an event (a failed write is logged, never fails the job).
    pub(crate) fn log(&mut self, event: &Event) {
        let line = LogLine {
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            event: event.clone(),
        };
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode an event");
                return;
            }
        };
        bytes.push(b'\n');
        let written = match &mut self.sink {
            Sink::File(w) => w.write_all(&bytes),
            Sink::Url { buffer, .. } => {
                buffer.extend_from_slice(&bytes);
                Ok(())
            }
        };
        if let Err(e) = written {
            tracing::warn!(target = %self.target, error = %e, "cannot write the event log");
        }
    }

    /// Makes what was logged visible: flushes the file, or writes the whole log to the URL.
    pub(crate) fn flush(&mut self) {
        let result = match &mut self.sink {
            Sink::File(w) => w.flush().map_err(|e| e.to_string()),
            Sink::Url { location, buffer } => {
                location.put(buffer.clone()).map_err(|e| e.to_string())
            }
        };
        if let Err(e) = result {
            tracing::warn!(target = %self.target, error = %e, "cannot write the event log");
        }
    }
}

/// Reads an event log from a local path or a URL.
pub fn read_event_log(path_or_url: &str, config: &StorageConfig) -> Result<Vec<LogLine>> {
    let text = if path_or_url.contains("://") && !path_or_url.starts_with("file://") {
        let bytes = Location::resolve(path_or_url, config)?.read_all()?;
        String::from_utf8(bytes.to_vec()).map_err(|e| EngineError::InvalidArgument {
            operation: format!("reading event log {path_or_url}"),
            reason: format!("not UTF-8: {e}"),
        })?
    } else {
        let path = Path::new(path_or_url.strip_prefix("file://").unwrap_or(path_or_url));
        std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EngineError::InvalidArgument {
                operation: format!("reading event log {path_or_url}"),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}
