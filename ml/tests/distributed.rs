//! Distributed training (`ember_ml::distributed`) on local engine applications: dense data
//! parallel against one worker, bit-identical replicas and reproducible runs, the two modes of
//! parameter averaging, exported minibatch files, MNIST accuracy, bad input, checkpoints with
//! resume, training statistics and the block manager's accounting of cached minibatches.
//!
//! Most tests train a small network (20-16-3) on a deterministic synthetic set of 320 examples
//! (10 global batches of 32): about a second for all of them in a debug build. The MNIST test
//! trains on the first 10,000 training images: about a minute in a debug build on 2 cores.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use common::{conf, momentum, on_each_worker, synthetic, tiny_net, CLASSES, FEATURES};
use ember_engine::{Context, Rdd, StorageLevel};
use ember_ml::data::{mnist, one_hot, MiniBatch, Split};
use ember_ml::distributed::checkpoint::{self, Progress};
use ember_ml::distributed::data::decode_minibatch;
use ember_ml::distributed::stats::read_json_lines;
use ember_ml::distributed::{
    checksum, export_minibatches, sharded_minibatches, AveragingMode, DataParallel,
    DistributedNetwork, EpochReport, ParameterAveraging, TrainingMaster,
};
use ember_ml::nn::{Activation, NetworkConfig};
use ember_ml::optim::Optimizer;
use ember_ml::train::evaluate;
use ember_ml::{MlError, Result};
use ndarray::Array2;

const MNIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist");

/// Global batch of the synthetic runs (all workers together).
const B: usize = 32;
/// Examples of the synthetic set: 10 global batches, so one epoch is 10 data-parallel steps.
const ROWS: usize = 10 * B;
const SEED: u64 = 11;

/// Runs `driver` on `workers` local workers and returns worker 0's result; an engine failure is
/// an [`MlError::Engine`].
fn try_on_workers<R, F>(workers: usize, driver: F) -> Result<R>
where
    R: Send + 'static,
    F: Fn(&Context) -> Result<R> + Send + Sync + 'static,
{
    ember_engine::run(conf(workers), driver)?
}

fn on_workers<R, F>(workers: usize, driver: F) -> R
where
    R: Send + 'static,
    F: Fn(&Context) -> Result<R> + Send + Sync + 'static,
{
    try_on_workers(workers, driver).expect("distributed run")
}

/// Returns on every worker once every worker has called it: a barrier stage runs one task per
/// worker, all at once, and a worker's task runs only while its driver is in the action. (An
/// action on its own is no such fence: a worker may be done with it, and go on, before a peer
/// has started it.)
fn all_workers_here(ctx: &Context) -> Result<()> {
    let n = ctx.num_workers();
    ctx.parallelize((0..n).collect::<Vec<usize>>(), n)?
        .barrier()
        .map_partitions(|task, it| {
            task.barrier()?;
            Ok(it)
        })
        .count()?;
    Ok(())
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "parameter counts differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The training masters under test, chosen by a `Copy` value so a driver closure can build one.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Dp,
    /// Parameter averaging every `k` steps, resident (one barrier stage per epoch).
    Pa(usize),
    /// Parameter averaging every `k` steps, one job per round (DL4J's way).
    PaJobs(usize),
}

/// The master of `mode` for minibatches of `global_batch` examples over `workers` workers.
fn master(mode: Mode, global_batch: usize, workers: usize) -> Box<dyn TrainingMaster> {
    match mode {
        Mode::Dp => Box::new(DataParallel::default()),
        Mode::Pa(k) | Mode::PaJobs(k) => {
            let mut pa = ParameterAveraging::new(global_batch / workers);
            pa.averaging_frequency = k;
            if let Mode::PaJobs(_) = mode {
                pa.mode = AveragingMode::JobPerRound;
            }
            Box::new(pa)
        }
    }
}

/// What one worker saw of a run.
struct WorkerRun {
    reports: Vec<EpochReport>,
    /// Checksum of this worker's own replica after each epoch.
    own_checksums: Vec<u64>,
    params: Vec<f32>,
    opt_state: Vec<f32>,
}

/// Trains `epochs` epochs of the synthetic set (the same sharded batches every epoch) on
/// `workers` workers; every worker's view.
fn train_synthetic(mode: Mode, workers: usize, epochs: usize) -> Vec<WorkerRun> {
    let data = synthetic(ROWS);
    on_each_worker(workers, move |ctx| {
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?.cache();
        let mut net = DistributedNetwork::new(
            ctx,
            tiny_net(SEED),
            momentum(0.1),
            master(mode, B, ctx.num_workers()),
        )?;
        let mut run = WorkerRun {
            reports: Vec::new(),
            own_checksums: Vec::new(),
            params: Vec::new(),
            opt_state: Vec::new(),
        };
        for _ in 0..epochs {
            run.reports.push(net.fit(&batches)?);
            run.own_checksums.push(checksum(net.network().params()));
        }
        run.params = net.network().params().to_vec();
        run.opt_state = net.optimizer().state().to_vec();
        Ok(run)
    })
}

/// One network trained without the engine: `Network::fit_batch` on consecutive batches of
/// `batch` examples, in order.
fn single_worker(data: &MiniBatch, batch: usize, epochs: usize) -> Vec<f32> {
    let mut net = tiny_net(SEED);
    let mut opt = Optimizer::new(momentum(0.1), net.num_params()).unwrap();
    for _ in 0..epochs {
        for b in data.batches(batch).unwrap() {
            net.fit_batch(
                b.features().view().into_dyn(),
                b.labels().view().into_dyn(),
                &mut opt,
            )
            .unwrap();
        }
    }
    net.params().to_vec()
}

/// Paths of exported minibatches as one partition per worker (partition `w` holds the files of
/// the batch RDD's partition `w`, in order, preferably read on worker `w`).
fn paths_rdd(ctx: &Context, urls: &[String]) -> Result<Rdd<String>> {
    let workers = ctx.num_workers();
    let parts = (0..workers)
        .map(|w| {
            let mine = format!("part-{w:05}-");
            let files: Vec<String> = urls.iter().filter(|u| u.contains(&mine)).cloned().collect();
            (files, vec![w])
        })
        .collect();
    Ok(ctx.make_rdd(parts)?)
}

fn temp_url(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).to_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. Dense data parallel equals one worker.

/// Dense DP on 2 and 4 workers over `sharded_minibatches(global batch 32)` trains exactly what
/// one network trains on batches of 32 in the same order (10 steps, SGD momentum): the
/// example-weighted gradient all-reduce gives the full batch's mean gradient, so the parameters
/// agree to rounding (1e-5 max abs difference), while training moved them far more than that.
#[test]
fn data_parallel_on_2_and_4_workers_equals_one_worker_with_the_global_batch() {
    let data = synthetic(ROWS);
    let reference = single_worker(&data, B, 1);
    let init = tiny_net(SEED).params().to_vec();
    let moved = max_abs_diff(&reference, &init);
    assert!(
        moved > 1e-2,
        "10 steps moved the parameters by only {moved}"
    );
    for workers in [2, 4] {
        let runs = train_synthetic(Mode::Dp, workers, 1);
        let report = &runs[0].reports[0];
        assert_eq!(report.steps, 10, "{workers} workers");
        assert_eq!(report.syncs, 10, "{workers} workers");
        assert_eq!(report.examples, ROWS as u64, "{workers} workers");
        for (w, run) in runs.iter().enumerate() {
            let diff = max_abs_diff(&run.params, &reference);
            eprintln!("{workers} workers, worker {w}: max abs difference {diff:e} (moved {moved})");
            assert!(
                diff <= 1e-5,
                "{workers} workers, worker {w}: max abs difference {diff} from one worker"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Bit-identical replicas and reproducible runs.

fn assert_replicas_identical(mode: Mode, workers: usize) -> Vec<f32> {
    let runs = train_synthetic(mode, workers, 2);
    assert_eq!(runs.len(), workers);
    for epoch in 0..2 {
        let reported = &runs[0].reports[epoch].replica_checksums;
        assert_eq!(reported.len(), workers, "{mode:?} epoch {epoch}");
        for (w, run) in runs.iter().enumerate() {
            assert_eq!(
                &run.reports[epoch].replica_checksums, reported,
                "{mode:?} epoch {epoch}: worker {w} reports other checksums"
            );
            assert!(
                reported.iter().all(|&c| c == run.own_checksums[epoch]),
                "{mode:?} epoch {epoch}: replica checksums {reported:?}, worker {w}'s own \
                 parameters {:#x}",
                run.own_checksums[epoch]
            );
        }
    }
    // The checksum sees training: the second epoch changed the parameters.
    assert_ne!(
        runs[0].own_checksums[0], runs[0].own_checksums[1],
        "{mode:?}"
    );
    for run in &runs[1..] {
        assert_eq!(bits(&run.params), bits(&runs[0].params), "{mode:?}");
        assert_eq!(bits(&run.opt_state), bits(&runs[0].opt_state), "{mode:?}");
    }
    runs[0].params.clone()
}

/// After every epoch every replica is bit-identical (the reported checksums agree with each
/// other and with each worker's own parameters, read on that worker), for dense DP and resident
/// parameter averaging; and a second run with the same seeds gives the same bits.
#[test]
fn replicas_are_bit_identical_after_every_epoch_and_runs_reproduce() {
    for mode in [Mode::Dp, Mode::Pa(3)] {
        let first = assert_replicas_identical(mode, 2);
        let second = assert_replicas_identical(mode, 2);
        assert_eq!(bits(&first), bits(&second), "{mode:?}: two runs differ");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Parameter averaging: resident against one job per round.

/// Resident parameter averaging (all_reduce in one barrier stage) and DL4J's one job per round
/// (broadcast, train k batches, tree_aggregate) give bit-identical parameters and optimizer
/// state, on 2 and 4 workers, averaging every 3 steps over 10 batches per worker (so the last
/// round of each epoch has 1 batch). Both start every round from the same replica, train the
/// same batches with the same code, sum the replicas in rank order (the all-reduce sums in rank
/// order; `tree_aggregate` over at most 4 partitions at depth 2 folds them in partition order)
/// and scale by 1/workers, a power of two here, so rounding is the same: bits, not just 1e-6.
/// Their reports agree too: steps (10 an epoch, not 4 rounds of 3), syncs, examples and every
/// step's loss.
#[test]
fn parameter_averaging_resident_and_job_per_round_agree_bit_for_bit() {
    for workers in [2, 4] {
        let resident = train_synthetic(Mode::Pa(3), workers, 2);
        let jobs = train_synthetic(Mode::PaJobs(3), workers, 2);
        let (r, j) = (&resident[0], &jobs[0]);
        assert_eq!(
            bits(&r.params),
            bits(&j.params),
            "{workers} workers: max abs difference {}",
            max_abs_diff(&r.params, &j.params)
        );
        assert_eq!(bits(&r.opt_state), bits(&j.opt_state), "{workers} workers");
        for (e, (re, je)) in r.reports.iter().zip(&j.reports).enumerate() {
            let what = format!("{workers} workers, epoch {e}");
            assert_eq!(re.syncs, 4, "{what}");
            assert_eq!((re.syncs, re.examples), (je.syncs, je.examples), "{what}");
            assert_eq!(re.steps, je.steps, "{what}: steps");
            // Which worker ran a round's partition is the scheduler's choice in the job mode;
            // the steps, their examples and losses are the data's.
            let key = |rep: &EpochReport| -> Vec<(u64, usize, u32)> {
                let mut k: Vec<_> = rep
                    .records
                    .iter()
                    .map(|s| (s.step, s.examples, s.loss.to_bits()))
                    .collect();
                k.sort_unstable();
                k
            };
            assert_eq!(key(re), key(je), "{what}: step records");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Exported minibatch files.

/// `fit_paths` over `export_minibatches` (files in a temporary directory) trains exactly what
/// `fit` trains on the same batches, with 1 and 3 files prefetched.
#[test]
fn fit_paths_over_exported_minibatches_equals_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = temp_url(&tmp, "export");
    let data = synthetic(ROWS);
    let (from_batches, from_files, urls) = on_workers(2, move |ctx| {
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?.cache();
        let urls = export_minibatches(&batches, &dir)?;
        let paths = paths_rdd(ctx, &urls)?;
        let mut net =
            DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), DataParallel::default())?;
        net.fit(&batches)?;
        let from_batches = net.network().params().to_vec();
        let mut from_files = Vec::new();
        for prefetch in [1, 3] {
            let mut net = DistributedNetwork::new(
                ctx,
                tiny_net(SEED),
                momentum(0.1),
                DataParallel::default(),
            )?
            .with_prefetch(prefetch);
            let report = net.fit_paths(&paths)?;
            assert_eq!(report.examples, ROWS as u64);
            from_files.push((prefetch, net.network().params().to_vec()));
        }
        Ok((from_batches, from_files, urls))
    });
    assert_eq!(urls.len(), 20, "10 batches per worker: {urls:?}");
    for url in &urls {
        assert!(std::path::Path::new(url).is_file(), "{url} not written");
    }
    for (prefetch, params) in from_files {
        assert_eq!(
            bits(&params),
            bits(&from_batches),
            "prefetch {prefetch}: max abs difference {}",
            max_abs_diff(&params, &from_batches)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. MNIST, short enough for CI.

/// The MNIST run: MLP 784-256-10 trained on the first 10,000 training images for 2 epochs
/// (batch 128 in all, lr 0.05, momentum 0.9) on `local[2]`, then evaluated on the 10,000 test
/// images on worker 0. Returns the test accuracy.
fn mnist_accuracy(mode: Mode) -> f64 {
    static DATA: OnceLock<(MiniBatch, MiniBatch)> = OnceLock::new();
    let (train, test) = DATA
        .get_or_init(|| {
            let train = mnist(MNIST, Split::Train).expect("data/mnist ships with the repository");
            let test = mnist(MNIST, Split::Test).expect("data/mnist");
            (train.slice(0, 10_000), test)
        })
        .clone();
    assert_eq!((train.len(), test.len()), (10_000, 10_000));
    on_workers(2, move |ctx| {
        let workers = ctx.num_workers();
        let net = NetworkConfig::builder(&[784])
            .dense(256, Activation::Relu)
            .dense(10, Activation::Identity)
            .seed(42)
            .build()?;
        let mut dist =
            DistributedNetwork::new(ctx, net, momentum(0.05), master(mode, 128, workers))?;
        let mut train = train.clone();
        for epoch in 0..2 {
            train.shuffle(7 + epoch);
            let batches = sharded_minibatches(ctx, &train, 128, workers)?;
            let report = dist.fit(&batches)?;
            assert_eq!(report.examples, 10_000);
            assert!(report.replica_checksums.windows(2).all(|w| w[0] == w[1]));
        }
        if ctx.worker_index() != 0 {
            return Ok(0.0);
        }
        let accuracy = evaluate(&mut dist.network_mut(), &test, 1000)?.accuracy();
        eprintln!("MNIST {mode:?} on 2 workers: test accuracy {accuracy:.4}");
        Ok(accuracy)
    })
}

/// MNIST on 2 workers, dense DP and resident parameter averaging (every 5 steps, 64 examples
/// per worker). Measured test accuracy (debug build, the same on repeated runs: training is
/// deterministic): 0.9275 for DP and 0.9279 for averaging. The bar is the lower of the two less
/// 2 percentage points, 0.907: room for another machine's GEMM rounding or a harmless change of
/// initialization, while a network that learned nothing scores about 0.10.
#[test]
fn mnist_mlp_on_two_workers_reaches_the_measured_accuracy() {
    let dp = mnist_accuracy(Mode::Dp);
    assert!(dp >= 0.907, "dense DP: test accuracy {dp}");
    let pa = mnist_accuracy(Mode::Pa(5));
    assert!(pa >= 0.907, "parameter averaging: test accuracy {pa}");
}

// ---------------------------------------------------------------------------------------------
// 6. Bad input: typed errors that name the problem.

/// A global batch of 0 is a configuration error naming the batch size.
#[test]
fn sharded_minibatches_with_batch_0_is_a_config_error() {
    let data = synthetic(ROWS);
    let err = try_on_workers(1, move |ctx| {
        sharded_minibatches(ctx, &data, 0, 1).map(|_| ())
    })
    .unwrap_err();
    assert!(matches!(err, MlError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("batch size"), "{err}");
}

/// `ParameterAveraging` with a per-worker batch of 0 or an averaging frequency of 0 fails `fit`
/// with a configuration error naming the field.
#[test]
fn parameter_averaging_with_zero_batch_or_frequency_is_a_config_error() {
    for (field, batch, every) in [
        ("batch_size_per_worker", 0, 5),
        ("averaging_frequency", 16, 0),
    ] {
        let data = synthetic(ROWS);
        let err = try_on_workers(2, move |ctx| {
            let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?;
            let mut pa = ParameterAveraging::new(batch);
            pa.averaging_frequency = every;
            let mut net = DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), pa)?;
            net.fit(&batches).map(|_| ())
        })
        .unwrap_err();
        assert!(matches!(err, MlError::Config(_)), "{field}: {err:?}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

/// Minibatches of 7 features for a network on 20 fail the training stage with an error that
/// names both shapes.
#[test]
fn minibatches_of_the_wrong_shape_name_both_shapes() {
    let data = MiniBatch::new(
        Array2::from_elem((64, 7), 0.5),
        one_hot(&[0; 64], CLASSES).unwrap(),
    )
    .unwrap();
    for mode in [Mode::Dp, Mode::Pa(2)] {
        let data = data.clone();
        let err = try_on_workers(2, move |ctx| {
            let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?;
            let mut net = DistributedNetwork::new(
                ctx,
                tiny_net(SEED),
                momentum(0.1),
                master(mode, B, ctx.num_workers()),
            )?;
            net.fit(&batches).map(|_| ())
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, MlError::Engine(_)), "{mode:?}: {err:?}");
        assert!(
            text.contains("[20]") && text.contains("[7]"),
            "{mode:?}: {text}"
        );
    }
}

/// Exported files deleted before `fit_paths`: the error names the missing file's URL.
#[test]
fn fit_paths_over_deleted_files_names_the_missing_url() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = temp_url(&tmp, "export");
    let data = synthetic(ROWS);
    let (err, missing) = on_workers(2, move |ctx| {
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?;
        let urls = export_minibatches(&batches, &dir)?;
        let paths = paths_rdd(ctx, &urls)?;
        let missing = urls
            .iter()
            .find(|u| u.ends_with("part-00001-000004.mb"))
            .expect("worker 1's fifth file")
            .clone();
        // Every worker's driver runs this; worker 0 deletes, after the export job finished on
        // both.
        if ctx.worker_index() == 0 {
            std::fs::remove_file(&missing).unwrap();
        }
        // Both workers see the deletion before training starts.
        all_workers_here(ctx)?;
        let mut net =
            DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), DataParallel::default())?;
        let err = net.fit_paths(&paths).map(|_| ()).unwrap_err();
        Ok((err.to_string(), missing))
    });
    assert!(
        err.contains(&missing),
        "error does not name {missing}: {err}"
    );
}

/// A checkpoint directory holding a checkpoint of another network is refused with
/// `MlError::Checkpoint`, naming the directory and both networks' sizes.
#[test]
fn a_checkpoint_of_another_network_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = temp_url(&tmp, "ckpt");
    let data = synthetic(ROWS);
    let err = on_workers(1, move |ctx| {
        let batches = sharded_minibatches(ctx, &data, B, 1)?;
        let mut other = DistributedNetwork::new(
            ctx,
            NetworkConfig::builder(&[FEATURES])
                .dense(CLASSES, Activation::Identity)
                .seed(SEED)
                .build()?,
            momentum(0.1),
            DataParallel::default(),
        )?
        .with_checkpoints(&dir, 5)?;
        other.fit(&batches)?;
        let refused =
            DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), DataParallel::default())?
                .with_checkpoints(&dir, 5);
        Ok(refused.err().expect("another network's checkpoint"))
    });
    let text = err.to_string();
    assert!(matches!(err, MlError::Checkpoint { .. }), "{err:?}");
    assert!(
        text.contains("ckpt") && text.contains("another network"),
        "{text}"
    );
    // 20*3+3 parameters in the file, 20*16+16 + 16*3+3 in the network being trained.
    assert!(text.contains("63") && text.contains("387"), "{text}");
}

/// A corrupt exported file: `decode_minibatch` refuses a damaged body (checksum) and a file
/// that is not an exported minibatch (magic), naming the URL; and `fit_paths` over a file with
/// one flipped byte fails naming that file.
#[test]
fn corrupt_exported_files_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = temp_url(&tmp, "export");
    let data = synthetic(ROWS);
    let (err, damaged) = on_workers(2, move |ctx| {
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?;
        let urls = export_minibatches(&batches, &dir)?;
        let paths = paths_rdd(ctx, &urls)?;
        let damaged = urls[2].clone();
        if ctx.worker_index() == 0 {
            let mut bytes = std::fs::read(&damaged).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x40;
            std::fs::write(&damaged, bytes).unwrap();
        }
        all_workers_here(ctx)?;
        let mut net =
            DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), DataParallel::default())?;
        let err = net.fit_paths(&paths).map(|_| ()).unwrap_err();
        Ok((err.to_string(), damaged))
    });
    assert!(
        err.contains(&damaged),
        "error does not name {damaged}: {err}"
    );
    assert!(err.contains("checksum mismatch"), "{err}");

    let bytes = std::fs::read(&damaged).unwrap();
    let e = decode_minibatch(&bytes, &damaged).unwrap_err();
    assert!(matches!(e, MlError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains(&damaged) && e.to_string().contains("checksum"));
    let e = decode_minibatch(b"PAR1 not a minibatch", "memory://x.mb").unwrap_err();
    assert!(matches!(e, MlError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("memory://x.mb") && e.to_string().contains("magic"));
}

// ---------------------------------------------------------------------------------------------
// 7. Checkpoints and resume.

/// One epoch with checkpoints every 5 steps; a fresh network with checkpoints in the same
/// directory, built on every worker as soon as `fit` returns there, resumes after that epoch
/// (`epoch()` is 1) with the trained parameters and optimizer state, and its second epoch
/// equals the second epoch of a run that never stopped. (Before the end-of-epoch checkpoint
/// was saved inside a stage, `fit` returned on worker 1 before worker 0 had saved it: worker 1
/// then read the step-10 mid-epoch checkpoint, resumed in epoch 0 with nothing left to train,
/// and worker 0 trained epoch 1 on its half of each batch alone, silently.)
#[test]
fn a_fresh_network_resumes_after_the_last_finished_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = temp_url(&tmp, "ckpt");
    let data = synthetic(ROWS);
    let clean = train_synthetic(Mode::Dp, 2, 2);
    let workers = on_each_worker(2, move |ctx| {
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?.cache();
        let mut net =
            DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), DataParallel::default())?
                .with_checkpoints(&dir, 5)?;
        let started_at = net.epoch();
        net.fit(&batches)?;
        let trained = (
            net.network().params().to_vec(),
            net.optimizer().state().to_vec(),
            net.optimizer().step_count(),
        );
        drop(net);
        let mut fresh =
            DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), DataParallel::default())?
                .with_checkpoints(&dir, 5)?;
        let resumed = (
            fresh.epoch(),
            fresh.network().params().to_vec(),
            fresh.optimizer().state().to_vec(),
            fresh.optimizer().step_count(),
        );
        let report = fresh.fit(&batches)?;
        let first = report.records.first().map(|r| (r.epoch, r.step));
        let after = fresh.network().params().to_vec();
        Ok((started_at, trained, resumed, first, after))
    });
    for (w, (started_at, trained, resumed, first, after)) in workers.into_iter().enumerate() {
        assert_eq!(
            started_at, 0,
            "worker {w}: an empty directory starts from scratch"
        );
        assert_eq!(resumed.0, 1, "worker {w}: epoch after resuming");
        assert_eq!(bits(&resumed.1), bits(&trained.0), "worker {w}: parameters");
        assert_eq!(
            bits(&resumed.2),
            bits(&trained.1),
            "worker {w}: optimizer state"
        );
        assert_eq!(
            (resumed.3, trained.2),
            (10, 10),
            "worker {w}: optimizer steps"
        );
        assert_eq!(first, Some((1, 10)), "worker {w}: first record of epoch 1");
        assert_eq!(
            bits(&after),
            bits(&clean[0].params),
            "worker {w}: second epoch after resuming, max abs difference {}",
            max_abs_diff(&after, &clean[0].params)
        );
    }
}

/// A checkpoint written mid-epoch, made the way a crash makes one: training over exported files
/// with checkpoints every 3 steps, one of worker 1's files (its 8th) missing, fails at step 7
/// after the checkpoint of step 6 (`latest.json`: epoch 0, 6 syncs, not done). With the file
/// back, a fresh network resumes there (epoch 0, skipping 6 batches per worker), trains the
/// remaining 4 steps, and ends with the bits of a run that never failed.
#[test]
fn a_mid_epoch_checkpoint_resumes_mid_epoch_and_matches_a_clean_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = temp_url(&tmp, "ckpt");
    let export = temp_url(&tmp, "export");
    let clean = train_synthetic(Mode::Dp, 2, 1);
    let data = synthetic(ROWS);
    let workers = on_each_worker(2, move |ctx| {
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?;
        let urls = export_minibatches(&batches, &export)?;
        let paths = paths_rdd(ctx, &urls)?;
        let lost = urls
            .iter()
            .find(|u| u.ends_with("part-00001-000007.mb"))
            .unwrap()
            .clone();
        let saved = std::fs::read(&lost).unwrap();
        all_workers_here(ctx)?;
        if ctx.worker_index() == 0 {
            std::fs::remove_file(&lost).unwrap();
        }
        all_workers_here(ctx)?;
        let mut net =
            DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), DataParallel::default())?
                .with_checkpoints(&dir, 3)?;
        let failure = net.fit_paths(&paths).map(|_| ()).unwrap_err().to_string();
        drop(net);
        let progress = checkpoint::load(&dir, &ctx.conf().storage_config())?
            .map(|(_, p)| p)
            .expect("a checkpoint before the failure");
        if ctx.worker_index() == 0 {
            std::fs::write(&lost, &saved).unwrap();
        }
        all_workers_here(ctx)?;
        let mut net =
            DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), DataParallel::default())?
                .with_checkpoints(&dir, 3)?;
        let resumed_epoch = net.epoch();
        let report = net.fit_paths(&paths)?;
        let params = net.network().params().to_vec();
        Ok((failure, progress, resumed_epoch, report, params))
    });
    for (w, (failure, progress, resumed_epoch, report, params)) in workers.into_iter().enumerate() {
        assert!(
            failure.contains("part-00001-000007.mb"),
            "worker {w}: {failure}"
        );
        assert_eq!(
            progress,
            Progress {
                epoch: 0,
                syncs_in_epoch: 6,
                global_step: 6,
                epoch_first_step: 0,
                epoch_done: false,
            },
            "worker {w}"
        );
        assert_eq!(resumed_epoch, 0, "worker {w}: resumes inside epoch 0");
        assert_eq!(report.steps, 10, "the epoch's steps, skipped ones included");
        assert_eq!(report.examples, 4 * B as u64, "the last 4 global batches");
        let steps: BTreeSet<u64> = report.records.iter().map(|r| r.step).collect();
        assert_eq!(steps, (6..10).collect::<BTreeSet<u64>>());
        assert_eq!(
            bits(&params),
            bits(&clean[0].params),
            "worker {w}: max abs difference {}",
            max_abs_diff(&params, &clean[0].params)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Training statistics.

/// Dense DP on 2 workers records every worker's every step (examples summing to the data set),
/// with communication in every step (bytes both ways; time in collectives); `write_stats` writes
/// JSON lines that read back as the same records and an HTML report whose timeline has one lane
/// per worker.
#[test]
fn training_statistics_cover_every_worker_and_step_and_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let json = temp_url(&tmp, "stats.jsonl");
    let html = temp_url(&tmp, "report.html");
    let data = synthetic(ROWS);
    let (json2, html2) = (json.clone(), html.clone());
    let (records, read_back, workers_param) = on_workers(2, move |ctx| {
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?;
        let mut net =
            DistributedNetwork::new(ctx, tiny_net(SEED), momentum(0.1), DataParallel::default())?;
        net.fit(&batches)?;
        net.write_stats("distributed test", Some(&json2), Some(&html2))?;
        // Written by worker 0 only; read after every worker is past it.
        all_workers_here(ctx)?;
        let read_back = read_json_lines(&json2, &ctx.conf().storage_config())?;
        Ok((net.stats().to_vec(), read_back, net.run_info("x").workers))
    });
    assert_eq!(workers_param, 2);
    let keys: BTreeSet<(usize, u64)> = records.iter().map(|r| (r.worker, r.step)).collect();
    let want: BTreeSet<(usize, u64)> = (0..2).flat_map(|w| (0..10).map(move |s| (w, s))).collect();
    assert_eq!(keys, want);
    assert_eq!(records.len(), 20);
    assert_eq!(records.iter().map(|r| r.examples).sum::<usize>(), ROWS);
    assert!(records.iter().all(|r| r.examples == B / 2 && r.epoch == 0));
    assert!(records.iter().all(|r| r.loss.is_finite() && r.loss > 0.0));
    assert!(
        records
            .iter()
            .all(|r| r.bytes_sent > 0 && r.bytes_received > 0),
        "every step all-reduces the gradients"
    );
    let comm: u64 = records.iter().map(|r| r.comm_us + r.peer_wait_us).sum();
    assert!(comm > 0, "no time in collectives over 20 steps");
    assert_eq!(read_back, records, "JSON lines read back");

    let page = std::fs::read_to_string(&html).unwrap();
    let start = page
        .find("aria-label=\"timeline, one lane per worker\"")
        .expect("a timeline");
    let end = start + page[start..].find("</svg>").expect("timeline's end");
    let timeline = &page[start..end];
    assert_eq!(timeline.matches("class=\"lane\"").count(), 2, "lanes");
    for w in 0..2 {
        assert!(
            timeline.contains(&format!("data-worker=\"{w}\"")),
            "worker {w}'s lane"
        );
    }
    assert!(page.contains("distributed test"), "the title");
}

// ---------------------------------------------------------------------------------------------
// 9. Block manager accounting.

/// A cached `Rdd<MiniBatch>` at MEMORY_ONLY is charged at least its arrays' bytes (features and
/// labels, 4 bytes a value), not just the size of the struct.
#[test]
fn cached_minibatches_are_charged_their_arrays() {
    let data = synthetic(ROWS);
    let (info, count) = on_workers(2, move |ctx| {
        let batches = sharded_minibatches(ctx, &data, B, ctx.num_workers())?
            .persist(StorageLevel::MemoryOnly);
        let count = batches.count()?;
        // Every worker's partition is stored before anyone reads the report.
        all_workers_here(ctx)?;
        let info = ctx.storage_report().rdd(batches.id()).cloned();
        // A worker's blocks leave the (per process) report when its driver drops the RDD: no
        // worker goes on before worker 0 has read it.
        all_workers_here(ctx)?;
        Ok((info, count))
    });
    assert_eq!(count, 20, "10 batches per worker");
    let info = info.expect("the persisted RDD is in the storage report");
    assert_eq!(info.level, StorageLevel::MemoryOnly);
    assert_eq!(info.cached_partitions, 2);
    let arrays = (ROWS * (FEATURES + CLASSES) * 4) as u64;
    assert!(
        info.host_bytes >= arrays,
        "charged {} bytes for {arrays} bytes of arrays",
        info.host_bytes
    );
}
