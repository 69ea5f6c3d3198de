//! Very long lineages (thousands of chained narrow transformations) without deep recursion.
//!
//! A partition of a chain of `map`s is an iterator wrapping its parent's iterator, so building
//! it recursed once per step, and every element went through one nested `next` per step: ten
//! thousand steps overflowed a thread's stack. A node deeper than [`SEGMENT`] steps of plain
//! chain (no cache, no written checkpoint in between) is computed here instead: the chain is
//! walked down in a loop to its first node that is not plain, and built back up step by step,
//! the partition being collected into memory every [`SEGMENT`] steps so that no iterator nests
//! more than [`SEGMENT`] deep. Dropping a long chain of nodes is a loop too ([`drop_later`]).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::rdd::{BoxIter, RddBase};
use crate::task::TaskContext;

/// The most chained steps one iterator nests; deeper chains are collected at every multiple.
pub(crate) const SEGMENT: usize = 256;

/// A type-erased partition iterator: a `Box<BoxIter<T>>` for the node's element type `T`.
pub(crate) type AnyIter = Box<dyn Any>;

/// Partition `split` of `parent`, computed without recursing along its chain: nested at most
/// [`SEGMENT`] steps deep (the caller applies its own step to the result).
pub(crate) fn parent_iterator(
    parent: Rc<dyn RddBase>,
    split: usize,
    tc: &Rc<TaskContext>,
) -> AnyIter {
    let mut chain = Vec::new();
    let mut node = parent;
    while let Some(next) = node.chain_link() {
        chain.push(node);
        node = next;
    }
    let mut it = node.iterator_any(split, tc);
    for (steps, node) in chain.iter().rev().enumerate() {
        it = node.apply_any(split, it, tc);
        if (steps + 1) % SEGMENT == 0 {
            it = node.materialize_any(it);
        }
    }
    it
}

/// Collects an erased iterator of `T` into memory and returns an erased iterator over it.
pub(crate) fn materialize<T: 'static>(it: AnyIter) -> AnyIter {
    match it.downcast::<BoxIter<T>>() {
        Ok(it) => {
            let items: Vec<T> = it.collect();
            Box::new(Box::new(items.into_iter()) as BoxIter<T>)
        }
        Err(other) => other,
    }
}

/// Something to drop later.
pub(crate) trait Deferred {}
impl<T: ?Sized> Deferred for T {}

thread_local! {
    static LATER: RefCell<Vec<Box<dyn Deferred>>> = const { RefCell::new(Vec::new()) };
    static DRAINING: Cell<bool> = const { Cell::new(false) };
}

/// Drops `item` after the drop in progress on this thread returns, if there is one: dropping
/// a node drops its parent, which drops its parent..., so a chain is dropped in a loop here
/// instead of one nested drop per node.
pub(crate) fn drop_later(item: Box<dyn Deferred>) {
    let queued = LATER.try_with(|later| later.borrow_mut().push(item));
    if queued.is_err() || DRAINING.with(|d| d.replace(true)) {
        return;
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            DRAINING.with(|d| d.set(false));
        }
    }
    let _reset = Reset;
    while let Some(next) = LATER.with(|later| later.borrow_mut().pop()) {
        drop(next);
    }
}
