//! Loss functions: value and gradient with respect to the network's output.

use ndarray::{ArrayD, ArrayViewD, Axis};
use serde::{Deserialize, Serialize};

use super::activation::sigmoid;
use crate::error::{MlError, Result};

/// A loss, averaged over the minibatch. Targets have the output's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Softmax cross-entropy on *logits* (the last layer has the identity activation): the
    /// softmax is applied inside the loss, as PyTorch's `CrossEntropyLoss` does. Targets are
    /// class probabilities per row (one-hot labels); mean over rows.
    SoftmaxCrossEntropy,
    /// Mean squared error, averaged over all elements.
    Mse,
    /// Binary cross-entropy on *logits* (the sigmoid is applied inside, like PyTorch's
    /// `BCEWithLogitsLoss`); targets in [0, 1]; averaged over all elements.
    BinaryCrossEntropy,
}

impl Loss {
    /// The loss value and its gradient with respect to `output`.
    pub fn value_and_grad(
        &self,
        output: &ArrayViewD<'_, f32>,
        target: &ArrayViewD<'_, f32>,
    ) -> Result<(f32, ArrayD<f32>)> {
        if output.shape() != target.shape() {
            return Err(MlError::Shape(format!(
                "loss: output shape {:?} but target shape {:?}",
                output.shape(),
                target.shape()
            )));
        }
        if output.is_empty() {
            return Err(MlError::Shape("loss of an empty batch".into()));
        }
        match self {
            Loss::SoftmaxCrossEntropy => {
                if output.ndim() != 2 {
                    return Err(MlError::Shape(format!(
                        "softmax cross-entropy needs [batch, classes] outputs, got {:?}",
                        output.shape()
                    )));
                }
                let n = output.shape()[0] as f32;
                let mut grad = output.to_owned();
                let mut total = 0f64;
                for (mut g, t) in grad.axis_iter_mut(Axis(0)).zip(target.axis_iter(Axis(0))) {
                    let max = g.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    let sum_exp: f32 = g.iter().map(|&v| (v - max).exp()).sum();
                    let lse = max + sum_exp.ln();
                    let t_sum: f32 = t.sum();
                    let mut l = 0f32;
                    ndarray::Zip::from(&mut g).and(&t).for_each(|gv, &tv| {
                        l -= tv * (*gv - lse);
                        *gv = ((*gv - lse).exp() * t_sum - tv) / n;
                    });
                    total += l as f64;
                }
                Ok(((total / n as f64) as f32, grad))
            }
            Loss::Mse => {
                let count = output.len() as f32;
                let mut grad = output.to_owned();
                let mut total = 0f64;
                ndarray::Zip::from(&mut grad).and(target).for_each(|g, &t| {
                    let d = *g - t;
                    total += (d * d) as f64;
                    *g = 2.0 * d / count;
                });
                Ok(((total / count as f64) as f32, grad))
            }
            Loss::BinaryCrossEntropy => {
                let count = output.len() as f32;
                let mut grad = output.to_owned();
                let mut total = 0f64;
                ndarray::Zip::from(&mut grad).and(target).for_each(|g, &t| {
                    let z = *g;
                    total += (z.max(0.0) - z * t + (-z.abs()).exp().ln_1p()) as f64;
                    *g = (sigmoid(z) - t) / count;
                });
                Ok(((total / count as f64) as f32, grad))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn arr(shape: &[usize], v: Vec<f32>) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    #[test]
    fn loss_values_match_their_definitions() {
        let z = arr(&[1, 3], vec![1.0, 2.0, 0.5]);
        let t = arr(&[1, 3], vec![0.0, 1.0, 0.0]);
        let (l, _) = Loss::SoftmaxCrossEntropy
            .value_and_grad(&z.view(), &t.view())
            .unwrap();
        let want = -(2f32.exp() / (1f32.exp() + 2f32.exp() + 0.5f32.exp())).ln();
        assert!((l - want).abs() < 1e-6);
        let (l, _) = Loss::Mse.value_and_grad(&z.view(), &t.view()).unwrap();
        assert!((l - (1.0 + 1.0 + 0.25) / 3.0).abs() < 1e-6);
        let (l, _) = Loss::BinaryCrossEntropy
            .value_and_grad(&z.view(), &t.view())
            .unwrap();
        let p = |x: f32| 1.0 / (1.0 + (-x).exp());
        let want = -((1.0 - p(1.0)).ln() + p(2.0).ln() + (1.0 - p(0.5)).ln()) / 3.0;
        assert!((l - want).abs() < 1e-6);
        assert!(Loss::Mse
            .value_and_grad(&z.view(), &arr(&[3, 1], vec![0.0; 3]).view())
            .is_err());
    }
}
