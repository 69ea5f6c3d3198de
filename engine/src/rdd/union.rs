//! Transformations that regroup partitions: union, coalesce, repartition and cartesian.

use std::panic::Location;
use std::rc::Rc;

use crate::context::{check_partitions, Context};
use crate::data::Data;
use crate::error::{EngineError, Result};
use crate::rdd::{BoxIter, Compute, Dependency, Rdd, RddBase, RddNode};
use crate::shuffle::{
    mix64, IdentityPartitioner, MapSide, Partitioner, ShuffleDependency, Shuffled,
};
use crate::task::TaskContext;

/// Partitions of several parents, one after another (Spark's `UnionRDD`).
struct Union<T: 'static> {
    parents: Vec<Rc<RddNode<T>>>,
}

impl<T: Data> Union<T> {
    fn locate(&self, mut split: usize) -> (usize, usize) {
        for (i, p) in self.parents.iter().enumerate() {
            let n = RddBase::num_partitions(&**p);
            if split < n {
                return (i, split);
            }
            split -= n;
        }
        unreachable!("partition index within the union's partition count")
    }
}

impl<T: Data> Compute<T> for Union<T> {
    fn num_partitions(&self) -> usize {
        self.parents
            .iter()
            .map(|p| RddBase::num_partitions(&**p))
            .sum()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        let mut out_start = 0;
        self.parents
            .iter()
            .map(|p| {
                let len = RddBase::num_partitions(&**p);
                let dep = Dependency::Range {
                    parent: Rc::clone(p) as Rc<dyn RddBase>,
                    in_start: 0,
                    out_start,
                    len,
                };
                out_start += len;
                dep
            })
            .collect()
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<T> {
        let (i, s) = self.locate(split);
        self.parents[i].iterator(s, tc)
    }
}

/// Fewer partitions, each reading a group of parent partitions that live on the same worker.
struct Coalesced<T: 'static> {
    parent: Rc<RddNode<T>>,
    groups: Rc<Vec<Vec<usize>>>,
}

impl<T: Data> Compute<T> for Coalesced<T> {
    fn num_partitions(&self) -> usize {
        self.groups.len()
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::Groups {
            parent: Rc::clone(&self.parent) as Rc<dyn RddBase>,
            groups: Rc::clone(&self.groups),
        }]
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<T> {
        let parent = Rc::clone(&self.parent);
        let tc = Rc::clone(tc);
        let group = self.groups[split].clone();
        Box::new(group.into_iter().flat_map(move |p| parent.iterator(p, &tc)))
    }
}

impl<T: Data> Rdd<T> {
    pub(crate) fn union_all(ctx: &Context, rdds: &[Rdd<T>]) -> Result<Rdd<T>> {
        if rdds.is_empty() {
            return Err(EngineError::InvalidArgument {
                operation: "union".into(),
                reason: "no RDDs given".into(),
            });
        }
        let parents = rdds.iter().map(|r| Rc::clone(&r.node)).collect();
        Ok(Rdd::with_site(
            ctx,
            "union",
            Location::caller(),
            Box::new(Union { parents }),
        ))
    }

    /// The elements of both RDDs (duplicates kept).
    #[track_caller]
    pub fn union(&self, other: &Rdd<T>) -> Rdd<T> {
        let parents = vec![Rc::clone(&self.node), Rc::clone(&other.node)];
        Rdd::with_site(
            self.context(),
            "union",
            Location::caller(),
            Box::new(Union { parents }),
        )
    }

    /// At most `partitions` partitions, without a shuffle when possible: parent partitions that
    /// live on the same worker are merged, in order. With fewer partitions than workers the data
    /// must move, so this falls back to [`Rdd::repartition`].
    #[track_caller]
    pub fn coalesce(&self, partitions: usize) -> Result<Rdd<T>> {
        check_partitions("coalesce", partitions)?;
        let n = self.num_partitions();
        if partitions >= n {
            return Ok(self.clone());
        }
        let peers = self.context().num_workers();
        if partitions < peers {
            return self.repartition_impl(partitions, "coalesce", Location::caller());
        }
        // Output partition j belongs to worker j % peers; it takes a contiguous share of that
        // worker's parent partitions.
        let mut by_worker: Vec<Vec<usize>> = vec![Vec::new(); peers];
        for p in 0..n {
            by_worker[self.node.task_worker(p) % peers].push(p);
        }
        let mut groups = vec![Vec::new(); partitions];
        for (w, parents) in by_worker.into_iter().enumerate() {
            let outs: Vec<usize> = (0..partitions).filter(|j| j % peers == w).collect();
            for (i, p) in parents.iter().enumerate() {
                groups[outs[i * outs.len() / parents.len()]].push(*p);
            }
        }
        let compute = Coalesced {
            parent: Rc::clone(&self.node),
            groups: Rc::new(groups),
        };
        Ok(Rdd::with_site(
            self.context(),
            "coalesce",
            Location::caller(),
            Box::new(compute),
        ))
    }

    /// Exactly `partitions` partitions of about equal size, by a shuffle that deals each
    /// partition's elements round-robin.
    #[track_caller]
    pub fn repartition(&self, partitions: usize) -> Result<Rdd<T>> {
        check_partitions("repartition", partitions)?;
        self.repartition_impl(partitions, "repartition", Location::caller())
    }

    fn repartition_impl(
        &self,
        partitions: usize,
        op: &str,
        site: &'static Location<'static>,
    ) -> Result<Rdd<T>> {
        let keyed = self.map_partitions_impl(op, site, false, move |split, it| {
            let start = (mix64(split as u64) % partitions as u64) as usize;
            Box::new(
                it.enumerate()
                    .map(move |(i, x)| ((start + i) % partitions, x)),
            )
        });
        let dep = ShuffleDependency::new(
            op,
            Rc::clone(&keyed.node),
            Rc::new(IdentityPartitioner(partitions)),
            MapSide::Plain(|v| v),
        );
        let shuffled: Rdd<(usize, T)> =
            Rdd::with_site(self.context(), op, site, Box::new(Shuffled::new(dep)));
        Ok(shuffled.map_partitions_impl(op, site, false, |_, it| Box::new(it.map(|(_, x)| x))))
    }

    /// Every pair `(a, b)` of an element of this RDD and one of `other`. Partition `i * m + j`
    /// pairs partition `i` with partition `j` of `other`; both sides are shuffled there, so the
    /// pairing works wherever the parents live.
    #[track_caller]
    pub fn cartesian<U: Data>(&self, other: &Rdd<U>) -> Rdd<(T, U)> {
        let site = Location::caller();
        let (n, m) = (self.num_partitions(), other.num_partitions());
        let left = self.map_partitions_impl("cartesian", site, false, move |i, it| {
            Box::new(it.flat_map(move |x| (0..m).map(move |j| (i * m + j, x.clone()))))
        });
        let right = other.map_partitions_impl("cartesian", site, false, move |j, it| {
            Box::new(it.flat_map(move |y| (0..n).map(move |i| (i * m + j, y.clone()))))
        });
        let partitioner: Rc<dyn Partitioner<usize>> = Rc::new(IdentityPartitioner((n * m).max(1)));
        let grouped = crate::shuffle::CoGrouped::new(
            crate::shuffle::Side::new("cartesian", Rc::clone(&left.node), Rc::clone(&partitioner)),
            crate::shuffle::Side::new("cartesian", Rc::clone(&right.node), Rc::clone(&partitioner)),
            partitioner,
        );
        let grouped: Rdd<(usize, (Vec<T>, Vec<U>))> =
            Rdd::with_site(self.context(), "cartesian", site, Box::new(grouped));
        grouped.map_partitions_impl("cartesian", site, false, |_, it| {
            Box::new(it.flat_map(|(_, (xs, ys))| {
                let mut out = Vec::with_capacity(xs.len() * ys.len());
                for x in &xs {
                    for y in &ys {
                        out.push((x.clone(), y.clone()));
                    }
                }
                out
            }))
        })
    }
}
