//! Distributed training on the engine: one network trained by every worker of an Ember
//! application (threads of one process, or processes on several hosts), the job DL4J's
//! `SparkDl4jMultiLayer` does on Spark, without a Spark job per averaging round or replicas
//! serialized through a driver.
//!
//! - [`DistributedNetwork`]: the network, its resident replica on each worker, `fit` /
//!   `fit_paths` per epoch, checkpoints, statistics.
//! - [`TrainingMaster`] and the masters: [`DataParallel`] (gradients all-reduced every step,
//!   PyTorch DDP's semantics) and [`ParameterAveraging`] (DL4J's, resident or one job per
//!   round), and [`SharedGradients`] (DL4J's threshold-encoded gradient sharing, with bounded
//!   staleness).
//! - [`data`]: minibatch RDDs (sharded in-memory data, rows of any source, exported files).
//! - [`stats`] and [`report`]: per worker and step timings, JSON lines, the HTML report.
//! - [`checkpoint`]: saving and resuming training at a storage URL.
//!
//! Synchronization goes through the engine's collectives inside one barrier stage per epoch
//! ([`ember_engine::BarrierTask`]): all-reduces are deterministic (summed in rank order), so
//! after every synchronization the replicas are bit-identical, and the same seeds and worker
//! count give the same parameters on every run.

pub mod checkpoint;
pub mod data;
mod jobs;
mod master;
mod network;
mod replica;
pub mod report;
mod resident;
pub mod sharing;
pub mod stats;

pub use data::{export_minibatches, rows_to_minibatches, sharded_minibatches, Repartition};
pub use master::{
    AveragingMode, CheckpointPolicy, DataParallel, EpochInput, EpochJob, EpochReport,
    ExchangeSummary, ParameterAveraging, TrainingMaster,
};
pub use network::DistributedNetwork;
pub use replica::{checksum, Replica};
pub use sharing::{
    AdaptiveThreshold, FixedThreshold, ResidualClipping, SharedGradients, TargetSparsityThreshold,
};
pub use stats::{RunInfo, StepRecord};
