//! The bounds every RDD element satisfies.

use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value that can live in an RDD: cloned into tasks, shared between the worker threads of a
/// process (cached blocks, broadcasts), and serialized when it crosses processes or goes to disk.
///
/// Implemented for every type with these bounds; derive `Serialize`/`Deserialize` on your structs.
pub trait Data: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}
impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Data for T {}

/// A value usable as a key of a pair RDD: hashed by the hash partitioner and compared for equality.
pub trait Key: Data + Eq + Hash {}
impl<T: Data + Eq + Hash> Key for T {}
