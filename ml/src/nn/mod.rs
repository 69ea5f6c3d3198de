//! Neural networks: layers, activations, losses, initialization and the sequential network.
//!
//! Layers compute on the CPU today (through [`crate::tensor::gemm`]); their parameters,
//! gradients and optimizer state are ranges of flat buffers owned by the [`Network`].

pub mod activation;
pub mod config;
pub mod init;
mod layers;
pub mod loss;
mod network;

pub use activation::Activation;
pub use config::{LayerConfig, NetworkBuilder, NetworkConfig};
pub use init::WeightInit;
pub use loss::Loss;
pub use network::{Network, TensorInfo, TensorKind};

/// One-hot rows for class labels: `[labels.len(), classes]`.
pub fn one_hot(labels: &[usize], classes: usize) -> crate::error::Result<ndarray::Array2<f32>> {
    let mut out = ndarray::Array2::zeros((labels.len(), classes));
    for (i, &l) in labels.iter().enumerate() {
        if l >= classes {
            return Err(crate::error::MlError::Shape(format!(
                "label {l} at row {i} is not below {classes} classes"
            )));
        }
        out[[i, l]] = 1.0;
    }
    Ok(out)
}

#[cfg(test)]
mod gradcheck;
