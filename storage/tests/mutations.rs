//! Mutation tests of the file-format readers (issue 12): seeded truncations, bit flips and byte
//! overwrites of small valid CSV, JSON lines, Parquet (as Ember writes it, with chunk checksums)
//! and Arrow IPC files. Every mutant reads as a typed error or as a valid read; none panics,
//! hangs (each case is timed) or allocates more than [`ALLOC_BOUND`] at once on its thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/mutate.rs"]
mod mutate;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ember_storage::sink::ParquetPartWriter;
use ember_storage::{
    infer_csv_schema, infer_json_schema, ipc_splits, parquet_splits, read_ipc_split,
    read_parquet_split, text_splits, CsvOptions, CsvReader, JobCommitter, JsonLinesReader,
    JsonOptions, Location, ParquetScan, SaveMode, StorageConfig, StorageError,
};

/// The largest single allocation a reader may make for these inputs of a few KiB.
const ALLOC_BOUND: usize = 64 << 20;
/// The longest one case may take (debug build, shared CI cores).
const CASE_LIMIT: Duration = Duration::from_secs(10);

thread_local! {
    /// The largest allocation made by this thread since the last [`reset_largest`].
    static LARGEST_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST_HERE.try_with(|c| c.set(c.get().max(size)));
}

/// The system allocator, recording the largest allocation.
struct Recording;

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        std::alloc::System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        note(size);
        std::alloc::System.realloc(ptr, layout, size)
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// Runs `read` on every mutant stored at `url`: a panic, a slow case or a huge allocation fails
/// the test naming the case. Returns how many mutants read without error.
fn check(
    format: &str,
    url: &str,
    valid: &[u8],
    n: usize,
    read: impl Fn(&str) -> Result<usize, StorageError>,
) -> usize {
    let cfg = StorageConfig::new();
    let loc = Location::resolve(url, &cfg).unwrap();
    loc.put(valid.to_vec()).unwrap();
    assert!(read(url).is_ok(), "{format}: the valid file reads");
    let mut ok = 0;
    for (i, m) in mutate::mutants(valid, 12, n).into_iter().enumerate() {
        loc.put(m).unwrap();
        let started = Instant::now();
        LARGEST_HERE.with(|c| c.set(0));
        let outcome = catch_unwind(AssertUnwindSafe(|| read(url)));
        let took = started.elapsed();
        let largest = LARGEST_HERE.with(|c| c.get());
        assert!(
            largest < ALLOC_BOUND,
            "{format}: mutant {i} (seed 12) made an allocation of {largest} bytes"
        );
        match outcome {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => {
                // Typed, and saying something.
                assert!(!e.to_string().is_empty(), "{format} case {i}");
            }
            Err(_) => panic!("{format}: mutant {i} (seed 12) panicked the reader"),
        }
        assert!(took < CASE_LIMIT, "{format}: mutant {i} took {took:?}");
    }
    ok
}

fn rows(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("name \"{i}\", x")),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| i as f64 * 0.5),
            )),
        ],
    )
    .unwrap()
}

#[test]
fn csv_mutants_are_errors_or_valid_reads() {
    let mut text = String::from("id,name,score\n");
    for i in 0..20 {
        text.push_str(&format!("{i},\"name \"\"{i}\"\", x\",{}\n", i as f64 * 0.5));
    }
    let cfg = StorageConfig::new();
    let ok = check(
        "csv",
        "memory://mutations/csv/data.csv",
        text.as_bytes(),
        3000,
        |url| {
            let opts = CsvOptions::default();
            let schema = infer_csv_schema(url, &opts, &cfg)?;
            let batches: Vec<RecordBatch> =
                CsvReader::open(url, schema, &opts, &cfg)?.collect::<Result<_, _>>()?;
            Ok(batches.iter().map(|b| b.num_rows()).sum())
        },
    );
    assert!(ok > 0 && ok < 3000, "{ok} of 3000 csv mutants read");
}

#[test]
fn json_lines_mutants_are_errors_or_valid_reads() {
    let text: String = (0..20)
        .map(|i| {
            format!(
                "{{\"id\": {i}, \"name\": \"n{i}\", \"tags\": [{i}, 2], \"s\": {}}}\n",
                i as f64 / 4.0
            )
        })
        .collect();
    let cfg = StorageConfig::new();
    let ok = check(
        "json lines",
        "memory://mutations/json/data.json",
        text.as_bytes(),
        3000,
        |url| {
            let opts = JsonOptions::default();
            let splits = text_splits(url, 2, &cfg)?;
            let schema = infer_json_schema(url, &splits, &opts, &cfg)?;
            let mut n = 0;
            for split in &splits {
                for b in JsonLinesReader::open(split, schema.clone(), &opts, &cfg)? {
                    n += b?.num_rows();
                }
            }
            Ok(n)
        },
    );
    assert!(ok > 0 && ok < 3000, "{ok} of 3000 json mutants read");
}

/// An Ember-written Parquet part file (with its per-chunk checksums).
fn parquet_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest = dest.to_str().unwrap();
    let cfg = StorageConfig::new();
    let job = JobCommitter::new(
        dest,
        &JobCommitter::new_job_id(),
        SaveMode::ErrorIfExists,
        &cfg,
    )
    .unwrap();
    job.setup_job().unwrap();
    let mut t = job.task(0, 0);
    let batch = rows(40);
    let mut pw = ParquetPartWriter::new(t.create_file("parquet").unwrap(), batch.schema()).unwrap();
    pw.write(&batch).unwrap();
    pw.finish().unwrap();
    job.commit_job(&[t.commit()]).unwrap();
    let part = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    std::fs::read(part).unwrap()
}

#[test]
fn parquet_mutants_are_errors_or_valid_reads() {
    let valid = parquet_file();
    let cfg = StorageConfig::new();
    check(
        "parquet",
        "memory://mutations/parquet/part-0.parquet",
        &valid,
        1500,
        |url| {
            let scan = ParquetScan::default();
            let plan = parquet_splits(url, &scan, &cfg)?;
            let mut n = 0;
            for split in &plan.splits {
                for b in read_parquet_split(split, &scan, &cfg)? {
                    n += b?.num_rows();
                }
            }
            Ok(n)
        },
    );
}

#[test]
fn arrow_ipc_mutants_are_errors_or_valid_reads() {
    let batch = rows(30);
    let mut valid = Vec::new();
    {
        let mut w = arrow_ipc::writer::FileWriter::try_new(&mut valid, &batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.write(&rows(5)).unwrap();
        w.finish().unwrap();
    }
    let cfg = StorageConfig::new();
    check(
        "arrow ipc",
        "memory://mutations/ipc/data.arrow",
        &valid,
        1500,
        |url| {
            let (_, splits) = ipc_splits(url, 1, &cfg)?;
            let mut n = 0;
            for split in &splits {
                for b in read_ipc_split(split, &cfg)? {
                    n += b?.num_rows();
                }
            }
            Ok(n)
        },
    );
}
