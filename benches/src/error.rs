//! The errors of the benchmark harness.

use std::path::PathBuf;

/// Everything that can go wrong in the harness, naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A command-line argument was missing or malformed.
    #[error("bad argument {arg}: {reason}")]
    Argument {
        /// The argument as given.
        arg: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A size such as `200MB` could not be parsed.
    #[error(
        "bad size {0:?}: expected bytes or a number with a suffix KB, MB, GB, KiB, MiB or GiB"
    )]
    Size(String),
    /// The text input is not UTF-8.
    #[error("{path}: invalid UTF-8 at byte offset {offset}")]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// The offset in the file of the first invalid byte.
        offset: u64,
    },
    /// A result line could not be parsed.
    #[error("{path}:{line}: not a result record: {reason}")]
    Record {
        /// The results file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// An input file's contents are malformed.
    #[error("{0}")]
    Input(String),
    /// A timely computation failed.
    #[error("timely: {0}")]
    Timely(String),
}

impl BenchError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }
}
