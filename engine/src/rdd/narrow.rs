//! Narrow transformations: each output partition is computed from one parent partition inside
//! the same task, by wrapping the parent's iterator.

use std::panic::Location;
use std::rc::Rc;

use crate::data::Data;
use crate::rdd::deep::AnyIter;
use crate::rdd::{BoxIter, Compute, Dependency, Rdd, RddBase, RddNode};
use crate::shuffle::PartitionerDesc;
use crate::task::TaskContext;

type PartitionFn<T, U> = dyn Fn(usize, BoxIter<T>) -> BoxIter<U>;

/// Spark's `MapPartitionsRDD`: every narrow one-to-one transformation is one of these.
pub(crate) struct MapPartitions<T: 'static, U> {
    parent: Rc<RddNode<T>>,
    f: Rc<PartitionFn<T, U>>,
    preserves_partitioning: bool,
}

impl<T: Data, U: Data> Compute<U> for MapPartitions<T, U> {
    fn num_partitions(&self) -> usize {
        RddBase::num_partitions(&*self.parent)
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::OneToOne(
            Rc::clone(&self.parent) as Rc<dyn RddBase>
        )]
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<U> {
        (self.f)(split, self.parent.iterator(split, tc))
    }
    fn chain_parent(&self) -> Option<Rc<dyn RddBase>> {
        Some(Rc::clone(&self.parent) as Rc<dyn RddBase>)
    }
    fn compute_from(
        &self,
        split: usize,
        parent: AnyIter,
        _tc: &Rc<TaskContext>,
    ) -> Option<BoxIter<U>> {
        let it = *parent.downcast::<BoxIter<T>>().ok()?;
        Some((self.f)(split, it))
    }
    fn partitioner(&self) -> Option<PartitionerDesc> {
        if self.preserves_partitioning {
            self.parent.partitioner()
        } else {
            None
        }
    }
}

impl<T: Data> Rdd<T> {
    pub(crate) fn map_partitions_impl<U: Data>(
        &self,
        op: &str,
        site: &'static Location<'static>,
        preserves_partitioning: bool,
        f: impl Fn(usize, BoxIter<T>) -> BoxIter<U> + 'static,
    ) -> Rdd<U> {
        let compute = MapPartitions {
            parent: Rc::clone(&self.node),
            f: Rc::new(f),
            preserves_partitioning,
        };
        Rdd::with_site(self.context(), op, site, Box::new(compute))
    }

    /// Applies `f` to every element.
    #[track_caller]
    pub fn map<U: Data>(&self, f: impl Fn(T) -> U + 'static) -> Rdd<U> {
        let f = Rc::new(f);
        self.map_partitions_impl("map", Location::caller(), false, move |_, it| {
            let f = Rc::clone(&f);
            Box::new(it.map(move |x| f(x)))
        })
    }

    /// Keeps the elements for which `f` is true.
    #[track_caller]
    pub fn filter(&self, f: impl Fn(&T) -> bool + 'static) -> Rdd<T> {
        let f = Rc::new(f);
        self.map_partitions_impl("filter", Location::caller(), true, move |_, it| {
            let f = Rc::clone(&f);
            Box::new(it.filter(move |x| f(x)))
        })
    }

    /// Maps every element to zero or more elements.
    #[track_caller]
    pub fn flat_map<U: Data, I>(&self, f: impl Fn(T) -> I + 'static) -> Rdd<U>
    where
        I: IntoIterator<Item = U> + 'static,
    {
        let f = Rc::new(f);
        self.map_partitions_impl("flat_map", Location::caller(), false, move |_, it| {
            let f = Rc::clone(&f);
            Box::new(it.flat_map(move |x| f(x)))
        })
    }

    /// Transforms each partition's iterator as a whole.
    #[track_caller]
    pub fn map_partitions<U: Data>(
        &self,
        f: impl Fn(BoxIter<T>) -> BoxIter<U> + 'static,
    ) -> Rdd<U> {
        self.map_partitions_impl("map_partitions", Location::caller(), false, move |_, it| {
            f(it)
        })
    }

    /// Transforms each partition's iterator, knowing the partition index.
    #[track_caller]
    pub fn map_partitions_with_index<U: Data>(
        &self,
        f: impl Fn(usize, BoxIter<T>) -> BoxIter<U> + 'static,
    ) -> Rdd<U> {
        self.map_partitions_impl("map_partitions_with_index", Location::caller(), false, f)
    }

    /// Each partition as one vector.
    #[track_caller]
    pub fn glom(&self) -> Rdd<Vec<T>> {
        self.map_partitions_impl("glom", Location::caller(), false, |_, it| {
            Box::new(std::iter::once(it.collect()))
        })
    }

    /// Pairs every element with the key `f` computes for it.
    #[track_caller]
    pub fn key_by<K: Data>(&self, f: impl Fn(&T) -> K + 'static) -> Rdd<(K, T)> {
        let f = Rc::new(f);
        self.map_partitions_impl("key_by", Location::caller(), false, move |_, it| {
            let f = Rc::clone(&f);
            Box::new(it.map(move |x| (f(&x), x)))
        })
    }
}
