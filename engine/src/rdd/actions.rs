//! Actions: operations that run a job and return a value (the same on every worker).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::data::{Data, Key};
use crate::error::Result;
use crate::rdd::Rdd;

impl<T: Data> Rdd<T> {
    /// All elements, in partition order.
    pub fn collect(&self) -> Result<Vec<T>> {
        let parts = self.run_partitions("collect", |_, it| it.collect::<Vec<T>>())?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// The number of elements.
    pub fn count(&self) -> Result<u64> {
        Ok(self
            .run_partitions("count", |_, it| it.count() as u64)?
            .into_iter()
            .sum())
    }

    /// Combines all elements with `f` (associative and commutative); `None` when empty.
    pub fn reduce(&self, f: impl Fn(T, T) -> T) -> Result<Option<T>> {
        let parts = self.run_partitions("reduce", |_, it| it.reduce(&f))?;
        Ok(parts.into_iter().flatten().reduce(&f))
    }

    /// Folds every partition, then the partition results, starting from `zero` each time.
    pub fn fold(&self, zero: T, f: impl Fn(T, T) -> T) -> Result<T> {
        let z = zero.clone();
        let parts = self.run_partitions("fold", |_, it| it.fold(z.clone(), &f))?;
        Ok(parts.into_iter().fold(zero, &f))
    }

    /// Aggregates with a different result type: `seq` folds elements into a partition's
    /// accumulator (starting at `zero`), `comb` merges accumulators.
    pub fn aggregate<U: Data>(
        &self,
        zero: U,
        seq: impl Fn(U, T) -> U,
        comb: impl Fn(U, U) -> U,
    ) -> Result<U> {
        let z = zero.clone();
        let parts = self.run_partitions("aggregate", |_, it| it.fold(z.clone(), &seq))?;
        Ok(parts.into_iter().fold(zero, comb))
    }

    /// [`Rdd::aggregate`] with the partition results combined in a tree of `depth` levels
    /// (Spark's `treeAggregate`): each level is a shuffle to fewer partitions, so no single
    /// worker merges every partition's accumulator (large accumulators such as a network's
    /// parameters). `depth` 1 is `aggregate`; 0 is an error.
    #[track_caller]
    pub fn tree_aggregate<U: Data>(
        &self,
        zero: U,
        seq: impl Fn(U, T) -> U + 'static,
        comb: impl Fn(U, U) -> U + 'static,
        depth: usize,
    ) -> Result<U> {
        if depth == 0 {
            return Err(crate::error::EngineError::InvalidArgument {
                operation: "tree_aggregate".into(),
                reason: "depth must be at least 1".into(),
            });
        }
        let comb = std::rc::Rc::new(comb);
        let z = zero.clone();
        let mut partial: Rdd<U> = self.map_partitions_impl(
            "tree_aggregate",
            std::panic::Location::caller(),
            false,
            move |_, it| Box::new(std::iter::once(it.fold(z.clone(), &seq))),
        );
        let mut parts = partial.num_partitions();
        let scale = ((parts as f64).powf(1.0 / depth as f64).ceil() as usize).max(2);
        while parts > scale + parts.div_ceil(scale) {
            parts /= scale;
            let current = parts;
            let c = std::rc::Rc::clone(&comb);
            partial = partial
                .map_partitions_with_index(move |i, it| Box::new(it.map(move |u| (i % current, u))))
                .reduce_by_key_with(move |a, b| c(a, b), current)
                .values();
        }
        let c = std::rc::Rc::clone(&comb);
        let results =
            partial.run_partitions("tree_aggregate", |_, it| it.reduce(|a, b| c(a, b)))?;
        Ok(results.into_iter().flatten().fold(zero, |a, b| comb(a, b)))
    }

    /// The first `n` elements in partition order, scanning as few partitions as it can: one
    /// partition first, then four times as many each round until enough are found.
    pub fn take(&self, n: usize) -> Result<Vec<T>> {
        let total = self.num_partitions();
        let mut out = Vec::new();
        let mut next = 0;
        let mut batch = 1;
        while out.len() < n && next < total {
            let parts: Vec<usize> = (next..(next + batch).min(total)).collect();
            let want = n - out.len();
            let results = self.run_partitions_subset("take", &parts, move |_, it| {
                it.take(want).collect::<Vec<T>>()
            })?;
            for r in results {
                out.extend(r);
            }
            next += parts.len();
            batch *= 4;
        }
        out.truncate(n);
        Ok(out)
    }

    /// The first element, if any.
    pub fn first(&self) -> Result<Option<T>> {
        Ok(self.take(1)?.into_iter().next())
    }

    /// The `n` smallest elements by `cmp`, in that order.
    pub fn take_ordered_by(
        &self,
        n: usize,
        cmp: impl Fn(&T, &T) -> Ordering + Clone + 'static,
    ) -> Result<Vec<T>> {
        let c = cmp.clone();
        let parts = self.run_partitions("take_ordered", move |_, it| smallest(it, n, &c))?;
        Ok(smallest(parts.into_iter().flatten(), n, &cmp))
    }

    /// The `n` smallest elements, ascending.
    pub fn take_ordered(&self, n: usize) -> Result<Vec<T>>
    where
        T: Ord,
    {
        self.take_ordered_by(n, |a: &T, b: &T| a.cmp(b))
    }

    /// The `n` largest elements, descending.
    pub fn top(&self, n: usize) -> Result<Vec<T>>
    where
        T: Ord,
    {
        self.take_ordered_by(n, |a: &T, b: &T| b.cmp(a))
    }

    /// Runs `f` on every element, on the worker that holds it.
    pub fn foreach(&self, f: impl Fn(T)) -> Result<()> {
        self.run_partitions("foreach", |_, it| it.for_each(&f))?;
        Ok(())
    }

    /// Runs `f` on every partition's iterator.
    pub fn foreach_partition(&self, f: impl Fn(crate::rdd::BoxIter<T>)) -> Result<()> {
        self.run_partitions("foreach_partition", |_, it| f(Box::new(it)))?;
        Ok(())
    }

    /// How many times each distinct element occurs.
    pub fn count_by_value(&self) -> Result<FxHashMap<T, u64>>
    where
        T: Key,
    {
        self.map(|x| (x, 1u64)).count_by_key()
    }
}

/// The `n` smallest items of `it` by `cmp`, sorted, using a bounded heap.
fn smallest<T>(it: impl Iterator<Item = T>, n: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    struct ByCmp<'a, T, F: Fn(&T, &T) -> Ordering>(T, &'a F);
    impl<T, F: Fn(&T, &T) -> Ordering> PartialEq for ByCmp<'_, T, F> {
        fn eq(&self, o: &Self) -> bool {
            (self.1)(&self.0, &o.0) == Ordering::Equal
        }
    }
    impl<T, F: Fn(&T, &T) -> Ordering> Eq for ByCmp<'_, T, F> {}
    impl<T, F: Fn(&T, &T) -> Ordering> PartialOrd for ByCmp<'_, T, F> {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl<T, F: Fn(&T, &T) -> Ordering> Ord for ByCmp<'_, T, F> {
        fn cmp(&self, o: &Self) -> Ordering {
            (self.1)(&self.0, &o.0)
        }
    }
    if n == 0 {
        return Vec::new();
    }
    // A max-heap of the n smallest so far: the root is the one to evict.
    let mut heap = BinaryHeap::with_capacity(n + 1);
    for x in it {
        heap.push(ByCmp(x, cmp));
        if heap.len() > n {
            heap.pop();
        }
    }
    heap.into_sorted_vec().into_iter().map(|b| b.0).collect()
}
