//! Inverted dropout.

use ndarray::ArrayD;
use rand::Rng;

use super::{Act, Layer, Pass};
use crate::error::{MlError, Result};

/// Zeroes each value with probability `rate` while training and scales the rest by
/// `1 / (1 - rate)`, so inference is the identity.
#[derive(Debug)]
pub(crate) struct Dropout {
    shape: Vec<usize>,
    rate: f32,
    /// Per value: 0 or `1 / (1 - rate)`; empty when the last pass did not drop.
    mask: Vec<f32>,
}

impl Dropout {
    pub fn new(input: &[usize], rate: f32) -> Result<Self> {
        if !(0.0..1.0).contains(&rate) {
            return Err(MlError::Config(format!(
                "dropout rate {rate} is not in [0, 1)"
            )));
        }
        Ok(Dropout {
            shape: input.to_vec(),
            rate,
            mask: Vec::new(),
        })
    }
}

impl Layer for Dropout {
    fn out_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn forward(&mut self, _: &[f32], _: &mut [f32], x: Act, pass: &mut Pass<'_>) -> Result<Act> {
        super::check_input("dropout", &x, &self.shape)?;
        if !pass.train || self.rate == 0.0 {
            self.mask.clear();
            return Ok(x);
        }
        let keep = 1.0 / (1.0 - self.rate);
        self.mask = (0..x.len())
            .map(|_| {
                if pass.rng.gen::<f32>() < self.rate {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        let mut y = x.into_owned().as_standard_layout().into_owned();
        y.as_slice_mut()
            .expect("standard layout")
            .iter_mut()
            .zip(&self.mask)
            .for_each(|(v, m)| *v *= m);
        Ok(y.into_shared())
    }

    fn backward(
        &mut self,
        _: &[f32],
        _: &mut [f32],
        dy: ArrayD<f32>,
        need_dx: bool,
    ) -> Result<Option<ArrayD<f32>>> {
        if !need_dx {
            return Ok(None);
        }
        if self.mask.is_empty() {
            return Ok(Some(dy));
        }
        if dy.len() != self.mask.len() {
            return Err(MlError::Shape(format!(
                "dropout backward: gradient has {} values, mask {}",
                dy.len(),
                self.mask.len()
            )));
        }
        let mut dx = dy.as_standard_layout().into_owned();
        dx.as_slice_mut()
            .expect("standard layout")
            .iter_mut()
            .zip(&self.mask)
            .for_each(|(v, m)| *v *= m);
        Ok(Some(dx))
    }
}
