//! Ember: a Spark-style RDD engine on timely dataflow, with a distributed machine-learning layer.
//!
//! This front crate re-exports the three workspace crates so applications can write
//! `use ember::prelude::*;`:
//! - [`engine`]: contexts, RDDs, lineage, shuffles, actions, broadcast and accumulators;
//! - [`storage`]: object stores behind URLs and partitioned file formats;
//! - [`ml`]: tensors, networks, training and evaluation.

#![forbid(missing_docs)]

pub use ember_engine as engine;
pub use ember_ml as ml;
pub use ember_storage as storage;

/// The names most programs need.
pub mod prelude {
    pub use ember_engine::prelude::*;
}
