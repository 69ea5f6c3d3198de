//! Batch normalization per feature (1-D examples) or per channel (`[c, h, w]` examples).

use ndarray::{ArrayD, IxDyn};

use super::{check_input, contiguous, Act, Init, Layer, Pass, Spec};
use crate::error::{MlError, Result};

/// `y = gamma * (x - mean) / sqrt(var + eps) + beta`, with batch statistics while training and
/// running statistics otherwise. Running statistics follow PyTorch: `r = (1 - m) r + m * batch`,
/// using the unbiased batch variance.
#[derive(Debug)]
pub(crate) struct BatchNorm {
    shape: Vec<usize>,
    /// Channels (features for 1-D examples).
    c: usize,
    /// Values per channel per example (h*w, or 1).
    s: usize,
    eps: f32,
    momentum: f32,
    xhat: Vec<f32>,
    inv_std: Vec<f32>,
    n: usize,
    trained: bool,
}

impl BatchNorm {
    pub fn new(input: &[usize], eps: f32, momentum: f32) -> Result<Self> {
        let (c, s) = match input {
            [f] => (*f, 1),
            [c, h, w] => (*c, h * w),
            _ => {
                return Err(MlError::Config(format!(
                    "batch norm needs [features] or [channels, height, width], got {input:?}"
                )))
            }
        };
        if c == 0 || s == 0 || eps <= 0.0 || !(0.0..=1.0).contains(&momentum) {
            return Err(MlError::Config(format!(
                "batch norm on {input:?} with eps {eps} momentum {momentum}"
            )));
        }
        Ok(BatchNorm {
            shape: input.to_vec(),
            c,
            s,
            eps,
            momentum,
            xhat: Vec::new(),
            inv_std: Vec::new(),
            n: 0,
            trained: false,
        })
    }
}

impl Layer for BatchNorm {
    fn params(&self) -> Vec<Spec> {
        vec![
            Spec {
                name: "weight",
                shape: vec![self.c],
                init: Init::Ones,
            },
            Spec {
                name: "bias",
                shape: vec![self.c],
                init: Init::Zeros,
            },
        ]
    }

    fn buffers(&self) -> Vec<Spec> {
        vec![
            Spec {
                name: "running_mean",
                shape: vec![self.c],
                init: Init::Zeros,
            },
            Spec {
                name: "running_var",
                shape: vec![self.c],
                init: Init::Ones,
            },
        ]
    }

    fn out_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    #[allow(clippy::needless_range_loop)] // indexes four arrays in step
    fn forward(&mut self, p: &[f32], buf: &mut [f32], x: Act, pass: &mut Pass<'_>) -> Result<Act> {
        let n = check_input("batch norm", &x, &self.shape)?;
        let (c, s) = (self.c, self.s);
        let (gamma, beta) = p.split_at(c);
        let (rmean, rvar) = buf.split_at_mut(c);
        let xs = contiguous(&x);
        let m = n * s;
        if pass.train && m < 2 {
            return Err(MlError::Shape(format!(
                "batch norm needs more than one value per channel to train, got batch {n}"
            )));
        }
        let mut mean = vec![0f64; c];
        let mut var = vec![0f64; c];
        if pass.train {
            for ex in 0..n {
                for ch in 0..c {
                    let row = &xs[(ex * c + ch) * s..][..s];
                    mean[ch] += row.iter().map(|&v| v as f64).sum::<f64>();
                }
            }
            mean.iter_mut().for_each(|v| *v /= m as f64);
            for ex in 0..n {
                for ch in 0..c {
                    let row = &xs[(ex * c + ch) * s..][..s];
                    var[ch] += row
                        .iter()
                        .map(|&v| (v as f64 - mean[ch]).powi(2))
                        .sum::<f64>();
                }
            }
            for ch in 0..c {
                let unbiased = var[ch] / (m - 1) as f64;
                var[ch] /= m as f64;
                rmean[ch] = (1.0 - self.momentum) * rmean[ch] + self.momentum * mean[ch] as f32;
                rvar[ch] = (1.0 - self.momentum) * rvar[ch] + self.momentum * unbiased as f32;
            }
        } else {
            for ch in 0..c {
                mean[ch] = rmean[ch] as f64;
                var[ch] = rvar[ch] as f64;
            }
        }
        self.inv_std = var
            .iter()
            .map(|&v| (1.0 / (v + self.eps as f64).sqrt()) as f32)
            .collect();
        self.xhat.resize(n * c * s, 0.0);
        let mut y = vec![0f32; n * c * s];
        for ex in 0..n {
            for ch in 0..c {
                let o = (ex * c + ch) * s;
                let (mu, is) = (mean[ch] as f32, self.inv_std[ch]);
                for k in o..o + s {
                    let xh = (xs[k] - mu) * is;
                    self.xhat[k] = xh;
                    y[k] = gamma[ch] * xh + beta[ch];
                }
            }
        }
        self.n = n;
        self.trained = pass.train;
        let mut shape = vec![n];
        shape.extend_from_slice(&self.shape);
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), y)
            .expect("sized above")
            .into_shared())
    }

    #[allow(clippy::needless_range_loop)] // indexes four arrays in step
    fn backward(
        &mut self,
        p: &[f32],
        g: &mut [f32],
        dy: ArrayD<f32>,
        need_dx: bool,
    ) -> Result<Option<ArrayD<f32>>> {
        let (n, c, s) = (self.n, self.c, self.s);
        if dy.len() != n * c * s || dy.shape()[1..] != self.shape[..] {
            return Err(MlError::Shape(format!(
                "batch norm backward: gradient shape {:?} for a batch of {n}",
                dy.shape()
            )));
        }
        let shape = dy.shape().to_vec();
        let dy = dy.as_standard_layout();
        let dy = dy.as_slice().expect("standard layout");
        let (gg, gb) = g.split_at_mut(c);
        gg.fill(0.0);
        gb.fill(0.0);
        for ex in 0..n {
            for ch in 0..c {
                let o = (ex * c + ch) * s;
                for k in o..o + s {
                    gg[ch] += dy[k] * self.xhat[k];
                    gb[ch] += dy[k];
                }
            }
        }
        if !need_dx {
            return Ok(None);
        }
        let gamma = &p[..c];
        let m = (n * s) as f32;
        let mut dx = vec![0f32; n * c * s];
        for ex in 0..n {
            for ch in 0..c {
                let o = (ex * c + ch) * s;
                let k0 = gamma[ch] * self.inv_std[ch];
                for k in o..o + s {
                    dx[k] = if self.trained {
                        k0 / m * (m * dy[k] - gb[ch] - self.xhat[k] * gg[ch])
                    } else {
                        k0 * dy[k]
                    };
                }
            }
        }
        Ok(Some(
            ArrayD::from_shape_vec(IxDyn(&shape), dx).expect("sized above"),
        ))
    }
}
