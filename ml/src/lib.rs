//! Ember's machine-learning layer: tensors on `ndarray` (CPU) with a device abstraction for GPUs,
//! networks, losses, optimizers, data loading, evaluation and model files.
//!
//! - [`tensor`]: the [`tensor::Tensor`] type, devices and backends (CPU now; a `cudarc` backend
//!   behind the `cuda` feature is planned, not implemented), and the GEMM every layer uses.
//! - [`nn`]: layers, activations, losses, initialization and the sequential [`nn::Network`] with
//!   all parameters in one flat buffer.
//! - [`optim`]: SGD, momentum, Nesterov, Adam, AdamW, schedules, weight decay, clipping.
//! - [`train`]: one-epoch training loop with a progress bar, and classification evaluation.
//! - [`model_io`]: model files (configuration, parameters and optimizer state in safetensors).

#![forbid(missing_docs)]

pub mod data;
pub mod distributed;
pub mod error;
pub mod eval;
pub mod model_io;
pub mod nn;
pub mod optim;
pub mod tensor;
pub mod train;

pub use error::{MlError, Result};
