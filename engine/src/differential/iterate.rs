//! Fixpoint jobs as one differential dataflow: [`Arranged::iterate`].

use differential_dataflow::operators::iterate::Iterate;
use differential_dataflow::trace::wrappers::enter::TraceEnter;
use differential_dataflow::AsCollection;
use timely::dataflow::operators::vec::Filter;
use timely::order::Product;

use super::load::load_local;
use super::{Arranged, DiffData, Trace, Version, View};
use crate::blocks::SizeOf;
use crate::error::Result;
use crate::rdd::Rdd;

/// The timestamp inside a loop: the arrangement's version and the iteration.
pub type LoopTime = Product<Version, u64>;

/// The arrangement as a loop body sees it.
pub type ArrangedLoop<'scope, K, V> =
    differential_dataflow::operators::arrange::Arranged<'scope, TraceEnter<Trace<K, V>, LoopTime>>;

/// A collection inside a loop.
pub type CollectionLoop<'scope, D> =
    differential_dataflow::VecCollection<'scope, LoopTime, D, isize>;

impl<K: DiffData + SizeOf, V: DiffData + SizeOf> Arranged<K, V> {
    /// Iterates `step` from `initial` inside one differential dataflow, until an iteration
    /// changes nothing or after `max_steps` iterations: the view holds `step` applied that many
    /// times (`x1 = step(arrangement, x0)`, ...). One dataflow runs the whole loop, where an
    /// RDD program runs one job per iteration; after an [`update`](Arranged::update) of the
    /// arrangement the loop's answer changes by differences.
    ///
    /// Write `step` as a function generic over the scope's lifetime
    /// (`fn step<'i>(edges: ArrangedLoop<'i, K, V>, x: CollectionLoop<'i, T>) -> CollectionLoop<'i, T>`):
    /// a closure with annotated argument types is not general enough for it.
    ///
    /// `step` must end in an operator that consolidates (`reduce`, `distinct`, `count`,
    /// `consolidate`), or a loop whose records cancel out may never see that nothing changed.
    pub fn iterate<T: DiffData>(
        &self,
        name: &str,
        initial: &Rdd<T>,
        max_steps: Option<u64>,
        step: impl for<'i> FnOnce(
            ArrangedLoop<'i, K, V>,
            CollectionLoop<'i, T>,
        ) -> CollectionLoop<'i, T>,
    ) -> Result<View<T>> {
        let initial = load_local(initial, name)?;
        self.view_with(name, &initial, move |arranged, initial| {
            initial.iterate(move |scope, x| {
                let next = step(arranged.enter(scope), x);
                limit(next, max_steps)
            })
        })
    }
}

/// `next` with the differences of iterations at or past `max_steps` dropped, so the loop's
/// variable stops changing there.
fn limit<D: DiffData>(
    next: CollectionLoop<'_, D>,
    max_steps: Option<u64>,
) -> CollectionLoop<'_, D> {
    match max_steps {
        Some(max) => next
            .inner
            .filter(move |(_, t, _): &(D, LoopTime, isize)| t.inner < max)
            .as_collection(),
        None => next,
    }
}
