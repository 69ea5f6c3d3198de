//! Element-wise activation functions (and softmax), with their derivatives.

use ndarray::{ArrayBase, ArrayViewD, Axis, DataMut, Dimension};
use serde::{Deserialize, Serialize};

/// An activation function. Every derivative is computed from the activation's *output*, so layers
/// keep only their output for the backward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Activation {
    /// `f(x) = x`.
    #[default]
    Identity,
    /// `f(x) = max(x, 0)`.
    Relu,
    /// `f(x) = x` for `x > 0`, `alpha * x` otherwise (`alpha` in (0, 1)).
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    Sigmoid,
    /// Softmax over the last axis (for a 2-D input: over each row's classes).
    Softmax,
}

impl Activation {
    /// Checks parameters (the leaky ReLU slope must be in (0, 1) so its derivative is recoverable
    /// from the output).
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Activation::LeakyRelu { alpha } if !(alpha > 0.0 && alpha < 1.0) => {
                Err(format!("leaky ReLU slope {alpha} is not in (0, 1)"))
            }
            _ => Ok(()),
        }
    }

    /// True for activations whose He initialization is appropriate (ReLU family).
    pub(crate) fn is_relu_like(&self) -> bool {
        matches!(self, Activation::Relu | Activation::LeakyRelu { .. })
    }

    /// Applies the activation in place.
    pub fn forward_inplace<S: DataMut<Elem = f32>, D: Dimension>(&self, x: &mut ArrayBase<S, D>) {
        if let Some(s) = x.as_slice_memory_order_mut() {
            match *self {
                Activation::Identity => return,
                Activation::Relu => return s.iter_mut().for_each(|v| *v = v.max(0.0)),
                Activation::LeakyRelu { alpha } => {
                    return s
                        .iter_mut()
                        .for_each(|v| *v *= if *v > 0.0 { 1.0 } else { alpha })
                }
                _ => {}
            }
        }
        match *self {
            Activation::Identity => {}
            Activation::Relu => x.mapv_inplace(|v| v.max(0.0)),
            Activation::LeakyRelu { alpha } => {
                x.mapv_inplace(|v| if v > 0.0 { v } else { alpha * v })
            }
            Activation::Tanh => x.mapv_inplace(f32::tanh),
            Activation::Sigmoid => x.mapv_inplace(sigmoid),
            Activation::Softmax => {
                let last = Axis(x.ndim().saturating_sub(1));
                for mut row in x.lanes_mut(last) {
                    let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                    let mut sum = 0.0;
                    row.mapv_inplace(|v| {
                        let e = (v - max).exp();
                        sum += e;
                        e
                    });
                    row.mapv_inplace(|v| v / sum);
                }
            }
        }
    }

    /// Turns `dy` (gradient with respect to the output `y`) into the gradient with respect to the
    /// input, in place.
    pub fn backward_inplace<S: DataMut<Elem = f32>, D: Dimension>(
        &self,
        y: &ArrayViewD<'_, f32>,
        dy: &mut ArrayBase<S, D>,
    ) {
        let mut dy = dy.view_mut().into_dyn();
        if dy.is_standard_layout() && y.is_standard_layout() && dy.shape() == y.shape() {
            if let (Some(d), Some(y)) = (dy.as_slice_mut(), y.as_slice()) {
                match *self {
                    Activation::Identity => return,
                    Activation::Relu => {
                        // Branch-free (a select), so random signs cost no mispredictions.
                        return d
                            .iter_mut()
                            .zip(y)
                            .for_each(|(d, &y)| *d = if y > 0.0 { *d } else { 0.0 });
                    }
                    Activation::LeakyRelu { alpha } => {
                        return d
                            .iter_mut()
                            .zip(y)
                            .for_each(|(d, &y)| *d *= if y > 0.0 { 1.0 } else { alpha })
                    }
                    Activation::Tanh => {
                        return d.iter_mut().zip(y).for_each(|(d, &y)| *d *= 1.0 - y * y)
                    }
                    Activation::Sigmoid => {
                        return d.iter_mut().zip(y).for_each(|(d, &y)| *d *= y * (1.0 - y))
                    }
                    Activation::Softmax => {}
                }
            }
        }
        let dy = &mut dy;
        match *self {
            Activation::Identity => {}
            Activation::Relu => {
                ndarray::Zip::from(dy).and(y).for_each(|d, &y| {
                    if y <= 0.0 {
                        *d = 0.0
                    }
                });
            }
            Activation::LeakyRelu { alpha } => {
                ndarray::Zip::from(dy).and(y).for_each(|d, &y| {
                    if y <= 0.0 {
                        *d *= alpha
                    }
                });
            }
            Activation::Tanh => ndarray::Zip::from(dy)
                .and(y)
                .for_each(|d, &y| *d *= 1.0 - y * y),
            Activation::Sigmoid => ndarray::Zip::from(dy)
                .and(y)
                .for_each(|d, &y| *d *= y * (1.0 - y)),
            Activation::Softmax => {
                let last = Axis(dy.ndim().saturating_sub(1));
                for (mut d, yr) in dy.lanes_mut(last).into_iter().zip(y.lanes(last)) {
                    let dot: f32 = d.iter().zip(yr.iter()).map(|(a, b)| a * b).sum();
                    ndarray::Zip::from(&mut d)
                        .and(&yr)
                        .for_each(|d, &y| *d = y * (*d - dot));
                }
            }
        }
    }
}

/// The logistic sigmoid, computed without overflow.
pub(crate) fn sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn softmax_rows_sum_to_one_and_values_match_definition() {
        let mut x =
            ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 1000.0, 0.0, -1000.0])
                .unwrap();
        Activation::Softmax.forward_inplace(&mut x);
        let z: f32 = (1f32).exp() + (2f32).exp() + (3f32).exp();
        assert!((x[[0, 2]] - 3f32.exp() / z).abs() < 1e-6);
        assert!(
            (x[[1, 0]] - 1.0).abs() < 1e-6,
            "large inputs do not overflow"
        );
        assert!(
            Activation::LeakyRelu { alpha: 1.5 }.validate().is_err(),
            "slope must be below 1"
        );
        assert!((sigmoid(-100.0)).abs() < 1e-30 && (sigmoid(0.0) - 0.5).abs() < 1e-7);
    }
}
