//! The classic cached logistic regression: points are generated once and cached; each of ten
//! iterations maps a gradient over the cached points, reduces it, and updates the weights.
//!
//! `cargo run --release --example logistic_regression [POINTS] [key=value...]` (default 1,000,000
//! points of 10 features, the benchmark's deterministic data).

mod common;

use std::time::Instant;

use ember::prelude::*;
use ember_bench::protocol::{lr_gradient_scale, lr_point, LR_FEATURES};

const ITERATIONS: usize = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (conf, args) = common::conf_from_args()?;
    let n: u64 = args
        .first()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let (w, times) = ember::engine::run(conf, move |ctx| -> Result<_, EngineError> {
        let points = ctx
            .range(0, n as i64, 1, 8)?
            .map(|i| lr_point(i as u64))
            .cache();
        points.count()?; // materialize the cache
        let mut w = [0.0f64; LR_FEATURES];
        let mut times = Vec::new();
        for _ in 0..ITERATIONS {
            let t = Instant::now();
            let wb = w;
            let gradient = points
                .map(move |(x, y)| {
                    let scale = lr_gradient_scale(&wb, &x, y);
                    let mut g = [0.0; LR_FEATURES];
                    for j in 0..LR_FEATURES {
                        g[j] = x[j] * scale;
                    }
                    g
                })
                .reduce(|mut a, b| {
                    for j in 0..LR_FEATURES {
                        a[j] += b[j];
                    }
                    a
                })?
                .unwrap_or([0.0; LR_FEATURES]);
            for j in 0..LR_FEATURES {
                w[j] -= gradient[j] / n as f64;
            }
            times.push(t.elapsed().as_secs_f64());
        }
        Ok((w, times))
    })??;
    for (i, t) in times.iter().enumerate() {
        println!("iteration {:>2}: {:.4} s", i + 1, t);
    }
    println!("final w = {w:.6?}");
    Ok(())
}
