//! The sequential network: layers over one flat parameter buffer.

use std::ops::Range;

use ndarray::{ArrayD, ArrayViewD, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::config::NetworkConfig;
use super::layers::{self, Act, Init, Layer, Pass};
use crate::error::{MlError, Result};
use crate::optim::Optimizer;
use crate::tensor::Tensor;

/// Whether a named tensor is trained or is running state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// A trainable parameter (in [`Network::params`]).
    Param,
    /// Non-trainable state such as batch-norm running statistics (in [`Network::buffers`]).
    Buffer,
}

/// Where one named tensor lives in the network's flat buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name, `layers.{index}.{weight|bias|running_mean|running_var}`.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Range in [`Network::params`] (for parameters) or [`Network::buffers`] (for buffers).
    pub range: Range<usize>,
    /// Parameter or buffer.
    pub kind: TensorKind,
    /// Index of the owning layer.
    pub layer: usize,
}

/// Most values a network's flat buffers may hold (2^31, 8 GiB of `f32`).
const MAX_VALUES: usize = 1 << 31;

/// Number of values of a tensor of `shape` placed after `before` values, checked against
/// [`MAX_VALUES`] (sizes can come from a file).
fn checked_len(shape: &[usize], before: usize) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&len| len <= MAX_VALUES && before + len <= MAX_VALUES)
        .ok_or_else(|| {
            MlError::Config(format!(
                "a tensor of shape {shape:?} exceeds {MAX_VALUES} values"
            ))
        })
}

/// A sequential network. All trainable parameters live in one flat `f32` buffer (and their
/// gradients in another of the same layout), each layer seeing its own range; non-trainable state
/// (running statistics) lives in a third. Averaging, encoding or broadcasting a model is therefore
/// an operation on one slice.
#[derive(Debug)]
pub struct Network {
    config: NetworkConfig,
    layers: Vec<Box<dyn Layer>>,
    params: Vec<f32>,
    grads: Vec<f32>,
    buffers: Vec<f32>,
    param_ranges: Vec<Range<usize>>,
    buffer_ranges: Vec<Range<usize>>,
    tensors: Vec<TensorInfo>,
    output_shape: Vec<usize>,
    rng: StdRng,
}

impl Network {
    /// Builds and initializes the network a configuration describes (deterministic in its seed).
    pub fn new(config: NetworkConfig) -> Result<Self> {
        if config.input_shape.is_empty() || config.input_shape.contains(&0) {
            return Err(MlError::Config(format!(
                "input shape {:?}",
                config.input_shape
            )));
        }
        if config.layers.is_empty() {
            return Err(MlError::Config("a network needs at least one layer".into()));
        }
        let mut shape = config.input_shape.clone();
        let mut built = Vec::new();
        let mut tensors = Vec::new();
        let (mut param_ranges, mut buffer_ranges) = (Vec::new(), Vec::new());
        let (mut np, mut nb) = (0usize, 0usize);
        let mut inits = Vec::new();
        for (i, cfg) in config.layers.iter().enumerate() {
            let layer = layers::build(cfg, &shape)
                .map_err(|e| MlError::Config(format!("layer {i} ({cfg:?}): {e}")))?;
            let p0 = np;
            for spec in layer.params() {
                let len = checked_len(&spec.shape, np)?;
                inits.push((np..np + len, spec.init, TensorKind::Param));
                tensors.push(TensorInfo {
                    name: format!("layers.{i}.{}", spec.name),
                    shape: spec.shape,
                    range: np..np + len,
                    kind: TensorKind::Param,
                    layer: i,
                });
                np += len;
            }
            param_ranges.push(p0..np);
            let b0 = nb;
            for spec in layer.buffers() {
                let len = checked_len(&spec.shape, nb)?;
                inits.push((nb..nb + len, spec.init, TensorKind::Buffer));
                tensors.push(TensorInfo {
                    name: format!("layers.{i}.{}", spec.name),
                    shape: spec.shape,
                    range: nb..nb + len,
                    kind: TensorKind::Buffer,
                    layer: i,
                });
                nb += len;
            }
            buffer_ranges.push(b0..nb);
            shape = layer.out_shape();
            built.push(layer);
        }
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut params = vec![0f32; np];
        let mut buffers = vec![0f32; nb];
        for (range, init, kind) in inits {
            let dst = match kind {
                TensorKind::Param => &mut params[range],
                TensorKind::Buffer => &mut buffers[range],
            };
            match init {
                Init::Weight(scheme, fan_in, fan_out) => {
                    scheme.fill(dst, fan_in, fan_out, &mut rng)
                }
                Init::Zeros => dst.fill(0.0),
                Init::Ones => dst.fill(1.0),
            }
        }
        // Dropout draws from its own stream, derived from the seed.
        let dropout_rng = StdRng::seed_from_u64(config.seed ^ 0x9E37_79B9_7F4A_7C15);
        Ok(Network {
            config,
            layers: built,
            grads: vec![0f32; np],
            params,
            buffers,
            param_ranges,
            buffer_ranges,
            tensors,
            output_shape: shape,
            rng: dropout_rng,
        })
    }

    /// The configuration this network was built from.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Number of trainable parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Shape of one output example.
    pub fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    /// All trainable parameters, flat.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// All trainable parameters, flat and writable (for averaging or loading).
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// Gradients of the last [`Network::backprop`], same layout as [`Network::params`].
    pub fn gradients(&self) -> &[f32] {
        &self.grads
    }

    /// Parameters and gradients together, writable: for an optimizer step on gradients that
    /// were changed in place (all-reduced over workers, for example).
    pub fn params_and_grads_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.params, &mut self.grads)
    }

    /// Non-trainable state (batch-norm running statistics), flat.
    pub fn buffers(&self) -> &[f32] {
        &self.buffers
    }

    /// Non-trainable state, writable.
    pub fn buffers_mut(&mut self) -> &mut [f32] {
        &mut self.buffers
    }

    /// Every named tensor and where it lives.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Range of layer `i`'s parameters in [`Network::params`] (also valid for the gradients and
    /// for each slot of the optimizer state).
    pub fn layer_param_range(&self, i: usize) -> Range<usize> {
        self.param_ranges[i].clone()
    }

    /// Layer `i`'s parameters: a view into [`Network::params`].
    pub fn layer_params(&self, i: usize) -> &[f32] {
        &self.params[self.param_ranges[i].clone()]
    }

    /// Layer `i`'s gradients: a view into [`Network::gradients`].
    pub fn layer_gradients(&self, i: usize) -> &[f32] {
        &self.grads[self.param_ranges[i].clone()]
    }

    /// Replaces all parameters (e.g. with an average over workers); the length must match.
    pub fn set_params(&mut self, values: &[f32]) -> Result<()> {
        if values.len() != self.params.len() {
            return Err(MlError::Shape(format!(
                "network has {} parameters, got {}",
                self.params.len(),
                values.len()
            )));
        }
        self.params.copy_from_slice(values);
        Ok(())
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Restarts the dropout random stream from `seed` (dropout masks then repeat exactly).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    fn forward_act(&mut self, x: ArrayViewD<'_, f32>, train: bool) -> Result<Act> {
        if x.ndim() != self.config.input_shape.len() + 1
            || x.shape()[1..] != self.config.input_shape[..]
        {
            return Err(MlError::Shape(format!(
                "network expects a batch of examples of shape {:?}, got {:?}",
                self.config.input_shape,
                x.shape()
            )));
        }
        let mut a: Act = x.as_standard_layout().into_owned().into_shared();
        let mut pass = Pass {
            train,
            rng: &mut self.rng,
        };
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let p = &self.params[self.param_ranges[i].clone()];
            let b = &mut self.buffers[self.buffer_ranges[i].clone()];
            a = layer.forward(p, b, a, &mut pass)?;
        }
        Ok(a)
    }

    /// Runs the network on a batch `[batch, input_shape...]`; `train` selects batch statistics and
    /// dropout.
    pub fn forward(&mut self, x: ArrayViewD<'_, f32>, train: bool) -> Result<ArrayD<f32>> {
        Ok(self.forward_act(x, train)?.into_owned())
    }

    /// Inference on a [`Tensor`] batch, returning a tensor on the same device. Only host tensors
    /// exist today (see [`crate::tensor`]); others are an error.
    pub fn predict_tensor(&mut self, x: &Tensor) -> Result<Tensor> {
        let view = x.as_array().ok_or_else(|| {
            MlError::Backend(format!(
                "network layers run on the CPU; input is on {}",
                x.device()
            ))
        })?;
        Ok(Tensor::from_array(self.predict(view)?))
    }

    /// Inference output for a batch (no dropout, running statistics).
    pub fn predict(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        self.forward(x, false)
    }

    /// The most likely class of each example (argmax over the output's last axis).
    pub fn predict_classes(&mut self, x: ArrayViewD<'_, f32>) -> Result<Vec<usize>> {
        let out = self.predict(x)?;
        let last = Axis(out.ndim() - 1);
        Ok(out
            .lanes(last)
            .into_iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                        if v > bv {
                            (i, v)
                        } else {
                            (bi, bv)
                        }
                    })
                    .0
            })
            .collect())
    }

    /// The loss on a batch without touching gradients (`train` as in [`Network::forward`]).
    pub fn loss(
        &mut self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, f32>,
        train: bool,
    ) -> Result<f32> {
        let out = self.forward_act(x, train)?;
        Ok(self.config.loss.value_and_grad(&out.view(), &y)?.0)
    }

    /// Forward and backward pass in training mode: fills [`Network::gradients`] and returns the
    /// loss. Returns the gradient with respect to the input too when `input_grad`.
    pub fn backprop_with_input_grad(
        &mut self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, f32>,
        input_grad: bool,
    ) -> Result<(f32, Option<ArrayD<f32>>)> {
        let out = self.forward_act(x, true)?;
        let (loss, mut d) = self.config.loss.value_and_grad(&out.view(), &y)?;
        drop(out);
        for i in (0..self.layers.len()).rev() {
            let need_dx = i > 0 || input_grad;
            let p = &self.params[self.param_ranges[i].clone()];
            let g = &mut self.grads[self.param_ranges[i].clone()];
            match self.layers[i].backward(p, g, d, need_dx)? {
                Some(dx) => d = dx,
                None => return Ok((loss, None)),
            }
        }
        Ok((loss, Some(d)))
    }

    /// Forward and backward pass in training mode: fills [`Network::gradients`], returns the loss.
    pub fn backprop(&mut self, x: ArrayViewD<'_, f32>, y: ArrayViewD<'_, f32>) -> Result<f32> {
        Ok(self.backprop_with_input_grad(x, y, false)?.0)
    }

    /// One training step on a batch: backprop, then an optimizer update. Returns the loss.
    pub fn fit_batch(
        &mut self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, f32>,
        opt: &mut Optimizer,
    ) -> Result<f32> {
        let loss = self.backprop(x, y)?;
        if !loss.is_finite() {
            return Err(MlError::Shape(format!("training diverged: loss is {loss}")));
        }
        opt.step(&mut self.params, &mut self.grads)?;
        Ok(loss)
    }
}
