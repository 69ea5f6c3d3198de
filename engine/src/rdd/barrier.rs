//! Barrier RDDs (Spark's barrier execution mode): `rdd.barrier().map_partitions(f)` runs `f`
//! in a barrier stage, where every task of the stage is launched at once, one per worker, so
//! the tasks can talk to each other through collectives ([`BarrierTask`]). A failed task
//! restarts every task of the stage, up to `ember.task.maxFailures` times. Refused before they
//! start, as in Spark: a stage with more partitions than the application has workers, an action
//! that computes only some of its partitions (`first`, `take`, `zip_with_index`: repartition
//! after the barrier map first), and a union or coalesce between the barrier RDD and the end of
//! its stage.
//!
//! ```
//! use ember_engine::prelude::*;
//! use ember_engine::ReduceOp;
//!
//! let conf = Conf::new().with("ember.master", "local[2]").unwrap();
//! let sums = ember_engine::run(conf, |ctx| {
//!     ctx.parallelize(vec![1.0f32, 2.0, 3.0, 4.0], 2)?
//!         .barrier()
//!         .map_partitions(|task, values| {
//!             let mut total = [values.sum::<f32>()];
//!             task.all_reduce(&mut total, ReduceOp::Sum)?;
//!             Ok(std::iter::once(total[0]))
//!         })
//!         .collect()
//! })
//! .unwrap()
//! .unwrap();
//! assert_eq!(sums, vec![10.0, 10.0]);
//! ```

use std::panic::Location;
use std::rc::Rc;

use crate::data::Data;
use crate::error::Result;
use crate::rdd::{BoxIter, Compute, Dependency, Rdd, RddBase, RddNode};
use crate::scheduler::BarrierTask;
use crate::task::TaskContext;

type BarrierFn<T, U> = dyn Fn(&BarrierTask, BoxIter<T>) -> Result<BoxIter<U>>;

/// An RDD whose next transformation runs in a barrier stage; made by [`Rdd::barrier`].
pub struct RddBarrier<T: Data> {
    rdd: Rdd<T>,
}

impl<T: Data> Rdd<T> {
    /// Marks this RDD's next `map_partitions` as a barrier stage (Spark's `RDD.barrier()`).
    pub fn barrier(&self) -> RddBarrier<T> {
        RddBarrier { rdd: self.clone() }
    }
}

impl<T: Data> RddBarrier<T> {
    /// Runs `f` on every partition in a barrier stage. `f` gets its task's [`BarrierTask`]
    /// (rank, collectives) and the partition's elements; an error it returns fails the task
    /// (and so restarts the stage).
    #[track_caller]
    pub fn map_partitions<U: Data, I>(
        &self,
        f: impl Fn(&BarrierTask, BoxIter<T>) -> Result<I> + 'static,
    ) -> Rdd<U>
    where
        I: IntoIterator<Item = U>,
        I::IntoIter: 'static,
    {
        let f: Rc<BarrierFn<T, U>> =
            Rc::new(move |task, it| f(task, it).map(|out| Box::new(out.into_iter()) as BoxIter<U>));
        let compute = BarrierMapPartitions {
            parent: Rc::clone(&self.rdd.node),
            f,
        };
        Rdd::with_site(
            self.rdd.context(),
            "barrier_map_partitions",
            Location::caller(),
            Box::new(compute),
        )
    }
}

struct BarrierMapPartitions<T: 'static, U> {
    parent: Rc<RddNode<T>>,
    f: Rc<BarrierFn<T, U>>,
}

impl<T: Data, U: Data> Compute<U> for BarrierMapPartitions<T, U> {
    fn num_partitions(&self) -> usize {
        RddBase::num_partitions(&*self.parent)
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::OneToOne(
            Rc::clone(&self.parent) as Rc<dyn RddBase>
        )]
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<U> {
        let outcome = BarrierTask::current(split)
            .and_then(|task| (self.f)(&task, self.parent.iterator(split, tc)));
        match outcome {
            Ok(it) => it,
            Err(e) => {
                tc.fail(e);
                Box::new(std::iter::empty())
            }
        }
    }
    fn is_barrier(&self) -> bool {
        true
    }
}
