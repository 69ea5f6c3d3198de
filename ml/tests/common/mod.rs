//! Helpers shared by the distributed-training test binaries: local applications, the small
//! synthetic classification set and the tiny network most of them train.

#![allow(dead_code)]

use ember_engine::{Conf, Context};
use ember_ml::data::{one_hot, MiniBatch};
use ember_ml::nn::{Activation, Network, NetworkConfig};
use ember_ml::optim::{Method, OptimizerConfig};
use ember_ml::Result;
use ndarray::Array2;

/// Features of the synthetic set.
pub const FEATURES: usize = 20;
/// Classes of the synthetic set.
pub const CLASSES: usize = 3;

/// A local application of `workers` worker threads.
pub fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .expect("local master")
}

/// Every worker's result of `driver` on `workers` local workers.
pub fn on_each_worker<R, F>(workers: usize, driver: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(&Context) -> Result<R> + Send + Sync + 'static,
{
    try_on_each_worker(workers, driver).expect("distributed run")
}

/// Every worker's result, or the first worker's error.
pub fn try_on_each_worker<R, F>(workers: usize, driver: F) -> Result<Vec<R>>
where
    R: Send + 'static,
    F: Fn(&Context) -> Result<R> + Send + Sync + 'static,
{
    ember_engine::run_all(conf(workers), driver)?
        .into_iter()
        .collect::<Result<Vec<R>>>()
}

/// The synthetic set: class `(7r + r/3) % 3` of example `r` (classes interleaved, not in
/// blocks), features a fixed pseudo-random pattern in [-0.5, 0.5) plus 0.8 on the features whose
/// index is the class modulo 3, so there is something to learn.
pub fn synthetic(rows: usize) -> MiniBatch {
    let class = |r: usize| (r * 7 + r / 3) % CLASSES;
    let features = Array2::from_shape_fn((rows, FEATURES), |(r, c)| {
        let noise = ((r * 131 + c * 71 + r * c * 13) % 101) as f32 / 101.0 - 0.5;
        noise + if c % CLASSES == class(r) { 0.8 } else { 0.0 }
    });
    let labels = one_hot(&(0..rows).map(class).collect::<Vec<_>>(), CLASSES).unwrap();
    MiniBatch::new(features, labels).unwrap()
}

/// 20-16-3 MLP, no dropout (so every worker's forward pass is deterministic).
pub fn tiny_net(seed: u64) -> Network {
    NetworkConfig::builder(&[FEATURES])
        .dense(16, Activation::Relu)
        .dense(CLASSES, Activation::Identity)
        .seed(seed)
        .build()
        .unwrap()
}

/// SGD with momentum 0.9 at learning rate `lr`.
pub fn momentum(lr: f32) -> OptimizerConfig {
    OptimizerConfig::new(
        Method::Momentum {
            momentum: 0.9,
            nesterov: false,
        },
        lr,
    )
}
