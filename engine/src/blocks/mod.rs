//! Persistence: storage levels, the deep-size trait, the block codec and the per-process block
//! manager that keeps cached partitions within budgets.
//!
//! A cached partition is one block keyed by (RDD id, partition) in a manager shared by the
//! worker threads of a process. Blocks are written by the worker that computed the partition
//! and count against that worker's budgets:
//!
//! - `ember.memory.storage`: host bytes per worker. Default: 60% of physical memory divided by
//!   the process's worker threads (1 GiB per worker where memory size is unknown).
//! - `ember.memory.device`: device (GPU) bytes per worker. Default: unlimited.
//! - `ember.memory.disk`: spill-file bytes per process. Default: unlimited.
//!
//! Blocks are sized element by element with [`SizeOf`] while they are materialized, so a
//! partition that cannot fit is spilled (`*_AND_DISK`) or left uncached (`MEMORY_ONLY*`) before
//! it overflows the budget. Serialized blocks and spill files share one [`codec`]. Spill files
//! live in one directory per process under `ember.local.dir`, removed when the application ends.
//! A block that is missing or corrupt when read is recomputed from lineage, and every such
//! event is counted in the [`StorageReport`].

pub mod codec;
pub mod pod;
pub mod report;

mod block_manager;
mod level;
mod persist;
mod reservation;
mod size;

pub use block_manager::default_host_budget;
pub(crate) use block_manager::{BlockChange, BlockManager};
pub use level::StorageLevel;
pub(crate) use persist::{read_or_compute, Sizer};
pub use report::{human_bytes, RddStorageInfo, StorageMetrics, StorageReport};
pub use reservation::MemoryReservation;
pub(crate) use size::size_pair;
pub use size::SizeOf;
