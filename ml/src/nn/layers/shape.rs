//! Parameter-free layers: flatten and stand-alone activations.

use ndarray::{ArrayD, IxDyn};

use super::{check_input, Act, Layer, Pass};
use crate::error::{MlError, Result};
use crate::nn::activation::Activation;

/// Reshapes each example to one dimension (row-major, as PyTorch's `Flatten`).
#[derive(Debug)]
pub(crate) struct Flatten {
    shape: Vec<usize>,
}

impl Flatten {
    pub fn new(input: &[usize]) -> Self {
        Flatten {
            shape: input.to_vec(),
        }
    }
}

impl Layer for Flatten {
    fn out_shape(&self) -> Vec<usize> {
        vec![self.shape.iter().product()]
    }

    fn forward(&mut self, _: &[f32], _: &mut [f32], x: Act, _: &mut Pass<'_>) -> Result<Act> {
        let n = check_input("flatten", &x, &self.shape)?;
        let x = if x.is_standard_layout() {
            x
        } else {
            x.as_standard_layout().into_owned().into_shared()
        };
        x.into_shape_with_order(IxDyn(&[n, self.out_shape()[0]]))
            .map_err(|e| MlError::Shape(format!("flatten: {e}")))
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
        let n = dy.shape()[0];
        let mut shape = vec![n];
        shape.extend_from_slice(&self.shape);
        let dy = dy.as_standard_layout().into_owned();
        dy.into_shape_with_order(IxDyn(&shape))
            .map(Some)
            .map_err(|e| MlError::Shape(format!("flatten backward: {e}")))
    }
}

/// An activation as its own layer.
#[derive(Debug)]
pub(crate) struct ActivationLayer {
    shape: Vec<usize>,
    act: Activation,
    y: Option<Act>,
}

impl ActivationLayer {
    pub fn new(input: &[usize], act: Activation) -> Self {
        ActivationLayer {
            shape: input.to_vec(),
            act,
            y: None,
        }
    }
}

impl Layer for ActivationLayer {
    fn out_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    fn forward(&mut self, _: &[f32], _: &mut [f32], x: Act, _: &mut Pass<'_>) -> Result<Act> {
        check_input("activation", &x, &self.shape)?;
        let mut y = x.into_owned();
        self.act.forward_inplace(&mut y);
        let y = y.into_shared();
        self.y = Some(y.clone());
        Ok(y)
    }

    fn backward(
        &mut self,
        _: &[f32],
        _: &mut [f32],
        mut dy: ArrayD<f32>,
        need_dx: bool,
    ) -> Result<Option<ArrayD<f32>>> {
        if !need_dx {
            return Ok(None);
        }
        let y = self
            .y
            .as_ref()
            .ok_or_else(|| MlError::Shape("activation backward before forward".into()))?;
        if dy.shape() != y.shape() {
            return Err(MlError::Shape(format!(
                "activation backward: gradient shape {:?}, output shape {:?}",
                dy.shape(),
                y.shape()
            )));
        }
        self.act.backward_inplace(&y.view(), &mut dy);
        Ok(Some(dy))
    }
}
