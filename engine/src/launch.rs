//! Starting an application: timely workers in this process (`local[N]`) or in several processes
//! connected by timely's networking (`cluster`), each running the same driver closure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use timely::communication::allocator::zero_copy::initialize::{
    initialize_networking_from_sockets, CommsGuard,
};
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks};

use crate::config::{Conf, Master};
use crate::context::{Context, ProcessShared};
use crate::error::{EngineError, Result};
use crate::peers::{Control, Peers};
use crate::scheduler::{Event, EventLog, LocalityWaits};
use crate::task::panic_message;
use crate::watchdog::Watchdog;

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
    tracing::info!(
        ?master,
        app = conf.get("ember.app.name"),
        "starting workers"
    );
    let (builders, comms, threads) = communication(&conf, &master)?;
    let events = open_event_log(&conf, &master, threads)?;
    let peers = Arc::new(Peers::default());
    let watchdog = Watchdog::start(&conf, &peers);
    let shared = Arc::new(ProcessShared {
        threads,
        events: std::sync::Mutex::new(events),
        peers: Arc::clone(&peers),
        ..Default::default()
    });
    let first = match &master {
        Master::Local(_) => 0,
        Master::Cluster { process, .. } => process * threads,
    };
    let (tx, rx) = mpsc::channel::<(usize, Result<R>)>();
    let dog = Arc::clone(watchdog.watchdog());
    let guards = timely::execute::execute_from(
        builders,
        Box::new(()),
        timely::WorkerConfig::default(),
        move |worker| {
            let control = Control::open(worker, &shared.peers);
            crate::task::set_watchdog(Some(Arc::clone(&dog)));
            let ctx = Context::new(worker.clone(), conf.clone(), Arc::clone(&shared));
            let index = ctx.worker_index();
            let outcome = match catch_unwind(AssertUnwindSafe(|| driver(&ctx))) {
                Ok(r) => Ok(r),
                Err(payload) => {
                    let why = format!(
                        "driver code panicked on worker {index}: {}",
                        panic_message(&payload)
                    );
                    shared.peers.abort(EngineError::PeerFailed(why.clone()));
                    Err(EngineError::PeerFailed(why))
                }
            };
            let rounds = ctx.rounds_opened();
            drop(ctx);
            crate::task::set_watchdog(None);
            shared.peers.finished(index, rounds);
            let abort = shared.peers.abort_error().map(|e| e.to_string());
            let control_id = control.dataflow();
            control.announce(worker, rounds, abort);
            let _ = tx.send((index - first, outcome));
            settle(worker, &shared.peers, rounds, control_id);
        },
    )
    .map_err(EngineError::Startup)?;
    let mut results: Vec<Option<Result<R>>> = (0..threads).map(|_| None).collect();
    let mut missing = threads;
    while missing > 0 {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok((i, r)) => {
                if let Some(slot) = results.get_mut(i) {
                    missing -= usize::from(slot.is_none());
                    *slot = Some(r);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(err) = abandon_stuck(&peers, watchdog.watchdog(), &results, first) {
                    // The stuck threads cannot be joined: leave them (and the network threads)
                    // running until the process exits.
                    std::mem::forget(guards);
                    std::mem::forget(comms);
                    return Err(err);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let mut failed = false;
    for joined in guards.join() {
        if let Err(why) = joined {
            tracing::warn!(reason = %why, "a worker thread panicked");
            failed = true;
        }
    }
    let results: Result<Vec<R>> = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                Err(EngineError::PeerFailed(format!(
                    "worker {} stopped without a result",
                    first + i
                )))
            })
        })
        .collect();
    if failed || results.is_err() {
        // A peer process that failed leaves network threads that panicked or still wait on
        // it; joining them would panic or hang, so they are left to end on their own.
        std::mem::forget(comms);
    } else {
        drop(comms);
    }
    results
}

/// The timely allocators of this process's workers, the network threads' guard (cluster mode)
/// and the number of worker threads in this process.
fn communication(
    conf: &Conf,
    master: &Master,
) -> Result<(Vec<AllocatorBuilder>, Option<CommsGuard>, usize)> {
    match master {
        Master::Local(n) => {
            let (builders, _) = timely::CommunicationConfig::Process(*n)
                .try_build()
                .map_err(EngineError::Startup)?;
            Ok((builders, None, *n))
        }
        Master::Cluster {
            hosts,
            process,
            threads,
        } => {
            check_hosts_resolve(hosts)?;
            let timeout = conf
                .get_duration("ember.cluster.startupTimeout")
                .unwrap_or(Duration::from_secs(60));
            let sockets = crate::network::connect(hosts, *process, timeout)?;
            let hooks = Hooks::default();
            let local = ProcessBuilder::new_typed_vector(
                *threads,
                hooks.refill.clone(),
                hooks.spill.clone(),
            );
            let (builders, guard) =
                initialize_networking_from_sockets(local, sockets, *process, *threads, hooks)
                    .map_err(|e| {
                        EngineError::Startup(format!("failed to initialize networking: {e}"))
                    })?;
            let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
            Ok((builders, Some(guard), *threads))
        }
    }
}

/// After a worker's driver code returned: waits until the rounds it opened complete, or drops
/// them when they cannot (the application was aborted, or a peer returned after another number
/// of rounds), so that timely does not wait for them forever. The control dataflow stays: it
/// ends once every worker has announced its end.
fn settle(worker: &mut timely::worker::Worker, peers: &Peers, rounds: u64, control: usize) {
    loop {
        let pending: Vec<usize> = worker
            .installed_dataflows()
            .into_iter()
            .filter(|&id| id != control)
            .collect();
        if pending.is_empty() {
            return;
        }
        if peers.aborted() || peers.mismatch(rounds) {
            for id in pending {
                worker.drop_dataflow(id);
            }
            return;
        }
        worker.step_or_park(Some(Duration::from_millis(5)));
    }
}

/// The error to return without joining, when the application was aborted by a task timeout
/// and every worker of this process that has not returned is running a timed-out task.
fn abandon_stuck<R>(
    peers: &Peers,
    watchdog: &Watchdog,
    results: &[Option<Result<R>>],
    first: usize,
) -> Option<EngineError> {
    let err = peers.abort_error()?;
    let stuck = watchdog.timed_out_workers();
    if stuck.is_empty() {
        return None;
    }
    let all_stuck = results
        .iter()
        .enumerate()
        .all(|(i, r)| r.is_some() || stuck.contains(&(first + i)));
    if !all_stuck {
        return None;
    }
    tracing::error!(
        workers = ?stuck,
        "abandoning worker threads stuck in a task past ember.task.timeout"
    );
    Some(err)
}
