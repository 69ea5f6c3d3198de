//! The crate's one error type: every variant that concerns an object names its URL.

use std::time::Duration;

/// Result alias for this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage layer.
///
/// Variants carry the URL of the object concerned (never credentials: URLs are normalized without a
/// user-info part before they reach an error).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The URL could not be parsed or names nothing this crate can address.
    #[error("invalid URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's scheme has no store in this build.
    #[error("unsupported URL scheme `{scheme}` in `{url}`: {hint}")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
        /// Its scheme.
        scheme: String,
        /// How to get support for it.
        hint: String,
    },
    /// A configuration value is malformed (secret values are never echoed).
    #[error("invalid configuration `{key}` = `{value}`: {reason}")]
    InvalidConfig {
        /// The configuration key.
        key: String,
        /// Its value; `***` for secrets, and URL credentials as `***@`.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object store could not be built for a URL (bad endpoint, missing bucket name...).
    #[error("cannot open store for {url}: {source}")]
    StoreSetup {
        /// The URL.
        url: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// The object (or bucket) does not exist.
    #[error("not found: {url}")]
    NotFound {
        /// The URL.
        url: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// The store refused the credentials or the operation.
    #[error("access denied to {url} (check credentials): {source}")]
    AccessDenied {
        /// The URL.
        url: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// Any other object-store failure (network errors after retries, server errors...).
    #[error("storage operation on {url} failed: {source}")]
    Store {
        /// The URL.
        url: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },
    /// A local path that is neither a regular file nor a directory (a named pipe, a socket, a
    /// device). Ember splits its inputs by byte ranges and re-reads them to recover lost
    /// partitions, which a stream cannot give; opening a pipe would also block until a writer
    /// comes.
    #[error(
        "{url} is a {kind}: Ember reads regular files and directories only (inputs are split by \
         byte range and re-read on recovery); copy the stream to a file first"
    )]
    NotARegularFile {
        /// The path's URL.
        url: String,
        /// What it is: `named pipe`, `socket`, `character device` or `block device`.
        kind: &'static str,
    },
    /// A local I/O error.
    #[error("I/O error on {url}: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An operation took longer than its bound.
    #[error("operation on {url} timed out after {after:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The bound that was exceeded.
        after: Duration,
    },
    /// Text that is not valid UTF-8 (`Utf8Mode::Lossy` replaces bad bytes instead).
    #[error(
        "invalid UTF-8 in {url} at byte offset {offset} (read with Utf8Mode::Lossy to get bad \
         bytes as U+FFFD instead)"
    )]
    InvalidUtf8 {
        /// The URL.
        url: String,
        /// Byte offset of the first invalid byte (in the decompressed stream for compressed files).
        offset: u64,
    },
    /// A compressed stream is corrupt or truncated.
    #[error(
        "corrupt or truncated {codec} data in {url} (after {offset} decompressed bytes): {source}"
    )]
    Decompress {
        /// The URL.
        url: String,
        /// The codec (`gzip`, `lz4`).
        codec: &'static str,
        /// Decompressed bytes produced before the failure.
        offset: u64,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The file's compression is recognised by its extension but not supported.
    #[error("unsupported compression `{codec}` for {url} (supported: gzip, lz4 frame)")]
    UnsupportedCompression {
        /// The URL.
        url: String,
        /// The extension.
        codec: String,
    },
    /// A malformed record (CSV row or JSON line).
    #[error("malformed {format} record in {url} at {position}: {reason}")]
    MalformedRecord {
        /// The URL.
        url: String,
        /// `CSV` or `JSON`.
        format: &'static str,
        /// `line N` (CSV, 1-based) or `byte offset N` (JSON lines, start of the line).
        position: String,
        /// What is wrong.
        reason: String,
    },
    /// A Parquet file is corrupt or cannot be decoded.
    #[error("Parquet error in {url}: {source}")]
    Parquet {
        /// The URL.
        url: String,
        /// The decoder's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Arrow failed to decode or encode (IPC, JSON).
    #[error("Arrow error in {url}: {source}")]
    Arrow {
        /// The URL.
        url: String,
        /// The underlying error.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A schema problem: unknown column, incompatible files, untyped predicate.
    #[error("schema error in {url}: {reason}")]
    Schema {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A predicate whose literal cannot be compared with its column's type (`id >= "abc"` on an
    /// Int64 column): the scan refuses it rather than ignore it.
    #[error(
        "predicate `{predicate}` on {url}: a {literal} literal cannot be compared with column \
         `{column}` of type {column_type} (use Scalar::Int or Scalar::Float for numeric columns, \
         Scalar::Str for UTF-8 and Scalar::Bool for Boolean; other types cannot be filtered)"
    )]
    PredicateType {
        /// The dataset's first file.
        url: String,
        /// The predicate, e.g. `id >= "abc"`.
        predicate: String,
        /// The column.
        column: String,
        /// The column's Arrow type.
        column_type: String,
        /// The literal's kind: `integer`, `floating-point`, `string` or `boolean`.
        literal: &'static str,
    },
    /// A stored file failed an integrity check (a checksum mismatch): it was changed after it was
    /// written, and reading it could give different values.
    #[error("corrupt data in {url}: {reason}")]
    Corrupt {
        /// The file.
        url: String,
        /// What failed and where (row group, column, byte range).
        reason: String,
    },
    /// Converting between Arrow batches and typed rows failed.
    #[error("row conversion error for {url}: {source}")]
    Rows {
        /// The URL the batches came from or go to (`<memory>` when none).
        url: String,
        /// The serde_arrow error.
        #[source]
        source: serde_arrow::Error,
    },
    /// No input matched a path or glob.
    #[error("no input files match {url}")]
    NoInputs {
        /// The URL or pattern.
        url: String,
    },
    /// A directory holds the staging area of an uncommitted job and no `_SUCCESS` manifest.
    #[error("output at {url} is incomplete: a job is writing it or failed (no _SUCCESS, _temporary present)")]
    IncompleteOutput {
        /// The directory URL.
        url: String,
    },
    /// A `_SUCCESS` manifest could not be parsed.
    #[error("corrupt _SUCCESS manifest at {url}: {reason}")]
    BadManifest {
        /// The manifest's URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The destination of a save already holds data and the save mode is error-if-exists.
    #[error("output {url} already exists (save mode error-if-exists)")]
    AlreadyExists {
        /// The destination URL.
        url: String,
    },
    /// Job or task commit failed.
    #[error("commit to {url} failed: {reason}")]
    Commit {
        /// The destination URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl StorageError {
    /// Maps an `object_store` error to the variant that says what happened, naming `url`.
    pub fn from_store(url: impl Into<String>, source: object_store::Error) -> Self {
        let url = url.into();
        match source {
            object_store::Error::NotFound { .. } => StorageError::NotFound { url, source },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                StorageError::AccessDenied { url, source }
            }
            other => {
                // S3 reports a missing bucket and bad keys in the body; classify by message too.
                let text = other.to_string();
                if text.contains("NoSuchBucket") || text.contains("NoSuchKey") {
                    StorageError::NotFound { url, source: other }
                } else if text.contains("InvalidAccessKeyId")
                    || text.contains("SignatureDoesNotMatch")
                    || text.contains("AccessDenied")
                {
                    StorageError::AccessDenied { url, source: other }
                } else {
                    StorageError::Store { url, source: other }
                }
            }
        }
    }

    /// Whether this error says the object or bucket does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// Wraps this error into an `io::Error` (for `Read`/`Write` impls); [`StorageError::from_io`]
    /// unwraps it again.
    pub(crate) fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// Recovers a `StorageError` carried inside an `io::Error`, or wraps a plain I/O error.
    pub(crate) fn from_io(url: &str, err: std::io::Error) -> Self {
        if err.get_ref().is_some_and(|e| e.is::<StorageError>()) {
            let inner = err.into_inner().expect("checked above");
            *inner.downcast::<StorageError>().expect("checked above")
        } else {
            StorageError::Io {
                url: url.to_string(),
                source: err,
            }
        }
    }

    /// Whether an `io::Error` carries a `StorageError` (rather than a decoder's own failure).
    pub(crate) fn is_wrapped(err: &std::io::Error) -> bool {
        err.get_ref().is_some_and(|e| e.is::<StorageError>())
    }
}

/// Debug prints the message, as Display does: it is what `fn main() -> Result<(), StorageError>` and
/// `unwrap()` show a person, so it reads as a sentence, not as a struct dump.
impl std::fmt::Debug for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
