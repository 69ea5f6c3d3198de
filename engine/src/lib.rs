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
//!
//! # Architecture
//!
//! Layers, lowest first. The transport, task and block layers import nothing from the scheduler
//! or the context: what they need from above comes as arguments or small traits (a task fetches
//! a cached block held elsewhere through [`task`]'s `BlockFetch`, which the scheduler implements
//! over its stage mailbox). Datasets and the scheduler call each other: an action runs a job, and
//! a job computes partitions by walking the lineage.
//!
//! | layer | modules | holds |
//! |---|---|---|
//! | values and settings | [`data`], [`config`], [`error`] | element bounds, keys and defaults, `EngineError` |
//! | transport | `exchange`, `peers`, `network`, `launch` | all-to-all rounds over timely, peer liveness, cluster start-up |
//! | tasks | [`task`], `watchdog`, [`accumulator`] | one attempt of one partition: errors, retries, held-back accumulator updates, slow-task reports |
//! | blocks | [`blocks`] | storage levels, sizes, the block codec, the per-process block manager and its budgets, memory reservations |
//! | datasets | [`rdd`], [`shuffle`], [`checkpoint`], `lineage` | the lineage graph, narrow steps, shuffles, sources and formats, checkpoints |
//! | differential | [`differential`] | arranged pair RDDs, live views, fixpoint loops and incremental updates on differential dataflow |
//! | scheduling | [`scheduler`] | stages, the one stage loop (map, result and barrier stages), locality, collectives, metrics |
//! | driver API | [`context`], [`broadcast`] | the per-worker handle driver code runs against |
//!
//! The life of a job: driver code on every worker builds the same lineage through its
//! [`Context`] (nothing runs yet). An action asks the [`scheduler`] to run a job: the lineage is
//! cut into stages at shuffle dependencies, missing shuffle map stages run parents first, then
//! the result stage. In each stage worker 0's coordinator hands tasks to free workers by
//! locality (delay scheduling); every worker runs its tasks through [`task`], which computes the
//! partition by walking the lineage ([`rdd`]), reading cached blocks from [`blocks`] or
//! fetching them from their holder, and shuffle outputs from [`shuffle`]. Results, shuffle data
//! and block fetches travel through timely exchanges, so threads of one process and processes
//! of a cluster take part the same way, and every worker returns the same answer.
//!

#![forbid(missing_docs)]

pub mod accumulator;
pub mod blocks;
pub mod broadcast;
pub mod checkpoint;
pub mod config;
pub mod context;
pub mod data;
pub mod differential;
pub mod error;
mod exchange;
mod launch;
mod lineage;
mod network;
mod peers;
pub mod rdd;
pub mod scheduler;
pub mod shuffle;
pub mod task;
mod watchdog;

pub use accumulator::{Accumulator, AccumulatorValue};
pub use blocks::{MemoryReservation, SizeOf, StorageLevel, StorageReport};
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
