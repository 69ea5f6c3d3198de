//! MNIST with a LeNet-style CNN: conv 5x5x20, max pool, conv 5x5x50, max pool, dense 500, dense 10.
//!
//! ```text
//! cargo run --release -p ember-ml --example mnist_lenet -- [MNIST_DIR] [--epochs N] [--save FILE]
//! ```
//! `MNIST_DIR` holds the four original IDX files (`train-images-idx3-ubyte.gz`, ...); it defaults
//! to `data/mnist`, the MNIST files shipped in the repository (run
//! from there). Shows a progress bar with the running loss and prints a final evaluation.

mod common;

use ember_ml::nn::{Activation, Loss, NetworkConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(6)?;
    let net = NetworkConfig::builder(&[1, 28, 28])
        .conv2d(20, 5, 0, Activation::Relu)
        .max_pool(2, 2)
        .conv2d(50, 5, 0, Activation::Relu)
        .max_pool(2, 2)
        .flatten()
        .dense(500, Activation::Relu)
        .dense(10, Activation::Identity)
        .loss(Loss::SoftmaxCrossEntropy)
        .seed(42)
        .build()?;
    common::train("LeNet", &args, net, 0.02, 5e-4)
}
