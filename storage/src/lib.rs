//! Ember's storage layer: one `object_store`-based layer for `file://` (and bare paths), `memory://`,
//! `s3://` (any S3-compatible endpoint), `gs://`, `az://` and `hdfs://` (feature `hdfs`) URLs;
//! input listing and splits; text, CSV, JSON lines, Parquet and Arrow IPC sources; sinks with an
//! atomic job commit.
//!
//! The API is synchronous: the engine's workers are plain threads, and object-store I/O runs on a
//! small tokio runtime owned by this crate ([`runtime::block_on`]).
//!
//! Configuration keys are listed in [`config`]; commit protocol and reader rules in [`sink`] and
//! [`listing`].

pub mod compression;
pub mod config;
pub mod error;
pub mod formats;
pub mod glob;
pub mod lines;
pub mod listing;
pub mod location;
pub mod ops;
pub mod reader;
pub mod runtime;
pub mod sink;
pub mod split;

pub use compression::Codec;
pub use config::StorageConfig;
pub use error::{Result, StorageError};
pub use lines::{read_whole_text, whole_text_files, LineReader, Utf8Mode};
pub use listing::{list_inputs, Manifest};
pub use location::{Location, StoreKind};
pub use ops::ObjectInfo;
pub use formats::csv::{infer_csv_schema, CsvOptions, CsvReader};
pub use formats::ipc::{ipc_splits, read_ipc_split, IpcBatchReader, IpcSplit};
pub use formats::json::{infer_json_schema, JsonLinesReader, JsonOptions};
pub use formats::parquet::{
    parquet_splits, read_parquet_split, CmpOp, ParquetBatchReader, ParquetPlan, ParquetScan, ParquetSplit, Predicate,
    Scalar,
};
pub use formats::ParseMode;
pub use sink::{JobCommitter, ObjectWriter, SaveMode, TaskAttempt, TaskCommit};
pub use split::{plan_splits, text_splits, Split};

pub use arrow_array;
pub use arrow_schema;
pub use object_store;
