//! Neural networks: layers, activations, losses, initialization and the sequential network.
//!
//! Layers compute on the CPU today (through [`crate::tensor::gemm`]); their parameters,
//! gradients and optimizer state are ranges of flat buffers owned by the [`Network`].

pub mod activation;
pub mod config;
pub mod init;
pub(crate) mod layers;
pub mod loss;
mod network;

pub use activation::Activation;
pub use config::{LayerConfig, NetworkBuilder, NetworkConfig};
pub use init::WeightInit;
pub use loss::Loss;
pub use network::{Network, TensorInfo, TensorKind};

#[cfg(test)]
mod forward_check;
#[cfg(test)]
mod gradcheck;
