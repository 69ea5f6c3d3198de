//! Sinks: part-file writers and the job-level committer that makes output appear whole or not at
//! all.
//!
//! # Commit protocol (the same on every store)
//!
//! * Tasks write part files under `<dest>/_temporary/<job-id>/<partition>-<attempt>/`. Part names
//!   carry the job id (`part-00003-<job-id>.parquet`), so they never collide with earlier output.
//! * A finished task attempt returns a [`TaskCommit`] (serializable) naming its files; the engine
//!   hands exactly one per partition to [`JobCommitter::commit_job`]. Other attempts (failed,
//!   speculative) are simply never published.
//! * Job commit publishes each committed part to `<dest>/<name>` (an atomic rename on local files and
//!   HDFS; copy + delete on S3/GCS/Azure, which have no rename), then writes `_SUCCESS` **last**, in
//!   one PUT, holding a JSON manifest of every file that makes up the output. Then (overwrite) it
//!   deletes the previous output's files and finally the staging directory.
//! * Readers honour the manifest ([`crate::listing`]): with `_SUCCESS` present they read exactly
//!   the listed files; without it, a `_temporary/` directory makes the read fail
//!   ([`StorageError::IncompleteOutput`](crate::StorageError::IncompleteOutput)) rather than return
//!   partial data. So on S3 the single PUT of `_SUCCESS` is the commit point: before it readers see
//!   the previous output (or an error), after it the new output, never a mix.
//! * [`JobCommitter::abort_job`] deletes the staging directory and any part this job already
//!   published (when its `_SUCCESS` was not written), so a failed or aborted job leaves nothing
//!   visible and the previous output (append/overwrite) untouched.
//!
//! Save modes: [`SaveMode::ErrorIfExists`] (default: fails if the destination holds visible files),
//! [`SaveMode::Overwrite`] (the new output replaces the old at commit), [`SaveMode::Append`] (the new
//! manifest lists old and new files).

mod committer;
mod writer;
mod writers;

pub use committer::{JobCommitter, SaveMode, TaskAttempt, TaskCommit};
pub use writer::ObjectWriter;
pub use writers::{IpcPartWriter, JsonLinesPartWriter, ParquetPartWriter, TextPartWriter};
