//! What gradient sharing records per worker and step ([`SharingRecord`], carried in the
//! [`StepRecord`](crate::distributed::StepRecord)), the residual's distribution in encoding
//! debug mode ([`ResidualStats`]), and the warnings those figures call for ([`diagnose`]).

use serde::{Deserialize, Serialize};

use super::encoding::Encoding;
use crate::distributed::stats::StepRecord;

/// One worker's encoding and exchange in one step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharingRecord {
    /// The threshold τ of the step's encoding.
    pub threshold: f32,
    /// How the step's message was laid out; `None` for a dense (warm-up) step.
    pub encoding: Option<Encoding>,
    /// Entries sent (all of them in a dense step).
    pub entries: u64,
    /// Fraction of the update's values sent.
    pub sparsity: f64,
    /// Bytes of the step's message (each copy sent counts in `bytes_sent`).
    pub message_bytes: u64,
    /// Largest staleness of the updates applied in this step: how many steps older than a
    /// synchronous run would have used (0 for every update when `max_staleness` is 0).
    pub staleness_max: u64,
    /// Updates of other workers applied in this step.
    pub applied: u64,
    /// Messages received twice and dropped (by worker and step).
    pub duplicates: u64,
    /// The residual after the step, in encoding debug mode.
    #[serde(default)]
    pub residual: Option<ResidualStats>,
    /// Checksum of the parameters once every worker's update of this step is applied (encoding
    /// debug mode, `max_staleness` 0): equal on every worker when the replicas agree.
    #[serde(default)]
    pub params_checksum: Option<u64>,
}

/// The residual's magnitudes after a step, as multiples of that step's threshold (DL4J's
/// encoding debug mode).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResidualStats {
    /// Mean |r| / τ.
    pub mean: f64,
    /// Largest |r| / τ.
    pub max: f64,
    /// Median |r| / τ.
    pub p50: f64,
    /// 95th percentile of |r| / τ.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

impl ResidualStats {
    /// The statistics of `residual` in units of `threshold` (O(n): selection, not a sort).
    pub fn of(residual: &[f32], threshold: f32) -> ResidualStats {
        let t = threshold as f64;
        let mut mags: Vec<f32> = residual.iter().map(|r| r.abs()).collect();
        if mags.is_empty() || t <= 0.0 {
            return ResidualStats {
                mean: 0.0,
                max: 0.0,
                p50: 0.0,
                p95: 0.0,
                p99: 0.0,
                p999: 0.0,
            };
        }
        let mean = mags.iter().map(|&m| m as f64).sum::<f64>() / mags.len() as f64 / t;
        let max = mags.iter().fold(0f32, |a, &b| a.max(b)) as f64 / t;
        let mut at = |q: f64| {
            let k = ((q * (mags.len() - 1) as f64).round() as usize).min(mags.len() - 1);
            let (_, v, _) = mags.select_nth_unstable_by(k, f32::total_cmp);
            *v as f64 / t
        };
        ResidualStats {
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            p999: at(0.999),
            mean,
            max,
        }
    }
}

/// Sparsity under which too little is sent: the threshold is too high.
pub const LOW_SPARSITY: f64 = 1e-4;
/// Median residual (in thresholds) at or over which the threshold is too low.
pub const HIGH_RESIDUAL: f64 = 10.0;

/// Warnings a run's sharing records call for, each saying what the figures show and what to
/// change. Looks at the steps after the first tenth of the run (thresholds settle first).
pub fn diagnose(records: &[StepRecord]) -> Vec<String> {
    let mut shared: Vec<(&StepRecord, &SharingRecord)> = records
        .iter()
        .filter_map(|r| r.sharing.as_ref().map(|s| (r, s)))
        .filter(|(r, s)| r.examples > 0 && s.encoding.is_some())
        .collect();
    shared.sort_by_key(|(r, _)| (r.step, r.worker));
    if shared.is_empty() {
        return Vec::new();
    }
    let settled = &shared[shared.len() / 10..];
    let n = settled.len() as f64;
    let mut out = Vec::new();
    let sent: f64 = settled.iter().map(|(_, s)| s.sparsity).sum::<f64>() / n;
    if sent < LOW_SPARSITY {
        out.push(format!(
            "the threshold is too high: on average {sent:.2e} of the values were sent per step \
             (under 1 in 10,000), so most of each update waits in the residual; lower the \
             initial threshold or use the adaptive threshold algorithm"
        ));
    }
    let debug: Vec<f64> = settled
        .iter()
        .filter_map(|(_, s)| s.residual.map(|r| r.p50))
        .collect();
    if !debug.is_empty() {
        let high = debug.iter().filter(|&&p| p >= HIGH_RESIDUAL).count();
        if high * 2 > debug.len() {
            out.push(format!(
                "the threshold is too low for these updates: in {high} of {} steps the median \
                 residual was {HIGH_RESIDUAL} or more times the threshold, so ±τ per step \
                 cannot keep up (residual explosion); raise the threshold, keep residual \
                 clipping on, or lower the learning rate",
                debug.len()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Step records cross processes in bincode (task results), which has no field names: every
    /// field must be written, none skipped, or the reader misreads the rest of the message.
    #[test]
    fn step_records_round_trip_through_bincode_with_and_without_sharing() {
        let sharing = SharingRecord {
            threshold: 1e-3,
            encoding: Some(Encoding::Bitmap),
            entries: 7,
            sparsity: 0.25,
            message_bytes: 44,
            staleness_max: 1,
            applied: 3,
            duplicates: 0,
            residual: None,
            params_checksum: Some(9),
        };
        let plain = StepRecord {
            worker: 1,
            epoch: 2,
            step: 3,
            start_us: 4,
            data_wait_us: 5,
            compute_us: 6,
            optimizer_us: 7,
            comm_us: 8,
            peer_wait_us: 9,
            examples: 10,
            loss: 0.5,
            bytes_sent: 11,
            bytes_received: 12,
            sharing: None,
        };
        let shared = StepRecord {
            sharing: Some(sharing),
            ..plain.clone()
        };
        let both = vec![plain, shared];
        let bytes = bincode::serialize(&both).unwrap();
        assert_eq!(
            bincode::deserialize::<Vec<StepRecord>>(&bytes).unwrap(),
            both
        );
    }

    #[test]
    fn residual_stats_are_in_thresholds() {
        let r: Vec<f32> = (0..1000).map(|i| i as f32 * 0.001).collect();
        let s = ResidualStats::of(&r, 0.1);
        assert!((s.max - 9.99).abs() < 1e-4);
        assert!((s.p50 - 5.0).abs() < 0.02, "{s:?}");
        assert!((s.p999 - 9.98).abs() < 0.02, "{s:?}");
        assert!((s.mean - 4.995).abs() < 1e-3, "{s:?}");
    }
}
