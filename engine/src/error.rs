//! The engine's error type: every failure names what was wrong (a key, a file and offset, a stage
//! and partition) so a user can act on it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything that can go wrong in the engine.
#[derive(thiserror::Error, Clone, PartialEq)]
pub enum EngineError {
    /// A configuration key that Ember does not know.
    #[error("unknown configuration key `{key}`{hint}")]
    UnknownConfigKey {
        /// The key as written.
        key: String,
        /// A suggestion such as ` (did you mean `ember.master`?)`, or empty.
        hint: String,
    },
    /// A configuration value that does not parse or is out of range.
    #[error("invalid value `{value}` for configuration key `{key}`: expected {expected}")]
    InvalidConfigValue {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What the key accepts.
        expected: String,
    },
    /// A line of a defaults file that is neither a comment nor `key value` / `key=value`.
    #[error("malformed line {line} in configuration file {path}: `{text}`")]
    MalformedConfigLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending text.
        text: String,
    },
    /// An argument to an API call that can never work (zero partitions, a bad fraction...).
    #[error("invalid argument to `{operation}`: {reason}")]
    InvalidArgument {
        /// The operation that was called.
        operation: String,
        /// Why the argument is rejected.
        reason: String,
    },
    /// An input path that does not exist or matches no file.
    #[error("input path not found: {path}")]
    InputNotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// An I/O error on a file, with the file named.
    #[error("I/O error on {path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// A text line that is not valid UTF-8; `ember.text.invalidUtf8=lossy` replaces bad bytes
    /// instead.
    #[error(
        "invalid UTF-8 in {path} at byte offset {offset} (set ember.text.invalidUtf8=lossy to \
         read bad bytes as U+FFFD instead)"
    )]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// Offset of the first invalid byte from the start of the file.
        offset: u64,
    },
    /// An output path that already exists (the default save mode refuses to overwrite).
    #[error("output path already exists: {path}")]
    OutputExists {
        /// The path.
        path: PathBuf,
    },
    /// A job failed because one of its tasks failed `attempts` times.
    #[error("job {job} failed: stage {stage} ({stage_name}), partition {partition} failed {attempts} time(s); last error: {cause}")]
    JobFailed {
        /// Job number within this context.
        job: usize,
        /// Stage number within this context.
        stage: usize,
        /// What the stage computes, e.g. `shuffle map for reduce_by_key`.
        stage_name: String,
        /// The failing partition.
        partition: usize,
        /// How many attempts were made.
        attempts: usize,
        /// The last attempt's error or panic message.
        cause: String,
    },
    /// A shuffle's output for a reduce partition is not in this process.
    #[error("shuffle {shuffle} has no output for partition {partition} in this process")]
    ShuffleOutputMissing {
        /// The shuffle id.
        shuffle: usize,
        /// The reduce partition.
        partition: usize,
    },
    /// A storage operation failed (an object store, a file format, an output commit); the
    /// message names the URL.
    #[error("{message}")]
    Storage {
        /// The storage layer's message, URL included.
        message: String,
        /// Whether retrying the task may help (network errors, timeouts).
        retryable: bool,
    },
    /// Another worker of this application stopped (its driver code panicked or returned early),
    /// so collective operations cannot complete.
    #[error("a peer worker stopped: {0}")]
    PeerFailed(String),
    /// A task attempt ran longer than `ember.task.timeout`; the application was aborted, since
    /// a task that never returns cannot be stopped and its peers would wait for it forever.
    #[error("stage {stage}, partition {partition} (attempt {attempt}) on worker {worker} ran for {elapsed_ms} ms, over ember.task.timeout ({timeout_ms} ms): the application was aborted (raise ember.task.timeout if the task is only slow)")]
    TaskTimedOut {
        /// The task's stage.
        stage: usize,
        /// Its partition.
        partition: usize,
        /// The attempt (0 for the first).
        attempt: usize,
        /// The worker running it.
        worker: usize,
        /// How long it had run.
        elapsed_ms: u64,
        /// The configured timeout.
        timeout_ms: u64,
    },
    /// A cluster process could not reach a peer process (it never started, or something else
    /// answers at its address) within `ember.cluster.startupTimeout`.
    #[error("process {process} could not {what} process {peer} at {address} within {waited_ms} ms: {reason} (check that every process of ember.cluster.hosts is started, or set ember.cluster.startupTimeout to wait longer)")]
    PeerUnreachable {
        /// This process's index.
        process: usize,
        /// The peer's index.
        peer: usize,
        /// The peer's `host:port`.
        address: String,
        /// `connect to` or `hear from`.
        what: String,
        /// How long this process waited.
        waited_ms: u64,
        /// The last error seen.
        reason: String,
    },
    /// Starting the timely workers failed (bad addresses, port in use...).
    #[error("could not start workers: {0}")]
    Startup(String),
    /// A value could not be serialized or deserialized.
    #[error("serialization error: {0}")]
    Serialization(String),
    /// A stored block (spill file, serialized block, checkpoint file) failed its checks.
    #[error("corrupt block {location} at byte offset {offset}: {reason}")]
    CorruptBlock {
        /// The file, or the in-memory block's name.
        location: String,
        /// Offset of the bad frame or chunk.
        offset: u64,
        /// What was wrong (checksum mismatch, truncated chunk...).
        reason: String,
    },
    /// The checkpoint directory cannot be written.
    #[error("checkpoint directory {path} is not writable: {message}")]
    CheckpointDirNotWritable {
        /// The directory.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
}

impl EngineError {
    /// Errors that come from the data itself fail the same way on every attempt, so retrying the
    /// task only wastes time; everything else (I/O hiccups, panics) is retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Storage { retryable, .. } => *retryable,
            EngineError::InvalidUtf8 { .. }
            | EngineError::InputNotFound { .. }
            | EngineError::InvalidArgument { .. } => false,
            _ => true,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        EngineError::Io {
            path: path.into(),
            message: err.to_string(),
        }
    }
}

/// Short for `Result<T, EngineError>`.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Why one task attempt failed, in a form that can travel between workers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct TaskFailure {
    pub partition: usize,
    pub attempts: usize,
    pub message: String,
}

impl From<ember_storage::StorageError> for EngineError {
    /// Keeps the engine's own variants for what users match on (a missing input, invalid UTF-8,
    /// existing output); everything else keeps the storage layer's message.
    fn from(e: ember_storage::StorageError) -> Self {
        use ember_storage::StorageError as S;
        match e {
            S::NotFound { url, .. } | S::NoInputs { url, .. } => {
                EngineError::InputNotFound { path: url.into() }
            }
            S::InvalidUtf8 { url, offset } => EngineError::InvalidUtf8 {
                path: url.into(),
                offset,
            },
            S::AlreadyExists { url, .. } => EngineError::OutputExists { path: url.into() },
            other => {
                let retryable = matches!(other, S::Store { .. } | S::Io { .. } | S::Timeout { .. });
                EngineError::Storage {
                    message: other.to_string(),
                    retryable,
                }
            }
        }
    }
}

/// Debug prints the message, as Display does: it is what `fn main() -> Result<(), EngineError>` and
/// `unwrap()` show a person, so it reads as a sentence, not as a struct dump.
impl std::fmt::Debug for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
