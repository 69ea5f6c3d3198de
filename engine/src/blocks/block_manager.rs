//! The block manager of one process: cached blocks of every worker thread, charged against
//! per-worker host and device budgets and a per-process disk budget, with LRU eviction and
//! spilling, and the counters of the storage report.
//!
//! Accounting is per worker: a block belongs to the worker that computed it and counts against
//! that worker's budgets. A worker making room evicts only its own blocks, least recently used
//! first, and never blocks of the RDD it is storing. Evicted blocks of `*_AND_DISK` levels are
//! written to the process's spill directory; other evicted blocks are dropped and recomputed from
//! lineage when next read.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde::{Deserialize, Serialize};

use crate::config::Conf;
use crate::error::{EngineError, Result};

use super::codec::{BlockWriter, Codec, Finished};
use super::level::StorageLevel;
use super::report::{RddStorageInfo, StorageMetrics, StorageReport};

/// A block id: the RDD and the partition.
pub(crate) type BlockId = (usize, usize);

/// A change to a worker's cached blocks, reported with the task that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum BlockChange {
    /// The worker now holds block `(rdd, partition)` of this many bytes.
    Added(usize, usize, u64),
    /// The worker no longer holds the block (evicted without a disk copy).
    Removed(usize, usize),
}

/// Encodes a deserialized block into a writer: to a spill file when it is evicted, to memory
/// when a task in another process fetches it.
pub(crate) type EncodeFn = Box<dyn Fn(BlockWriter) -> Result<Finished> + Send + Sync>;

/// What the manager holds for a block, as handed to a reader.
pub(crate) enum Stored {
    /// Deserialized values (an `Arc<Vec<T>>`).
    Values(Arc<dyn Any + Send + Sync>),
    /// An encoded block in memory.
    Bytes(Arc<Vec<u8>>),
    /// An encoded block in a spill file.
    File(PathBuf),
}

/// An in-memory block being handed to the manager.
pub(crate) enum Mem {
    /// Deserialized values and how to spill them.
    Values {
        /// The `Arc<Vec<T>>`.
        data: Arc<dyn Any + Send + Sync>,
        /// Encodes them.
        encode: EncodeFn,
    },
    /// Encoded bytes.
    Bytes(Arc<Vec<u8>>),
}

struct Entry {
    owner: usize,
    level: StorageLevel,
    host: u64,
    device: u64,
    mem: Option<Mem>,
    disk: Option<(PathBuf, u64)>,
    last_use: u64,
}

struct RddMeta {
    name: String,
    partitions: usize,
    level: StorageLevel,
}

#[derive(Default)]
struct State {
    blocks: HashMap<BlockId, Entry>,
    tick: u64,
    host_used: HashMap<usize, u64>,
    device_used: HashMap<usize, u64>,
    peak_worker_host: u64,
    disk_used: u64,
    rdds: BTreeMap<usize, RddMeta>,
    lost: HashSet<BlockId>,
    metrics: StorageMetrics,
    /// Blocks each worker gained or lost since its last task, for the scheduler's registry.
    changes: HashMap<usize, Vec<BlockChange>>,
}

/// Budgets and codecs, fixed when the first worker of the process starts.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub host_budget: u64,
    pub device_budget: u64,
    pub disk_budget: u64,
    /// Codec of serialized in-memory blocks (`ember.rdd.compress`).
    pub rdd_codec: Codec,
    /// Codec of spill files (`ember.io.compression.codec`).
    pub spill_codec: Codec,
    /// This process's spill directory (created on first use, removed with the manager).
    pub spill_dir: PathBuf,
}

/// The default per-worker host budget: 60% of physical memory shared by the process's worker
/// threads (Spark's `spark.memory.fraction`), or 1 GiB where the memory size is unknown.
pub fn default_host_budget(threads: usize) -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    match total {
        Some(t) => t / 10 * 6 / threads.max(1) as u64,
        None => 1 << 30,
    }
}

impl Settings {
    fn from_conf(conf: &Conf, threads: usize) -> Settings {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = conf
            .get("ember.local.dir")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let spill_dir = base.join(format!(
            "ember-blocks-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        Settings {
            host_budget: conf
                .get_bytes("ember.memory.storage")
                .unwrap_or_else(|| default_host_budget(threads)),
            device_budget: conf.get_bytes("ember.memory.device").unwrap_or(u64::MAX),
            disk_budget: conf.get_bytes("ember.memory.disk").unwrap_or(u64::MAX),
            rdd_codec: Codec::for_rdd(conf),
            spill_codec: Codec::new(Codec::configured(conf)),
            spill_dir,
        }
    }
}

/// Cached blocks of one process, shared by its worker threads.
#[derive(Default)]
pub(crate) struct BlockManager {
    settings: OnceLock<Settings>,
    state: Mutex<State>,
    next_file: AtomicU64,
}

impl Drop for BlockManager {
    fn drop(&mut self) {
        if let Some(s) = self.settings.get() {
            if s.spill_dir.exists() {
                if let Err(e) = std::fs::remove_dir_all(&s.spill_dir) {
                    tracing::warn!(dir = %s.spill_dir.display(), error = %e, "could not remove the spill directory");
                }
            }
        }
    }
}

impl BlockManager {
    /// Fixes budgets and codecs from the configuration (the first call wins).
    pub(crate) fn configure(&self, conf: &Conf, threads: usize) {
        self.settings
            .get_or_init(|| Settings::from_conf(conf, threads));
    }

    pub(crate) fn settings(&self) -> &Settings {
        self.settings
            .get_or_init(|| Settings::from_conf(&Conf::new(), 1))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere never leaves the state half-updated, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh spill file path for a block.
    pub(crate) fn new_file(&self, id: BlockId) -> PathBuf {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        self.settings()
            .spill_dir
            .join(format!("rdd_{}_{}_{n}.blk", id.0, id.1))
    }

    /// Records a persisted RDD for the report.
    pub(crate) fn register_rdd(
        &self,
        rdd: usize,
        name: String,
        partitions: usize,
        level: StorageLevel,
    ) {
        self.state().rdds.insert(
            rdd,
            RddMeta {
                name,
                partitions,
                level,
            },
        );
    }

    /// The stored block, if any, with its size in bytes (and marks it recently used).
    pub(crate) fn lookup(&self, id: BlockId) -> Option<(Stored, u64)> {
        let mut st = self.state();
        st.tick += 1;
        let tick = st.tick;
        let e = st.blocks.get_mut(&id)?;
        e.last_use = tick;
        let bytes = e.host + e.disk.as_ref().map_or(0, |d| d.1);
        let stored = match (&e.mem, &e.disk) {
            (Some(Mem::Values { data, .. }), _) => Stored::Values(Arc::clone(data)),
            (Some(Mem::Bytes(b)), _) => Stored::Bytes(Arc::clone(b)),
            (None, Some((path, _))) => Stored::File(path.clone()),
            (None, None) => return None,
        };
        Some((stored, bytes))
    }

    /// A block encoded for another process (a remote fetch): `None` when this process does
    /// not hold it.
    pub(crate) fn encode_block(&self, id: BlockId) -> Option<Result<Vec<u8>>> {
        let codec = self.settings().spill_codec;
        let st = self.state();
        let e = st.blocks.get(&id)?;
        Some(match (&e.mem, &e.disk) {
            (Some(Mem::Values { encode, .. }), _) => match encode(BlockWriter::memory(codec)) {
                Ok(Finished::Memory(b)) => Ok(b),
                Ok(Finished::File { path, .. }) => {
                    std::fs::read(&path).map_err(|e| EngineError::io(path, e))
                }
                Err(e) => Err(e),
            },
            (Some(Mem::Bytes(b)), _) => Ok(b.to_vec()),
            (None, Some((path, _))) => std::fs::read(path).map_err(|e| EngineError::io(path, e)),
            (None, None) => return None,
        })
    }

    /// The block changes of `worker` since the last call (added and dropped blocks).
    pub(crate) fn take_changes(&self, worker: usize) -> Vec<BlockChange> {
        self.state().changes.remove(&worker).unwrap_or_default()
    }

    /// Counts a read served from a stored block.
    pub(crate) fn record_hit(&self) {
        self.state().metrics.hits += 1;
    }

    /// Counts a read that computes the partition (a recomputation if it had been stored).
    pub(crate) fn record_miss(&self, id: BlockId) {
        let mut st = self.state();
        st.metrics.misses += 1;
        if st.lost.remove(&id) {
            st.metrics.recomputations += 1;
        }
    }

    /// Counts a block that could be stored nowhere.
    pub(crate) fn record_dropped(&self, id: BlockId) {
        let mut st = self.state();
        st.metrics.dropped += 1;
        st.lost.insert(id);
    }

    /// A stored block was found missing or corrupt: forgets it so the next read recomputes it.
    pub(crate) fn report_lost(&self, id: BlockId, error: &EngineError) {
        tracing::warn!(rdd = id.0, partition = id.1, %error, "cached block lost; recomputing from lineage");
        let mut st = self.state();
        st.metrics.corrupt_or_missing += 1;
        if let Some(e) = st.blocks.remove(&id) {
            Self::forget(&mut st, e);
        }
        st.lost.insert(id);
    }

    /// Releases an entry's accounting and deletes its spill file.
    fn forget(st: &mut State, e: Entry) {
        Self::release_locked(st, e.owner, e.host, e.device);
        if let Some((path, bytes)) = e.disk {
            st.disk_used = st.disk_used.saturating_sub(bytes);
            let _ = std::fs::remove_file(path);
        }
    }

    fn release_locked(st: &mut State, worker: usize, host: u64, device: u64) {
        if let Some(h) = st.host_used.get_mut(&worker) {
            *h = h.saturating_sub(host);
        }
        if let Some(d) = st.device_used.get_mut(&worker) {
            *d = d.saturating_sub(device);
        }
    }

    /// Reserves memory for a block of `rdd` being stored by `worker`, evicting that worker's
    /// least recently used blocks of other RDDs as needed. False when it cannot fit.
    pub(crate) fn reserve(&self, worker: usize, rdd: usize, host: u64, device: u64) -> bool {
        let s = self.settings().clone();
        let mut st = self.state();
        // Evict only when evicting can make enough room.
        let (mut free_h, mut free_d) = (0u64, 0u64);
        for (id, e) in &st.blocks {
            if e.owner == worker && e.mem.is_some() && id.0 != rdd {
                free_h += e.host;
                free_d += e.device;
            }
        }
        let h = st.host_used.get(&worker).copied().unwrap_or(0);
        let d = st.device_used.get(&worker).copied().unwrap_or(0);
        if (h - free_h.min(h)).saturating_add(host) > s.host_budget
            || (d - free_d.min(d)).saturating_add(device) > s.device_budget
        {
            return false;
        }
        loop {
            let h = st.host_used.get(&worker).copied().unwrap_or(0);
            let d = st.device_used.get(&worker).copied().unwrap_or(0);
            if h + host <= s.host_budget && d.saturating_add(device) <= s.device_budget {
                st.host_used.insert(worker, h + host);
                st.device_used.insert(worker, d + device);
                st.peak_worker_host = st.peak_worker_host.max(h + host);
                return true;
            }
            let victim = st
                .blocks
                .iter()
                .filter(|(id, e)| e.owner == worker && e.mem.is_some() && id.0 != rdd)
                .filter(|(_, e)| {
                    (h + host > s.host_budget && e.host > 0)
                        || (d.saturating_add(device) > s.device_budget && e.device > 0)
                })
                .min_by_key(|(_, e)| e.last_use)
                .map(|(id, _)| *id);
            match victim {
                Some(v) => Self::evict(&mut st, &s, v, self.new_file(v)),
                None => return false,
            }
        }
    }

    /// Returns reserved memory.
    pub(crate) fn release(&self, worker: usize, host: u64, device: u64) {
        Self::release_locked(&mut self.state(), worker, host, device);
    }

    /// Reserves disk space for spill data; false when the disk budget is full.
    pub(crate) fn reserve_disk(&self, bytes: u64) -> bool {
        let budget = self.settings().disk_budget;
        let mut st = self.state();
        if st.disk_used.saturating_add(bytes) <= budget {
            st.disk_used += bytes;
            true
        } else {
            false
        }
    }

    /// Returns reserved disk space.
    pub(crate) fn release_disk(&self, bytes: u64) {
        let mut st = self.state();
        st.disk_used = st.disk_used.saturating_sub(bytes);
    }

    /// Moves a block out of memory: to disk for `*_AND_DISK` levels, else drops it.
    fn evict(st: &mut State, s: &Settings, id: BlockId, path: PathBuf) {
        let Some(mut e) = st.blocks.remove(&id) else {
            return;
        };
        let mem = e.mem.take();
        Self::release_locked(st, e.owner, e.host, e.device);
        e.host = 0;
        e.device = 0;
        st.metrics.evictions += 1;
        tracing::debug!(rdd = id.0, partition = id.1, level = %e.level, "evicting block");
        if e.level.use_disk() && e.disk.is_none() {
            let written = match &mem {
                Some(Mem::Bytes(b)) => {
                    if st.disk_used.saturating_add(b.len() as u64) > s.disk_budget {
                        Err(None)
                    } else {
                        write_file(&path, b).map(|_| b.len() as u64).map_err(Some)
                    }
                }
                Some(Mem::Values { encode, .. }) => BlockWriter::file(s.spill_codec, &path)
                    .and_then(encode)
                    .map(|f| match f {
                        Finished::File { bytes, .. } => bytes,
                        Finished::Memory(b) => b.len() as u64,
                    })
                    .map_err(Some),
                None => Err(None),
            };
            match written {
                Ok(n) if st.disk_used.saturating_add(n) <= s.disk_budget => {
                    st.disk_used += n;
                    st.metrics.spills += 1;
                    e.disk = Some((path, n));
                }
                other => {
                    let _ = std::fs::remove_file(&path);
                    if let Err(Some(err)) = other {
                        tracing::warn!(rdd = id.0, partition = id.1, error = %err, "spill failed; dropping the block");
                    }
                    st.metrics.dropped += 1;
                    st.lost.insert(id);
                    st.changes
                        .entry(e.owner)
                        .or_default()
                        .push(BlockChange::Removed(id.0, id.1));
                    return;
                }
            }
        }
        if e.disk.is_some() {
            st.blocks.insert(id, e);
        } else {
            st.lost.insert(id);
            st.changes
                .entry(e.owner)
                .or_default()
                .push(BlockChange::Removed(id.0, id.1));
        }
    }

    /// Stores a block. Memory (`host`, `device`) and disk bytes must have been reserved.
    pub(crate) fn put(
        &self,
        id: BlockId,
        worker: usize,
        level: StorageLevel,
        mem: Option<(Mem, u64, u64)>,
        disk: Option<(PathBuf, u64)>,
    ) {
        let mut st = self.state();
        st.tick += 1;
        let (mem, host, device) = match mem {
            Some((m, h, d)) => (Some(m), h, d),
            None => (None, 0, 0),
        };
        if disk.is_some() {
            st.metrics.spills += u64::from(level != StorageLevel::DiskOnly);
        }
        let entry = Entry {
            owner: worker,
            level,
            host,
            device,
            mem,
            disk,
            last_use: st.tick,
        };
        st.lost.remove(&id);
        let bytes = host + entry.disk.as_ref().map_or(0, |d| d.1);
        st.changes
            .entry(worker)
            .or_default()
            .push(BlockChange::Added(id.0, id.1, bytes));
        if let Some(old) = st.blocks.insert(id, entry) {
            Self::forget(&mut st, old);
        }
    }

    /// Drops the blocks of `rdd` that `worker` stored (each worker drops its own, at the same
    /// point of the driver code); the RDD leaves the report with its last block.
    pub(crate) fn remove_rdd(&self, rdd: usize, worker: usize) {
        let mut st = self.state();
        let ids: Vec<BlockId> = st
            .blocks
            .iter()
            .filter(|(id, e)| id.0 == rdd && e.owner == worker)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(e) = st.blocks.remove(&id) {
                Self::forget(&mut st, e);
            }
        }
        if !st.blocks.keys().any(|id| id.0 == rdd) {
            st.lost.retain(|id| id.0 != rdd);
            st.rdds.remove(&rdd);
        }
    }

    /// Evicts every in-memory block (spilling `*_AND_DISK` ones), as memory pressure would.
    pub(crate) fn evict_all(&self) {
        let s = self.settings().clone();
        let mut st = self.state();
        let ids: Vec<BlockId> = st
            .blocks
            .iter()
            .filter(|(_, e)| e.mem.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            Self::evict(&mut st, &s, id, self.new_file(id));
        }
    }

    /// The accounting of this process.
    pub(crate) fn report(&self) -> StorageReport {
        let s = self.settings().clone();
        let st = self.state();
        let mut rdds: Vec<RddStorageInfo> = st
            .rdds
            .iter()
            .map(|(&rdd, m)| RddStorageInfo {
                rdd,
                name: m.name.clone(),
                level: m.level,
                partitions: m.partitions,
                cached_partitions: 0,
                host_bytes: 0,
                device_bytes: 0,
                disk_bytes: 0,
            })
            .collect();
        for (id, e) in &st.blocks {
            if let Some(r) = rdds.iter_mut().find(|r| r.rdd == id.0) {
                r.cached_partitions += 1;
                r.host_bytes += e.host;
                r.device_bytes += e.device;
                r.disk_bytes += e.disk.as_ref().map_or(0, |d| d.1);
            }
        }
        StorageReport {
            rdds,
            host_budget: s.host_budget,
            device_budget: s.device_budget,
            disk_budget: s.disk_budget,
            host_used: st.host_used.values().sum(),
            device_used: st.device_used.values().sum(),
            disk_used: st.disk_used,
            peak_worker_host: st.peak_worker_host,
            metrics: st.metrics,
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| EngineError::io(path, e))
}
