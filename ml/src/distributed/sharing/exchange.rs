//! The exchange of encoded updates between the tasks of a training stage, over the engine's
//! point-to-point messages ([`BarrierTask::send_message`]).
//!
//! - Topology: up to `relay_above` workers every task sends its message to every other; above
//!   that the tasks form a tree (rank r's children are `fanout·r + 1 ..= fanout·r + fanout`,
//!   DL4J's mesh mode) and each task forwards what it receives to its other tree neighbours, so
//!   a task sends to at most `fanout + 1` peers however many there are.
//! - Every message carries its (worker, step): one seen before is dropped and counted, so no
//!   update is applied twice (messages of a failed stage attempt never arrive: the engine
//!   scopes them to the attempt).
//! - Messages wait in `pending` until applied. A step is complete once every worker's message
//!   of it has come; synchronous training applies complete steps only, in step then rank
//!   order, so every replica adds the same numbers in the same order and stays bit-identical.
//!   Bounded staleness applies whatever has come, in (step, rank) order.
//! - Workers whose data ran out keep sending empty (inactive) messages; the first complete step
//!   in which no worker trained ends the epoch on every worker.

use std::collections::{BTreeMap, HashSet};

use ember_engine::BarrierTask;

use super::encoding::{decode_add, read_header, Header};
use super::error::SharingError;
use crate::error::Result;

/// What applying pending updates did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Applied {
    /// Updates of other workers applied.
    pub others: u64,
    /// Largest staleness among the updates applied.
    pub staleness_max: u64,
}

/// One task's side of the exchange, for one epoch.
pub(crate) struct Exchange<'t> {
    task: &'t BarrierTask,
    n: usize,
    me: usize,
    neighbours: Vec<usize>,
    relay: bool,
    len: usize,
    /// Steps before this one carry no messages (the epoch's earlier steps, dense warm-up).
    first: u64,
    pending: BTreeMap<(u64, u32), Vec<u8>>,
    /// Per step not yet complete: origins seen, and whether any of them trained.
    seen: BTreeMap<u64, (usize, bool)>,
    seen_ids: HashSet<(u32, u64)>,
    /// Every step below this is complete.
    complete_below: u64,
    /// The first complete step in which no worker trained.
    pub terminated: Option<u64>,
    /// Messages dropped as seen before.
    pub duplicates: u64,
    /// Active updates applied, by origin rank.
    pub applied_from: Vec<u64>,
    /// Updates applied later than a synchronous run would have.
    pub late: u64,
    /// Largest staleness seen.
    pub staleness_max: u64,
}

impl<'t> Exchange<'t> {
    /// The exchange of `task` for vectors of `len` values, from step `first`.
    pub(crate) fn new(
        task: &'t BarrierTask,
        len: usize,
        first: u64,
        relay_above: usize,
        fanout: usize,
    ) -> Self {
        let (n, me) = (task.num_tasks(), task.rank());
        let relay = n > relay_above.max(1);
        let neighbours = if relay {
            tree_neighbours(me, n, fanout.max(2))
        } else {
            (0..n).filter(|&r| r != me).collect()
        };
        Exchange {
            task,
            n,
            me,
            neighbours,
            relay,
            len,
            first,
            pending: BTreeMap::new(),
            seen: BTreeMap::new(),
            seen_ids: HashSet::new(),
            complete_below: first,
            terminated: None,
            duplicates: 0,
            applied_from: vec![0; n],
            late: 0,
            staleness_max: 0,
        }
    }

    /// Sends this task's own message of a step to its neighbours and queues it for applying.
    pub(crate) fn post_own(&mut self, bytes: Vec<u8>, header: &Header) -> Result<()> {
        for &nb in &self.neighbours {
            self.task.send_message(nb, bytes.clone())?;
        }
        self.admit(self.me, bytes, header)
    }

    /// Takes in every message that has come, without waiting.
    pub(crate) fn poll(&mut self) -> Result<()> {
        while let Some((via, bytes)) = self.task.try_receive_message()? {
            self.accept(via, bytes)?;
        }
        Ok(())
    }

    /// Waits until every step up to `step` is complete (at once when `step` is before the
    /// exchange's first step) or the epoch has ended.
    pub(crate) fn wait_through(&mut self, step: i64) -> Result<()> {
        while self.terminated.is_none() && step >= self.complete_below as i64 {
            let (via, bytes) = self.task.receive_message()?;
            self.accept(via, bytes)?;
        }
        Ok(())
    }

    /// Applies pending updates to `params` before step `now` is computed: with `sync` the
    /// complete steps only, step by step (calling `step_done` after each), otherwise everything
    /// that has come. Each is applied once, in (step, rank) order.
    pub(crate) fn apply(
        &mut self,
        params: &mut [f32],
        sync: bool,
        now: u64,
        mut step_done: impl FnMut(u64, &[f32]),
    ) -> Result<Applied> {
        let mut out = Applied::default();
        let limit = if sync { self.complete_below } else { u64::MAX };
        let mut current: Option<u64> = None;
        while let Some(entry) = self.pending.first_entry() {
            let (step, origin) = *entry.key();
            if step >= limit {
                break;
            }
            if current.is_some_and(|c| c != step) {
                step_done(current.expect("set"), params);
            }
            current = Some(step);
            let bytes = entry.remove();
            let h = decode_add(&bytes, self.len, params)?;
            if h.active {
                self.applied_from[origin as usize] += 1;
            }
            if origin as usize != self.me {
                out.others += 1;
            }
            let staleness = now.saturating_sub(1).saturating_sub(step);
            if staleness > 0 {
                self.late += 1;
            }
            out.staleness_max = out.staleness_max.max(staleness);
        }
        if let Some(c) = current {
            step_done(c, params);
        }
        self.staleness_max = self.staleness_max.max(out.staleness_max);
        Ok(out)
    }

    /// A message from rank `via`: checked, forwarded along the tree, queued.
    fn accept(&mut self, via: usize, bytes: Vec<u8>) -> Result<()> {
        let h = read_header(&bytes).map_err(|e| routed(via, e))?;
        if h.worker as usize >= self.n {
            return Err(SharingError::Routing {
                from: h.worker,
                via,
                reason: format!("the stage has ranks 0..{}", self.n),
            }
            .into());
        }
        if h.step < self.first {
            return Err(SharingError::Routing {
                from: h.worker,
                via,
                reason: format!(
                    "an update of step {} but this epoch exchanges from step {}",
                    h.step, self.first
                ),
            }
            .into());
        }
        if h.worker as usize == self.me {
            return Err(SharingError::Routing {
                from: h.worker,
                via,
                reason: "a task's own update came back to it".into(),
            }
            .into());
        }
        if self.relay && !self.is_duplicate(&h) {
            for &nb in self.neighbours.iter().filter(|&&nb| nb != via) {
                self.task.send_message(nb, bytes.clone())?;
            }
        }
        self.admit(h.worker as usize, bytes, &h)
    }

    fn is_duplicate(&self, h: &Header) -> bool {
        h.step < self.complete_below || self.seen_ids.contains(&(h.worker, h.step))
    }

    fn admit(&mut self, origin: usize, bytes: Vec<u8>, h: &Header) -> Result<()> {
        if self.is_duplicate(h) {
            self.duplicates += 1;
            return Ok(());
        }
        self.seen_ids.insert((h.worker, h.step));
        let s = self.seen.entry(h.step).or_insert((0, false));
        s.0 += 1;
        s.1 |= h.active;
        self.pending.insert((h.step, origin as u32), bytes);
        while let Some(&(count, active)) = self.seen.get(&self.complete_below) {
            if count < self.n {
                break;
            }
            if !active && self.terminated.is_none() {
                self.terminated = Some(self.complete_below);
            }
            self.seen.remove(&self.complete_below);
            let done = self.complete_below;
            self.seen_ids.retain(|&(_, step)| step > done);
            self.complete_below += 1;
        }
        Ok(())
    }
}

fn routed(via: usize, e: SharingError) -> crate::MlError {
    match e {
        SharingError::Message { reason } => SharingError::Message {
            reason: format!("from rank {via}: {reason}"),
        }
        .into(),
        other => other.into(),
    }
}

/// Rank `me`'s neighbours in a tree of `n` ranks with `fanout` children a node.
pub(crate) fn tree_neighbours(me: usize, n: usize, fanout: usize) -> Vec<usize> {
    let mut out = Vec::new();
    if me > 0 {
        out.push((me - 1) / fanout);
    }
    out.extend((fanout * me + 1..=fanout * me + fanout).filter(|&c| c < n));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_connects_every_rank_once() {
        for n in [1, 2, 9, 10, 73, 100] {
            let mut edges = 0;
            for me in 0..n {
                let nb = tree_neighbours(me, n, 8);
                assert!(nb.len() <= 9);
                for &o in &nb {
                    assert!(tree_neighbours(o, n, 8).contains(&me), "symmetric");
                }
                edges += nb.len();
            }
            assert_eq!(edges, 2 * (n - 1), "a tree on {n} ranks");
        }
    }
}
