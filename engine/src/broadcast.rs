//! Broadcast variables: one read-only value shared by every task, one copy per process.
//!
//! Worker 0 plays Spark's driver: its value is the one every worker gets, so a value computed
//! from non-deterministic driver code (a random seed, the clock) is still the same everywhere.

use std::ops::Deref;
use std::sync::Arc;

/// A read-only value available to every task; dereferences to the value.
pub struct Broadcast<T> {
    id: usize,
    value: Arc<T>,
}

impl<T> Clone for Broadcast<T> {
    fn clone(&self) -> Self {
        Broadcast {
            id: self.id,
            value: Arc::clone(&self.value),
        }
    }
}

impl<T> Broadcast<T> {
    pub(crate) fn new(id: usize, value: Arc<T>) -> Self {
        Broadcast { id, value }
    }

    /// This broadcast's id, the same on every worker.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The shared value.
    pub fn value(&self) -> &T {
        &self.value
    }
}

impl<T> Deref for Broadcast<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
