//! Max and average pooling over NCHW batches.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::{check_input, contiguous, Act, Layer, Pass};
use crate::error::{MlError, Result};

/// Which reduction a pooling layer applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoolKind {
    Max,
    Avg,
}

/// Pooling over `kernel` windows moved by `stride` (no padding; windows that would cross the
/// border are not formed, as in PyTorch with `ceil_mode=False`).
#[derive(Debug)]
pub(crate) struct Pool2d {
    kind: PoolKind,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    oh: usize,
    ow: usize,
    /// For max pooling: index in the input plane of each output's maximum.
    argmax: Vec<u32>,
    n: usize,
}

impl Pool2d {
    pub fn new(
        input: &[usize],
        kernel: [usize; 2],
        stride: [usize; 2],
        kind: PoolKind,
    ) -> Result<Self> {
        let &[c, h, w] = input else {
            return Err(MlError::Config(format!(
                "pooling needs [channels, height, width] examples, got {input:?}"
            )));
        };
        let [kh, kw] = kernel;
        let [sh, sw] = stride;
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 || kh > h || kw > w {
            return Err(MlError::Config(format!(
                "pooling window {kernel:?} stride {stride:?} does not fit input {h}x{w}"
            )));
        }
        Ok(Pool2d {
            kind,
            c,
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            oh: (h - kh) / sh + 1,
            ow: (w - kw) / sw + 1,
            argmax: Vec::new(),
            n: 0,
        })
    }
}

impl Layer for Pool2d {
    fn out_shape(&self) -> Vec<usize> {
        vec![self.c, self.oh, self.ow]
    }

    fn forward(&mut self, _: &[f32], _: &mut [f32], x: Act, _: &mut Pass<'_>) -> Result<Act> {
        let n = check_input("pooling", &x, &[self.c, self.h, self.w])?;
        let xs = contiguous(&x);
        let (hw, ohw) = (self.h * self.w, self.oh * self.ow);
        let planes = n * self.c;
        let mut y = vec![0f32; planes * ohw];
        if self.kind == PoolKind::Max {
            self.argmax.resize(planes * ohw, 0);
        }
        let scale = 1.0 / (self.kh * self.kw) as f32;
        let mut argmax = std::mem::take(&mut self.argmax);
        let this = &*self;
        let pool_plane = |pl: usize, y: &mut [f32], argmax: &mut [u32]| {
            let src = &xs[pl * hw..(pl + 1) * hw];
            for oh in 0..this.oh {
                for ow in 0..this.ow {
                    let o = oh * this.ow + ow;
                    let (r0, c0) = (oh * this.sh, ow * this.sw);
                    match this.kind {
                        PoolKind::Max => {
                            let mut best = f32::NEG_INFINITY;
                            let mut at = r0 * this.w + c0;
                            for r in r0..r0 + this.kh {
                                for c in c0..c0 + this.kw {
                                    let v = src[r * this.w + c];
                                    if v > best {
                                        best = v;
                                        at = r * this.w + c;
                                    }
                                }
                            }
                            y[o] = best;
                            argmax[o] = at as u32;
                        }
                        PoolKind::Avg => {
                            let mut s = 0f32;
                            for r in r0..r0 + this.kh {
                                s += src[r * this.w + c0..r * this.w + c0 + this.kw]
                                    .iter()
                                    .sum::<f32>();
                            }
                            y[o] = s * scale;
                        }
                    }
                }
            }
        };
        crate::tensor::gemm::pool().install(|| {
            if self.kind == PoolKind::Max {
                y.par_chunks_mut(ohw)
                    .zip(argmax.par_chunks_mut(ohw))
                    .enumerate()
                    .with_min_len(32)
                    .for_each(|(pl, (y, a))| pool_plane(pl, y, a));
            } else {
                y.par_chunks_mut(ohw)
                    .enumerate()
                    .with_min_len(32)
                    .for_each(|(pl, y)| pool_plane(pl, y, &mut []));
            }
        });
        self.argmax = argmax;
        self.n = n;
        let y =
            ArrayD::from_shape_vec(IxDyn(&[n, self.c, self.oh, self.ow]), y).expect("sized above");
        Ok(y.into_shared())
    }

    fn backward(
        &mut self,
        _: &[f32],
        _: &mut [f32],
        dy: ArrayD<f32>,
        need_dx: bool,
    ) -> Result<Option<ArrayD<f32>>> {
        let want = [self.n, self.c, self.oh, self.ow];
        if dy.shape() != want {
            return Err(MlError::Shape(format!(
                "pooling backward: gradient shape {:?}, output shape {want:?}",
                dy.shape()
            )));
        }
        if !need_dx {
            return Ok(None);
        }
        let dy = dy.as_standard_layout();
        let dy = dy.as_slice().expect("standard layout");
        let (hw, ohw) = (self.h * self.w, self.oh * self.ow);
        let planes = self.n * self.c;
        let mut dx = vec![0f32; planes * hw];
        let scale = 1.0 / (self.kh * self.kw) as f32;
        crate::tensor::gemm::pool().install(|| {
            dx.par_chunks_mut(hw)
                .enumerate()
                .with_min_len(32)
                .for_each(|(pl, dst)| {
                    for oh in 0..self.oh {
                        for ow in 0..self.ow {
                            let o = pl * ohw + oh * self.ow + ow;
                            match self.kind {
                                PoolKind::Max => dst[self.argmax[o] as usize] += dy[o],
                                PoolKind::Avg => {
                                    let (r0, c0) = (oh * self.sh, ow * self.sw);
                                    let d = dy[o] * scale;
                                    for r in r0..r0 + self.kh {
                                        dst[r * self.w + c0..r * self.w + c0 + self.kw]
                                            .iter_mut()
                                            .for_each(|v| *v += d);
                                    }
                                }
                            }
                        }
                    }
                });
        });
        Ok(Some(
            ArrayD::from_shape_vec(IxDyn(&[self.n, self.c, self.h, self.w]), dx)
                .expect("sized above"),
        ))
    }
}
