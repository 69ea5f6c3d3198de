//! Parameter averaging the way DL4J runs it on Spark: one engine job per averaging round. The
//! round's starting parameters are broadcast (worker 0's replica), every partition trains its
//! next `averaging_frequency` minibatches from them, and the trained replicas are summed with
//! `tree_aggregate` and averaged. Kept to measure against the resident mode (one barrier stage
//! per epoch), which avoids a job, a broadcast and a tree of shuffles per round.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::checkpoint::{self, Progress};
use super::master::{EpochInput, EpochJob, EpochReport, ParameterAveraging};
use super::replica::{checksum, Replica};
use super::stats::StepRecord;
use crate::data::MiniBatch;
use crate::error::Result;
use crate::train::network_input;

/// A round's partial result: the weighted sum of trained replicas and what they did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Partial {
    sum: Vec<f32>,
    weight: f32,
    records: Vec<StepRecord>,
    examples: u64,
    loss_sum: f64,
    batches: u64,
}

impl Partial {
    fn merge(mut self, other: Partial) -> Partial {
        if self.sum.is_empty() {
            self.sum = other.sum;
        } else if !other.sum.is_empty() {
            for (a, b) in self.sum.iter_mut().zip(&other.sum) {
                *a += b;
            }
        }
        self.weight += other.weight;
        self.records.extend(other.records);
        self.examples += other.examples;
        self.loss_sum += other.loss_sum;
        self.batches += other.batches;
        self
    }
}

/// The replica's parameters, running statistics and (with `updater`) optimizer state, flat.
fn flatten(rep: &Replica, updater: bool) -> Vec<f32> {
    let mut v = Vec::new();
    rep.append_averaged(&mut v, updater, 1.0);
    v
}

pub(crate) fn run_epoch(job: &EpochJob<'_>, pa: &ParameterAveraging) -> Result<EpochReport> {
    let started = Instant::now();
    let batches: ember_engine::Rdd<MiniBatch> = match &job.input {
        EpochInput::Batches(rdd) => rdd.clone(),
        EpochInput::Paths(paths) => {
            let config = job.ctx.conf().storage_config();
            paths.map(move |url| {
                super::data::read_minibatch(&url, &config)
                    .unwrap_or_else(|e| panic!("reading exported minibatch: {e}"))
            })
        }
    };
    let k = pa.averaging_frequency;
    let updater = pa.average_updater;
    let counts = batches
        .map_partitions(|it| Box::new(std::iter::once(it.count())))
        .collect()?;
    let rounds = counts.iter().map(|c| c.div_ceil(k)).max().unwrap_or(0);
    // Steps of the epoch: the longest partition's batches (a last round may train fewer than
    // k), rounds skipped after a resume included, as in the resident mode.
    let longest = counts.iter().copied().max().unwrap_or(0) as u64;
    let origin = job.origin_us.unwrap_or_else(unix_micros);
    let mut report = EpochReport {
        origin_us: origin,
        ..EpochReport::default()
    };
    let (mut loss, mut nbatches) = (0f64, 0u64);
    for round in (job.skip_syncs as usize)..rounds {
        let round_start = Instant::now();
        let values = flatten(&job.replica.borrow(), updater);
        let bytes = values.len() as u64 * 4;
        let start = job.ctx.broadcast(values)?;
        let replica = Rc::clone(&job.replica);
        let (epoch, first) = (job.epoch, job.first_step + (round * k) as u64);
        let partial = batches
            .map_partitions_with_index(move |_, it| {
                let out = train_round(
                    &replica, &start, it, round, k, updater, epoch, first, origin,
                );
                Box::new(std::iter::once(out))
            })
            .tree_aggregate(
                Partial::default(),
                Partial::merge,
                Partial::merge,
                pa.aggregation_depth,
            )?;
        if partial.weight > 0.0 {
            let inv = 1.0 / partial.weight;
            job.replica
                .borrow_mut()
                .load_averaged(&partial.sum, updater, inv);
        }
        // What the round cost beyond the tasks' own steps (broadcast, scheduling, the tree of
        // shuffles) counts as each worker's communication in the round's last step.
        let round_us = round_start.elapsed().as_micros() as u64;
        let mut records = partial.records;
        records.sort_by_key(|r| (r.worker, r.step));
        for w in records
            .iter()
            .map(|r| r.worker)
            .collect::<std::collections::BTreeSet<_>>()
        {
            let spent: u64 = records
                .iter()
                .filter(|r| r.worker == w)
                .map(|r| r.total_us())
                .sum();
            if let Some(last) = records.iter_mut().rev().find(|r| r.worker == w) {
                last.comm_us = round_us.saturating_sub(spent);
                last.bytes_received = bytes;
                last.bytes_sent = bytes;
            }
        }
        report.examples += partial.examples;
        loss += partial.loss_sum;
        nbatches += partial.batches;
        report.syncs += 1;
        let last_step = records.iter().map(|r| r.step).max();
        report.records.extend(records);
        // Mid-epoch checkpoints: worker 0 writes between rounds (the next round's job cannot
        // start without it, so no worker runs ahead of the checkpoint).
        if let (Some(policy), 0, Some(step)) = (&job.checkpoint, job.ctx.worker_index(), last_step)
        {
            let syncs = round as u64 + 1;
            if policy.every > 0 && syncs.is_multiple_of(policy.every) && (round + 1) < rounds {
                let progress = Progress {
                    epoch: job.epoch,
                    syncs_in_epoch: syncs,
                    global_step: step + 1,
                    epoch_first_step: job.first_step,
                    epoch_done: false,
                };
                let config = job.ctx.conf().storage_config();
                checkpoint::save(&policy.url, &config, &job.replica.borrow(), &progress)?;
            }
        }
    }
    report.steps = longest;
    report.mean_loss = loss / nbatches.max(1) as f64;
    report.seconds = started.elapsed().as_secs_f64();
    // Every worker applied the same average: one checksum per worker, all equal.
    let sum = checksum(job.replica.borrow().net.params());
    report.replica_checksums = vec![sum; job.ctx.num_workers()];
    Ok(report)
}

/// One partition's part of a round: minibatches `round*k .. round*k + k`, from the broadcast
/// starting point.
#[allow(clippy::too_many_arguments)]
fn train_round(
    replica: &Rc<RefCell<Replica>>,
    start: &[f32],
    batches: ember_engine::BoxIter<MiniBatch>,
    round: usize,
    k: usize,
    updater: bool,
    epoch: usize,
    first_step: u64,
    origin: i64,
) -> Partial {
    let mut guard = replica.borrow_mut();
    let rep = &mut *guard;
    rep.load_averaged(start, updater, 1.0);
    let worker = ember_engine::current_worker().unwrap_or(0);
    let mut out = Partial::default();
    for (i, b) in batches.skip(round * k).take(k).enumerate() {
        let t = Instant::now();
        let start_us = (unix_micros() - origin).max(0) as u64;
        let x = network_input(&rep.net, &b).unwrap_or_else(|e| panic!("{e}"));
        let loss = rep
            .net
            .backprop(x, b.labels().view().into_dyn())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(loss.is_finite(), "training diverged: loss is {loss}");
        let compute = t.elapsed();
        let t = Instant::now();
        let (params, grads) = rep.net.params_and_grads_mut();
        rep.opt
            .step(params, grads)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut rec = StepRecord::begin(worker, epoch, first_step + i as u64, start_us, 0);
        rec.compute_us = compute.as_micros() as u64;
        rec.optimizer_us = t.elapsed().as_micros() as u64;
        rec.examples = b.len();
        rec.loss = loss;
        out.records.push(rec);
        out.examples += b.len() as u64;
        out.loss_sum += loss as f64;
        out.batches += 1;
    }
    if out.batches > 0 {
        out.sum = flatten(rep, updater);
        out.weight = 1.0;
    }
    out
}

fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
