//! Ember's RDD engine: lazy, partitioned datasets with lineage, run on timely dataflow.
//!
//! Every worker (a thread in `local[N]` mode, or a thread of one of several processes in
//! cluster mode) runs the same driver code with its own [`Context`], builds the same RDD graph,
//! and gets the same result from every action. Actions cut the lineage into stages at shuffles;
//! each stage's tasks run on the workers that hold their input, and shuffles, results,
//! broadcasts and accumulator updates travel through timely exchanges.
//!
//! ```
//! use ember_engine::prelude::*;
//!
//! let conf = Conf::new().with("ember.master", "local[2]").unwrap();
//! let counts = ember_engine::run(conf, |ctx| {
//!     let lines = vec!["a b".to_string(), "b c".into(), "c c".into()];
//!     let words = ctx.parallelize(lines, 2).unwrap();
//!     let mut counts = words
//!         .flat_map(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
//!         .map(|w| (w, 1u64))
//!         .reduce_by_key(|a, b| a + b)
//!         .collect()
//!         .unwrap();
//!     counts.sort();
//!     counts
//! })
//! .unwrap();
//! assert_eq!(counts, vec![("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
//! ```

pub mod accumulator;
pub mod broadcast;
pub mod checkpoint;
pub mod config;
pub mod context;
pub mod data;
pub mod error;
mod exchange;
mod launch;
mod lineage;
mod network;
mod peers;
pub mod rdd;
pub mod scheduler;
pub mod shuffle;
pub mod storage;
pub mod task;
mod watchdog;

pub use accumulator::{Accumulator, AccumulatorValue};
pub use broadcast::Broadcast;
pub use config::{Conf, Master};
pub use context::Context;
pub use data::{Data, Key};
pub use ember_storage::{CmpOp, CsvOptions, JsonOptions, ParquetScan, Predicate, SaveMode, Scalar};
pub use error::{EngineError, Result};
pub use launch::{run, run_all};
pub use rdd::barrier::RddBarrier;
pub use rdd::formats::Batch;
pub use rdd::{BoxIter, Rdd};
pub use scheduler::{
    last_job_stats, BarrierTask, BlockSource, CommStats, JobStats, Locality, LocalityWaits,
    ReduceOp, StageStats, TaskMetrics,
};
pub use shuffle::{HashPartitioner, Partitioner, RangePartitioner};
pub use storage::{MemoryReservation, SizeOf, StorageLevel, StorageReport};
pub use task::{current_task, current_worker, TaskContext};

/// The names most programs need.
pub mod prelude {
    pub use crate::{
        run, run_all, Accumulator, Broadcast, Conf, Context, EngineError, HashPartitioner, Rdd,
        SaveMode, SizeOf, StorageLevel,
    };
}

// Lets `#[derive(SizeOf)]` (which names `::ember_engine`) work inside this crate too.
extern crate self as ember_engine;
