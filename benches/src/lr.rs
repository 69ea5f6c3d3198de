//! The cached logistic-regression loop on Ember, shared by the engine bench, the storage-level
//! bench and the `logistic_regression` example: one job per iteration maps each cached point to
//! its gradient and reduces, then the driver updates the weights (the classic Spark example).

use std::time::Instant;

use ember_engine::{EngineError, Rdd};

use crate::answer::LrAnswer;
use crate::protocol::{lr_gradient_scale, LR_FEATURES};
use crate::record::{workloads, Record};

/// A labelled point: features and a ±1 label.
pub type Point = ([f64; LR_FEATURES], f64);

/// Runs `iterations` gradient steps over `points` (already cached, `n` of them) from zero
/// weights; returns the weights and each iteration's wall time in seconds.
pub fn train(
    points: &Rdd<Point>,
    n: u64,
    iterations: usize,
) -> Result<([f64; LR_FEATURES], Vec<f64>), EngineError> {
    let mut w = [0.0f64; LR_FEATURES];
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let wb = w;
        let gradient = points
            .map(move |(x, y)| {
                let s = lr_gradient_scale(&wb, &x, y);
                x.map(|xj| xj * s)
            })
            .reduce(add_gradients)?
            .unwrap_or([0.0; LR_FEATURES]);
        for j in 0..LR_FEATURES {
            w[j] -= gradient[j] / n as f64;
        }
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((w, times))
}

/// Sums two gradients (the reduce of every LR iteration).
pub fn add_gradients(mut a: [f64; LR_FEATURES], b: [f64; LR_FEATURES]) -> [f64; LR_FEATURES] {
    for j in 0..LR_FEATURES {
        a[j] += b[j];
    }
    a
}

/// Ember's result line for a training run: the mean iteration time, the weights as the answer,
/// and the total time beside it.
pub fn record(w: &[f64; LR_FEATURES], times: &[f64]) -> Record {
    let total: f64 = times.iter().sum();
    let mut rec = Record::new(
        "ember",
        workloads::LOGISTIC_REGRESSION,
        total / times.len().max(1) as f64,
        LrAnswer::new(w),
    );
    rec.extra.insert("total_seconds".into(), total.into());
    rec
}
