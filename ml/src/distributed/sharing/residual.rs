//! Residual post-processors: what happens to the residual after each step's encoding (DL4J's
//! `ResidualPostProcessor`). Clipping (the default: to ±5τ every 5 steps) stops "residual
//! explosion", where updates far above τ pile up faster than ±τ a step can send them.

use std::fmt::Debug;

/// Adjusts the residual after a step's encoding.
pub trait ResidualPostProcessor: Debug + Send + Sync {
    /// Called after every step in which the worker trained (`step` counts those steps from 0,
    /// over the whole run), with the threshold the step used.
    fn process(&mut self, step: u64, threshold: f32, residual: &mut [f32]);
    /// A one-line description.
    fn describe(&self) -> String;
    /// A copy with the same settings and state, boxed.
    fn clone_box(&self) -> Box<dyn ResidualPostProcessor>;
}

impl Clone for Box<dyn ResidualPostProcessor> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Clips the residual to ±`multiple`·τ every `every` steps (DL4J's
/// `ResidualClippingPostProcessor(5.0, 5)` by default).
#[derive(Clone, Debug, PartialEq)]
pub struct ResidualClipping {
    /// The bound, in thresholds.
    pub multiple: f32,
    /// Clip on steps that are multiples of this (from step 0).
    pub every: u64,
}

impl Default for ResidualClipping {
    fn default() -> Self {
        ResidualClipping {
            multiple: 5.0,
            every: 5,
        }
    }
}

impl ResidualPostProcessor for ResidualClipping {
    fn process(&mut self, step: u64, threshold: f32, residual: &mut [f32]) {
        if self.every == 0 || !step.is_multiple_of(self.every) {
            return;
        }
        let bound = self.multiple * threshold;
        for r in residual.iter_mut() {
            *r = r.clamp(-bound, bound);
        }
    }
    fn describe(&self) -> String {
        format!(
            "residual clipped to ±{}τ every {} steps",
            self.multiple, self.every
        )
    }
    fn clone_box(&self) -> Box<dyn ResidualPostProcessor> {
        Box::new(self.clone())
    }
}

/// Leaves the residual as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NoResidualProcessing;

impl ResidualPostProcessor for NoResidualProcessing {
    fn process(&mut self, _: u64, _: f32, _: &mut [f32]) {}
    fn describe(&self) -> String {
        "residual not post-processed".into()
    }
    fn clone_box(&self) -> Box<dyn ResidualPostProcessor> {
        Box::new(self.clone())
    }
}
