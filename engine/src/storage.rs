//! Persistence levels and the per-process store of cached blocks.
//!
//! A cached partition is kept as one block keyed by (RDD id, partition) in a store shared by the
//! worker threads of a process. Blocks are written by the worker that computed the partition and
//! are read back by later jobs; a missing block is simply recomputed from lineage.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Where and how a persisted RDD keeps its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageLevel {
    /// Deserialized values in memory; a block that is not there is recomputed from lineage.
    MemoryOnly,
}

impl fmt::Display for StorageLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageLevel::MemoryOnly => "MEMORY_ONLY",
        })
    }
}

/// A block id: the RDD and the partition.
pub(crate) type BlockId = (usize, usize);

/// Cached blocks of one process, shared by its worker threads.
#[derive(Default)]
pub(crate) struct BlockStore {
    blocks: Mutex<HashMap<BlockId, Arc<dyn Any + Send + Sync>>>,
}

impl BlockStore {
    /// The block, if present and of the expected type.
    pub(crate) fn get<T: Send + Sync + 'static>(&self, id: BlockId) -> Option<Arc<Vec<T>>> {
        let block = self
            .blocks
            .lock()
            .expect("block store lock")
            .get(&id)
            .cloned()?;
        block.downcast::<Vec<T>>().ok()
    }

    /// Stores a block, replacing any earlier one.
    pub(crate) fn put<T: Send + Sync + 'static>(&self, id: BlockId, values: Arc<Vec<T>>) {
        self.blocks
            .lock()
            .expect("block store lock")
            .insert(id, values);
    }

    /// Drops one block.
    pub(crate) fn remove(&self, id: BlockId) {
        self.blocks.lock().expect("block store lock").remove(&id);
    }

    /// Partitions of `rdd` held in this process.
    pub(crate) fn cached_partitions(&self, rdd: usize) -> Vec<usize> {
        let mut parts: Vec<usize> = self
            .blocks
            .lock()
            .expect("block store lock")
            .keys()
            .filter(|(r, _)| *r == rdd)
            .map(|(_, p)| *p)
            .collect();
        parts.sort_unstable();
        parts
    }
}
