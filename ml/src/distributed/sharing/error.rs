//! What can go wrong while sharing encoded updates.

/// An error of gradient sharing: a bad update or a bad message. Each names the worker and step
/// where one is known.
#[derive(Debug, thiserror::Error)]
pub enum SharingError {
    /// A worker's update, or its residual with the update added, holds NaN or an infinity:
    /// training diverged there.
    #[error(
        "{what} of worker {worker} at step {step} is {value} at index {index}: training \
         diverged (lower the learning rate, or clip gradients with OptimizerConfig::with_clip)"
    )]
    NonFinite {
        /// `update`, or `residual` when the update was finite but the sum overflowed.
        what: &'static str,
        /// The worker (rank).
        worker: usize,
        /// The step.
        step: u64,
        /// The first index holding a non-finite value.
        index: usize,
        /// That value.
        value: f32,
    },
    /// An encoded message is truncated or damaged.
    #[error("encoded update is not valid: {reason}")]
    Message {
        /// What is wrong with it.
        reason: String,
    },
    /// A message, valid in itself, came from somewhere it cannot (a rank outside the stage).
    #[error("encoded update from rank {from} (via rank {via}): {reason}")]
    Routing {
        /// The worker the header names.
        from: u32,
        /// The rank it came through.
        via: usize,
        /// What is wrong.
        reason: String,
    },
    /// A setting of [`super::SharedGradients`] is not valid.
    #[error("SharedGradients: {0}")]
    Config(String),
}
