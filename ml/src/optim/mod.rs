//! Optimizers over flat parameter buffers: SGD, momentum, Nesterov, Adam and AdamW, with
//! learning-rate schedules, L2 / decoupled weight decay and gradient clipping.
//!
//! The optimizer state is one flat buffer of `slots * n` values (slot-major): slot `s` of the
//! state for the parameter range `r` is `state[s * n + r.start .. s * n + r.end]`, so per-layer
//! views use the same ranges as the parameters.

mod schedule;

pub use schedule::Schedule;

use serde::{Deserialize, Serialize};

use crate::error::{MlError, Result};

/// The update rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Method {
    /// Plain SGD: `p -= lr * g`.
    Sgd,
    /// SGD with momentum (PyTorch's form): `v = mu v + g`; `p -= lr * v`, or with Nesterov
    /// `p -= lr * (g + mu v)`.
    Momentum {
        /// Momentum coefficient `mu` in [0, 1).
        momentum: f32,
        /// Nesterov's accelerated form.
        nesterov: bool,
    },
    /// Adam with bias correction; weight decay is L2 (added to the gradient).
    Adam {
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Added to the denominator.
        eps: f32,
    },
    /// AdamW: Adam with decoupled weight decay `p -= lr * wd * p`.
    AdamW {
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Added to the denominator.
        eps: f32,
    },
}

impl Method {
    /// Adam with the usual constants (0.9, 0.999, 1e-8).
    pub fn adam() -> Self {
        Method::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// AdamW with the usual constants (0.9, 0.999, 1e-8).
    pub fn adamw() -> Self {
        Method::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// Names of the state slots, in storage order.
    pub fn slot_names(&self) -> &'static [&'static str] {
        match self {
            Method::Sgd => &[],
            Method::Momentum { .. } => &["velocity"],
            Method::Adam { .. } | Method::AdamW { .. } => &["m", "v"],
        }
    }
}

/// How gradients are clipped before the update.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GradientClip {
    /// Clamp each gradient value to `[-limit, limit]`.
    Value {
        /// The bound.
        limit: f32,
    },
    /// Scale all gradients so their global L2 norm is at most `max_norm`.
    Norm {
        /// The bound.
        max_norm: f32,
    },
}

/// Everything that defines an optimizer (serializable, saved with models).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// The update rule.
    pub method: Method,
    /// Base learning rate.
    pub lr: f32,
    /// Schedule applied to the base rate.
    #[serde(default)]
    pub schedule: Schedule,
    /// L2 penalty (SGD, momentum, Adam) or decoupled decay (AdamW); applies to every parameter.
    #[serde(default)]
    pub weight_decay: f32,
    /// Optional gradient clipping.
    #[serde(default)]
    pub clip: Option<GradientClip>,
}

impl OptimizerConfig {
    /// A configuration with a constant rate, no decay, no clipping.
    pub fn new(method: Method, lr: f32) -> Self {
        OptimizerConfig {
            method,
            lr,
            schedule: Schedule::Constant,
            weight_decay: 0.0,
            clip: None,
        }
    }

    /// Sets the schedule.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the weight decay.
    pub fn with_weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }

    /// Sets gradient clipping.
    pub fn with_clip(mut self, clip: GradientClip) -> Self {
        self.clip = Some(clip);
        self
    }

    /// Checks every setting.
    // Negated comparisons on purpose: NaN must fail them.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self) -> Result<()> {
        let bad = |s: String| Err(MlError::Config(s));
        if !(self.lr.is_finite() && self.lr >= 0.0) {
            return bad(format!("learning rate {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!("weight decay {}", self.weight_decay));
        }
        self.schedule.validate().map_err(MlError::Config)?;
        match self.method {
            Method::Momentum { momentum, .. } if !(0.0..1.0).contains(&momentum) => {
                return bad(format!("momentum {momentum} not in [0, 1)"))
            }
            Method::Adam { beta1, beta2, eps } | Method::AdamW { beta1, beta2, eps }
                if !((0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2) && eps > 0.0) =>
            {
                return bad(format!("Adam betas ({beta1}, {beta2}) eps {eps}"))
            }
            _ => {}
        }
        match self.clip {
            Some(GradientClip::Value { limit }) if !(limit > 0.0) => {
                bad(format!("clip limit {limit}"))
            }
            Some(GradientClip::Norm { max_norm }) if !(max_norm > 0.0) => {
                bad(format!("clip norm {max_norm}"))
            }
            _ => Ok(()),
        }
    }
}

/// An optimizer with its flat state.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    config: OptimizerConfig,
    n: usize,
    state: Vec<f32>,
    step: u64,
}

impl Optimizer {
    /// A fresh optimizer for `n` parameters.
    pub fn new(config: OptimizerConfig, n: usize) -> Result<Self> {
        config.validate()?;
        let slots = config.method.slot_names().len();
        Ok(Optimizer {
            config,
            n,
            state: vec![0.0; slots * n],
            step: 0,
        })
    }

    /// Rebuilds an optimizer from saved state (checked against the configuration).
    pub fn from_state(
        config: OptimizerConfig,
        n: usize,
        state: Vec<f32>,
        step: u64,
    ) -> Result<Self> {
        let mut o = Optimizer::new(config, n)?;
        if state.len() != o.state.len() {
            return Err(MlError::Shape(format!(
                "optimizer state has {} values, {:?} on {n} parameters needs {}",
                state.len(),
                config.method,
                o.state.len()
            )));
        }
        o.state = state;
        o.step = step;
        Ok(o)
    }

    /// The flat state, writable: averaged over workers by parameter averaging (DL4J's
    /// `saveUpdater`), restored from a checkpoint.
    pub fn state_mut(&mut self) -> &mut [f32] {
        &mut self.state
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Updates made so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The learning rate the next update uses.
    pub fn current_lr(&self) -> f32 {
        self.config.schedule.rate(self.config.lr, self.step)
    }

    /// Number of parameters this optimizer updates.
    pub fn num_params(&self) -> usize {
        self.n
    }

    /// The whole state, flat (slot-major).
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// Slot `slot` of the state for the parameter range `range` (e.g. one layer's).
    pub fn state_view(&self, slot: usize, range: std::ops::Range<usize>) -> &[f32] {
        &self.state[slot * self.n..(slot + 1) * self.n][range]
    }

    /// Applies one update: clips `grads` in place, then updates `params`.
    pub fn step(&mut self, params: &mut [f32], grads: &mut [f32]) -> Result<()> {
        if params.len() != self.n || grads.len() != self.n {
            return Err(MlError::Shape(format!(
                "optimizer for {} parameters got {} parameters and {} gradients",
                self.n,
                params.len(),
                grads.len()
            )));
        }
        match self.config.clip {
            Some(GradientClip::Value { limit }) => {
                grads.iter_mut().for_each(|g| *g = g.clamp(-limit, limit))
            }
            Some(GradientClip::Norm { max_norm }) => {
                let norm = grads
                    .iter()
                    .map(|&g| (g as f64) * (g as f64))
                    .sum::<f64>()
                    .sqrt();
                if norm > max_norm as f64 {
                    let s = (max_norm as f64 / norm) as f32;
                    grads.iter_mut().for_each(|g| *g *= s);
                }
            }
            None => {}
        }
        let lr = self.current_lr();
        let wd = self.config.weight_decay;
        let n = self.n;
        match self.config.method {
            Method::Sgd => {
                for (p, g) in params.iter_mut().zip(grads.iter()) {
                    *p -= lr * (g + wd * *p);
                }
            }
            Method::Momentum {
                momentum: mu,
                nesterov,
            } => {
                for ((p, g), v) in params.iter_mut().zip(grads.iter()).zip(&mut self.state) {
                    let g = g + wd * *p;
                    *v = mu * *v + g;
                    *p -= lr * if nesterov { g + mu * *v } else { *v };
                }
            }
            Method::Adam { beta1, beta2, eps } | Method::AdamW { beta1, beta2, eps } => {
                let decoupled = matches!(self.config.method, Method::AdamW { .. });
                let t = (self.step + 1) as i32;
                let c1 = 1.0 - beta1.powi(t);
                let c2 = 1.0 - beta2.powi(t);
                let (m, v) = self.state.split_at_mut(n);
                for (((p, g), m), v) in params.iter_mut().zip(grads.iter()).zip(m).zip(v) {
                    let g = if decoupled {
                        *p -= lr * wd * *p;
                        *g
                    } else {
                        g + wd * *p
                    };
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                }
            }
        }
        self.step += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: the update rules written out step by step in f64, as PyTorch documents them.
    fn reference(method: Method, lr: f64, wd: f64, p0: f64, grads: &[f64]) -> f64 {
        let (mut p, mut v, mut m, mut s) = (p0, 0.0, 0.0, 0.0);
        for (t, &g0) in grads.iter().enumerate() {
            match method {
                Method::Sgd => p -= lr * (g0 + wd * p),
                Method::Momentum { momentum, nesterov } => {
                    let mu = momentum as f64;
                    let g = g0 + wd * p;
                    v = mu * v + g;
                    p -= lr * if nesterov { g + mu * v } else { v };
                }
                Method::Adam { beta1, beta2, eps } | Method::AdamW { beta1, beta2, eps } => {
                    let (b1, b2) = (beta1 as f64, beta2 as f64);
                    let g = if matches!(method, Method::AdamW { .. }) {
                        p *= 1.0 - lr * wd;
                        g0
                    } else {
                        g0 + wd * p
                    };
                    m = b1 * m + (1.0 - b1) * g;
                    s = b2 * s + (1.0 - b2) * g * g;
                    let mh = m / (1.0 - b1.powi(t as i32 + 1));
                    let sh = s / (1.0 - b2.powi(t as i32 + 1));
                    p -= lr * mh / (sh.sqrt() + eps as f64);
                }
            }
        }
        p
    }

    #[test]
    fn updates_match_the_written_out_rules() {
        let grads = [0.5, -1.0, 0.25, 2.0, -0.75];
        for method in [
            Method::Sgd,
            Method::Momentum {
                momentum: 0.9,
                nesterov: false,
            },
            Method::Momentum {
                momentum: 0.9,
                nesterov: true,
            },
            Method::adam(),
            Method::adamw(),
        ] {
            let cfg = OptimizerConfig::new(method, 0.1).with_weight_decay(0.01);
            let mut opt = Optimizer::new(cfg, 1).unwrap();
            let mut p = [1.5f32];
            for &g in &grads {
                let mut gv = [g as f32];
                opt.step(&mut p, &mut gv).unwrap();
            }
            let want = reference(method, 0.1, 0.01, 1.5, &grads);
            assert!(
                (p[0] as f64 - want).abs() < 1e-5,
                "{method:?}: {} vs {want}",
                p[0]
            );
            assert_eq!(opt.step_count(), 5);
        }
    }

    #[test]
    fn clipping_bounds_values_and_norm() {
        let cfg =
            OptimizerConfig::new(Method::Sgd, 1.0).with_clip(GradientClip::Norm { max_norm: 1.0 });
        let mut opt = Optimizer::new(cfg, 2).unwrap();
        let (mut p, mut g) = ([0f32, 0.0], [3f32, 4.0]);
        opt.step(&mut p, &mut g).unwrap();
        assert!((p[0] + 0.6).abs() < 1e-6 && (p[1] + 0.8).abs() < 1e-6);
        let cfg =
            OptimizerConfig::new(Method::Sgd, 1.0).with_clip(GradientClip::Value { limit: 0.5 });
        let mut opt = Optimizer::new(cfg, 2).unwrap();
        let (mut p, mut g) = ([0f32, 0.0], [3f32, -0.25]);
        opt.step(&mut p, &mut g).unwrap();
        assert_eq!(p, [-0.5, 0.25]);
        assert!(
            opt.step(&mut [0.0; 3], &mut [0.0; 3]).is_err(),
            "length mismatch is an error"
        );
        assert!(Optimizer::new(OptimizerConfig::new(Method::Sgd, -1.0), 1).is_err());
    }
}
