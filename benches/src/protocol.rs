//! The deterministic data of the pair and logistic-regression workloads.
//!
//! Every system generates these data sets itself, from the formulas below, so that no files are
//! involved and answers can be compared exactly. Partition `p` of `P` holds the contiguous index
//! range [`partition_range`]`(n, P, p)`.
//!
//! * pairs: for `i` in `0..N_PAIRS`: `(mix(i) % PAIR_KEYS, i)`, in [`PARTITIONS`] partitions;
//! * join right side: for `k` in `0..PAIR_KEYS`: `(k, 3 * k)`, in [`PARTITIONS`] partitions;
//! * logistic-regression points: see [`lr_point`].

use crate::mix::mix;

/// Number of (key, value) pairs in the shuffle workloads.
pub const N_PAIRS: u64 = 10_000_000;
/// Number of distinct keys the pairs draw from (and the size of the join's right side).
pub const PAIR_KEYS: u64 = 1_000_000;
/// Number of partitions of every generated data set and of every shuffle's output.
pub const PARTITIONS: usize = 8;
/// Number of logistic-regression points.
pub const LR_POINTS: u64 = 1_000_000;
/// Number of features per logistic-regression point.
pub const LR_FEATURES: usize = 10;
/// Number of logistic-regression iterations.
pub const LR_ITERATIONS: usize = 10;

/// The index range of partition `p` out of `parts` over `0..n`: `[p*n/parts, (p+1)*n/parts)`.
pub fn partition_range(n: u64, parts: usize, p: usize) -> std::ops::Range<u64> {
    let parts = parts as u128;
    let lo = (p as u128 * n as u128 / parts) as u64;
    let hi = ((p as u128 + 1) * n as u128 / parts) as u64;
    lo..hi
}

/// The `i`-th pair of the shuffle workloads: `(mix(i) % keys, i)`.
#[inline]
pub fn pair(i: u64, keys: u64) -> (u64, u64) {
    (mix(i) % keys, i)
}

/// The right side of the join for key `k`: `(k, 3 * k)` (wrapping).
#[inline]
pub fn join_right(k: u64) -> (u64, u64) {
    (k, k.wrapping_mul(3))
}

/// The true weight of feature `j`: `(j + 1) * (-1)^j`, i.e. 1, -2, 3, -4, ...
#[inline]
pub fn w_true(j: usize) -> f64 {
    let w = (j + 1) as f64;
    if j & 1 == 0 {
        w
    } else {
        -w
    }
}

/// Feature `j` of point `i`: `((mix(i * 10 + j) >> 11) as f64 / 2^53) * 2.0 - 1.0`, uniform in
/// [-1, 1), evaluated left to right in f64 (every step but the last is exact).
#[inline]
pub fn lr_feature(i: u64, j: usize) -> f64 {
    let bits = mix(i.wrapping_mul(LR_FEATURES as u64).wrapping_add(j as u64)) >> 11;
    (bits as f64 / 9_007_199_254_740_992.0) * 2.0 - 1.0
}

/// Point `i` of the logistic regression: its features and label.
///
/// The label is `1.0` if `sum_j x_j * w_true(j)` (accumulated from 0.0 in increasing `j`) is
/// `> 0.0`, else `-1.0`.
pub fn lr_point(i: u64) -> ([f64; LR_FEATURES], f64) {
    let mut x = [0.0; LR_FEATURES];
    let mut dot = 0.0;
    for (j, xj) in x.iter_mut().enumerate() {
        *xj = lr_feature(i, j);
        dot += *xj * w_true(j);
    }
    (x, if dot > 0.0 { 1.0 } else { -1.0 })
}

/// The gradient contribution scale of one point under weights `w`:
/// `(1 / (1 + exp(-y * (w . x))) - 1) * y`, with `w . x` accumulated from 0.0 in increasing `j`.
/// The point's gradient is `x * scale`; summed over all points it gives `grad`, and each
/// iteration updates `w -= grad / n` (n = number of points).
#[inline]
pub fn lr_gradient_scale(w: &[f64; LR_FEATURES], x: &[f64; LR_FEATURES], y: f64) -> f64 {
    let mut dot = 0.0;
    for j in 0..LR_FEATURES {
        dot += w[j] * x[j];
    }
    (1.0 / (1.0 + (-y * dot).exp()) - 1.0) * y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ranges_tile_the_index_space() {
        for &(n, parts) in &[(10u64, 3usize), (0, 4), (7, 8), (10_000_000, 8)] {
            let mut next = 0;
            for p in 0..parts {
                let r = partition_range(n, parts, p);
                assert_eq!(r.start, next);
                assert!(r.end >= r.start);
                next = r.end;
            }
            assert_eq!(next, n);
        }
    }

    #[test]
    fn features_are_in_range_and_labels_follow_the_true_weights() {
        let mut positives = 0;
        for i in 0..10_000 {
            let (x, y) = lr_point(i);
            assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
            let dot: f64 = (0..LR_FEATURES).map(|j| x[j] * w_true(j)).sum();
            assert_eq!(y, if dot > 0.0 { 1.0 } else { -1.0 });
            if y > 0.0 {
                positives += 1;
            }
        }
        // A symmetric distribution: roughly half the labels are positive.
        assert!((4_500..5_500).contains(&positives), "{positives}");
    }

    #[test]
    fn pair_keys_are_spread_over_the_key_space() {
        let keys = 1000;
        let mut hits = vec![0u32; keys as usize];
        for i in 0..100_000 {
            let (k, v) = pair(i, keys);
            assert_eq!(v, i);
            hits[k as usize] += 1;
        }
        assert!(hits.iter().all(|&h| (50..150).contains(&h)));
    }

    #[test]
    fn gradient_scale_at_zero_weights_is_minus_half_the_label() {
        let (x, y) = lr_point(3);
        assert_eq!(lr_gradient_scale(&[0.0; LR_FEATURES], &x, y), -0.5 * y);
    }
}
