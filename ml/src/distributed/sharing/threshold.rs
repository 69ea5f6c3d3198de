//! Threshold algorithms: how τ moves from step to step (DL4J's `ThresholdAlgorithm`s, with
//! their defaults).
//!
//! - [`AdaptiveThreshold`] (the default): starts at 1e-3 and keeps the fraction of entries sent
//!   between 1e-4 and 1e-2, multiplying τ by 0.965936 (= 0.5^(1/20), halving in 20 steps) when
//!   fewer are sent and dividing by it when more are.
//! - [`FixedThreshold`]: one τ throughout.
//! - [`TargetSparsityThreshold`]: starts at 1e-4 and steers toward one sparsity (1e-3) with the
//!   same factor.
//!
//! Sparsity here is the exact fraction of entries sent, for bitmap messages too (DL4J counts a
//! bitmap step as 1/16 because its bitmap encoder does not count; Ember's does).

use std::fmt::Debug;

/// DL4J's decay factor: 0.5^(1/20).
pub const DECAY: f64 = 0.965_936_328_951_88;

/// How the threshold of the next step follows from the last step's.
pub trait ThresholdAlgorithm: Debug + Send + Sync {
    /// The threshold of a worker's first step.
    fn initial(&self) -> f32;
    /// The threshold after a step encoded at `last` sent a fraction `sparsity` of the entries.
    /// Called for steps in which the worker trained, in order.
    fn next(&mut self, last: f32, sparsity: f64) -> f32;
    /// A one-line description, e.g. `adaptive (1e-3, sparsity 1e-4..1e-2)`.
    fn describe(&self) -> String;
    /// A copy with the same settings and state, boxed.
    fn clone_box(&self) -> Box<dyn ThresholdAlgorithm>;
}

impl Clone for Box<dyn ThresholdAlgorithm> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Keeps sparsity inside a band (DL4J's `AdaptiveThresholdAlgorithm`).
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveThreshold {
    /// τ of the first step.
    pub initial: f32,
    /// Below this sparsity τ shrinks.
    pub min_sparsity: f64,
    /// Above this sparsity τ grows.
    pub max_sparsity: f64,
    /// Factor per step (< 1).
    pub decay: f64,
}

impl Default for AdaptiveThreshold {
    fn default() -> Self {
        AdaptiveThreshold {
            initial: 1e-3,
            min_sparsity: 1e-4,
            max_sparsity: 1e-2,
            decay: DECAY,
        }
    }
}

impl ThresholdAlgorithm for AdaptiveThreshold {
    fn initial(&self) -> f32 {
        self.initial
    }
    fn next(&mut self, last: f32, sparsity: f64) -> f32 {
        steer(
            last,
            sparsity,
            (self.min_sparsity, self.max_sparsity),
            self.decay,
        )
    }
    fn describe(&self) -> String {
        format!(
            "adaptive threshold ({:e}, sparsity {:e}..{:e})",
            self.initial, self.min_sparsity, self.max_sparsity
        )
    }
    fn clone_box(&self) -> Box<dyn ThresholdAlgorithm> {
        Box::new(self.clone())
    }
}

/// One threshold for every step.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedThreshold(pub f32);

impl ThresholdAlgorithm for FixedThreshold {
    fn initial(&self) -> f32 {
        self.0
    }
    fn next(&mut self, _: f32, _: f64) -> f32 {
        self.0
    }
    fn describe(&self) -> String {
        format!("fixed threshold {:e}", self.0)
    }
    fn clone_box(&self) -> Box<dyn ThresholdAlgorithm> {
        Box::new(self.clone())
    }
}

/// Steers toward one sparsity (DL4J's `TargetSparsityThresholdAlgorithm`).
#[derive(Clone, Debug, PartialEq)]
pub struct TargetSparsityThreshold {
    /// τ of the first step.
    pub initial: f32,
    /// The sparsity aimed at.
    pub target: f64,
    /// Factor per step (< 1).
    pub decay: f64,
}

impl Default for TargetSparsityThreshold {
    fn default() -> Self {
        TargetSparsityThreshold {
            initial: 1e-4,
            target: 1e-3,
            decay: DECAY,
        }
    }
}

impl ThresholdAlgorithm for TargetSparsityThreshold {
    fn initial(&self) -> f32 {
        self.initial
    }
    fn next(&mut self, last: f32, sparsity: f64) -> f32 {
        steer(last, sparsity, (self.target, self.target), self.decay)
    }
    fn describe(&self) -> String {
        format!(
            "target-sparsity threshold ({:e}, target {:e})",
            self.initial, self.target
        )
    }
    fn clone_box(&self) -> Box<dyn ThresholdAlgorithm> {
        Box::new(self.clone())
    }
}

/// τ × `decay` when fewer than `band.0` of the values were sent (send more), τ ÷ `decay` when
/// more than `band.1` were (send fewer), τ otherwise; kept a normal positive f32 whatever the
/// sequence of steps.
fn steer(last: f32, sparsity: f64, band: (f64, f64), decay: f64) -> f32 {
    let t = last as f64;
    let t = if sparsity < band.0 {
        t * decay
    } else if sparsity > band.1 {
        t / decay
    } else {
        t
    };
    t.clamp(f32::MIN_POSITIVE as f64, 1e30) as f32
}

/// Checks a threshold algorithm's settings.
pub(crate) fn validate(a: &dyn ThresholdAlgorithm) -> Result<(), String> {
    let t = a.initial();
    if !(t.is_finite() && t > 0.0) {
        return Err(format!(
            "the initial threshold of {} must be a positive number",
            a.describe()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_moves_only_outside_its_band() {
        let mut a = AdaptiveThreshold::default();
        let t0 = a.initial();
        assert_eq!(t0, 1e-3);
        // In the band: unchanged.
        assert_eq!(a.next(t0, 1e-3), t0);
        // Too few sent: τ × decay; too many: τ ÷ decay.
        let down = a.next(t0, 1e-5);
        assert!((down as f64 / (1e-3 * DECAY) - 1.0).abs() < 1e-6);
        let up = a.next(t0, 0.5);
        assert!((up as f64 / (1e-3 / DECAY) - 1.0).abs() < 1e-6);
        // Twenty steps below the band halve it.
        let mut t = t0;
        for _ in 0..20 {
            t = a.next(t, 0.0);
        }
        assert!((t as f64 / 5e-4 - 1.0).abs() < 1e-5, "{t}");
    }
}
