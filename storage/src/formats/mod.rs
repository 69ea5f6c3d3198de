//! Record formats yielding Arrow [`RecordBatch`](arrow_array::RecordBatch)es: CSV, JSON lines,
//! Parquet and Arrow IPC files, and typed rows on top of batches.

pub mod csv;
mod csv_quotes;
pub mod ipc;
pub mod json;
pub mod parquet;
pub mod parquet_crc;
pub mod parquet_prune;
pub mod rows;

/// How to treat malformed records (CSV rows, JSON lines).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ParseMode {
    /// The first malformed record fails the read with an error naming URL and position.
    #[default]
    FailFast,
    /// Malformed records are dropped and counted (see the readers' `dropped_rows`); the count is
    /// also logged when the reader finishes.
    DropMalformed,
}
