//! The small answers every system prints for each workload, and sequential references.
//!
//! Answers are designed to be cheap to compute inside each system (one pass over the result)
//! and exact to compare: every sum is a wrapping u64 sum, so summation order does not matter.
//! Only the logistic-regression weights are floating point; they are compared with a relative
//! tolerance (see [`crate::report`]).

use serde::{Deserialize, Serialize};

use crate::protocol::{self, LR_FEATURES};

/// FNV-1a, 64-bit, over the UTF-8 bytes of `word` (offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3).
#[inline]
pub fn fnv1a64(word: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in word {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The answer of word count: distinct words, total words, the largest count, and
/// `checksum = sum over words of count * fnv1a64(word)` (wrapping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordCountAnswer {
    /// Number of distinct words.
    pub distinct: u64,
    /// Number of words (tokens) in the text.
    pub total: u64,
    /// The count of the most frequent word.
    pub max_count: u64,
    /// `sum count * fnv1a64(word)`, wrapping.
    pub checksum: u64,
}

impl WordCountAnswer {
    /// Adds one `(word, count)` result to the answer.
    #[inline]
    pub fn add(&mut self, word: &str, count: u64) {
        self.distinct += 1;
        self.total += count;
        self.max_count = self.max_count.max(count);
        self.checksum = self
            .checksum
            .wrapping_add(count.wrapping_mul(fnv1a64(word.as_bytes())));
    }

    /// The answer of a set of results whose words are disjoint from this one's.
    pub fn merge(self, other: WordCountAnswer) -> WordCountAnswer {
        WordCountAnswer {
            distinct: self.distinct + other.distinct,
            total: self.total + other.total,
            max_count: self.max_count.max(other.max_count),
            checksum: self.checksum.wrapping_add(other.checksum),
        }
    }

    /// The answer of a complete `(word, count)` table.
    pub fn of<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> WordCountAnswer {
        let mut answer = WordCountAnswer::default();
        for (word, count) in counts {
            answer.add(word, count);
        }
        answer
    }
}

/// The answer of `reduce_by_key(+)`: number of keys, and `sum key * 31 + value` (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReduceByKeyAnswer {
    /// Number of distinct keys.
    pub keys: u64,
    /// `sum over (key, summed value) of key * 31 + value`, wrapping.
    pub checksum: u64,
}

/// The answer of `group_by_key`: groups, total values, and `sum key * group size` (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupByKeyAnswer {
    /// Number of groups (distinct keys).
    pub groups: u64,
    /// Sum of the group sizes.
    pub values: u64,
    /// `sum over groups of key * size`, wrapping.
    pub checksum: u64,
}

/// The answer of `join`: number of rows, and `sum over rows (k, (v, w)) of v + w` (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinAnswer {
    /// Number of joined rows.
    pub rows: u64,
    /// `sum v + w`, wrapping.
    pub checksum: u64,
}

/// The answer of `sort_by_key`: rows, whether keys are sorted across the partitions in order,
/// the first three keys and the last key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortAnswer {
    /// Number of rows.
    pub rows: u64,
    /// Whether the keys, read partition by partition in order, never decrease.
    pub sorted: bool,
    /// The first three keys (fewer if there are fewer rows).
    pub first_keys: Vec<u64>,
    /// The last key (absent if there are no rows).
    pub last_key: Option<u64>,
}

/// The answer of logistic regression: the final weights, rounded to 9 decimals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrAnswer {
    /// The weights after the last iteration.
    pub w: Vec<f64>,
}

impl LrAnswer {
    /// The answer for weights `w`, each rounded to 9 decimals.
    pub fn new(w: &[f64]) -> LrAnswer {
        LrAnswer {
            w: w.iter().map(|v| (v * 1e9).round() / 1e9).collect(),
        }
    }
}

/// Per-key multiplicities and value sums of the first `n` pairs over `keys` keys.
fn key_stats(n: u64, keys: u64) -> (Vec<u64>, Vec<u64>) {
    let mut sizes = vec![0u64; keys as usize];
    let mut sums = vec![0u64; keys as usize];
    for i in 0..n {
        let (k, v) = protocol::pair(i, keys);
        sizes[k as usize] += 1;
        sums[k as usize] = sums[k as usize].wrapping_add(v);
    }
    (sizes, sums)
}

/// The expected answer of `reduce_by_key` over the first `n` pairs with `keys` keys.
pub fn reduce_by_key_reference(n: u64, keys: u64) -> ReduceByKeyAnswer {
    let (sizes, sums) = key_stats(n, keys);
    let mut answer = ReduceByKeyAnswer {
        keys: 0,
        checksum: 0,
    };
    for (k, (&size, &sum)) in sizes.iter().zip(&sums).enumerate() {
        if size > 0 {
            answer.keys += 1;
            answer.checksum = answer
                .checksum
                .wrapping_add((k as u64).wrapping_mul(31).wrapping_add(sum));
        }
    }
    answer
}

/// The expected answer of `group_by_key` over the first `n` pairs with `keys` keys.
pub fn group_by_key_reference(n: u64, keys: u64) -> GroupByKeyAnswer {
    let (sizes, _) = key_stats(n, keys);
    let mut answer = GroupByKeyAnswer {
        groups: 0,
        values: 0,
        checksum: 0,
    };
    for (k, &size) in sizes.iter().enumerate() {
        if size > 0 {
            answer.groups += 1;
            answer.values += size;
            answer.checksum = answer.checksum.wrapping_add((k as u64).wrapping_mul(size));
        }
    }
    answer
}

/// The expected answer of joining the first `n` pairs with the right side over `keys` keys.
pub fn join_reference(n: u64, keys: u64) -> JoinAnswer {
    let right: rustc_hash::FxHashMap<u64, u64> = (0..keys).map(protocol::join_right).collect();
    let mut answer = JoinAnswer {
        rows: 0,
        checksum: 0,
    };
    for i in 0..n {
        let (k, v) = protocol::pair(i, keys);
        if let Some(&w) = right.get(&k) {
            answer.rows += 1;
            answer.checksum = answer.checksum.wrapping_add(v.wrapping_add(w));
        }
    }
    answer
}

/// The expected answer of `sort_by_key` over the first `n` pairs with `keys` keys.
pub fn sort_reference(n: u64, keys: u64) -> SortAnswer {
    let (sizes, _) = key_stats(n, keys);
    let mut first_keys = Vec::new();
    let mut last_key = None;
    for (k, &size) in sizes.iter().enumerate() {
        for _ in 0..size.min(3) {
            if first_keys.len() < 3 {
                first_keys.push(k as u64);
            }
        }
        if size > 0 {
            last_key = Some(k as u64);
        }
    }
    SortAnswer {
        rows: n,
        sorted: true,
        first_keys,
        last_key,
    }
}

/// The expected weights of `iterations` logistic-regression steps over the first `n` points,
/// computed sequentially (the distributed sums differ only in rounding).
pub fn lr_reference(n: u64, iterations: usize) -> LrAnswer {
    let points: Vec<_> = (0..n).map(protocol::lr_point).collect();
    let mut w = [0.0; LR_FEATURES];
    for _ in 0..iterations {
        let mut grad = [0.0; LR_FEATURES];
        for (x, y) in &points {
            let scale = protocol::lr_gradient_scale(&w, x, *y);
            for j in 0..LR_FEATURES {
                grad[j] += x[j] * scale;
            }
        }
        for j in 0..LR_FEATURES {
            w[j] -= grad[j] / n as f64;
        }
    }
    LrAnswer::new(&w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Published FNV-1a 64 test vectors (from the FNV reference test suite).
    #[test]
    fn fnv1a64_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn word_count_answer_merges_like_one_pass() {
        let table = [("a", 3), ("bb", 1), ("ccc", 7), ("d", 2)];
        let whole = WordCountAnswer::of(table.iter().copied());
        let left = WordCountAnswer::of(table[..2].iter().copied());
        let right = WordCountAnswer::of(table[2..].iter().copied());
        assert_eq!(left.merge(right), whole);
        assert_eq!(whole.distinct, 4);
        assert_eq!(whole.total, 13);
        assert_eq!(whole.max_count, 7);
    }

    /// The references against direct computations with ordinary collections.
    #[test]
    fn pair_references_match_collection_computations() {
        let (n, keys) = (20_000u64, 500u64);
        let pairs: Vec<_> = (0..n).map(|i| protocol::pair(i, keys)).collect();
        let mut groups: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for &(k, v) in &pairs {
            groups.entry(k).or_default().push(v);
        }
        let rbk = reduce_by_key_reference(n, keys);
        assert_eq!(rbk.keys, groups.len() as u64);
        let expect: u64 = groups.iter().fold(0u64, |acc, (k, vs)| {
            acc.wrapping_add(k * 31 + vs.iter().sum::<u64>())
        });
        assert_eq!(rbk.checksum, expect);

        let gbk = group_by_key_reference(n, keys);
        assert_eq!(gbk.groups, groups.len() as u64);
        assert_eq!(gbk.values, n);
        let expect: u64 = groups.iter().map(|(k, vs)| k * vs.len() as u64).sum();
        assert_eq!(gbk.checksum, expect);

        let join = join_reference(n, keys);
        assert_eq!(join.rows, n);
        let expect: u64 = pairs.iter().map(|&(k, v)| v + 3 * k).sum();
        assert_eq!(join.checksum, expect);

        let mut sorted: Vec<u64> = pairs.iter().map(|p| p.0).collect();
        sorted.sort_unstable();
        let sort = sort_reference(n, keys);
        assert_eq!(sort.rows, n);
        assert_eq!(sort.first_keys, sorted[..3].to_vec());
        assert_eq!(sort.last_key, sorted.last().copied());
    }

    #[test]
    fn logistic_regression_learns_the_direction_of_the_true_weights() {
        let w = lr_reference(20_000, 10).w;
        let cos = (0..LR_FEATURES)
            .map(|j| w[j] * protocol::w_true(j))
            .sum::<f64>()
            / (w.iter().map(|v| v * v).sum::<f64>().sqrt()
                * (0..LR_FEATURES)
                    .map(|j| protocol::w_true(j).powi(2))
                    .sum::<f64>()
                    .sqrt());
        assert!(cos > 0.95, "cosine {cos}, w {w:?}");
    }
}
