//! Weight initialization schemes.

use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

/// How a layer's weights are drawn. Biases start at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightInit {
    /// Glorot/Xavier uniform: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    XavierUniform,
    /// Glorot/Xavier normal: `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
    /// He/Kaiming uniform: `U(-a, a)`, `a = sqrt(6 / fan_in)`.
    HeUniform,
    /// He/Kaiming normal: `N(0, 2 / fan_in)`.
    HeNormal,
}

impl WeightInit {
    /// Fills `w` for a layer with the given fan-in and fan-out.
    pub fn fill(&self, w: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut impl Rng) {
        let (fi, fo) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        match self {
            WeightInit::XavierUniform => uniform(w, (6.0 / (fi + fo)).sqrt(), rng),
            WeightInit::HeUniform => uniform(w, (6.0 / fi).sqrt(), rng),
            WeightInit::XavierNormal => normal(w, (2.0 / (fi + fo)).sqrt(), rng),
            WeightInit::HeNormal => normal(w, (2.0 / fi).sqrt(), rng),
        }
    }
}

fn uniform(w: &mut [f32], a: f32, rng: &mut impl Rng) {
    let d = Uniform::new_inclusive(-a, a);
    w.iter_mut().for_each(|v| *v = d.sample(rng));
}

fn normal(w: &mut [f32], std: f32, rng: &mut impl Rng) {
    let d = Normal::new(0.0f32, std).expect("finite positive std");
    w.iter_mut().for_each(|v| *v = d.sample(rng));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn var(w: &[f32]) -> f32 {
        let m = w.iter().sum::<f32>() / w.len() as f32;
        w.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / w.len() as f32
    }

    #[test]
    fn variances_match_the_schemes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut w = vec![0f32; 40_000];
        let (fi, fo) = (100, 300);
        for (init, want) in [
            (WeightInit::XavierUniform, 2.0 / 400.0),
            (WeightInit::XavierNormal, 2.0 / 400.0),
            (WeightInit::HeUniform, 2.0 / 100.0),
            (WeightInit::HeNormal, 2.0 / 100.0),
        ] {
            init.fill(&mut w, fi, fo, &mut rng);
            let v = var(&w);
            assert!(
                (v - want).abs() < 0.05 * want,
                "{init:?}: variance {v}, want {want}"
            );
        }
    }
}
