//! Transformations that need a little more than one element at a time: sampling, indexing,
//! de-duplication and sorting by a computed key.

use std::panic::Location;

use rand::{Rng, SeedableRng};

use crate::data::{Data, Key};
use crate::error::{EngineError, Result};
use crate::rdd::Rdd;
use crate::shuffle::mix64;

impl<T: Data> Rdd<T> {
    /// A random sample: each element kept with probability `fraction` (without replacement), or
    /// repeated a Poisson(`fraction`) number of times (with replacement). Deterministic for a
    /// given seed and partitioning.
    #[track_caller]
    pub fn sample(&self, with_replacement: bool, fraction: f64, seed: u64) -> Result<Rdd<T>> {
        let valid =
            fraction.is_finite() && fraction >= 0.0 && (with_replacement || fraction <= 1.0);
        if !valid {
            return Err(EngineError::InvalidArgument {
                operation: "sample".into(),
                reason: format!(
                    "fraction must be {} (got {fraction})",
                    if with_replacement {
                        ">= 0"
                    } else {
                        "between 0 and 1"
                    }
                ),
            });
        }
        Ok(
            self.map_partitions_impl("sample", Location::caller(), true, move |split, it| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(mix64(seed ^ mix64(split as u64)));
                if with_replacement {
                    Box::new(it.flat_map(move |x| {
                        let k = poisson(&mut rng, fraction);
                        std::iter::repeat_n(x, k)
                    }))
                } else {
                    Box::new(it.filter(move |_| rng.gen::<f64>() < fraction))
                }
            }),
        )
    }

    /// Pairs each element with its index in the RDD's order (partition by partition). Runs a job
    /// to count the elements of every partition but the last, as Spark does.
    #[track_caller]
    pub fn zip_with_index(&self) -> Result<Rdd<(T, u64)>> {
        let site = Location::caller();
        let n = self.num_partitions();
        let counts = if n > 1 {
            self.run_partitions_subset(
                "zip_with_index counts",
                &(0..n - 1).collect::<Vec<_>>(),
                |_, it| it.count() as u64,
            )?
        } else {
            Vec::new()
        };
        let mut offsets = vec![0u64; n];
        for i in 1..n {
            offsets[i] = offsets[i - 1] + counts[i - 1];
        }
        Ok(
            self.map_partitions_impl("zip_with_index", site, false, move |split, it| {
                let start = offsets[split];
                Box::new(it.enumerate().map(move |(i, x)| (x, start + i as u64)))
            }),
        )
    }

    /// The distinct elements.
    #[track_caller]
    pub fn distinct(&self) -> Rdd<T>
    where
        T: Key,
    {
        let site = Location::caller();
        self.map_partitions_impl("distinct", site, false, |_, it| {
            Box::new(it.map(|x| (x, ())))
        })
        .reduce_by_key(|_, _| ())
        .map_partitions_impl("distinct", site, false, |_, it| {
            Box::new(it.map(|(x, _)| x))
        })
    }

    /// Sorts by the key `f` computes (via `key_by`, `sort_by_key` and `values`).
    #[track_caller]
    pub fn sort_by<K: Key + Ord>(
        &self,
        f: impl Fn(&T) -> K + 'static,
        ascending: bool,
    ) -> Result<Rdd<T>> {
        let site = Location::caller();
        let keyed = self.key_by(f);
        let sorted = keyed.sort_by_key_impl(ascending, None, site)?;
        Ok(sorted.values())
    }
}

/// A Poisson(`lambda`) draw by Knuth's method, splitting large means so `exp(-lambda)` stays
/// representable.
fn poisson(rng: &mut impl Rng, lambda: f64) -> usize {
    let mut remaining = lambda;
    let mut total = 0;
    while remaining > 0.0 {
        let step = remaining.min(30.0);
        remaining -= step;
        let limit = (-step).exp();
        let mut p = 1.0;
        loop {
            p *= rng.gen::<f64>();
            if p <= limit {
                break;
            }
            total += 1;
        }
    }
    total
}
