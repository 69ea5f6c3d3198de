//! MNIST with a 784-256-10 multilayer perceptron (ReLU, softmax cross-entropy, Nesterov SGD).
//!
//! ```text
//! cargo run --release -p ember-ml --example mnist_mlp -- [MNIST_DIR] [--epochs N] [--save FILE]
//! ```
//! `MNIST_DIR` holds the four original IDX files (`train-images-idx3-ubyte.gz`, ...); it defaults
//! to `data/mnist`, the MNIST files shipped in the repository (run
//! from there). Shows a progress bar with the running loss and prints a final evaluation.

mod common;

use ember_ml::nn::{Activation, Loss, NetworkConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(20)?;
    let net = NetworkConfig::builder(&[784])
        .dense(256, Activation::Relu)
        .dense(10, Activation::Identity)
        .loss(Loss::SoftmaxCrossEntropy)
        .seed(42)
        .build()?;
    common::train("MLP 784-256-10", &args, net, 0.05, 1e-4)
}
