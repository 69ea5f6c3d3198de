//! Finite-difference checks of every layer's and loss's gradients (parameters and inputs).
#![allow(clippy::needless_range_loop)]

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Activation, Loss, NetworkConfig};

const EPS: f32 = 1e-3;
const SEED: u64 = 99;

fn random(shape: &[usize], rng: &mut StdRng) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(shape),
        (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
    )
    .unwrap()
}

fn targets(loss: Loss, n: usize, k: usize, rng: &mut StdRng) -> ArrayD<f32> {
    match loss {
        Loss::SoftmaxCrossEntropy => {
            let mut t = ArrayD::zeros(IxDyn(&[n, k]));
            for i in 0..n {
                t[[i, rng.gen_range(0..k)]] = 1.0;
            }
            t
        }
        Loss::Mse => random(&[n, k], rng),
        Loss::BinaryCrossEntropy => random(&[n, k], rng).mapv(|v| (v + 1.0) / 2.0),
    }
}

fn close(analytic: f32, numeric: f32) -> bool {
    (analytic - numeric).abs() <= 2e-3 + 3e-2 * analytic.abs().max(numeric.abs())
}

/// Compares analytic gradients of every parameter and every input value with central
/// differences of the training-mode loss (dropout masks repeat through `reseed`).
fn check(cfg: NetworkConfig, batch: usize) {
    let mut rng = StdRng::seed_from_u64(5);
    let mut shape = vec![batch];
    shape.extend_from_slice(&cfg.input_shape);
    let x = random(&shape, &mut rng);
    let mut net = cfg.clone().builder_build();
    let k = net.output_shape()[0];
    let y = targets(cfg.loss, batch, k, &mut rng);
    net.reseed(SEED);
    let (_, dx) = net
        .backprop_with_input_grad(x.view(), y.view(), true)
        .unwrap();
    let dx = dx.unwrap();
    let grads = net.gradients().to_vec();
    assert!(
        grads.iter().any(|&g| g != 0.0) || grads.is_empty(),
        "all-zero gradients"
    );
    let loss_at = |net: &mut super::Network, x: &ArrayD<f32>| {
        net.reseed(SEED);
        net.loss(x.view(), y.view(), true).unwrap()
    };
    for i in 0..net.num_params() {
        let p0 = net.params()[i];
        net.params_mut()[i] = p0 + EPS;
        let lp = loss_at(&mut net, &x);
        net.params_mut()[i] = p0 - EPS;
        let lm = loss_at(&mut net, &x);
        net.params_mut()[i] = p0;
        let numeric = (lp - lm) / (2.0 * EPS);
        let name = &net
            .tensors()
            .iter()
            .find(|t| t.range.contains(&i))
            .unwrap()
            .name;
        assert!(
            close(grads[i], numeric),
            "param {i} ({name}): analytic {} numeric {numeric}",
            grads[i]
        );
    }
    let mut xp = x.clone();
    for i in 0..x.len() {
        let v = x.as_slice().unwrap()[i];
        xp.as_slice_mut().unwrap()[i] = v + EPS;
        let lp = loss_at(&mut net, &xp);
        xp.as_slice_mut().unwrap()[i] = v - EPS;
        let lm = loss_at(&mut net, &xp);
        xp.as_slice_mut().unwrap()[i] = v;
        let numeric = (lp - lm) / (2.0 * EPS);
        let a = dx.as_slice().unwrap()[i];
        assert!(
            close(a, numeric),
            "input {i}: analytic {a} numeric {numeric}"
        );
    }
}

impl NetworkConfig {
    fn builder_build(self) -> super::Network {
        super::Network::new(self).unwrap()
    }
}

#[test]
fn dense_with_every_activation() {
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softmax,
    ] {
        let cfg = NetworkConfig::builder(&[5])
            .dense(4, act)
            .dense(3, Activation::Identity)
            .loss(Loss::SoftmaxCrossEntropy)
            .seed(1)
            .config();
        check(cfg, 3);
    }
}

#[test]
fn standalone_activations() {
    for act in [
        Activation::Relu,
        Activation::Tanh,
        Activation::Softmax,
        Activation::Sigmoid,
    ] {
        let cfg = NetworkConfig::builder(&[4])
            .dense(4, Activation::Identity)
            .activation(act)
            .dense(2, Activation::Identity)
            .loss(Loss::Mse)
            .seed(2)
            .config();
        check(cfg, 3);
    }
}

#[test]
fn every_loss() {
    for loss in [
        Loss::SoftmaxCrossEntropy,
        Loss::Mse,
        Loss::BinaryCrossEntropy,
    ] {
        let cfg = NetworkConfig::builder(&[3])
            .dense(4, Activation::Identity)
            .loss(loss)
            .seed(3)
            .config();
        check(cfg, 4);
    }
}

#[test]
fn conv2d_with_padding_and_stride() {
    let cfg = NetworkConfig::builder(&[2, 6, 5])
        .conv2d(3, 3, 1, Activation::Tanh)
        .layer(super::LayerConfig::Conv2d {
            filters: 2,
            kernel: [2, 3],
            stride: [2, 1],
            padding: [0, 1],
            activation: Activation::Identity,
            init: None,
        })
        .flatten()
        .dense(3, Activation::Identity)
        .seed(4)
        .config();
    check(cfg, 2);
}

#[test]
fn max_and_avg_pooling() {
    for pool in [
        super::LayerConfig::MaxPool2d {
            kernel: [2, 2],
            stride: [2, 2],
        },
        super::LayerConfig::AvgPool2d {
            kernel: [2, 2],
            stride: [1, 1],
        },
        super::LayerConfig::MaxPool2d {
            kernel: [3, 2],
            stride: [1, 2],
        },
    ] {
        let cfg = NetworkConfig::builder(&[2, 5, 4])
            .conv2d(2, 3, 1, Activation::Identity)
            .layer(pool)
            .flatten()
            .dense(3, Activation::Identity)
            .seed(5)
            .config();
        check(cfg, 2);
    }
}

#[test]
fn batch_norm_dense_and_conv() {
    let cfg = NetworkConfig::builder(&[4])
        .dense(5, Activation::Identity)
        .batch_norm()
        .activation(Activation::Tanh)
        .dense(2, Activation::Identity)
        .loss(Loss::Mse)
        .seed(6)
        .config();
    check(cfg, 4);
    let cfg = NetworkConfig::builder(&[2, 3, 3])
        .batch_norm()
        .flatten()
        .dense(2, Activation::Identity)
        .loss(Loss::Mse)
        .seed(7)
        .config();
    check(cfg, 3);
}

#[test]
fn dropout_and_flatten() {
    let cfg = NetworkConfig::builder(&[2, 2, 2])
        .flatten()
        .dense(6, Activation::Sigmoid)
        .dropout(0.3)
        .dense(2, Activation::Identity)
        .loss(Loss::BinaryCrossEntropy)
        .seed(8)
        .config();
    check(cfg, 3);
}

/// Large images put one or two examples in each im2col group: the batched gradients must equal
/// the mean of the gradients of each example alone.
#[test]
fn conv_groups_match_per_example_gradients() {
    let cfg = NetworkConfig::builder(&[1, 34, 34])
        .conv2d(2, 3, 0, Activation::Tanh)
        .max_pool(4, 4)
        .flatten()
        .dense(3, Activation::Identity)
        .seed(10)
        .config();
    let mut rng = StdRng::seed_from_u64(6);
    let n = 5;
    let x = random(&[n, 1, 34, 34], &mut rng);
    let y = targets(Loss::SoftmaxCrossEntropy, n, 3, &mut rng);
    let mut net = super::Network::new(cfg).unwrap();
    let (_, dx) = net
        .backprop_with_input_grad(x.view(), y.view(), true)
        .unwrap();
    let (dx, batched) = (dx.unwrap(), net.gradients().to_vec());
    let mut mean = vec![0f32; batched.len()];
    for i in 0..n {
        let xi = x.slice(ndarray::s![i..i + 1, .., .., ..]).into_dyn();
        let yi = y.slice(ndarray::s![i..i + 1, ..]).into_dyn();
        let (_, dxi) = net.backprop_with_input_grad(xi, yi, true).unwrap();
        for (m, g) in mean.iter_mut().zip(net.gradients()) {
            *m += g / n as f32;
        }
        let dxi = dxi.unwrap();
        for (a, b) in dx
            .slice(ndarray::s![i..i + 1, .., .., ..])
            .iter()
            .zip(dxi.iter())
        {
            assert!(
                (a - b / n as f32).abs() < 1e-6,
                "input gradient of example {i}"
            );
        }
    }
    for (a, b) in batched.iter().zip(&mean) {
        assert!((a - b).abs() < 1e-5 + 1e-4 * b.abs(), "{a} vs {b}");
    }
}
