//! The straggler benchmark, Ember side: the cached logistic regression with one slowed worker,
//! under one locality wait. Run through `ember-submit` (2 processes x 1 worker) by
//! `benches/straggler.sh`, which runs Spark's `StragglerBench` with the same settings.
//!
//! ```text
//! ember-straggler-bench --wait 100ms [--slow-ms 200] [--lr-points N] [--partitions P]
//!                       [--iterations K] [--warmup WU]
//! ```
//!
//! Partition `p` of the points is cached on worker `p % workers` (the caching job runs under a
//! long wait, so every block lands where it prefers, as Spark's side arranges with its
//! placement retries). Then `WU` untimed and `K` timed iterations run from zero weights under
//! `--wait`; every task on the last worker first sleeps `--slow-ms` (the straggler). Process 0
//! prints one JSON line: total time, locality mix and tasks per worker of the timed tasks, where
//! their cached blocks came from, and the weights.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ember_bench::answer::LrAnswer;
use ember_bench::lr::{add_gradients, Point};
use ember_bench::protocol::{lr_gradient_scale, lr_point, partition_range, LR_FEATURES};
use ember_bench::record::Record;
use ember_engine::prelude::*;
use ember_engine::{current_worker, last_job_stats, LocalityWaits};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    wait: String,
    slow_ms: u64,
    points: u64,
    partitions: usize,
    iterations: usize,
    warmup: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        wait: "3s".into(),
        slow_ms: 200,
        points: 200_000,
        partitions: 8,
        iterations: 5,
        warmup: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("`{v}` is not a count"))
        };
        match flag.as_str() {
            "--wait" => a.wait = value()?,
            "--slow-ms" => a.slow_ms = num(value()?)?,
            "--lr-points" => a.points = num(value()?)?,
            "--partitions" => a.partitions = num(value()?)? as usize,
            "--iterations" => a.iterations = num(value()?)? as usize,
            "--warmup" => a.warmup = num(value()?)? as usize,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(a)
}

/// What one timed run measured (the same on every worker).
struct Outcome {
    w: [f64; LR_FEATURES],
    times: Vec<f64>,
    locality: BTreeMap<String, usize>,
    per_worker: BTreeMap<String, usize>,
    sources: BTreeMap<String, usize>,
    cache_seconds: f64,
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ember-straggler-bench: {e}");
            std::process::exit(2);
        }
    };
    let mut conf = match Conf::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ember-straggler-bench: {e}");
            std::process::exit(2);
        }
    };
    // Validates the wait as configuration does (a negative or malformed wait is refused).
    if let Err(e) = conf.set("ember.locality.wait", &args.wait) {
        eprintln!("ember-straggler-bench: {e}");
        std::process::exit(2);
    }
    let process_zero = std::env::var("EMBER_CLUSTER_PROCESS").map_or(true, |p| p == "0");
    let (n, parts, slow, iterations, warmup) = (
        args.points,
        args.partitions,
        Duration::from_millis(args.slow_ms),
        args.iterations,
        args.warmup,
    );
    let result = ember_engine::run(conf, move |ctx| -> ember_engine::Result<Outcome> {
        let workers = ctx.num_workers();
        let straggler = workers - 1;
        let configured = ctx.locality_waits();
        ctx.set_locality_waits(LocalityWaits::uniform(Duration::from_secs(600)));
        let points: Rdd<Point> = ctx
            .make_rdd((0..parts).map(|p| (vec![p], vec![p % workers])).collect())?
            .flat_map(move |p| partition_range(n, parts, p).map(lr_point))
            .cache();
        let t = Instant::now();
        let cached = points.count()?;
        let cache_seconds = t.elapsed().as_secs_f64();
        assert_eq!(cached, n, "every point cached");
        ctx.set_locality_waits(configured);

        let mut w = [0.0f64; LR_FEATURES];
        let mut out = Outcome {
            w,
            times: Vec::new(),
            locality: BTreeMap::new(),
            per_worker: BTreeMap::new(),
            sources: BTreeMap::new(),
            cache_seconds,
        };
        for i in 0..warmup + iterations {
            if i == warmup {
                w = [0.0; LR_FEATURES];
            }
            let t = Instant::now();
            let wb = w;
            let gradient = points
                .map_partitions(move |it| {
                    if current_worker() == Some(straggler) {
                        std::thread::sleep(slow);
                    }
                    let mut g = [0.0f64; LR_FEATURES];
                    for (x, y) in it {
                        let s = lr_gradient_scale(&wb, &x, y);
                        for j in 0..LR_FEATURES {
                            g[j] += x[j] * s;
                        }
                    }
                    Box::new(std::iter::once(g))
                })
                .reduce(add_gradients)?
                .unwrap_or([0.0; LR_FEATURES]);
            for j in 0..LR_FEATURES {
                w[j] -= gradient[j] / n as f64;
            }
            if i < warmup {
                continue;
            }
            out.times.push(t.elapsed().as_secs_f64());
            let stats = last_job_stats().expect("a job ran");
            let stage = stats.result_stage().expect("a result stage");
            for (level, count) in stage.locality_mix() {
                *out.locality.entry(level.name().to_string()).or_insert(0) += count;
            }
            for (worker, count) in stage.tasks_per_worker() {
                *out.per_worker.entry(worker.to_string()).or_insert(0) += count;
            }
            for (source, count) in stage.block_sources() {
                *out.sources.entry(source).or_insert(0) += count;
            }
        }
        out.w = w;
        Ok(out)
    });
    let out = match result {
        Ok(Ok(out)) => out,
        Ok(Err(e)) | Err(e) => {
            eprintln!("ember-straggler-bench: {e}");
            std::process::exit(1);
        }
    };
    if !process_zero {
        return;
    }
    let total: f64 = out.times.iter().sum();
    let wait_ms =
        ember_engine::config::parse_duration(&args.wait).map_or(0, |d| d.as_millis() as u64);
    let mut rec = Record::new("ember", "lr_straggler", total, LrAnswer::new(&out.w));
    let extra = [
        ("wait", serde_json::json!(args.wait)),
        ("wait_ms", serde_json::json!(wait_ms)),
        ("total_seconds", serde_json::json!(total)),
        ("iteration_seconds", serde_json::json!(out.times)),
        ("locality", serde_json::json!(out.locality)),
        ("tasks_per_executor", serde_json::json!(out.per_worker)),
        ("block_sources", serde_json::json!(out.sources)),
        ("cache_seconds", serde_json::json!(out.cache_seconds)),
        ("slow_ms", serde_json::json!(args.slow_ms)),
        ("points", serde_json::json!(args.points)),
        ("partitions", serde_json::json!(args.partitions)),
        ("iterations", serde_json::json!(args.iterations)),
        ("warmup_iterations", serde_json::json!(args.warmup)),
    ];
    for (k, v) in extra {
        rec.extra.insert(k.into(), v);
    }
    match serde_json::to_string(&rec) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("ember-straggler-bench: {e}");
            std::process::exit(1);
        }
    }
}
