//! `ember-submit`: a 2 x 2 cluster on 127.0.0.1 gives local mode's answers; a process that dies
//! makes it stop the others and fail; bad configuration and hostfiles fail before anything starts.

use std::process::Command;
use std::time::{Duration, Instant};

const SUBMIT: &str = env!("CARGO_BIN_EXE_ember-submit");
const DEMO: &str = env!("CARGO_BIN_EXE_ember-cluster-demo");

fn answer(stdout: &str, prefix: &str) -> Option<serde_json::Value> {
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix(prefix)
                .map(str::trim)
                .filter(|l| l.starts_with('{'))
        })
        .map(|l| serde_json::from_str(l).unwrap())
}

#[test]
fn two_by_two_cluster_matches_local_mode() {
    let out = Command::new(SUBMIT)
        .args([
            "--processes",
            "2",
            "--workers",
            "2",
            "--conf",
            "ember.task.maxFailures=2",
            "--",
            DEMO,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cluster = answer(&stdout, "[p0]").expect("process 0 prints the answer, prefixed");
    assert_eq!(cluster["workers"], 4);
    let local = Command::new(DEMO)
        .env("EMBER_MASTER", "local[4]")
        .output()
        .unwrap();
    let local = answer(&String::from_utf8_lossy(&local.stdout), "").unwrap();
    for key in local
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "workers")
    {
        assert_eq!(cluster[key], local[key], "{key}");
    }
}

#[test]
fn a_failed_process_stops_the_others() {
    let start = Instant::now();
    let out = Command::new(SUBMIT)
        .args(["-n", "2", "-w", "2", "--", DEMO])
        .env("EMBER_DEMO_CRASH_PROCESS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("process 1 exited"), "{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "stopped promptly"
    );

    // With restarts the whole cluster is retried, and fails again the same way.
    let out = Command::new(SUBMIT)
        .args(["--restarts", "1", "--", DEMO])
        .env("EMBER_DEMO_CRASH_PROCESS", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("restarting the cluster (1 of 1)"),
        "{stderr}"
    );
}

#[test]
fn bad_configuration_and_hosts_fail_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    // `touch` would create the marker if anything were launched.
    let touch = ["--", "touch", marker.to_str().unwrap()];
    for bad in [
        vec!["--conf", "ember.locality.wait=-1s"],
        vec!["--conf", "ember.nonsense=1"],
        vec!["--storage-memory", "lots"],
        vec!["--processes", "0"],
    ] {
        let out = Command::new(SUBMIT)
            .args(&bad)
            .args(touch)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    let hostfile = dir.path().join("hosts");
    std::fs::write(&hostfile, "127.0.0.1:7400\nno-such-host.invalid\n").unwrap();
    let out = Command::new(SUBMIT)
        .args(["--hostfile", hostfile.to_str().unwrap(), "--print"])
        .args(touch)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-host.invalid"));
    assert!(!marker.exists(), "nothing was started");

    std::fs::write(&hostfile, "127.0.0.1:7400\n127.0.0.1:7401\n").unwrap();
    let out = Command::new(SUBMIT)
        .args([
            "--hostfile",
            hostfile.to_str().unwrap(),
            "--print",
            "-w",
            "3",
            "--",
            "app",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("EMBER_CLUSTER_PROCESS=1") && text.contains("EMBER_CLUSTER_THREADS=3"),
        "{text}"
    );
    assert!(
        text.contains("EMBER_CLUSTER_HOSTS=127.0.0.1:7400,127.0.0.1:7401"),
        "{text}"
    );
}
