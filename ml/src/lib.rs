//! Ember's machine-learning layer: tensors on `ndarray` (CPU) with a device abstraction for GPUs,
//! networks, losses, optimizers, data loading, evaluation and model files.

pub mod data;
pub mod eval;
