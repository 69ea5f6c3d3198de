//! Keyed inference (DL4J's `feedForwardWithKey` / `feedForwardWithMaskAndKey`): an RDD of
//! `(key, example)` pairs becomes an RDD of `(key, output)` pairs, partition by partition and
//! in order, so every key comes back exactly once whatever the partitioning.
//!
//! Examples are stacked into forward passes of `batch_size` on the network copies of the
//! process ([`super::copies`]). Batching never changes an output: every layer computes an
//! example's values from that example alone (inference uses running statistics, no dropout),
//! and the GEMM kernels compute each output value in an order that depends on the inner
//! dimension only, not on how many rows the batch has (`matrixmultiply` packs and accumulates
//! the same `k` blocks for every row; the shape-based switch to the `gemm` crate in
//! [`crate::tensor::gemm`] applies to long inner dimensions with small outputs, which a forward
//! pass meets only for an input wider than 1024 values feeding a layer narrow enough; such
//! networks should be checked as the test `batch_sizes_never_change_keyed_outputs` does).

use std::collections::VecDeque;
use std::fmt::Debug;
use std::rc::Rc;

use ember_engine::{Data, Rdd};
use ndarray::IxDyn;

use super::copies::{fail_task, Copies, CopyPlan, EvalOptions, Lease};
use super::inference_error::InferenceError;
use super::network::DistributedNetwork;
use crate::error::{MlError, Result};
use crate::nn::Network;
use crate::tensor::Tensor;

impl DistributedNetwork {
    /// The network's output for every keyed example: a tensor of one example's shape (or
    /// `[1, ...]` around it, kept in the output), in forward passes of `batch_size`.
    pub fn predict_with_key<K: Data + Debug>(
        &self,
        data: &Rdd<(K, Tensor)>,
        batch_size: usize,
    ) -> Result<Rdd<(K, Tensor)>> {
        let masked = data.map(|(k, t)| (k, (t, None)));
        self.predict_with_mask_and_key(&masked, &EvalOptions::default().batch_size(batch_size))
    }

    /// [`Self::predict_with_key`] with an optional feature mask per example and every setting
    /// of [`EvalOptions`] (copies per process, batch size). A mask has the example's shape, or
    /// holds one value for the whole example; the features are multiplied by it before the
    /// forward pass (masked values count as 0, as DL4J's feature masks zero padded steps).
    ///
    /// The returned RDD owns the job's pool of network copies: copies made by its tasks stay
    /// charged to the block manager while it lives (it may be computed again), and are freed
    /// with it.
    pub fn predict_with_mask_and_key<K: Data + Debug>(
        &self,
        data: &Rdd<(K, (Tensor, Option<Tensor>))>,
        opts: &EvalOptions,
    ) -> Result<Rdd<(K, Tensor)>> {
        let plan = CopyPlan::new(&self.ctx, &self.replica.borrow().net, opts)?;
        let job = Rc::new(KeyedJob {
            copies: Copies::new(self),
            batch: opts.batch_size,
            input_shape: self.replica.borrow().net.config().input_shape.clone(),
        });
        let j = Rc::clone(&job);
        let out = data.map_partitions(move |it| {
            let mut run = KeyedRun {
                job: Rc::clone(&j),
                input: it,
                lease: None,
                ready: VecDeque::new(),
                done: false,
            };
            Box::new(std::iter::from_fn(move || run.next()))
        });
        job.copies.attach(out.id(), plan, "predicting")?;
        Ok(out)
    }

    /// The most likely class of every keyed example (the index of its largest output, the
    /// first on ties).
    pub fn predict_classes_with_key<K: Data + Debug>(
        &self,
        data: &Rdd<(K, Tensor)>,
        batch_size: usize,
    ) -> Result<Rdd<(K, usize)>> {
        Ok(self
            .predict_with_key(data, batch_size)?
            .map(|(k, t)| (k, argmax(&t))))
    }
}

/// Index of the largest value (the first on ties; NaN never wins).
fn argmax(t: &Tensor) -> usize {
    let a = t.to_array();
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &v) in a.iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

struct KeyedJob {
    copies: Copies,
    batch: usize,
    input_shape: Vec<usize>,
}

/// One partition being predicted: pulls `batch * copies` examples at a time, runs them, hands
/// the outputs out in order; returns its copies when the input ends.
struct KeyedRun<K> {
    job: Rc<KeyedJob>,
    input: ember_engine::BoxIter<(K, (Tensor, Option<Tensor>))>,
    lease: Option<Lease>,
    ready: VecDeque<(K, Tensor)>,
    done: bool,
}

impl<K: Data + Debug> KeyedRun<K> {
    fn next(&mut self) -> Option<(K, Tensor)> {
        loop {
            if let Some(out) = self.ready.pop_front() {
                return Some(out);
            }
            if self.done {
                self.lease = None;
                return None;
            }
            if let Err(e) = self.fill() {
                fail_task("keyed inference", e);
                self.done = true;
                self.lease = None;
                return None;
            }
        }
    }

    /// Runs the next examples into `ready` (none left: `done`).
    fn fill(&mut self) -> Result<()> {
        if self.lease.is_none() {
            self.lease = Some(self.job.copies.take()?);
        }
        let lease = self.lease.as_mut().expect("taken above");
        let want = self.job.batch * lease.nets.len();
        let mut keys = Vec::with_capacity(want);
        let mut rows = Vec::with_capacity(want);
        for (k, (t, mask)) in self.input.by_ref().take(want) {
            rows.push(example(&k, t, mask, &self.job.input_shape)?);
            keys.push(k);
        }
        if keys.len() < want {
            self.done = true;
        }
        if keys.is_empty() {
            return Ok(());
        }
        let width: usize = self.job.input_shape.iter().product();
        let values: Vec<f32> = rows.iter().flat_map(|r| r.values.iter().copied()).collect();
        let flat = forward_flat(lease, &values, width, self.job.batch)?;
        let per = flat.len() / keys.len();
        let out_shape = lease.nets[0].output_shape().to_vec();
        let outs = rows
            .iter()
            .zip(flat.chunks_exact(per))
            .map(|(r, v)| {
                let mut s = out_shape.clone();
                if r.batched {
                    s.insert(0, 1);
                }
                Tensor::from_vec(&s, v.to_vec())
            })
            .collect::<Result<Vec<_>>>()?;
        self.job.copies.progress(keys.len());
        self.ready.extend(keys.into_iter().zip(outs));
        Ok(())
    }
}

/// One example's features (masked), and whether its tensor had a leading dimension of 1.
struct Example {
    values: Vec<f32>,
    batched: bool,
}

/// Checks one keyed example's shape (and its mask's) and applies the mask.
fn example<K: Debug>(
    key: &K,
    t: Tensor,
    mask: Option<Tensor>,
    input_shape: &[usize],
) -> Result<Example> {
    let shape = t.shape().to_vec();
    let batched = shape.len() == input_shape.len() + 1 && shape[0] == 1;
    if !(shape == input_shape || batched && shape[1..] == *input_shape) {
        return Err(InferenceError::TensorShape {
            what: "tensor",
            key: format!("{key:?}"),
            found: shape,
            expected: input_shape.to_vec(),
        }
        .into());
    }
    let mut values: Vec<f32> = t.into_array().iter().copied().collect();
    if let Some(m) = mask {
        let m: Vec<f32> = m.to_array().iter().copied().collect();
        if m.len() == 1 {
            values.iter_mut().for_each(|v| *v *= m[0]);
        } else if m.len() == values.len() {
            values.iter_mut().zip(&m).for_each(|(v, m)| *v *= m);
        } else {
            return Err(InferenceError::TensorShape {
                what: "mask",
                key: format!("{key:?}"),
                found: vec![m.len()],
                expected: input_shape.to_vec(),
            }
            .into());
        }
    }
    Ok(Example { values, batched })
}

/// The features of rows already decoded into one flat buffer (`rows * width` values), run in
/// forward passes of `batch` on `lease`'s copies; the outputs, flat, in row order. Shared with
/// the columnar path.
pub(crate) fn forward_flat(
    lease: &mut Lease,
    values: &[f32],
    width: usize,
    batch: usize,
) -> Result<Vec<f32>> {
    let rows = values.len() / width.max(1);
    if rows == 0 {
        return Ok(Vec::new());
    }
    let run = |net: &mut Network, chunk: &[f32]| -> Result<Vec<f32>> {
        let mut out = Vec::new();
        for part in chunk.chunks(batch * width) {
            let mut shape = vec![part.len() / width];
            shape.extend(&net.config().input_shape);
            let x = ndarray::ArrayViewD::from_shape(IxDyn(&shape), part)
                .map_err(|e| MlError::Shape(format!("stacking rows: {e}")))?;
            let y = net.predict(x)?;
            out.extend(y.as_standard_layout().iter().copied());
        }
        Ok(out)
    };
    if lease.nets.len() == 1 {
        return run(&mut lease.nets[0], values);
    }
    // Whole batches per copy, so every copy runs the forward passes one copy would.
    let batches = rows.div_ceil(batch);
    let per = batches.div_ceil(lease.nets.len()) * batch * width;
    let parts = std::thread::scope(|s| {
        let handles: Vec<_> = lease
            .nets
            .iter_mut()
            .zip(values.chunks(per))
            .map(|(net, chunk)| s.spawn(move || run(net, chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(MlError::Config("an inference thread panicked".into())))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(parts.concat())
}
