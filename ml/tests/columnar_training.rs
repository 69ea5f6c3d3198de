//! Minibatch RDDs straight from Parquet and Arrow IPC (`parquet_minibatches`,
//! `arrow_minibatches`): every feature layout (a list column, a fixed-size list, one numeric
//! column per feature) and every label layout give exactly the rows written, cut into
//! minibatches within each partition; a network trains on them; bad columns are named before
//! any job and bad values fail the job naming column and row.

mod eval_common;

use std::sync::Arc;

use ember_engine::{Batch, Context};
use ember_ml::data::MiniBatch;
use ember_ml::distributed::{
    arrow_minibatches, parquet_minibatches, ColumnarExamples, FeatureColumns, LabelColumns,
};
use ember_ml::{MlError, Result};
use ember_storage::arrow_array::builder::{Float32Builder, ListBuilder};
use ember_storage::arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use ember_storage::arrow_schema::{DataType, Field, Schema};
use eval_common::{conf, distributed, net, on_workers, synthetic, CLASSES, FEATURES};

const ROWS: usize = 500;

/// The class of each row of `synthetic`.
fn classes_of(data: &MiniBatch) -> Vec<i64> {
    (0..data.len())
        .map(|r| {
            let row = data.labels().row(r);
            row.iter().position(|&v| v == 1.0).expect("one-hot") as i64
        })
        .collect()
}

/// `data`'s rows `lo..hi` as a record batch: `pixels` (list), `fixed` (fixed-size list),
/// `f0..` (float64 columns), `label` (class index), `onehot` (list label), `name` (text).
fn record_batch(data: &MiniBatch, lo: usize, hi: usize, bad_class: Option<usize>) -> RecordBatch {
    let x = data.features();
    let classes = classes_of(data);
    let mut pixels = ListBuilder::new(Float32Builder::new());
    let mut onehot = ListBuilder::new(Float32Builder::new());
    let mut flat = Vec::new();
    for r in lo..hi {
        let row: Vec<f32> = x.row(r).to_vec();
        pixels.values().append_slice(&row);
        pixels.append(true);
        onehot
            .values()
            .append_slice(data.labels().row(r).as_slice().unwrap());
        onehot.append(true);
        flat.extend(row);
    }
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let list = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
            true,
        )
    };
    let mut fields = vec![
        list("pixels"),
        Field::new(
            "fixed",
            DataType::FixedSizeList(Arc::clone(&item), FEATURES as i32),
            false,
        ),
        Field::new("label", DataType::Int64, false),
        list("onehot"),
        Field::new("name", DataType::Utf8, false),
    ];
    let labels: Vec<i64> = (lo..hi)
        .map(|r| match bad_class {
            Some(b) if r == b => CLASSES as i64 + 2,
            _ => classes[r],
        })
        .collect();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(pixels.finish()),
        Arc::new(
            FixedSizeListArray::try_new(
                item,
                FEATURES as i32,
                Arc::new(Float32Array::from(flat)),
                None,
            )
            .unwrap(),
        ),
        Arc::new(Int64Array::from(labels)),
        Arc::new(onehot.finish()),
        Arc::new(StringArray::from(
            (lo..hi).map(|r| format!("row {r}")).collect::<Vec<_>>(),
        )),
    ];
    for c in 0..FEATURES {
        fields.push(Field::new(format!("f{c}"), DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from(
            (lo..hi).map(|r| x[[r, c]] as f64).collect::<Vec<_>>(),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// `data` written under `url` in 3 uneven parts (Parquet, or Arrow IPC).
fn write(
    ctx: &Context,
    data: &MiniBatch,
    url: &str,
    arrow: bool,
    bad: Option<usize>,
) -> Result<()> {
    eval_common::write_parts(ctx, data.len(), url, arrow, |lo, hi| {
        Batch(record_batch(data, lo, hi, bad))
    })
}

fn feature_layouts() -> Vec<FeatureColumns> {
    vec![
        FeatureColumns::List("pixels".into()),
        FeatureColumns::List("fixed".into()),
        FeatureColumns::Columns((0..FEATURES).map(|c| format!("f{c}")).collect()),
    ]
}

fn label_layouts() -> Vec<LabelColumns> {
    vec![
        LabelColumns::ClassIndex {
            column: "label".into(),
            classes: CLASSES,
        },
        LabelColumns::List("onehot".into()),
    ]
}

#[test]
fn columnar_minibatches_hold_exactly_the_rows_written_in_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    let checked = on_workers(conf(2), move |ctx| {
        let data = synthetic(ROWS, CLASSES);
        let mut checked = 0;
        for arrow in [false, true] {
            let url = format!("{root}/data-{arrow}");
            write(ctx, &data, &url, arrow, None)?;
            for features in feature_layouts() {
                for labels in label_layouts() {
                    let spec = ColumnarExamples::new(features.clone(), labels.clone());
                    let rdd = if arrow {
                        arrow_minibatches(ctx, &url, &spec, 64)?
                    } else {
                        parquet_minibatches(ctx, &url, &spec, 64)?
                    };
                    let batches = rdd.collect()?;
                    assert!(batches.iter().all(|b| b.len() <= 64 && !b.is_empty()));
                    let rows: usize = batches.iter().map(MiniBatch::len).sum();
                    assert_eq!(rows, ROWS, "{features:?} {labels:?} arrow={arrow}");
                    // Row for row, in the order written.
                    let mut r = 0;
                    for b in &batches {
                        for i in 0..b.len() {
                            assert_eq!(
                                b.features().row(i),
                                data.features().row(r),
                                "{features:?} {labels:?} arrow={arrow} row {r}"
                            );
                            assert_eq!(b.labels().row(i), data.labels().row(r));
                            r += 1;
                        }
                    }
                    checked += 1;
                }
            }
        }
        Ok(checked)
    })
    .unwrap();
    assert_eq!(checked, 12);
}

#[test]
fn a_network_trains_on_parquet_minibatches_as_on_the_same_minibatches_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("train").to_string_lossy().into_owned();
    let (from_files, in_memory) = on_workers(conf(2), move |ctx| {
        let data = synthetic(ROWS, CLASSES);
        write(ctx, &data, &url, false, None)?;
        let spec = ColumnarExamples::new(
            FeatureColumns::List("pixels".into()),
            LabelColumns::ClassIndex {
                column: "label".into(),
                classes: CLASSES,
            },
        );
        let files = parquet_minibatches(ctx, &url, &spec, 32)?;
        // The same minibatches in the same partitions, held in memory.
        let parts = files.glom().collect()?;
        let memory = ctx.make_rdd(parts.into_iter().map(|p| (p, vec![])).collect())?;
        let mut a = distributed(ctx, net(CLASSES, 7))?;
        let mut b = distributed(ctx, net(CLASSES, 7))?;
        for _ in 0..3 {
            a.fit(&files)?;
            b.fit(&memory)?;
        }
        let pa = a.network().params().to_vec();
        let pb = b.network().params().to_vec();
        Ok((pa, pb))
    })
    .unwrap();
    assert_eq!(
        from_files, in_memory,
        "the same minibatches train the same network"
    );
}

#[test]
fn bad_columns_are_named_before_any_job_and_bad_values_fail_the_job_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    let errors = on_workers(conf(2), move |ctx| {
        let data = synthetic(60, CLASSES);
        let good = format!("{root}/good");
        write(ctx, &data, &good, false, None)?;
        let label = LabelColumns::ClassIndex {
            column: "label".into(),
            classes: CLASSES,
        };
        let err = |r: Result<ember_engine::Rdd<MiniBatch>>| match r {
            Ok(rdd) => rdd
                .count()
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string()),
            Err(e) => e.to_string(),
        };
        let missing = err(parquet_minibatches(
            ctx,
            &good,
            &ColumnarExamples::new(FeatureColumns::List("pixel".into()), label.clone()),
            8,
        ));
        let text_label = err(parquet_minibatches(
            ctx,
            &good,
            &ColumnarExamples::new(
                FeatureColumns::List("pixels".into()),
                LabelColumns::ClassIndex {
                    column: "name".into(),
                    classes: CLASSES,
                },
            ),
            8,
        ));
        let zero = parquet_minibatches(
            ctx,
            &good,
            &ColumnarExamples::new(FeatureColumns::List("pixels".into()), label.clone()),
            0,
        )
        .map(|_| ())
        .unwrap_err();
        assert!(matches!(zero, MlError::Config(_)), "{zero}");
        let bad = format!("{root}/bad");
        write(ctx, &data, &bad, false, Some(41))?;
        let out_of_range = err(parquet_minibatches(
            ctx,
            &bad,
            &ColumnarExamples::new(FeatureColumns::List("pixels".into()), label),
            8,
        ));
        Ok((missing, text_label, out_of_range))
    })
    .unwrap();
    let (missing, text_label, out_of_range) = errors;
    assert!(
        missing.contains("`pixel`") && missing.contains("pixels"),
        "names the column and what there is: {missing}"
    );
    assert!(
        text_label.contains("`name`") && text_label.contains("Utf8"),
        "{text_label}"
    );
    assert!(
        out_of_range.contains("`label`") && out_of_range.contains("not a class index below 3"),
        "{out_of_range}"
    );
}
