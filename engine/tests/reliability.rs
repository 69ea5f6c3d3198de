//! Inputs and arguments that used to lose data, mean something else silently, or panic (issue
//! 12): extreme `range` bounds, zero partitions, a partitioner returning an out-of-range index,
//! CSV files with disagreeing headers or an open quote, JSON lines with nothing to infer a schema
//! from, and an empty dataset saved as Parquet and read back.

use ember_engine::prelude::*;
use ember_engine::shuffle::{Partitioner, PartitionerDesc};
use ember_engine::EngineError;
use ember_storage::{CsvOptions, JsonOptions, ParquetScan, SaveMode};

fn conf() -> Conf {
    Conf::new().with("ember.master", "local[2]").unwrap()
}

fn run<R: Send + 'static>(f: impl Fn(&Context) -> R + Send + Sync + 'static) -> R {
    ember_engine::run(conf(), f).unwrap()
}

#[test]
fn range_with_extreme_bounds_loses_no_element() {
    let (big_steps, down, near_max, count) = run(|ctx| {
        let big = ctx.range(i64::MIN, i64::MAX, i64::MAX, 3)?.collect()?;
        let down = ctx.range(i64::MAX, i64::MIN, i64::MIN, 2)?.collect()?;
        let near_max = ctx.range(i64::MAX - 5, i64::MAX, 2, 4)?.collect()?;
        let count = ctx.range(-1_000_000, 1_000_000, 7, 4)?.count()?;
        Ok::<_, EngineError>((big, down, near_max, count))
    })
    .unwrap();
    assert_eq!(big_steps, [i64::MIN, -1, i64::MAX - 1]);
    assert_eq!(down, [i64::MAX, -1]);
    assert_eq!(near_max, [i64::MAX - 5, i64::MAX - 3, i64::MAX - 1]);
    assert_eq!(count, 2_000_000u64.div_ceil(7));
}

#[test]
fn zero_partitions_is_an_error_everywhere() {
    let errors = run(|ctx| {
        let pairs = ctx.parallelize((0..100u64).map(|i| (i % 7, i)).collect(), 4)?;
        let sort = pairs.sort_by_key(true, Some(0)).map(|_| ()).unwrap_err();
        let repartition = pairs.repartition(0).map(|_| ()).unwrap_err();
        let reduce = pairs
            .reduce_by_key_with(|a, b| a + b, 0)
            .collect()
            .unwrap_err();
        let group = pairs.group_by_key_with(0).count().unwrap_err();
        let combine = pairs
            .combine_by_key(|v| v, |a, b| a + b, |a, b| a + b, Some(0))
            .count()
            .unwrap_err();
        Ok::<_, EngineError>(vec![sort, repartition, reduce, group, combine])
    })
    .unwrap();
    assert!(
        matches!(&errors[0], EngineError::InvalidArgument { operation, .. } if operation == "sort_by_key"),
        "{:?}",
        errors[0]
    );
    assert!(matches!(errors[1], EngineError::InvalidArgument { .. }));
    for e in &errors[2..] {
        let msg = e.to_string();
        assert!(msg.contains("at least 1"), "{msg}");
    }
}

/// Sends key k to partition k: out of range for keys >= 4.
struct ByValue;

impl Partitioner<u64> for ByValue {
    fn num_partitions(&self) -> usize {
        4
    }
    fn partition(&self, key: &u64) -> usize {
        *key as usize
    }
    fn desc(&self) -> PartitionerDesc {
        PartitionerDesc::Identity(4)
    }
}

#[test]
fn a_partitioner_returning_an_out_of_range_partition_fails_the_job_with_a_typed_error() {
    let (good, bad) = run(|ctx| {
        let small = ctx.parallelize((0..4u64).map(|k| (k, k * 10)).collect(), 2)?;
        let mut good = small.partition_by(ByValue).glom().collect()?;
        good.sort();
        let big = ctx.parallelize((0..10u64).map(|k| (k, k)).collect(), 2)?;
        let bad = big.partition_by(ByValue).collect().unwrap_err();
        Ok::<_, EngineError>((good, bad))
    })
    .unwrap();
    assert_eq!(
        good,
        vec![vec![(0, 0)], vec![(1, 10)], vec![(2, 20)], vec![(3, 30)]]
    );
    let msg = bad.to_string();
    assert!(
        msg.contains("ByValue")
            && msg.contains("returned partition")
            && msg.contains("4 partitions"),
        "{msg}"
    );
    assert!(!msg.contains("panic"), "{msg}");
}

#[test]
fn csv_sources_refuse_reordered_headers_and_open_quotes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id,score\n1,10\n2,20\n").unwrap();
    std::fs::write(dir.path().join("b.csv"), "score,id\n30,3\n").unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let (err, given_schema_err) = run(move |ctx| {
        let err = ctx
            .csv(&path, CsvOptions::default())?
            .count_rows()
            .unwrap_err();
        let schema = std::sync::Arc::new(ember_storage::arrow_schema::Schema::new(vec![
            ember_storage::arrow_schema::Field::new(
                "x",
                ember_storage::arrow_schema::DataType::Int64,
                true,
            ),
            ember_storage::arrow_schema::Field::new(
                "y",
                ember_storage::arrow_schema::DataType::Int64,
                true,
            ),
        ]));
        let opts = CsvOptions {
            schema: Some(schema),
            ..Default::default()
        };
        let given = ctx.csv(&path, opts)?.count_rows().unwrap_err();
        Ok::<_, EngineError>((err, given))
    })
    .unwrap();
    for e in [&err, &given_schema_err] {
        let msg = e.to_string();
        assert!(msg.contains("a.csv") && msg.contains("b.csv"), "{msg}");
    }
    // Same headers: read (a given schema renames the columns, as before).
    std::fs::write(dir.path().join("b.csv"), "id,score\n3,30\n").unwrap();
    std::fs::write(dir.path().join("c.csv"), "id,score\n4,\"open\n5,50\n").unwrap();
    let path = dir.path().join("[ab].csv").to_str().unwrap().to_string();
    let open = dir.path().join("c.csv").to_str().unwrap().to_string();
    let (rows, open_err) = run(move |ctx| {
        let rows = ctx.csv(&path, CsvOptions::default())?.count_rows()?;
        // Found while inferring the schema, before any job.
        let open_err = ctx
            .csv(&open, CsvOptions::default())
            .and_then(|r| r.count_rows())
            .unwrap_err();
        Ok::<_, EngineError>((rows, open_err))
    })
    .unwrap();
    assert_eq!(rows, 3);
    let msg = open_err.to_string();
    assert!(
        msg.contains("c.csv") && msg.contains("unterminated"),
        "{msg}"
    );
}

#[test]
fn json_lines_on_an_empty_file_without_a_schema_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.json");
    std::fs::write(&file, "").unwrap();
    let url = file.to_str().unwrap().to_string();
    let err = run(move |ctx| ctx.json_lines(&url, JsonOptions::default()).map(|_| ())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("empty.json") && msg.contains("schema"),
        "{msg}"
    );
}

#[test]
fn an_empty_dataset_saved_as_parquet_reads_back_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_str().unwrap().to_string();
    std::fs::write(dir.path().join("in.csv"), "id,name\n1,a\n2,b\n").unwrap();
    let counts = run(move |ctx| {
        let csv = format!("{base}/in.csv");
        // Every batch filtered out: no partition writes a part file.
        let empty = ctx
            .csv(&csv, CsvOptions::default())?
            .filter(|b| b.num_rows() > 100);
        let mut counts = Vec::new();
        for (name, save) in [
            ("pq", SaveMode::ErrorIfExists),
            ("arrow", SaveMode::ErrorIfExists),
            ("json", SaveMode::ErrorIfExists),
        ] {
            let out = format!("{base}/{name}");
            match name {
                "pq" => empty.save_as_parquet(&out, save)?,
                "arrow" => empty.save_as_arrow(&out, save)?,
                _ => empty.save_as_json_lines(&out, save)?,
            }
        }
        counts.push(
            ctx.parquet(&format!("{base}/pq"), ParquetScan::default())?
                .count_rows()?,
        );
        counts.push(ctx.arrow(&format!("{base}/arrow"))?.count_rows()?);
        counts.push(
            ctx.json_lines(&format!("{base}/json"), JsonOptions::default())?
                .count_rows()?,
        );
        counts.push(
            ctx.csv(&format!("{base}/json"), CsvOptions::default())?
                .count_rows()?,
        );
        counts.push(ctx.text_file(format!("{base}/json"), 2)?.count()?);
        Ok::<_, EngineError>(counts)
    })
    .unwrap();
    assert_eq!(counts, [0, 0, 0, 0, 0]);
}
