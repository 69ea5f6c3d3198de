//! Keyed and columnar inference (`DistributedNetwork::{predict_with_key,
//! predict_with_mask_and_key, predict_classes_with_key, predict_parquet, predict_arrow}`)
//! against single-process prediction: 100k shuffled keys over uneven partitions come back once
//! each with the same outputs bit for bit; batch sizes 1, 7 and 512 and more copies per process
//! change no output; masks; Parquet and Arrow round trips keep key columns and rows; bad
//! columns and tensors are typed errors naming the column or key.

mod eval_common;

use eval_common::*;

use std::collections::HashMap;
use std::sync::Arc;

use ember_engine::{Batch, Context, SaveMode};
use ember_ml::distributed::{ColumnarPrediction, EvalOptions, FeatureColumns, InferenceError};
use ember_ml::nn::{Activation, Network, NetworkConfig};
use ember_ml::tensor::Tensor;
use ember_ml::{MlError, Result};
use ember_storage::arrow_array::builder::{Float32Builder, ListBuilder};
use ember_storage::arrow_array::cast::AsArray;
use ember_storage::arrow_array::types::{Float32Type, Int64Type};
use ember_storage::arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use ember_storage::arrow_schema::{DataType, Field, Schema};
use ndarray::Array2;

#[test]
fn keyed_inference_returns_every_key_once_with_the_single_process_prediction() {
    const N: usize = 100_000;
    let rows = keyed_rows(N);
    let mut single = net(CLASSES, 3);
    let flat: Vec<f32> = rows.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let x = Array2::from_shape_vec((N, FEATURES), flat).unwrap();
    let want = single.predict(x.view().into_dyn()).unwrap();
    let want: HashMap<u64, Vec<f32>> = rows
        .iter()
        .zip(
            want.as_standard_layout()
                .as_slice()
                .unwrap()
                .chunks(CLASSES),
        )
        .map(|((k, _), p)| (*k, p.to_vec()))
        .collect();
    let r = rows.clone();
    let (got, classes) = on_workers(conf(2), move |ctx| {
        let data = keyed_rdd(ctx, &r)?;
        let dist = distributed(ctx, net(CLASSES, 3))?;
        let got = dist.predict_with_key(&data, 64)?.collect()?;
        let classes = dist.predict_classes_with_key(&data, 512)?.collect()?;
        Ok((got, classes))
    })
    .unwrap();
    assert_eq!(got.len(), N, "one output per key");
    let mut seen = std::collections::HashSet::new();
    for (k, t) in &got {
        assert!(seen.insert(*k), "key {k} came back twice");
        assert_eq!(t.shape(), &[CLASSES]);
        let w = &want[k];
        let g: Vec<f32> = t.to_array().iter().copied().collect();
        assert_eq!(
            g.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            w.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "key {k}"
        );
    }
    assert_eq!(classes.len(), N);
    for (k, c) in &classes {
        let w = &want[k];
        let best = (0..CLASSES).fold(0, |b, i| if w[i] > w[b] { i } else { b });
        assert_eq!(*c, best, "key {k}");
    }
}

/// Keyed outputs of `net` at each batch size, as bits, in key order.
fn outputs_by_batch_size(config: NetworkConfig, width: usize, sizes: &[usize]) -> Vec<Vec<u32>> {
    let sizes = sizes.to_vec();
    on_workers(conf(2), move |ctx| {
        let input = config.input_shape.clone();
        let rows: Vec<(u64, Tensor)> = (0..600u64)
            .map(|k| {
                let v = (0..width)
                    .map(|c| ((k as usize * 37 + c * 11) % 89) as f32 / 89.0 - 0.5)
                    .collect();
                (k, Tensor::from_vec(&input, v).unwrap())
            })
            .collect();
        let data = ctx.parallelize(rows, 3)?;
        let dist = distributed(ctx, Network::new(config.clone())?)?;
        sizes
            .iter()
            .map(|&b| {
                let mut out = dist.predict_with_key(&data, b)?.collect()?;
                out.sort_by_key(|(k, _)| *k);
                Ok(out
                    .iter()
                    .flat_map(|(_, t)| t.to_array().iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                    .collect())
            })
            .collect()
    })
    .unwrap()
}

#[test]
fn batch_sizes_never_change_keyed_outputs() {
    let mlp = NetworkConfig::builder(&[FEATURES])
        .dense(32, Activation::Relu)
        .dense(CLASSES, Activation::Softmax)
        .seed(1)
        .config();
    // Wider than 1024 inputs into a narrow layer: the shapes where the GEMM switches kernels.
    let wide = NetworkConfig::builder(&[1100])
        .dense(4, Activation::Tanh)
        .dense(2, Activation::Identity)
        .seed(2)
        .config();
    let conv = NetworkConfig::builder(&[1, 10, 10])
        .conv2d(4, 3, 1, Activation::Relu)
        .max_pool(2, 2)
        .batch_norm()
        .flatten()
        .dense(CLASSES, Activation::Softmax)
        .seed(3)
        .config();
    for (name, config, width) in [
        ("mlp", mlp, FEATURES),
        ("wide", wide, 1100),
        ("conv", conv, 100),
    ] {
        let outs = outputs_by_batch_size(config, width, &[1, 7, 512]);
        assert!(!outs[0].is_empty());
        for (i, size) in [(1, 7), (2, 512)] {
            assert_eq!(outs[0].len(), outs[i].len());
            let differ = outs[0].iter().zip(&outs[i]).filter(|(a, b)| a != b).count();
            assert_eq!(
                differ, 0,
                "{name}: {differ} output values differ between batches of 1 and {size}"
            );
        }
    }
}

#[test]
fn a_keyed_tensor_of_the_wrong_shape_fails_the_job_naming_the_key() {
    let err = on_workers(conf(2), |ctx| {
        let rows = vec![
            (1u32, Tensor::from_vec(&[FEATURES], vec![0.0; FEATURES])?),
            (
                7u32,
                Tensor::from_vec(&[FEATURES + 1], vec![0.0; FEATURES + 1])?,
            ),
        ];
        let data = ctx.parallelize(rows, 1)?;
        let dist = distributed(ctx, net(CLASSES, 1))?;
        Ok(dist.predict_with_key(&data, 8)?.collect()?)
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("key 7") && msg.contains("[21]"), "{msg}");
}

#[test]
fn masks_zero_features_and_more_copies_per_process_change_no_output() {
    let rows = keyed_rows(700);
    let r = rows.clone();
    let (plain, masked, halved, split) = on_workers(conf(2), move |ctx| {
        let dist = distributed(ctx, net(CLASSES, 6))?;
        let data = keyed_rdd(ctx, &r)?;
        let sorted = |mut v: Vec<(u64, Tensor)>| {
            v.sort_by_key(|(k, _)| *k);
            v
        };
        let plain = sorted(dist.predict_with_key(&data, 32)?.collect()?);
        // Per-value masks keeping every other feature, and one-value masks of 0.5.
        let every_other: Vec<f32> = (0..FEATURES).map(|c| (c % 2) as f32).collect();
        let m = every_other.clone();
        let with_mask = data.map(move |(k, t)| {
            (
                k,
                (t, Some(Tensor::from_vec(&[FEATURES], m.clone()).unwrap())),
            )
        });
        let opts = EvalOptions::default().batch_size(16);
        let masked = sorted(
            dist.predict_with_mask_and_key(&with_mask, &opts)?
                .collect()?,
        );
        let half = data.map(|(k, t)| (k, (t, Some(Tensor::from_vec(&[1], vec![0.5]).unwrap()))));
        let halved = sorted(dist.predict_with_mask_and_key(&half, &opts)?.collect()?);
        // Five copies per process on two workers: tasks run three forward passes side by side.
        let unmasked = data.map(|(k, t)| (k, (t, None)));
        let many = EvalOptions::default().num_workers(5).batch_size(8);
        let split = sorted(
            dist.predict_with_mask_and_key(&unmasked, &many)?
                .collect()?,
        );
        Ok((plain, masked, halved, split))
    })
    .unwrap();
    assert_eq!(split, plain, "copies per process change no output");
    let mut single = net(CLASSES, 6);
    let mut by_key: Vec<&(u64, Vec<f32>)> = rows.iter().collect();
    by_key.sort_by_key(|(k, _)| *k);
    for (scale, got) in [(None, &masked), (Some(0.5f32), &halved)] {
        let flat: Vec<f32> = by_key
            .iter()
            .flat_map(|(_, v)| {
                v.iter().enumerate().map(move |(c, x)| match scale {
                    Some(s) => x * s,
                    None => x * (c % 2) as f32,
                })
            })
            .collect();
        let x = Array2::from_shape_vec((by_key.len(), FEATURES), flat).unwrap();
        let want = single.predict(x.view().into_dyn()).unwrap();
        let want = want.as_standard_layout();
        for ((k, t), w) in got.iter().zip(want.as_slice().unwrap().chunks(CLASSES)) {
            assert_eq!(
                t.to_array().as_slice().unwrap(),
                w,
                "key {k}, mask {scale:?}"
            );
        }
    }
    assert_ne!(masked, plain, "the mask changed the input");
}

/// A record batch of `rows` (id, tag, pixels as a list column, f0..f19 as float64 columns, a
/// fixed-size list of 19, a text column) from `keyed_rows`.
fn record_batch(rows: &[(u64, Vec<f32>)]) -> RecordBatch {
    let ids = Int64Array::from(rows.iter().map(|(k, _)| *k as i64).collect::<Vec<_>>());
    let tags = StringArray::from(
        rows.iter()
            .map(|(k, _)| format!("r{k}"))
            .collect::<Vec<_>>(),
    );
    let mut list = ListBuilder::new(Float32Builder::new());
    for (_, v) in rows {
        list.values().append_slice(v);
        list.append(true);
    }
    let mut fields = vec![
        Field::new("id", DataType::Int64, false),
        Field::new("tag", DataType::Utf8, false),
        Field::new(
            "pixels",
            DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
            true,
        ),
    ];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(tags), Arc::new(list.finish())];
    for c in 0..FEATURES {
        fields.push(Field::new(format!("f{c}"), DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from(
            rows.iter().map(|(_, v)| v[c] as f64).collect::<Vec<_>>(),
        )));
    }
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let narrow: Vec<f32> = rows.iter().flat_map(|(_, v)| v[..19].to_vec()).collect();
    fields.push(Field::new(
        "narrow",
        DataType::FixedSizeList(Arc::clone(&item), 19),
        false,
    ));
    columns.push(Arc::new(
        FixedSizeListArray::try_new(item, 19, Arc::new(Float32Array::from(narrow)), None).unwrap(),
    ));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// `rows` written under `url` as Parquet (`arrow`: Arrow IPC) in 3 uneven parts.
fn write_rows(ctx: &Context, rows: &[(u64, Vec<f32>)], url: &str, arrow: bool) -> Result<()> {
    eval_common::write_parts(ctx, rows.len(), url, arrow, |lo, hi| {
        Batch(record_batch(&rows[lo..hi]))
    })
}

/// (id, tag, prediction bits) of every row of the output dataset at `url`.
fn read_predictions(ctx: &Context, url: &str, arrow: bool) -> Result<Vec<(i64, String, Vec<u32>)>> {
    let batches = if arrow {
        ctx.arrow(url)?
    } else {
        ctx.parquet(url, Default::default())?
    }
    .collect()?;
    let mut out = Vec::new();
    for Batch(b) in batches {
        assert_eq!(
            b.schema().fields().len(),
            3,
            "keys and the prediction: {:?}",
            b.schema()
        );
        let ids = b
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        let tags = b.column_by_name("tag").unwrap().as_string::<i32>().clone();
        let preds = b
            .column_by_name("prediction")
            .unwrap()
            .as_fixed_size_list()
            .clone();
        for r in 0..b.num_rows() {
            let p = preds.value(r);
            let bits = p
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|v| v.to_bits())
                .collect();
            out.push((ids.value(r), tags.value(r).to_string(), bits));
        }
    }
    Ok(out)
}

#[test]
fn parquet_and_arrow_round_trips_keep_keys_and_rows_and_predict_as_in_memory() {
    const N: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("file://{}", dir.path().display());
    let rows = keyed_rows(N);
    let r = rows.clone();
    let (in_memory, outputs) = on_workers(conf(2), move |ctx| {
        let dist = distributed(ctx, net(CLASSES, 4))?;
        let keyed = keyed_rdd(ctx, &r)?;
        let in_memory = dist.predict_with_key(&keyed, 64)?.collect()?;
        let mut outputs = Vec::new();
        let columns = || FeatureColumns::Columns((0..FEATURES).map(|c| format!("f{c}")).collect());
        for (arrow, features, name) in [
            (false, FeatureColumns::List("pixels".into()), "list"),
            (false, columns(), "columns"),
            (true, FeatureColumns::List("pixels".into()), "arrow"),
            // Keys named in another order than the file's: the scan returns them as named.
            (false, columns(), "keys-reordered"),
        ] {
            let input = format!("{base}/in-{name}");
            let output = format!("{base}/out-{name}");
            write_rows(ctx, &r, &input, arrow)?;
            let keys: &[&str] = if name == "keys-reordered" {
                &["tag", "id"]
            } else {
                &["id", "tag"]
            };
            let spec = ColumnarPrediction::new(keys, features)
                .with_options(EvalOptions::default().batch_size(100));
            if arrow {
                dist.predict_arrow(&input, &output, &spec, SaveMode::ErrorIfExists)?;
            } else {
                dist.predict_parquet(&input, &output, &spec, SaveMode::ErrorIfExists)?;
            }
            outputs.push((name, read_predictions(ctx, &output, arrow)?));
        }
        Ok((in_memory, outputs))
    })
    .unwrap();
    let want: HashMap<i64, Vec<u32>> = in_memory
        .iter()
        .map(|(k, t)| {
            (
                *k as i64,
                t.to_array().iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect();
    assert_eq!(want.len(), N);
    for (name, got) in outputs {
        assert_eq!(got.len(), N, "{name}: row count");
        let mut seen = std::collections::HashSet::new();
        for (id, tag, bits) in &got {
            assert!(seen.insert(*id), "{name}: id {id} twice");
            assert_eq!(tag, &format!("r{id}"), "{name}: key columns kept together");
            assert_eq!(bits, &want[id], "{name}: id {id}");
        }
    }
}

#[test]
fn bad_columns_are_typed_errors_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("file://{}/in", dir.path().display());
    let out = |n: &str| format!("file://{}/out-{n}", dir.path().display());
    let rows = keyed_rows(50);
    let i = input.clone();
    let (out_a, out_b, out_c, out_d) = (out("a"), out("b"), out("c"), out("d"));
    let errors = on_workers(conf(2), move |ctx| {
        write_rows(ctx, &rows, &i, false)?;
        let dist = distributed(ctx, net(CLASSES, 4))?;
        let run = |keys: &[&str], f: FeatureColumns, o: &str| {
            dist.predict_parquet(
                &i,
                o,
                &ColumnarPrediction::new(keys, f),
                SaveMode::ErrorIfExists,
            )
            .unwrap_err()
        };
        Ok(vec![
            run(&["id"], FeatureColumns::List("narrow".into()), &out_a),
            run(
                &["id"],
                FeatureColumns::Columns(vec!["f0".into(), "tag".into()]),
                &out_b,
            ),
            run(&["user"], FeatureColumns::List("pixels".into()), &out_c),
            run(
                &["id"],
                FeatureColumns::Columns(vec!["f0".into(); 3]),
                &out_d,
            ),
        ]
        .into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>())
    })
    .unwrap();
    assert!(
        errors[0].contains("`narrow`") && errors[0].contains("19") && errors[0].contains("20"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("`tag`") && errors[1].contains("Utf8"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("`user`") && errors[2].contains("key column"),
        "{}",
        errors[2]
    );
    assert!(errors[3].contains("3 values per row"), "{}", errors[3]);
    // Nothing was written for any of them.
    for n in ["a", "b", "c", "d"] {
        assert!(!dir
            .path()
            .join(format!("out-{n}"))
            .join("_SUCCESS")
            .exists());
    }
}

#[test]
fn typed_errors_come_back_as_inference_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("file://{}/in", dir.path().display());
    let o = format!("file://{}/out", dir.path().display());
    let rows = keyed_rows(20);
    let err = on_workers(conf(1), move |ctx| {
        write_rows(ctx, &rows, &input, false)?;
        let dist = distributed(ctx, net(CLASSES, 4))?;
        let spec = ColumnarPrediction::new(&["id"], FeatureColumns::List("tag".into()));
        dist.predict_parquet(&input, &o, &spec, SaveMode::ErrorIfExists)
    })
    .unwrap_err();
    assert!(
        matches!(&err, MlError::Inference(InferenceError::NotNumeric { column, .. }) if column == "tag"),
        "{err}"
    );
}
