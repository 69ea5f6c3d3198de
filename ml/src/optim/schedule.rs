//! Learning-rate schedules, as a function of the update count.

use serde::{Deserialize, Serialize};

/// How the learning rate changes with the number of updates already made (`step`, from 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` every `every` updates.
    Step {
        /// Updates between drops.
        every: u64,
        /// Factor per drop.
        gamma: f32,
    },
    /// Multiply by `gamma` after every update.
    Exponential {
        /// Factor per update.
        gamma: f32,
    },
    /// Cosine decay from the base rate to `min_lr` over `total` updates, then `min_lr`.
    Cosine {
        /// Updates of the decay.
        total: u64,
        /// Final rate.
        min_lr: f32,
    },
    /// Linear warm-up from 0 over `steps` updates, then the base rate.
    Warmup {
        /// Updates of the warm-up.
        steps: u64,
    },
}

impl Schedule {
    /// The rate for update number `step` given the base rate.
    pub fn rate(&self, base: f32, step: u64) -> f32 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((step / every.max(1)) as i32),
            Schedule::Exponential { gamma } => base * gamma.powf(step as f32),
            Schedule::Cosine { total, min_lr } => {
                if step >= total {
                    min_lr
                } else {
                    let t = step as f32 / total.max(1) as f32;
                    min_lr + 0.5 * (base - min_lr) * (1.0 + (std::f32::consts::PI * t).cos())
                }
            }
            Schedule::Warmup { steps } => {
                if step >= steps {
                    base
                } else {
                    base * (step + 1) as f32 / steps as f32
                }
            }
        }
    }

    /// Checks the parameters.
    // Negated comparisons on purpose: NaN must fail them.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Schedule::Step { every, gamma } if every == 0 || !(gamma > 0.0) => {
                Err(format!("step schedule every {every} gamma {gamma}"))
            }
            Schedule::Exponential { gamma } if !(gamma > 0.0) => {
                Err(format!("exponential schedule gamma {gamma}"))
            }
            Schedule::Cosine { min_lr, .. } if !(min_lr >= 0.0) => {
                Err(format!("cosine schedule min_lr {min_lr}"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        assert_eq!(Schedule::Constant.rate(0.1, 1000), 0.1);
        let s = Schedule::Step {
            every: 10,
            gamma: 0.5,
        };
        assert_eq!(
            (s.rate(1.0, 9), s.rate(1.0, 10), s.rate(1.0, 25)),
            (1.0, 0.5, 0.25)
        );
        assert!((Schedule::Exponential { gamma: 0.9 }.rate(1.0, 2) - 0.81).abs() < 1e-6);
        let c = Schedule::Cosine {
            total: 100,
            min_lr: 0.0,
        };
        assert!((c.rate(1.0, 0) - 1.0).abs() < 1e-6);
        assert!((c.rate(1.0, 50) - 0.5).abs() < 1e-6);
        assert_eq!(c.rate(1.0, 200), 0.0);
        let w = Schedule::Warmup { steps: 4 };
        assert_eq!(
            (w.rate(1.0, 0), w.rate(1.0, 3), w.rate(1.0, 9)),
            (0.25, 1.0, 1.0)
        );
        assert!(Schedule::Step {
            every: 0,
            gamma: 0.5
        }
        .validate()
        .is_err());
    }
}
