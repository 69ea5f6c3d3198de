//! 2-D convolution by im2col + GEMM, with the batch split across threads.
//!
//! Each example's input is unfolded into a `[channels*kh*kw, out_h*out_w]` matrix (kept for the
//! backward pass), and one GEMM with the `[filters, channels*kh*kw]` weight gives the example's
//! `[filters, out_h*out_w]` output directly in NCHW order. The batch is cut into one contiguous
//! range of examples per thread; weight gradients are summed per thread and then across threads in
//! a fixed order, so results do not depend on scheduling.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::{check_input, contiguous, split_range, Act, Init, Layer, Pass, Spec};
use crate::error::{MlError, Result};
use crate::nn::activation::Activation;
use crate::nn::init::WeightInit;
use crate::tensor::gemm::{sgemm, threads};

/// Geometry of one convolution.
#[derive(Clone, Copy, Debug)]
struct Geom {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Unfolds one example `[c, h, w]` into `col: [c*kh*kw, oh*ow]`.
    fn im2col(&self, x: &[f32], col: &mut [f32]) {
        let p = self.p();
        for c in 0..self.c {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = ((c * self.kh + ki) * self.kw + kj) * p;
                    for oh in 0..self.oh {
                        let dst = &mut col[row + oh * self.ow..row + (oh + 1) * self.ow];
                        let ih = (oh * self.sh + ki) as isize - self.ph as isize;
                        if ih < 0 || ih >= self.h as isize {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &x[(c * self.h + ih as usize) * self.w..][..self.w];
                        for (ow, d) in dst.iter_mut().enumerate() {
                            let iw = (ow * self.sw + kj) as isize - self.pw as isize;
                            *d = if iw >= 0 && iw < self.w as isize {
                                src[iw as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
    }

    /// Adds the columns of `col` back onto the example `dx: [c, h, w]` (the adjoint of im2col).
    fn col2im(&self, col: &[f32], dx: &mut [f32]) {
        let p = self.p();
        for c in 0..self.c {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = ((c * self.kh + ki) * self.kw + kj) * p;
                    for oh in 0..self.oh {
                        let ih = (oh * self.sh + ki) as isize - self.ph as isize;
                        if ih < 0 || ih >= self.h as isize {
                            continue;
                        }
                        let src = &col[row + oh * self.ow..row + (oh + 1) * self.ow];
                        let dst = &mut dx[(c * self.h + ih as usize) * self.w..][..self.w];
                        for (ow, s) in src.iter().enumerate() {
                            let iw = (ow * self.sw + kj) as isize - self.pw as isize;
                            if iw >= 0 && iw < self.w as isize {
                                dst[iw as usize] += s;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Convolution layer, weight `[f, c, kh, kw]`, bias `[f]`.
#[derive(Debug)]
pub(crate) struct Conv2d {
    g: Geom,
    f: usize,
    act: Activation,
    init: WeightInit,
    cols: Vec<f32>,
    y: Option<Act>,
    n: usize,
}

impl Conv2d {
    pub fn new(
        input: &[usize],
        f: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        act: Activation,
        init: Option<WeightInit>,
    ) -> Result<Self> {
        let &[c, h, w] = input else {
            return Err(MlError::Config(format!(
                "conv2d needs [channels, height, width] examples, got {input:?}"
            )));
        };
        let [kh, kw] = kernel;
        let [sh, sw] = stride;
        let [ph, pw] = padding;
        if f == 0 || c == 0 || kh == 0 || kw == 0 || sh == 0 || sw == 0 {
            return Err(MlError::Config("conv2d with a zero size or stride".into()));
        }
        if h + 2 * ph < kh || w + 2 * pw < kw {
            return Err(MlError::Config(format!(
                "conv2d kernel {kernel:?} larger than the padded input {h}x{w} (+{padding:?})"
            )));
        }
        act.validate().map_err(MlError::Config)?;
        let g = Geom {
            c,
            h,
            w,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            oh: (h + 2 * ph - kh) / sh + 1,
            ow: (w + 2 * pw - kw) / sw + 1,
        };
        let init = init.unwrap_or(if act.is_relu_like() {
            WeightInit::HeNormal
        } else {
            WeightInit::XavierUniform
        });
        Ok(Conv2d {
            g,
            f,
            act,
            init,
            cols: Vec::new(),
            y: None,
            n: 0,
        })
    }
}

impl Layer for Conv2d {
    fn params(&self) -> Vec<Spec> {
        let g = &self.g;
        vec![
            Spec {
                name: "weight",
                shape: vec![self.f, g.c, g.kh, g.kw],
                init: Init::Weight(self.init, g.ckk(), self.f * g.kh * g.kw),
            },
            Spec {
                name: "bias",
                shape: vec![self.f],
                init: Init::Zeros,
            },
        ]
    }

    fn out_shape(&self) -> Vec<usize> {
        vec![self.f, self.g.oh, self.g.ow]
    }

    fn forward(&mut self, p: &[f32], _: &mut [f32], x: Act, _: &mut Pass<'_>) -> Result<Act> {
        let g = self.g;
        let n = check_input("conv2d", &x, &[g.c, g.h, g.w])?;
        let (w, b) = p.split_at(self.f * g.ckk());
        let xs = contiguous(&x);
        let (ckk, pp, f, chw) = (g.ckk(), g.p(), self.f, g.c * g.h * g.w);
        self.cols.resize(n * ckk * pp, 0.0);
        let mut y = vec![0f32; n * f * pp];
        let ranges = split_range(n, threads());
        let mut col_parts = Vec::with_capacity(ranges.len());
        let mut y_parts = Vec::with_capacity(ranges.len());
        let (mut cols_rest, mut y_rest) = (&mut self.cols[..], &mut y[..]);
        for r in &ranges {
            let (c0, c1) = cols_rest.split_at_mut(r.len() * ckk * pp);
            let (y0, y1) = y_rest.split_at_mut(r.len() * f * pp);
            col_parts.push(c0);
            y_parts.push(y0);
            cols_rest = c1;
            y_rest = y1;
        }
        ranges
            .into_par_iter()
            .zip(col_parts)
            .zip(y_parts)
            .for_each(|((r, cols), ys)| {
                for (i, ex) in r.enumerate() {
                    let col = &mut cols[i * ckk * pp..(i + 1) * ckk * pp];
                    g.im2col(&xs[ex * chw..(ex + 1) * chw], col);
                    let yn = &mut ys[i * f * pp..(i + 1) * f * pp];
                    sgemm(false, false, f, pp, ckk, 1.0, w, col, 0.0, yn, false);
                    for (row, bias) in yn.chunks_exact_mut(pp).zip(b) {
                        row.iter_mut().for_each(|v| *v += bias);
                    }
                }
            });
        let mut y = ArrayD::from_shape_vec(IxDyn(&[n, f, g.oh, g.ow]), y).expect("sized above");
        self.act.forward_inplace(&mut y);
        let y = y.into_shared();
        self.y = Some(y.clone());
        self.n = n;
        Ok(y)
    }

    fn backward(
        &mut self,
        p: &[f32],
        grad: &mut [f32],
        mut dy: ArrayD<f32>,
        need_dx: bool,
    ) -> Result<Option<ArrayD<f32>>> {
        let g = self.g;
        let y = self
            .y
            .as_ref()
            .ok_or_else(|| MlError::Shape("conv2d backward before forward".into()))?;
        if dy.shape() != y.shape() {
            return Err(MlError::Shape(format!(
                "conv2d backward: gradient shape {:?}, output shape {:?}",
                dy.shape(),
                y.shape()
            )));
        }
        self.act.backward_inplace(&y.view(), &mut dy);
        let dz = dy.as_standard_layout();
        let dz = dz.as_slice().expect("standard layout");
        let (n, ckk, pp, f, chw) = (self.n, g.ckk(), g.p(), self.f, g.c * g.h * g.w);
        let w = &p[..f * ckk];
        let mut dx = if need_dx {
            vec![0f32; n * chw]
        } else {
            Vec::new()
        };
        let ranges = split_range(n, threads());
        let mut dx_parts: Vec<&mut [f32]> = Vec::with_capacity(ranges.len());
        let mut rest = &mut dx[..];
        for r in &ranges {
            let (a, b) = rest.split_at_mut(if need_dx { r.len() * chw } else { 0 });
            dx_parts.push(a);
            rest = b;
        }
        let cols = &self.cols;
        let partial: Vec<Vec<f32>> = ranges
            .into_par_iter()
            .zip(dx_parts)
            .map(|(r, dxs)| {
                let mut acc = vec![0f32; f * ckk + f];
                let (gw, gb) = acc.split_at_mut(f * ckk);
                let mut dcol = if need_dx {
                    vec![0f32; ckk * pp]
                } else {
                    Vec::new()
                };
                for (i, ex) in r.enumerate() {
                    let dzn = &dz[ex * f * pp..(ex + 1) * f * pp];
                    let col = &cols[ex * ckk * pp..(ex + 1) * ckk * pp];
                    let beta = if i == 0 { 0.0 } else { 1.0 };
                    sgemm(false, true, f, ckk, pp, 1.0, dzn, col, beta, gw, false);
                    for (b, row) in gb.iter_mut().zip(dzn.chunks_exact(pp)) {
                        *b += row.iter().sum::<f32>();
                    }
                    if need_dx {
                        sgemm(true, false, ckk, pp, f, 1.0, w, dzn, 0.0, &mut dcol, false);
                        g.col2im(&dcol, &mut dxs[i * chw..(i + 1) * chw]);
                    }
                }
                acc
            })
            .collect();
        grad.fill(0.0);
        for part in &partial {
            grad.iter_mut().zip(part).for_each(|(g, p)| *g += p);
        }
        if !need_dx {
            return Ok(None);
        }
        Ok(Some(
            ArrayD::from_shape_vec(IxDyn(&[n, g.c, g.h, g.w]), dx).expect("sized above"),
        ))
    }
}
