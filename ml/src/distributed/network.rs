//! The distributed network (the role of DL4J's `SparkDl4jMultiLayer`): one network trained by
//! every worker of an Ember application, each keeping a resident replica, under a
//! [`TrainingMaster`].

use std::cell::{Ref, RefCell};
use std::rc::Rc;

use ember_engine::{Context, Rdd};

use super::checkpoint::{self, Progress};
use super::master::{CheckpointPolicy, EpochInput, EpochJob, EpochReport, TrainingMaster};
use super::replica::{to_engine, Replica};
use super::stats::{RunInfo, StepRecord};
use crate::data::MiniBatch;
use crate::error::{MlError, Result};
use crate::nn::Network;
use crate::optim::{Optimizer, OptimizerConfig};

/// A network trained on the workers of an Ember application (SPMD: every worker's driver
/// builds the same one and calls the same methods; each holds its own replica, which stays
/// resident across steps and epochs).
///
/// ```no_run
/// use ember_engine::prelude::*;
/// use ember_ml::distributed::{sharded_minibatches, DataParallel, DistributedNetwork};
/// use ember_ml::nn::{Activation, NetworkConfig};
/// use ember_ml::optim::{Method, OptimizerConfig};
///
/// let conf = Conf::new().with("ember.master", "local[2]")?;
/// ember_engine::run(conf, |ctx| -> ember_ml::Result<()> {
///     let train = ember_ml::data::mnist("data/mnist", ember_ml::data::Split::Train)?;
///     let batches = sharded_minibatches(ctx, &train, 128, ctx.num_workers())?.cache();
///     let net = NetworkConfig::builder(&[784])
///         .dense(256, Activation::Relu)
///         .dense(10, Activation::Identity)
///         .build()?;
///     let opt = OptimizerConfig::new(Method::Momentum { momentum: 0.9, nesterov: false }, 0.01);
///     let mut dist = DistributedNetwork::new(ctx, net, opt, DataParallel::default())?;
///     let epoch = dist.fit(&batches)?;
///     println!("loss {:.4}", epoch.mean_loss);
///     Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DistributedNetwork {
    pub(super) ctx: Context,
    pub(super) replica: Rc<RefCell<Replica>>,
    master: Box<dyn TrainingMaster>,
    records: Vec<StepRecord>,
    epoch: usize,
    first_step: u64,
    skip_syncs: u64,
    origin_us: Option<i64>,
    prefetch: usize,
    checkpoint: Option<CheckpointPolicy>,
}

impl DistributedNetwork {
    /// A distributed network starting from `net`, trained with an optimizer of `opt` under
    /// `master`.
    pub fn new(
        ctx: &Context,
        net: Network,
        opt: OptimizerConfig,
        master: impl TrainingMaster + 'static,
    ) -> Result<Self> {
        let opt = Optimizer::new(opt, net.num_params())?;
        // Each worker thread gets its own share of the ML threads, so the workers of a process
        // never queue for one pool.
        let in_process = match ctx.conf().master()? {
            ember_engine::Master::Local(n) => n,
            ember_engine::Master::Cluster { threads, .. } => threads,
        };
        let threads = (crate::tensor::gemm::process_threads() / in_process.max(1)).max(1);
        crate::tensor::gemm::use_worker_pool(ctx.worker_index(), threads);
        Ok(DistributedNetwork {
            ctx: ctx.clone(),
            replica: Rc::new(RefCell::new(Replica { net, opt })),
            master: Box::new(master),
            records: Vec::new(),
            epoch: 0,
            first_step: 0,
            skip_syncs: 0,
            origin_us: None,
            prefetch: 2,
            checkpoint: None,
        })
    }

    /// Minibatch files each worker loads ahead while it computes, for [`Self::fit_paths`]
    /// (DL4J's `workerPrefetchNumBatches`; default 2).
    pub fn with_prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches.max(1);
        self
    }

    /// Saves a checkpoint under the directory URL `url` every `every` synchronizations and at
    /// the end of every epoch, and resumes from the last checkpoint there if one exists (an
    /// application restarted by `ember-submit --restarts` goes on where it stopped). A
    /// checkpoint of another network is an error.
    pub fn with_checkpoints(mut self, url: &str, every: u64) -> Result<Self> {
        let config = self.ctx.conf().storage_config();
        if let Some((model, progress)) = checkpoint::load(url, &config)? {
            let mut rep = self.replica.borrow_mut();
            if model.network.config() != rep.net.config() {
                return Err(MlError::Checkpoint {
                    url: url.into(),
                    reason: format!(
                        "it holds another network ({} parameters, layers {:?}) than the one \
                         being trained ({} parameters, layers {:?}); use another directory",
                        model.network.num_params(),
                        model.network.config().layers,
                        rep.net.num_params(),
                        rep.net.config().layers
                    ),
                });
            }
            let Some(opt) = model.optimizer else {
                return Err(MlError::Checkpoint {
                    url: url.into(),
                    reason: "it has no optimizer state".into(),
                });
            };
            if opt.config().method != rep.opt.config().method {
                return Err(MlError::Checkpoint {
                    url: url.into(),
                    reason: format!(
                        "its optimizer is {:?}, this run's {:?}",
                        opt.config().method,
                        rep.opt.config().method
                    ),
                });
            }
            rep.net = model.network;
            rep.opt = opt;
            drop(rep);
            self.apply_progress(&progress);
            tracing::info!(url, ?progress, "resuming from a checkpoint");
        }
        self.checkpoint = Some(CheckpointPolicy {
            url: url.into(),
            every: every.max(1),
        });
        Ok(self)
    }

    fn apply_progress(&mut self, p: &Progress) {
        if p.epoch_done {
            self.epoch = p.epoch + 1;
            self.first_step = p.global_step;
            self.skip_syncs = 0;
        } else {
            self.epoch = p.epoch;
            self.first_step = p.epoch_first_step;
            self.skip_syncs = p.syncs_in_epoch;
        }
    }

    /// Trains one epoch over `data` (repartitioned to one partition per worker as the
    /// master's [`super::Repartition`] says).
    pub fn fit(&mut self, data: &Rdd<MiniBatch>) -> Result<EpochReport> {
        let data = self
            .master
            .repartition()
            .apply(data, self.ctx.num_workers())?;
        self.fit_input(EpochInput::Batches(data))
    }

    /// Trains one epoch over exported minibatch files ([`super::export_minibatches`]).
    pub fn fit_paths(&mut self, paths: &Rdd<String>) -> Result<EpochReport> {
        let paths = self
            .master
            .repartition()
            .apply(paths, self.ctx.num_workers())?;
        self.fit_input(EpochInput::Paths(paths))
    }

    fn fit_input(&mut self, input: EpochInput) -> Result<EpochReport> {
        let job = EpochJob {
            ctx: &self.ctx,
            input,
            replica: Rc::clone(&self.replica),
            epoch: self.epoch,
            first_step: self.first_step,
            skip_syncs: self.skip_syncs,
            origin_us: self.origin_us,
            prefetch: self.prefetch,
            checkpoint: self.checkpoint.clone(),
        };
        let report = self.master.fit_epoch(&job)?;
        self.origin_us = Some(report.origin_us);
        self.records.extend(report.records.iter().cloned());
        self.first_step += report.steps;
        self.skip_syncs = 0;
        if let Some(policy) = &self.checkpoint {
            let progress = Progress {
                epoch: self.epoch,
                syncs_in_epoch: report.syncs,
                global_step: self.first_step,
                epoch_first_step: self.first_step,
                epoch_done: true,
            };
            self.save_on_rank_0(policy, progress)?;
        }
        self.epoch += 1;
        Ok(report)
    }

    /// Saves the end-of-epoch checkpoint from rank 0 of a one-task-per-worker barrier stage, so
    /// that `fit` returns on no worker before the checkpoint is written (a worker that went on
    /// at once could otherwise read the epoch's last mid-epoch checkpoint, e.g. in
    /// [`Self::with_checkpoints`], and resume in another epoch than its peers) and a failed save
    /// fails `fit` on every worker alike. The replicas are bit-identical after an epoch, so the
    /// one rank 0 holds is every worker's.
    fn save_on_rank_0(&self, policy: &CheckpointPolicy, progress: Progress) -> Result<()> {
        let workers = self.ctx.num_workers();
        let replica = Rc::clone(&self.replica);
        let url = policy.url.clone();
        let config = self.ctx.conf().storage_config();
        self.ctx
            .parallelize((0..workers).collect::<Vec<usize>>(), workers)?
            .barrier()
            .map_partitions(move |task, _| {
                if task.rank() == 0 {
                    checkpoint::save(&url, &config, &replica.borrow(), &progress)
                        .map_err(to_engine)?;
                }
                Ok(std::iter::empty::<u8>())
            })
            .count()?;
        Ok(())
    }

    /// This worker's replica of the network (the same, bit for bit, on every worker after an
    /// epoch).
    pub fn network(&self) -> Ref<'_, Network> {
        Ref::map(self.replica.borrow(), |r| &r.net)
    }

    /// This worker's replica, writable: for inference (which needs `&mut`) and evaluation. A
    /// change made on some workers only makes the replicas differ.
    pub fn network_mut(&mut self) -> std::cell::RefMut<'_, Network> {
        std::cell::RefMut::map(self.replica.borrow_mut(), |r| &mut r.net)
    }

    /// This worker's optimizer (its state and step count).
    pub fn optimizer(&self) -> Ref<'_, Optimizer> {
        Ref::map(self.replica.borrow(), |r| &r.opt)
    }

    /// The next epoch [`Self::fit`] trains (after a resume, the one a checkpoint stopped in).
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Every step of every worker so far.
    pub fn stats(&self) -> &[StepRecord] {
        &self.records
    }

    /// What a report of this run shows in its header.
    pub fn run_info(&self, title: &str) -> RunInfo {
        RunInfo {
            title: title.into(),
            master: self.master.describe(),
            workers: self.ctx.num_workers(),
            params: self.replica.borrow().net.num_params(),
        }
    }

    /// Writes the statistics as JSON lines and as the HTML report (either URL may be `None`),
    /// from worker 0 only (every worker holds the same records).
    pub fn write_stats(&self, title: &str, json: Option<&str>, html: Option<&str>) -> Result<()> {
        if self.ctx.worker_index() != 0 {
            return Ok(());
        }
        let config = self.ctx.conf().storage_config();
        if let Some(url) = json {
            super::stats::write_json_lines(url, &self.records, &config)?;
        }
        if let Some(url) = html {
            super::report::write_report(url, &self.run_info(title), &self.records, &config)?;
        }
        Ok(())
    }
}
