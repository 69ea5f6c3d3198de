//! Co-grouping two pair RDDs by key: the basis of every join (Spark's `CoGroupedRDD`). A side
//! already partitioned like the result is read directly (a narrow dependency); the other side is
//! shuffled.

use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::data::{Data, Key};
use crate::rdd::{BoxIter, Compute, Dependency, RddBase, RddNode};
use crate::shuffle::{
    block_records, MapSide, Partitioner, PartitionerDesc, ShuffleDepBase, ShuffleDependency,
};
use crate::task::TaskContext;

/// One input of a co-group.
pub(crate) enum Side<K: 'static, V: 'static> {
    Narrow(Rc<RddNode<(K, V)>>),
    Shuffled(Rc<ShuffleDependency<K, V, V>>),
}

impl<K: Key, V: Data> Side<K, V> {
    pub(crate) fn new(
        op: &str,
        parent: Rc<RddNode<(K, V)>>,
        partitioner: Rc<dyn Partitioner<K>>,
    ) -> Self {
        if parent.partitioner() == Some(partitioner.desc()) {
            Side::Narrow(parent)
        } else {
            Side::Shuffled(ShuffleDependency::new(
                op,
                parent,
                partitioner,
                MapSide::Plain(|v| v),
            ))
        }
    }

    fn dependency(&self) -> Dependency {
        match self {
            Side::Narrow(p) => Dependency::OneToOne(Rc::clone(p) as Rc<dyn RddBase>),
            Side::Shuffled(d) => Dependency::Shuffle(Rc::clone(d) as Rc<dyn ShuffleDepBase>),
        }
    }

    fn records(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<(K, V)> {
        match self {
            Side::Narrow(p) => p.iterator(split, tc),
            Side::Shuffled(d) => match d.block(split, tc) {
                Some(block) => Box::new(block_records(block)),
                None => Box::new(std::iter::empty()),
            },
        }
    }
}

/// Every key of either side with all its values from each side.
pub(crate) struct CoGrouped<K: 'static, V: 'static, W: 'static> {
    left: Side<K, V>,
    right: Side<K, W>,
    partitioner: Rc<dyn Partitioner<K>>,
}

impl<K: Key, V: Data, W: Data> CoGrouped<K, V, W> {
    pub(crate) fn new(
        left: Side<K, V>,
        right: Side<K, W>,
        partitioner: Rc<dyn Partitioner<K>>,
    ) -> Self {
        CoGrouped {
            left,
            right,
            partitioner,
        }
    }
}

impl<K: Key, V: Data, W: Data> Compute<(K, (Vec<V>, Vec<W>))> for CoGrouped<K, V, W> {
    fn num_partitions(&self) -> usize {
        self.partitioner.num_partitions()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![self.left.dependency(), self.right.dependency()]
    }
    fn partitioner(&self) -> Option<PartitionerDesc> {
        Some(self.partitioner.desc())
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<(K, (Vec<V>, Vec<W>))> {
        let mut groups: FxHashMap<K, (Vec<V>, Vec<W>)> = FxHashMap::default();
        for (k, v) in self.left.records(split, tc) {
            groups.entry(k).or_default().0.push(v);
        }
        for (k, w) in self.right.records(split, tc) {
            groups.entry(k).or_default().1.push(w);
        }
        Box::new(groups.into_iter())
    }
}
