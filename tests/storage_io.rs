//! The engine's columnar sources and sinks over the storage layer: Parquet, Arrow IPC, JSON lines
//! and CSV written by one job and read back by another, with projection and row-group pruning.

use std::sync::Arc;

use ember::engine::{Batch, CsvOptions, JsonOptions, ParquetScan, SaveMode};
use ember::prelude::*;
use ember::storage::arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use ember::storage::arrow_schema::{DataType, Field, Schema};

fn batch(start: i64, n: i64) -> Batch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
    ]));
    let ids = Int64Array::from_iter_values(start..start + n);
    let names = StringArray::from_iter_values((start..start + n).map(|i| format!("n{i}")));
    Batch(RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(names)]).unwrap())
}

fn id_sum(b: &Batch) -> i64 {
    let col = b.batch().column_by_name("id").unwrap();
    let ids = col.as_any().downcast_ref::<Int64Array>().unwrap();
    ids.iter().flatten().sum()
}

#[test]
fn columnar_formats_round_trip_through_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    let out = ember::engine::run(Conf::new(), move |ctx| {
        // 8 batches of 100 rows: ids 0..800, two per partition.
        let batches = ctx
            .parallelize((0..8).map(|i| batch(i * 100, 100)).collect(), 4)
            .unwrap();
        let mut results = Vec::new();
        for (fmt, dir) in [("parquet", "p"), ("arrow", "a"), ("json", "j")] {
            let url = format!("{root}/{dir}");
            match fmt {
                "parquet" => batches
                    .save_as_parquet(&url, SaveMode::ErrorIfExists)
                    .unwrap(),
                "arrow" => batches
                    .save_as_arrow(&url, SaveMode::ErrorIfExists)
                    .unwrap(),
                _ => batches
                    .save_as_json_lines(&url, SaveMode::ErrorIfExists)
                    .unwrap(),
            }
            let back = match fmt {
                "parquet" => ctx.parquet(&url, ParquetScan::default()).unwrap(),
                "arrow" => ctx.arrow(&url).unwrap(),
                _ => ctx.json_lines(&url, JsonOptions::default()).unwrap(),
            };
            let rows = back.count_rows().unwrap();
            let sum = back.map(|b| id_sum(&b)).fold(0, |a, b| a + b).unwrap();
            results.push((fmt.to_string(), rows, sum));
        }
        // Existing output is refused by default and replaced in overwrite mode.
        let again = batches
            .save_as_parquet(&format!("{root}/p"), SaveMode::ErrorIfExists)
            .unwrap_err();
        batches
            .filter(|b| id_sum(b) < 10_000)
            .save_as_parquet(&format!("{root}/p"), SaveMode::Overwrite)
            .unwrap();
        let rewritten = ctx
            .parquet(&format!("{root}/p"), ParquetScan::default())
            .unwrap()
            .count_rows()
            .unwrap();
        // Projection keeps only the asked-for column.
        let scan = ParquetScan {
            projection: Some(vec!["name".into()]),
            ..ParquetScan::default()
        };
        let columns: Vec<usize> = ctx
            .parquet(&format!("{root}/p"), scan)
            .unwrap()
            .map(|b| b.batch().num_columns())
            .collect()
            .unwrap();
        (results, again, rewritten, columns)
    })
    .unwrap();
    let (results, again, rewritten, columns) = out;
    for (fmt, rows, sum) in results {
        assert_eq!(rows, 800, "{fmt}");
        assert_eq!(sum, (0..800).sum::<i64>(), "{fmt}");
    }
    assert!(
        matches!(again, EngineError::OutputExists { .. }),
        "{again:?}"
    );
    assert_eq!(
        rewritten, 100,
        "only the first batch (ids 0..100, sum 4950) passes the filter"
    );
    assert!(
        !columns.is_empty() && columns.iter().all(|&c| c == 1),
        "{columns:?}"
    );
}

#[test]
fn csv_source_reads_typed_columns_and_names_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "id,name\n1,a\n2,b\n3,c\n").unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "id,name\n1,a\n2,b,extra\n").unwrap();
    let (g, b) = (
        good.to_string_lossy().into_owned(),
        bad.to_string_lossy().into_owned(),
    );
    let (sum, err) = ember::engine::run(Conf::new(), move |ctx| {
        let rdd = ctx.csv(&g, CsvOptions::default()).unwrap();
        let sum = rdd.map(|b| id_sum(&b)).fold(0, |a, b| a + b).unwrap();
        let err = ctx
            .csv(&b, CsvOptions::default())
            .and_then(|r| r.count_rows())
            .unwrap_err();
        (sum, err)
    })
    .unwrap();
    assert_eq!(sum, 6);
    assert!(err.to_string().contains("bad.csv"), "{err}");
}
