//! Accumulators: values that tasks add to and the driver reads.
//!
//! Updates made inside a task are buffered in the task and applied only when that attempt
//! succeeds, then sent to every worker with the task's result; so an update inside an action is
//! applied exactly once however often the task was retried, and every worker reads the same value.
//! Updates made in driver code (outside tasks) apply directly: every worker runs that code once.

use std::any::Any;
use std::cell::RefCell;
use std::rc::{Rc, Weak};

use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::error::{EngineError, Result};
use crate::task::current_task;

/// A value that can be accumulated: `merge` must be associative and commutative.
pub trait AccumulatorValue: Data {
    /// Folds `other` into `self`.
    fn merge(&mut self, other: Self);
}

macro_rules! sum_accumulator {
    ($($t:ty),*) => {$(
        impl AccumulatorValue for $t {
            fn merge(&mut self, other: Self) { *self += other; }
        }
    )*};
}
sum_accumulator!(i32, i64, u32, u64, usize, f32, f64);

impl<T: Data> AccumulatorValue for Vec<T> {
    fn merge(&mut self, mut other: Self) {
        self.append(&mut other);
    }
}

/// One accumulator's buffered update from a successful task, encoded to travel between workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccUpdate {
    pub id: usize,
    pub bytes: Vec<u8>,
}

/// A typed update buffered inside a running task.
pub(crate) struct Pending {
    id: usize,
    value: Box<dyn Any>,
    encode: fn(&dyn Any) -> Vec<u8>,
}

impl Pending {
    pub(crate) fn encode(&self) -> AccUpdate {
        AccUpdate {
            id: self.id,
            bytes: (self.encode)(self.value.as_ref()),
        }
    }
}

/// What the context needs to apply an update it received: decode and merge.
pub(crate) trait AccSlot {
    fn merge_bytes(&self, bytes: &[u8]) -> Result<()>;
}

struct AccInner<T> {
    value: RefCell<T>,
}

impl<T: AccumulatorValue> AccSlot for AccInner<T> {
    fn merge_bytes(&self, bytes: &[u8]) -> Result<()> {
        let v: T =
            bincode::deserialize(bytes).map_err(|e| EngineError::Serialization(e.to_string()))?;
        self.value.borrow_mut().merge(v);
        Ok(())
    }
}

/// A shared variable that tasks add to (Spark's `AccumulatorV2`).
pub struct Accumulator<T: AccumulatorValue> {
    id: usize,
    inner: Rc<AccInner<T>>,
}

impl<T: AccumulatorValue> Clone for Accumulator<T> {
    fn clone(&self) -> Self {
        Accumulator {
            id: self.id,
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<T: AccumulatorValue> Accumulator<T> {
    pub(crate) fn new(id: usize, initial: T) -> (Accumulator<T>, Weak<dyn AccSlot>) {
        let inner = Rc::new(AccInner {
            value: RefCell::new(initial),
        });
        let weak: Weak<dyn AccSlot> = Rc::downgrade(&inner) as Weak<dyn AccSlot>;
        (Accumulator { id, inner }, weak)
    }

    /// Adds `v`: buffered in the running task, or applied at once in driver code.
    pub fn add(&self, v: T) {
        match current_task() {
            Some(task) => {
                let mut pending = task.acc_updates.borrow_mut();
                if let Some(p) = pending.iter_mut().find(|p| p.id == self.id) {
                    p.value
                        .downcast_mut::<T>()
                        .expect("accumulator id maps to one type")
                        .merge(v);
                } else {
                    let encode: fn(&dyn Any) -> Vec<u8> = |any| {
                        let v = any
                            .downcast_ref::<T>()
                            .expect("accumulator id maps to one type");
                        bincode::serialize(v).expect("accumulator values serialize")
                    };
                    pending.push(Pending {
                        id: self.id,
                        value: Box::new(v),
                        encode,
                    });
                }
            }
            None => self.inner.value.borrow_mut().merge(v),
        }
    }

    /// The current value: every update of every finished task on every worker.
    pub fn value(&self) -> T {
        self.inner.value.borrow().clone()
    }
}
