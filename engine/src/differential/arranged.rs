//! [`Arranged`]: a pair RDD indexed by key once per worker, and the operators that use it
//! without shuffling or re-hashing it.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use differential_dataflow::input::InputSession;
use differential_dataflow::trace::TraceReader;
use timely::dataflow::operators::probe::Handle as ProbeHandle;
use timely::dataflow::operators::{Inspect, Probe};
use timely::progress::frontier::AntichainRef;

use super::capture::{agree, Capture};
use super::load::load_local;
use super::output::worker_local_rdd;
use super::view::View;
use super::{ArrangedIn, CollectionIn, DiffData, Trace, Version};
use crate::blocks::{MemoryReservation, SizeOf};
use crate::context::Context;
use crate::error::Result;
use crate::rdd::Rdd;

/// A pair RDD arranged by key: on every worker, a differential arrangement (an indexed trace)
/// of the records whose key that worker owns. Made by [`Rdd::arrange_by_key`]; cheap to clone
/// (clones share the arrangement). Every worker must call its methods at the same points of the
/// driver code, as with actions.
pub struct Arranged<K: DiffData, V: DiffData> {
    inner: Rc<Inner<K, V>>,
}

impl<K: DiffData, V: DiffData> Clone for Arranged<K, V> {
    fn clone(&self) -> Self {
        Arranged {
            inner: Rc::clone(&self.inner),
        }
    }
}

struct Inner<K: DiffData, V: DiffData> {
    ctx: Context,
    /// Numbers this arrangement's dataflows and outputs alike on every worker.
    id: usize,
    /// The RDD the arrangement was built from (what [`Arranged::rebuild`] arranges again).
    source: Rdd<(K, V)>,
    input: RefCell<InputSession<Version, (K, V), isize>>,
    trace: RefCell<Trace<K, V>>,
    probe: ProbeHandle<Version>,
    /// Updates this worker's part of the arrangement holds (before consolidation).
    updates: Rc<Cell<usize>>,
    /// Bytes per update: the mean over the records this worker loaded (records of one type
    /// differ in what they own, strings for one).
    update_bytes: Cell<u64>,
    /// Memory held against the worker's block-manager budget for the arrangement.
    reservation: RefCell<Option<MemoryReservation>>,
    /// The probes of live views derived from this arrangement: an update waits for them.
    views: RefCell<Vec<Weak<ProbeHandle<Version>>>>,
    /// Operators run against the arrangement so far (names their outputs).
    ops: Cell<usize>,
}

impl<K: DiffData + SizeOf, V: DiffData + SizeOf> Rdd<(K, V)> {
    /// Arranges this pair RDD by key (differential's `arrange_by_key`): a job computes the
    /// partitions, each record goes to the worker that owns its key, and each worker keeps its
    /// records in an indexed trace. Later joins, cogroups, lookups and subtractions against it
    /// move only the other side, and any number of them share it. Its memory is reserved against
    /// the worker's budget (`ember.memory.storage`); an arrangement larger than the budget is an
    /// error naming the key to raise.
    pub fn arrange_by_key(&self) -> Result<Arranged<K, V>> {
        let ctx = self.context().clone();
        let id = ctx.new_rdd_id();
        let records = load_local(self, "arrange_by_key")?;
        let update_bytes = mean_update_size(&records);
        let mut input = InputSession::new();
        let probe = ProbeHandle::new();
        let updates = Rc::new(Cell::new(0usize));
        let counter = Rc::clone(&updates);
        let trace = ctx
            .timely_worker()
            .dataflow_named(&format!("arranged-{id}"), |scope| {
                let arranged = input
                    .to_collection(scope)
                    .arrange_by_key_named("EmberArrangeByKey");
                arranged
                    .stream
                    .clone()
                    .inspect_core(move |event| {
                        if let Ok((_, spans)) = event {
                            for span in spans.iter() {
                                if let Some(batch) = &span.inner {
                                    counter.set(counter.get() + batch_len(batch));
                                }
                            }
                        }
                    })
                    .probe_with(&probe);
                arranged.trace
            });
        for record in records {
            input.insert(record);
        }
        input.advance_to(1);
        input.flush();
        let arranged = Arranged {
            inner: Rc::new(Inner {
                ctx: ctx.clone(),
                id,
                source: self.clone(),
                input: RefCell::new(input),
                trace: RefCell::new(trace),
                probe,
                updates,
                update_bytes: Cell::new(update_bytes),
                reservation: RefCell::new(None),
                views: RefCell::new(Vec::new()),
                ops: Cell::new(0),
            }),
        };
        arranged.catch_up("arrange_by_key")?;
        Ok(arranged)
    }
}

/// Bytes an arrangement spends on one update of `(k, v)`: the key and value with what they
/// own, and the time and difference beside them.
fn update_size<K: SizeOf, V: SizeOf>(k: &K, v: &V) -> u64 {
    (k.host_bytes() + v.host_bytes() + 2 * std::mem::size_of::<u64>()) as u64
}

/// The mean of [`update_size`] over `records` (0 for none), rounded up.
fn mean_update_size<K: SizeOf, V: SizeOf>(records: &[(K, V)]) -> u64 {
    if records.is_empty() {
        return 0;
    }
    let total: u64 = records.iter().map(|(k, v)| update_size(k, v)).sum();
    total.div_ceil(records.len() as u64)
}

/// How many updates a batch of an arrangement holds.
fn batch_len<B: differential_dataflow::trace::implementations::spine_fueled::SpineBatch>(
    batch: &Rc<B>,
) -> usize {
    batch.len()
}

impl<K: DiffData + SizeOf, V: DiffData + SizeOf> Arranged<K, V> {
    /// The arrangement's version: 0 once loaded, one more after each [`Arranged::update`].
    pub fn version(&self) -> Version {
        self.inner.input.borrow().time() - 1
    }

    /// The RDD this arrangement was built from.
    pub fn source(&self) -> &Rdd<(K, V)> {
        &self.inner.source
    }

    /// Bytes this worker's part of the arrangement is charged to the block manager for.
    pub fn reserved_bytes(&self) -> u64 {
        self.inner
            .reservation
            .borrow()
            .as_ref()
            .map_or(0, MemoryReservation::host_bytes)
    }

    /// Adds `additions` and removes `removals` (records that are in the arrangement), as one
    /// new version. Every view derived from the arrangement is brought up to date by
    /// differences before this returns.
    pub fn update(&self, additions: &Rdd<(K, V)>, removals: &Rdd<(K, V)>) -> Result<()> {
        let add = load_local(additions, "update")?;
        let remove = load_local(removals, "update")?;
        if self.inner.update_bytes.get() == 0 {
            self.inner.update_bytes.set(mean_update_size(&add));
        }
        {
            let mut input = self.inner.input.borrow_mut();
            for record in add {
                input.insert(record);
            }
            for record in remove {
                input.remove(record);
            }
            let next = input.time() + 1;
            input.advance_to(next);
            input.flush();
        }
        self.catch_up("update")?;
        let version = self.version();
        let live: Vec<Rc<ProbeHandle<Version>>> = {
            let mut views = self.inner.views.borrow_mut();
            views.retain(|w| w.strong_count() > 0);
            views.iter().filter_map(Weak::upgrade).collect()
        };
        for probe in live {
            self.inner
                .ctx
                .step_until("update", || !probe.less_equal(&version))?;
        }
        Ok(())
    }

    /// Arranges the source RDD again from its lineage, as a new arrangement at version 0: a
    /// fresh start after a part was lost (the updates applied since are not replayed).
    pub fn rebuild(&self) -> Result<Arranged<K, V>> {
        self.inner.source.arrange_by_key()
    }

    /// Steps until the arrangement holds the current version, lets the trace forget older
    /// versions, and charges its memory to the block manager.
    fn catch_up(&self, what: &str) -> Result<()> {
        let inner = &self.inner;
        let next = *inner.input.borrow().time();
        let probe = inner.probe.clone();
        inner.ctx.step_until(what, || !probe.less_than(&next))?;
        let version = next - 1;
        {
            let mut trace = inner.trace.borrow_mut();
            trace.set_logical_compaction(AntichainRef::new(&[version]));
            trace.set_physical_compaction(AntichainRef::new(&[version]));
        }
        let bytes = inner.updates.get() as u64 * inner.update_bytes.get();
        let reserved = self.reserved_bytes();
        // Reserve the new size before letting the old reservation go, so the arrangement is
        // never charged less than it holds. A worker whose part does not fit fails every worker.
        let grown = if bytes > reserved {
            let what = format!(
                "the arrangement of RDD {} (arrange_by_key)",
                inner.source.id()
            );
            inner.ctx.reserve_memory(&what, bytes, 0).map(Some)
        } else {
            Ok(None)
        };
        if let Some(grown) = agree(&inner.ctx, what, grown)? {
            *inner.reservation.borrow_mut() = Some(grown);
        }
        Ok(())
    }

    /// A name for this arrangement's next operator, the same on every worker.
    fn next_op(&self, what: &str) -> String {
        let n = self.inner.ops.get();
        self.inner.ops.set(n + 1);
        format!("arranged-{}-{what}-{n}", self.inner.id)
    }

    /// Builds a one-shot dataflow over the arrangement and `other`'s records (this worker's
    /// share of them), runs it to the current version, and returns what `logic`'s output holds
    /// on this worker. The other side is arranged by key, so it reaches the workers that own
    /// its keys; the arrangement itself is read in place.
    fn one_shot<D: DiffData, T: DiffData>(
        &self,
        what: &str,
        other: Vec<D>,
        logic: impl for<'s> FnOnce(ArrangedIn<'s, K, V>, CollectionIn<'s, D>) -> CollectionIn<'s, T>,
    ) -> Result<Vec<T>> {
        // A view that lives only until its contents are read.
        self.view_from(what, other, logic)?.contents()
    }

    /// Joins with `other` (Spark's `join`): `(k, (v, w))` for every pair of records with equal
    /// keys. Only `other` moves; the result has one partition per worker.
    pub fn join<W: DiffData>(&self, other: &Rdd<(K, W)>) -> Result<Rdd<(K, (V, W))>> {
        let records = load_local(other, "join")?;
        let local = self.one_shot("join", records, |arranged, other| {
            other
                .arrange_by_key_named("EmberJoinOther")
                .join_core(arranged, |k: &K, w: &W, v: &V| {
                    Some((k.clone(), (v.clone(), w.clone())))
                })
        })?;
        self.output("join", local)
    }

    /// Groups this arrangement's values and `other`'s by key (Spark's `cogroup`): one
    /// `(k, (vs, ws))` per key present on either side. Only `other` moves.
    #[allow(clippy::type_complexity)]
    pub fn cogroup<W: DiffData>(&self, other: &Rdd<(K, W)>) -> Result<Rdd<(K, (Vec<V>, Vec<W>))>> {
        let records = load_local(other, "cogroup")?;
        let both = self.one_shot("cogroup", records, |arranged, other| {
            let other = other
                .arrange_by_key_named("EmberCogroupOther")
                .as_collection(|k: &K, w: &W| (k.clone(), Err::<V, W>(w.clone())));
            arranged
                .as_collection(|k: &K, v: &V| (k.clone(), Ok::<V, W>(v.clone())))
                .concat(other)
        })?;
        // Both sides of a key are on the worker that owns it, so grouping here is complete.
        let mut groups: std::collections::BTreeMap<K, (Vec<V>, Vec<W>)> = Default::default();
        for (k, side) in both {
            let g = groups.entry(k).or_default();
            match side {
                Ok(v) => g.0.push(v),
                Err(w) => g.1.push(w),
            }
        }
        self.output("cogroup", groups.into_iter().collect())
    }

    /// The records whose key does not occur in `other` (Spark's `subtractByKey`). Only
    /// `other`'s keys move.
    pub fn subtract_by_key<W: DiffData>(&self, other: &Rdd<(K, W)>) -> Result<Rdd<(K, V)>> {
        let keys = load_local(&other.map(|(k, _)| (k, ())), "subtract_by_key")?;
        let local = self.one_shot("subtract_by_key", keys, |arranged, keys| {
            let matched = keys
                .distinct()
                .map(|(k, ())| (k, ()))
                .arrange_by_key_named("EmberSubtractKeys")
                .join_core(arranged.clone(), |k: &K, _: &(), v: &V| {
                    Some((k.clone(), v.clone()))
                });
            arranged
                .as_collection(|k: &K, v: &V| (k.clone(), v.clone()))
                .concat(matched.negate())
        })?;
        self.output("subtract_by_key", local)
    }

    /// The values of `key` (Spark's `lookup`), on every worker. Reads only the worker that owns
    /// the key's part of the arrangement.
    pub fn lookup(&self, key: &K) -> Result<Vec<V>> {
        let mine = if self.inner.ctx.worker_index() == 0 {
            vec![(key.clone(), ())]
        } else {
            Vec::new()
        };
        // Every worker returns the same answer, as an action does.
        self.view_from("lookup", mine, |arranged, keys| {
            keys.arrange_by_key_named("EmberLookupKey")
                .join_core(arranged, |_: &K, _: &(), v: &V| Some(v.clone()))
        })?
        .collect()
    }

    /// A live view derived from the arrangement: `logic` gets the arrangement imported into a
    /// new dataflow (read in place, not re-hashed) and returns a collection, which the view
    /// keeps up to date as the arrangement is [updated](Arranged::update).
    pub fn view<T: DiffData>(
        &self,
        name: &str,
        logic: impl for<'s> FnOnce(ArrangedIn<'s, K, V>) -> CollectionIn<'s, T>,
    ) -> Result<View<T>> {
        self.view_with(name, &[] as &[()], move |arranged, _| logic(arranged))
    }

    /// As [`Arranged::view`], with a second, fixed input: `extra` (this worker's share; every
    /// record must be given by exactly one worker, e.g. all of them by worker 0).
    pub fn view_with<D: DiffData, T: DiffData>(
        &self,
        name: &str,
        extra: &[D],
        logic: impl for<'s> FnOnce(ArrangedIn<'s, K, V>, CollectionIn<'s, D>) -> CollectionIn<'s, T>,
    ) -> Result<View<T>> {
        self.view_from(name, extra.iter().cloned(), logic)
    }

    /// [`Arranged::view_with`] taking its extra records by value.
    fn view_from<D: DiffData, T: DiffData>(
        &self,
        name: &str,
        extra: impl IntoIterator<Item = D>,
        logic: impl for<'s> FnOnce(ArrangedIn<'s, K, V>, CollectionIn<'s, D>) -> CollectionIn<'s, T>,
    ) -> Result<View<T>> {
        let name = self.next_op(name);
        let version = self.version();
        let mut input = InputSession::new();
        let mut trace = self.inner.trace.borrow().clone();
        let (capture, button) = self
            .inner
            .ctx
            .timely_worker()
            .dataflow_named(&name, |scope| {
                let (arranged, button) = trace.import_core(scope, "EmberArranged");
                let extra = input.to_collection(scope);
                (Capture::attach(logic(arranged, extra)), button)
            });
        for record in extra {
            input.insert(record);
        }
        // A closed input holds nothing back: the view follows the arrangement's versions alone.
        drop(input);
        let view = View::new(self.inner.ctx.clone(), name, capture, button);
        self.inner
            .views
            .borrow_mut()
            .push(Rc::downgrade(view.probe()));
        view.wait(version)?;
        Ok(view)
    }

    /// The RDD of this worker's `local` records and every other worker's.
    fn output<T: DiffData>(&self, what: &str, local: Vec<T>) -> Result<Rdd<T>> {
        let key = format!("{}-{what}", self.next_op("output"));
        worker_local_rdd(&self.inner.ctx, &key, what, local)
    }
}
