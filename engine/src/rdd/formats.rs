//! Columnar sources and sinks: CSV, JSON lines, Parquet and Arrow IPC at any storage URL, as
//! RDDs of Arrow record batches, and atomic writers for text, Parquet, Arrow IPC and JSON lines.
//!
//! Sinks use the storage layer's job committer: tasks write under a staging prefix, worker 0
//! publishes the parts and a `_SUCCESS` manifest only when every task succeeded, and a failed job
//! leaves nothing visible at the destination (see `ember_storage::sink` for how this holds on S3).

use std::fmt::Display;
use std::rc::Rc;
use std::sync::Arc;

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use ember_storage::arrow_array::RecordBatch;
use ember_storage::arrow_schema::SchemaRef;
use ember_storage::{
    CsvOptions, CsvReader, JobCommitter, JsonLinesReader, JsonOptions, ParquetScan, SaveMode,
    StorageConfig, TaskCommit, Utf8Mode,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::blocks::SizeOf;
use crate::context::Context;
use crate::data::Data;
use crate::error::{EngineError, Result};
use crate::rdd::{BoxIter, Compute, Rdd};
use crate::task::TaskContext;

/// An Arrow record batch as an RDD element. It crosses processes and goes to disk as an Arrow
/// IPC stream, so columnar data never passes through a row format.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch(pub RecordBatch);

impl Batch {
    /// The wrapped batch.
    pub fn batch(&self) -> &RecordBatch {
        &self.0
    }
    /// Rows in the batch.
    pub fn num_rows(&self) -> usize {
        self.0.num_rows()
    }
}

impl Serialize for Batch {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        let mut w = StreamWriter::try_new(&mut bytes, &self.0.schema())
            .map_err(serde::ser::Error::custom)?;
        w.write(&self.0).map_err(serde::ser::Error::custom)?;
        w.finish().map_err(serde::ser::Error::custom)?;
        drop(w);
        s.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Batch, D::Error> {
        let bytes: Vec<u8> = serde_bytes_vec(d)?;
        let mut reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .map_err(serde::de::Error::custom)?;
        match reader.next() {
            Some(Ok(batch)) => Ok(Batch(batch)),
            Some(Err(e)) => Err(serde::de::Error::custom(e)),
            None => Err(serde::de::Error::custom("Arrow IPC stream without a batch")),
        }
    }
}

fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("Arrow IPC bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(
            self,
            v: Vec<u8>,
        ) -> std::result::Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
    d.deserialize_byte_buf(V)
}

impl SizeOf for Batch {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

type BatchIter = Box<dyn Iterator<Item = ember_storage::Result<RecordBatch>>>;
type OpenPartition = dyn Fn(usize) -> ember_storage::Result<BatchIter>;

/// A source of record batches: one partition per split, opened by a format-specific function.
pub(crate) struct BatchSource {
    partitions: usize,
    open: Rc<OpenPartition>,
    /// The input as given and the read options, for [`Compute::source_version`].
    url: String,
    options: String,
    config: StorageConfig,
}

impl Compute<Batch> for BatchSource {
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn source_version(&self) -> Result<Option<String>> {
        let files = crate::rdd::source::files_version(&self.url, &self.config)?;
        Ok(Some(format!("{files} {}", self.options)))
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<Batch> {
        match (self.open)(split) {
            Ok(batches) => {
                let tc = Rc::clone(tc);
                Box::new(batches.map_while(move |b| match b {
                    Ok(b) => Some(Batch(b)),
                    Err(e) => {
                        tc.fail(e.into());
                        None
                    }
                }))
            }
            Err(e) => {
                tc.fail(e.into());
                Box::new(std::iter::empty())
            }
        }
    }
}

/// `whole_text_files`: one partition per file.
pub(crate) struct WholeFiles {
    /// The input as given, for [`Compute::source_version`].
    pattern: String,
    urls: Vec<String>,
    config: StorageConfig,
    lossy: bool,
}

impl WholeFiles {
    pub(crate) fn new(
        pattern: String,
        urls: Vec<String>,
        config: StorageConfig,
        lossy: bool,
    ) -> Self {
        WholeFiles {
            pattern,
            urls,
            config,
            lossy,
        }
    }
}

impl Compute<(String, String)> for WholeFiles {
    fn num_partitions(&self) -> usize {
        self.urls.len()
    }
    fn source_version(&self) -> Result<Option<String>> {
        crate::rdd::source::files_version(&self.pattern, &self.config).map(Some)
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<(String, String)> {
        let url = &self.urls[split];
        let mode = if self.lossy {
            Utf8Mode::Lossy
        } else {
            Utf8Mode::Strict
        };
        match ember_storage::read_whole_text(url, &self.config, mode) {
            Ok(text) => Box::new(std::iter::once((url.clone(), text))),
            Err(e) => {
                tc.fail(e.into());
                Box::new(std::iter::empty())
            }
        }
    }
}

fn empty_batches() -> BatchIter {
    Box::new(std::iter::empty())
}

fn batches<I, E>(it: I) -> BatchIter
where
    I: Iterator<Item = std::result::Result<RecordBatch, E>> + 'static,
    E: Into<ember_storage::StorageError>,
{
    Box::new(it.map(|r| r.map_err(Into::into)))
}

impl Context {
    #[track_caller]
    fn batch_source(
        &self,
        op: &str,
        url: &str,
        options: String,
        partitions: usize,
        open: Rc<OpenPartition>,
    ) -> Rdd<Batch> {
        let source = BatchSource {
            partitions,
            open,
            url: url.to_string(),
            options,
            config: self.conf().storage_config(),
        };
        Rdd::from_source(self, op, source)
    }

    /// Parquet files at `url` (a file, directory or glob): one partition per row group that the
    /// scan's predicates cannot rule out from the footer statistics, reading only the projected
    /// columns.
    #[track_caller]
    pub fn parquet(&self, url: &str, scan: ParquetScan) -> Result<Rdd<Batch>> {
        let config = self.conf().storage_config();
        let plan = ember_storage::parquet_splits(url, &scan, &config)?;
        tracing::debug!(
            url,
            row_groups = plan.total_row_groups,
            pruned = plan.pruned_row_groups,
            "parquet plan"
        );
        let splits = Arc::new(plan.splits);
        let n = splits.len();
        let scan_text = format!("{scan:?}");
        let open = Rc::new(move |i: usize| -> ember_storage::Result<BatchIter> {
            Ok(batches(ember_storage::read_parquet_split(
                &splits[i], &scan, &config,
            )?))
        });
        Ok(self.batch_source("parquet", url, scan_text, n, open))
    }

    /// CSV files at `url`, one partition per file; the schema is `opts.schema` or inferred from
    /// the first file. Malformed rows fail the job naming URL and line, or are counted and
    /// dropped in permissive mode; an unterminated quote fails it in either mode. With a header,
    /// every file's header must equal the first file's (columns are matched by position): a
    /// file whose columns are reordered or different fails the job naming both files. A
    /// committed empty dataset (a `_SUCCESS` listing no file) gives an RDD without partitions.
    #[track_caller]
    pub fn csv(&self, url: &str, opts: CsvOptions) -> Result<Rdd<Batch>> {
        let config = self.conf().storage_config();
        let opts_text = format!("{opts:?}");
        let files = ember_storage::list_inputs(url, &config)?;
        let urls: Vec<String> = files.iter().map(|f| f.url().to_string()).collect();
        let Some(first) = urls.first().cloned() else {
            return Ok(self.batch_source(
                "csv",
                url,
                opts_text,
                0,
                Rc::new(|_| Ok(empty_batches())),
            ));
        };
        let (schema, header): (SchemaRef, Option<Vec<String>>) = match &opts.schema {
            Some(s) => (
                s.clone(),
                ember_storage::read_csv_header(&first, &opts, &config)?,
            ),
            None => {
                let s = ember_storage::infer_csv_schema(&first, &opts, &config)?;
                // The inferred names are the first file's header.
                let names = opts
                    .header
                    .then(|| s.fields().iter().map(|f| f.name().clone()).collect());
                (s, names)
            }
        };
        let n = urls.len();
        let open = Rc::new(move |i: usize| -> ember_storage::Result<BatchIter> {
            let mut reader = CsvReader::open(&urls[i], schema.clone(), &opts, &config)?;
            if let Some(names) = &header {
                reader = reader.expect_header(&first, names.clone());
            }
            Ok(batches(reader))
        });
        Ok(self.batch_source("csv", url, opts_text, n, open))
    }

    /// JSON-lines files at `url`, split at line ends like text; the schema is `opts.schema` or
    /// inferred from the first records (reading on through splits of blank lines). Without a
    /// schema, input with no JSON object at all (empty files) is an error saying to give one; a
    /// committed empty dataset (a `_SUCCESS` listing no file) gives an RDD without partitions.
    #[track_caller]
    pub fn json_lines(&self, url: &str, opts: JsonOptions) -> Result<Rdd<Batch>> {
        let config = self.conf().storage_config();
        let opts_text = format!("{opts:?}");
        let files = ember_storage::list_inputs(url, &config)?;
        let splits = ember_storage::plan_splits(&files, self.default_parallelism(), &config)?;
        if files.is_empty() {
            return Ok(self.batch_source(
                "json_lines",
                url,
                opts_text,
                0,
                Rc::new(|_| Ok(empty_batches())),
            ));
        }
        let schema: SchemaRef = match &opts.schema {
            Some(s) => s.clone(),
            None => ember_storage::infer_json_schema(url, &splits, &opts, &config)?,
        };
        let n = splits.len();
        let open = Rc::new(move |i: usize| -> ember_storage::Result<BatchIter> {
            Ok(batches(JsonLinesReader::open(
                &splits[i],
                schema.clone(),
                &opts,
                &config,
            )?))
        });
        Ok(self.batch_source("json_lines", url, opts_text, n, open))
    }

    /// Arrow IPC files at `url`, a few record batches per partition.
    #[track_caller]
    pub fn arrow(&self, url: &str) -> Result<Rdd<Batch>> {
        let config = self.conf().storage_config();
        let (_schema, splits) = ember_storage::ipc_splits(url, 4, &config)?;
        let n = splits.len();
        let open = Rc::new(move |i: usize| -> ember_storage::Result<BatchIter> {
            Ok(batches(ember_storage::read_ipc_split(&splits[i], &config)?))
        });
        Ok(self.batch_source("arrow", url, String::new(), n, open))
    }
}

/// How one task writes its partition through a task attempt of the job committer.
type WritePartition<T> =
    dyn Fn(&mut ember_storage::TaskAttempt, BoxIter<T>) -> ember_storage::Result<()>;

impl<T: Data> Rdd<T> {
    /// Runs a save job: worker 0 sets the job up (checking the save mode), every task writes its
    /// part through the committer, and worker 0 commits or aborts; every worker returns the same
    /// outcome.
    fn save_with(&self, url: &str, mode: SaveMode, write: Rc<WritePartition<T>>) -> Result<()> {
        let ctx = self.context();
        let config = ctx.conf().storage_config();
        // Worker 0 names the job and checks the destination; everyone learns the verdict.
        let setup: std::result::Result<String, ErrorCarrier> = if ctx.worker_index() == 0 {
            let job_id = JobCommitter::new_job_id();
            JobCommitter::new(url, &job_id, mode, &config)
                .and_then(|c| c.setup_job())
                .map(|_| job_id)
                .map_err(|e| ErrorCarrier::from(EngineError::from(e)))
        } else {
            Ok(String::new())
        };
        let setup = ctx.broadcast(setup)?;
        let job_id = match setup.value() {
            Ok(id) => id.clone(),
            Err(carried) => return Err(carried.decode()),
        };
        let committer = Rc::new(JobCommitter::new(url, &job_id, mode, &config)?);
        let tasks = Rc::clone(&committer);
        let written = self.run_partitions("save", move |tc, it| {
            let mut attempt = tasks.task(tc.partition, tc.attempt as u32);
            match write(&mut attempt, Box::new(it)) {
                Ok(()) => Some(attempt.commit()),
                Err(e) => {
                    let _ = attempt.abort();
                    tc.fail(e.into());
                    None
                }
            }
        });
        let outcome: std::result::Result<(), ErrorCarrier> = if ctx.worker_index() == 0 {
            let result = match &written {
                Ok(commits) => {
                    let commits: Vec<TaskCommit> = commits.iter().flatten().cloned().collect();
                    committer
                        .commit_job(&commits)
                        .map(|_| ())
                        .map_err(EngineError::from)
                }
                Err(_) => {
                    let _ = committer.abort_job();
                    Ok(())
                }
            };
            result.map_err(ErrorCarrier::from)
        } else {
            Ok(())
        };
        let outcome = ctx.broadcast(outcome)?;
        written?;
        match outcome.value() {
            Ok(()) => Ok(()),
            Err(carried) => Err(carried.decode()),
        }
    }

    /// Writes one line per element (its `Display` form) as part files under `url` (a path or any
    /// storage URL), committed atomically; fails if output already exists there.
    pub fn save_as_text_file(&self, url: impl AsRef<std::path::Path>) -> Result<()>
    where
        T: Display,
    {
        self.save_as_text_file_with(url, SaveMode::ErrorIfExists)
    }

    /// [`Rdd::save_as_text_file`] with a save mode (error if exists, overwrite, append).
    pub fn save_as_text_file_with(
        &self,
        url: impl AsRef<std::path::Path>,
        mode: SaveMode,
    ) -> Result<()>
    where
        T: Display,
    {
        let url = url.as_ref().to_string_lossy().into_owned();
        self.save_with(
            &url,
            mode,
            Rc::new(|attempt, it| {
                let mut w = attempt.text_writer()?;
                let mut line = String::new();
                for x in it {
                    use std::fmt::Write;
                    line.clear();
                    let _ = write!(line, "{x}");
                    w.write_line(&line)?;
                }
                w.finish().map(|_| ())
            }),
        )
    }
}

impl Rdd<Batch> {
    fn save_batches(&self, url: &str, mode: SaveMode, format: BatchFormat) -> Result<()> {
        self.save_with(
            url,
            mode,
            Rc::new(move |attempt, it| {
                let mut it = it.peekable();
                let Some(first) = it.peek() else {
                    return Ok(());
                };
                let schema = first.0.schema();
                match format {
                    BatchFormat::Parquet => {
                        let mut w = attempt.parquet_writer(schema)?;
                        for b in it {
                            w.write(&b.0)?;
                        }
                        w.finish().map(|_| ())
                    }
                    BatchFormat::Arrow => {
                        let mut w = attempt.ipc_writer(schema)?;
                        for b in it {
                            w.write(&b.0)?;
                        }
                        w.finish().map(|_| ())
                    }
                    BatchFormat::JsonLines => {
                        let mut w = attempt.json_lines_writer()?;
                        for b in it {
                            w.write(&b.0)?;
                        }
                        w.finish().map(|_| ())
                    }
                }
            }),
        )
    }

    /// Writes the batches as Parquet part files under `url`, committed atomically.
    pub fn save_as_parquet(&self, url: &str, mode: SaveMode) -> Result<()> {
        self.save_batches(url, mode, BatchFormat::Parquet)
    }

    /// Writes the batches as Arrow IPC part files under `url`, committed atomically.
    pub fn save_as_arrow(&self, url: &str, mode: SaveMode) -> Result<()> {
        self.save_batches(url, mode, BatchFormat::Arrow)
    }

    /// Writes the batches as JSON-lines part files under `url`, committed atomically.
    pub fn save_as_json_lines(&self, url: &str, mode: SaveMode) -> Result<()> {
        self.save_batches(url, mode, BatchFormat::JsonLines)
    }

    /// The total number of rows.
    pub fn count_rows(&self) -> Result<u64> {
        self.map(|b| b.num_rows() as u64).fold(0, |a, b| a + b)
    }
}

#[derive(Clone, Copy)]
enum BatchFormat {
    Parquet,
    Arrow,
    JsonLines,
}

/// An engine error travelling from worker 0 to its peers inside a broadcast.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ErrorCarrier {
    kind: String,
    path: String,
    message: String,
    retryable: bool,
}

impl From<EngineError> for ErrorCarrier {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::OutputExists { path } => ErrorCarrier {
                kind: "exists".into(),
                path: path.to_string_lossy().into_owned(),
                message: String::new(),
                retryable: false,
            },
            other => ErrorCarrier {
                kind: "storage".into(),
                path: String::new(),
                message: other.to_string(),
                retryable: other.is_retryable(),
            },
        }
    }
}

impl ErrorCarrier {
    fn decode(&self) -> EngineError {
        if self.kind == "exists" {
            EngineError::OutputExists {
                path: self.path.clone().into(),
            }
        } else {
            EngineError::Storage {
                message: self.message.clone(),
                retryable: self.retryable,
            }
        }
    }
}
