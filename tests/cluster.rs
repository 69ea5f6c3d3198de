//! Cluster mode: two processes of two workers each on 127.0.0.1, connected by timely's
//! networking, give the same answers as local mode, collectives of barrier stages included; a
//! peer that never starts, stray connections to a cluster port during start-up and an action
//! run by one process only end in typed errors or a working cluster, never a hang or a crash.

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
        // Differential arrangements across the processes: the arranged join equals the plain
        // one, and the update merged two of the three components.
        assert_eq!(run["arranged_matches_plain"], true, "{name}");
        assert_eq!(run["components"], serde_json::json!([10, 20]), "{name}");
    }
}

/// Starts process `p` of the cluster `hosts` with `extra` environment variables.
fn start(p: usize, hosts: &str, extra: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(BIN);
    cmd.env("EMBER_MASTER", "cluster")
        .env("EMBER_CLUSTER_HOSTS", hosts)
        .env("EMBER_CLUSTER_PROCESS", p.to_string())
        .env("EMBER_CLUSTER_THREADS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits at most `limit` for `child`, killing it and failing the test if it runs longer.
fn finish(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "process still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn hosts_of(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn a_process_whose_peer_never_starts_fails_naming_the_peer_and_the_key() {
    let ports = free_ports(2);
    let hosts = hosts_of(&ports);
    let timeout = [
        ("EMBER_CLUSTER_STARTUPTIMEOUT", "1500ms"),
        ("EMBER_DEMO_MODE", "small"),
    ];
    // Process 1 connects to process 0, which never starts; process 0 alone waits for process 1.
    for (p, absent) in [(1, 0), (0, 1)] {
        let started = Instant::now();
        let out = finish(start(p, &hosts, &timeout), Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "process {p}: {stderr}");
        assert!(
            stderr.contains(&format!("process {absent} at 127.0.0.1:{}", ports[absent])),
            "process {p}: {stderr}"
        );
        assert!(stderr.contains("ember.cluster.startupTimeout"), "{stderr}");
        assert!(started.elapsed() >= Duration::from_millis(1500));
    }
}

#[test]
fn stray_connections_during_startup_do_not_kill_the_cluster() {
    use std::io::Write;
    let ports = free_ports(2);
    let hosts = hosts_of(&ports);
    let env = [("EMBER_DEMO_MODE", "small")];
    let first = start(0, &hosts, &env);
    // Process 0 is listening; what arrives before its peer is not a peer.
    let addr = format!("127.0.0.1:{}", ports[0]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut silent = loop {
        match std::net::TcpStream::connect(&addr) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("process 0 never listened: {e}"),
        }
    };
    let mut garbage = std::net::TcpStream::connect(&addr).unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut index_like = std::net::TcpStream::connect(&addr).unwrap();
    index_like.write_all(&1u64.to_be_bytes()).unwrap(); // what timely's handshake would take
    drop(std::net::TcpStream::connect(&addr).unwrap()); // connects and closes at once
    let mut fake = std::net::TcpStream::connect(&addr).unwrap();
    fake.write_all(b"EMBRnet1").unwrap(); // the magic, then an index out of range
    fake.write_all(&7u64.to_be_bytes()).unwrap();
    fake.write_all(&2u64.to_be_bytes()).unwrap();
    let second = start(1, &hosts, &env);
    let outs = [first, second].map(|c| finish(c, Duration::from_secs(120)));
    for (p, o) in outs.iter().enumerate() {
        assert!(
            o.status.success(),
            "process {p} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let got = answer(&outs[0].stdout).expect("process 0 prints the answer");
    let want: i64 = (0..1000i64).map(|x| x * x).sum();
    assert_eq!(got["sum"], want);
    assert_eq!(got["workers"], 4);
    let _ = silent.write_all(b"late");
}

#[test]
fn an_action_run_on_one_process_only_fails_it_with_peer_failed() {
    let ports = free_ports(2);
    let hosts = hosts_of(&ports);
    let env = [("EMBER_DEMO_MODE", "spmd")];
    let children = [start(0, &hosts, &env), start(1, &hosts, &env)];
    let outs = children.map(|c| finish(c, Duration::from_secs(120)));
    let stderr0 = String::from_utf8_lossy(&outs[0].stderr);
    assert_eq!(outs[0].status.code(), Some(1), "{stderr0}");
    assert!(stderr0.contains("a peer worker stopped"), "{stderr0}");
    assert!(
        stderr0.contains("worker 2 returned from the driver code")
            || stderr0.contains("worker 3 returned from the driver code"),
        "{stderr0}"
    );
    assert!(
        outs[1].status.success(),
        "process 1: {}",
        String::from_utf8_lossy(&outs[1].stderr)
    );
}
