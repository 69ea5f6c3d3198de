//! Storage levels: where a persisted RDD keeps its partitions, and in which form.

use std::fmt;
use std::str::FromStr;

use crate::error::EngineError;

/// Where and how a persisted RDD keeps its partitions (Spark's storage levels without
/// replication). Displayed and parsed with Spark's names (`MEMORY_AND_DISK_SER`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageLevel {
    /// Deserialized values in memory. A block that does not fit the budget is not kept, and a
    /// block that is evicted is dropped: both are recomputed from lineage when read.
    MemoryOnly,
    /// Deserialized values in memory; blocks that do not fit, or are evicted, go to disk.
    MemoryAndDisk,
    /// Serialized (and by default compressed) bytes in memory: smaller, slower to read.
    MemoryOnlySer,
    /// Serialized bytes in memory; blocks that do not fit, or are evicted, go to disk.
    MemoryAndDiskSer,
    /// Serialized bytes on local disk only.
    DiskOnly,
}

impl StorageLevel {
    /// Every level, in Spark's order.
    pub const ALL: [StorageLevel; 5] = [
        StorageLevel::MemoryOnly,
        StorageLevel::MemoryAndDisk,
        StorageLevel::MemoryOnlySer,
        StorageLevel::MemoryAndDiskSer,
        StorageLevel::DiskOnly,
    ];

    /// Whether blocks may live in memory.
    pub fn use_memory(self) -> bool {
        self != StorageLevel::DiskOnly
    }

    /// Whether blocks may live on disk (written when they do not fit or are evicted).
    pub fn use_disk(self) -> bool {
        matches!(
            self,
            StorageLevel::MemoryAndDisk | StorageLevel::MemoryAndDiskSer | StorageLevel::DiskOnly
        )
    }

    /// Whether in-memory blocks are kept as deserialized values (rather than encoded bytes).
    pub fn deserialized(self) -> bool {
        matches!(self, StorageLevel::MemoryOnly | StorageLevel::MemoryAndDisk)
    }

    /// Spark's name of the level.
    pub fn name(self) -> &'static str {
        match self {
            StorageLevel::MemoryOnly => "MEMORY_ONLY",
            StorageLevel::MemoryAndDisk => "MEMORY_AND_DISK",
            StorageLevel::MemoryOnlySer => "MEMORY_ONLY_SER",
            StorageLevel::MemoryAndDiskSer => "MEMORY_AND_DISK_SER",
            StorageLevel::DiskOnly => "DISK_ONLY",
        }
    }
}

impl fmt::Display for StorageLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StorageLevel {
    type Err = EngineError;

    /// Parses Spark's names, case-insensitively (`memory_only_ser` works too).
    fn from_str(s: &str) -> Result<Self, EngineError> {
        StorageLevel::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| EngineError::InvalidArgument {
                operation: "StorageLevel::from_str".into(),
                reason: format!(
                    "`{s}` is not a storage level (expected one of {})",
                    StorageLevel::ALL.map(StorageLevel::name).join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in StorageLevel::ALL {
            assert_eq!(l.to_string().parse::<StorageLevel>().unwrap(), l);
        }
        assert_eq!(
            "memory_and_disk_ser".parse::<StorageLevel>().unwrap(),
            StorageLevel::MemoryAndDiskSer
        );
        assert!("MEMORY_ONLY_2".parse::<StorageLevel>().is_err());
    }
}
