//! Slow and stuck tasks: one thread per process watches the task attempt each worker thread is
//! running. An attempt running longer than `ember.task.slowWarning` is reported once, naming its
//! stage, partition, attempt, worker and elapsed time (the stragglers Spark's speculation
//! reports); one running longer than `ember.task.timeout` (off by default) aborts the
//! application with [`EngineError::TaskTimedOut`], since a task that never returns cannot be
//! stopped and every peer would wait for it forever.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Conf;
use crate::error::EngineError;
use crate::peers::Peers;

/// How often the watchdog looks at the running tasks.
const TICK: Duration = Duration::from_millis(50);

/// One task attempt being run by a worker thread.
#[derive(Debug, Clone)]
struct Running {
    stage: usize,
    partition: usize,
    attempt: usize,
    started: Instant,
    warned: bool,
}

/// The running attempts of a process's workers and the limits they are held to.
pub(crate) struct Watchdog {
    running: Mutex<BTreeMap<usize, Running>>,
    slow_warning: Option<Duration>,
    timeout: Option<Duration>,
    peers: Arc<Peers>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Keeps the watchdog thread running; stops and joins it when dropped.
pub(crate) struct WatchdogThread {
    watchdog: Arc<Watchdog>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the watchdog of a process whose aborts go to `peers`.
    pub(crate) fn start(conf: &Conf, peers: &Arc<Peers>) -> WatchdogThread {
        let nonzero = |key: &str| conf.get_duration(key).filter(|d| !d.is_zero());
        let watchdog = Arc::new(Watchdog {
            running: Mutex::new(BTreeMap::new()),
            slow_warning: nonzero("ember.task.slowWarning"),
            timeout: nonzero("ember.task.timeout"),
            peers: Arc::clone(peers),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let thread = (watchdog.slow_warning.is_some() || watchdog.timeout.is_some()).then(|| {
            let w = Arc::clone(&watchdog);
            // Its warnings go where the starting thread's logs go.
            let dispatch = tracing::dispatcher::get_default(|d| d.clone());
            std::thread::Builder::new()
                .name("ember-watchdog".into())
                .spawn(move || tracing::dispatcher::with_default(&dispatch, || w.watch()))
                .ok()
        });
        WatchdogThread {
            watchdog,
            thread: thread.flatten(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<usize, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Worker `worker` starts an attempt.
    pub(crate) fn task_started(
        &self,
        worker: usize,
        stage: usize,
        partition: usize,
        attempt: usize,
    ) {
        let run = Running {
            stage,
            partition,
            attempt,
            started: Instant::now(),
            warned: false,
        };
        self.lock().insert(worker, run);
    }

    /// Worker `worker`'s attempt returned.
    pub(crate) fn task_ended(&self, worker: usize) {
        self.lock().remove(&worker);
    }

    /// The workers whose attempt has run past `ember.task.timeout` (none without a timeout).
    pub(crate) fn timed_out_workers(&self) -> Vec<usize> {
        let Some(limit) = self.timeout else {
            return Vec::new();
        };
        self.lock()
            .iter()
            .filter(|(_, r)| r.started.elapsed() >= limit)
            .map(|(&w, _)| w)
            .collect()
    }

    fn watch(&self) {
        let mut stopped = self.stop.lock().unwrap_or_else(|p| p.into_inner());
        while !*stopped {
            stopped = match self.wake.wait_timeout(stopped, TICK) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
            self.check();
        }
    }

    /// Warns about slow attempts and aborts the application on one past the timeout.
    fn check(&self) {
        let mut running = self.lock();
        for (&worker, run) in running.iter_mut() {
            let elapsed = run.started.elapsed();
            if let Some(limit) = self.timeout.filter(|&t| elapsed >= t) {
                if !self.peers.aborted() {
                    self.peers.abort(EngineError::TaskTimedOut {
                        stage: run.stage,
                        partition: run.partition,
                        attempt: run.attempt,
                        worker,
                        elapsed_ms: elapsed.as_millis() as u64,
                        timeout_ms: limit.as_millis() as u64,
                    });
                }
            } else if let Some(limit) = self.slow_warning.filter(|&t| elapsed >= t && !run.warned) {
                run.warned = true;
                tracing::warn!(
                    stage = run.stage,
                    partition = run.partition,
                    attempt = run.attempt,
                    worker,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "slow task: stage {} partition {} (attempt {}) on worker {} has run for \
                     {elapsed:.1?}, over ember.task.slowWarning = {limit:?}",
                    run.stage,
                    run.partition,
                    run.attempt,
                    worker
                );
            }
        }
    }
}

impl WatchdogThread {
    /// The watchdog, for the worker threads to report their attempts to.
    pub(crate) fn watchdog(&self) -> &Arc<Watchdog> {
        &self.watchdog
    }
}

impl Drop for WatchdogThread {
    fn drop(&mut self) {
        *self.watchdog.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.watchdog.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
