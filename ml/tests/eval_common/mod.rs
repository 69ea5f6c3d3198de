//! Shared by the distributed evaluation and inference tests: local configurations, a
//! deterministic synthetic data set, small networks and keyed rows over uneven partitions.
#![allow(dead_code)]

use ember_engine::{Batch, Conf, Context, Rdd, SaveMode};
use ember_ml::data::{one_hot, MiniBatch};
use ember_ml::distributed::{DataParallel, DistributedNetwork};
use ember_ml::nn::{Activation, Network, NetworkConfig};
use ember_ml::optim::{Method, OptimizerConfig};
use ember_ml::tensor::Tensor;
use ember_ml::Result;
use ndarray::Array2;

pub const FEATURES: usize = 20;

pub const CLASSES: usize = 3;

pub const ROWS: usize = 600;

pub fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .expect("local master")
}

pub fn on_workers<R, F>(conf: Conf, driver: F) -> Result<R>
where
    R: Send + 'static,
    F: Fn(&Context) -> Result<R> + Send + Sync + 'static,
{
    ember_engine::run(conf, driver)?
}

/// Deterministic features in [-0.5, 0.5) with a class signal, classes interleaved.
pub fn synthetic(rows: usize, classes: usize) -> MiniBatch {
    let class = |r: usize| (r * 7 + r / 3) % classes;
    let features = Array2::from_shape_fn((rows, FEATURES), |(r, c)| {
        let noise = ((r * 131 + c * 71 + r * c * 13) % 101) as f32 / 101.0 - 0.5;
        noise + if c % classes == class(r) { 0.6 } else { 0.0 }
    });
    let labels = one_hot(&(0..rows).map(class).collect::<Vec<_>>(), classes).unwrap();
    MiniBatch::new(features, labels).unwrap()
}

pub fn net(outputs: usize, seed: u64) -> Network {
    NetworkConfig::builder(&[FEATURES])
        .dense(16, Activation::Relu)
        .dense(outputs, Activation::Softmax)
        .seed(seed)
        .build()
        .unwrap()
}

pub fn sgd() -> OptimizerConfig {
    OptimizerConfig::new(Method::Sgd, 0.1)
}

pub fn distributed(ctx: &Context, net: Network) -> Result<DistributedNetwork> {
    DistributedNetwork::new(ctx, net, sgd(), DataParallel::default())
}

/// 100k examples under shuffled keys in partitions of very different sizes (one empty).
pub fn keyed_rows(rows: usize) -> Vec<(u64, Vec<f32>)> {
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

pub fn keyed_rdd(ctx: &Context, rows: &[(u64, Vec<f32>)]) -> Result<Rdd<(u64, Tensor)>> {
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

/// Rows `0..n` written under `url` as Parquet (`arrow`: Arrow IPC) in 3 uneven parts, rows
/// `lo..hi` of each part made into a record batch by `batch`.
pub fn write_parts(
    ctx: &Context,
    n: usize,
    url: &str,
    arrow: bool,
    batch: impl Fn(usize, usize) -> Batch,
) -> Result<()> {
    let parts: Vec<Batch> = [0, n / 7, n / 2, n]
        .windows(2)
        .map(|w| batch(w[0], w[1]))
        .collect();
    let rdd = ctx.parallelize(parts, 3)?;
    if arrow {
        rdd.save_as_arrow(url, SaveMode::ErrorIfExists)?;
    } else {
        rdd.save_as_parquet(url, SaveMode::ErrorIfExists)?;
    }
    Ok(())
}
