//! The error type of data loading and preprocessing.

use std::path::PathBuf;

/// Everything that can go wrong while reading, batching or normalizing data.
///
/// Errors about files name the file and, where it applies, the byte offset (in the decompressed
/// stream for gzip files) or the line where reading failed.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file ended before the bytes its header announces.
    #[error("{path} is truncated at byte {offset}: {what}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Offset (decompressed) at which data ran out.
        offset: u64,
        /// What was being read.
        what: String,
    },
    /// The gzip stream is corrupt (bad checksum, invalid deflate data, ...).
    #[error("{path} has corrupt compressed data near decompressed byte {offset}: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Decompressed offset reached before the corruption was detected.
        offset: u64,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// An IDX file does not start with a valid magic number.
    #[error("{path} is not an IDX file: bad magic number {magic:#010x} at byte 0 ({reason})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The four bytes found, big-endian.
        magic: u32,
        /// Why they are not valid.
        reason: String,
    },
    /// The file holds more bytes than its header announces.
    #[error("{path} has unexpected trailing data at byte {offset}")]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// Offset of the first byte past the announced data.
        offset: u64,
    },
    /// The file's content does not have the shape or values expected.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// An image file and its label file hold different numbers of examples.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Number of images.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Number of labels.
        label_count: usize,
    },
    /// A line of a CSV file could not be parsed.
    #[error("{path}:{line}: {what}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What was wrong.
        what: String,
    },
    /// Arrays or settings do not fit together (shapes, batch size, indices).
    #[error("{0}")]
    Shape(String),
    /// A value that must be finite is NaN or infinite.
    #[error("non-finite value {value} at row {row}, column {column}")]
    NonFinite {
        /// Row (example) index.
        row: usize,
        /// Column index.
        column: usize,
        /// The value.
        value: f32,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}
