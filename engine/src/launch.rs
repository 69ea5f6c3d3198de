//! Starting an application: timely workers in this process (`local[N]`) or in several processes
//! connected by timely's networking (`cluster`), each running the same driver closure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::config::{Conf, Master};
use crate::context::{Context, ProcessShared};
use crate::error::{EngineError, Result};
use crate::scheduler::{Event, EventLog, LocalityWaits};
use crate::task::panic_message;

/// Every `host:port` of the cluster must resolve: timely would retry an unknown host forever.
fn check_hosts_resolve(hosts: &[String]) -> Result<()> {
    use std::net::ToSocketAddrs;
    for host in hosts {
        let resolved = host.to_socket_addrs().map(|mut a| a.next().is_some());
        if !matches!(resolved, Ok(true)) {
            let why = match resolved {
                Err(e) => e.to_string(),
                Ok(_) => "no address".to_string(),
            };
            return Err(EngineError::InvalidConfigValue {
                key: "ember.cluster.hosts".into(),
                value: host.clone(),
                expected: format!("a reachable host:port ({host} does not resolve: {why})"),
            });
        }
    }
    Ok(())
}

/// The event log of the application when `ember.eventLog.dir` is set, opened by the process
/// holding worker 0 before any worker starts (so a bad directory fails the start).
fn open_event_log(conf: &Conf, master: &Master, threads: usize) -> Result<Option<EventLog>> {
    let Some(dir) = conf.get("ember.eventLog.dir").filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let (first, workers) = match master {
        Master::Local(n) => (true, *n),
        Master::Cluster { hosts, process, .. } => (*process == 0, hosts.len() * threads),
    };
    if !first {
        return Ok(None);
    }
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let app_id = format!("app-{millis}-{}", std::process::id());
    let mut log = EventLog::open(dir, &app_id, &conf.storage_config())?;
    let waits = LocalityWaits::from_conf(conf);
    log.log(&Event::ApplicationStart {
        app_id,
        workers,
        threads,
        locality_wait_process_ms: waits.process.as_millis() as u64,
        locality_wait_node_ms: waits.node.as_millis() as u64,
    });
    log.flush();
    tracing::info!(target = %log.target, "writing the event log");
    Ok(Some(log))
}

/// Runs `driver` on every worker and returns the result of this process's first worker.
///
/// Every action returns the same value on every worker, so the first worker's result is the
/// application's result.
///
/// ```
/// use ember_engine::prelude::*;
///
/// let conf = Conf::new().with("ember.master", "local[2]").unwrap();
/// let total = ember_engine::run(conf, |ctx| {
///     ctx.range(0, 100, 1, 4).unwrap().map(|x| x * 2).reduce(|a, b| a + b).unwrap()
/// })
/// .unwrap();
/// assert_eq!(total, Some(9900));
/// ```
pub fn run<R, F>(conf: Conf, driver: F) -> Result<R>
where
    R: Send + 'static,
    F: Fn(&Context) -> R + Send + Sync + 'static,
{
    run_all(conf, driver)?
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::Startup("no workers started".into()))
}

/// Runs `driver` on every worker and returns each of this process's workers' results in order.
pub fn run_all<R, F>(conf: Conf, driver: F) -> Result<Vec<R>>
where
    R: Send + 'static,
    F: Fn(&Context) -> R + Send + Sync + 'static,
{
    let master = conf.master()?;
    let (timely_conf, threads) = match &master {
        Master::Local(n) => (timely::Config::process(*n), *n),
        Master::Cluster {
            hosts,
            process,
            threads,
        } => (
            timely::Config {
                communication: timely::CommunicationConfig::Cluster {
                    threads: *threads,
                    process: *process,
                    addresses: hosts.clone(),
                    report: false,
                    zerocopy: false,
                },
                worker: timely::WorkerConfig::default(),
            },
            *threads,
        ),
    };
    tracing::info!(
        ?master,
        app = conf.get("ember.app.name"),
        "starting workers"
    );
    if let Master::Cluster { hosts, .. } = &master {
        check_hosts_resolve(hosts)?;
    }
    let events = open_event_log(&conf, &master, threads)?;
    let shared = Arc::new(ProcessShared {
        threads,
        events: std::sync::Mutex::new(events),
        ..Default::default()
    });
    let guards = timely::execute(timely_conf, move |worker| {
        let ctx = Context::new(worker.clone(), conf.clone(), Arc::clone(&shared));
        let index = ctx.worker_index();
        let outcome = match catch_unwind(AssertUnwindSafe(|| driver(&ctx))) {
            Ok(r) => Ok(r),
            Err(payload) => {
                let why = format!(
                    "driver code panicked on worker {index}: {}",
                    panic_message(&payload)
                );
                *shared.abort_reason.lock().expect("abort lock") = why.clone();
                shared.aborted.store(true, Ordering::SeqCst);
                Err(EngineError::PeerFailed(why))
            }
        };
        drop(ctx);
        if shared.aborted.load(Ordering::SeqCst) {
            // Rounds a stopped peer never joined cannot complete, and timely would wait for
            // them forever once this closure returns.
            for id in worker.installed_dataflows() {
                worker.drop_dataflow(id);
            }
        }
        outcome
    })
    .map_err(EngineError::Startup)?;
    let mut results = Vec::new();
    for joined in guards.join() {
        results.push(joined.map_err(EngineError::PeerFailed)??);
    }
    Ok(results)
}
