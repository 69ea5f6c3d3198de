//! The classic cached logistic regression: points are generated once and cached; each of ten
//! iterations maps a gradient over the cached points, reduces it, and updates the weights.
//!
//! `cargo run --release --example logistic_regression [POINTS] [key=value...]` (default 1,000,000
//! points of 10 features, the benchmark's deterministic data).

mod common;

use ember::prelude::*;
use ember_bench::protocol::lr_point;

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
        ember_bench::lr::train(&points, n, ITERATIONS)
    })??;
    for (i, t) in times.iter().enumerate() {
        println!("iteration {:>2}: {:.4} s", i + 1, t);
    }
    println!("final w = {w:.6?}");
    Ok(())
}
