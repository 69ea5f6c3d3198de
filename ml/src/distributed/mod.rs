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
//! - [`data`]: minibatch RDDs (sharded in-memory data, rows of any source, exported files), and
//!   [`parquet_minibatches`] / [`arrow_minibatches`] straight from columnar files.
//! - [`stats`] and [`report`]: per worker and step timings, JSON lines, the HTML report.
//! - [`checkpoint`]: saving and resuming training at a storage URL.
//! - Evaluation and inference on the workers: [`DistributedNetwork::evaluate`] (any
//!   [`crate::eval::Evaluation`], several in one pass), keyed inference
//!   ([`DistributedNetwork::predict_with_key`]), Parquet and Arrow in and out
//!   ([`DistributedNetwork::predict_parquet`]), on at most [`EvalOptions::num_workers`] network
//!   copies per process, each charged to the block manager.
//!
//! Synchronization goes through the engine's collectives inside one barrier stage per epoch
//! ([`ember_engine::BarrierTask`]): all-reduces are deterministic (summed in rank order), so
//! after every synchronization the replicas are bit-identical, and the same seeds and worker
//! count give the same parameters on every run.

pub mod checkpoint;
mod columnar;
mod columnar_data;
mod copies;
pub mod data;
mod evaluate;
mod inference;
mod inference_error;
mod jobs;
mod master;
mod network;
mod network_url;
mod replica;
pub mod report;
mod resident;
pub mod sharing;
pub mod stats;

pub use columnar::{ColumnarPrediction, FeatureColumns};
pub use columnar_data::{
    arrow_minibatches, batches_to_minibatches, parquet_minibatches, ColumnarExamples, LabelColumns,
};
pub use copies::EvalOptions;
pub use data::{export_minibatches, rows_to_minibatches, sharded_minibatches, Repartition};
pub use inference_error::InferenceError;
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
