//! Inputs that used to read as wrong data or panic (issue 12): an unterminated CSV quote, CSV files
//! whose headers disagree, a Parquet predicate whose literal has the wrong type, an empty saved
//! Parquet dataset, a flipped byte in a Parquet page, and JSON lines with nothing to infer from.

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ember_storage::sink::ParquetPartWriter;
use ember_storage::{
    infer_csv_schema, infer_json_schema, ipc_splits, parquet_splits, read_csv_header,
    read_parquet_split, text_splits, CmpOp, CsvOptions, CsvReader, JobCommitter, JsonOptions,
    ParquetScan, ParseMode, Predicate, SaveMode, Scalar, StorageConfig, StorageError,
};

fn read_all(url: &str, opts: &CsvOptions) -> Result<Vec<RecordBatch>, StorageError> {
    let cfg = StorageConfig::new();
    let schema = match &opts.schema {
        Some(s) => s.clone(),
        None => infer_csv_schema(url, opts, &cfg)?,
    };
    CsvReader::open(url, schema, opts, &cfg)?.collect()
}

#[test]
fn an_unterminated_csv_quote_is_an_error_naming_file_line_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open-quote.csv");
    // Line 3 opens a quote that never closes: the csv crate would read lines 3..6 as one field.
    std::fs::write(
        &path,
        "id,name\n1,ok\n2,\"never closed\n3,lost\n4,lost\n5,lost\n",
    )
    .unwrap();
    let url = path.to_str().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    for mode in [ParseMode::FailFast, ParseMode::DropMalformed] {
        let opts = CsvOptions {
            schema: Some(schema.clone()),
            mode,
            ..Default::default()
        };
        match read_all(url, &opts) {
            Err(StorageError::MalformedRecord {
                url: u,
                position,
                reason,
                ..
            }) => {
                assert!(u.ends_with("open-quote.csv"), "{u}");
                assert_eq!(position, "line 3");
                assert!(
                    reason.contains("unterminated quoted field") && reason.contains("offset 15"),
                    "{reason}"
                );
            }
            other => panic!("{mode:?}: expected MalformedRecord, got {other:?}"),
        }
    }
    // Inference stops at the same place instead of inferring from a swallowed field.
    let short = dir.path().join("short.csv");
    std::fs::write(&short, "a,b\n1,\"x\n").unwrap();
    let err = infer_csv_schema(
        short.to_str().unwrap(),
        &CsvOptions::default(),
        &StorageConfig::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("short.csv") && err.to_string().contains("unterminated"),
        "{err}"
    );
    // A gzip file too: the check runs on the decompressed bytes.
    let gz = dir.path().join("open-quote.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &std::fs::read(&path).unwrap()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let opts = CsvOptions {
        schema: Some(schema),
        ..Default::default()
    };
    assert!(matches!(
        read_all(gz.to_str().unwrap(), &opts),
        Err(StorageError::MalformedRecord { .. })
    ));
}

#[test]
fn properly_closed_quotes_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fine.csv");
    std::fs::write(
        &path,
        "id,name\n1,\"multi\nline\"\n2,\"say \"\"hi\"\"\"\n3,5\" pipe\n4,\"last\"",
    )
    .unwrap();
    let batches = read_all(path.to_str().unwrap(), &CsvOptions::default()).unwrap();
    let names = batches[0]
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let names: Vec<&str> = names.iter().map(Option::unwrap).collect();
    assert_eq!(names, ["multi\nline", "say \"hi\"", "5\" pipe", "last"]);
}

#[test]
fn a_csv_file_whose_header_differs_from_the_first_is_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.csv");
    let second = dir.path().join("b.csv");
    std::fs::write(&first, "id,score\n1,10\n").unwrap();
    std::fs::write(&second, "score,id\n20,2\n").unwrap();
    let cfg = StorageConfig::new();
    let opts = CsvOptions::default();
    let (u1, u2) = (first.to_str().unwrap(), second.to_str().unwrap());
    let header = read_csv_header(u1, &opts, &cfg).unwrap().unwrap();
    assert_eq!(header, ["id", "score"]);
    let schema = infer_csv_schema(u1, &opts, &cfg).unwrap();
    // The first file against its own header reads.
    let ok: Vec<RecordBatch> = CsvReader::open(u1, schema.clone(), &opts, &cfg)
        .unwrap()
        .expect_header(u1, header.clone())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ok[0].num_rows(), 1);
    let err = CsvReader::open(u2, schema.clone(), &opts, &cfg)
        .unwrap()
        .expect_header(u1, header.clone())
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err();
    match &err {
        StorageError::Schema { url, reason } => {
            assert!(url.ends_with("b.csv"), "{url}");
            assert!(reason.contains("a.csv"), "{reason}");
            assert!(reason.contains("[score, id]") && reason.contains("[id, score]"));
            assert!(reason.contains("another order"), "{reason}");
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
    // A different column set is named too (without the reordering hint).
    std::fs::write(&second, "id,points\n3,30\n").unwrap();
    let err = CsvReader::open(u2, schema, &opts, &cfg)
        .unwrap()
        .expect_header(u1, header)
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[id, points]") && !err.contains("another order"),
        "{err}"
    );
    // Without the check (and for files without a header) columns stay positional.
    let ids = read_all(u2, &CsvOptions::default()).unwrap();
    let ids = ids[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(ids.value(0), 3);
    let no_header = CsvOptions {
        header: false,
        ..Default::default()
    };
    assert_eq!(read_csv_header(u2, &no_header, &cfg).unwrap(), None);
}

/// Saves `batches` (one part file, through the job committer) as a Parquet dataset at `dest`.
fn save_parquet(
    dest: &str,
    batches: &[RecordBatch],
    props: Option<parquet::file::properties::WriterProperties>,
) {
    let cfg = StorageConfig::new();
    let job = JobCommitter::new(
        dest,
        &JobCommitter::new_job_id(),
        SaveMode::ErrorIfExists,
        &cfg,
    )
    .unwrap();
    job.setup_job().unwrap();
    let mut commits = Vec::new();
    if let Some(first) = batches.first() {
        let mut t = job.task(0, 0);
        let w = t.create_file("parquet").unwrap();
        let mut pw = match props {
            Some(p) => ParquetPartWriter::with_properties(w, first.schema(), p).unwrap(),
            None => ParquetPartWriter::new(w, first.schema()).unwrap(),
        };
        for b in batches {
            pw.write(b).unwrap();
        }
        pw.finish().unwrap();
        commits.push(t.commit());
    }
    job.commit_job(&commits).unwrap();
}

fn ids_and_names(n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("ok", DataType::Boolean, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("n{i}")),
            )),
            Arc::new(arrow_array::BooleanArray::from_iter(
                (0..n).map(|i| Some(i % 2 == 0)),
            )),
        ],
    )
    .unwrap()
}

fn scan_with(p: Predicate) -> ParquetScan {
    ParquetScan {
        predicates: vec![p],
        ..Default::default()
    }
}

#[test]
fn a_parquet_predicate_of_the_wrong_type_is_an_error_naming_column_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ds");
    let dest = dest.to_str().unwrap();
    save_parquet(dest, &[ids_and_names(100)], None);
    let cfg = StorageConfig::new();
    let wrong = [
        ("id", Scalar::Str("abc".into()), "Int64", "string"),
        ("id", Scalar::Bool(true), "Int64", "boolean"),
        ("name", Scalar::Int(3), "Utf8", "integer"),
        ("ok", Scalar::Str("yes".into()), "Boolean", "string"),
    ];
    for (col, value, col_type, literal_kind) in wrong {
        let p = Predicate::new(col, CmpOp::GtEq, value);
        match parquet_splits(dest, &scan_with(p.clone()), &cfg) {
            Err(StorageError::PredicateType {
                column,
                column_type,
                literal,
                ref predicate,
                ..
            }) => {
                assert_eq!(
                    (column.as_str(), column_type.as_str(), literal),
                    (col, col_type, literal_kind)
                );
                assert!(predicate.starts_with(&format!("{col} >= ")), "{predicate}");
            }
            other => panic!("{p:?}: expected PredicateType, got {other:?}"),
        }
    }
    let msg = parquet_splits(
        dest,
        &scan_with(Predicate::new("id", CmpOp::GtEq, Scalar::Str("abc".into()))),
        &cfg,
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains(r#"id >= "abc""#) && msg.contains("Int64") && msg.contains("string"),
        "{msg}"
    );
    // Comparable literals still prune as before (a float against an integer column too).
    for p in [
        Predicate::new("id", CmpOp::GtEq, Scalar::Int(1000)),
        Predicate::new("id", CmpOp::Gt, Scalar::Float(99.5)),
    ] {
        assert!(parquet_splits(dest, &scan_with(p), &cfg)
            .unwrap()
            .splits
            .is_empty());
    }
    let keep = Predicate::new("name", CmpOp::Eq, Scalar::Str("n5".into()));
    assert_eq!(
        parquet_splits(dest, &scan_with(keep), &cfg)
            .unwrap()
            .splits
            .len(),
        1
    );

    // A file without row groups has no statistics to look at: the check still runs.
    let empty = dir.path().join("empty.parquet");
    let loc = ember_storage::Location::resolve(empty.to_str().unwrap(), &cfg).unwrap();
    let w = ember_storage::ObjectWriter::create(&loc, &cfg).unwrap();
    ParquetPartWriter::new(w, ids_and_names(1).schema())
        .unwrap()
        .finish()
        .unwrap();
    let bad = scan_with(Predicate::new("id", CmpOp::Lt, Scalar::Str("abc".into())));
    assert!(matches!(
        parquet_splits(empty.to_str().unwrap(), &bad, &cfg),
        Err(StorageError::PredicateType { .. })
    ));
    let unknown = scan_with(Predicate::new("nope", CmpOp::Lt, Scalar::Int(1)));
    assert!(matches!(
        parquet_splits(empty.to_str().unwrap(), &unknown, &cfg),
        Err(StorageError::Schema { .. })
    ));
}

#[test]
fn an_empty_saved_dataset_reads_back_as_empty_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("empty");
    let dest = dest.to_str().unwrap();
    save_parquet(dest, &[], None);
    let cfg = StorageConfig::new();
    let plan = parquet_splits(dest, &ParquetScan::default(), &cfg).unwrap();
    assert!(plan.splits.is_empty());
    assert_eq!(plan.schema.fields().len(), 0);
    assert!(text_splits(dest, 4, &cfg).unwrap().is_empty());
    assert!(ipc_splits(dest, 4, &cfg).unwrap().1.is_empty());
    assert!(ember_storage::list_inputs(dest, &cfg).unwrap().is_empty());
    // A directory that was never committed is still "no input".
    let never = dir.path().join("never");
    std::fs::create_dir(&never).unwrap();
    assert!(matches!(
        parquet_splits(never.to_str().unwrap(), &ParquetScan::default(), &cfg),
        Err(StorageError::NoInputs { .. })
    ));
}

/// The file offset of the middle of column `col`'s chunk in row group 0 of `file`.
fn middle_of_chunk(file: &std::path::Path, col: usize) -> usize {
    let meta = ember_storage::formats::parquet::read_metadata(
        file.to_str().unwrap(),
        &StorageConfig::new(),
    )
    .unwrap();
    let (start, len) = meta.metadata().row_group(0).column(col).byte_range();
    (start + len / 2) as usize
}

#[test]
fn a_flipped_byte_in_a_written_parquet_page_is_an_error_not_other_values() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ds");
    // Plain, uncompressed pages: a flipped byte in the values decodes fine as another value.
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
        .build();
    save_parquet(dest.to_str().unwrap(), &[ids_and_names(1000)], Some(props));
    let file = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let cfg = StorageConfig::new();
    let read_ids = |scan: &ParquetScan| -> Result<Vec<i64>, StorageError> {
        let plan = parquet_splits(dest.to_str().unwrap(), scan, &cfg)?;
        let mut ids = Vec::new();
        for s in &plan.splits {
            for b in read_parquet_split(s, scan, &cfg)? {
                let b = b?;
                let i = b.schema().index_of("id").unwrap();
                let col = b.column(i).as_any().downcast_ref::<Int64Array>().unwrap();
                ids.extend(col.values().iter().copied());
            }
        }
        Ok(ids)
    };
    assert_eq!(
        read_ids(&ParquetScan::default()).unwrap(),
        (0..1000).collect::<Vec<_>>()
    );

    let original = std::fs::read(&file).unwrap();
    let mut bytes = original.clone();
    let at = middle_of_chunk(&file, 0);
    bytes[at] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();
    // Without Ember's check the damage is silent: the plain decoder returns other values.
    let raw: Vec<i64> = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&file).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .flat_map(|b| {
        let b = b.unwrap();
        b.column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
    })
    .collect();
    assert_eq!(raw.len(), 1000);
    assert_ne!(
        raw,
        (0..1000).collect::<Vec<_>>(),
        "the flip changed a value"
    );
    match read_ids(&ParquetScan::default()) {
        Err(StorageError::Corrupt { url, reason }) => {
            assert!(url.ends_with(".parquet"), "{url}");
            assert!(
                reason.contains("column chunk `id` of row group 0") && reason.contains("CRC-32"),
                "{reason}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Damage in a column the scan does not read does not stop it; reading that column fails.
    let mut bytes = original;
    bytes[middle_of_chunk(&file, 1)] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let only_ids = ParquetScan {
        projection: Some(vec!["id".into()]),
        ..Default::default()
    };
    assert_eq!(read_ids(&only_ids).unwrap(), (0..1000).collect::<Vec<_>>());
    assert!(matches!(
        read_ids(&ParquetScan::default()),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn json_lines_without_records_to_infer_from_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig::new();
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let url = empty.to_str().unwrap();
    let splits = text_splits(url, 2, &cfg).unwrap();
    assert!(splits.is_empty());
    let err = infer_json_schema(url, &splits, &JsonOptions::default(), &cfg).unwrap_err();
    match &err {
        StorageError::Schema { url: u, reason } => {
            assert!(u.ends_with("empty.json"), "{u}");
            assert!(reason.contains("JsonOptions::schema"), "{reason}");
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
    // Blank lines first: inference reads on into later splits instead of inferring nothing.
    let late = dir.path().join("late.json");
    std::fs::write(&late, format!("{}{{\"a\": 1}}\n", "\n".repeat(4000))).unwrap();
    let cfg = StorageConfig::new().with("ember.storage.maxSplitBytes", "1000");
    let splits = text_splits(late.to_str().unwrap(), 4, &cfg).unwrap();
    assert!(splits.len() > 1);
    let schema = infer_json_schema(
        late.to_str().unwrap(),
        &splits,
        &JsonOptions::default(),
        &cfg,
    )
    .unwrap();
    assert_eq!(schema.field(0).name(), "a");
    let blank = dir.path().join("blank.json");
    std::fs::write(&blank, "\n\n  \n").unwrap();
    let splits = text_splits(blank.to_str().unwrap(), 1, &cfg).unwrap();
    assert!(matches!(
        infer_json_schema(
            blank.to_str().unwrap(),
            &splits,
            &JsonOptions::default(),
            &cfg
        ),
        Err(StorageError::Schema { .. })
    ));
}
