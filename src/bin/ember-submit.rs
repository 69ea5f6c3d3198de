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
//! bad key or value is an error before anything starts). Output lines are prefixed with the
//! process index. If one process fails, the others are stopped and `ember-submit` exits non-zero
//! (or, with `--restarts R`, restarts the whole cluster up to R times, so an application resumes
//! from its checkpoints). Ctrl-C reaches every process: they share the terminal's process group.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, ToSocketAddrs};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use ember::engine::config::env_var_for;
use ember::engine::Conf;

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
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| format!("--conf `{kv}` is not key=value"))?;
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
    env
}

/// Copies a child's output to ours, one prefixed line at a time.
fn forward(stream: impl std::io::Read + Send + 'static, prefix: String, to_stderr: bool) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if to_stderr {
                eprintln!("{prefix} {line}");
            } else {
                println!("{prefix} {line}");
            }
        }
    });
}

/// Runs the cluster once; `Ok(())` when every process exited successfully.
fn run_once(o: &Options) -> Result<(), String> {
    let ports = free_ports(o.processes)?;
    let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let addresses = addresses.join(",");
    let mut children: Vec<Child> = Vec::new();
    for p in 0..o.processes {
        let spawned = Command::new(&o.program[0])
            .args(&o.program[1..])
            .envs(env_for(o, &addresses, p))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                stop(&mut children);
                return Err(format!("cannot start `{}`: {e}", o.program[0]));
            }
        };
        forward(
            child.stdout.take().expect("piped"),
            format!("[p{p}]"),
            false,
        );
        forward(child.stderr.take().expect("piped"), format!("[p{p}]"), true);
        children.push(child);
    }
    let mut done = vec![false; children.len()];
    loop {
        for (p, child) in children.iter_mut().enumerate() {
            if done[p] {
                continue;
            }
            match child.try_wait() {
                Ok(Some(status)) if status.success() => done[p] = true,
                Ok(Some(status)) => {
                    let why = format!("process {p} exited with {status}; stopping the others");
                    stop(&mut children);
                    return Err(why);
                }
                Ok(None) => {}
                Err(e) => {
                    stop(&mut children);
                    return Err(format!("cannot watch process {p}: {e}"));
                }
            }
        }
        if done.iter().all(|d| *d) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
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
        let addresses = hosts.join(",");
        for (p, host) in hosts.iter().enumerate() {
            let env: Vec<String> = env_for(&o, &addresses, p)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!("# on {host}\n{} {}", env.join(" "), o.program.join(" "));
        }
        return ExitCode::SUCCESS;
    }
    for attempt in 0..=o.restarts {
        match run_once(&o) {
            Ok(()) => return ExitCode::SUCCESS,
            Err(e) if attempt < o.restarts => {
                eprintln!(
                    "ember-submit: {e}; restarting the cluster ({} of {})",
                    attempt + 1,
                    o.restarts
                )
            }
            Err(e) => {
                eprintln!("ember-submit: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::from(1)
}
