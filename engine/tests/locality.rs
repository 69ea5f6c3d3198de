//! Delay scheduling: with every cached block on one worker, a long locality wait keeps every
//! task there (PROCESS_LOCAL) while a zero wait spreads tasks to the idle worker (NODE_LOCAL in
//! one process; ANY across processes, where the block is fetched or recomputed as configured).
//! Answers are identical either way.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use ember_engine::prelude::*;
use ember_engine::{last_job_stats, BlockSource, JobStats, Locality, LocalityWaits};

/// Eight partitions of 1000 numbers, all preferring worker 0.
fn on_worker_zero(ctx: &Context) -> Rdd<u64> {
    let parts = (0..8u64)
        .map(|p| ((p * 1000..(p + 1) * 1000).collect(), vec![0]))
        .collect();
    ctx.make_rdd(parts).unwrap().map(|x| x * 3)
}

/// A job slow enough per task (20 ms) that an idle worker asks for work while tasks remain.
fn slow_sum(rdd: &Rdd<u64>) -> u64 {
    rdd.map_partitions(|it| {
        std::thread::sleep(Duration::from_millis(20));
        Box::new(std::iter::once(it.sum::<u64>()))
    })
    .reduce(|a, b| a + b)
    .unwrap()
    .unwrap_or(0)
}

fn placement(stats: &JobStats) -> Vec<(usize, Locality)> {
    stats
        .result_stage()
        .unwrap()
        .task_metrics
        .iter()
        .map(|t| (t.worker, t.locality))
        .collect()
}

#[test]
fn long_wait_keeps_tasks_with_their_blocks_zero_wait_spreads_them() {
    let conf = Conf::new().with("ember.master", "local[2]").unwrap();
    let out = ember_engine::run(conf, |ctx| {
        ctx.set_locality_waits(LocalityWaits::uniform(Duration::from_secs(30)));
        let rdd = on_worker_zero(ctx).cache();
        assert_eq!(rdd.count().unwrap(), 8000);
        let cached = placement(&last_job_stats().unwrap());
        let long = slow_sum(&rdd);
        let long_stats = last_job_stats().unwrap();
        ctx.set_locality_waits(LocalityWaits::uniform(Duration::ZERO));
        let zero = slow_sum(&rdd);
        let zero_stats = last_job_stats().unwrap();
        (cached, long, long_stats, zero, zero_stats)
    })
    .unwrap();
    let (cached, long, long_stats, zero, zero_stats) = out;
    // The caching job itself ran where the source prefers: every block is on worker 0.
    assert_eq!(cached, vec![(0, Locality::ProcessLocal); 8]);
    assert_eq!(long, zero, "answers do not depend on placement");
    assert_eq!(long, (0..8000u64).map(|x| x * 3).sum::<u64>());

    assert_eq!(placement(&long_stats), vec![(0, Locality::ProcessLocal); 8]);
    let result = long_stats.result_stage().unwrap();
    assert!(result
        .task_metrics
        .iter()
        .all(|t| t.block_source == Some(BlockSource::Local) && t.bytes_read_local > 0));

    let zero_placement = placement(&zero_stats);
    let on_one: Vec<_> = zero_placement.iter().filter(|(w, _)| *w == 1).collect();
    assert!(
        !on_one.is_empty(),
        "wait 0 gives the idle worker tasks: {zero_placement:?}"
    );
    assert!(
        on_one.iter().all(|(_, l)| *l == Locality::NodeLocal),
        "worker 1 reads worker 0's blocks in the same process: {zero_placement:?}"
    );
    let mix = zero_stats.locality_mix();
    assert_eq!(mix.values().sum::<usize>(), 8);
}

/// `ember.locality.wait` misconfigured fails before any job starts, naming the key.
#[test]
fn bad_locality_configuration_is_refused() {
    for (key, value) in [
        ("ember.locality.wait", "-1s"),
        ("ember.locality.wait.node", "soon"),
        ("ember.scheduler.remoteBlock", "teleport"),
    ] {
        let err = Conf::new().with(key, value).unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
    let err = Conf::new()
        .with("ember.locality.wait.rack", "1s")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ember.locality.wait.rack"), "{err}");
}

const CHILD: &str = "EMBER_LOCALITY_TEST_CHILD";

/// One process of the two-process cluster below, which runs it with `--ignored`.
#[test]
#[ignore = "one process of across_processes_a_task_away_from_its_block_fetches_or_recomputes_it"]
fn cluster_child() {
    let hosts = std::env::var(CHILD).expect("spawned by the cluster test");
    let process: usize = std::env::var("EMBER_LOCALITY_TEST_PROCESS")
        .unwrap()
        .parse()
        .unwrap();
    let policy = std::env::var("EMBER_LOCALITY_TEST_POLICY").unwrap();
    let conf = Conf::new()
        .with("ember.master", "cluster")
        .unwrap()
        .with("ember.cluster.hosts", &hosts)
        .unwrap()
        .with("ember.cluster.process", &process.to_string())
        .unwrap()
        .with("ember.cluster.threads", "1")
        .unwrap()
        .with("ember.scheduler.remoteBlock", &policy)
        .unwrap();
    let out = ember_engine::run(conf, |ctx| {
        ctx.set_locality_waits(LocalityWaits::uniform(Duration::from_secs(30)));
        let rdd = on_worker_zero(ctx).cache();
        rdd.count().unwrap();
        ctx.set_locality_waits(LocalityWaits::uniform(Duration::ZERO));
        let sum = slow_sum(&rdd);
        (sum, last_job_stats().unwrap())
    })
    .unwrap();
    if process == 0 {
        let (sum, stats) = out;
        let tasks = &stats.result_stage().unwrap().task_metrics;
        let remote: Vec<serde_json::Value> = tasks
            .iter()
            .filter(|t| t.worker == 1)
            .map(|t| {
                serde_json::json!({
                    "locality": t.locality.name(),
                    "source": t.block_source.map(|s| s.name()),
                    "bytes_remote": t.bytes_read_remote,
                })
            })
            .collect();
        println!(
            "RESULT {}",
            serde_json::json!({ "sum": sum, "remote": remote })
        );
    }
}

/// Runs the two processes as if on two hosts: 127.0.0.1 and 127.0.0.2 are both this machine's
/// loopback, but different host names to the scheduler, so a task in the other process is ANY.
fn run_cluster(policy: &str) -> serde_json::Value {
    let listeners: Vec<_> = ["127.0.0.1:0", "127.0.0.2:0"]
        .iter()
        .map(|a| std::net::TcpListener::bind(a).unwrap())
        .collect();
    let addrs: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    drop(listeners);
    let hosts = addrs.join(",");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(&exe)
                .args(["--exact", "cluster_child", "--ignored", "--nocapture"])
                .env(CHILD, &hosts)
                .env("EMBER_LOCALITY_TEST_PROCESS", p.to_string())
                .env("EMBER_LOCALITY_TEST_POLICY", policy)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&outputs[0].stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result line in {stdout}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn across_processes_a_task_away_from_its_block_fetches_or_recomputes_it() {
    let expected = (0..8000u64).map(|x| x * 3).sum::<u64>();
    let mut sources = BTreeMap::new();
    for policy in ["fetch", "recompute"] {
        let out = run_cluster(policy);
        assert_eq!(out["sum"], expected, "{policy}: {out}");
        let remote = out["remote"].as_array().unwrap();
        assert!(!remote.is_empty(), "{policy}: worker 1 ran tasks: {out}");
        for t in remote {
            assert_eq!(t["locality"], "ANY", "{policy}: {out}");
        }
        let want = if policy == "fetch" {
            "fetched"
        } else {
            "recomputed"
        };
        assert!(
            remote.iter().all(|t| t["source"] == want),
            "{policy}: {out}"
        );
        let remote_bytes: u64 = remote
            .iter()
            .map(|t| t["bytes_remote"].as_u64().unwrap())
            .sum();
        assert_eq!(remote_bytes > 0, policy == "fetch", "{policy}: {out}");
        sources.insert(policy, remote.len());
    }
    assert_eq!(sources.len(), 2);
}

/// The event log records every task with its placement; its summary agrees with the job's
/// own statistics, for a local directory and for an object-store URL.
#[test]
fn event_log_summary_matches_job_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("memory://ember-events-{}", std::process::id());
    for target in [dir.path().display().to_string(), url.clone()] {
        let conf = Conf::new()
            .with("ember.master", "local[2]")
            .unwrap()
            .with("ember.eventLog.dir", &target)
            .unwrap()
            .with("ember.locality.wait", "0")
            .unwrap();
        let stats = ember_engine::run(conf.clone(), |ctx| {
            let rdd = on_worker_zero(ctx).cache();
            rdd.count().unwrap();
            let _ = slow_sum(&rdd);
            last_job_stats().unwrap()
        })
        .unwrap();
        let log = if target == url {
            let listing = ember_storage::Location::resolve(&url, &conf.storage_config())
                .unwrap()
                .list_recursive()
                .unwrap();
            assert_eq!(listing.len(), 1, "one log per application");
            listing[0].url().to_string()
        } else {
            let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(files.len(), 1, "one log per application");
            files[0].as_ref().unwrap().path().display().to_string()
        };
        let lines = ember_engine::scheduler::read_event_log(&log, &conf.storage_config()).unwrap();
        let summary = ember_engine::scheduler::summarize(&lines);
        assert_eq!(summary.workers, 2);
        assert_eq!(summary.jobs.len(), 2, "{summary}");
        assert_eq!(summary.jobs[0].action, "count");
        let last = summary.jobs.last().unwrap();
        assert!(last.error.is_none() && last.duration_ms.is_some());
        let stage = last.stages.last().unwrap();
        let expected = stats.result_stage().unwrap();
        assert_eq!(stage.tasks, expected.task_metrics.len());
        let mix: BTreeMap<String, usize> = expected
            .locality_mix()
            .into_iter()
            .map(|(l, n)| (l.name().to_string(), n))
            .collect();
        assert_eq!(stage.locality, mix);
        assert_eq!(stage.workers, expected.tasks_per_worker());
        assert!(summary.to_string().contains("PROCESS_LOCAL"), "{summary}");
    }
}

/// An event log directory that cannot be created fails the start with the path.
#[test]
fn unwritable_event_log_dir_fails_before_any_job() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let conf = Conf::new()
        .with("ember.master", "local[1]")
        .unwrap()
        .with(
            "ember.eventLog.dir",
            &file.join("logs").display().to_string(),
        )
        .unwrap();
    let err = ember_engine::run(conf, |_ctx| ()).unwrap_err().to_string();
    assert!(err.contains("not-a-dir"), "{err}");
}

/// A cluster host that does not resolve is refused before any worker starts (timely would
/// retry it forever).
#[test]
fn unresolvable_cluster_host_fails_before_starting() {
    let conf = Conf::new()
        .with("ember.master", "cluster")
        .unwrap()
        .with(
            "ember.cluster.hosts",
            "127.0.0.1:1,no-such-host.invalid:7400",
        )
        .unwrap()
        .with("ember.cluster.threads", "1")
        .unwrap();
    let err = ember_engine::run(conf, |_ctx| ()).unwrap_err().to_string();
    assert!(
        err.contains("ember.cluster.hosts") && err.contains("no-such-host.invalid"),
        "{err}"
    );
}
