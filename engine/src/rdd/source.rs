//! In-memory sources: a collection split into partitions, and integer ranges.

use std::rc::Rc;
use std::sync::Arc;

use std::hash::Hasher;

use ember_storage::StorageConfig;

use crate::data::Data;
use crate::error::{EngineError, Result};
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
    fn source_version(&self) -> Result<Option<String>> {
        // The data itself: a hash of its encoding (computed only when a checkpoint asks).
        let mut h = HashWriter(twox_hash::XxHash3_64::new());
        for slice in &self.slices {
            bincode::serialize_into(&mut h, slice.as_slice()).map_err(|e| {
                EngineError::Serialization(format!(
                    "parallelized data, hashed for a checkpoint fingerprint: {e}"
                ))
            })?;
        }
        Ok(Some(format!(
            "data {:016x} at {:?}",
            h.0.finish(),
            self.locations
        )))
    }
}

/// An `io::Write` that feeds a hasher.
struct HashWriter(twox_hash::XxHash3_64);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::hash::Hasher::write(&mut self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The version of file inputs: every file `url` matches now, with its size and its store's
/// version (modification time, ETag), hashed. Rewriting, adding or removing a file changes it.
pub(crate) fn files_version(url: &str, config: &StorageConfig) -> Result<String> {
    let files = ember_storage::list_inputs(url, config)?;
    let mut h = twox_hash::XxHash3_64::new();
    for f in &files {
        h.write(f.url().as_bytes());
        h.write_u64(f.size);
        h.write(f.version.as_bytes());
    }
    Ok(format!("files {url} {} {:016x}", files.len(), h.finish()))
}

/// `range`: the arithmetic sequence cut into contiguous partitions of nearly equal length.
///
/// Lengths and elements are computed in 128-bit arithmetic, so extreme bounds lose nothing:
/// `i64::MIN..i64::MAX` with step 1 has `2^64 - 1` elements, and a step near `i64::MAX` gives
/// every element below `end`. With `i64` bounds and an exclusive end the count is at most
/// `2^64 - 1`, so it always fits the `u64` it is kept in.
pub(crate) struct RangeSource {
    start: i64,
    step: i64,
    count: u64,
    partitions: usize,
}

/// How many of `start, start + step, ...` lie below `end` (above it for a negative step).
pub(crate) fn range_len(start: i64, end: i64, step: i64) -> u128 {
    let (start, end, step) = (start as i128, end as i128, step as i128);
    let span = if step > 0 { end - start } else { start - end };
    if span <= 0 || step == 0 {
        0
    } else {
        (span as u128).div_ceil(step.unsigned_abs())
    }
}

impl RangeSource {
    pub(crate) fn new(start: i64, end: i64, step: i64, partitions: usize) -> Self {
        // At most (i64::MAX - i64::MIN) = 2^64 - 1 (step 1), so the conversion cannot fail.
        let count = u64::try_from(range_len(start, end, step)).unwrap_or(u64::MAX);
        RangeSource {
            start,
            step,
            count,
            partitions: partitions.max(1),
        }
    }

    /// The elements of the sequence that partition `split` holds, as indices `lo..hi`.
    fn bounds(&self, split: usize) -> (u64, u64) {
        let p = self.partitions as u128;
        let lo = self.count as u128 * split as u128 / p;
        let hi = self.count as u128 * (split as u128 + 1) / p;
        (lo as u64, hi.min(self.count as u128) as u64)
    }

    /// Element `i` (below `count`, so between `start` and `end`: it fits an `i64`).
    fn element(start: i64, step: i64, i: u64) -> i64 {
        (start as i128 + step as i128 * i as i128) as i64
    }
}

impl Compute<i64> for RangeSource {
    fn source_version(&self) -> Result<Option<String>> {
        Ok(Some(format!(
            "range {} {} {}",
            self.start, self.step, self.count
        )))
    }
    fn num_partitions(&self) -> usize {
        self.partitions
    }
    fn compute(&self, split: usize, _tc: &Rc<TaskContext>) -> BoxIter<i64> {
        let (lo, hi) = self.bounds(split);
        let (start, step) = (self.start, self.step);
        Box::new((lo..hi).map(move |i| Self::element(start, step, i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_ranges_keep_every_element() {
        assert_eq!(range_len(i64::MIN, i64::MAX, 1), u64::MAX as u128);
        assert_eq!(range_len(i64::MAX, i64::MIN, -1), u64::MAX as u128);
        assert_eq!(range_len(i64::MIN, i64::MAX, i64::MAX), 3);
        assert_eq!(range_len(i64::MAX, i64::MIN, i64::MIN), 2);
        assert_eq!(range_len(0, 10, 3), 4);
        assert_eq!(range_len(10, 0, 3), 0);
        assert_eq!(range_len(5, 5, 1), 0);

        let r = RangeSource::new(i64::MIN, i64::MAX, 1, 4);
        assert_eq!(r.count, u64::MAX);
        let (lo, _) = r.bounds(0);
        let (_, hi) = r.bounds(3);
        assert_eq!((lo, hi), (0, u64::MAX));
        assert_eq!(RangeSource::element(r.start, r.step, lo), i64::MIN);
        assert_eq!(RangeSource::element(r.start, r.step, hi - 1), i64::MAX - 1);
        // Partitions tile the sequence with no gap or overlap.
        for s in 0..3 {
            assert_eq!(r.bounds(s).1, r.bounds(s + 1).0);
        }
        let r = RangeSource::new(i64::MIN, i64::MAX, i64::MAX, 2);
        let all: Vec<i64> = (0..2)
            .flat_map(|s| {
                let (lo, hi) = r.bounds(s);
                (lo..hi).map(|i| RangeSource::element(r.start, r.step, i))
            })
            .collect();
        assert_eq!(all, [i64::MIN, -1, i64::MAX - 1]);
    }
}
