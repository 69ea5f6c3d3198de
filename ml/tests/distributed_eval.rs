//! Distributed evaluation (`DistributedNetwork::{evaluate, evaluate_paths}`) against
//! single-process evaluation of the same data: on 1, 2 and 4 local workers and on 2 processes,
//! over minibatch RDDs and exported files, with several evaluations in one pass and other
//! copy counts and forward-pass sizes; the memory budget of network copies; evaluations as
//! JSON at storage URLs; a model trained elsewhere loaded from S3 (a real `s3s-fs` server on
//! 127.0.0.1), and a truncated one.
//!
//! Small networks on synthetic data keep every test within seconds in a debug build.

mod eval_common;
#[path = "../../storage/tests/common/mod.rs"]
mod s3;

use eval_common::*;

use ember_engine::Conf;
use ember_ml::data::MiniBatch;
use ember_ml::distributed::{
    export_minibatches, sharded_minibatches, DataParallel, DistributedNetwork, EvalOptions,
    InferenceError,
};
use ember_ml::eval::{
    load_json_url, save_json_url, Classification, Evaluation, Evaluations, Regression, Roc,
    RocMultiClass,
};
use ember_ml::nn::{Activation, Network, NetworkConfig};
use ember_ml::MlError;
use ndarray::Ix2;

/// The evaluations of one pass: classification (top-2), one-vs-all ROC and regression on the
/// probabilities.
fn multi_class_set() -> Evaluations {
    Evaluations::new()
        .with(Classification::new(CLASSES).unwrap().with_top_n(2).unwrap())
        .with(RocMultiClass::new(CLASSES).unwrap())
        .with(Regression::new(CLASSES).unwrap())
}

/// Single-process evaluation: the whole set in one forward pass, one `eval`.
fn single_process(mut net: Network, data: &MiniBatch, mut set: Evaluations) -> Evaluations {
    let out = net.predict(data.features().view().into_dyn()).unwrap();
    let out = out.into_dimensionality::<Ix2>().unwrap();
    set.eval(data.labels().view(), out.view(), None).unwrap();
    set
}

/// Counts equal exactly (confusion matrix, top-N, every ROC score count), AUCs to 1e-12,
/// regression metrics to 1e-9 relative (Chan's merge against one pass).
fn assert_same(got: &Evaluations, want: &Evaluations) {
    assert_eq!(got.classification(), want.classification());
    assert_eq!(got.roc_multi_class(), want.roc_multi_class());
    assert_eq!(got.roc(), want.roc());
    if let Some(r) = want.roc_multi_class() {
        let g = got.roc_multi_class().unwrap();
        for c in 0..r.num_classes() {
            assert!((g.auc(c) - r.auc(c)).abs() < 1e-12);
        }
    }
    if let Some(r) = want.regression() {
        let g = got.regression().unwrap();
        for c in 0..r.num_columns() {
            assert_eq!(g.count(c), r.count(c));
            for (a, b) in [
                (g.mse(c), r.mse(c)),
                (g.r2(c), r.r2(c)),
                (g.mae(c), r.mae(c)),
            ] {
                assert!((a - b).abs() <= 1e-9 * b.abs().max(1e-12), "{a} vs {b}");
            }
        }
    }
}

/// Evaluates `data` as 8 uneven minibatches per worker count over `workers` local workers.
fn distributed_eval(workers: usize, opts: EvalOptions, set: Evaluations) -> Evaluations {
    let data = synthetic(ROWS, CLASSES);
    on_workers(conf(workers), move |ctx| {
        let batches = sharded_minibatches(ctx, &data, 75, workers)?;
        let dist = distributed(ctx, net(CLASSES, 5))?;
        dist.evaluate(&batches, set.clone(), &opts)
    })
    .unwrap()
}

#[test]
fn evaluation_on_1_2_and_4_workers_equals_single_process() {
    let want = single_process(
        net(CLASSES, 5),
        &synthetic(ROWS, CLASSES),
        multi_class_set(),
    );
    assert_eq!(want.classification().unwrap().count(), ROWS as u64);
    for workers in [1, 2, 4] {
        let got = distributed_eval(workers, EvalOptions::default(), multi_class_set());
        assert_same(&got, &want);
    }
    // Fewer copies than workers (tasks share them), more (a task splits its minibatches),
    // and another forward-pass size: the same counts.
    for opts in [
        EvalOptions::default().num_workers(1),
        EvalOptions::default().num_workers(5).batch_size(7),
        EvalOptions::default().batch_size(1),
    ] {
        assert_same(&distributed_eval(2, opts, multi_class_set()), &want);
    }
}

#[test]
fn binary_roc_and_classification_in_one_pass_equal_single_process() {
    let set = || {
        Evaluations::new()
            .with(Classification::new(2).unwrap())
            .with(Roc::new())
    };
    let data = synthetic(ROWS, 2);
    let want = single_process(net(2, 9), &data, set());
    let roc = want.roc().unwrap();
    assert_eq!(roc.positives() + roc.negatives(), ROWS as u64);
    for workers in [1, 2, 4] {
        let d = data.clone();
        let got = on_workers(conf(workers), move |ctx| {
            let batches = sharded_minibatches(ctx, &d, 64, workers)?;
            distributed(ctx, net(2, 9))?.evaluate(&batches, set(), &EvalOptions::default())
        })
        .unwrap();
        assert_same(&got, &want);
        assert!((got.roc().unwrap().auc() - roc.auc()).abs() < 1e-12);
    }
}

#[test]
fn evaluation_over_exported_minibatch_files_equals_evaluation_over_the_rdd() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("batches").display());
    let data = synthetic(ROWS, CLASSES);
    let want = single_process(net(CLASSES, 5), &data, multi_class_set());
    let got = on_workers(conf(2), move |ctx| {
        let batches = sharded_minibatches(ctx, &data, 100, 2)?;
        let urls = export_minibatches(&batches, &url)?;
        let paths = ctx.parallelize(urls, 3)?;
        let dist = distributed(ctx, net(CLASSES, 5))?;
        dist.evaluate_paths(&paths, multi_class_set(), &EvalOptions::default())
    })
    .unwrap();
    assert_same(&got, &want);
}

#[test]
fn more_copies_than_the_memory_budget_holds_is_an_error_before_the_job() {
    let conf = conf(2).with("ember.memory.storage", "64k").unwrap();
    let err = on_workers(conf, |ctx| {
        let batches = sharded_minibatches(ctx, &synthetic(64, CLASSES), 32, 2)?;
        let big = NetworkConfig::builder(&[FEATURES])
            .dense(512, Activation::Relu)
            .dense(CLASSES, Activation::Softmax)
            .build()?;
        let dist = distributed(ctx, big)?;
        let opts = EvalOptions::default().num_workers(8);
        dist.evaluate(&batches, Classification::new(CLASSES)?, &opts)
    })
    .unwrap_err();
    match &err {
        MlError::Inference(InferenceError::MemoryBudget {
            copies, per_worker, ..
        }) => assert_eq!((*copies, *per_worker), (8, 4)),
        other => panic!("expected a memory budget error, got {other}"),
    }
    assert!(err.to_string().contains("eval_num_workers"), "{err}");
}

#[test]
fn evaluations_round_trip_through_json_at_a_storage_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("eval.json").display());
    let set = single_process(
        net(CLASSES, 5),
        &synthetic(ROWS, CLASSES),
        multi_class_set(),
    );
    let config = ember_storage::StorageConfig::new();
    save_json_url(&url, &config, &set).unwrap();
    let back: Evaluations = load_json_url(&url, &config).unwrap();
    assert_eq!(back, set);
    // Another kind of evaluation in the file: an error naming the URL.
    let err = load_json_url::<Classification>(&url, &config).unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");
    // Still mergeable after loading.
    let mut twice = back.clone();
    twice.merge(&set).unwrap();
    assert_eq!(twice.classification().unwrap().count(), 2 * ROWS as u64);
}

/// Engine configuration for `workers` local workers talking to `server`.
fn s3_conf(server: &s3::S3Server, workers: usize) -> Conf {
    server
        .settings()
        .iter()
        .fold(conf(workers), |c, (k, v)| c.with(k, v).unwrap())
}

#[test]
fn models_and_evaluations_on_s3_load_into_distributed_networks_and_truncation_names_the_url() {
    let server = s3::S3Server::start();
    let bucket = server.bucket("models");
    let config = server.config();
    // Trained (here: built) on one machine, saved to S3.
    let model = format!("{bucket}/mlp.safetensors");
    ember_ml::model_io::save_url(&model, &config, &net(CLASSES, 5), None).unwrap();
    let bytes = ember_storage::Location::resolve(&model, &config)
        .unwrap()
        .read_all()
        .unwrap();
    let truncated = format!("{bucket}/truncated.safetensors");
    ember_storage::Location::resolve(&truncated, &config)
        .unwrap()
        .put(bytes.slice(..bytes.len() / 2))
        .unwrap();

    let want = single_process(
        net(CLASSES, 5),
        &synthetic(ROWS, CLASSES),
        multi_class_set(),
    );
    let (m, t, b) = (model.clone(), truncated.clone(), bucket.clone());
    let (got, reloaded, err) = on_workers(s3_conf(&server, 2), move |ctx| {
        let dist = DistributedNetwork::load_url(ctx, &m, sgd(), DataParallel::default())?;
        let batches = sharded_minibatches(ctx, &synthetic(ROWS, CLASSES), 75, 2)?;
        let got = dist.evaluate(&batches, multi_class_set(), &EvalOptions::default())?;
        let eval_url = format!("{b}/evals/mlp.json");
        let storage = ctx.conf().storage_config();
        if ctx.worker_index() == 0 {
            save_json_url(&eval_url, &storage, &got)?;
        }
        dist.save_url(&format!("{b}/saved.safetensors"))?;
        let reloaded: Evaluations = load_json_url(&eval_url, &storage)?;
        let err = DistributedNetwork::load_url(ctx, &t, sgd(), DataParallel::default())
            .err()
            .map(|e| e.to_string());
        Ok((got, reloaded, err))
    })
    .unwrap();
    assert_same(&got, &want);
    assert_eq!(reloaded, got, "the evaluation read back from S3");
    let err = err.expect("a truncated model file is an error");
    assert!(err.contains(&truncated), "{err}");
    let saved =
        ember_ml::model_io::load_url(&format!("{bucket}/saved.safetensors"), &config).unwrap();
    assert_eq!(saved.network.params(), net(CLASSES, 5).params());
}

/// Set in the environment of the processes `evaluation_on_two_processes_equals_single_process`
/// starts: they run `two_process_member` instead of skipping it.
const MEMBER_ENV: &str = "EMBER_EVAL_TEST_MEMBER";

#[test]
#[ignore = "one process of evaluation_on_two_processes_equals_single_process, started by it"]
fn two_process_member() {
    if std::env::var_os(MEMBER_ENV).is_none() {
        return;
    }
    let conf = Conf::from_env().unwrap();
    let got = on_workers(conf, |ctx| {
        let batches = sharded_minibatches(ctx, &synthetic(ROWS, CLASSES), 75, ctx.num_workers())?;
        let dist = distributed(ctx, net(CLASSES, 5))?;
        let got = dist.evaluate(&batches, multi_class_set(), &EvalOptions::default())?;
        Ok((ctx.worker_index() == 0).then(|| got.to_json().unwrap()))
    })
    .unwrap();
    if let Some(json) = got {
        println!("EVALUATION {json}");
    }
}

#[test]
fn evaluation_on_two_processes_equals_single_process() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(&exe)
                .args(["--exact", "two_process_member", "--ignored", "--nocapture"])
                .env(MEMBER_ENV, "1")
                .env("EMBER_MASTER", "cluster")
                .env("EMBER_CLUSTER_HOSTS", &hosts)
                .env("EMBER_CLUSTER_PROCESS", p.to_string())
                .env("EMBER_CLUSTER_THREADS", "2")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Bounded wait: a hung cluster fails the test instead of hanging CI.
    let deadline = Instant::now() + Duration::from_secs(120);
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        if Instant::now() > deadline {
            for c in &mut children {
                let _ = c.kill();
            }
            panic!("the two processes did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (p, o) in outputs.iter().enumerate() {
        assert!(
            o.status.success(),
            "process {p} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&outputs[0].stdout);
    let json = stdout
        .lines()
        .find_map(|l| l.strip_prefix("EVALUATION "))
        .unwrap_or_else(|| panic!("process 0 printed no evaluation: {stdout}"));
    let got = Evaluations::from_json(json).unwrap();
    let want = single_process(
        net(CLASSES, 5),
        &synthetic(ROWS, CLASSES),
        multi_class_set(),
    );
    assert_same(&got, &want);
}
