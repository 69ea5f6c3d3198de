//! Memory that is not a cached block but lives on a worker as long as a job needs it (a model
//! copy per task thread, a lookup table): reserved against the worker's budgets of the block
//! manager, so cached blocks make room for it and a request larger than the budget is an error
//! before anything is allocated, never an out-of-memory crash.

use std::sync::Arc;

use super::block_manager::BlockManager;
use crate::error::{EngineError, Result};

/// Host and device bytes held against one worker's budgets until dropped (made by
/// `Context::reserve_memory`). It can move to another thread of the process.
pub struct MemoryReservation {
    blocks: Arc<BlockManager>,
    worker: usize,
    host: u64,
    device: u64,
}

impl MemoryReservation {
    /// Host bytes held.
    pub fn host_bytes(&self) -> u64 {
        self.host
    }

    /// Device bytes held.
    pub fn device_bytes(&self) -> u64 {
        self.device
    }
}

impl std::fmt::Debug for MemoryReservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReservation")
            .field("worker", &self.worker)
            .field("host", &self.host)
            .field("device", &self.device)
            .finish()
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.blocks.release(self.worker, self.host, self.device);
    }
}

impl MemoryReservation {
    /// Reserves `host` and `device` bytes on `worker` for `what` (named in the error), evicting
    /// the worker's least recently used cached blocks to make room (to disk for `*_AND_DISK`
    /// levels, as memory pressure would). Fails when the budget cannot hold it even with every
    /// evictable block gone. The bytes count until the reservation is dropped.
    pub(crate) fn new(
        blocks: &Arc<BlockManager>,
        worker: usize,
        what: &str,
        host: u64,
        device: u64,
    ) -> Result<MemoryReservation> {
        // No RDD id is protected: usize::MAX is never one.
        if !blocks.reserve(worker, usize::MAX, host, device) {
            let s = blocks.settings();
            return Err(EngineError::InvalidArgument {
                operation: "reserve_memory".into(),
                reason: format!(
                    "{what} needs {} of host and {} of device memory on worker {worker}, but its \
                     budget is {} (ember.memory.storage) and {} (ember.memory.device) with what \
                     it holds that cannot be evicted; raise the budget or ask for less",
                    super::human_bytes(host),
                    super::human_bytes(device),
                    super::human_bytes(s.host_budget),
                    human_or_unlimited(s.device_budget),
                ),
            });
        }
        Ok(MemoryReservation {
            blocks: Arc::clone(blocks),
            worker,
            host,
            device,
        })
    }
}

fn human_or_unlimited(bytes: u64) -> String {
    if bytes == u64::MAX {
        "unlimited".into()
    } else {
        super::human_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Conf;

    #[test]
    fn reservations_count_against_the_budget_until_dropped() {
        let conf = Conf::new()
            .with("ember.master", "local[1]")
            .unwrap()
            .with("ember.memory.storage", "1m")
            .unwrap();
        crate::run(conf, |ctx| {
            assert_eq!(ctx.memory_budget().0, 1 << 20);
            let a = ctx.reserve_memory("a", 600 << 10, 0).unwrap();
            assert_eq!(a.host_bytes(), 600 << 10);
            let err = ctx
                .reserve_memory("model copies", 600 << 10, 0)
                .unwrap_err();
            assert!(err.to_string().contains("model copies"), "{err}");
            drop(a);
            ctx.reserve_memory("b", 600 << 10, 0).unwrap();
        })
        .unwrap();
    }

    #[test]
    fn process_values_are_shared_by_the_workers_of_a_process() {
        let conf = Conf::new().with("ember.master", "local[3]").unwrap();
        let made = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let m = std::sync::Arc::clone(&made);
        let held = crate::run_all(conf, move |ctx| {
            let v = ctx
                .process_value("pool", || {
                    m.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    7u32
                })
                .unwrap();
            assert!(ctx.process_value::<String>("pool", String::new).is_err());
            // Every worker holds it until all have asked.
            ctx.parallelize(vec![0u8; 3], 3)
                .unwrap()
                .barrier()
                .map_partitions(|t, it| {
                    t.barrier()?;
                    Ok(it)
                })
                .count()
                .unwrap();
            *v
        })
        .unwrap();
        assert_eq!(held, vec![7, 7, 7]);
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
