//! Gradient sharing with threshold encoding: DL4J's `SharedTrainingMaster` (Strom 2015) on the
//! engine's own transport, with bounded staleness.
//!
//! Each step every worker adds its update (the optimizer's output for its minibatch) to a
//! residual, sends only the entries that reached the threshold τ (as ±τ, [`encoding`]) and
//! keeps the rest for later steps; every worker applies the sum of all workers' decoded
//! updates, its own included. The threshold moves by a [`ThresholdAlgorithm`], the residual is
//! kept in bounds by a [`ResidualPostProcessor`], and every step records what it sent
//! ([`SharingRecord`]) so a person can see whether the threshold is right ([`diagnose`]).
//!
//! Where Ember differs from DL4J, and why:
//! - Messages travel between the tasks of the training stage over the engine's own channels
//!   (no Aeron UDP transport, no ports or `/dev/shm` of its own); above 8 workers they are
//!   relayed along a tree of fan-out 8 (DL4J's mesh mode uses 8 children too, from ~32 nodes).
//! - `max_staleness` (DL4J has none): 0 is synchronous and keeps the replicas bit-identical
//!   after every step; k > 0 lets a worker run up to k steps ahead of the slowest.
//! - Sparsity counts the entries actually sent, bitmap steps included (DL4J takes a bitmap step
//!   as 1/16).
//! - Optional dense warm-up steps and momentum factor masking from Deep Gradient Compression.
//!
//! Updates are summed, not averaged, as DL4J does: with n workers each step applies up to n
//! updates, so a learning rate tuned for one worker may need dividing by about n.
//!
//! **Momentum.** The residual holds back the small part of every update until it reaches τ, and
//! staleness applies the other workers' updates steps late: both act as momentum of their own
//! on top of the optimizer's (Mitliagkas et al. 2016, "Asynchrony begets momentum"). With SGD
//! momentum, give sharing about 0.1 less than dense training uses. Measured on LeNet, MNIST, 2
//! workers, 5 epochs, lr 0.05 (`benches/README.md`): dense data parallel reached 99.19% at
//! momentum 0.9 (99.00% at 0.8); sharing at 0.9 reached 98.92% synchronously and 98.73% at
//! staleness 2, at 0.8 99.13% and 99.14%.

pub mod encoding;
mod error;
mod exchange;
mod record;
pub mod residual;
pub mod threshold;
mod trainer;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Mutex, PoisonError};

pub use encoding::Encoding;
pub use error::SharingError;
pub use record::{diagnose, ResidualStats, SharingRecord};
pub use residual::{NoResidualProcessing, ResidualClipping, ResidualPostProcessor};
pub use threshold::{
    AdaptiveThreshold, FixedThreshold, TargetSparsityThreshold, ThresholdAlgorithm,
};

use super::data::Repartition;
use super::master::{EpochJob, EpochReport, TrainingMaster};
use crate::error::Result;

/// Gradient sharing with threshold encoding (see the [module](self) docs).
///
/// ```
/// use ember_ml::distributed::{AdaptiveThreshold, SharedGradients};
/// let master = SharedGradients::new()
///     .with_threshold(AdaptiveThreshold::default())
///     .with_max_staleness(2)
///     .with_debug(true);
/// assert_eq!(master.max_staleness, 2);
/// ```
#[derive(Debug)]
pub struct SharedGradients {
    /// How τ moves (default: [`AdaptiveThreshold`]).
    pub threshold: Box<dyn ThresholdAlgorithm>,
    /// What happens to the residual after each step (default: [`ResidualClipping`]).
    pub residual: Box<dyn ResidualPostProcessor>,
    /// Steps a worker may run ahead of the slowest (0, the default: synchronous).
    pub max_staleness: u64,
    /// Workers up to which every worker sends to every other; above, messages are relayed
    /// along a tree (default 8).
    pub relay_above: usize,
    /// Children of a node of the relay tree (default 8).
    pub relay_fanout: usize,
    /// The run's first steps all-reduced densely before encoding starts (default 0).
    pub dense_warmup_steps: u64,
    /// Momentum factor masking (default off).
    pub momentum_masking: bool,
    /// Encoding debug mode: the residual's distribution and, when synchronous, a checksum of
    /// the parameters after every step (default off: both cost a pass over the parameters).
    pub debug: bool,
    /// When the input is repartitioned.
    pub repartition: Repartition,
    /// This worker's residual and threshold state, kept across epochs (a master serves one
    /// worker's network; clones start empty).
    state: Mutex<Option<WorkerState>>,
}

/// A worker's encoding state: residual, threshold and the algorithms' own state.
#[derive(Clone, Debug)]
pub(crate) struct WorkerState {
    pub residual: Vec<f32>,
    pub threshold: f32,
    pub algo: Box<dyn ThresholdAlgorithm>,
    pub post: Box<dyn ResidualPostProcessor>,
    /// Steps this worker has trained with encoding, over the run.
    pub trained: u64,
}

/// The settings a training task reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub max_staleness: u64,
    pub relay_above: usize,
    pub relay_fanout: usize,
    pub dense_warmup_steps: u64,
    pub momentum_masking: bool,
    pub debug: bool,
}

impl Default for SharedGradients {
    fn default() -> Self {
        SharedGradients::new()
    }
}

impl Clone for SharedGradients {
    /// The same settings, with a fresh residual (a clone starts a run of its own).
    fn clone(&self) -> Self {
        SharedGradients {
            threshold: self.threshold.clone(),
            residual: self.residual.clone(),
            max_staleness: self.max_staleness,
            relay_above: self.relay_above,
            relay_fanout: self.relay_fanout,
            dense_warmup_steps: self.dense_warmup_steps,
            momentum_masking: self.momentum_masking,
            debug: self.debug,
            repartition: self.repartition,
            state: Mutex::default(),
        }
    }
}

impl SharedGradients {
    /// DL4J's defaults: adaptive threshold from 1e-3, residual clipped to 5τ every 5 steps;
    /// synchronous, no warm-up, no masking, no debug.
    pub fn new() -> Self {
        SharedGradients {
            threshold: Box::new(AdaptiveThreshold::default()),
            residual: Box::new(ResidualClipping::default()),
            max_staleness: 0,
            relay_above: 8,
            relay_fanout: 8,
            dense_warmup_steps: 0,
            momentum_masking: false,
            debug: false,
            repartition: Repartition::WhenCountDiffers,
            state: Mutex::default(),
        }
    }

    /// With another threshold algorithm.
    pub fn with_threshold(mut self, t: impl ThresholdAlgorithm + 'static) -> Self {
        self.threshold = Box::new(t);
        self
    }

    /// With another residual post-processor.
    pub fn with_residual(mut self, r: impl ResidualPostProcessor + 'static) -> Self {
        self.residual = Box::new(r);
        self
    }

    /// Lets workers run up to `k` steps ahead of the slowest (0: synchronous).
    pub fn with_max_staleness(mut self, k: u64) -> Self {
        self.max_staleness = k;
        self
    }

    /// All-reduces the run's first `steps` steps densely.
    pub fn with_dense_warmup(mut self, steps: u64) -> Self {
        self.dense_warmup_steps = steps;
        self
    }

    /// Turns momentum factor masking on or off.
    pub fn with_momentum_masking(mut self, on: bool) -> Self {
        self.momentum_masking = on;
        self
    }

    /// Turns encoding debug mode on or off.
    pub fn with_debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    /// Relays messages along a tree above `workers` workers.
    pub fn with_relay_above(mut self, workers: usize) -> Self {
        self.relay_above = workers;
        self
    }

    /// Gives each node of the relay tree `children` children (at least 2).
    pub fn with_relay_fanout(mut self, children: usize) -> Self {
        self.relay_fanout = children;
        self
    }

    fn settings(&self) -> Settings {
        Settings {
            max_staleness: self.max_staleness,
            relay_above: self.relay_above,
            relay_fanout: self.relay_fanout,
            dense_warmup_steps: self.dense_warmup_steps,
            momentum_masking: self.momentum_masking,
            debug: self.debug,
        }
    }

    fn validate(&self, params: usize) -> Result<()> {
        threshold::validate(self.threshold.as_ref()).map_err(SharingError::Config)?;
        if self.relay_fanout < 2 {
            return Err(SharingError::Config("relay_fanout must be at least 2".into()).into());
        }
        if params >= i32::MAX as usize {
            return Err(SharingError::Config(format!(
                "a network of {params} parameters is too large for 32-bit update indices"
            ))
            .into());
        }
        Ok(())
    }

    /// This worker's encoding state, made on the first epoch.
    fn worker_state(&self, params: usize) -> Result<Rc<RefCell<WorkerState>>> {
        let mut slot = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let st = slot.get_or_insert_with(|| WorkerState {
            residual: vec![0.0; params],
            threshold: self.threshold.initial(),
            algo: self.threshold.clone(),
            post: self.residual.clone(),
            trained: 0,
        });
        if st.residual.len() != params {
            return Err(SharingError::Config(format!(
                "this master trained a network of {} parameters and cannot train one of \
                 {params}: give each network a master of its own",
                st.residual.len()
            ))
            .into());
        }
        Ok(Rc::new(RefCell::new(st.clone())))
    }
}

impl TrainingMaster for SharedGradients {
    fn describe(&self) -> String {
        let staleness = match self.max_staleness {
            0 => "synchronous".to_string(),
            k => format!("max staleness {k}"),
        };
        let mut out = format!(
            "gradient sharing ({}; {}; {staleness}",
            self.threshold.describe(),
            self.residual.describe()
        );
        if self.dense_warmup_steps > 0 {
            out.push_str(&format!(
                "; {} dense warm-up steps",
                self.dense_warmup_steps
            ));
        }
        if self.momentum_masking {
            out.push_str("; momentum masking");
        }
        out.push(')');
        out
    }
    fn repartition(&self) -> Repartition {
        self.repartition
    }
    fn fit_epoch(&self, job: &EpochJob<'_>) -> Result<EpochReport> {
        let params = job.replica.borrow().net.num_params();
        self.validate(params)?;
        let state = self.worker_state(params)?;
        let trainer = trainer::Trainer {
            replica: Rc::clone(&job.replica),
            snapshot: job.replica.borrow().snapshot(),
            state_snapshot: state.borrow().clone(),
            state: Rc::clone(&state),
            settings: self.settings(),
            epoch: job.epoch,
            first_step: job.first_step,
            skip_syncs: job.skip_syncs,
            origin_us: job.origin_us,
            checkpoint: job.checkpoint.clone(),
            config: job.ctx.conf().storage_config(),
        };
        let report =
            super::resident::run_stage(job, move |task, source| trainer.train(task, source))?;
        // The epoch finished on every worker: its encoding state is the one to go on from.
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = Some(state.borrow().clone());
        if job.ctx.worker_index() == 0 {
            for warning in diagnose(&report.records) {
                tracing::warn!(epoch = job.epoch, "gradient sharing: {warning}");
            }
        }
        Ok(report)
    }
}
