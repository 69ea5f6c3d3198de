//! Operations on RDDs of key-value pairs (Spark's `PairRDDFunctions`).

mod checked;

use std::panic::Location;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use self::checked::CheckedPartitioner;
use crate::context::check_partitions;
use crate::data::{Data, Key};
use crate::error::Result;
use crate::rdd::{Rdd, RddBase};
use crate::shuffle::{
    combine_into, combined, Aggregator, CoGrouped, HashPartitioner, MapSide, Partitioner,
    RangePartitioner, ShuffleDependency, Shuffled, Side,
};

impl<K: Key, V: Data> Rdd<(K, V)> {
    /// The partitioner used when an operation is given no partition count: the parent's own
    /// partitioner's count, else `ember.default.parallelism` if set, else the parent's partitions.
    fn default_partitions(&self) -> usize {
        if self
            .context()
            .conf()
            .get("ember.default.parallelism")
            .is_some()
        {
            self.context().default_parallelism()
        } else {
            self.num_partitions()
        }
    }

    /// A hash partitioner over `partitions` (default: [`Self::default_partitions`]). An explicit
    /// 0 is refused like `repartition(0)`: these operations return an `Rdd`, so the refusal
    /// comes when the shuffle runs, failing its tasks with `InvalidArgument` naming `op`.
    fn hash_partitioner(&self, partitions: Option<usize>, op: &str) -> Rc<dyn Partitioner<K>> {
        match partitions {
            Some(0) => Rc::new(CheckedPartitioner::<K>::zero_partitions(op)),
            p => Rc::new(HashPartitioner::new(
                p.unwrap_or_else(|| self.default_partitions()),
            )),
        }
    }

    /// Applies `f` to every value, keeping keys and partitioning.
    #[track_caller]
    pub fn map_values<U: Data>(&self, f: impl Fn(V) -> U + 'static) -> Rdd<(K, U)> {
        let f = Rc::new(f);
        self.map_partitions_impl("map_values", Location::caller(), true, move |_, it| {
            let f = Rc::clone(&f);
            Box::new(it.map(move |(k, v)| (k, f(v))))
        })
    }

    /// Maps every value to zero or more values, keeping keys and partitioning.
    #[track_caller]
    pub fn flat_map_values<U: Data, I>(&self, f: impl Fn(V) -> I + 'static) -> Rdd<(K, U)>
    where
        I: IntoIterator<Item = U> + 'static,
    {
        let f = Rc::new(f);
        self.map_partitions_impl("flat_map_values", Location::caller(), true, move |_, it| {
            let f = Rc::clone(&f);
            Box::new(it.flat_map(move |(k, v)| f(v).into_iter().map(move |u| (k.clone(), u))))
        })
    }

    /// The keys.
    #[track_caller]
    pub fn keys(&self) -> Rdd<K> {
        self.map_partitions_impl("keys", Location::caller(), false, |_, it| {
            Box::new(it.map(|(k, _)| k))
        })
    }

    /// The values.
    #[track_caller]
    pub fn values(&self) -> Rdd<V> {
        self.map_partitions_impl("values", Location::caller(), false, |_, it| {
            Box::new(it.map(|(_, v)| v))
        })
    }

    /// The generic per-key aggregation: values become combiners with `create`, are folded into
    /// combiners with `merge_value` (map side), and combiners merge with `merge_combiners`.
    /// Without a shuffle when the RDD is already partitioned by `partitions` hash partitions.
    #[track_caller]
    pub fn combine_by_key<C: Data>(
        &self,
        create: impl Fn(V) -> C + 'static,
        merge_value: impl Fn(C, V) -> C + 'static,
        merge_combiners: impl Fn(C, C) -> C + 'static,
        partitions: Option<usize>,
    ) -> Rdd<(K, C)> {
        let agg = Aggregator {
            create: Rc::new(create),
            merge_value: Rc::new(merge_value),
            merge_combiners: Rc::new(merge_combiners),
        };
        self.combine_impl(
            "combine_by_key",
            Location::caller(),
            agg,
            self.hash_partitioner(partitions, "combine_by_key"),
        )
    }

    fn combine_impl<C: Data>(
        &self,
        op: &str,
        site: &'static Location<'static>,
        agg: Aggregator<V, C>,
        partitioner: Rc<dyn Partitioner<K>>,
    ) -> Rdd<(K, C)> {
        if self.node.partitioner() == Some(partitioner.desc()) {
            // Keys are already where they belong: combine within each partition.
            return self.map_partitions_impl(op, site, true, move |_, it| {
                let mut map: FxHashMap<K, Option<C>> = FxHashMap::default();
                for (k, v) in it {
                    combine_into(&mut map, k, v, &*agg.create, &*agg.merge_value);
                }
                Box::new(combined(map))
            });
        }
        let dep = ShuffleDependency::new(
            op,
            Rc::clone(&self.node),
            partitioner,
            MapSide::Combine(agg),
        );
        Rdd::with_site(self.context(), op, site, Box::new(Shuffled::new(dep)))
    }

    /// Merges the values of each key with `f`, combining on the map side first.
    #[track_caller]
    pub fn reduce_by_key(&self, f: impl Fn(V, V) -> V + 'static) -> Rdd<(K, V)> {
        self.reduce_by_key_impl(f, None, Location::caller())
    }

    /// [`Rdd::reduce_by_key`] into `partitions` partitions.
    #[track_caller]
    pub fn reduce_by_key_with(
        &self,
        f: impl Fn(V, V) -> V + 'static,
        partitions: usize,
    ) -> Rdd<(K, V)> {
        self.reduce_by_key_impl(f, Some(partitions), Location::caller())
    }

    fn reduce_by_key_impl(
        &self,
        f: impl Fn(V, V) -> V + 'static,
        partitions: Option<usize>,
        site: &'static Location<'static>,
    ) -> Rdd<(K, V)> {
        let f: Rc<dyn Fn(V, V) -> V> = Rc::new(f);
        let agg = Aggregator {
            create: Rc::new(|v| v),
            merge_value: Rc::clone(&f),
            merge_combiners: f,
        };
        self.combine_impl(
            "reduce_by_key",
            site,
            agg,
            self.hash_partitioner(partitions, "reduce_by_key"),
        )
    }

    /// Folds the values of each key into `zero` with `f`.
    #[track_caller]
    pub fn fold_by_key(&self, zero: V, f: impl Fn(V, V) -> V + 'static) -> Rdd<(K, V)> {
        let f: Rc<dyn Fn(V, V) -> V> = Rc::new(f);
        let f0 = Rc::clone(&f);
        let agg = Aggregator {
            create: Rc::new(move |v| f0(zero.clone(), v)),
            merge_value: Rc::clone(&f),
            merge_combiners: f,
        };
        self.combine_impl(
            "fold_by_key",
            Location::caller(),
            agg,
            self.hash_partitioner(None, "by_key"),
        )
    }

    /// Aggregates the values of each key: `seq` folds a value into an accumulator that starts at
    /// `zero`, `comb` merges two accumulators.
    #[track_caller]
    pub fn aggregate_by_key<U: Data>(
        &self,
        zero: U,
        seq: impl Fn(U, V) -> U + 'static,
        comb: impl Fn(U, U) -> U + 'static,
    ) -> Rdd<(K, U)> {
        let seq: Rc<dyn Fn(U, V) -> U> = Rc::new(seq);
        let seq0 = Rc::clone(&seq);
        let agg = Aggregator {
            create: Rc::new(move |v| seq0(zero.clone(), v)),
            merge_value: seq,
            merge_combiners: Rc::new(comb),
        };
        self.combine_impl(
            "aggregate_by_key",
            Location::caller(),
            agg,
            self.hash_partitioner(None, "by_key"),
        )
    }

    /// All values of each key. Shuffles every record (no map-side combine, as in Spark): prefer
    /// `reduce_by_key` or `aggregate_by_key` when the values are folded afterwards anyway.
    #[track_caller]
    pub fn group_by_key(&self) -> Rdd<(K, Vec<V>)> {
        self.group_by_key_impl(None, Location::caller())
    }

    /// [`Rdd::group_by_key`] into `partitions` partitions.
    #[track_caller]
    pub fn group_by_key_with(&self, partitions: usize) -> Rdd<(K, Vec<V>)> {
        self.group_by_key_impl(Some(partitions), Location::caller())
    }

    fn group_by_key_impl(
        &self,
        partitions: Option<usize>,
        site: &'static Location<'static>,
    ) -> Rdd<(K, Vec<V>)> {
        let partitioned = self.partition_by_impl(
            self.hash_partitioner(partitions, "group_by_key"),
            "group_by_key",
            site,
        );
        partitioned.map_partitions_impl("group_by_key", site, true, |_, it| {
            let mut groups: FxHashMap<K, Vec<V>> = FxHashMap::default();
            for (k, v) in it {
                groups.entry(k).or_default().push(v);
            }
            Box::new(groups.into_iter())
        })
    }

    /// Redistributes the records by `partitioner` (no shuffle if already partitioned so). A
    /// `partition` outside `0..num_partitions()` fails the job with `InvalidArgument` naming the
    /// partitioner, the value it returned and its partition count.
    #[track_caller]
    pub fn partition_by<P: Partitioner<K> + 'static>(&self, partitioner: P) -> Rdd<(K, V)> {
        let checked = CheckedPartitioner::new(
            Rc::new(partitioner),
            std::any::type_name::<P>(),
            "partition_by",
        );
        self.partition_by_impl(Rc::new(checked), "partition_by", Location::caller())
    }

    fn partition_by_impl(
        &self,
        partitioner: Rc<dyn Partitioner<K>>,
        op: &str,
        site: &'static Location<'static>,
    ) -> Rdd<(K, V)> {
        if self.node.partitioner() == Some(partitioner.desc()) {
            return self.clone();
        }
        let dep = ShuffleDependency::new(
            op,
            Rc::clone(&self.node),
            partitioner,
            MapSide::Plain(|v| v),
        );
        Rdd::with_site(self.context(), op, site, Box::new(Shuffled::new(dep)))
    }

    /// For each key of either RDD, all its values in this one and all in `other`.
    #[track_caller]
    pub fn cogroup<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (Vec<V>, Vec<W>))> {
        self.cogroup_impl(other, "cogroup", Location::caller())
    }

    fn cogroup_impl<W: Data>(
        &self,
        other: &Rdd<(K, W)>,
        op: &str,
        site: &'static Location<'static>,
    ) -> Rdd<(K, (Vec<V>, Vec<W>))> {
        // Reuse a side's partitioner when it has one, as Spark's default partitioner does.
        let partitions = self.default_partitions().max(other.default_partitions());
        let partitioner: Rc<dyn Partitioner<K>> = Rc::new(HashPartitioner::new(partitions));
        let left = Side::new(op, Rc::clone(&self.node), Rc::clone(&partitioner));
        let right = Side::new(op, Rc::clone(&other.node), Rc::clone(&partitioner));
        Rdd::with_site(
            self.context(),
            op,
            site,
            Box::new(CoGrouped::new(left, right, partitioner)),
        )
    }

    /// Co-groups with `other`, turns each key's two value lists into the two sides of the output
    /// with `sides`, and emits their cross product: the shape of every join.
    fn cogroup_product<W: Data, A: Data, B: Data>(
        &self,
        other: &Rdd<(K, W)>,
        op: &str,
        site: &'static Location<'static>,
        sides: fn(Vec<V>, Vec<W>) -> (Vec<A>, Vec<B>),
    ) -> Rdd<(K, (A, B))> {
        self.cogroup_impl(other, op, site)
            .map_partitions_impl(op, site, true, move |_, it| {
                Box::new(it.flat_map(move |(k, (vs, ws))| {
                    let (lefts, rights) = sides(vs, ws);
                    let mut out = Vec::with_capacity(lefts.len() * rights.len());
                    for a in &lefts {
                        for b in &rights {
                            out.push((k.clone(), (a.clone(), b.clone())));
                        }
                    }
                    out
                }))
            })
    }

    /// Pairs of values for every key present in both RDDs.
    #[track_caller]
    pub fn join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (V, W))> {
        self.cogroup_product(other, "join", Location::caller(), |vs, ws| (vs, ws))
    }

    /// Every record of this RDD with the matching values of `other`, or `None`.
    #[track_caller]
    pub fn left_outer_join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (V, Option<W>))> {
        self.cogroup_product(other, "left_outer_join", Location::caller(), |vs, ws| {
            (vs, or_none(ws))
        })
    }

    /// Every record of `other` with the matching values of this RDD, or `None`.
    #[track_caller]
    pub fn right_outer_join<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, (Option<V>, W))> {
        self.cogroup_product(other, "right_outer_join", Location::caller(), |vs, ws| {
            (or_none(vs), ws)
        })
    }

    /// Every key of either RDD with its values from each side, `None` where a side lacks it.
    #[track_caller]
    pub fn full_outer_join<W: Data>(
        &self,
        other: &Rdd<(K, W)>,
    ) -> Rdd<(K, (Option<V>, Option<W>))> {
        self.cogroup_product(other, "full_outer_join", Location::caller(), |vs, ws| {
            (or_none(vs), or_none(ws))
        })
    }

    /// The records whose key does not appear in `other`.
    #[track_caller]
    pub fn subtract_by_key<W: Data>(&self, other: &Rdd<(K, W)>) -> Rdd<(K, V)> {
        let site = Location::caller();
        self.cogroup_impl(other, "subtract_by_key", site)
            .map_partitions_impl("subtract_by_key", site, true, |_, it| {
                Box::new(
                    it.filter(|(_, (_, ws))| ws.is_empty())
                        .flat_map(|(k, (vs, _))| vs.into_iter().map(move |v| (k.clone(), v))),
                )
            })
    }

    /// Sorts by key into `partitions` range partitions (default: as many as now), each sorted;
    /// runs a sampling job to choose the ranges, as Spark does. `Some(0)` is an
    /// `InvalidArgument` error, as for `repartition(0)`.
    #[track_caller]
    pub fn sort_by_key(&self, ascending: bool, partitions: Option<usize>) -> Result<Rdd<(K, V)>>
    where
        K: Ord,
    {
        self.sort_by_key_impl(ascending, partitions, Location::caller())
    }

    pub(crate) fn sort_by_key_impl(
        &self,
        ascending: bool,
        partitions: Option<usize>,
        site: &'static Location<'static>,
    ) -> Result<Rdd<(K, V)>>
    where
        K: Ord,
    {
        if let Some(n) = partitions {
            check_partitions("sort_by_key", n)?;
        }
        let partitions = partitions.unwrap_or_else(|| self.num_partitions()).max(1);
        let partitioner: Rc<dyn Partitioner<K>> = if partitions == 1 {
            Rc::new(RangePartitioner::<K>::from_bounds(Vec::new(), ascending))
        } else {
            Rc::new(self.sample_range_partitioner(partitions, ascending)?)
        };
        let shuffled = self.partition_by_impl(partitioner, "sort_by_key", site);
        Ok(
            shuffled.map_partitions_impl("sort_by_key", site, true, move |_, it| {
                let mut v: Vec<(K, V)> = it.collect();
                if ascending {
                    v.sort_by(|a, b| a.0.cmp(&b.0));
                } else {
                    v.sort_by(|a, b| b.0.cmp(&a.0));
                }
                Box::new(v.into_iter())
            }),
        )
    }

    /// Samples keys from every partition (a job) and picks range bounds from them.
    fn sample_range_partitioner(
        &self,
        partitions: usize,
        ascending: bool,
    ) -> Result<RangePartitioner<K>>
    where
        K: Ord,
    {
        // About 20 samples per output partition, over-sampled 3x as Spark does.
        let per_partition = (60 * partitions).div_ceil(self.num_partitions()).max(1);
        let sketches = self
            .keys()
            .run_partitions("sort_by_key sampling", move |tc, it| {
                reservoir(
                    it,
                    per_partition,
                    crate::shuffle::mix64(tc.partition as u64),
                )
            })?;
        let mut samples = Vec::new();
        for (count, sample) in sketches {
            if sample.is_empty() {
                continue;
            }
            let weight = count as f64 / sample.len() as f64;
            samples.extend(sample.into_iter().map(|k| (k, weight)));
        }
        Ok(RangePartitioner::from_samples(
            samples, partitions, ascending,
        ))
    }

    /// The number of records per key.
    pub fn count_by_key(&self) -> Result<FxHashMap<K, u64>> {
        let counts = self.map_values(|_| 1u64).reduce_by_key(|a, b| a + b);
        Ok(counts.collect()?.into_iter().collect())
    }

    /// All records as a map (a later value of a duplicate key wins).
    pub fn collect_as_map(&self) -> Result<FxHashMap<K, V>> {
        Ok(self.collect()?.into_iter().collect())
    }

    /// The values of `key`.
    pub fn lookup(&self, key: &K) -> Result<Vec<V>> {
        let key = key.clone();
        self.filter(move |(k, _)| *k == key).values().collect()
    }
}

/// The values as `Some`, or a single `None` when there are none (the outer side of a join).
fn or_none<T>(values: Vec<T>) -> Vec<Option<T>> {
    if values.is_empty() {
        vec![None]
    } else {
        values.into_iter().map(Some).collect()
    }
}

/// Reservoir sample of up to `size` items and the total count, with a deterministic seed.
fn reservoir<T>(it: impl Iterator<Item = T>, size: usize, seed: u64) -> (u64, Vec<T>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut sample = Vec::with_capacity(size);
    let mut count = 0u64;
    for x in it {
        count += 1;
        if sample.len() < size {
            sample.push(x);
        } else {
            let j = rng.gen_range(0..count);
            if (j as usize) < size {
                sample[j as usize] = x;
            }
        }
    }
    (count, sample)
}
