//! Distributed evaluation (DL4J's `SparkDl4jMultiLayer.evaluate` / `doEvaluation`): every task
//! runs its partition's minibatches through a network copy of its process
//! ([`super::copies`]) in forward passes of `eval_batch_size` examples, into an empty copy of
//! the evaluation (or set of evaluations, [`crate::eval::Evaluations`], all fed by the one
//! pass); the driver merges the partitions' evaluations in partition order.
//!
//! Results equal a single-process evaluation of the same minibatches: a forward pass gives each
//! example the same output whatever batch it is in (see [`super::inference`]), and merging
//! counts is exact (confusion matrices, top-N counts and the per-score counts of ROC, so AUC
//! too). Regression sums are merged with Chan's pairwise update, which agrees with one pass to
//! the last few bits of an `f64`, not always bit for bit.

use std::rc::Rc;

use ember_engine::{BoxIter, Data, Rdd};
use ndarray::Ix2;

use super::copies::{fail_task, Copies, CopyPlan, EvalOptions};
use super::network::DistributedNetwork;
use crate::data::MiniBatch;
use crate::error::{MlError, Result};
use crate::eval::Evaluation;
use crate::nn::Network;
use crate::train::network_input;

/// Where a job's minibatches come from.
enum Source {
    Batches(Rdd<MiniBatch>),
    Paths(Rdd<String>),
}

impl DistributedNetwork {
    /// Evaluates the network on `data` into `evaluation` (any [`Evaluation`], or several at
    /// once as [`crate::eval::Evaluations`]); what `evaluation` already counted stays counted.
    /// Fails before the job starts when `opts` asks for more network copies than a worker's
    /// memory budget holds.
    pub fn evaluate<E: Evaluation + Data>(
        &self,
        data: &Rdd<MiniBatch>,
        evaluation: E,
        opts: &EvalOptions,
    ) -> Result<E> {
        self.evaluate_source(Source::Batches(data.clone()), evaluation, opts)
    }

    /// [`Self::evaluate`] over exported minibatch files ([`super::export_minibatches`]), read
    /// by the tasks (a missing or corrupt file fails the job naming it).
    pub fn evaluate_paths<E: Evaluation + Data>(
        &self,
        paths: &Rdd<String>,
        evaluation: E,
        opts: &EvalOptions,
    ) -> Result<E> {
        self.evaluate_source(Source::Paths(paths.clone()), evaluation, opts)
    }

    fn evaluate_source<E: Evaluation + Data>(
        &self,
        source: Source,
        evaluation: E,
        opts: &EvalOptions,
    ) -> Result<E> {
        let ctx = self.ctx.clone();
        let plan = CopyPlan::new(&ctx, &self.replica.borrow().net, opts)?;
        let mut zero = evaluation.clone();
        zero.reset();
        let job = EvalJob {
            copies: Copies::new(self),
            zero,
            batch: opts.batch_size,
        };
        let job = Rc::new(job);
        let parts: Rdd<E> = match source {
            Source::Batches(rdd) => {
                let job = Rc::clone(&job);
                rdd.map_partitions(move |it| job.run(it.map(Ok)))
            }
            Source::Paths(rdd) => {
                let job = Rc::clone(&job);
                let config = ctx.conf().storage_config();
                rdd.map_partitions(move |it| {
                    let config = config.clone();
                    job.run(it.map(move |url| super::data::read_minibatch(&url, &config)))
                })
            }
        };
        job.copies.attach(parts.id(), plan, "evaluating")?;
        let mut total = evaluation;
        for part in parts.collect()? {
            total.merge(&part)?;
        }
        Ok(total)
    }
}

/// What every task of one evaluation job needs (on this worker).
struct EvalJob<E> {
    copies: Copies,
    zero: E,
    batch: usize,
}

impl<E: Evaluation + Data> EvalJob<E> {
    /// One partition's evaluation, or a failed task (naming the cause) and no element.
    fn run(&self, batches: impl Iterator<Item = Result<MiniBatch>>) -> BoxIter<E> {
        match self.partition(batches) {
            Ok(e) => Box::new(std::iter::once(e)),
            Err(e) => {
                fail_task("distributed evaluation", e);
                Box::new(std::iter::empty())
            }
        }
    }

    fn partition(&self, batches: impl Iterator<Item = Result<MiniBatch>>) -> Result<E> {
        let mut lease = self.copies.take()?;
        let progress = self.copies.progress_counter();
        if let [net] = lease.nets.as_mut_slice() {
            let mut eval = self.zero.clone();
            for b in batches {
                eval_minibatch(net, &b?, self.batch, &mut eval, &progress)?;
            }
            return Ok(eval);
        }
        // Several copies: the partition's minibatches split into as many contiguous runs,
        // evaluated side by side, merged in order.
        let all = batches.collect::<Result<Vec<MiniBatch>>>()?;
        let per = all.len().div_ceil(lease.nets.len()).max(1);
        let zero = &self.zero;
        let batch = self.batch;
        let evals = std::thread::scope(|s| {
            let handles: Vec<_> = lease
                .nets
                .iter_mut()
                .zip(all.chunks(per))
                .map(|(net, run)| {
                    let progress = &progress;
                    s.spawn(move || -> Result<E> {
                        let mut eval = zero.clone();
                        for b in run {
                            eval_minibatch(net, b, batch, &mut eval, progress)?;
                        }
                        Ok(eval)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(MlError::Config("an evaluation thread panicked".into()))
                    })
                })
                .collect::<Result<Vec<E>>>()
        })?;
        let mut total = self.zero.clone();
        for e in &evals {
            total.merge(e)?;
        }
        Ok(total)
    }
}

/// Runs `batch` through `net` in forward passes of at most `size` examples into `eval`.
fn eval_minibatch<E: Evaluation>(
    net: &mut Network,
    batch: &MiniBatch,
    size: usize,
    eval: &mut E,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<()> {
    let mut one = |b: &MiniBatch| -> Result<()> {
        let out = net.predict(network_input(net, b)?)?;
        let rows = out.shape()[0];
        let cols = out.len() / rows.max(1);
        let out = out
            .into_shape_with_order((rows, cols))
            .map_err(|e| MlError::Shape(format!("network output as [batch, values]: {e}")))?
            .into_dimensionality::<Ix2>()
            .map_err(|e| MlError::Shape(e.to_string()))?;
        eval.eval_batch(b, out.view())?;
        progress(b.len());
        Ok(())
    };
    if batch.len() <= size {
        return one(batch);
    }
    for b in batch.batches(size)? {
        one(&b)?;
    }
    Ok(())
}
