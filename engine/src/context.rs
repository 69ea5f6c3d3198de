//! The context: one per worker, the handle driver code uses to create RDDs, broadcasts and
//! accumulators, and through which actions run jobs.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex};

use timely::worker::Worker;

use crate::accumulator::{AccSlot, AccUpdate, Accumulator, AccumulatorValue};
use crate::blocks::{BlockManager, StorageReport};
use crate::broadcast::Broadcast;
use crate::config::Conf;
use crate::data::Data;
use crate::error::{EngineError, Result};
use crate::exchange::Round;
use crate::peers::Peers;
use crate::rdd::source::{ParallelCollection, RangeSource};
use crate::rdd::text::TextFile;
use crate::rdd::Rdd;
use crate::scheduler::{BlockRegistry, Event, EventLog, LocalityWaits, Topology};

/// State shared by the worker threads of one process: shuffle outputs, cached blocks,
/// broadcast values, and the flag that tells workers a peer has stopped.
#[derive(Default)]
pub(crate) struct ProcessShared {
    /// Whether the application was aborted, and which workers' driver code returned.
    pub peers: Arc<Peers>,
    /// Shuffle outputs by (shuffle id, reduce partition).
    pub shuffles: Mutex<HashMap<(usize, usize), Arc<dyn Any + Send + Sync>>>,
    /// Cached RDD blocks.
    pub blocks: Arc<BlockManager>,
    /// Where `checkpoint()` writes (`set_checkpoint_dir`, or `ember.checkpoint.dir`).
    pub checkpoint_dir: Mutex<Option<std::path::PathBuf>>,
    /// Broadcast values being handed to this process's workers, with how many have taken theirs.
    pub broadcasts: Mutex<HashMap<usize, (Arc<dyn Any + Send + Sync>, usize)>>,
    /// Worker threads in this process.
    pub threads: usize,
    /// The event log, when `ember.eventLog.dir` is set (written by worker 0 only).
    pub events: Mutex<Option<EventLog>>,
    /// Values shared by this process's workers, by key ([`Context::process_value`]).
    pub values: Mutex<HashMap<String, std::sync::Weak<dyn Any + Send + Sync>>>,
}

pub(crate) struct ContextInner {
    pub worker: Worker,
    pub conf: Conf,
    pub shared: Arc<ProcessShared>,
    pub max_failures: usize,
    pub default_parallelism: usize,
    next_rdd: Cell<usize>,
    next_shuffle: Cell<usize>,
    next_job: Cell<usize>,
    next_stage: Cell<usize>,
    next_broadcast: Cell<usize>,
    next_accumulator: Cell<usize>,
    next_round: Cell<u64>,
    accumulators: RefCell<HashMap<usize, Weak<dyn AccSlot>>>,
    /// Where cached blocks live (kept up to date on worker 0, the coordinator).
    pub registry: RefCell<BlockRegistry>,
    topology: Topology,
    waits: Cell<LocalityWaits>,
}

/// The entry point of driver code on one worker (Spark's `SparkContext`).
///
/// Every worker runs the same driver closure with its own `Context`, builds the same RDDs in the
/// same order, and gets the same result from every action.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Rc<ContextInner>,
}

impl Context {
    pub(crate) fn new(worker: Worker, conf: Conf, shared: Arc<ProcessShared>) -> Context {
        let peers = worker.peers();
        let max_failures = conf.get_usize("ember.task.maxFailures").unwrap_or(4);
        let default_parallelism = conf.get_usize("ember.default.parallelism").unwrap_or(peers);
        crate::task::set_worker(worker.index());
        let topology = Topology::from_conf(&conf);
        let waits = Cell::new(LocalityWaits::from_conf(&conf));
        shared.blocks.configure(&conf, shared.threads);
        if let Some(dir) = conf.get("ember.checkpoint.dir") {
            let mut slot = shared.checkpoint_dir.lock().expect("checkpoint dir lock");
            slot.get_or_insert_with(|| dir.into());
        }
        Context {
            inner: Rc::new(ContextInner {
                worker,
                conf,
                shared,
                max_failures,
                default_parallelism,
                next_rdd: Cell::new(0),
                next_shuffle: Cell::new(0),
                next_job: Cell::new(0),
                next_stage: Cell::new(0),
                next_broadcast: Cell::new(0),
                next_accumulator: Cell::new(0),
                next_round: Cell::new(0),
                accumulators: RefCell::new(HashMap::new()),
                registry: RefCell::new(BlockRegistry::default()),
                topology,
                waits,
            }),
        }
    }

    /// This worker's index among all workers (0-based).
    pub fn worker_index(&self) -> usize {
        self.inner.worker.index()
    }

    /// Whether this is worker 0, the one that plays Spark's driver: it coordinates stages, and
    /// its result is what [`crate::run`] returns. Driver code that writes to a terminal or a
    /// side channel does it once with `if ctx.is_driver() { .. }`.
    pub fn is_driver(&self) -> bool {
        self.worker_index() == 0
    }

    /// Total number of workers across all processes.
    pub fn num_workers(&self) -> usize {
        self.inner.worker.peers()
    }

    /// The application's configuration.
    pub fn conf(&self) -> &Conf {
        &self.inner.conf
    }

    /// Partitions used when an operation is not told how many (`ember.default.parallelism`).
    pub fn default_parallelism(&self) -> usize {
        self.inner.default_parallelism
    }

    pub(crate) fn shared(&self) -> &Arc<ProcessShared> {
        &self.inner.shared
    }

    /// Where the workers live.
    pub(crate) fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// The delay-scheduling waits of the stages this context submits.
    pub fn locality_waits(&self) -> LocalityWaits {
        self.inner.waits.get()
    }

    /// Changes the delay-scheduling waits for later jobs (Spark fixes them in the
    /// configuration; here a job can be tuned, or a test can compare waits on one cached RDD).
    /// Like every driver call it must run on every worker; the coordinator (worker 0) uses it.
    pub fn set_locality_waits(&self, waits: LocalityWaits) {
        self.inner.waits.set(waits);
    }

    /// Appends an event to the event log (worker 0 only; a no-op without a log).
    pub(crate) fn log_event(&self, event: &Event) {
        if self.worker_index() != 0 {
            return;
        }
        if let Ok(mut log) = self.inner.shared.events.lock() {
            if let Some(log) = log.as_mut() {
                log.log(event);
            }
        }
    }

    /// Makes the logged events visible (end of a job).
    pub(crate) fn flush_events(&self) {
        if self.worker_index() != 0 {
            return;
        }
        if let Ok(mut log) = self.inner.shared.events.lock() {
            if let Some(log) = log.as_mut() {
                log.flush();
            }
        }
    }

    fn bump(cell: &Cell<usize>) -> usize {
        let v = cell.get();
        cell.set(v + 1);
        v
    }

    pub(crate) fn new_rdd_id(&self) -> usize {
        Self::bump(&self.inner.next_rdd)
    }
    pub(crate) fn new_shuffle_id(&self) -> usize {
        Self::bump(&self.inner.next_shuffle)
    }
    pub(crate) fn new_job_id(&self) -> usize {
        Self::bump(&self.inner.next_job)
    }
    pub(crate) fn new_stage_id(&self) -> usize {
        Self::bump(&self.inner.next_stage)
    }

    /// Opens an exchange round (see [`crate::exchange`]).
    pub(crate) fn round<D: timely::ExchangeData + Clone>(&self, name: &str) -> Round<D> {
        let seq = self.inner.next_round.get();
        self.inner.next_round.set(seq + 1);
        Round::open(&self.inner.worker, &self.inner.shared.peers, seq, name)
    }

    /// Steps this worker's dataflows until `done` holds (a differential dataflow catching up),
    /// stopping with an error when a peer cannot take part. It counts as an exchange round, so
    /// that a peer that returned early is noticed as it is in a round.
    pub(crate) fn step_until(&self, name: &str, mut done: impl FnMut() -> bool) -> Result<()> {
        let seq = self.inner.next_round.get();
        self.inner.next_round.set(seq + 1);
        let mut worker = self.inner.worker.clone();
        while !done() {
            self.inner.shared.peers.check(seq, name)?;
            worker.step_or_park(Some(std::time::Duration::from_millis(1)));
        }
        Ok(())
    }

    /// This worker's timely worker, to build differential dataflows on.
    pub(crate) fn timely_worker(&self) -> Worker {
        self.inner.worker.clone()
    }

    /// How many exchange rounds this worker has opened.
    pub(crate) fn rounds_opened(&self) -> u64 {
        self.inner.next_round.get()
    }

    /// One partition per `(values, workers)` pair, preferably computed on those workers (Spark's
    /// `makeRDD` with location preferences): data that lives with particular workers, or a test
    /// that needs blocks cached in a known place. Worker indices beyond the cluster are ignored.
    #[track_caller]
    pub fn make_rdd<T: Data>(&self, parts: Vec<(Vec<T>, Vec<usize>)>) -> Result<Rdd<T>> {
        check_partitions("make_rdd", parts.len())?;
        Ok(Rdd::from_source(
            self,
            "make_rdd",
            ParallelCollection::with_locations(parts),
        ))
    }

    /// Distributes `values` over `partitions` partitions, keeping their order.
    #[track_caller]
    pub fn parallelize<T: Data>(&self, values: Vec<T>, partitions: usize) -> Result<Rdd<T>> {
        check_partitions("parallelize", partitions)?;
        Ok(Rdd::from_source(
            self,
            "parallelize",
            ParallelCollection::new(values, partitions),
        ))
    }

    /// The integers `start, start + step, ...` below `end` (above it for a negative step).
    #[track_caller]
    pub fn range(&self, start: i64, end: i64, step: i64, partitions: usize) -> Result<Rdd<i64>> {
        check_partitions("range", partitions)?;
        if step == 0 {
            return Err(EngineError::InvalidArgument {
                operation: "range".into(),
                reason: "step must not be 0".into(),
            });
        }
        Ok(Rdd::from_source(
            self,
            "range",
            RangeSource::new(start, end, step, partitions),
        ))
    }

    /// The lines of a text file, of every visible file of a directory (names starting with `_`
    /// or `.` are skipped), or of a glob, at a path or any storage URL (`s3://`, `memory://`,
    /// `hdfs://`...), split into at least `min_partitions` byte ranges cut at line ends (`None`:
    /// the default parallelism, `ember.default.parallelism` or the number of workers).
    /// Compressed files (`.gz`, `.lz4`) are read whole.
    ///
    /// Invalid UTF-8 fails the job with the URL and byte offset, unless `ember.text.invalidUtf8`
    /// is `lossy`.
    ///
    /// Each line becomes an owned `String`; a job that parses or filters its lines right away
    /// is about twice as fast with [`Context::text_file_filter_map`], which skips that copy.
    #[track_caller]
    pub fn text_file(
        &self,
        path: impl AsRef<Path>,
        min_partitions: impl Into<Option<usize>>,
    ) -> Result<Rdd<String>> {
        self.text_source("text_file", path.as_ref(), min_partitions, |line: &str| {
            Some(line.to_owned())
        })
    }

    /// The lines of a text file (as [`Context::text_file`]) parsed as they are read: `f` sees
    /// each line borrowed from the reader's buffer and keeps what it returns; `None` drops the
    /// line. The same as `text_file(path, n)?.flat_map(|line| f(&line))`, without building a
    /// `String` per line first: on log-like text that copy costs about as much as reading and
    /// splitting the lines (see `benches/storage/README.md`).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("log.txt");
    /// std::fs::write(&path, "INFO up\nERROR disk full\nINFO ok\nERROR disk full\n").unwrap();
    /// let errors = ember_engine::run(ember_engine::Conf::new(), move |ctx| {
    ///     ctx.text_file_filter_map(&path, 2, |line| {
    ///         line.strip_prefix("ERROR ").map(str::to_owned)
    ///     })?
    ///     .collect()
    /// })
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(errors, ["disk full", "disk full"]);
    /// ```
    #[track_caller]
    pub fn text_file_filter_map<T: Data>(
        &self,
        path: impl AsRef<Path>,
        min_partitions: impl Into<Option<usize>>,
        f: impl Fn(&str) -> Option<T> + 'static,
    ) -> Result<Rdd<T>> {
        self.text_source("text_file_filter_map", path.as_ref(), min_partitions, f)
    }

    #[track_caller]
    fn text_source<T: Data>(
        &self,
        op: &str,
        path: &Path,
        min_partitions: impl Into<Option<usize>>,
        f: impl Fn(&str) -> Option<T> + 'static,
    ) -> Result<Rdd<T>> {
        let min_partitions = min_partitions
            .into()
            .unwrap_or_else(|| self.default_parallelism());
        check_partitions(op, min_partitions)?;
        let lossy = self.conf().get("ember.text.invalidUtf8") == Some("lossy");
        let url = path.to_string_lossy();
        let source = TextFile::open(&url, min_partitions, lossy, self.conf().storage_config(), f)?;
        Ok(Rdd::from_source(self, op, source))
    }

    /// `(url, whole text)` of every file matched by `path` (Spark's `wholeTextFiles`), one file
    /// per partition.
    #[track_caller]
    pub fn whole_text_files(&self, path: impl AsRef<Path>) -> Result<Rdd<(String, String)>> {
        let config = self.conf().storage_config();
        let pattern = path.as_ref().to_string_lossy().into_owned();
        let files = ember_storage::list_inputs(&pattern, &config)?;
        let urls: Vec<String> = files.iter().map(|f| f.url().to_string()).collect();
        let lossy = self.conf().get("ember.text.invalidUtf8") == Some("lossy");
        let source = crate::rdd::formats::WholeFiles::new(pattern, urls, config, lossy);
        Ok(Rdd::from_source(self, "whole_text_files", source))
    }

    /// This worker's memory budgets `(host, device)` in bytes (`ember.memory.storage`,
    /// `ember.memory.device`): what cached blocks and [`Context::reserve_memory`] share. The same
    /// on every worker of an application configured alike, so a check against it gives every
    /// worker the same verdict.
    pub fn memory_budget(&self) -> (u64, u64) {
        let s = self.shared().blocks.settings();
        (s.host_budget, s.device_budget)
    }

    /// Reserves `host` and `device` bytes on this worker for `what` (named in the error),
    /// evicting this worker's least recently used cached blocks to make room (to disk for
    /// `*_AND_DISK` levels, as memory pressure would). Fails when the budget cannot hold it even
    /// with every evictable block gone. The bytes count until the reservation is dropped.
    pub fn reserve_memory(
        &self,
        what: &str,
        host: u64,
        device: u64,
    ) -> Result<crate::blocks::MemoryReservation> {
        crate::blocks::MemoryReservation::new(
            &self.shared().blocks,
            self.worker_index(),
            what,
            host,
            device,
        )
    }

    /// Shares `value` with every task, one copy per process. Worker 0's value is the one used.
    pub fn broadcast<T: Data>(&self, value: T) -> Result<Broadcast<T>> {
        let id = Self::bump(&self.inner.next_broadcast);
        let threads = self.inner.shared.threads;
        let mut round = self.round::<T>("broadcast");
        if self.worker_index() == 0 {
            // The first worker of each process receives the value and shares it in-process.
            let processes = self.num_workers() / threads;
            for p in 0..processes {
                round.send(p * threads, value.clone());
            }
        }
        drop(value);
        let received = round.finish()?;
        if let Some(v) = received.into_iter().next() {
            self.inner
                .shared
                .broadcasts
                .lock()
                .expect("broadcast lock")
                .insert(id, (Arc::new(v), 0));
        }
        // A second round guarantees the value is registered before anyone reads it.
        self.round::<()>("broadcast-barrier").finish()?;
        let mut map = self.inner.shared.broadcasts.lock().expect("broadcast lock");
        let entry = map
            .get_mut(&id)
            .expect("broadcast registered by this process's first worker");
        let value = Arc::clone(&entry.0)
            .downcast::<T>()
            .expect("broadcast id maps to one type");
        // Once every worker of this process took its handle, the registry forgets the value.
        entry.1 += 1;
        if entry.1 == threads {
            map.remove(&id);
        }
        Ok(Broadcast::new(id, value))
    }

    /// A new accumulator starting at `initial`.
    pub fn accumulator<T: AccumulatorValue>(&self, initial: T) -> Accumulator<T> {
        let id = Self::bump(&self.inner.next_accumulator);
        let (acc, slot) = Accumulator::new(id, initial);
        self.inner.accumulators.borrow_mut().insert(id, slot);
        acc
    }

    /// Applies accumulator updates received from successful tasks.
    pub(crate) fn apply_acc_updates(&self, updates: &[AccUpdate]) -> Result<()> {
        let mut accs = self.inner.accumulators.borrow_mut();
        for u in updates {
            match accs.get(&u.id).and_then(Weak::upgrade) {
                Some(slot) => slot.merge_bytes(&u.bytes)?,
                None => {
                    accs.remove(&u.id);
                }
            }
        }
        Ok(())
    }

    /// Sets the directory where `Rdd::checkpoint` writes (a local path; shared by every
    /// process in cluster mode). Fails, naming it, when it cannot be created or written.
    pub fn set_checkpoint_dir(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        crate::checkpoint::check_writable(dir, &self.conf().storage_config())?;
        *self
            .inner
            .shared
            .checkpoint_dir
            .lock()
            .expect("checkpoint dir lock") = Some(dir.into());
        Ok(())
    }

    /// The checkpoint directory, if set.
    pub fn checkpoint_dir(&self) -> Option<std::path::PathBuf> {
        self.inner
            .shared
            .checkpoint_dir
            .lock()
            .expect("checkpoint dir lock")
            .clone()
    }

    /// The block manager's accounting for this process: persisted RDDs with their levels,
    /// cached partitions and host/device/disk bytes, budgets, and hit/miss/eviction counters.
    pub fn storage_report(&self) -> StorageReport {
        self.inner.shared.blocks.report()
    }

    /// Evicts every cached block of this process from memory, as memory pressure would:
    /// `*_AND_DISK` blocks go to disk, others are dropped (and recomputed when read).
    pub fn evict_cached_blocks(&self) {
        self.inner.shared.blocks.evict_all();
    }

    /// The value that this application's worker threads in this process share under `key`:
    /// made with `init` by the first worker that asks, handed to the others while any of them
    /// still holds it, made afresh once all have dropped it (Spark's executor-wide singletons,
    /// e.g. a pool of model copies for the tasks of one job). Workers in other processes have
    /// their own. Asking for a key with another type than it was made with is an error.
    pub fn process_value<T: Any + Send + Sync>(
        &self,
        key: &str,
        init: impl FnOnce() -> T,
    ) -> Result<Arc<T>> {
        let mut values = self
            .inner
            .shared
            .values
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        values.retain(|_, v| v.strong_count() > 0);
        if let Some(v) = values.get(key).and_then(|w| w.upgrade()) {
            return v
                .downcast::<T>()
                .map_err(|_| crate::error::EngineError::InvalidArgument {
                    operation: "process_value".into(),
                    reason: format!(
                        "key {key:?} holds a value of another type than {}",
                        std::any::type_name::<T>()
                    ),
                });
        }
        let v = Arc::new(init());
        let erased: Arc<dyn Any + Send + Sync> = v.clone();
        values.insert(key.to_string(), Arc::downgrade(&erased));
        Ok(v)
    }

    /// This process's spill directory (it may not exist yet).
    pub fn spill_dir(&self) -> std::path::PathBuf {
        self.inner.shared.blocks.settings().spill_dir.clone()
    }

    /// The union of several RDDs of the same type.
    #[track_caller]
    pub fn union<T: Data>(&self, rdds: &[Rdd<T>]) -> Result<Rdd<T>> {
        Rdd::union_all(self, rdds)
    }
}

pub(crate) fn check_partitions(operation: &str, partitions: usize) -> Result<()> {
    if partitions == 0 {
        Err(EngineError::InvalidArgument {
            operation: operation.into(),
            reason: "the number of partitions must be at least 1".into(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Conf;

    #[test]
    fn rounds_deliver_everything_with_three_workers() {
        for w in [3, 5, 6] {
            let conf = Conf::new()
                .with("ember.master", &format!("local[{w}]"))
                .unwrap();
            let out = crate::run_all(conf, move |ctx| {
                let mut counts = Vec::new();
                for r in 0..20 {
                    let mut round = ctx.round::<(usize, usize)>("t");
                    round.send_to_all((ctx.worker_index(), r));
                    let got = round.finish().unwrap();
                    counts.push(got.len());
                }
                counts
            })
            .unwrap();
            for c in out {
                assert_eq!(c, vec![w; 20], "w={w}");
            }
        }
    }

    #[test]
    fn broadcast_reaches_every_worker_with_worker_zeros_value() {
        for w in 1..=4 {
            let conf = Conf::new()
                .with("ember.master", &format!("local[{w}]"))
                .unwrap();
            let out = crate::run_all(conf, |ctx| {
                let b = ctx
                    .broadcast(vec![ctx.worker_index() as u64 + 7; 3])
                    .unwrap();
                let b2 = b.clone();
                let sum = ctx
                    .range(0, 30, 1, 6)
                    .unwrap()
                    .map(move |i| b2[(i % 3) as usize])
                    .fold(0, |a, x| a + x);
                (
                    b[0],
                    sum.unwrap(),
                    ctx.shared().broadcasts.lock().unwrap().len(),
                )
            })
            .unwrap();
            assert_eq!(out, vec![(7, 210, 0); w], "w={w}");
        }
    }
}
