//! 2-D convolution by im2col + GEMM, with groups of examples spread over threads.
//!
//! Examples are unfolded in groups into one `[channels*kh*kw, group*out_h*out_w]` matrix (kept for
//! the backward pass), so each GEMM with the `[filters, channels*kh*kw]` weight covers several
//! examples (about 2048 columns: efficient even for LeNet's small layers); the result is
//! scattered to NCHW order with the bias added. Groups run in parallel on the ML thread pool
//! ([`crate::tensor::gemm::pool`]); weight gradients are computed per group and summed in group
//! order, so results do not depend on scheduling.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use super::{check_input, contiguous, Act, Init, Layer, Pass, Spec};
use crate::error::{MlError, Result};
use crate::nn::activation::Activation;
use crate::nn::init::WeightInit;
use crate::tensor::gemm::{sgemm, sgemm_over_batch};

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

    /// Unfolds one example `[c, h, w]` into rows of `col`: row `r` of the `[c*kh*kw, oh*ow]`
    /// matrix goes to `col[r * ld..r * ld + oh*ow]` (so several examples can share one matrix).
    fn im2col(&self, x: &[f32], col: &mut [f32], ld: usize) {
        for c in 0..self.c {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = ((c * self.kh + ki) * self.kw + kj) * ld;
                    let (lo, hi) = self.valid_ow(kj);
                    for oh in 0..self.oh {
                        let dst = &mut col[row + oh * self.ow..row + (oh + 1) * self.ow];
                        let ih = (oh * self.sh + ki) as isize - self.ph as isize;
                        if ih < 0 || ih >= self.h as isize || lo >= hi {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &x[(c * self.h + ih as usize) * self.w..][..self.w];
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        let iw0 = lo * self.sw + kj - self.pw;
                        if self.sw == 1 {
                            copy_short(&mut dst[lo..hi], &src[iw0..iw0 + (hi - lo)]);
                        } else {
                            for (i, d) in dst[lo..hi].iter_mut().enumerate() {
                                *d = src[iw0 + i * self.sw];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Output columns `lo..hi` whose input column `ow*sw + kj - pw` lies inside the image.
    fn valid_ow(&self, kj: usize) -> (usize, usize) {
        // iw >= 0  <=>  ow*sw >= pw - kj
        let lo = if self.pw > kj {
            (self.pw - kj).div_ceil(self.sw)
        } else {
            0
        };
        // iw < w  <=>  ow*sw < w + pw - kj
        let lim = self.w + self.pw;
        let hi = if lim > kj {
            (lim - kj).div_ceil(self.sw)
        } else {
            0
        };
        (lo.min(self.ow), hi.min(self.ow).max(lo.min(self.ow)))
    }

    /// Adds the rows of `col` (laid out as in [`Geom::im2col`]) back onto the example
    /// `dx: [c, h, w]`: the adjoint of im2col.
    fn col2im(&self, col: &[f32], ld: usize, dx: &mut [f32]) {
        for c in 0..self.c {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = ((c * self.kh + ki) * self.kw + kj) * ld;
                    let (lo, hi) = self.valid_ow(kj);
                    if lo >= hi {
                        continue;
                    }
                    for oh in 0..self.oh {
                        let ih = (oh * self.sh + ki) as isize - self.ph as isize;
                        if ih < 0 || ih >= self.h as isize {
                            continue;
                        }
                        let src = &col[row + oh * self.ow + lo..row + oh * self.ow + hi];
                        let dst = &mut dx[(c * self.h + ih as usize) * self.w..][..self.w];
                        let iw0 = lo * self.sw + kj - self.pw;
                        if self.sw == 1 {
                            dst[iw0..iw0 + src.len()]
                                .iter_mut()
                                .zip(src)
                                .for_each(|(d, s)| *d += s);
                        } else {
                            for (i, s) in src.iter().enumerate() {
                                dst[iw0 + i * self.sw] += s;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Columns of the unfolded matrix a group of examples shares: enough for efficient GEMMs, small
/// enough to stay near the caches.
const GROUP_COLUMNS: usize = 2048;

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
        let groups = groups(n, pp);
        let col_parts = split_by(&mut self.cols, &groups, ckk * pp);
        let y_parts = split_by(&mut y, &groups, f * pp);
        crate::tensor::gemm::pool().install(|| {
            groups
                .into_par_iter()
                .zip(col_parts)
                .zip(y_parts)
                .for_each_init(Vec::new, |tmp: &mut Vec<f32>, ((r, cols), ys)| {
                    let cols_n = r.len() * pp;
                    for (i, ex) in r.enumerate() {
                        g.im2col(&xs[ex * chw..(ex + 1) * chw], &mut cols[i * pp..], cols_n);
                    }
                    tmp.resize(f * cols_n, 0.0);
                    sgemm(false, false, f, cols_n, ckk, 1.0, w, cols, 0.0, tmp, false);
                    for (i, yn) in ys.chunks_exact_mut(f * pp).enumerate() {
                        for ((row, bias), fi) in yn.chunks_exact_mut(pp).zip(b).zip(0..) {
                            let src = &tmp[fi * cols_n + i * pp..][..pp];
                            row.iter_mut().zip(src).for_each(|(v, s)| *v = s + bias);
                        }
                    }
                });
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
        let groups = groups(n, pp);
        let dx_parts = split_by(&mut dx, &groups, if need_dx { chw } else { 0 });
        let col_parts: Vec<&[f32]> = {
            let mut rest = &self.cols[..];
            groups
                .iter()
                .map(|r| {
                    let (a, b) = rest.split_at(r.len() * ckk * pp);
                    rest = b;
                    a
                })
                .collect()
        };
        // One partial weight/bias gradient per group, summed below in group order, so the
        // result does not depend on how rayon schedules the groups.
        let partial: Vec<Vec<f32>> = crate::tensor::gemm::pool().install(|| {
            groups
                .into_par_iter()
                .zip(col_parts)
                .zip(dx_parts)
                .map_init(
                    || (Vec::new(), Vec::new()),
                    |(dzg, dcol): &mut (Vec<f32>, Vec<f32>), ((r, cols), dxs)| {
                        let cols_n = r.len() * pp;
                        dzg.resize(f * cols_n, 0.0);
                        for (i, ex) in r.enumerate() {
                            for fi in 0..f {
                                dzg[fi * cols_n + i * pp..][..pp]
                                    .copy_from_slice(&dz[(ex * f + fi) * pp..][..pp]);
                            }
                        }
                        let mut acc = vec![0f32; f * ckk + f];
                        let (gw, gb) = acc.split_at_mut(f * ckk);
                        sgemm_over_batch(
                            false, true, f, ckk, cols_n, 1.0, dzg, cols, 0.0, gw, false,
                        );
                        for (b, row) in gb.iter_mut().zip(dzg.chunks_exact(cols_n)) {
                            *b = row.iter().sum::<f32>();
                        }
                        if need_dx {
                            dcol.resize(ckk * cols_n, 0.0);
                            sgemm(true, false, ckk, cols_n, f, 1.0, w, dzg, 0.0, dcol, false);
                            for (i, dxn) in dxs.chunks_exact_mut(chw).enumerate() {
                                g.col2im(&dcol[i * pp..], cols_n, dxn);
                            }
                        }
                        acc
                    },
                )
                .collect()
        });
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

/// Copies a short row (often 8 to 24 values here) without a call into `memcpy`: whole blocks of
/// 8 compile to vector moves.
#[inline]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let s: &[f32; 8] = s.try_into().expect("chunks of 8");
        d.copy_from_slice(s);
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// Consecutive groups of examples whose unfolded columns (`per_example` each) make about
/// [`GROUP_COLUMNS`] columns.
fn groups(n: usize, per_example: usize) -> Vec<std::ops::Range<usize>> {
    let size = (GROUP_COLUMNS / per_example.max(1)).max(1);
    (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect()
}

/// Splits `buf` into one slice per group, `per_example` values per example.
fn split_by<'a>(
    mut buf: &'a mut [f32],
    groups: &[std::ops::Range<usize>],
    per_example: usize,
) -> Vec<&'a mut [f32]> {
    groups
        .iter()
        .map(|r| {
            let (a, b) = std::mem::take(&mut buf).split_at_mut(r.len() * per_example);
            buf = b;
            a
        })
        .collect()
}
