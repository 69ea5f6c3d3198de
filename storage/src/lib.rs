//! Ember's storage layer: one `object_store`-based layer for `file://` (and bare paths), `memory://`,
//! `s3://` (any S3-compatible endpoint), `gs://`, `az://` and `hdfs://` (feature `hdfs`) URLs;
//! input listing and splits; text, CSV, JSON lines, Parquet and Arrow IPC sources; sinks with an
//! atomic job commit.
//!
//! The API is synchronous: the engine's workers are plain threads, and object-store I/O runs on a
//! small tokio runtime owned by this crate ([`runtime::block_on`]).
//!
//! # For the engine
//!
//! Configuration: [`StorageConfig::from_map`] takes the `ember.*` keys of the engine's map (keys in
//! [`config`]). Every function below takes it.
//!
//! Sources (plan on the driver, read a partition on a worker; plans are `serde` values):
//! - `text_file(url)`: [`text_splits`]`(url, min_partitions)` → `Vec<`[`Split`]`>`; a partition is
//!   [`LineReader::open`]`(&split, ..)`, an iterator of `Result<String>` (`next_line()` for
//!   borrowed `&str`, `for_each_line(|line| ..)` fastest). `whole_text_files`: [`list_inputs`] + [`read_whole_text`] per file.
//! - `csv(url)`: [`list_inputs`] (one partition per file), schema from [`infer_csv_schema`] on the
//!   first file or given in [`CsvOptions`]; a partition is [`CsvReader::open`].
//! - `json_lines(url)`: [`text_splits`]; schema from [`infer_json_schema`]`(url, &splits)`; a
//!   partition is [`JsonLinesReader::open`].
//! - `parquet(url)`: [`parquet_splits`]`(url, &`[`ParquetScan`]`)` → [`ParquetPlan`] (one split per
//!   surviving row group, projected schema); a partition is [`read_parquet_split`].
//! - `arrow(url)`: [`ipc_splits`]; a partition is [`read_ipc_split`].
//! - Typed rows: [`formats::rows`] (`serde_arrow`).
//! - Locality: `hosts` on every split (empty where the store does not say).
//!
//! Sinks (`save_as_*`): on the coordinator [`JobCommitter::new`]`(dest, job_id, mode)` +
//! [`JobCommitter::setup_job`]; in each task `committer.task(partition, attempt)` →
//! [`TaskAttempt`]`::{text_writer, parquet_writer, ipc_writer, json_lines_writer}` → `finish()` →
//! `attempt.commit()` = [`TaskCommit`] (serde) sent to the coordinator; then
//! [`JobCommitter::commit_job`]`(&commits)` (one per partition), or [`JobCommitter::abort_job`]
//! when the job fails. Protocol in [`sink`], reader rules in [`listing`].
//!
//! Errors: one enum, [`StorageError`], naming the URL wherever there is one.

#![forbid(missing_docs)]

pub mod compression;
pub mod config;
pub mod error;
pub mod formats;
pub mod glob;
pub mod lines;
pub mod listing;
pub mod location;
pub mod ops;
mod readahead;
pub mod reader;
pub mod runtime;
mod scan;
pub mod secret;
pub mod sink;
pub mod split;
pub mod units;

pub use compression::{decode_sniffed, Codec};
pub use config::StorageConfig;
pub use error::{Result, StorageError};
pub use formats::csv::{infer_csv_schema, read_csv_header, CsvOptions, CsvReader};
pub use formats::ipc::{ipc_splits, read_ipc_split, IpcBatchReader, IpcSplit};
pub use formats::json::{infer_json_schema, JsonLinesReader, JsonOptions};
pub use formats::parquet::{
    parquet_splits, read_parquet_split, CmpOp, ParquetBatchReader, ParquetPlan, ParquetScan,
    ParquetSplit, Predicate, Scalar,
};
pub use formats::ParseMode;
pub use lines::{read_whole_text, whole_text_files, LineReader, Utf8Mode};
pub use listing::{list_inputs, Manifest};
pub use location::{Location, StoreKind};
pub use ops::ObjectInfo;
pub use secret::{is_secret_key, redact_url, redact_value, Secret};
pub use sink::{JobCommitter, ObjectWriter, SaveMode, TaskAttempt, TaskCommit};
pub use split::{plan_splits, text_splits, Split};

pub use arrow_array;
pub use arrow_schema;
pub use object_store;
