//! Forward values of layers against direct (naive) definitions, and running statistics and
//! dropout against their formulas. Gradient checks only prove the backward pass matches the
//! forward pass; these prove the forward pass computes the right thing.

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Activation, LayerConfig, Network, NetworkConfig};

fn random(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(shape),
        (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
    )
    .unwrap()
}

fn param<'a>(net: &'a Network, name: &str) -> &'a [f32] {
    let t = net.tensors().iter().find(|t| t.name == name).unwrap();
    &net.params()[t.range.clone()]
}

#[test]
fn conv2d_matches_direct_cross_correlation() {
    let (c, h, w, f, kh, kw, sh, sw, ph, pw) = (2, 7, 6, 3, 3, 2, 2, 1, 1, 0);
    let cfg = NetworkConfig::builder(&[c, h, w])
        .layer(LayerConfig::Conv2d {
            filters: f,
            kernel: [kh, kw],
            stride: [sh, sw],
            padding: [ph, pw],
            activation: Activation::Identity,
            init: None,
        })
        .seed(3)
        .config();
    let mut net = Network::new(cfg).unwrap();
    let x = random(&[2, c, h, w], 1);
    let y = net.predict(x.view()).unwrap();
    let (oh, ow) = ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1);
    assert_eq!(y.shape(), &[2, f, oh, ow]);
    let (wt, b) = (param(&net, "layers.0.weight"), param(&net, "layers.0.bias"));
    for n in 0..2 {
        for fi in 0..f {
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = b[fi] as f64;
                    for ci in 0..c {
                        for a in 0..kh {
                            for bb in 0..kw {
                                let (r, q) = (
                                    (i * sh + a) as isize - ph as isize,
                                    (j * sw + bb) as isize - pw as isize,
                                );
                                if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                                    let wv = wt[((fi * c + ci) * kh + a) * kw + bb];
                                    s += wv as f64 * x[[n, ci, r as usize, q as usize]] as f64;
                                }
                            }
                        }
                    }
                    assert!(
                        (y[[n, fi, i, j]] as f64 - s).abs() < 1e-5,
                        "({n},{fi},{i},{j})"
                    );
                }
            }
        }
    }
}

#[test]
fn dense_and_pooling_match_definitions() {
    let cfg = NetworkConfig::builder(&[1, 4, 6])
        .max_pool(2, 2)
        .flatten()
        .dense(3, Activation::Sigmoid)
        .seed(4)
        .config();
    let mut net = Network::new(cfg).unwrap();
    let x = random(&[2, 1, 4, 6], 2);
    let y = net.predict(x.view()).unwrap();
    let (wt, b) = (param(&net, "layers.2.weight"), param(&net, "layers.2.bias"));
    for n in 0..2 {
        let mut pooled = Vec::new();
        for i in 0..2 {
            for j in 0..3 {
                let m = [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .iter()
                    .map(|(a, c)| x[[n, 0, 2 * i + a, 2 * j + c]])
                    .fold(f32::NEG_INFINITY, f32::max);
                pooled.push(m);
            }
        }
        for o in 0..3 {
            let z: f32 = b[o] + (0..6).map(|k| wt[o * 6 + k] * pooled[k]).sum::<f32>();
            let want = 1.0 / (1.0 + (-z).exp());
            assert!((y[[n, o]] - want).abs() < 1e-6);
        }
    }
    // Average pooling with overlapping windows.
    let cfg = NetworkConfig::builder(&[1, 3, 3]).avg_pool(2, 1).config();
    let mut net = Network::new(cfg).unwrap();
    let x = random(&[1, 1, 3, 3], 3);
    let y = net.predict(x.view()).unwrap();
    let want = (x[[0, 0, 1, 1]] + x[[0, 0, 1, 2]] + x[[0, 0, 2, 1]] + x[[0, 0, 2, 2]]) / 4.0;
    assert!((y[[0, 0, 1, 1]] - want).abs() < 1e-6);
}

#[test]
fn batch_norm_statistics_and_dropout_follow_their_formulas() {
    let cfg = NetworkConfig::builder(&[2]).batch_norm().config();
    let mut net = Network::new(cfg).unwrap();
    let x = ArrayD::from_shape_vec(
        IxDyn(&[4, 2]),
        vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 6.0, 40.0],
    )
    .unwrap();
    let y = net.forward(x.view(), true).unwrap();
    // Feature 0: mean 3, biased variance 3.5, unbiased 14/3.
    assert!((y[[0, 0]] - (1.0 - 3.0) / (3.5f32 + 1e-5).sqrt()).abs() < 1e-5);
    let b = net.buffers().to_vec();
    assert!((b[0] - 0.3).abs() < 1e-6, "running mean 0.9*0 + 0.1*3");
    assert!(
        (b[2] - (0.9 + 0.1 * 14.0 / 3.0)).abs() < 1e-5,
        "running var uses the unbiased variance"
    );
    let e = net.forward(x.view(), false).unwrap();
    assert!(
        (e[[0, 0]] - (1.0 - 0.3) / (b[2] + 1e-5).sqrt()).abs() < 1e-5,
        "eval uses running stats"
    );

    let cfg = NetworkConfig::builder(&[1000])
        .dropout(0.25)
        .seed(5)
        .config();
    let mut net = Network::new(cfg).unwrap();
    let x = ArrayD::from_elem(IxDyn(&[4, 1000]), 1.0f32);
    assert_eq!(
        net.forward(x.view(), false).unwrap(),
        x,
        "inference is the identity"
    );
    let y = net.forward(x.view(), true).unwrap();
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f32 / 4000.0;
    assert!((dropped - 0.25).abs() < 0.03, "dropped fraction {dropped}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
}
