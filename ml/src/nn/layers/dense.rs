//! Fully connected layer.

use ndarray::{ArrayD, IxDyn};

use super::{check_input, contiguous, Act, Init, Layer, Pass, Spec};
use crate::error::{MlError, Result};
use crate::nn::activation::Activation;
use crate::nn::init::WeightInit;
use crate::tensor::gemm::{sgemm, sgemm_over_batch};

/// `y = act(x W^T + b)`, `W: [n_out, n_in]`.
#[derive(Debug)]
pub(crate) struct Dense {
    n_in: usize,
    n_out: usize,
    act: Activation,
    init: WeightInit,
    x: Option<Act>,
    y: Option<Act>,
}

impl Dense {
    pub fn new(
        input: &[usize],
        n_out: usize,
        act: Activation,
        init: Option<WeightInit>,
    ) -> Result<Self> {
        if input.len() != 1 {
            return Err(MlError::Config(format!(
                "dense layer needs 1-D examples, got shape {input:?} (add a flatten layer)"
            )));
        }
        if n_out == 0 || input[0] == 0 {
            return Err(MlError::Config("dense layer with zero width".into()));
        }
        act.validate().map_err(MlError::Config)?;
        let init = init.unwrap_or(if act.is_relu_like() {
            WeightInit::HeNormal
        } else {
            WeightInit::XavierUniform
        });
        Ok(Dense {
            n_in: input[0],
            n_out,
            act,
            init,
            x: None,
            y: None,
        })
    }
}

impl Layer for Dense {
    fn params(&self) -> Vec<Spec> {
        vec![
            Spec {
                name: "weight",
                shape: vec![self.n_out, self.n_in],
                init: Init::Weight(self.init, self.n_in, self.n_out),
            },
            Spec {
                name: "bias",
                shape: vec![self.n_out],
                init: Init::Zeros,
            },
        ]
    }

    fn out_shape(&self) -> Vec<usize> {
        vec![self.n_out]
    }

    fn forward(&mut self, p: &[f32], _: &mut [f32], x: Act, _: &mut Pass<'_>) -> Result<Act> {
        let n = check_input("dense layer", &x, &[self.n_in])?;
        let (w, b) = p.split_at(self.n_in * self.n_out);
        let xs = contiguous(&x);
        let mut y = vec![0f32; n * self.n_out];
        sgemm(
            false, true, n, self.n_out, self.n_in, 1.0, &xs, w, 0.0, &mut y, true,
        );
        for row in y.chunks_exact_mut(self.n_out) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
        let mut y = ArrayD::from_shape_vec(IxDyn(&[n, self.n_out]), y).expect("sized above");
        self.act.forward_inplace(&mut y);
        let y = y.into_shared();
        self.x = Some(x);
        self.y = Some(y.clone());
        Ok(y)
    }

    fn backward(
        &mut self,
        p: &[f32],
        g: &mut [f32],
        mut dy: ArrayD<f32>,
        need_dx: bool,
    ) -> Result<Option<ArrayD<f32>>> {
        let (x, y) = match (&self.x, &self.y) {
            (Some(x), Some(y)) => (x, y),
            _ => return Err(MlError::Shape("dense backward before forward".into())),
        };
        if dy.shape() != y.shape() {
            return Err(MlError::Shape(format!(
                "dense backward: gradient shape {:?}, output shape {:?}",
                dy.shape(),
                y.shape()
            )));
        }
        let n = x.shape()[0];
        self.act.backward_inplace(&y.view(), &mut dy);
        let dz = dy.as_standard_layout();
        let dz = dz.as_slice().expect("standard layout");
        let xs = contiguous(x);
        let (gw, gb) = g.split_at_mut(self.n_in * self.n_out);
        sgemm_over_batch(
            true, false, self.n_out, self.n_in, n, 1.0, dz, &xs, 0.0, gw, true,
        );
        gb.fill(0.0);
        for row in dz.chunks_exact(self.n_out) {
            gb.iter_mut().zip(row).for_each(|(b, d)| *b += d);
        }
        if !need_dx {
            return Ok(None);
        }
        let w = &p[..self.n_in * self.n_out];
        let mut dx = vec![0f32; n * self.n_in];
        sgemm(
            false, false, n, self.n_in, self.n_out, 1.0, dz, w, 0.0, &mut dx, true,
        );
        Ok(Some(
            ArrayD::from_shape_vec(IxDyn(&[n, self.n_in]), dx).expect("sized above"),
        ))
    }
}
