//! Arranged RDDs, fixpoint jobs and incremental updates on differential dataflow.
//!
//! A plain join re-shuffles and re-hashes both sides every time it runs; a fixpoint job written
//! with RDDs (PageRank, connected components) is one job per iteration with a lineage that grows
//! each time. Differential dataflow has the tools for both, and this module brings them to RDDs:
//!
//! - [`Arranged`] (made by [`Rdd::arrange_by_key`](crate::rdd::Rdd::arrange_by_key)): a pair
//!   RDD indexed by key once per worker, as a differential arrangement (an indexed trace). Later
//!   [`join`](Arranged::join), [`cogroup`](Arranged::cogroup), [`lookup`](Arranged::lookup) and
//!   [`subtract_by_key`](Arranged::subtract_by_key) against it move only the other side (to the
//!   worker that owns each key) and neither shuffle nor re-hash the arranged side; any number of
//!   jobs share it. Its memory is reserved against the worker's block-manager budget
//!   (`ember.memory.storage`) like a cached RDD's.
//! - [`View`] (made by [`Arranged::view`], [`Arranged::iterate`] and the [`graph`] algorithms):
//!   a collection derived from an arrangement by one live differential dataflow, fixpoint loops
//!   included (one dataflow until no differences remain, or a step limit, instead of one job per
//!   iteration). [`View::rdd`] turns its current contents into an RDD.
//! - Incremental updates: [`Arranged::update`] adds and removes records; every view derived from
//!   the arrangement is brought up to date by differences, and its answer equals a full
//!   recomputation.
//!
//! # How it runs
//!
//! Every worker runs the driver code, so every worker builds the same differential dataflows in
//! the same order, beside the engine's exchange rounds on the same timely worker. An RDD enters
//! a dataflow through [`load`]: a job computes its partitions where the scheduler puts them, each
//! worker keeps the partitions it computed (exactly once, however tasks were retried), and
//! differential's exchange sends each record to the worker owning its key. A view's output stays
//! on the worker that produced it: [`View::rdd`] and the one-shot operators return RDDs with one
//! partition per worker, each preferring its worker (any worker of the same process can read it).
//!
//! The outer timestamp is the arrangement's version: loading is version 0 and each
//! [`Arranged::update`] advances it by one.
//!
//! What the lineage can and cannot do here: an arrangement keeps the RDD it was built from, and
//! [`Arranged::rebuild`] arranges it again from that lineage (a worker whose part was lost gets
//! it back from the source's partitions). The RDDs the operators and views return are snapshots
//! held in memory by the workers that computed them (charged to nobody's budget but kept as long
//! as the RDD is), with no lineage beyond them: a task of theirs placed in another process than
//! its partition's worker fails with an error that says so.

mod arranged;
mod capture;
pub mod graph;
mod iterate;
mod load;
mod output;
mod view;

pub use arranged::Arranged;
pub use differential_dataflow;
pub use iterate::{ArrangedLoop, CollectionLoop, LoopTime};
pub use view::View;

use std::fmt::Debug;
use std::hash::Hash;

use crate::data::Data;

/// The outer timestamp of Ember's differential dataflows: the arrangement's version.
pub type Version = u64;

/// The trace of an arrangement by key: differential's default value spine.
pub type Spine<K, V> =
    differential_dataflow::trace::implementations::ValSpine<K, V, Version, isize>;

/// The shared handle to an arrangement's trace.
pub type Trace<K, V> = differential_dataflow::operators::arrange::TraceAgent<Spine<K, V>>;

/// An arrangement imported into a dataflow's scope (what [`Arranged::view`]'s logic receives).
pub type ArrangedIn<'scope, K, V> =
    differential_dataflow::operators::arrange::Arranged<'scope, Trace<K, V>>;

/// A collection in a dataflow of Ember's timestamps (what [`Arranged::view`]'s logic returns).
pub type CollectionIn<'scope, D> = differential_dataflow::VecCollection<'scope, Version, D, isize>;

/// Records a differential dataflow can hold: RDD data that is also ordered and printable
/// (differential sorts and consolidates records).
pub trait DiffData: Data + Ord + Hash + Debug {}
impl<T: Data + Ord + Hash + Debug> DiffData for T {}
