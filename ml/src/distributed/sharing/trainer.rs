//! One epoch of gradient sharing on one worker: the barrier task's loop.
//!
//! Each step the worker first brings in the updates it must have (with `max_staleness` k: every
//! worker's update of every step up to s-1-k; k = 0 is synchronous), applies them, then trains
//! on its next minibatch: the optimizer's output for the step goes into the residual, the
//! residual is threshold-encoded, and the message goes to the other workers and into its own
//! queue (a worker applies its own update the same way as everyone else's). Dense warm-up
//! steps all-reduce the whole update instead.
//!
//! After the epoch the replicas agree bit for bit: synchronously they always do (every worker
//! applies the same updates in the same order); with staleness the workers applied the same
//! updates in different orders, so rank 0's parameters are broadcast to even out the rounding.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use ember_engine::{BarrierTask, ReduceOp};

use super::encoding::encode;
use super::error::SharingError;
use super::exchange::Exchange;
use super::record::{ResidualStats, SharingRecord};
use super::{Settings, WorkerState};
use crate::distributed::master::{CheckpointPolicy, ExchangeSummary};
use crate::distributed::replica::{checksum, BatchSource, Replica, Snapshot};
use crate::distributed::resident::{backprop, checkpoint_if_due, count, Counters, TaskReport};
use crate::distributed::stats::StepRecord;
use crate::error::Result;

/// What every task of the epoch's stage shares on one worker.
pub(crate) struct Trainer {
    pub replica: Rc<RefCell<Replica>>,
    pub snapshot: Snapshot,
    pub state: Rc<RefCell<WorkerState>>,
    pub state_snapshot: WorkerState,
    pub settings: Settings,
    pub epoch: usize,
    pub first_step: u64,
    pub skip_syncs: u64,
    pub origin_us: Option<i64>,
    pub checkpoint: Option<CheckpointPolicy>,
    pub config: ember_storage::StorageConfig,
}

impl Trainer {
    pub(crate) fn train(&self, task: &BarrierTask, mut source: BatchSource) -> Result<TaskReport> {
        let mut rep = self.replica.borrow_mut();
        let mut st = self.state.borrow_mut();
        if task.attempt() > 0 {
            // A restarted stage trains from the epoch's start again.
            rep.restore(&self.snapshot)?;
            *st = self.state_snapshot.clone();
        }
        let rank = task.rank();
        let worker = task.workers()[rank];
        task.clock_offset_us()?;
        let origin = match self.origin_us {
            Some(o) => o,
            None => {
                let now = task.aligned_now_us()?;
                task.all_gather(&now)?.into_iter().min().unwrap_or(now)
            }
        };
        let skipped = self.skip_syncs;
        for _ in 0..skipped {
            if source.next_batch()?.is_none() {
                break;
            }
        }
        let cfg = &self.settings;
        let np = rep.net.num_params();
        let first = self.first_step + skipped;
        let sync = cfg.max_staleness == 0;
        let debug = cfg.debug;
        let mut ex = Exchange::new(
            task,
            np,
            first.max(cfg.dense_warmup_steps),
            cfg.relay_above,
            cfg.relay_fanout,
        );
        let mut scratch = vec![0f32; np];
        let mut comm: Vec<f32> = Vec::new();
        let mut sent_idx: Vec<usize> = Vec::new();
        let mut counters = Counters::default();
        let mut records: Vec<StepRecord> = Vec::new();
        let mut summary = ExchangeSummary {
            rank,
            ..ExchangeSummary::default()
        };
        let mut s = first;
        loop {
            let start_us = (task.aligned_now_us()? - origin).max(0) as u64;
            let before = task.comm_stats();
            let dups_before = ex.duplicates;
            let dense = s < cfg.dense_warmup_steps;
            let mut applied = Default::default();
            if !dense {
                ex.poll()?;
                ex.wait_through(s as i64 - 1 - cfg.max_staleness as i64)?;
                applied = ex.apply(rep.net.params_mut(), sync, s, |step, params| {
                    if debug && sync {
                        if let Some(r) = records.iter_mut().rev().find(|r| r.step == step) {
                            if let Some(sh) = r.sharing.as_mut() {
                                sh.params_checksum = Some(checksum(params));
                            }
                        }
                    }
                })?;
                if ex.terminated.is_some() {
                    break;
                }
            }
            let t = Instant::now();
            let batch = source.next_batch()?;
            let mut rec = StepRecord::begin(
                worker,
                self.epoch,
                s,
                start_us,
                t.elapsed().as_micros() as u64,
            );
            let mut loss = 0f32;
            if let Some(b) = &batch {
                let t = Instant::now();
                loss = backprop(&mut rep, b, &rec)?;
                rec.compute_us = t.elapsed().as_micros() as u64;
                // The optimizer's output for the step, computed on a copy of the parameters:
                // the update is what it would have added.
                let t = Instant::now();
                let Replica { net, opt } = &mut *rep;
                let (params, grads) = net.params_and_grads_mut();
                scratch.copy_from_slice(params);
                opt.step(&mut scratch, grads)?;
                for (u, p) in scratch.iter_mut().zip(params.iter()) {
                    *u -= p;
                }
                rec.optimizer_us = t.elapsed().as_micros() as u64;
            }
            let active = batch.is_some();
            let mut sharing = SharingRecord {
                threshold: 0.0,
                encoding: None,
                entries: 0,
                sparsity: 0.0,
                message_bytes: 0,
                staleness_max: applied.staleness_max,
                applied: applied.others,
                duplicates: 0,
                residual: None,
                params_checksum: None,
            };
            if dense {
                comm.clear();
                if active {
                    comm.extend_from_slice(&scratch);
                } else {
                    comm.resize(np, 0.0);
                }
                comm.push(if active { 1.0 } else { 0.0 });
                task.all_reduce(&mut comm, ReduceOp::Sum)?;
                if comm[np] == 0.0 {
                    break;
                }
                for (p, u) in rep.net.params_mut().iter_mut().zip(&comm[..np]) {
                    *p += u;
                }
                summary.dense_steps += 1;
                sharing.entries = np as u64;
                sharing.sparsity = 1.0;
                sharing.message_bytes = 4 * np as u64;
                if debug {
                    sharing.params_checksum = Some(checksum(rep.net.params()));
                }
            } else {
                let st = &mut *st;
                if active {
                    for (i, (r, u)) in st.residual.iter_mut().zip(&scratch).enumerate() {
                        *r += u;
                        if !r.is_finite() {
                            let (what, value) = if u.is_finite() {
                                ("residual", *r)
                            } else {
                                ("update", *u)
                            };
                            return Err(SharingError::NonFinite {
                                what,
                                worker: rank,
                                step: s,
                                index: i,
                                value,
                            }
                            .into());
                        }
                    }
                }
                let tau = st.threshold;
                sent_idx.clear();
                let enc = encode(&mut st.residual, tau, rank as u32, s, active, |i| {
                    if cfg.momentum_masking {
                        sent_idx.push(i)
                    }
                });
                if active {
                    st.post.process(st.trained, tau, &mut st.residual);
                    st.threshold = st.algo.next(tau, enc.sparsity());
                    st.trained += 1;
                    summary.sent += 1;
                }
                mask_momentum(&mut rep, &sent_idx);
                sharing.threshold = tau;
                sharing.encoding = Some(enc.header.encoding);
                sharing.entries = enc.header.count as u64;
                sharing.sparsity = enc.sparsity();
                sharing.message_bytes = enc.bytes.len() as u64;
                if debug {
                    sharing.residual = Some(ResidualStats::of(&st.residual, tau));
                }
                summary.message_bytes += enc.bytes.len() as u64;
                ex.post_own(enc.bytes, &enc.header)?;
            }
            rec.set_comm(&before, &task.comm_stats());
            sharing.duplicates = ex.duplicates - dups_before;
            rec.sharing = Some(sharing);
            if let Some(b) = &batch {
                counters.syncs += 1;
                count(&mut counters, &mut rec, b.len(), loss);
                records.push(rec);
                if rank == 0 {
                    checkpoint_if_due(
                        self.checkpoint.as_ref(),
                        &self.config,
                        &rep,
                        (self.epoch, self.first_step),
                        skipped + counters.syncs,
                        s,
                    )?;
                }
            }
            s += 1;
        }
        if !sync {
            // Every replica applied the same updates, in different orders: rank 0's rounding
            // becomes everyone's.
            let mut params = rep.net.params().to_vec();
            task.broadcast(&mut params, 0)?;
            rep.net.params_mut().copy_from_slice(&params);
        }
        let buffers = rep.net.buffers_mut();
        if !buffers.is_empty() {
            task.all_reduce(buffers, ReduceOp::Mean)?;
        }
        summary.applied_from = ex.applied_from.clone();
        summary.duplicates = ex.duplicates;
        summary.late = ex.late;
        summary.staleness_max = ex.staleness_max;
        let steps = ex.terminated.unwrap_or(s).saturating_sub(self.first_step);
        Ok(TaskReport {
            records,
            syncs: counters.syncs + skipped,
            steps,
            examples: counters.examples,
            loss_sum: counters.loss_sum,
            batches: counters.batches,
            origin_us: origin,
            checksum: rep.checksum(),
            exchange: Some(summary),
        })
    }
}

/// Momentum factor masking (Deep Gradient Compression): the optimizer's first state slot
/// (momentum, or Adam's first moment) is cleared where an entry was sent, so momentum does not
/// keep pushing a value the other workers already received.
fn mask_momentum(rep: &mut Replica, sent: &[usize]) {
    if sent.is_empty() {
        return;
    }
    let n = rep.net.num_params();
    let state = rep.opt.state_mut();
    if state.len() < n {
        return;
    }
    for &i in sent {
        state[i] = 0.0;
    }
}
