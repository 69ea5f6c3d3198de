//! Ember's RDD engine.

/// The names most programs need.
pub mod prelude {}
