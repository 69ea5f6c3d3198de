//! Gradient sharing with threshold encoding (`SharedGradients`) on local engine applications:
//! every update applied exactly once on every replica (2, 4 and 10 workers, all-to-all and the
//! relay tree, synchronous and with bounded staleness over uneven partitions), bit-identical
//! replicas after every synchronous step, a stage restarted after a failure trains what a clean
//! run trains, a diverging update is a typed error naming the worker and step, residual clipping
//! holds, the statistics say when the threshold is mis-set, and MNIST learns.
//!
//! The synthetic runs train a 20-16-3 network on 320 examples: about a second each in a debug
//! build. The MNIST run trains on the first 10,000 training images for 2 epochs.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{momentum, on_each_worker, synthetic, tiny_net, try_on_each_worker};
use ember_engine::{Context, Rdd};
use ember_ml::data::{mnist, MiniBatch, Split};
use ember_ml::distributed::sharing::{diagnose, NoResidualProcessing};
use ember_ml::distributed::stats::{read_json_lines, write_json_lines};
use ember_ml::distributed::{
    sharded_minibatches, DistributedNetwork, EpochReport, FixedThreshold, SharedGradients,
    TargetSparsityThreshold,
};
use ember_ml::nn::{Activation, NetworkConfig};
use ember_ml::optim::{Method, OptimizerConfig};
use ember_ml::train::evaluate;

const MNIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist");
const ROWS: usize = 320;
const SEED: u64 = 11;

/// Per-worker minibatches of `batch` examples, `counts[w]` of them on worker `w` (uneven
/// partitions when the counts differ), preferably computed on worker `w`.
fn uneven_batches(
    ctx: &Context,
    counts: &[usize],
    batch: usize,
) -> ember_ml::Result<Rdd<MiniBatch>> {
    let data = synthetic(ROWS);
    let mut next = 0;
    let parts = counts
        .iter()
        .enumerate()
        .map(|(w, &c)| {
            let mine: Vec<MiniBatch> = (0..c)
                .map(|_| {
                    let b = data.slice(next % (ROWS - batch), next % (ROWS - batch) + batch);
                    next += batch;
                    b
                })
                .collect();
            (mine, vec![w])
        })
        .collect();
    Ok(ctx.make_rdd(parts)?)
}

/// The synthetic set in global batches of 32, sharded over the workers.
fn global32(ctx: &Context) -> ember_ml::Result<Rdd<MiniBatch>> {
    sharded_minibatches(ctx, &synthetic(ROWS), 32, ctx.num_workers())
}

/// Trains `epochs` epochs of `batches(ctx)` under `master` on `workers` workers; each worker's
/// epoch reports.
fn run<B>(
    workers: usize,
    master: SharedGradients,
    epochs: usize,
    batches: B,
) -> Vec<Vec<EpochReport>>
where
    B: Fn(&Context) -> ember_ml::Result<Rdd<MiniBatch>> + Send + Sync + 'static,
{
    on_each_worker(workers, move |ctx| {
        let data = batches(ctx)?;
        let mut net = DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.05), master.clone())?;
        (0..epochs).map(|_| net.fit(&data)).collect()
    })
}

/// Every replica applied every worker's updates exactly once, and the replicas agree after the
/// epoch; returns the epoch's steps.
fn assert_exactly_once(reports: &[EpochReport], workers: usize) {
    for r in reports {
        assert_eq!(r.exchange.len(), workers);
        for (w, ex) in r.exchange.iter().enumerate() {
            assert_eq!(ex.rank, w);
            let trained = r.records.iter().filter(|rec| rec.worker == w).count() as u64;
            assert_eq!(
                ex.sent, trained,
                "rank {w} sent one update per step it trained"
            );
            for (o, other) in r.exchange.iter().enumerate() {
                assert_eq!(
                    ex.applied_from[o], other.sent,
                    "rank {w} applied {} of rank {o}'s {} updates",
                    ex.applied_from[o], other.sent
                );
            }
            assert_eq!(ex.duplicates, 0);
        }
        assert!(
            r.replica_checksums.windows(2).all(|c| c[0] == c[1]),
            "replicas differ after the epoch: {:?}",
            r.replica_checksums
        );
    }
}

/// The parameters' checksum after each step (debug mode) is the same on every worker.
fn assert_identical_after_every_step(r: &EpochReport) {
    let mut by_step = std::collections::BTreeMap::<u64, Vec<u64>>::new();
    for rec in &r.records {
        let sums = rec.sharing.as_ref().and_then(|s| s.params_checksum);
        by_step
            .entry(rec.step)
            .or_default()
            .push(sums.expect("debug mode records a checksum after every step"));
    }
    assert!(!by_step.is_empty());
    for (step, sums) in by_step {
        assert!(
            sums.windows(2).all(|c| c[0] == c[1]),
            "step {step}: replicas differ: {sums:?}"
        );
    }
}

#[test]
fn synchronous_sharing_applies_every_update_once_and_keeps_replicas_identical_each_step() {
    for workers in [2, 4] {
        let master = SharedGradients::new().with_debug(true);
        let runs = run(workers, master, 2, move |ctx| {
            Ok(sharded_minibatches(ctx, &synthetic(ROWS), 32, workers)?.cache())
        });
        for reports in &runs {
            assert_exactly_once(reports, workers);
            for r in reports {
                assert_identical_after_every_step(r);
                assert_eq!(r.steps, 10, "10 global batches");
                for rec in &r.records {
                    let sh = rec.sharing.as_ref().unwrap();
                    assert_eq!(sh.staleness_max, 0, "synchronous");
                    assert!(sh.message_bytes >= 36 && sh.threshold > 0.0);
                }
            }
        }
        // Every worker saw the same run.
        let first: Vec<u64> = runs[0].iter().map(|r| r.replica_checksums[0]).collect();
        for other in &runs[1..] {
            let theirs: Vec<u64> = other.iter().map(|r| r.replica_checksums[0]).collect();
            assert_eq!(first, theirs);
        }
        // Training moved the parameters and the loss went down.
        let (a, b) = (runs[0][0].mean_loss, runs[0][1].mean_loss);
        assert!(b < a, "loss {a} then {b}");
    }
}

#[test]
fn stale_sharing_over_uneven_partitions_applies_every_update_once_within_the_bound() {
    let slow = Arc::new(AtomicBool::new(true));
    let master = SharedGradients::new().with_max_staleness(2);
    let runs = run(4, master, 1, move |ctx| {
        let slow = Arc::clone(&slow);
        // Rank 0 is slow (its minibatches take 15 ms to arrive), rank 3 has half the data.
        Ok(
            uneven_batches(ctx, &[8, 8, 7, 4], 8)?.map_partitions_with_index(move |part, it| {
                let slow = part == 0 && slow.load(Ordering::Relaxed);
                Box::new(it.inspect(move |_| {
                    if slow {
                        std::thread::sleep(Duration::from_millis(15));
                    }
                }))
            }),
        )
    });
    for reports in &runs {
        assert_exactly_once(reports, 4);
        let r = &reports[0];
        assert_eq!(r.steps, 8, "the longest partition");
        let sent: Vec<u64> = r.exchange.iter().map(|e| e.sent).collect();
        assert_eq!(sent, vec![8, 8, 7, 4]);
        let worst = r.exchange.iter().map(|e| e.staleness_max).max().unwrap();
        assert!(worst <= 2, "staleness {worst} beyond the bound");
        assert!(worst >= 1, "the fast workers ran ahead of the slow one");
    }
}

#[test]
fn the_relay_tree_delivers_every_update_once() {
    // Four workers in a tree of fan-out 2 (0 -> 1, 2; 1 -> 3), and ten in the default tree
    // (above 8 workers, fan-out 8).
    for (workers, master) in [
        (
            4,
            SharedGradients::new()
                .with_relay_above(1)
                .with_relay_fanout(2)
                .with_debug(true),
        ),
        (10, SharedGradients::new().with_debug(true)),
    ] {
        let runs = run(workers, master, 1, move |ctx| {
            sharded_minibatches(ctx, &synthetic(ROWS), 8 * workers, workers)
        });
        for reports in &runs {
            assert_exactly_once(reports, workers);
            assert_identical_after_every_step(&reports[0]);
        }
    }
}

#[test]
fn a_restarted_stage_trains_exactly_what_a_clean_run_trains() {
    let clean = run(2, SharedGradients::new(), 1, global32);
    let fail = Arc::new(AtomicBool::new(true));
    let restarted = run(2, SharedGradients::new(), 1, move |ctx| {
        let fail = Arc::clone(&fail);
        Ok(
            sharded_minibatches(ctx, &synthetic(ROWS), 32, 2)?.map_partitions_with_index(
                move |part, it| {
                    let fail = Arc::clone(&fail);
                    // Rank 1 fails once, on its fourth minibatch, after three steps were exchanged.
                    Box::new(it.enumerate().map(move |(i, b)| {
                        if part == 1 && i == 3 && fail.swap(false, Ordering::SeqCst) {
                            panic!("injected failure mid-epoch");
                        }
                        b
                    }))
                },
            ),
        )
    });
    for (c, r) in clean.iter().zip(&restarted) {
        assert_exactly_once(r, 2);
        assert_eq!(
            c[0].replica_checksums, r[0].replica_checksums,
            "the restarted run trained something else"
        );
    }
}

#[test]
fn a_diverging_update_is_an_error_naming_the_worker_and_step() {
    // Adam moves each parameter by about the learning rate a step; at 1e38 the residual
    // overflows to infinity within a few steps (nothing clips it).
    let master = SharedGradients::new().with_residual(NoResidualProcessing);
    let err = try_on_each_worker(2, move |ctx| {
        let data = sharded_minibatches(ctx, &synthetic(ROWS), 32, 2)?;
        let opt = OptimizerConfig::new(Method::adam(), 1e38);
        let mut net = DistributedNetwork::new(ctx, tiny_net(SEED), opt, master.clone())?;
        net.fit(&data)
    })
    .expect_err("training must fail");
    let text = err.to_string();
    assert!(text.contains("diverged"), "{text}");
    assert!(
        text.contains("worker") && text.contains("at step"),
        "{text}"
    );
}

#[test]
fn residual_clipping_bounds_the_residual_and_thresholds_follow_their_algorithm() {
    let master = SharedGradients::new()
        .with_threshold(TargetSparsityThreshold::default())
        .with_debug(true);
    let runs = run(2, master, 1, global32);
    let r = &runs[0][0];
    for w in 0..2 {
        let mine: Vec<_> = r.records.iter().filter(|rec| rec.worker == w).collect();
        let mut expected = 1e-4f64;
        for (i, rec) in mine.iter().enumerate() {
            let sh = rec.sharing.as_ref().unwrap();
            assert!(
                (sh.threshold as f64 / expected - 1.0).abs() < 1e-5,
                "worker {w} step {i}: threshold {} expected {expected}",
                sh.threshold
            );
            // The target-sparsity rule, by hand: toward 1e-3 by 0.5^(1/20) a step.
            let f = 0.5f64.powf(1.0 / 20.0);
            expected = if sh.sparsity < 1e-3 {
                expected * f
            } else if sh.sparsity > 1e-3 {
                expected / f
            } else {
                expected
            };
            expected = expected as f32 as f64;
            let res = sh.residual.expect("debug mode");
            if i % 5 == 0 {
                assert!(
                    res.max <= 5.0 + 1e-4,
                    "step {i}: |r| up to {}τ after a clip",
                    res.max
                );
            }
        }
    }
}

#[test]
fn a_mis_set_threshold_is_called_out_and_records_round_trip() {
    // Far too high: nothing is ever sent.
    let high = run(
        2,
        SharedGradients::new().with_threshold(FixedThreshold(10.0)),
        1,
        global32,
    );
    let warnings = diagnose(&high[0][0].records);
    assert!(
        warnings.iter().any(|w| w.contains("too high")),
        "{warnings:?}"
    );
    // Far too low: the residual piles up at many times the threshold.
    let low = run(
        2,
        SharedGradients::new()
            .with_threshold(FixedThreshold(1e-7))
            .with_residual(NoResidualProcessing)
            .with_debug(true),
        1,
        global32,
    );
    let warnings = diagnose(&low[0][0].records);
    assert!(
        warnings.iter().any(|w| w.contains("too low")),
        "{warnings:?}"
    );
    // The default, well-set threshold draws no warning.
    let ok = run(2, SharedGradients::new().with_debug(true), 1, global32);
    assert_eq!(diagnose(&ok[0][0].records), Vec::<String>::new());
    // Sharing records survive the JSON lines.
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("steps.jsonl").to_str().unwrap().to_string();
    let config = ember_storage::StorageConfig::default();
    write_json_lines(&url, &ok[0][0].records, &config).unwrap();
    assert_eq!(read_json_lines(&url, &config).unwrap(), ok[0][0].records);
}

/// MNIST MLP 784-256-10 on 2 workers, first 10,000 training images, 2 epochs, 64 examples per
/// worker and step, momentum 0.9 at lr 0.025 (half the dense runs' 0.05: two workers' updates
/// are summed), default adaptive threshold. Returns the test accuracy.
fn mnist_sharing_accuracy() -> f64 {
    static DATA: OnceLock<(MiniBatch, MiniBatch)> = OnceLock::new();
    let (train, test) = DATA
        .get_or_init(|| {
            let train = mnist(MNIST, Split::Train).expect("data/mnist ships with the repository");
            (
                train.slice(0, 10_000),
                mnist(MNIST, Split::Test).expect("data/mnist"),
            )
        })
        .clone();
    let out = on_each_worker(2, move |ctx| {
        let net = NetworkConfig::builder(&[784])
            .dense(256, Activation::Relu)
            .dense(10, Activation::Identity)
            .seed(42)
            .build()?;
        let mut dist = DistributedNetwork::new(ctx, net, momentum(0.025), SharedGradients::new())?;
        let mut train = train.clone();
        let mut bytes = 0u64;
        for epoch in 0..2 {
            train.shuffle(7 + epoch);
            let report = dist.fit(&sharded_minibatches(ctx, &train, 128, 2)?)?;
            assert_eq!(report.examples, 10_000);
            bytes = report.records.iter().map(|r| r.bytes_sent).sum::<u64>();
        }
        if ctx.worker_index() != 0 {
            return Ok(0.0);
        }
        let steps = dist.stats().iter().filter(|r| r.epoch == 1).count() as u64;
        let dense = 4 * dist.network().num_params() as u64;
        eprintln!(
            "MNIST sharing: {} bytes per worker-step in epoch 2, {:.0}x fewer than dense",
            bytes / steps,
            dense as f64 / (bytes / steps) as f64
        );
        let accuracy = evaluate(&mut dist.network_mut(), &test, 1000)?.accuracy();
        eprintln!("MNIST gradient sharing on 2 workers: test accuracy {accuracy:.4}");
        Ok(accuracy)
    });
    out[0]
}

/// Measured (debug build, deterministic: synchronous sharing): 0.9049 test accuracy, against
/// 0.9275 for dense DP on the same data in `distributed.rs` (the threshold's delay costs early
/// training; the full run in the benchmark closes the gap). The bar is the measurement less 2
/// percentage points, 0.885; a network that learned nothing scores about 0.10.
#[test]
fn mnist_mlp_learns_with_gradient_sharing_on_two_workers() {
    let accuracy = mnist_sharing_accuracy();
    assert!(accuracy >= 0.885, "test accuracy {accuracy}");
}
