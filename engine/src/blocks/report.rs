//! The storage report: what the block manager holds per persisted RDD, and its counters (the
//! equivalent of Spark's Storage tab).

use std::fmt;

use super::level::StorageLevel;

/// Counters of one process's block manager since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageMetrics {
    /// Reads of a persisted partition served from memory or disk.
    pub hits: u64,
    /// Reads of a persisted partition that had to compute it.
    pub misses: u64,
    /// Misses of blocks that had been stored before and were lost (evicted, dropped, spill
    /// file missing or corrupt): the partition was recomputed from lineage.
    pub recomputations: u64,
    /// Blocks removed from memory to make room.
    pub evictions: u64,
    /// Blocks written to disk because memory could not hold them (evicted or too large).
    pub spills: u64,
    /// Blocks not stored at all because neither memory nor the disk budget could hold them.
    pub dropped: u64,
    /// Stored blocks found missing or corrupt when read.
    pub corrupt_or_missing: u64,
}

/// What one persisted RDD holds in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RddStorageInfo {
    /// The RDD's id.
    pub rdd: usize,
    /// Its operation and call site, e.g. `map at examples/x.rs:12`.
    pub name: String,
    /// Its storage level.
    pub level: StorageLevel,
    /// Partitions of the RDD.
    pub partitions: usize,
    /// Partitions with a stored block (in memory or on disk).
    pub cached_partitions: usize,
    /// Host bytes held in memory.
    pub host_bytes: u64,
    /// Device bytes held.
    pub device_bytes: u64,
    /// Bytes in spill files.
    pub disk_bytes: u64,
}

/// The block manager's accounting for one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageReport {
    /// Persisted RDDs, by id.
    pub rdds: Vec<RddStorageInfo>,
    /// Host bytes budget per worker (`ember.memory.storage`).
    pub host_budget: u64,
    /// Device bytes budget per worker (`ember.memory.device`).
    pub device_budget: u64,
    /// Disk budget for the process's spill files (`ember.memory.disk`; `u64::MAX` = unlimited).
    pub disk_budget: u64,
    /// Host bytes held now, all workers of the process.
    pub host_used: u64,
    /// Device bytes held now.
    pub device_used: u64,
    /// Spill file bytes now.
    pub disk_used: u64,
    /// The largest host bytes any one worker held at once.
    pub peak_worker_host: u64,
    /// Counters.
    pub metrics: StorageMetrics,
}

impl StorageReport {
    /// The entry of one RDD, if it is persisted.
    pub fn rdd(&self, id: usize) -> Option<&RddStorageInfo> {
        self.rdds.iter().find(|r| r.rdd == id)
    }
}

/// Bytes as Spark's UI shows them: `512.0 B`, `1.5 MiB`.
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

impl fmt::Display for StorageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<5} {:<40} {:<20} {:>8} {:>12} {:>12} {:>12}",
            "id", "RDD", "Storage Level", "Cached", "Memory", "Device", "Disk"
        )?;
        for r in &self.rdds {
            let mut name = r.name.clone();
            if name.len() > 40 {
                name = format!("...{}", &name[name.len() - 37..]);
            }
            writeln!(
                f,
                "{:<5} {:<40} {:<20} {:>8} {:>12} {:>12} {:>12}",
                r.rdd,
                name,
                r.level.to_string(),
                format!("{}/{}", r.cached_partitions, r.partitions),
                human_bytes(r.host_bytes),
                human_bytes(r.device_bytes),
                human_bytes(r.disk_bytes)
            )?;
        }
        let budget = |b: u64| {
            if b == u64::MAX {
                "unlimited".to_string()
            } else {
                human_bytes(b)
            }
        };
        let disk_budget = budget(self.disk_budget);
        writeln!(
            f,
            "memory {} used (budget {} per worker, peak {} on one worker), device {} (budget {}), disk {} (budget {})",
            human_bytes(self.host_used),
            human_bytes(self.host_budget),
            human_bytes(self.peak_worker_host),
            human_bytes(self.device_used),
            budget(self.device_budget),
            human_bytes(self.disk_used),
            disk_budget
        )?;
        let m = &self.metrics;
        write!(
            f,
            "hits {} misses {} recomputations {} evictions {} spills {} dropped {} corrupt/missing {}",
            m.hits, m.misses, m.recomputations, m.evictions, m.spills, m.dropped, m.corrupt_or_missing
        )
    }
}
