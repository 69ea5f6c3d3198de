//! Partitioners: which reduce partition a key goes to.

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

/// An identity for comparing partitioners: two RDDs partitioned by equal descriptors have their
/// keys in the same partitions, so combining or joining them needs no shuffle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionerDesc {
    /// [`HashPartitioner`] with this many partitions.
    Hash(usize),
    /// [`RangePartitioner`] with these bounds (fingerprint) and this many partitions.
    Range {
        /// Fingerprint of the bounds and direction.
        fingerprint: u64,
        /// Partition count.
        partitions: usize,
    },
    /// Partition `k` holds key `k` (used by `cartesian` and `repartition`).
    Identity(usize),
}

/// Maps keys to partitions.
pub trait Partitioner<K> {
    /// How many partitions keys are spread over.
    fn num_partitions(&self) -> usize;
    /// The partition of `key`, below `num_partitions()`.
    fn partition(&self, key: &K) -> usize;
    /// This partitioner's identity.
    fn desc(&self) -> PartitionerDesc;
}

/// A stable 64-bit hash: the same on every worker and process (unlike `RandomState`).
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    mix64(h.finish())
}

/// The splitmix64 finalizer: spreads FxHash's output over all bits before taking a modulus.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Spreads keys by a stable hash (Spark's `HashPartitioner`).
#[derive(Debug, Clone, Copy)]
pub struct HashPartitioner {
    partitions: usize,
}

impl HashPartitioner {
    /// A hash partitioner over `partitions` partitions (at least 1).
    pub fn new(partitions: usize) -> Self {
        HashPartitioner {
            partitions: partitions.max(1),
        }
    }
}

impl<K: Hash> Partitioner<K> for HashPartitioner {
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn partition(&self, key: &K) -> usize {
        (stable_hash(key) % self.partitions as u64) as usize
    }
    fn desc(&self) -> PartitionerDesc {
        PartitionerDesc::Hash(self.partitions)
    }
}

/// Sends keys in sorted ranges to partitions: partition `i` holds keys between bounds `i-1` and
/// `i` (Spark's `RangePartitioner`); descending order reverses the partitions.
#[derive(Debug, Clone)]
pub struct RangePartitioner<K> {
    bounds: Vec<K>,
    ascending: bool,
    fingerprint: u64,
}

impl<K: Ord + Hash> RangePartitioner<K> {
    /// A partitioner with `bounds.len() + 1` partitions; `bounds` must be sorted ascending.
    pub fn from_bounds(bounds: Vec<K>, ascending: bool) -> Self {
        let mut h = FxHasher::default();
        bounds.hash(&mut h);
        ascending.hash(&mut h);
        RangePartitioner {
            fingerprint: h.finish(),
            bounds,
            ascending,
        }
    }

    /// Chooses bounds for `partitions` partitions from weighted samples `(key, weight)`, where a
    /// sample's weight is how many input elements it stands for.
    pub fn from_samples(mut samples: Vec<(K, f64)>, partitions: usize, ascending: bool) -> Self {
        samples.sort_by(|a, b| a.0.cmp(&b.0));
        let total: f64 = samples.iter().map(|s| s.1).sum();
        let step = total / partitions.max(1) as f64;
        let mut bounds: Vec<K> = Vec::new();
        let mut cumulative = 0.0;
        let mut target = step;
        for (key, weight) in samples {
            cumulative += weight;
            if bounds.len() + 1 >= partitions {
                break;
            }
            if cumulative >= target && bounds.last().is_none_or(|b| *b < key) {
                bounds.push(key);
                target += step;
            }
        }
        RangePartitioner::from_bounds(bounds, ascending)
    }
}

impl<K: Ord> Partitioner<K> for RangePartitioner<K> {
    fn num_partitions(&self) -> usize {
        self.bounds.len() + 1
    }
    fn partition(&self, key: &K) -> usize {
        let i = self.bounds.partition_point(|b| b < key);
        if self.ascending {
            i
        } else {
            self.bounds.len() - i
        }
    }
    fn desc(&self) -> PartitionerDesc {
        PartitionerDesc::Range {
            fingerprint: self.fingerprint,
            partitions: self.bounds.len() + 1,
        }
    }
}

/// Partition `k` holds key `k`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdentityPartitioner(pub usize);

impl Partitioner<usize> for IdentityPartitioner {
    fn num_partitions(&self) -> usize {
        self.0
    }
    fn partition(&self, key: &usize) -> usize {
        *key % self.0
    }
    fn desc(&self) -> PartitionerDesc {
        PartitionerDesc::Identity(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_partitioner_orders_partitions() {
        let samples: Vec<(u32, f64)> = (0..1000).map(|k| (k, 1.0)).collect();
        let p = RangePartitioner::from_samples(samples, 4, true);
        assert_eq!(Partitioner::<u32>::num_partitions(&p), 4);
        let parts: Vec<usize> = (0..1000u32).map(|k| p.partition(&k)).collect();
        assert!(parts.windows(2).all(|w| w[0] <= w[1]));
        for i in 0..4 {
            let n = parts.iter().filter(|&&x| x == i).count();
            assert!((200..=300).contains(&n), "partition {i} has {n}");
        }
        let d = RangePartitioner::from_samples((0..1000u32).map(|k| (k, 1.0)).collect(), 4, false);
        assert!(d.partition(&0) > d.partition(&999));
    }

    #[test]
    fn hash_partitioner_is_stable_and_in_range() {
        let p = HashPartitioner::new(7);
        for k in 0..1000u64 {
            let a = p.partition(&k);
            assert!(a < 7);
            assert_eq!(a, p.partition(&k));
        }
        assert_eq!(stable_hash("word"), stable_hash(&"word".to_string()));
    }
}
