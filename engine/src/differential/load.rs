//! Loading an RDD into differential dataflows: a job computes the RDD's partitions wherever the
//! scheduler puts them, and every worker keeps the partitions it computed, each partition on
//! exactly one worker however its tasks were retried.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::data::Data;
use crate::error::{EngineError, Result};
use crate::rdd::{BoxIter, Rdd};

/// The elements of the partitions of `rdd` that this worker keeps (every worker calls it, at
/// the same point of the driver code; together they hold each element exactly once).
///
/// A task keeps its partition only when it finished without failing; a partition kept by two
/// workers (a task that succeeded but whose result was lost, then ran again elsewhere) is kept
/// by the lower one alone, decided by an exchange of what each worker holds.
pub(crate) fn load_local<T: Data>(rdd: &Rdd<T>, what: &str) -> Result<Vec<T>> {
    let held: Rc<RefCell<BTreeMap<usize, Vec<T>>>> = Rc::default();
    let sink = Rc::clone(&held);
    rdd.map_partitions_with_index(move |split, it| {
        let values: Vec<T> = it.collect();
        let failed = crate::task::current_task().is_some_and(|t| t.failed());
        if !failed {
            sink.borrow_mut().insert(split, values);
        }
        Box::new(std::iter::empty()) as BoxIter<()>
    })
    .count()?;
    let ctx = rdd.context();
    let me = ctx.worker_index();
    let mine: Vec<usize> = held.borrow().keys().copied().collect();
    let mut round = ctx.round::<(usize, Vec<usize>)>(&format!("{what}-load"));
    round.send_to_all((me, mine));
    let all = round.finish()?;
    let mut keeper: BTreeMap<usize, usize> = BTreeMap::new();
    for (worker, splits) in &all {
        for &s in splits {
            let k = keeper.entry(s).or_insert(*worker);
            *k = (*k).min(*worker);
        }
    }
    if let Some(missing) = (0..rdd.num_partitions()).find(|s| !keeper.contains_key(s)) {
        return Err(EngineError::InvalidArgument {
            operation: what.to_string(),
            reason: format!(
                "partition {missing} of RDD {} was computed but no worker kept it",
                rdd.id()
            ),
        });
    }
    let mut held = held.borrow_mut();
    let mut out = Vec::new();
    for (split, values) in std::mem::take(&mut *held) {
        if keeper.get(&split) == Some(&me) {
            out.extend(values);
        }
    }
    Ok(out)
}
