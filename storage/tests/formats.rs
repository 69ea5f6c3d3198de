//! CSV, JSON lines, Parquet, Arrow IPC and typed rows, written and read back through the crate.

mod common;

use std::sync::Arc;

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ember_storage::formats::rows::{batch_from_rows, rows_from_batches, schema_of};
use ember_storage::{
    infer_csv_schema, infer_json_schema, ipc_splits, parquet_splits, read_ipc_split,
    read_parquet_split, text_splits, CmpOp, CsvOptions, CsvReader, JobCommitter, JsonLinesReader,
    JsonOptions, ParquetScan, ParseMode, Predicate, SaveMode, Scalar, StorageConfig, StorageError,
};
use serde::{Deserialize, Serialize};

fn collect<I: Iterator<Item = Result<RecordBatch, StorageError>>>(it: I) -> Vec<RecordBatch> {
    it.collect::<Result<Vec<_>, _>>().unwrap()
}

#[test]
fn csv_with_header_quotes_and_inference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.csv");
    std::fs::write(
        &path,
        "name,age,score,ok\n\"Smith, J\",42,1.5,true\n\"say \"\"hi\"\"\",7,,false\nplain,,2,\n",
    )
    .unwrap();
    let url = path.to_str().unwrap();
    let cfg = StorageConfig::new();
    let opts = CsvOptions::default();
    let schema = infer_csv_schema(url, &opts, &cfg).unwrap();
    let types: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("name".into(), DataType::Utf8),
            ("age".into(), DataType::Int64),
            ("score".into(), DataType::Float64),
            ("ok".into(), DataType::Boolean)
        ]
    );
    let batches = collect(CsvReader::open(url, schema, &opts, &cfg).unwrap());
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.num_rows(), 3);
    let names = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(names.value(0), "Smith, J");
    assert_eq!(names.value(1), "say \"hi\"");
    let ages = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!((ages.value(0), ages.is_null(2)), (42, true));
    let scores = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
    assert!(scores.is_null(1) && scores.value(2) == 2.0);
}

#[test]
fn csv_delimiter_no_header_and_given_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tsv");
    std::fs::write(&path, "1\tx\n2\ty\n3\tz\n").unwrap();
    let cfg = StorageConfig::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int32, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let opts = CsvOptions {
        header: false,
        delimiter: b'\t',
        batch_size: 2,
        ..Default::default()
    };
    let batches = collect(CsvReader::open(path.to_str().unwrap(), schema, &opts, &cfg).unwrap());
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let inferred = infer_csv_schema(path.to_str().unwrap(), &opts, &cfg).unwrap();
    assert_eq!(inferred.field(0).name(), "_c0");
    assert_eq!(inferred.field(0).data_type(), &DataType::Int64);
}

#[test]
fn malformed_csv_row_names_url_and_line_or_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, "a,b\n1,2\n3,4\n5\n6,seven\n8,9\n").unwrap();
    let url = path.to_str().unwrap();
    let cfg = StorageConfig::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Int64, true),
    ]));
    let strict: Result<Vec<_>, _> =
        CsvReader::open(url, schema.clone(), &CsvOptions::default(), &cfg)
            .unwrap()
            .collect();
    match strict {
        Err(StorageError::MalformedRecord {
            url: u,
            position,
            reason,
            ..
        }) => {
            assert!(u.ends_with("bad.csv"));
            assert_eq!(position, "line 4");
            assert!(reason.contains("expected 2 fields"), "{reason}");
        }
        other => panic!("expected MalformedRecord, got {other:?}"),
    }
    let opts = CsvOptions {
        mode: ParseMode::DropMalformed,
        ..Default::default()
    };
    let mut r = CsvReader::open(url, schema, &opts, &cfg).unwrap();
    let batches: Vec<RecordBatch> = r.by_ref().collect::<Result<_, _>>().unwrap();
    let a = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(a.values().to_vec(), vec![1, 3, 8]);
    assert_eq!(r.dropped_rows(), 2);
}

#[test]
fn json_lines_split_reading_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    let mut text = String::new();
    for i in 0..500 {
        text.push_str(&format!(
            "{{\"id\": {i}, \"name\": \"n{i}\", \"tags\": [\"a\", \"b\"], \"v\": {}.5}}\n",
            i * 2
        ));
    }
    std::fs::write(&path, &text).unwrap();
    let url = path.to_str().unwrap();
    let cfg = StorageConfig::new().with("ember.storage.maxSplitBytes", "1000");
    let splits = text_splits(url, 100, &cfg).unwrap();
    assert!(splits.len() > 10);
    let opts = JsonOptions {
        batch_size: 64,
        ..Default::default()
    };
    let schema = infer_json_schema(url, &splits[..1], &opts, &cfg).unwrap();
    assert_eq!(
        schema.field_with_name("id").unwrap().data_type(),
        &DataType::Int64
    );
    let mut ids = Vec::new();
    for s in &splits {
        for b in collect(JsonLinesReader::open(s, schema.clone(), &opts, &cfg).unwrap()) {
            let col = b
                .column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            ids.extend(col.values().iter().copied());
        }
    }
    assert_eq!(ids, (0..500).collect::<Vec<i64>>());

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"id\": 1}\n{\"id\": \"x\"}\n{oops\n{\"id\": 4}\n").unwrap();
    let split = text_splits(bad.to_str().unwrap(), 1, &StorageConfig::new())
        .unwrap()
        .remove(0);
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    let strict: Result<Vec<_>, _> =
        JsonLinesReader::open(&split, schema.clone(), &JsonOptions::default(), &cfg)
            .unwrap()
            .collect();
    match strict {
        Err(StorageError::MalformedRecord { position, url, .. }) => {
            assert_eq!(position, "byte offset 10");
            assert!(url.ends_with("bad.json"));
        }
        other => panic!("expected MalformedRecord, got {other:?}"),
    }
    let opts = JsonOptions {
        mode: ParseMode::DropMalformed,
        ..Default::default()
    };
    let mut r = JsonLinesReader::open(&split, schema, &opts, &cfg).unwrap();
    let batches: Vec<RecordBatch> = r.by_ref().collect::<Result<_, _>>().unwrap();
    let ids = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(ids.values().to_vec(), vec![1, 4]);
    assert_eq!(r.dropped_rows(), 2);
}

fn numbers_batch(from: i64, n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
        Field::new("label", DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(from..from + n)),
            Arc::new(Float64Array::from_iter_values(
                (from..from + n).map(|i| i as f64 * 0.5),
            )),
            Arc::new(StringArray::from_iter_values(
                (from..from + n).map(|i| format!("k{:04}", i / 100)),
            )),
        ],
    )
    .unwrap()
}

/// Writes a Parquet dataset of `parts` files, each with `groups` row groups of `rows` rows.
fn write_parquet_dataset(dest: &str, parts: i64, groups: i64, rows: i64, cfg: &StorageConfig) {
    let job = JobCommitter::new(
        dest,
        &JobCommitter::new_job_id(),
        SaveMode::ErrorIfExists,
        cfg,
    )
    .unwrap();
    job.setup_job().unwrap();
    let mut commits = Vec::new();
    for p in 0..parts {
        let mut t = job.task(p as usize, 0);
        let batch = numbers_batch(0, 1);
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(rows as usize))
            .build();
        let w = t.create_file("parquet").unwrap();
        let mut pw =
            ember_storage::sink::ParquetPartWriter::with_properties(w, batch.schema(), props)
                .unwrap();
        pw.write(&numbers_batch(p * groups * rows, groups * rows))
            .unwrap();
        pw.finish().unwrap();
        commits.push(t.commit());
    }
    job.commit_job(&commits).unwrap();
}

#[test]
fn parquet_row_groups_projection_and_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ds");
    let dest = dest.to_str().unwrap();
    let cfg = StorageConfig::new();
    write_parquet_dataset(dest, 2, 4, 250, &cfg);
    let scan = ParquetScan {
        projection: Some(vec!["label".into(), "id".into()]),
        ..Default::default()
    };
    let plan = parquet_splits(dest, &scan, &cfg).unwrap();
    assert_eq!(
        (
            plan.total_row_groups,
            plan.splits.len(),
            plan.pruned_row_groups
        ),
        (8, 8, 0)
    );
    assert_eq!(
        plan.schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        vec!["label", "id"]
    );
    let mut ids = Vec::new();
    for s in &plan.splits {
        for b in collect(read_parquet_split(s, &scan, &cfg).unwrap()) {
            assert_eq!(b.num_columns(), 2);
            ids.extend(
                b.column(1)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .iter()
                    .copied(),
            );
        }
    }
    assert_eq!(ids, (0..2000).collect::<Vec<_>>());

    // id >= 1700 keeps only the last row groups (1500..1750 straddles, 1750..2000).
    let pruned = ParquetScan {
        predicates: vec![Predicate::new("id", CmpOp::GtEq, Scalar::Int(1700))],
        ..Default::default()
    };
    let plan = parquet_splits(dest, &pruned, &cfg).unwrap();
    assert_eq!((plan.splits.len(), plan.pruned_row_groups), (2, 6));
    // Every row satisfying the predicate is still in the kept groups.
    let kept: i64 = plan.splits.iter().map(|s| s.rows as i64).sum();
    assert_eq!(kept, 500);
    let eq = ParquetScan {
        predicates: vec![Predicate::new(
            "label",
            CmpOp::Eq,
            Scalar::Str("k0003".into()),
        )],
        ..Default::default()
    };
    assert_eq!(parquet_splits(dest, &eq, &cfg).unwrap().splits.len(), 1); // ids 300..399 lie in group 250..500
    let none = ParquetScan {
        predicates: vec![Predicate::new("x", CmpOp::Lt, Scalar::Float(-1.0))],
        ..Default::default()
    };
    assert!(parquet_splits(dest, &none, &cfg).unwrap().splits.is_empty());
    let bad = ParquetScan {
        predicates: vec![Predicate::new("nope", CmpOp::Eq, Scalar::Int(1))],
        ..Default::default()
    };
    assert!(matches!(
        parquet_splits(dest, &bad, &cfg),
        Err(StorageError::Schema { .. })
    ));
    let bad = ParquetScan {
        projection: Some(vec!["nope".into()]),
        ..Default::default()
    };
    assert!(matches!(
        parquet_splits(dest, &bad, &cfg),
        Err(StorageError::Schema { .. })
    ));
}

#[test]
fn corrupt_parquet_footer_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ds");
    let cfg = StorageConfig::new();
    write_parquet_dataset(dest.to_str().unwrap(), 1, 1, 100, &cfg);
    let file = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(b"XXXX"); // destroy the magic
    std::fs::write(&file, &bytes).unwrap();
    match parquet_splits(file.to_str().unwrap(), &ParquetScan::default(), &cfg) {
        Err(StorageError::Parquet { url, .. }) => assert!(url.ends_with(".parquet")),
        other => panic!("expected a Parquet error, got {other:?}"),
    }
    std::fs::write(&file, &bytes[..n / 3]).unwrap(); // truncated
    assert!(matches!(
        parquet_splits(file.to_str().unwrap(), &ParquetScan::default(), &cfg),
        Err(StorageError::Parquet { .. })
    ));
}

#[test]
fn arrow_ipc_and_json_lines_sinks_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig::new();
    let ipc_dest = dir.path().join("ipc");
    let job = JobCommitter::new(
        ipc_dest.to_str().unwrap(),
        "job-ipc",
        SaveMode::ErrorIfExists,
        &cfg,
    )
    .unwrap();
    let mut t = job.task(0, 0);
    let mut w = t.ipc_writer(numbers_batch(0, 1).schema()).unwrap();
    for k in 0..5 {
        w.write(&numbers_batch(k * 10, 10)).unwrap();
    }
    w.finish().unwrap();
    job.commit_job(&[t.commit()]).unwrap();
    let (schema, splits) = ipc_splits(ipc_dest.to_str().unwrap(), 2, &cfg).unwrap();
    assert_eq!(schema.fields().len(), 3);
    assert_eq!(
        splits.iter().map(|s| s.batches.clone()).collect::<Vec<_>>(),
        vec![0..2, 2..4, 4..5]
    );
    let mut ids = Vec::new();
    for s in &splits {
        for b in collect(read_ipc_split(s, &cfg).unwrap()) {
            ids.extend(
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .iter()
                    .copied(),
            );
        }
    }
    assert_eq!(ids, (0..50).collect::<Vec<_>>());

    let json_dest = dir.path().join("json");
    let job = JobCommitter::new(
        json_dest.to_str().unwrap(),
        "job-json",
        SaveMode::ErrorIfExists,
        &cfg,
    )
    .unwrap();
    let mut t = job.task(0, 0);
    let mut w = t.json_lines_writer().unwrap();
    w.write(&numbers_batch(0, 20)).unwrap();
    w.finish().unwrap();
    job.commit_job(&[t.commit()]).unwrap();
    let split = text_splits(json_dest.to_str().unwrap(), 1, &cfg)
        .unwrap()
        .remove(0);
    let batches = collect(
        JsonLinesReader::open(
            &split,
            numbers_batch(0, 1).schema(),
            &JsonOptions::default(),
            &cfg,
        )
        .unwrap(),
    );
    assert_eq!(batches[0], numbers_batch(0, 20));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Person {
    name: String,
    age: i64,
    email: Option<String>,
}

#[test]
fn typed_rows_through_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig::new();
    let people: Vec<Person> = (0..100)
        .map(|i| Person {
            name: format!("p{i}"),
            age: 20 + i % 50,
            email: (i % 3 == 0).then(|| format!("p{i}@x.org")),
        })
        .collect();
    let schema = schema_of::<Person>().unwrap();
    let batch = batch_from_rows(&schema, &people).unwrap();
    let dest = dir.path().join("people");
    let job = JobCommitter::new(
        dest.to_str().unwrap(),
        "rows",
        SaveMode::ErrorIfExists,
        &cfg,
    )
    .unwrap();
    let mut t = job.task(0, 0);
    let mut w = t.parquet_writer(schema).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    job.commit_job(&[t.commit()]).unwrap();
    let plan = parquet_splits(dest.to_str().unwrap(), &ParquetScan::default(), &cfg).unwrap();
    let batches: Vec<RecordBatch> = plan
        .splits
        .iter()
        .flat_map(|s| collect(read_parquet_split(s, &ParquetScan::default(), &cfg).unwrap()))
        .collect();
    let back: Vec<Person> = rows_from_batches(dest.to_str().unwrap(), &batches).unwrap();
    assert_eq!(back, people);
}
