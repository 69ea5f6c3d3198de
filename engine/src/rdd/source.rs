//! In-memory sources: a collection split into partitions, and integer ranges.

use std::rc::Rc;
use std::sync::Arc;

use crate::data::Data;
use crate::rdd::{BoxIter, Compute, SharedVecIter};
use crate::task::TaskContext;

/// `parallelize`: the collection cut into contiguous slices, one per partition.
pub(crate) struct ParallelCollection<T> {
    slices: Vec<Arc<Vec<T>>>,
    /// Preferred workers of each slice (`make_rdd`); empty: no preference.
    locations: Vec<Vec<usize>>,
}

impl<T: Data> ParallelCollection<T> {
    pub(crate) fn new(mut values: Vec<T>, partitions: usize) -> Self {
        let n = values.len();
        let mut slices = Vec::with_capacity(partitions);
        // Slice i holds elements [i*n/p, (i+1)*n/p), as Spark slices a collection.
        for i in (0..partitions).rev() {
            let start = i * n / partitions;
            slices.push(Arc::new(values.split_off(start)));
        }
        slices.reverse();
        ParallelCollection {
            slices,
            locations: Vec::new(),
        }
    }

    /// One partition per slice, each with its preferred workers (Spark's `makeRDD` with
    /// location preferences).
    pub(crate) fn with_locations(parts: Vec<(Vec<T>, Vec<usize>)>) -> Self {
        let (slices, locations) = parts.into_iter().map(|(v, l)| (Arc::new(v), l)).unzip();
        ParallelCollection { slices, locations }
    }
}

impl<T: Data> Compute<T> for ParallelCollection<T> {
    fn num_partitions(&self) -> usize {
        self.slices.len()
    }
    fn compute(&self, split: usize, _tc: &Rc<TaskContext>) -> BoxIter<T> {
        Box::new(SharedVecIter::new(Arc::clone(&self.slices[split])))
    }
    fn preferred_workers(&self, split: usize) -> Vec<usize> {
        self.locations.get(split).cloned().unwrap_or_default()
    }
}

/// `range`: the arithmetic sequence cut into contiguous partitions of nearly equal length.
pub(crate) struct RangeSource {
    start: i64,
    step: i64,
    count: u64,
    partitions: usize,
}

impl RangeSource {
    pub(crate) fn new(start: i64, end: i64, step: i64, partitions: usize) -> Self {
        let span = if step > 0 {
            end.saturating_sub(start)
        } else {
            start.saturating_sub(end)
        };
        let count = if span <= 0 {
            0
        } else {
            (span as u64).div_ceil(step.unsigned_abs())
        };
        RangeSource {
            start,
            step,
            count,
            partitions,
        }
    }
}

impl Compute<i64> for RangeSource {
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn compute(&self, split: usize, _tc: &Rc<TaskContext>) -> BoxIter<i64> {
        let p = self.partitions as u128;
        let lo = (self.count as u128 * split as u128 / p) as u64;
        let hi = (self.count as u128 * (split as u128 + 1) / p) as u64;
        let (start, step) = (self.start, self.step);
        Box::new((lo..hi).map(move |i| start + step * i as i64))
    }
}
