//! Training masters: how the workers of a [`super::DistributedNetwork`] train one network
//! together (the role of DL4J's `TrainingMaster`).
//!
//! - [`DataParallel`]: synchronous dense data parallel, PyTorch DDP's semantics: every step
//!   each worker computes gradients on its minibatch, the gradients are all-reduced (weighted by
//!   the examples each worker saw) and every replica applies the same update. The baseline the
//!   other modes are measured against.
//! - [`ParameterAveraging`]: DL4J's `ParameterAveragingTrainingMaster`: each worker trains its
//!   replica on its own minibatches and every `averaging_frequency` steps the parameters (and,
//!   by default, the optimizer state) are averaged, either with `all_reduce` inside one barrier
//!   stage per epoch ([`AveragingMode::Resident`], the default: measured faster) or, as DL4J
//!   does, one engine job per averaging round with the replicas combined by `tree_aggregate`
//!   ([`AveragingMode::JobPerRound`]).

use std::cell::RefCell;
use std::rc::Rc;

use ember_engine::{Context, Rdd};

use super::data::Repartition;
use super::replica::Replica;
use super::stats::StepRecord;
use crate::data::MiniBatch;
use crate::error::{MlError, Result};

/// Where an epoch's minibatches come from.
#[derive(Clone)]
pub enum EpochInput {
    /// An RDD of minibatches (one partition per worker once repartitioned).
    Batches(Rdd<MiniBatch>),
    /// An RDD of exported minibatch URLs ([`super::data::export_minibatches`]), read by each
    /// worker with `worker_prefetch` files loaded ahead by a reader thread.
    Paths(Rdd<String>),
}

/// Where a run saves checkpoints, and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// A directory URL (any storage: `file://`, `s3://`, ...).
    pub url: String,
    /// Save after every this many synchronizations (steps for data parallel, averaging rounds
    /// for parameter averaging).
    pub every: u64,
}

/// Everything a master needs to train one epoch.
pub struct EpochJob<'a> {
    /// This worker's context.
    pub ctx: &'a Context,
    /// The epoch's data, already repartitioned to one partition per worker.
    pub input: EpochInput,
    /// This worker's resident replica (network and optimizer).
    pub replica: Rc<RefCell<Replica>>,
    /// The epoch number, from 0.
    pub epoch: usize,
    /// Global step number of the epoch's first step.
    pub first_step: u64,
    /// Synchronizations of this epoch already done before a restart (from a checkpoint): their
    /// minibatches are skipped.
    pub skip_syncs: u64,
    /// Microseconds since the Unix epoch (on worker 0's clock) that the run's statistics count
    /// from; `None` on the first epoch (the master sets it).
    pub origin_us: Option<i64>,
    /// Minibatch files each worker loads ahead ([`EpochInput::Paths`]).
    pub prefetch: usize,
    /// Checkpoints to write, if any.
    pub checkpoint: Option<CheckpointPolicy>,
}

/// What an epoch did, the same on every worker.
#[derive(Clone, Debug, Default)]
pub struct EpochReport {
    /// Every worker's step records, by worker then step.
    pub records: Vec<StepRecord>,
    /// Synchronizations done (steps, or averaging rounds).
    pub syncs: u64,
    /// Steps done by the slowest-stepping worker (the global step advances by this).
    pub steps: u64,
    /// Examples trained on, all workers together.
    pub examples: u64,
    /// Mean training loss over every worker's minibatches.
    pub mean_loss: f64,
    /// The statistics' time origin (see [`EpochJob::origin_us`]).
    pub origin_us: i64,
    /// Wall-clock seconds of the epoch on this worker.
    pub seconds: f64,
    /// A checksum of every replica's parameters after the epoch, by worker: all equal when the
    /// replicas are bit-identical.
    pub replica_checksums: Vec<u64>,
    /// What each worker's exchange of encoded updates did, by worker (gradient sharing only;
    /// empty for the other masters).
    pub exchange: Vec<ExchangeSummary>,
}

/// One worker's exchange of encoded updates over an epoch ([`super::SharedGradients`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExchangeSummary {
    /// The worker's rank in the training stage.
    pub rank: usize,
    /// Updates this worker made (steps in which it trained).
    pub sent: u64,
    /// Updates applied to this worker's replica, by the rank that made them: every entry equals
    /// that rank's `sent` when each update was applied exactly once.
    pub applied_from: Vec<u64>,
    /// Messages received twice and dropped.
    pub duplicates: u64,
    /// Updates applied later than a synchronous run would have.
    pub late: u64,
    /// The largest staleness seen, in steps.
    pub staleness_max: u64,
    /// Bytes of encoded messages this worker made (each copy sent counts in the step records).
    pub message_bytes: u64,
    /// Steps trained with dense all-reduce (warm-up).
    pub dense_steps: u64,
}

/// How the workers of a distributed network train together.
pub trait TrainingMaster {
    /// A one-line description for reports, e.g. `dense data parallel`.
    fn describe(&self) -> String;
    /// When the input is repartitioned to one partition per worker.
    fn repartition(&self) -> Repartition {
        Repartition::WhenCountDiffers
    }
    /// Trains one epoch (every worker calls it, SPMD).
    fn fit_epoch(&self, job: &EpochJob<'_>) -> Result<EpochReport>;
}

/// A master chosen at run time.
impl TrainingMaster for Box<dyn TrainingMaster> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn repartition(&self) -> Repartition {
        (**self).repartition()
    }
    fn fit_epoch(&self, job: &EpochJob<'_>) -> Result<EpochReport> {
        (**self).fit_epoch(job)
    }
}

/// Synchronous dense data parallel (PyTorch DDP's semantics): gradients all-reduced every step.
#[derive(Clone, Debug, Default)]
pub struct DataParallel {
    /// When the input is repartitioned.
    pub repartition: Repartition,
}

impl TrainingMaster for DataParallel {
    fn describe(&self) -> String {
        "dense data parallel (gradients all-reduced every step)".into()
    }
    fn repartition(&self) -> Repartition {
        self.repartition
    }
    fn fit_epoch(&self, job: &EpochJob<'_>) -> Result<EpochReport> {
        super::resident::run_epoch(job, super::resident::Sync::EveryStep)
    }
}

/// How [`ParameterAveraging`] runs its rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AveragingMode {
    /// One barrier stage per epoch; replicas averaged with `all_reduce` every k steps.
    #[default]
    Resident,
    /// DL4J's way: one engine job per averaging round (parameters broadcast, each partition
    /// trains k minibatches from them, the results combined with `tree_aggregate`).
    JobPerRound,
}

/// DL4J's parameter averaging.
#[derive(Clone, Debug)]
pub struct ParameterAveraging {
    /// Minibatch size each worker trains on (used to build the minibatch RDD; the master
    /// checks it is not 0).
    pub batch_size_per_worker: usize,
    /// Local steps between averagings (DL4J's default is 5).
    pub averaging_frequency: usize,
    /// Depth of the `tree_aggregate` in [`AveragingMode::JobPerRound`] (DL4J's default 2).
    pub aggregation_depth: usize,
    /// Average the optimizer state too (DL4J's `saveUpdater`, on by default).
    pub average_updater: bool,
    /// Resident (barrier stage) or one job per round.
    pub mode: AveragingMode,
    /// When the input is repartitioned.
    pub repartition: Repartition,
}

impl ParameterAveraging {
    /// DL4J's defaults with the given per-worker batch size: frequency 5, depth 2, updater
    /// averaged, resident mode.
    pub fn new(batch_size_per_worker: usize) -> Self {
        ParameterAveraging {
            batch_size_per_worker,
            averaging_frequency: 5,
            aggregation_depth: 2,
            average_updater: true,
            mode: AveragingMode::Resident,
            repartition: Repartition::WhenCountDiffers,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.batch_size_per_worker == 0 {
            return Err(MlError::Config(
                "ParameterAveraging: batch_size_per_worker must be at least 1".into(),
            ));
        }
        if self.averaging_frequency == 0 {
            return Err(MlError::Config(
                "ParameterAveraging: averaging_frequency must be at least 1".into(),
            ));
        }
        if self.aggregation_depth == 0 {
            return Err(MlError::Config(
                "ParameterAveraging: aggregation_depth must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl TrainingMaster for ParameterAveraging {
    fn describe(&self) -> String {
        let mode = match self.mode {
            AveragingMode::Resident => "resident, all_reduce",
            AveragingMode::JobPerRound => "one job per round, tree_aggregate",
        };
        format!(
            "parameter averaging every {} steps ({mode}; updater {}averaged)",
            self.averaging_frequency,
            if self.average_updater { "" } else { "not " }
        )
    }
    fn repartition(&self) -> Repartition {
        self.repartition
    }
    fn fit_epoch(&self, job: &EpochJob<'_>) -> Result<EpochReport> {
        self.validate()?;
        match self.mode {
            AveragingMode::Resident => super::resident::run_epoch(
                job,
                super::resident::Sync::Average {
                    every: self.averaging_frequency as u64,
                    updater: self.average_updater,
                },
            ),
            AveragingMode::JobPerRound => super::jobs::run_epoch(job, self),
        }
    }
}
