//! `ember-submit`: runs an Ember application as a cluster of processes on this host, or prints
//! the per-host commands for the hosts of a hostfile.
//!
//! ```text
//! ember-submit [--processes N] [--workers W] [--conf key=value]... [--properties-file FILE]
//!              [--storage-memory SIZE] [--device-memory SIZE] [--restarts R]
//!              [--hostfile FILE --print] -- PROGRAM [ARGS...]
//! ```
//!
//! Every process runs PROGRAM with `EMBER_MASTER=cluster`, the cluster's addresses, its index and
//! the worker count in its environment, plus the given configuration (validated here first, so a
//! bad key or value, or a hostfile host that does not resolve, is an error before anything
//! starts). Output lines are prefixed with the process index. If one process fails, the others
//! are stopped (killed and reaped) and `ember-submit` exits with status 1, naming the process
//! that was lost. With `--restarts R` it instead restarts the whole cluster, on fresh ports, up
//! to R times, so an application resumes from its checkpoints (`ember.checkpoint.dir`); each
//! process sees the attempt number (0 first) as `EMBER_SUBMIT_ATTEMPT`.
//!
//! Ctrl-C (SIGINT) or SIGTERM stops every process and exits with 128 + the signal's number,
//! without restarting: whether the signal went to `ember-submit` alone (`kill -INT PID`) or to
//! the terminal's whole process group, which the processes share. On Linux the processes are
//! also killed if `ember-submit` itself is (SIGKILL cannot be caught).

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, ToSocketAddrs};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use ember::engine::config::env_var_for;
use ember::engine::Conf;
use ember::storage::{is_secret_key, redact_url};

struct Options {
    processes: usize,
    workers: usize,
    conf: Vec<(String, String)>,
    properties: Option<String>,
    restarts: usize,
    hostfile: Option<String>,
    print: bool,
    program: Vec<String>,
}

fn usage() -> String {
    "usage: ember-submit [--processes N] [--workers W] [--conf k=v]... [--properties-file F] \
     [--storage-memory SIZE] [--device-memory SIZE] [--restarts R] [--hostfile F --print] -- PROGRAM [ARGS...]"
        .into()
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        processes: 2,
        workers: 2,
        conf: Vec::new(),
        properties: None,
        restarts: 0,
        hostfile: None,
        print: false,
        program: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{}", usage()))
        };
        let count = |name: &str, v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{name}: `{v}` is not a count >= 1"))
        };
        match arg.as_str() {
            "--processes" | "-n" => o.processes = count("--processes", value("--processes")?)?,
            "--workers" | "-w" => o.workers = count("--workers", value("--workers")?)?,
            "--restarts" => {
                let v = value("--restarts")?;
                o.restarts = v
                    .parse()
                    .map_err(|_| format!("--restarts: `{v}` is not a count"))?;
            }
            "--conf" => {
                let kv = value("--conf")?;
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    // The argument may hold a credential: never echo one.
                    let shown = if is_secret_key(&kv) {
                        "***".into()
                    } else {
                        redact_url(&kv)
                    };
                    format!("--conf `{shown}` is not key=value")
                })?;
                o.conf.push((k.trim().into(), v.trim().into()));
            }
            "--storage-memory" => o
                .conf
                .push(("ember.memory.storage".into(), value("--storage-memory")?)),
            "--device-memory" => o
                .conf
                .push(("ember.memory.device".into(), value("--device-memory")?)),
            "--properties-file" => o.properties = Some(value("--properties-file")?),
            "--hostfile" => o.hostfile = Some(value("--hostfile")?),
            "--print" => o.print = true,
            "--" => {
                o.program = args.collect();
                break;
            }
            "-h" | "--help" => return Err(usage()),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{}", usage()))
            }
            _ => {
                o.program = std::iter::once(arg).chain(args).collect();
                break;
            }
        }
    }
    if o.program.is_empty() {
        return Err(format!("no program given\n{}", usage()));
    }
    Ok(o)
}

/// Validates the configuration exactly as the application will read it.
fn validate(o: &Options) -> Result<(), String> {
    let mut conf = Conf::new();
    if let Some(p) = &o.properties {
        conf.load_file(std::path::Path::new(p))
            .map_err(|e| e.to_string())?;
    }
    for (k, v) in &o.conf {
        conf.set(k, v).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Hosts of a hostfile: one `host[:port]` per line, `#` comments.
fn hosts(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("hostfile {path}: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let addr = if line.contains(':') {
            line.to_string()
        } else {
            format!("{line}:7400")
        };
        // An unreachable (unresolvable) host is an error before anything starts.
        addr.to_socket_addrs()
            .map_err(|e| {
                format!(
                    "hostfile {path}, line {}: cannot resolve `{addr}`: {e}",
                    i + 1
                )
            })?
            .next()
            .ok_or_else(|| format!("hostfile {path}, line {}: `{addr}` has no address", i + 1))?;
        out.push(addr);
    }
    if out.is_empty() {
        return Err(format!("hostfile {path} lists no hosts"));
    }
    Ok(out)
}

fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port on 127.0.0.1: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect()
}

fn env_for(o: &Options, addresses: &str, process: usize) -> Vec<(String, String)> {
    let mut env = vec![
        ("EMBER_MASTER".to_string(), "cluster".to_string()),
        ("EMBER_CLUSTER_HOSTS".to_string(), addresses.to_string()),
        ("EMBER_CLUSTER_PROCESS".to_string(), process.to_string()),
        ("EMBER_CLUSTER_THREADS".to_string(), o.workers.to_string()),
    ];
    if let Some(p) = &o.properties {
        env.push(("EMBER_CONF_FILE".into(), p.clone()));
    }
    env.extend(o.conf.iter().map(|(k, v)| (env_var_for(k), v.clone())));
    if !o.conf.is_empty() {
        // The keys by name: a variable's name does not always tell its key (`Conf::from_env`).
        let keys: Vec<&str> = o.conf.iter().map(|(k, _)| k.as_str()).collect();
        env.push(("EMBER_CONF_NAMES".into(), keys.join(",")));
    }
    env
}

/// `--hostfile --print`: each host's command. Secret values are never printed: the command reads
/// them from the host's own environment (`"${EMBER_S3_SECRETKEY:?...}"` fails loudly when unset),
/// and URL credentials show as `***@`.
fn print_commands(o: &Options, hosts: &[String]) {
    let addresses = hosts.join(",");
    let secrets: Vec<String> = env_for(o, &addresses, 0)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| is_secret_key(k))
        .collect();
    if !secrets.is_empty() {
        println!(
            "# secret values are not printed: export {} on each host before running its command",
            secrets.join(", ")
        );
    }
    for (p, host) in hosts.iter().enumerate() {
        let env: Vec<String> = env_for(o, &addresses, p)
            .into_iter()
            .map(|(k, v)| {
                if is_secret_key(&k) {
                    format!("{k}=\"${{{k}:?export {k} on this host}}\"")
                } else {
                    format!("{k}={}", redact_url(&v))
                }
            })
            .collect();
        println!("# on {host}\n{} {}", env.join(" "), o.program.join(" "));
    }
}

/// Copies a child's output to ours, one prefixed line at a time, until the child closes it;
/// joined before `ember-submit` returns, so no line is lost.
fn forward(
    stream: impl std::io::Read + Send + 'static,
    prefix: String,
    to_stderr: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if to_stderr {
                eprintln!("{prefix} {line}");
            } else {
                println!("{prefix} {line}");
            }
        }
    })
}

/// Why a cluster run did not succeed.
enum Failure {
    /// A process failed (or could not be started or watched): restartable.
    Lost(String),
    /// Ctrl-C or SIGTERM: everything was stopped; never restarted.
    Interrupted(i32),
}

/// Runs the cluster once; `Ok(())` when every process exited successfully.
fn run_once(o: &Options, attempt: usize) -> Result<(), Failure> {
    if let Some(signal) = signals::received() {
        return Err(Failure::Interrupted(signal));
    }
    let ports = free_ports(o.processes).map_err(Failure::Lost)?;
    let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let addresses = addresses.join(",");
    let mut children: Vec<Child> = Vec::new();
    let mut forwarders: Vec<std::thread::JoinHandle<()>> = Vec::new();
    for p in 0..o.processes {
        let mut command = Command::new(&o.program[0]);
        command
            .args(&o.program[1..])
            .envs(env_for(o, &addresses, p))
            .env("EMBER_SUBMIT_ATTEMPT", attempt.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        signals::die_with_parent(&mut command);
        let spawned = command.spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                stop(&mut children);
                for f in forwarders {
                    let _ = f.join();
                }
                return Err(Failure::Lost(format!(
                    "cannot start `{}`: {e}",
                    o.program[0]
                )));
            }
        };
        forwarders.push(forward(
            child.stdout.take().expect("piped"),
            format!("[p{p}]"),
            false,
        ));
        forwarders.push(forward(
            child.stderr.take().expect("piped"),
            format!("[p{p}]"),
            true,
        ));
        children.push(child);
    }
    let outcome = watch(&mut children);
    // Every child has exited (or was killed and reaped): their pipes close, the forwarders
    // copy the last lines and end.
    for f in forwarders {
        let _ = f.join();
    }
    outcome
}

/// Waits for the cluster's processes: `Ok(())` once all exited successfully; stops them all
/// when one fails or a signal arrives.
fn watch(children: &mut [Child]) -> Result<(), Failure> {
    let mut done = vec![false; children.len()];
    loop {
        if let Some(signal) = signals::received() {
            stop(children);
            return Err(Failure::Interrupted(signal));
        }
        // Every process that failed since the last look, in process order.
        let mut failed: Vec<(usize, ExitStatus)> = Vec::new();
        for (p, child) in children.iter_mut().enumerate() {
            if done[p] {
                continue;
            }
            match child.try_wait() {
                Ok(Some(status)) if status.success() => done[p] = true,
                Ok(Some(status)) => failed.push((p, status)),
                Ok(None) => {}
                Err(e) => {
                    stop(children);
                    return Err(Failure::Lost(format!("cannot watch process {p}: {e}")));
                }
            }
        }
        if !failed.is_empty() {
            stop(children);
            // A terminal's Ctrl-C reaches the processes too; they die of it, not of a fault.
            if let Some(signal) = signals::received()
                .or_else(|| failed.iter().find_map(|(_, s)| signals::interrupt_of(s)))
            {
                return Err(Failure::Interrupted(signal));
            }
            let lost: Vec<String> = failed
                .iter()
                .map(|(p, status)| format!("process {p} exited with {status}"))
                .collect();
            return Err(Failure::Lost(format!(
                "{}; stopped the other processes",
                lost.join(", ")
            )));
        }
        if done.iter().all(|d| *d) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills and reaps every child still running: no orphans.
fn stop(children: &mut [Child]) {
    for c in children.iter_mut() {
        let _ = c.kill();
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ember-submit: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = validate(&o) {
        eprintln!("ember-submit: {e}");
        return ExitCode::from(2);
    }
    if let Some(path) = &o.hostfile {
        let hosts = match hosts(path) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("ember-submit: {e}");
                return ExitCode::from(2);
            }
        };
        if !o.print {
            eprintln!("ember-submit: with --hostfile, pass --print to get each host's command (remote launch is not built in)");
            return ExitCode::from(2);
        }
        print_commands(&o, &hosts);
        return ExitCode::SUCCESS;
    }
    signals::install();
    for attempt in 0..=o.restarts {
        match run_once(&o, attempt) {
            Ok(()) => return ExitCode::SUCCESS,
            Err(Failure::Interrupted(signal)) => {
                eprintln!(
                    "ember-submit: interrupted ({}); stopped every process",
                    signals::name(signal)
                );
                return ExitCode::from(128 + signal as u8);
            }
            Err(Failure::Lost(e)) if attempt < o.restarts => {
                eprintln!(
                    "ember-submit: {e}; restarting the cluster ({} of {})",
                    attempt + 1,
                    o.restarts
                )
            }
            Err(Failure::Lost(e)) => {
                eprintln!("ember-submit: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::from(1)
}

/// SIGINT and SIGTERM, noted by a handler so the cluster is stopped instead of orphaned (the
/// default action would end `ember-submit` alone, leaving its processes running).
#[cfg(unix)]
mod signals {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;
    use std::sync::atomic::{AtomicI32, Ordering};

    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;

    /// The last signal received, 0 for none.
    static RECEIVED: AtomicI32 = AtomicI32::new(0);

    extern "C" fn note(signal: i32) {
        // Async-signal-safe: one atomic store.
        RECEIVED.store(signal, Ordering::SeqCst);
    }

    extern "C" {
        // From the C library std already links; `libc` is not a dependency of this crate.
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }

    /// Installs the handler for SIGINT and SIGTERM (children get default dispositions back at
    /// exec).
    pub fn install() {
        // SAFETY: `note` only stores to an atomic, which is async-signal-safe.
        unsafe {
            signal(SIGINT, note);
            signal(SIGTERM, note);
        }
    }

    /// A signal's name.
    pub fn name(signal: i32) -> String {
        match signal {
            SIGINT => "SIGINT".into(),
            SIGTERM => "SIGTERM".into(),
            other => format!("signal {other}"),
        }
    }

    /// The signal received since `install`, if any.
    pub fn received() -> Option<i32> {
        Some(RECEIVED.load(Ordering::SeqCst)).filter(|s| *s != 0)
    }

    /// On Linux, makes the child get SIGKILL when `ember-submit` dies, even of a signal it
    /// cannot catch (SIGKILL from a supervisor or a test harness's timeout): no orphans then
    /// either. Elsewhere, nothing.
    pub fn die_with_parent(command: &mut std::process::Command) {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;

            const PR_SET_PDEATHSIG: i32 = 1;
            const SIGKILL: u64 = 9;
            const ESRCH: i32 = 3;
            extern "C" {
                fn prctl(option: i32, ...) -> i32;
                fn getppid() -> i32;
            }
            let parent = std::process::id() as i32;
            // SAFETY: between fork and exec the closure makes two system calls and allocates
            // nothing. The death signal is tied to the thread that spawns, the main thread,
            // which lives as long as `ember-submit`.
            unsafe {
                command.pre_exec(move || {
                    if prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The parent died before the death signal was armed.
                    if getppid() != parent {
                        return Err(std::io::Error::from_raw_os_error(ESRCH));
                    }
                    Ok(())
                });
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = command;
    }

    /// The signal, when a child was ended by SIGINT or SIGTERM.
    pub fn interrupt_of(status: &ExitStatus) -> Option<i32> {
        status.signal().filter(|s| *s == SIGINT || *s == SIGTERM)
    }
}

/// Without Unix signals: nothing to install; Ctrl-C ends the console's processes together.
#[cfg(not(unix))]
mod signals {
    use std::process::ExitStatus;

    /// Nothing to install.
    pub fn install() {}

    /// Nothing to arrange.
    pub fn die_with_parent(_: &mut std::process::Command) {}

    /// A signal's number as text.
    pub fn name(signal: i32) -> String {
        format!("signal {signal}")
    }

    /// Never.
    pub fn received() -> Option<i32> {
        None
    }

    /// Never.
    pub fn interrupt_of(_: &ExitStatus) -> Option<i32> {
        None
    }
}
