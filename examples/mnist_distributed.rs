//! Distributed MNIST training on Ember: an MLP (784-256-10) or LeNet trained by every worker of
//! the application, with dense data parallel (`--master dp`, the default), parameter averaging
//! in one barrier stage per epoch (`averaging`) or in one job per averaging round as DL4J does
//! (`averaging-jobs`), threshold-encoded gradient sharing (`sharing`, DL4J's
//! `SharedTrainingMaster`), or on one network without the engine (`single`), as a baseline.
//!
//! ```text
//! cargo run --release --example mnist_distributed                  # MLP, dense DP on local[2]
//! cargo run --release --example mnist_distributed -- --model lenet --master averaging --workers 4
//! cargo run --release --example mnist_distributed -- --master sharing --staleness 2 --epochs 5
//! ember-submit -n 2 -w 1 -- target/release/examples/mnist_distributed --epochs 3
//! ```
//!
//! Options: `--data DIR` (the four MNIST IDX files; default `data/mnist`, shipped with the
//! repository), `--model mlp|lenet`, `--master single|dp|averaging|averaging-jobs|sharing`,
//! `--workers N` (local mode; ignored when `EMBER_MASTER` is set, as by `ember-submit`),
//! `--threads T` (GEMM threads per process, default 1 per worker), `--epochs E` (1), `--batch B`
//! (the total batch over all workers, 128), `--lr` (0.01), `--momentum` (0.9),
//! `--averaging-frequency K` (5), `--limit N` (train on the first N images), `--stats DIR`
//! (write `stats.jsonl` and the HTML report `report.html` there), `--checkpoint URL` (save every
//! `--checkpoint-every` synchronizations and resume from the last checkpoint), `--json` (one JSON
//! line instead of the text summary). Gradient sharing: `--threshold-algorithm
//! adaptive|fixed|target` (adaptive), `--threshold T` (its initial or fixed τ; the algorithm's
//! default otherwise), `--staleness K` (0: synchronous), `--warmup N` (dense steps first),
//! `--masking` (momentum factor masking), `--debug-encoding` (residual statistics per step).

use std::time::Instant;

use ember::engine::Conf;
use ember::ml::data::{mnist, MiniBatch, Split};
use ember::ml::distributed::sharing::diagnose;
use ember::ml::distributed::{
    sharded_minibatches, AdaptiveThreshold, AveragingMode, DataParallel, DistributedNetwork,
    FixedThreshold, ParameterAveraging, SharedGradients, StepRecord, TargetSparsityThreshold,
    TrainingMaster,
};
use ember::ml::nn::{Activation, Network, NetworkConfig};
use ember::ml::optim::{Method, Optimizer, OptimizerConfig};
use ember::ml::train::{evaluate, fit_epoch};

#[derive(Clone)]
struct Args {
    data: String,
    model: String,
    master: String,
    workers: usize,
    threads: Option<usize>,
    epochs: usize,
    batch: usize,
    lr: f32,
    momentum: f32,
    frequency: usize,
    limit: Option<usize>,
    stats: Option<String>,
    checkpoint: Option<String>,
    checkpoint_every: u64,
    json: bool,
    threshold_algorithm: String,
    threshold: Option<f32>,
    staleness: u64,
    warmup: u64,
    masking: bool,
    debug_encoding: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        data: "data/mnist".into(),
        model: "mlp".into(),
        master: "dp".into(),
        workers: 2,
        threads: None,
        epochs: 1,
        batch: 128,
        lr: 0.01,
        momentum: 0.9,
        frequency: 5,
        limit: None,
        stats: None,
        checkpoint: None,
        checkpoint_every: 50,
        json: false,
        threshold_algorithm: "adaptive".into(),
        threshold: None,
        staleness: 0,
        warmup: 0,
        masking: false,
        debug_encoding: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--data" => a.data = value()?,
            "--model" => a.model = value()?,
            "--master" => a.master = value()?,
            "--workers" => a.workers = num(value()?)? as usize,
            "--threads" => a.threads = Some(num(value()?)? as usize),
            "--epochs" => a.epochs = num(value()?)? as usize,
            "--batch" => a.batch = num(value()?)? as usize,
            "--lr" => a.lr = num(value()?)? as f32,
            "--momentum" => a.momentum = num(value()?)? as f32,
            "--averaging-frequency" => a.frequency = num(value()?)? as usize,
            "--limit" => a.limit = Some(num(value()?)? as usize),
            "--stats" => a.stats = Some(value()?),
            "--checkpoint" => a.checkpoint = Some(value()?),
            "--checkpoint-every" => a.checkpoint_every = num(value()?)? as u64,
            "--json" => a.json = true,
            "--threshold-algorithm" => a.threshold_algorithm = value()?,
            "--threshold" => a.threshold = Some(num(value()?)? as f32),
            "--staleness" => a.staleness = num(value()?)? as u64,
            "--warmup" => a.warmup = num(value()?)? as u64,
            "--masking" => a.masking = true,
            "--debug-encoding" => a.debug_encoding = true,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown option {other}\n{}", usage())),
        }
    }
    if !["mlp", "lenet"].contains(&a.model.as_str()) {
        return Err(format!("--model {}: expected mlp or lenet", a.model));
    }
    if !["single", "dp", "averaging", "averaging-jobs", "sharing"].contains(&a.master.as_str()) {
        return Err(format!(
            "--master {}: expected single, dp, averaging, averaging-jobs or sharing",
            a.master
        ));
    }
    if !["adaptive", "fixed", "target"].contains(&a.threshold_algorithm.as_str()) {
        return Err(format!(
            "--threshold-algorithm {}: expected adaptive, fixed or target",
            a.threshold_algorithm
        ));
    }
    if a.threshold.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
        return Err("--threshold must be a positive number".into());
    }
    if a.batch == 0 || a.workers == 0 || a.epochs == 0 {
        return Err("--batch, --workers and --epochs must be at least 1".into());
    }
    Ok(a)
}

fn usage() -> String {
    "usage: mnist_distributed [--data DIR] [--model mlp|lenet] \
     [--master single|dp|averaging|averaging-jobs|sharing] [--workers N] [--threads T] \
     [--epochs E] [--batch B] [--lr LR] [--momentum M] [--averaging-frequency K] [--limit N] \
     [--stats DIR] [--checkpoint URL] [--checkpoint-every N] [--json] \
     [--threshold-algorithm adaptive|fixed|target] [--threshold T] [--staleness K] \
     [--warmup N] [--masking] [--debug-encoding]"
        .into()
}

fn network(model: &str) -> Result<Network, ember::ml::MlError> {
    let b = if model == "mlp" {
        NetworkConfig::builder(&[784])
            .dense(256, Activation::Relu)
            .dense(10, Activation::Identity)
    } else {
        NetworkConfig::builder(&[1, 28, 28])
            .conv2d(20, 5, 0, Activation::Relu)
            .max_pool(2, 2)
            .conv2d(50, 5, 0, Activation::Relu)
            .max_pool(2, 2)
            .flatten()
            .dense(500, Activation::Relu)
            .dense(10, Activation::Identity)
    };
    b.seed(42).build()
}

/// What a run measured.
struct Outcome {
    workers: usize,
    examples: u64,
    seconds: f64,
    accuracy: f64,
    comm_share: f64,
    loss: f64,
    checksums: Vec<u64>,
    /// Mean bytes sent per worker and step: in the first epoch, and in the later ones.
    bytes_per_step: (f64, Option<f64>),
    /// Largest staleness seen (gradient sharing).
    staleness_max: u64,
    /// What the encoding statistics say is wrong (gradient sharing).
    warnings: Vec<String>,
}

/// The master `args` name for `workers` workers.
fn master(args: &Args, workers: usize) -> Box<dyn TrainingMaster> {
    match args.master.as_str() {
        "dp" => Box::new(DataParallel::default()),
        "sharing" => {
            let mut m = SharedGradients::new()
                .with_max_staleness(args.staleness)
                .with_dense_warmup(args.warmup)
                .with_momentum_masking(args.masking)
                .with_debug(args.debug_encoding);
            m = match (args.threshold_algorithm.as_str(), args.threshold) {
                ("fixed", t) => m.with_threshold(FixedThreshold(t.unwrap_or(1e-3))),
                ("target", t) => m.with_threshold(TargetSparsityThreshold {
                    initial: t.unwrap_or(1e-4),
                    ..TargetSparsityThreshold::default()
                }),
                (_, Some(t)) => m.with_threshold(AdaptiveThreshold {
                    initial: t,
                    ..AdaptiveThreshold::default()
                }),
                _ => m,
            };
            Box::new(m)
        }
        _ => {
            let mut pa = ParameterAveraging::new((args.batch / workers).max(1));
            pa.averaging_frequency = args.frequency;
            if args.master == "averaging-jobs" {
                pa.mode = AveragingMode::JobPerRound;
            }
            Box::new(pa)
        }
    }
}

/// Mean bytes sent per worker and step, over the records `keep` selects.
fn bytes_per_step(records: &[StepRecord], keep: impl Fn(&StepRecord) -> bool) -> Option<f64> {
    let (bytes, n) = records
        .iter()
        .filter(|r| keep(r))
        .fold((0u64, 0u64), |(b, n), r| (b + r.bytes_sent, n + 1));
    (n > 0).then(|| bytes as f64 / n as f64)
}

fn load(args: &Args, split: Split) -> Result<MiniBatch, Box<dyn std::error::Error>> {
    let data = mnist(&args.data, split).map_err(|e| {
        format!(
            "{e} (the MNIST files ship in data/mnist; run from the repository root or pass --data)"
        )
    })?;
    Ok(match (split, args.limit) {
        (Split::Train, Some(n)) if n < data.len() => data.slice(0, n),
        _ => data,
    })
}

fn optimizer(args: &Args) -> OptimizerConfig {
    OptimizerConfig::new(
        Method::Momentum {
            momentum: args.momentum,
            nesterov: false,
        },
        args.lr,
    )
}

fn single(args: &Args) -> Result<Outcome, Box<dyn std::error::Error>> {
    let train = load(args, Split::Train)?;
    let test = load(args, Split::Test)?;
    let mut net = network(&args.model)?;
    let mut opt = Optimizer::new(optimizer(args), net.num_params())?;
    let (mut examples, mut seconds, mut loss) = (0u64, 0f64, 0f64);
    for epoch in 0..args.epochs {
        let s = fit_epoch(
            &mut net,
            &mut opt,
            &train,
            args.batch,
            7 + epoch as u64,
            "train",
        )?;
        examples += s.examples as u64;
        seconds += s.seconds;
        loss = s.mean_loss as f64;
    }
    let accuracy = evaluate(&mut net, &test, 256)?.accuracy();
    Ok(Outcome {
        workers: 1,
        examples,
        seconds,
        accuracy,
        comm_share: 0.0,
        loss,
        checksums: vec![ember::ml::distributed::checksum(net.params())],
        bytes_per_step: (0.0, None),
        staleness_max: 0,
        warnings: Vec::new(),
    })
}

fn comm_share(records: &[StepRecord]) -> f64 {
    let (comm, total) = records.iter().fold((0u64, 0u64), |(c, t), r| {
        (c + r.comm_us + r.peer_wait_us, t + r.total_us())
    });
    comm as f64 / total.max(1) as f64
}

fn distributed(args: &Args) -> Result<Option<Outcome>, Box<dyn std::error::Error>> {
    let mut conf = Conf::from_env()?;
    if std::env::var_os("EMBER_MASTER").is_none() {
        conf = conf.with("ember.master", &format!("local[{}]", args.workers))?;
    }
    let args = args.clone();
    let outcome = ember::engine::run(conf, move |ctx| -> Result<Option<Outcome>, String> {
        let run = || -> Result<Option<Outcome>, Box<dyn std::error::Error>> {
            let workers = ctx.num_workers();
            let mut train = load(&args, Split::Train)?;
            let master = master(&args, workers);
            let mut net =
                DistributedNetwork::new(ctx, network(&args.model)?, optimizer(&args), master)?;
            if let Some(url) = &args.checkpoint {
                net = net.with_checkpoints(url, args.checkpoint_every)?;
            }
            let (mut examples, mut seconds, mut loss, mut sums) = (0u64, 0f64, 0f64, Vec::new());
            let mut staleness_max = 0;
            for epoch in net.epoch()..args.epochs {
                // A new order every epoch, the same on every worker (seeded).
                train.shuffle(7 + epoch as u64);
                let batches = sharded_minibatches(ctx, &train, args.batch, workers)?.cache();
                let started = Instant::now();
                let report = net.fit(&batches)?;
                seconds += started.elapsed().as_secs_f64();
                examples += report.examples;
                loss = report.mean_loss;
                sums = report.replica_checksums.clone();
                staleness_max = report
                    .exchange
                    .iter()
                    .map(|e| e.staleness_max)
                    .fold(staleness_max, u64::max);
                if ctx.worker_index() == 0 && !args.json {
                    eprintln!(
                        "epoch {epoch}: loss {:.4}, {:.0} samples/s, {} steps",
                        report.mean_loss,
                        report.examples as f64 / report.seconds,
                        report.steps
                    );
                }
            }
            if let Some(dir) = &args.stats {
                let title = format!("mnist_distributed {} ({})", args.model, args.master);
                let json = format!("{}/stats.jsonl", dir.trim_end_matches('/'));
                let html = format!("{}/report.html", dir.trim_end_matches('/'));
                net.write_stats(&title, Some(&json), Some(&html))?;
            }
            if ctx.worker_index() != 0 {
                return Ok(None);
            }
            let test = load(&args, Split::Test)?;
            let accuracy = evaluate(&mut net.network_mut(), &test, 256)?.accuracy();
            let first = net.stats().first().map_or(0, |r| r.epoch);
            Ok(Some(Outcome {
                workers,
                examples,
                seconds,
                accuracy,
                comm_share: comm_share(net.stats()),
                loss,
                checksums: sums,
                bytes_per_step: (
                    bytes_per_step(net.stats(), |r| r.epoch == first).unwrap_or(0.0),
                    bytes_per_step(net.stats(), |r| r.epoch > first),
                ),
                staleness_max,
                warnings: diagnose(net.stats()),
            }))
        };
        run().map_err(|e| e.to_string())
    })?;
    outcome.map_err(|e| e.into())
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // ML threads per process, one per worker unless told: each worker gets a pool of its own
    // (`use_worker_pool`), and the workers are the parallelism.
    let threads = args
        .threads
        .unwrap_or(if args.master == "single" { 2 } else { 1 });
    std::env::set_var("EMBER_ML_THREADS", threads.to_string());
    let outcome = if args.master == "single" {
        single(&args).map(Some)
    } else {
        distributed(&args)
    };
    match outcome {
        Ok(Some(o)) => report(&args, &o),
        Ok(None) => {}
        Err(e) => {
            eprintln!("mnist_distributed: {e}");
            std::process::exit(1);
        }
    }
}

fn report(args: &Args, o: &Outcome) {
    let samples_per_s = o.examples as f64 / o.seconds.max(1e-9);
    let identical = o.checksums.windows(2).all(|w| w[0] == w[1]);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "framework": "ember",
                "master": args.master,
                "model": args.model,
                "workers": o.workers,
                "epochs": args.epochs,
                "samples_per_s": samples_per_s,
                "seconds": o.seconds,
                "comm_share": o.comm_share,
                "test_accuracy": o.accuracy,
                "mean_loss": o.loss,
                "replicas_identical": identical,
                "bytes_per_step_first_epoch": o.bytes_per_step.0,
                "bytes_per_step_later_epochs": o.bytes_per_step.1,
                "staleness_max": o.staleness_max,
                "warnings": o.warnings,
            })
        );
    } else {
        println!(
            "{} {} on {} worker(s): {:.2}% test accuracy, {:.0} samples/s, {:.1} s training, \
             communication {:.1}% of step time, replicas {}",
            args.model,
            args.master,
            o.workers,
            100.0 * o.accuracy,
            samples_per_s,
            o.seconds,
            100.0 * o.comm_share,
            if identical { "bit-identical" } else { "DIFFER" }
        );
        if o.workers > 1 {
            let later = o
                .bytes_per_step
                .1
                .map_or(String::new(), |b| format!(", {} in later epochs", human(b)));
            println!(
                "sent per worker and step: {} in the first epoch{later}; largest staleness {}",
                human(o.bytes_per_step.0),
                o.staleness_max
            );
        }
    }
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
}

fn human(bytes: f64) -> String {
    match bytes {
        b if b >= 1e6 => format!("{:.2} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB", b / 1e3),
        b => format!("{b:.0} B"),
    }
}
