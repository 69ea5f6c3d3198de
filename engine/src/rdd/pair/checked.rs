//! A partitioner checked as the shuffle uses it, so a user partitioner that returns an index out
//! of range fails its task with a typed error instead of panicking inside the shuffle.

use std::hash::Hash;
use std::rc::Rc;

use crate::error::EngineError;
use crate::shuffle::{HashPartitioner, Partitioner, PartitionerDesc};

/// A partitioner checked as the shuffle uses it: a `partition` outside `0..num_partitions()` (or a
/// partitioner with no partitions) fails the running task with
/// [`EngineError::InvalidArgument`] naming the partitioner, the value and the partition count,
/// instead of an index-out-of-bounds panic inside the shuffle. The bad record is routed to
/// partition 0 of the failing attempt, whose output is discarded.
pub(crate) struct CheckedPartitioner<K> {
    inner: Rc<dyn Partitioner<K>>,
    /// The partitioner's type, for messages.
    name: String,
    /// The operation it serves (`partition_by`...).
    op: String,
    /// Partitions, as the partitioner declared when wrapped.
    partitions: usize,
    desc: PartitionerDesc,
}

impl<K: 'static> CheckedPartitioner<K> {
    /// Wraps a (user) partitioner.
    pub(crate) fn new(inner: Rc<dyn Partitioner<K>>, name: &str, op: &str) -> Self {
        CheckedPartitioner {
            partitions: inner.num_partitions(),
            desc: inner.desc(),
            inner,
            name: name.to_string(),
            op: op.to_string(),
        }
    }

    /// A hash partitioner asked for 0 partitions (`reduce_by_key_with(f, 0)`): every map task of
    /// its shuffle fails, as `repartition(0)` does at once. Its identity matches no real
    /// partitioner, so the shuffle always runs.
    pub(crate) fn zero_partitions(op: &str) -> Self
    where
        K: Hash,
    {
        CheckedPartitioner {
            inner: Rc::new(HashPartitioner::new(1)),
            name: "HashPartitioner".to_string(),
            op: op.to_string(),
            partitions: 0,
            desc: PartitionerDesc::Hash(0),
        }
    }

    /// Fails the task running on this thread (outside a task, when the driver plans, nothing).
    fn fail(&self, reason: String) {
        if let Some(tc) = crate::task::current_task() {
            tc.fail(EngineError::InvalidArgument {
                operation: self.op.clone(),
                reason,
            });
        }
    }
}

impl<K: 'static> Partitioner<K> for CheckedPartitioner<K> {
    fn num_partitions(&self) -> usize {
        if self.partitions == 0 {
            self.fail(format!(
                "partitioner {} has 0 partitions: the number of partitions must be at least 1",
                self.name
            ));
            return 1;
        }
        self.partitions
    }
    fn partition(&self, key: &K) -> usize {
        let p = self.inner.partition(key);
        if p < self.partitions {
            return p;
        }
        self.fail(format!(
            "partitioner {} returned partition {p} for a key, but it has {} partitions: \
             partition() must return a value below num_partitions()",
            self.name, self.partitions
        ));
        0
    }
    fn desc(&self) -> PartitionerDesc {
        self.desc.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl Partitioner<u64> for Broken {
        fn num_partitions(&self) -> usize {
            3
        }
        fn partition(&self, key: &u64) -> usize {
            *key as usize
        }
        fn desc(&self) -> PartitionerDesc {
            PartitionerDesc::Identity(3)
        }
    }

    #[test]
    fn checked_partitioner_passes_good_values_and_keeps_identity() {
        let p = CheckedPartitioner::new(Rc::new(Broken), "Broken", "partition_by");
        assert_eq!(p.num_partitions(), 3);
        assert_eq!((p.partition(&0), p.partition(&2)), (0, 2));
        // Out of range outside a task: a valid index, no panic.
        assert_eq!(p.partition(&7), 0);
        assert_eq!(p.desc(), PartitionerDesc::Identity(3));
        let z = CheckedPartitioner::<u64>::zero_partitions("reduce_by_key");
        assert_eq!(
            (z.num_partitions(), z.desc()),
            (1, PartitionerDesc::Hash(0))
        );
    }
}
