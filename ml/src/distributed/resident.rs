//! Resident training: one barrier stage per epoch in which every worker keeps its replica and
//! steps through its partition's minibatches, synchronizing with the others through the
//! engine's collectives: gradients every step (dense data parallel) or parameters every k
//! steps (parameter averaging).
//!
//! A worker whose partition runs out keeps taking part in the collectives with nothing to add
//! (zero examples, zero weight) until every worker is done, so uneven partitions never leave a
//! peer waiting. A failed task restarts the stage; each replica is first restored to its state
//! at the start of the epoch, so a restart trains exactly what a clean run would.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ember_engine::{BarrierTask, ReduceOp};
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, Progress};
use super::master::{CheckpointPolicy, EpochInput, EpochJob, EpochReport, ExchangeSummary};
use super::replica::{to_engine, BatchSource, Replica, Snapshot};
use super::stats::StepRecord;
use crate::data::MiniBatch;
use crate::error::{MlError, Result};
use crate::train::network_input;

/// When the replicas synchronize.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sync {
    /// Gradients all-reduced every step.
    EveryStep,
    /// Parameters (and the optimizer state with `updater`) averaged every `every` steps.
    Average { every: u64, updater: bool },
}

/// What one training task sends back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TaskReport {
    pub records: Vec<StepRecord>,
    pub syncs: u64,
    pub steps: u64,
    pub examples: u64,
    pub loss_sum: f64,
    pub batches: u64,
    pub origin_us: i64,
    pub checksum: u64,
    /// What the exchange of encoded updates did (gradient sharing only).
    #[serde(default)]
    pub exchange: Option<ExchangeSummary>,
}

/// What every task of the epoch's stage shares on one worker.
struct Trainer {
    replica: Rc<RefCell<Replica>>,
    snapshot: Snapshot,
    sync: Sync,
    epoch: usize,
    first_step: u64,
    skip_syncs: u64,
    origin_us: Option<i64>,
    checkpoint: Option<CheckpointPolicy>,
    config: ember_storage::StorageConfig,
}

/// Per-task counters.
#[derive(Default)]
pub(super) struct Counters {
    pub syncs: u64,
    pub trained_since_sync: u64,
    pub examples: u64,
    pub loss_sum: f64,
    pub batches: u64,
}

/// Trains one epoch in a barrier stage and combines the tasks' reports.
pub(crate) fn run_epoch(job: &EpochJob<'_>, sync: Sync) -> Result<EpochReport> {
    let trainer = Trainer {
        replica: Rc::clone(&job.replica),
        snapshot: job.replica.borrow().snapshot(),
        sync,
        epoch: job.epoch,
        first_step: job.first_step,
        skip_syncs: job.skip_syncs,
        origin_us: job.origin_us,
        checkpoint: job.checkpoint.clone(),
        config: job.ctx.conf().storage_config(),
    };
    run_stage(job, move |task, source| trainer.train(task, source))
}

/// Runs `train` as the one task per worker of a barrier stage over the epoch's input (its
/// partition's minibatches, or its exported files read ahead) and combines the reports.
pub(crate) fn run_stage<F>(job: &EpochJob<'_>, train: F) -> Result<EpochReport>
where
    F: Fn(&BarrierTask, BatchSource) -> Result<TaskReport> + 'static,
{
    let started = Instant::now();
    let train = Rc::new(train);
    let reports: Vec<TaskReport> = match &job.input {
        EpochInput::Batches(rdd) => rdd
            .barrier()
            .map_partitions(move |task, it| {
                let source = BatchSource::Partition(it);
                train(task, source).map_err(to_engine).map(std::iter::once)
            })
            .collect()?,
        EpochInput::Paths(rdd) => {
            let (prefetch, config) = (job.prefetch, job.ctx.conf().storage_config());
            rdd.barrier()
                .map_partitions(move |task, it| {
                    let urls: Vec<String> = it.collect();
                    let source = BatchSource::prefetch(urls, prefetch, config.clone());
                    train(task, source).map_err(to_engine).map(std::iter::once)
                })
                .collect()?
        }
    };
    Ok(combine(reports, started.elapsed()))
}

/// One report for the epoch from every task's.
pub(crate) fn combine(reports: Vec<TaskReport>, took: Duration) -> EpochReport {
    let mut out = EpochReport {
        seconds: took.as_secs_f64(),
        ..EpochReport::default()
    };
    let (mut loss, mut batches) = (0f64, 0u64);
    for r in reports {
        out.syncs = out.syncs.max(r.syncs);
        out.steps = out.steps.max(r.steps);
        out.examples += r.examples;
        out.origin_us = r.origin_us;
        out.replica_checksums.push(r.checksum);
        out.exchange.extend(r.exchange);
        loss += r.loss_sum;
        batches += r.batches;
        out.records.extend(r.records);
    }
    out.mean_loss = loss / batches.max(1) as f64;
    out.records.sort_by_key(|r| (r.worker, r.step));
    out
}

impl Trainer {
    fn train(&self, task: &BarrierTask, mut source: BatchSource) -> Result<TaskReport> {
        let mut rep = self.replica.borrow_mut();
        if task.attempt() > 0 {
            // A restarted stage trains from the epoch's start again.
            rep.restore(&self.snapshot)?;
        }
        let worker = task.workers()[task.rank()];
        task.clock_offset_us()?;
        let origin = match self.origin_us {
            Some(o) => o,
            None => {
                let now = task.aligned_now_us()?;
                task.all_gather(&now)?.into_iter().min().unwrap_or(now)
            }
        };
        let per_sync = match self.sync {
            Sync::EveryStep => 1,
            Sync::Average { every, .. } => every,
        };
        let skipped = self.skip_syncs * per_sync;
        for _ in 0..skipped {
            if source.next_batch()?.is_none() {
                break;
            }
        }
        let mut comm: Vec<f32> = Vec::new();
        let mut counters = Counters::default();
        let mut records = Vec::new();
        let mut local = 0u64;
        loop {
            let t0 = Instant::now();
            let start_us = (task.aligned_now_us()? - origin).max(0) as u64;
            let batch = source.next_batch()?;
            let mut rec = StepRecord::begin(
                worker,
                self.epoch,
                self.first_step + skipped + local,
                start_us,
                t0.elapsed().as_micros() as u64,
            );
            let before = task.comm_stats();
            let synced_before = counters.syncs;
            let go_on = match self.sync {
                Sync::EveryStep => dp_step(
                    task,
                    &mut rep,
                    batch.as_ref(),
                    &mut comm,
                    &mut rec,
                    &mut counters,
                )?,
                Sync::Average { every, updater } => {
                    let at_sync = batch.is_none() || (local + 1).is_multiple_of(every);
                    let go_on = local_step(&mut rep, batch.as_ref(), &mut rec, &mut counters)?;
                    if at_sync {
                        average(task, &mut rep, updater, &mut comm, &mut counters)?
                    } else {
                        go_on
                    }
                }
            };
            rec.set_comm(&before, &task.comm_stats());
            if !go_on {
                break;
            }
            if batch.is_some() {
                records.push(rec);
                local += 1;
            }
            if counters.syncs > synced_before && task.rank() == 0 {
                self.maybe_checkpoint(&rep, self.skip_syncs + counters.syncs, rec_step(&records))?;
            }
        }
        if let Sync::EveryStep = self.sync {
            // Running statistics (batch norm) are per replica between steps; the epoch ends with
            // their mean on every replica.
            let buffers = rep.net.buffers_mut();
            if !buffers.is_empty() {
                task.all_reduce(buffers, ReduceOp::Mean)?;
            }
        }
        Ok(TaskReport {
            records,
            syncs: counters.syncs,
            steps: local + skipped,
            examples: counters.examples,
            loss_sum: counters.loss_sum,
            batches: counters.batches,
            origin_us: origin,
            checksum: rep.checksum(),
            exchange: None,
        })
    }

    /// Rank 0 saves a checkpoint after every `every`-th synchronization of the epoch.
    fn maybe_checkpoint(&self, rep: &Replica, syncs: u64, step: u64) -> Result<()> {
        checkpoint_if_due(
            self.checkpoint.as_ref(),
            &self.config,
            rep,
            (self.epoch, self.first_step),
            syncs,
            step,
        )
    }
}

/// Saves a mid-epoch checkpoint of `rep` when `syncs` (of the epoch `at` = (epoch, first
/// step)) is a multiple of the policy's `every`; `step` is the global step just done.
pub(super) fn checkpoint_if_due(
    policy: Option<&CheckpointPolicy>,
    config: &ember_storage::StorageConfig,
    rep: &Replica,
    at: (usize, u64),
    syncs: u64,
    step: u64,
) -> Result<()> {
    let Some(policy) = policy else {
        return Ok(());
    };
    if policy.every == 0 || !syncs.is_multiple_of(policy.every) {
        return Ok(());
    }
    let progress = Progress {
        epoch: at.0,
        syncs_in_epoch: syncs,
        global_step: step + 1,
        epoch_first_step: at.1,
        epoch_done: false,
    };
    checkpoint::save(&policy.url, config, rep, &progress)
}

fn rec_step(records: &[StepRecord]) -> u64 {
    records.last().map_or(0, |r| r.step)
}

/// Dense data parallel: this worker's gradient times its example count, all-reduced with the
/// counts, divided by the total: the gradient one worker would compute on every worker's
/// examples together. `false` once no worker has data left.
fn dp_step(
    task: &BarrierTask,
    rep: &mut Replica,
    batch: Option<&MiniBatch>,
    comm: &mut Vec<f32>,
    rec: &mut StepRecord,
    c: &mut Counters,
) -> Result<bool> {
    let np = rep.net.num_params();
    let n = batch.map_or(0, MiniBatch::len);
    let mut loss = 0f32;
    if let Some(b) = batch {
        let t = Instant::now();
        loss = backprop(rep, b, rec)?;
        rec.compute_us = t.elapsed().as_micros() as u64;
    }
    let scale = n as f32;
    comm.clear();
    if n > 0 {
        comm.extend(rep.net.gradients().iter().map(|g| g * scale));
    } else {
        comm.resize(np, 0.0);
    }
    comm.push(scale);
    task.all_reduce(comm, ReduceOp::Sum)?;
    let total = comm[np];
    if total == 0.0 {
        return Ok(false);
    }
    let t = Instant::now();
    let inv = 1.0 / total;
    let (params, grads) = rep.net.params_and_grads_mut();
    for (g, s) in grads.iter_mut().zip(&comm[..np]) {
        *g = s * inv;
    }
    rep.opt.step(params, grads)?;
    rec.optimizer_us = t.elapsed().as_micros() as u64;
    c.syncs += 1;
    count(c, rec, n, loss);
    Ok(true)
}

/// Forward and backward on one minibatch; a non-finite loss is an error naming the step.
pub(super) fn backprop(rep: &mut Replica, b: &MiniBatch, rec: &StepRecord) -> Result<f32> {
    let x = network_input(&rep.net, b)?;
    let loss = rep.net.backprop(x, b.labels().view().into_dyn())?;
    if !loss.is_finite() {
        return Err(MlError::Shape(format!(
            "training diverged: loss is {loss} on worker {} at step {}",
            rec.worker, rec.step
        )));
    }
    Ok(loss)
}

pub(super) fn count(c: &mut Counters, rec: &mut StepRecord, n: usize, loss: f32) {
    if n > 0 {
        c.examples += n as u64;
        c.loss_sum += loss as f64;
        c.batches += 1;
        rec.examples = n;
        rec.loss = loss;
    }
}

/// A local step of parameter averaging: backprop and this replica's own optimizer update.
fn local_step(
    rep: &mut Replica,
    batch: Option<&MiniBatch>,
    rec: &mut StepRecord,
    c: &mut Counters,
) -> Result<bool> {
    let Some(b) = batch else {
        return Ok(true);
    };
    let t = Instant::now();
    let loss = backprop(rep, b, rec)?;
    rec.compute_us = t.elapsed().as_micros() as u64;
    let t = Instant::now();
    let (params, grads) = rep.net.params_and_grads_mut();
    rep.opt.step(params, grads)?;
    rec.optimizer_us = t.elapsed().as_micros() as u64;
    c.trained_since_sync += 1;
    count(c, rec, b.len(), loss);
    Ok(true)
}

/// Averages parameters, running statistics and (with `updater`) optimizer state over the
/// workers that trained since the last averaging. `false` once none did.
fn average(
    task: &BarrierTask,
    rep: &mut Replica,
    updater: bool,
    comm: &mut Vec<f32>,
    c: &mut Counters,
) -> Result<bool> {
    let weight = if c.trained_since_sync > 0 { 1f32 } else { 0f32 };
    comm.clear();
    rep.append_averaged(comm, updater, weight);
    comm.push(weight);
    task.all_reduce(comm, ReduceOp::Sum)?;
    let total = comm[comm.len() - 1];
    if total == 0.0 {
        return Ok(false);
    }
    rep.load_averaged(comm, updater, 1.0 / total);
    c.trained_since_sync = 0;
    c.syncs += 1;
    Ok(true)
}
