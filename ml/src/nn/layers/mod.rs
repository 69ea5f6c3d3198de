//! Layer implementations. Each layer reads its parameters from, and writes its gradients to, its
//! view of the network's flat buffers; activations flow between layers as shared arrays so a
//! layer can keep its input for the backward pass without copying it.

mod batchnorm;
mod conv;
mod dense;
mod dropout;
mod pool;
mod shape;

use ndarray::{ArcArray, ArrayD, IxDyn};
use rand::rngs::StdRng;

use super::config::LayerConfig;
use super::init::WeightInit;
use crate::error::{MlError, Result};

/// Activations passed between layers: shared, so caching one is a reference-count increment.
pub(crate) type Act = ArcArray<f32, IxDyn>;

/// How a parameter tensor starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Init {
    /// Drawn from a scheme with the given fan-in and fan-out.
    Weight(WeightInit, usize, usize),
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
}

/// A named tensor a layer owns in a flat buffer.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub init: Init,
}

/// Mode and randomness of one forward pass.
pub(crate) struct Pass<'a> {
    pub train: bool,
    pub rng: &'a mut StdRng,
}

/// What every layer does.
pub(crate) trait Layer: Send + std::fmt::Debug {
    /// Trainable tensors, in storage order.
    fn params(&self) -> Vec<Spec> {
        Vec::new()
    }
    /// Non-trainable state (running statistics), in storage order.
    fn buffers(&self) -> Vec<Spec> {
        Vec::new()
    }
    /// Shape of one output example.
    fn out_shape(&self) -> Vec<usize>;
    /// Computes the output, keeping what the backward pass needs.
    fn forward(&mut self, p: &[f32], buf: &mut [f32], x: Act, pass: &mut Pass<'_>) -> Result<Act>;
    /// Writes the parameter gradients into `g` (overwriting it) and returns the input gradient
    /// when `need_dx`.
    fn backward(
        &mut self,
        p: &[f32],
        g: &mut [f32],
        dy: ArrayD<f32>,
        need_dx: bool,
    ) -> Result<Option<ArrayD<f32>>>;
}

/// Largest size any one dimension or setting may have (configurations come from files too, and
/// must not make the arithmetic overflow).
pub(crate) const MAX_DIM: usize = 1 << 24;

/// Builds the layer for `cfg` given the shape of one input example.
pub(crate) fn build(cfg: &LayerConfig, input: &[usize]) -> Result<Box<dyn Layer>> {
    let sizes: Vec<usize> = match cfg {
        LayerConfig::Dense { units, .. } => vec![*units],
        LayerConfig::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            ..
        } => {
            vec![
                *filters, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
            ]
        }
        LayerConfig::MaxPool2d { kernel, stride } | LayerConfig::AvgPool2d { kernel, stride } => {
            vec![kernel[0], kernel[1], stride[0], stride[1]]
        }
        _ => vec![],
    };
    if let Some(big) = sizes.iter().chain(input).find(|&&v| v > MAX_DIM) {
        return Err(MlError::Config(format!(
            "size {big} exceeds the limit of {MAX_DIM}"
        )));
    }
    Ok(match cfg {
        LayerConfig::Dense {
            units,
            activation,
            init,
        } => Box::new(dense::Dense::new(input, *units, *activation, *init)?),
        LayerConfig::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            activation,
            init,
        } => Box::new(conv::Conv2d::new(
            input,
            *filters,
            *kernel,
            *stride,
            *padding,
            *activation,
            *init,
        )?),
        LayerConfig::MaxPool2d { kernel, stride } => Box::new(pool::Pool2d::new(
            input,
            *kernel,
            *stride,
            pool::PoolKind::Max,
        )?),
        LayerConfig::AvgPool2d { kernel, stride } => Box::new(pool::Pool2d::new(
            input,
            *kernel,
            *stride,
            pool::PoolKind::Avg,
        )?),
        LayerConfig::BatchNorm { eps, momentum } => {
            Box::new(batchnorm::BatchNorm::new(input, *eps, *momentum)?)
        }
        LayerConfig::Dropout { rate } => Box::new(dropout::Dropout::new(input, *rate)?),
        LayerConfig::Flatten => Box::new(shape::Flatten::new(input)),
        LayerConfig::Activation { activation } => {
            activation.validate().map_err(MlError::Config)?;
            Box::new(shape::ActivationLayer::new(input, *activation))
        }
    })
}

/// Checks that a batch has the per-example shape a layer expects.
pub(crate) fn check_input(layer: &str, x: &Act, want: &[usize]) -> Result<usize> {
    if x.ndim() != want.len() + 1 || &x.shape()[1..] != want {
        return Err(MlError::Shape(format!(
            "{layer} expects examples of shape {want:?}, got a batch of shape {:?}",
            x.shape()
        )));
    }
    Ok(x.shape()[0])
}

/// The (possibly copied) contiguous row-major values of an array.
pub(crate) fn contiguous(x: &Act) -> std::borrow::Cow<'_, [f32]> {
    match x.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(x.iter().copied().collect()),
    }
}
