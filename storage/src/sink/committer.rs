//! The job committer (protocol in the [module docs](super)).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::writer::ObjectWriter;
use super::writers::{IpcPartWriter, JsonLinesPartWriter, ParquetPartWriter, TextPartWriter};
use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::listing::{is_hidden, read_manifest, Manifest, SUCCESS_MARKER, TEMPORARY_DIR};
use crate::location::Location;
use arrow_schema::SchemaRef;

/// What to do when the destination already holds output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SaveMode {
    /// Fail with [`StorageError::AlreadyExists`] (the default).
    #[default]
    ErrorIfExists,
    /// Replace the existing output at commit.
    Overwrite,
    /// Add to the existing output.
    Append,
}

impl std::str::FromStr for SaveMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "errorifexists" | "error" | "default" => Ok(SaveMode::ErrorIfExists),
            "overwrite" => Ok(SaveMode::Overwrite),
            "append" => Ok(SaveMode::Append),
            other => Err(format!(
                "unknown save mode `{other}` (errorifexists, overwrite, append)"
            )),
        }
    }
}

/// What a finished task attempt produced: sent to the coordinator, which passes one per partition
/// to [`JobCommitter::commit_job`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCommit {
    /// The partition.
    pub partition: usize,
    /// The attempt number.
    pub attempt: u32,
    /// File names written (relative to the attempt's staging directory; the published name).
    pub files: Vec<String>,
}

/// Commits one job's output to one destination directory.
#[derive(Clone, Debug)]
pub struct JobCommitter {
    dest: Location,
    job_id: String,
    mode: SaveMode,
    config: StorageConfig,
}

/// One task attempt's staging area and the files it wrote there.
#[derive(Debug)]
pub struct TaskAttempt {
    dir: Location,
    partition: usize,
    attempt: u32,
    job_id: String,
    files: Vec<String>,
    config: StorageConfig,
}

impl JobCommitter {
    /// A committer for `dest_url`. `job_id` must be the same on every worker of the job (the engine
    /// derives it deterministically, or uses [`JobCommitter::new_job_id`] on the coordinator and
    /// broadcasts it); only `[A-Za-z0-9_-]` is allowed.
    pub fn new(
        dest_url: &str,
        job_id: &str,
        mode: SaveMode,
        config: &StorageConfig,
    ) -> Result<Self> {
        if job_id.is_empty()
            || !job_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(StorageError::Commit {
                url: dest_url.to_string(),
                reason: format!("invalid job id `{job_id}` (use [A-Za-z0-9_-])"),
            });
        }
        Ok(JobCommitter {
            dest: Location::resolve(dest_url, config)?,
            job_id: job_id.to_string(),
            mode,
            config: config.clone(),
        })
    }

    /// A fresh, unique job id (time, process id and a counter).
    pub fn new_job_id() -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        format!(
            "{t:x}{:x}{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The destination.
    pub fn destination(&self) -> &Location {
        &self.dest
    }

    /// The job id.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The save mode.
    pub fn mode(&self) -> SaveMode {
        self.mode
    }

    /// This job's staging directory (`<dest>/_temporary/<job-id>`).
    pub fn staging(&self) -> Location {
        self.dest.child(&format!("{TEMPORARY_DIR}/{}", self.job_id))
    }

    fn relative<'a>(&self, loc: &'a Location) -> &'a str {
        let d = self.dest.path().as_ref();
        let p = loc.path().as_ref();
        if d.is_empty() {
            p
        } else {
            p.strip_prefix(d)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(p)
        }
    }

    /// Files that currently make up the destination's output (manifest, else visible files).
    fn current_output(&self) -> Result<(Vec<String>, bool)> {
        let all = self.dest.list_recursive()?;
        let has_marker = all
            .iter()
            .any(|o| self.relative(&o.location) == SUCCESS_MARKER);
        let visible: Vec<String> = all
            .iter()
            .map(|o| self.relative(&o.location).to_string())
            .filter(|r| !is_hidden(r))
            .collect();
        if has_marker {
            if let Some(m) = read_manifest(&self.dest)? {
                return Ok((m.files, true));
            }
        }
        Ok((visible, has_marker))
    }

    /// Checks the save mode against the destination (call once, on the coordinator, before tasks
    /// run). Error-if-exists fails when the destination holds visible files or a `_SUCCESS`.
    pub fn setup_job(&self) -> Result<()> {
        if self.mode == SaveMode::ErrorIfExists {
            let (files, marker) = self.current_output()?;
            if !files.is_empty() || marker {
                return Err(StorageError::AlreadyExists {
                    url: self.dest.url().to_string(),
                });
            }
        }
        Ok(())
    }

    /// The staging area of one task attempt.
    pub fn task(&self, partition: usize, attempt: u32) -> TaskAttempt {
        TaskAttempt {
            dir: self.staging().child(&format!("{partition}-{attempt}")),
            partition,
            attempt,
            job_id: self.job_id.clone(),
            files: Vec::new(),
            config: self.config.clone(),
        }
    }

    /// Publishes the committed attempts (one per partition) and writes the `_SUCCESS` manifest.
    /// On error, call [`JobCommitter::abort_job`]: nothing of this job stays visible.
    pub fn commit_job(&self, commits: &[TaskCommit]) -> Result<Manifest> {
        let fail = |reason: String| StorageError::Commit {
            url: self.dest.url().to_string(),
            reason,
        };
        let mut seen = std::collections::HashSet::new();
        for c in commits {
            if !seen.insert(c.partition) {
                return Err(fail(format!("two commits for partition {}", c.partition)));
            }
        }
        let (previous, had_marker) = self.current_output()?;
        if self.mode == SaveMode::ErrorIfExists && (!previous.is_empty() || had_marker) {
            return Err(StorageError::AlreadyExists {
                url: self.dest.url().to_string(),
            });
        }
        // 1. Publish parts (rename where the store can, copy + delete where it cannot).
        let mut new_files = Vec::new();
        let mut sorted: Vec<&TaskCommit> = commits.iter().collect();
        sorted.sort_by_key(|c| c.partition);
        for c in sorted {
            let dir = self
                .staging()
                .child(&format!("{}-{}", c.partition, c.attempt));
            for f in &c.files {
                let from = dir.child(f);
                let to = self.dest.child(f);
                from.rename_to(&to)?;
                new_files.push(f.clone());
            }
        }
        // 2. The commit point: one PUT of the manifest.
        let mut files = match self.mode {
            SaveMode::Append => previous.clone(),
            _ => Vec::new(),
        };
        files.extend(new_files.iter().cloned());
        let manifest = Manifest {
            writer: "ember".into(),
            job_id: self.job_id.clone(),
            files,
        };
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| fail(e.to_string()))?;
        self.dest.child(SUCCESS_MARKER).put(body)?;
        // 3. Cleanup: the replaced output (overwrite), then staging. Failures here leave the
        //    committed output intact (readers follow the manifest), so they are only logged.
        if self.mode == SaveMode::Overwrite {
            for f in previous.iter().filter(|f| !new_files.contains(f)) {
                if let Err(e) = self.dest.child(f).delete() {
                    tracing::warn!(error = %e, "could not delete replaced output file");
                }
            }
        }
        if let Err(e) = self.staging().delete_recursive() {
            tracing::warn!(error = %e, "could not delete staging directory");
        }
        self.remove_empty_temporary();
        tracing::info!(dest = %self.dest, job = %self.job_id, files = manifest.files.len(), "committed job output");
        Ok(manifest)
    }

    fn remove_empty_temporary(&self) {
        if let Some(p) = self.dest.child(TEMPORARY_DIR).local_path() {
            let _ = std::fs::remove_dir(p); // only succeeds when empty
        }
    }

    /// Deletes staging and any part this job already published (unless its commit completed).
    pub fn abort_job(&self) -> Result<()> {
        let committed = read_manifest(&self.dest)
            .ok()
            .flatten()
            .is_some_and(|m| m.job_id == self.job_id);
        if !committed {
            let tag = format!("-{}", self.job_id);
            for o in self.dest.list_recursive()? {
                let rel = self.relative(&o.location).to_string();
                if !rel.starts_with(TEMPORARY_DIR) && o.location.file_name().contains(&tag) {
                    o.location.delete()?;
                }
            }
        }
        self.staging().delete_recursive()?;
        self.remove_empty_temporary();
        Ok(())
    }
}

impl TaskAttempt {
    /// The partition.
    pub fn partition(&self) -> usize {
        self.partition
    }

    /// The attempt number.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Creates the next part file with extension `ext` (`"txt"`, `"parquet"`...):
    /// `part-<partition>-<job-id>[-<n>].<ext>`.
    pub fn create_file(&mut self, ext: &str) -> Result<ObjectWriter> {
        let n = self.files.len();
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let ext = ext.trim_start_matches('.');
        let name = format!("part-{:05}-{}{suffix}.{ext}", self.partition, self.job_id);
        let w = ObjectWriter::create(&self.dir.child(&name), &self.config)?;
        self.files.push(name);
        Ok(w)
    }

    /// A text part file.
    pub fn text_writer(&mut self) -> Result<TextPartWriter> {
        Ok(TextPartWriter::new(self.create_file("txt")?))
    }

    /// A Parquet part file.
    pub fn parquet_writer(&mut self, schema: SchemaRef) -> Result<ParquetPartWriter> {
        ParquetPartWriter::new(self.create_file("parquet")?, schema)
    }

    /// An Arrow IPC part file.
    pub fn ipc_writer(&mut self, schema: SchemaRef) -> Result<IpcPartWriter> {
        IpcPartWriter::new(self.create_file("arrow")?, schema)
    }

    /// A JSON-lines part file.
    pub fn json_lines_writer(&mut self) -> Result<JsonLinesPartWriter> {
        Ok(JsonLinesPartWriter::new(self.create_file("json")?))
    }

    /// Finishes the attempt (all its writers must be finished): the commit message for the
    /// coordinator.
    pub fn commit(self) -> TaskCommit {
        TaskCommit {
            partition: self.partition,
            attempt: self.attempt,
            files: self.files,
        }
    }

    /// Discards the attempt's files.
    pub fn abort(self) -> Result<()> {
        self.dir.delete_recursive().map(|_| ())
    }
}
