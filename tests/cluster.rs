//! Cluster mode: two processes of two workers each on 127.0.0.1, connected by timely's
//! networking, give the same answers as local mode, collectives of barrier stages included.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ember-cluster-demo");

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// The JSON answer line of a run's stdout (timely's networking prints its own progress lines).
fn answer(stdout: &[u8]) -> Option<serde_json::Value> {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .find(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
}

fn run_local(workers: usize) -> serde_json::Value {
    let out = Command::new(BIN)
        .env("EMBER_MASTER", format!("local[{workers}]"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "local run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    answer(&out.stdout).expect("local run prints an answer")
}

#[test]
fn two_processes_match_local_mode() {
    let ports = free_ports(2);
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    let mut children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(BIN)
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
            panic!("cluster run did not finish within 120 s");
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
    // Worker 0 lives in process 0, which prints the answer.
    let cluster = answer(&outputs[0].stdout).expect("process 0 prints the answer");
    assert!(answer(&outputs[1].stdout).is_none(), "only worker 0 prints");
    assert_eq!(cluster["workers"], 4);

    let local = run_local(4);
    let single = run_local(1);
    for key in local
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "workers")
    {
        assert_eq!(cluster[key], local[key], "{key}: cluster vs local[4]");
        assert_eq!(single[key], local[key], "{key}: local[1] vs local[4]");
    }
    // Spot checks against values computed here.
    assert_eq!(local["accumulator"], 1234);
    assert_eq!(local["sorted"], true);
    assert_eq!(local["sorted_rows"], 50_000);
    assert_eq!(local["zip_with_index_mismatches"], 0);
    assert_eq!(local["cartesian"], 140);
    assert_eq!(local["coalesced_sum"], 499_500);
    assert_eq!(
        local["broadcast_lookup"],
        (0..100).map(|i: i64| (i % 10) * (i % 10)).sum::<i64>()
    );
    assert_eq!(local["distinct_keys"], 1000);
    let expected_rows: i64 = (0..50_000i64)
        .filter(|i| ((i * 7919) % 1000) % 2 == 0)
        .count() as i64;
    assert_eq!(local["join_rows"], expected_rows);
    // Collectives across the two processes: every all-reduce, broadcast and all-gather equals
    // the sequential computation, and the barrier stage whose rank 1 task panicked restarted.
    for (name, run) in [
        ("cluster", &cluster),
        ("local[4]", &local),
        ("local[1]", &single),
    ] {
        assert_eq!(run["collective_mismatches"], 0, "{name}");
        assert_eq!(run["collective_tasks_ok"], true, "{name}");
        assert_eq!(run["barrier_restart_ok"], true, "{name}");
    }
}
