//! `ember-submit`: a 2 x 2 cluster on 127.0.0.1 gives local mode's answers; a process that dies
//! makes it stop the others and fail, naming it, or (with restarts) restart the cluster, which
//! then resumes from its checkpoints with a clean run's answer; Ctrl-C stops every process; bad
//! configuration and hostfiles fail before anything starts.
//!
//! Unix only: the tests send signals, and look for leftover processes under `/proc` (Linux).

#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
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
    let host_arg = hostfile.to_str().unwrap();
    for (hosts, line, named) in [
        (
            "127.0.0.1:7400\nno-such-host.invalid\n",
            "line 2",
            "no-such-host.invalid",
        ),
        (
            "# two hosts\n127.0.0.1:7400\n\n127.0.0.1:port\n",
            "line 4",
            "127.0.0.1:port",
        ),
        ("# nothing\n", "lists no hosts", host_arg),
    ] {
        std::fs::write(&hostfile, hosts).unwrap();
        // With --print, and without it (where it would launch).
        for print in [true, false] {
            let out = Command::new(SUBMIT)
                .args(["--hostfile", host_arg])
                .args(print.then_some("--print"))
                .args(touch)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{hosts:?}: {stderr}");
            assert!(
                stderr.contains(line) && stderr.contains(named),
                "{hosts:?}: {stderr}"
            );
            assert!(out.stdout.is_empty(), "no command printed for {hosts:?}");
        }
    }
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

/// A finished `ember-submit` run.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        format!(
            "status {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Starts `ember-submit ARGS` with `env`, its output collected by threads (so a chatty cluster
/// never blocks on a full pipe).
fn spawn_submit(
    args: &[&str],
    env: &[(&str, &str)],
    configure: impl FnOnce(&mut Command),
) -> (Child, impl FnOnce() -> (String, String)) {
    let mut cmd = Command::new(SUBMIT);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    configure(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    (child, move || (out.join().unwrap(), err.join().unwrap()))
}

/// Waits for `child` up to `limit`; past it, interrupts it (it stops its cluster), then kills
/// it, and fails the test.
fn wait_for(mut child: Child, output: impl FnOnce() -> (String, String), limit: Duration) -> Run {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            signal(child.id(), "INT");
            std::thread::sleep(Duration::from_secs(3));
            let _ = child.kill();
            let _ = child.wait();
            let (stdout, stderr) = output();
            panic!("ember-submit did not finish within {limit:?}\n{stdout}\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = output();
    Run {
        status,
        stdout,
        stderr,
    }
}

/// Runs `ember-submit ARGS` with `env` to completion, at most 60 s.
fn submit(args: &[&str], env: &[(&str, &str)]) -> Run {
    let (child, output) = spawn_submit(args, env, |_| {});
    wait_for(child, output, Duration::from_secs(60))
}

/// Sends `SIG<name>` to `target` (a pid, or `-pgid` for a process group) with the shell's `kill`.
fn signal(target: impl std::fmt::Display, name: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{name} {target}"))
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {target}");
}

/// The demo's processes under `dir/pids`: `(pid, process index)`.
fn demo_processes(dir: &Path) -> Vec<(u32, usize)> {
    let Ok(entries) = std::fs::read_dir(dir.join("pids")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let pid = e.file_name().to_str()?.parse().ok()?;
            // Empty while being written.
            let index = std::fs::read_to_string(e.path()).ok()?.parse().ok()?;
            Some((pid, index))
        })
        .collect()
}

/// The pids the demo's processes wrote under `dir/pids`.
fn demo_pids(dir: &Path) -> Vec<u32> {
    demo_processes(dir)
        .into_iter()
        .map(|(pid, _)| pid)
        .collect()
}

/// Waits (at most 60 s) until `n` demo processes under `dir` have written their pid files.
fn wait_for_processes(dir: &Path, n: usize) -> Vec<(u32, usize)> {
    let up = Instant::now() + Duration::from_secs(60);
    loop {
        let found = demo_processes(dir);
        if found.len() >= n {
            return found;
        }
        assert!(Instant::now() < up, "the cluster did not start: {found:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live (not zombie) `ember-cluster-demo` process.
fn demo_running(pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('Z'));
    String::from_utf8_lossy(&cmdline).contains("ember-cluster-demo") && !zombie
}

/// Asserts that the demo processes of a run under `dir` (`expected` of them) are all gone.
fn assert_none_left(dir: &Path, expected: usize, run: &Run) {
    let pids = demo_pids(dir);
    assert_eq!(pids.len(), expected, "pid files: {pids:?}\n{}", run.text());
    let left: Vec<u32> = pids.into_iter().filter(|p| demo_running(*p)).collect();
    assert!(
        left.is_empty(),
        "processes left running: {left:?}\n{}",
        run.text()
    );
}

/// The `checkpoint` demo's answer, computed here: the checkpointed sums and the second job's.
fn expected_checkpoint_answer() -> serde_json::Value {
    let mut first: BTreeMap<i64, i64> = BTreeMap::new();
    for x in 0..40_000i64 {
        *first.entry(x % 97).or_default() += (x * x) % 10_007;
    }
    let mut second: BTreeMap<i64, i64> = BTreeMap::new();
    for (k, v) in &first {
        *second.entry(k % 10).or_default() += v % 1_000;
    }
    let pairs = |m: BTreeMap<i64, i64>| m.into_iter().collect::<Vec<_>>();
    serde_json::json!({ "first": pairs(first), "second": pairs(second) })
}

/// Lines of `dir/computed` (one per partition of the checkpointed RDD's lineage computed), by
/// attempt: `attempt -> sorted partition indices`.
fn computed_partitions(dir: &Path) -> BTreeMap<usize, Vec<usize>> {
    let text = std::fs::read_to_string(dir.join("computed")).unwrap_or_default();
    let mut by_attempt: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for line in text.lines() {
        let field = |name: &str| -> usize {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in `{line}`"))
        };
        by_attempt
            .entry(field("attempt"))
            .or_default()
            .push(field("partition"));
    }
    for parts in by_attempt.values_mut() {
        parts.sort();
    }
    by_attempt
}

/// Runs the `checkpoint` demo through `ember-submit -n 2 -w 2 EXTRA` with its files in `dir`.
fn checkpoint_app(dir: &Path, extra: &[&str], crash_once: bool) -> Run {
    let checkpoints = format!("ember.checkpoint.dir={}", dir.join("checkpoints").display());
    let mut args = vec!["-n", "2", "-w", "2", "--conf", checkpoints.as_str()];
    args.extend_from_slice(extra);
    args.extend(["--", DEMO]);
    let dir_text = dir.to_str().unwrap();
    let mut env = vec![
        ("EMBER_DEMO_MODE", "checkpoint"),
        ("EMBER_DEMO_DIR", dir_text),
    ];
    if crash_once {
        env.push(("EMBER_DEMO_CRASH_ONCE", "1"));
    }
    submit(&args, &env)
}

#[test]
fn a_restarted_cluster_resumes_from_its_checkpoints_with_a_clean_runs_answer() {
    let all_partitions: Vec<usize> = (0..8).collect();

    // A clean run computes the checkpointed RDD's lineage once, and writes the checkpoint.
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = checkpoint_app(clean_dir.path(), &[], false);
    assert!(clean.status.success(), "{}", clean.text());
    let clean_answer = answer(&clean.stdout, "[p0]").expect("worker 0 prints the answer");
    assert_eq!(clean_answer["answer"], expected_checkpoint_answer());
    assert_eq!(clean_answer["reused_checkpoint"], false);
    assert_eq!(
        computed_partitions(clean_dir.path()),
        BTreeMap::from([(0, all_partitions.clone())])
    );
    assert!(!clean.stderr.contains("restarting"), "{}", clean.text());

    // With restarts: the first attempt loses a process in the second job; the whole cluster is
    // restarted, and the second attempt reads the checkpoint the first one wrote.
    let dir = tempfile::tempdir().unwrap();
    let run = checkpoint_app(dir.path(), &["--restarts", "1"], true);
    assert!(run.status.success(), "{}", run.text());
    let crashed = std::fs::read_to_string(dir.path().join("crashed"))
        .expect("a process crashed on the first attempt");
    assert!(
        run.stderr
            .contains(&format!("process {crashed} exited with exit status: 3")),
        "the lost process is named\n{}",
        run.text()
    );
    assert!(
        run.stderr.contains("restarting the cluster (1 of 1)"),
        "{}",
        run.text()
    );
    let restarted = answer(&run.stdout, "[p0]").expect("worker 0 prints the answer");
    assert_eq!(restarted["answer"], clean_answer["answer"]);
    assert_eq!(
        restarted["reused_checkpoint"], true,
        "the second attempt found the first attempt's checkpoint"
    );
    // Every partition was computed by the first attempt, and none by the second.
    assert_eq!(
        computed_partitions(dir.path()),
        BTreeMap::from([(0, all_partitions)]),
        "{}",
        run.text()
    );
    assert_none_left(dir.path(), 4, &run);
}

#[test]
fn a_lost_process_without_restarts_fails_naming_it_and_leaves_none_running() {
    let dir = tempfile::tempdir().unwrap();
    let run = checkpoint_app(dir.path(), &[], true);
    assert_eq!(run.status.code(), Some(1), "{}", run.text());
    let crashed = std::fs::read_to_string(dir.path().join("crashed")).expect("a process crashed");
    assert!(
        run.stderr
            .contains(&format!("process {crashed} exited with exit status: 3"))
            && run.stderr.contains("stopped the other processes"),
        "{}",
        run.text()
    );
    assert!(!run.stderr.contains("restarting"), "{}", run.text());
    assert!(
        answer(&run.stdout, "[p0]").is_none(),
        "no answer: {}",
        run.text()
    );
    assert_none_left(dir.path(), 2, &run);
}

/// Starts the `long` demo on a 2 x 2 cluster (with a restart allowed, which Ctrl-C must not
/// use), waits until both processes have run a job, and sends SIGINT to ember-submit alone, or
/// to the process group it leads (as a terminal does).
fn interrupt_a_running_cluster(own_group: bool) {
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap();
    let (child, output) = spawn_submit(
        &["-n", "2", "-w", "2", "--restarts", "1", "--", DEMO],
        &[("EMBER_DEMO_MODE", "long"), ("EMBER_DEMO_DIR", dir_text)],
        |cmd| {
            if own_group {
                cmd.process_group(0);
            }
        },
    );
    let pid = child.id();
    wait_for_processes(dir.path(), 2);
    let sent = Instant::now();
    if own_group {
        // As a terminal's Ctrl-C does: the whole foreground process group.
        signal(format!("-{pid}"), "INT");
    } else {
        signal(pid, "INT");
    }
    let run = wait_for(child, output, Duration::from_secs(30));
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "stopped promptly: {:?}",
        sent.elapsed()
    );
    assert_eq!(run.status.code(), Some(130), "{}", run.text());
    assert!(
        run.stderr.contains("interrupted (SIGINT)"),
        "{}",
        run.text()
    );
    assert!(!run.stderr.contains("restarting"), "{}", run.text());
    assert_none_left(dir.path(), 2, &run);
}

#[test]
fn ctrl_c_stops_every_process() {
    // `kill -INT` to ember-submit alone: it stops its processes itself.
    interrupt_a_running_cluster(false);
    // A terminal's Ctrl-C: every process of the group gets SIGINT.
    interrupt_a_running_cluster(true);
}

#[test]
fn a_killed_process_stops_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap();
    let (child, output) = spawn_submit(
        &["-n", "2", "-w", "2", "--", DEMO],
        &[("EMBER_DEMO_MODE", "long"), ("EMBER_DEMO_DIR", dir_text)],
        |_| {},
    );
    // Kill process 1 from outside (as the OOM killer or an operator would), mid-run.
    let processes = wait_for_processes(dir.path(), 2);
    let (victim, _) = *processes.iter().find(|(_, index)| *index == 1).unwrap();
    let sent = Instant::now();
    signal(victim, "KILL");
    let run = wait_for(child, output, Duration::from_secs(30));
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "stopped promptly: {:?}",
        sent.elapsed()
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.text());
    assert!(
        run.stderr.contains("process 1 exited with signal: 9"),
        "{}",
        run.text()
    );
    assert_none_left(dir.path(), 2, &run);
}

#[test]
fn killing_ember_submit_itself_leaves_no_process_running() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap();
    let (child, output) = spawn_submit(
        &["-n", "2", "-w", "2", "--", DEMO],
        &[("EMBER_DEMO_MODE", "long"), ("EMBER_DEMO_DIR", dir_text)],
        |_| {},
    );
    wait_for_processes(dir.path(), 2);
    // SIGKILL cannot be caught: the processes' death signal (Linux) stops them.
    signal(child.id(), "KILL");
    let run = wait_for(child, output, Duration::from_secs(30));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&run.status),
        Some(9)
    );
    let gone = Instant::now() + Duration::from_secs(10);
    while demo_pids(dir.path()).into_iter().any(demo_running) {
        assert!(Instant::now() < gone, "processes outlived ember-submit");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_none_left(dir.path(), 2, &run);
}

#[test]
fn no_child_output_line_is_lost() {
    // ember-submit used to exit before its forwarding threads had copied the children's last
    // lines (about half of 30 runs lost one).
    let script = "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done; echo end >&2";
    for run in 0..30 {
        let out = submit(&["-n", "2", "-w", "1", "--", "sh", "-c", script], &[]);
        assert!(out.status.success(), "run {run}: {}", out.text());
        for p in 0..2 {
            let prefix = format!("[p{p}] line ");
            let got: Vec<&str> = out
                .stdout
                .lines()
                .filter_map(|l| l.strip_prefix(&prefix))
                .collect();
            let want: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
            assert_eq!(
                got, want,
                "run {run}, process {p}: lines lost or out of order"
            );
            assert!(
                out.stderr.contains(&format!("[p{p}] end")),
                "run {run}: {}",
                out.text()
            );
        }
    }
}
