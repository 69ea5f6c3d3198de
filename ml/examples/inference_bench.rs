//! Benchmark of distributed inference and evaluation (run by `benches/inference_bench.sh`, not
//! a test). Modes, each printing one JSON line on stdout:
//!
//! - `write DIR ROWS MNIST_DIR`: `ROWS` MNIST-shaped rows (the training images, repeated) as
//!   Parquet under `DIR/input` (`id: int64`, `pixels: fixed_size_list<uint8, 784>`), and the
//!   MLP 784-256-10 (seeded) as `DIR/model.safetensors`.
//! - `predict DIR`: that model on `local[2]` over `DIR/input`, keys and predictions written as
//!   Parquet to `DIR/out-ember` (read, forward, write all timed): rows/s.
//! - `eval MNIST_DIR`: the 10,000 test images evaluated (classification + one-vs-all ROC) by
//!   one process in one thread, and on `local[2]`; seconds of each, and whether they agree.

use std::sync::Arc;
use std::time::Instant;

use ember_engine::{Batch, Conf, SaveMode};
use ember_ml::data::{mnist, Split};
use ember_ml::distributed::{
    sharded_minibatches, ColumnarPrediction, DataParallel, DistributedNetwork, EvalOptions,
    FeatureColumns,
};
use ember_ml::eval::{Classification, Evaluation, Evaluations, RocMultiClass};
use ember_ml::nn::{Activation, NetworkConfig};
use ember_ml::optim::{Method, OptimizerConfig};
use ember_storage::arrow_array::{
    ArrayRef, FixedSizeListArray, Int64Array, RecordBatch, UInt8Array,
};
use ember_storage::arrow_schema::{DataType, Field, Schema};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn sgd() -> OptimizerConfig {
    OptimizerConfig::new(Method::Sgd, 0.01)
}

fn write(dir: &str, rows: usize, mnist_dir: &str) -> Res<()> {
    let train = mnist(mnist_dir, Split::Train)?;
    let pixels: Vec<u8> = train
        .features()
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
    let net = NetworkConfig::builder(&[784])
        .dense(256, Activation::Relu)
        .dense(10, Activation::Identity)
        .seed(7)
        .build()?;
    ember_ml::model_io::save(format!("{dir}/model.safetensors"), &net, None)?;
    let n = train.len();
    let url = format!("file://{dir}/input");
    let conf = Conf::new().with("ember.master", "local[2]")?;
    ember_engine::run(conf, move |ctx| -> Res<()> {
        let chunk = 8192;
        let starts: Vec<usize> = (0..rows).step_by(chunk).collect();
        let pixels = pixels.clone();
        let batches = ctx.parallelize(starts, 16)?.map(move |s| {
            let e = (s + chunk).min(rows);
            let ids = Int64Array::from((s as i64..e as i64).collect::<Vec<_>>());
            let mut px = Vec::with_capacity((e - s) * 784);
            for r in s..e {
                let i = r % n;
                px.extend_from_slice(&pixels[i * 784..(i + 1) * 784]);
            }
            let item = Arc::new(Field::new("item", DataType::UInt8, false));
            let list = FixedSizeListArray::try_new(
                Arc::clone(&item),
                784,
                Arc::new(UInt8Array::from(px)),
                None,
            )
            .expect("sized");
            let schema = Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("pixels", DataType::FixedSizeList(item, 784), false),
            ]);
            let cols: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(list)];
            Batch(RecordBatch::try_new(Arc::new(schema), cols).expect("columns match"))
        });
        batches.save_as_parquet(&url, SaveMode::Overwrite)?;
        Ok(())
    })??;
    println!("{}", serde_json::json!({"mode": "write", "rows": rows}));
    Ok(())
}

fn predict(dir: &str) -> Res<()> {
    let dir = dir.to_string();
    let conf = Conf::new().with("ember.master", "local[2]")?;
    let (rows, secs) = ember_engine::run(conf, move |ctx| -> Res<(u64, f64)> {
        let model = format!("file://{dir}/model.safetensors");
        let dist = DistributedNetwork::load_url(ctx, &model, sgd(), DataParallel::default())?;
        let spec = ColumnarPrediction::new(&["id"], FeatureColumns::List("pixels".into()))
            .with_scale(1.0 / 255.0)
            .with_options(EvalOptions::default().batch_size(512));
        let out = format!("file://{dir}/out-ember");
        let start = Instant::now();
        dist.predict_parquet(
            &format!("file://{dir}/input"),
            &out,
            &spec,
            SaveMode::Overwrite,
        )?;
        let secs = start.elapsed().as_secs_f64();
        let rows = ctx.parquet(&out, Default::default())?.count_rows()?;
        Ok((rows, secs))
    })??;
    println!(
        "{}",
        serde_json::json!({"system": "ember", "mode": "predict", "workers": 2, "rows": rows,
            "seconds": secs, "rows_per_s": rows as f64 / secs})
    );
    Ok(())
}

fn eval(mnist_dir: &str) -> Res<()> {
    let test = mnist(mnist_dir, Split::Test)?;
    let net = || {
        NetworkConfig::builder(&[784])
            .dense(256, Activation::Relu)
            .dense(10, Activation::Softmax)
            .seed(7)
            .build()
    };
    let set = || {
        Evaluations::new()
            .with(Classification::new(10).expect("10 classes"))
            .with(RocMultiClass::new(10).expect("10 classes"))
    };
    let mut single_net = net()?;
    let start = Instant::now();
    let mut single = set();
    for b in test.batches(64)? {
        let out = single_net.predict(b.features().view().into_dyn())?;
        let out = out.into_dimensionality::<ndarray::Ix2>()?;
        single.eval(b.labels().view(), out.view(), None)?;
    }
    let single_secs = start.elapsed().as_secs_f64();
    let conf = Conf::new().with("ember.master", "local[2]")?;
    let t = test.clone();
    let (dist_eval, dist_secs) = ember_engine::run(conf, move |ctx| -> Res<(Evaluations, f64)> {
        let batches = sharded_minibatches(ctx, &t, 512, 2)?.cache();
        batches.count()?;
        let dist = DistributedNetwork::new(ctx, net()?, sgd(), DataParallel::default())?;
        let start = Instant::now();
        let e = dist.evaluate(&batches, set(), &EvalOptions::default())?;
        Ok((e, start.elapsed().as_secs_f64()))
    })??;
    println!(
        "{}",
        serde_json::json!({"mode": "eval", "examples": test.len(), "single_seconds": single_secs,
            "distributed_seconds": dist_secs, "workers": 2,
            "same_counts": dist_eval.classification() == single.classification()
                && dist_eval.roc_multi_class() == single.roc_multi_class(),
            "accuracy": dist_eval.classification().map(|c| c.accuracy())})
    );
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .ok_or("missing argument (see the module docs)")
    };
    match args.first().map(String::as_str) {
        Some("write") => write(&arg(1)?, arg(2)?.parse()?, &arg(3)?),
        Some("predict") => predict(&arg(1)?),
        Some("eval") => eval(&arg(1)?),
        _ => Err(
            "usage: inference_bench write DIR ROWS MNIST_DIR | predict DIR | eval MNIST_DIR".into(),
        ),
    }
}
