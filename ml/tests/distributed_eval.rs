//! Distributed evaluation and keyed inference (`DistributedNetwork::{evaluate, evaluate_paths,
//! predict_with_key, predict_parquet}`) against single-process evaluation and prediction on
//! the same data: on 1, 2 and 4 local workers and on 2 processes, over minibatch RDDs and
//! exported files, with several evaluations in one pass; keys across uneven partitions; batch
//! sizes; Parquet and Arrow round trips; bad input; the memory budget; models and evaluations
//! on S3 (a real `s3s-fs` server on 127.0.0.1).
//!
//! Small networks on synthetic data keep every test within seconds in a debug build.

#[path = "../../storage/tests/common/mod.rs"]
mod s3;

use std::collections::HashMap;

use ember_engine::{Conf, Context, Rdd};
use ember_ml::data::{one_hot, MiniBatch};
use ember_ml::distributed::{
    export_minibatches, sharded_minibatches, DataParallel, DistributedNetwork, EvalOptions,
    InferenceError,
};
use ember_ml::eval::{
    load_json_url, save_json_url, Classification, Evaluation, Evaluations, Regression, Roc,
    RocMultiClass,
};
use ember_ml::nn::{Activation, Network, NetworkConfig};
use ember_ml::optim::{Method, OptimizerConfig};
use ember_ml::tensor::Tensor;
use ember_ml::{MlError, Result};
use ndarray::{Array2, Ix2};

const FEATURES: usize = 20;
const CLASSES: usize = 3;
const ROWS: usize = 600;

fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .expect("local master")
}

fn on_workers<R, F>(conf: Conf, driver: F) -> Result<R>
where
    R: Send + 'static,
    F: Fn(&Context) -> Result<R> + Send + Sync + 'static,
{
    ember_engine::run(conf, driver)?
}

/// Deterministic features in [-0.5, 0.5) with a class signal, classes interleaved.
fn synthetic(rows: usize, classes: usize) -> MiniBatch {
    let class = |r: usize| (r * 7 + r / 3) % classes;
    let features = Array2::from_shape_fn((rows, FEATURES), |(r, c)| {
        let noise = ((r * 131 + c * 71 + r * c * 13) % 101) as f32 / 101.0 - 0.5;
        noise + if c % classes == class(r) { 0.6 } else { 0.0 }
    });
    let labels = one_hot(&(0..rows).map(class).collect::<Vec<_>>(), classes).unwrap();
    MiniBatch::new(features, labels).unwrap()
}

fn net(outputs: usize, seed: u64) -> Network {
    NetworkConfig::builder(&[FEATURES])
        .dense(16, Activation::Relu)
        .dense(outputs, Activation::Softmax)
        .seed(seed)
        .build()
        .unwrap()
}

fn sgd() -> OptimizerConfig {
    OptimizerConfig::new(Method::Sgd, 0.1)
}

fn distributed(ctx: &Context, net: Network) -> Result<DistributedNetwork> {
    DistributedNetwork::new(ctx, net, sgd(), DataParallel::default())
}

/// The evaluations of one pass: classification (top-2), one-vs-all ROC and regression on the
/// probabilities.
fn multi_class_set() -> Evaluations {
    Evaluations::new()
        .with(Classification::new(CLASSES).unwrap().with_top_n(2).unwrap())
        .with(RocMultiClass::new(CLASSES).unwrap())
        .with(Regression::new(CLASSES).unwrap())
}

/// Single-process evaluation: the whole set in one forward pass, one `eval`.
fn single_process(mut net: Network, data: &MiniBatch, mut set: Evaluations) -> Evaluations {
    let out = net.predict(data.features().view().into_dyn()).unwrap();
    let out = out.into_dimensionality::<Ix2>().unwrap();
    set.eval(data.labels().view(), out.view(), None).unwrap();
    set
}

/// Counts equal exactly (confusion matrix, top-N, every ROC score count), AUCs to 1e-12,
/// regression metrics to 1e-9 relative (Chan's merge against one pass).
fn assert_same(got: &Evaluations, want: &Evaluations) {
    assert_eq!(got.classification(), want.classification());
    assert_eq!(got.roc_multi_class(), want.roc_multi_class());
    assert_eq!(got.roc(), want.roc());
    if let Some(r) = want.roc_multi_class() {
        let g = got.roc_multi_class().unwrap();
        for c in 0..r.num_classes() {
            assert!((g.auc(c) - r.auc(c)).abs() < 1e-12);
        }
    }
    if let Some(r) = want.regression() {
        let g = got.regression().unwrap();
        for c in 0..r.num_columns() {
            assert_eq!(g.count(c), r.count(c));
            for (a, b) in [
                (g.mse(c), r.mse(c)),
                (g.r2(c), r.r2(c)),
                (g.mae(c), r.mae(c)),
            ] {
                assert!((a - b).abs() <= 1e-9 * b.abs().max(1e-12), "{a} vs {b}");
            }
        }
    }
}

/// Evaluates `data` as 8 uneven minibatches per worker count over `workers` local workers.
fn distributed_eval(workers: usize, opts: EvalOptions, set: Evaluations) -> Evaluations {
    let data = synthetic(ROWS, CLASSES);
    on_workers(conf(workers), move |ctx| {
        let batches = sharded_minibatches(ctx, &data, 75, workers)?;
        let dist = distributed(ctx, net(CLASSES, 5))?;
        dist.evaluate(&batches, set.clone(), &opts)
    })
    .unwrap()
}

#[test]
fn evaluation_on_1_2_and_4_workers_equals_single_process() {
    let want = single_process(
        net(CLASSES, 5),
        &synthetic(ROWS, CLASSES),
        multi_class_set(),
    );
    assert_eq!(want.classification().unwrap().count(), ROWS as u64);
    for workers in [1, 2, 4] {
        let got = distributed_eval(workers, EvalOptions::default(), multi_class_set());
        assert_same(&got, &want);
    }
    // Fewer copies than workers (tasks share them), more (a task splits its minibatches),
    // and another forward-pass size: the same counts.
    for opts in [
        EvalOptions::default().num_workers(1),
        EvalOptions::default().num_workers(5).batch_size(7),
        EvalOptions::default().batch_size(1),
    ] {
        assert_same(&distributed_eval(2, opts, multi_class_set()), &want);
    }
}

#[test]
fn binary_roc_and_classification_in_one_pass_equal_single_process() {
    let set = || {
        Evaluations::new()
            .with(Classification::new(2).unwrap())
            .with(Roc::new())
    };
    let data = synthetic(ROWS, 2);
    let want = single_process(net(2, 9), &data, set());
    let roc = want.roc().unwrap();
    assert_eq!(roc.positives() + roc.negatives(), ROWS as u64);
    for workers in [1, 2, 4] {
        let d = data.clone();
        let got = on_workers(conf(workers), move |ctx| {
            let batches = sharded_minibatches(ctx, &d, 64, workers)?;
            distributed(ctx, net(2, 9))?.evaluate(&batches, set(), &EvalOptions::default())
        })
        .unwrap();
        assert_same(&got, &want);
        assert!((got.roc().unwrap().auc() - roc.auc()).abs() < 1e-12);
    }
}

#[test]
fn evaluation_over_exported_minibatch_files_equals_evaluation_over_the_rdd() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("batches").display());
    let data = synthetic(ROWS, CLASSES);
    let want = single_process(net(CLASSES, 5), &data, multi_class_set());
    let got = on_workers(conf(2), move |ctx| {
        let batches = sharded_minibatches(ctx, &data, 100, 2)?;
        let urls = export_minibatches(&batches, &url)?;
        let paths = ctx.parallelize(urls, 3)?;
        let dist = distributed(ctx, net(CLASSES, 5))?;
        dist.evaluate_paths(&paths, multi_class_set(), &EvalOptions::default())
    })
    .unwrap();
    assert_same(&got, &want);
}

#[test]
fn more_copies_than_the_memory_budget_holds_is_an_error_before_the_job() {
    let conf = conf(2).with("ember.memory.storage", "64k").unwrap();
    let err = on_workers(conf, |ctx| {
        let batches = sharded_minibatches(ctx, &synthetic(64, CLASSES), 32, 2)?;
        let big = NetworkConfig::builder(&[FEATURES])
            .dense(512, Activation::Relu)
            .dense(CLASSES, Activation::Softmax)
            .build()?;
        let dist = distributed(ctx, big)?;
        let opts = EvalOptions::default().num_workers(8);
        dist.evaluate(&batches, Classification::new(CLASSES)?, &opts)
    })
    .unwrap_err();
    match &err {
        MlError::Inference(InferenceError::MemoryBudget {
            copies, per_worker, ..
        }) => assert_eq!((*copies, *per_worker), (8, 4)),
        other => panic!("expected a memory budget error, got {other}"),
    }
    assert!(err.to_string().contains("eval_num_workers"), "{err}");
}

/// 100k examples under shuffled keys in partitions of very different sizes (one empty).
fn keyed_rows(rows: usize) -> Vec<(u64, Vec<f32>)> {
    let mut keys: Vec<u64> = (0..rows as u64)
        .map(|k| k * 2654435761 % 1_000_003)
        .collect();
    // A fixed shuffle.
    let mut x = 12345u64;
    for i in (1..keys.len()).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        keys.swap(i, (x >> 33) as usize % (i + 1));
    }
    keys.into_iter()
        .map(|k| {
            let v = (0..FEATURES)
                .map(|c| ((k as usize * 31 + c * 17) % 97) as f32 / 97.0 - 0.5)
                .collect();
            (k, v)
        })
        .collect()
}

fn keyed_rdd(ctx: &Context, rows: &[(u64, Vec<f32>)]) -> Result<Rdd<(u64, Tensor)>> {
    let n = rows.len();
    let cuts = [0, n / 100, n / 2, n / 2, n * 9 / 10, n];
    let parts = cuts
        .windows(2)
        .enumerate()
        .map(|(p, w)| {
            let part = rows[w[0]..w[1]]
                .iter()
                .map(|(k, v)| (*k, Tensor::from_vec(&[FEATURES], v.clone()).unwrap()))
                .collect();
            (part, vec![p % ctx.num_workers()])
        })
        .collect();
    Ok(ctx.make_rdd(parts)?)
}

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
fn evaluations_round_trip_through_json_at_a_storage_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("eval.json").display());
    let set = single_process(
        net(CLASSES, 5),
        &synthetic(ROWS, CLASSES),
        multi_class_set(),
    );
    let config = ember_storage::StorageConfig::new();
    save_json_url(&url, &config, &set).unwrap();
    let back: Evaluations = load_json_url(&url, &config).unwrap();
    assert_eq!(back, set);
    // Another kind of evaluation in the file: an error naming the URL.
    let err = load_json_url::<Classification>(&url, &config).unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");
    // Still mergeable after loading.
    let mut twice = back.clone();
    twice.merge(&set).unwrap();
    assert_eq!(twice.classification().unwrap().count(), 2 * ROWS as u64);
}

use ember_engine::{Batch, SaveMode};
use ember_ml::distributed::{ColumnarPrediction, FeatureColumns};
use ember_storage::arrow_array::builder::{Float32Builder, ListBuilder};
use ember_storage::arrow_array::cast::AsArray;
use ember_storage::arrow_array::types::{Float32Type, Int64Type};
use ember_storage::arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use ember_storage::arrow_schema::{DataType, Field, Schema};
use std::sync::Arc;

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
    let n = rows.len();
    let parts: Vec<Batch> = [0, n / 7, n / 2, n]
        .windows(2)
        .map(|w| Batch(record_batch(&rows[w[0]..w[1]])))
        .collect();
    let rdd = ctx.parallelize(parts, 3)?;
    if arrow {
        rdd.save_as_arrow(url, SaveMode::ErrorIfExists)?;
    } else {
        rdd.save_as_parquet(url, SaveMode::ErrorIfExists)?;
    }
    Ok(())
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
        for (arrow, features, name) in [
            (false, FeatureColumns::List("pixels".into()), "list"),
            (
                false,
                FeatureColumns::Columns((0..FEATURES).map(|c| format!("f{c}")).collect()),
                "columns",
            ),
            (true, FeatureColumns::List("pixels".into()), "arrow"),
        ] {
            let input = format!("{base}/in-{name}");
            let output = format!("{base}/out-{name}");
            write_rows(ctx, &r, &input, arrow)?;
            let spec = ColumnarPrediction::new(&["id", "tag"], features)
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

/// Engine configuration for `workers` local workers talking to `server`.
fn s3_conf(server: &s3::S3Server, workers: usize) -> Conf {
    server
        .settings()
        .iter()
        .fold(conf(workers), |c, (k, v)| c.with(k, v).unwrap())
}

#[test]
fn models_and_evaluations_on_s3_load_into_distributed_networks_and_truncation_names_the_url() {
    let server = s3::S3Server::start();
    let bucket = server.bucket("models");
    let config = server.config();
    // Trained (here: built) on one machine, saved to S3.
    let model = format!("{bucket}/mlp.safetensors");
    ember_ml::model_io::save_url(&model, &config, &net(CLASSES, 5), None).unwrap();
    let bytes = ember_storage::Location::resolve(&model, &config)
        .unwrap()
        .read_all()
        .unwrap();
    let truncated = format!("{bucket}/truncated.safetensors");
    ember_storage::Location::resolve(&truncated, &config)
        .unwrap()
        .put(bytes.slice(..bytes.len() / 2))
        .unwrap();

    let want = single_process(
        net(CLASSES, 5),
        &synthetic(ROWS, CLASSES),
        multi_class_set(),
    );
    let (m, t, b) = (model.clone(), truncated.clone(), bucket.clone());
    let (got, reloaded, err) = on_workers(s3_conf(&server, 2), move |ctx| {
        let dist = DistributedNetwork::load_url(ctx, &m, sgd(), DataParallel::default())?;
        let batches = sharded_minibatches(ctx, &synthetic(ROWS, CLASSES), 75, 2)?;
        let got = dist.evaluate(&batches, multi_class_set(), &EvalOptions::default())?;
        let eval_url = format!("{b}/evals/mlp.json");
        let storage = ctx.conf().storage_config();
        if ctx.worker_index() == 0 {
            save_json_url(&eval_url, &storage, &got)?;
        }
        dist.save_url(&format!("{b}/saved.safetensors"))?;
        let reloaded: Evaluations = load_json_url(&eval_url, &storage)?;
        let err = DistributedNetwork::load_url(ctx, &t, sgd(), DataParallel::default())
            .err()
            .map(|e| e.to_string());
        Ok((got, reloaded, err))
    })
    .unwrap();
    assert_same(&got, &want);
    assert_eq!(reloaded, got, "the evaluation read back from S3");
    let err = err.expect("a truncated model file is an error");
    assert!(err.contains(&truncated), "{err}");
    let saved =
        ember_ml::model_io::load_url(&format!("{bucket}/saved.safetensors"), &config).unwrap();
    assert_eq!(saved.network.params(), net(CLASSES, 5).params());
}

/// Set in the environment of the processes `evaluation_on_two_processes_equals_single_process`
/// starts: they run `two_process_member` instead of skipping it.
const MEMBER_ENV: &str = "EMBER_EVAL_TEST_MEMBER";

#[test]
#[ignore = "one process of evaluation_on_two_processes_equals_single_process, started by it"]
fn two_process_member() {
    if std::env::var_os(MEMBER_ENV).is_none() {
        return;
    }
    let conf = Conf::from_env().unwrap();
    let got = on_workers(conf, |ctx| {
        let batches = sharded_minibatches(ctx, &synthetic(ROWS, CLASSES), 75, ctx.num_workers())?;
        let dist = distributed(ctx, net(CLASSES, 5))?;
        let got = dist.evaluate(&batches, multi_class_set(), &EvalOptions::default())?;
        Ok((ctx.worker_index() == 0).then(|| got.to_json().unwrap()))
    })
    .unwrap();
    if let Some(json) = got {
        println!("EVALUATION {json}");
    }
}

#[test]
fn evaluation_on_two_processes_equals_single_process() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(&exe)
                .args(["--exact", "two_process_member", "--ignored", "--nocapture"])
                .env(MEMBER_ENV, "1")
                .env("EMBER_MASTER", "cluster")
                .env("EMBER_CLUSTER_HOSTS", &hosts)
                .env("EMBER_CLUSTER_PROCESS", p.to_string())
                .env("EMBER_CLUSTER_THREADS", "2")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Bounded wait: a hung cluster fails the test instead of hanging CI.
    let deadline = Instant::now() + Duration::from_secs(120);
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        if Instant::now() > deadline {
            for c in &mut children {
                let _ = c.kill();
            }
            panic!("the two processes did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (p, o) in outputs.iter().enumerate() {
        assert!(
            o.status.success(),
            "process {p} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&outputs[0].stdout);
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("EVALUATION "))
        .unwrap_or_else(|| panic!("process 0 printed no evaluation: {stdout}"));
    let got = Evaluations::from_json(json).unwrap();
    let want = single_process(
        net(CLASSES, 5),
        &synthetic(ROWS, CLASSES),
        multi_class_set(),
    );
    assert_same(&got, &want);
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
