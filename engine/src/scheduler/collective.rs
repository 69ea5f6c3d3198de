//! Collectives among the tasks of a barrier stage: all-reduce, broadcast, all-gather and a
//! barrier, sent through the stage's mailbox (so threads of one process and processes on other
//! hosts take part the same way).
//!
//! All-reduce is reduce-scatter then all-gather: the buffer is cut into one chunk per task; each
//! task sums chunk `rank` over every task (in rank order, so every task's result is
//! bit-identical whatever the timing) and sends the sum to every other task. Each task sends
//! and receives `2 (n-1)/n` of the buffer, as raw bytes.
//!
//! Messages are matched by stage attempt, collective number and step. A task numbers its
//! collectives from one counter, whichever barrier RDD of the stage calls them (a stage can
//! compute a barrier RDD over another), so the messages of two collectives never match each
//! other however the tasks' timings differ.
//!
//! A task that fails tells its peers, and a peer waiting in a collective then fails too with
//! [`EngineError::PeerFailed`] naming the failed rank: the stage restarts as a whole.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::data::Data;
use crate::error::{EngineError, Result};

use super::during_task::barrier_mailbox;
use super::mailbox::{BarrierLaunch, Mailbox, Payload, SchedMsg};
use super::stage::PARK;

/// How [`BarrierTask::all_reduce`] combines the buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Element-wise sum.
    Sum,
    /// Element-wise mean over the tasks (the sum divided by their number).
    Mean,
}

/// Counters of what a task's collectives did, cumulative since the task started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommStats {
    /// Bytes of buffers sent to peers.
    pub bytes_sent: u64,
    /// Bytes of buffers received from peers.
    pub bytes_received: u64,
    /// Time spent sending, receiving, summing and copying.
    pub busy: Duration,
    /// Time spent waiting for peers' messages.
    pub waited: Duration,
    /// Collectives run and point-to-point messages sent or received.
    pub calls: u64,
}

/// A task of a barrier stage, as its code sees it: its rank among the stage's tasks and the
/// collectives it can call with them (Spark's `BarrierTaskContext`). Every task of the stage
/// must call the same collectives in the same order.
pub struct BarrierTask {
    pub(super) mailbox: Rc<RefCell<Mailbox>>,
    pub(super) launch: BarrierLaunch,
    partition: usize,
    /// Numbers the task's collectives; shared by every `BarrierTask` of the task.
    seq: Rc<Cell<u32>>,
    stats: Cell<CommStats>,
    clock_offset_us: Cell<Option<i64>>,
}

/// Phases of the messages of one collective.
const SCATTER: u8 = 0;
const GATHER: u8 = 1;
const PING: u8 = 2;
const PONG: u8 = 3;

impl BarrierTask {
    /// The barrier task running on this thread; an error outside a barrier stage.
    pub(crate) fn current(partition: usize) -> Result<BarrierTask> {
        let (mailbox, launch, seq) =
            barrier_mailbox().ok_or_else(|| EngineError::InvalidArgument {
                operation: "barrier task".into(),
                reason: "collectives can only be called from a task of a barrier stage \
                     (rdd.barrier().map_partitions(..))"
                    .into(),
            })?;
        Ok(BarrierTask {
            mailbox,
            launch,
            partition,
            seq,
            stats: Cell::new(CommStats::default()),
            clock_offset_us: Cell::new(None),
        })
    }

    /// This task's rank: its index among the stage's tasks (partition order), from 0.
    pub fn rank(&self) -> usize {
        self.launch.rank as usize
    }

    /// Number of tasks in the stage.
    pub fn num_tasks(&self) -> usize {
        self.launch.workers.len()
    }

    /// The partition this task computes.
    pub fn partition(&self) -> usize {
        self.partition
    }

    /// The stage attempt (0 first; a failed task restarts every task with the next number).
    pub fn attempt(&self) -> usize {
        self.launch.attempt as usize
    }

    /// The worker running each rank.
    pub fn workers(&self) -> Vec<usize> {
        self.launch.workers.iter().map(|&w| w as usize).collect()
    }

    /// What this task's collectives have done so far.
    pub fn comm_stats(&self) -> CommStats {
        self.stats.get()
    }

    /// Waits until every task of the stage has reached this call.
    pub fn barrier(&self) -> Result<()> {
        self.all_gather(&()).map(|_| ())
    }

    /// Combines `buf` element-wise over every task (all must pass buffers of one length);
    /// afterwards every task holds the same, bit-identical values.
    pub fn all_reduce(&self, buf: &mut [f32], op: ReduceOp) -> Result<()> {
        let started = Instant::now();
        let seq = self.next_seq();
        let n = self.num_tasks();
        let me = self.rank();
        let len = buf.len();
        let bounds = |j: usize| (j * len / n, (j + 1) * len / n);
        let mut waited = Duration::ZERO;
        let (mut sent, mut received) = (0u64, 0u64);
        // The length goes first, so a task with a different length fails instead of mixing
        // chunks of different layouts.
        if n > 1 {
            for j in (0..n).filter(|&j| j != me) {
                let (a, b) = bounds(j);
                let mut bytes = Vec::with_capacity(8 + 4 * (b - a));
                bytes.extend_from_slice(&(len as u64).to_le_bytes());
                bytes.extend_from_slice(bytemuck::cast_slice(&buf[a..b]));
                sent += bytes.len() as u64;
                self.send(j, seq, SCATTER, bytes);
            }
            let parts = self.receive_all(seq, SCATTER, &mut waited)?;
            let (a, b) = bounds(me);
            let mut acc = vec![0f32; b - a];
            for (r, part) in parts.iter().enumerate() {
                let chunk: &[u8] = match part {
                    None => bytemuck::cast_slice(&buf[a..b]),
                    Some(p) => {
                        received += p.len() as u64;
                        self.check_len(r, p, len, b - a)?
                    }
                };
                if r == 0 {
                    copy_from_bytes(&mut acc, chunk);
                } else {
                    add_from_bytes(&mut acc, chunk);
                }
            }
            buf[a..b].copy_from_slice(&acc);
            let bytes: Vec<u8> = bytemuck::cast_slice(&acc).to_vec();
            for j in (0..n).filter(|&j| j != me) {
                sent += bytes.len() as u64;
                self.send(j, seq, GATHER, bytes.clone());
            }
            let parts = self.receive_all(seq, GATHER, &mut waited)?;
            for (r, part) in parts.iter().enumerate() {
                if let Some(p) = part {
                    let (a, b) = bounds(r);
                    if p.len() != 4 * (b - a) {
                        return Err(self.mismatch(r, "all_reduce chunk of the wrong size"));
                    }
                    received += p.len() as u64;
                    copy_from_bytes(&mut buf[a..b], p);
                }
            }
        }
        if op == ReduceOp::Mean {
            let scale = 1.0 / n as f32;
            buf.iter_mut().for_each(|v| *v *= scale);
        }
        self.record(started, waited, sent, received);
        Ok(())
    }

    /// Makes every task's `buf` a copy of rank `root`'s (resized to its length).
    pub fn broadcast(&self, buf: &mut Vec<f32>, root: usize) -> Result<()> {
        let started = Instant::now();
        let seq = self.next_seq();
        let n = self.num_tasks();
        if root >= n {
            return Err(EngineError::InvalidArgument {
                operation: "broadcast".into(),
                reason: format!("root rank {root} but the stage has {n} tasks"),
            });
        }
        let mut waited = Duration::ZERO;
        let (mut sent, mut received) = (0u64, 0u64);
        if self.rank() == root {
            let bytes: Vec<u8> = bytemuck::cast_slice(buf.as_slice()).to_vec();
            for j in (0..n).filter(|&j| j != root) {
                sent += bytes.len() as u64;
                self.send(j, seq, SCATTER, bytes.clone());
            }
        } else {
            let p = self.receive_from(root, seq, SCATTER, &mut waited)?;
            if p.len() % 4 != 0 {
                return Err(self.mismatch(root, "broadcast of a partial f32 buffer"));
            }
            received += p.len() as u64;
            buf.resize(p.len() / 4, 0.0);
            copy_from_bytes(buf, &p);
        }
        self.record(started, waited, sent, received);
        Ok(())
    }

    /// Every task's `value`, in rank order (for small values: counts, losses, flags).
    pub fn all_gather<T: Data>(&self, value: &T) -> Result<Vec<T>> {
        let started = Instant::now();
        let seq = self.next_seq();
        let n = self.num_tasks();
        let me = self.rank();
        let mut waited = Duration::ZERO;
        let (mut sent, mut received) = (0u64, 0u64);
        let bytes = bincode::serialize(value).map_err(|e| {
            EngineError::Serialization(format!("all_gather value of rank {me}: {e}"))
        })?;
        for j in (0..n).filter(|&j| j != me) {
            sent += bytes.len() as u64;
            self.send(j, seq, GATHER, bytes.clone());
        }
        let parts = self.receive_all(seq, GATHER, &mut waited)?;
        let mut out = Vec::with_capacity(n);
        for (r, part) in parts.into_iter().enumerate() {
            match part {
                None => out.push(value.clone()),
                Some(p) => {
                    received += p.len() as u64;
                    let v = bincode::deserialize(&p).map_err(|e| {
                        EngineError::Serialization(format!("all_gather value from rank {r}: {e}"))
                    })?;
                    out.push(v);
                }
            }
        }
        self.record(started, waited, sent, received);
        Ok(out)
    }

    /// This task's wall clock minus rank 0's, in microseconds, measured once by a ping to rank
    /// 0 (half the round trip taken as the one-way delay). Lets the tasks of several processes
    /// put their events on one timeline; 0 on rank 0. Every task must call it (a collective).
    pub fn clock_offset_us(&self) -> Result<i64> {
        if let Some(o) = self.clock_offset_us.get() {
            return Ok(o);
        }
        let seq = self.next_seq();
        let mut waited = Duration::ZERO;
        let offset = if self.rank() == 0 {
            for _ in 1..self.num_tasks() {
                let (from, _) = self.receive_any(seq, PING, &mut waited)?;
                self.send(from, seq, PONG, unix_micros().to_le_bytes().to_vec());
            }
            0
        } else {
            let t1 = unix_micros();
            self.send(0, seq, PING, Vec::new());
            let p = self.receive_from(0, seq, PONG, &mut waited)?;
            let t2 = unix_micros();
            let t0 = i64::from_le_bytes(
                p.as_slice()
                    .try_into()
                    .map_err(|_| self.mismatch(0, "clock reply of the wrong size"))?,
            );
            (t1 + t2) / 2 - t0
        };
        self.clock_offset_us.set(Some(offset));
        Ok(offset)
    }

    /// Microseconds since the Unix epoch on rank 0's clock (see [`BarrierTask::clock_offset_us`]).
    pub fn aligned_now_us(&self) -> Result<i64> {
        Ok(unix_micros() - self.clock_offset_us()?)
    }

    fn next_seq(&self) -> u32 {
        let s = self.seq.get();
        self.seq.set(s + 1);
        s
    }

    pub(super) fn record(&self, started: Instant, waited: Duration, sent: u64, received: u64) {
        let mut s = self.stats.get();
        let total = started.elapsed();
        s.busy += total.saturating_sub(waited);
        s.waited += waited;
        s.bytes_sent += sent;
        s.bytes_received += received;
        s.calls += 1;
        self.stats.set(s);
    }

    fn mismatch(&self, rank: usize, what: &str) -> EngineError {
        EngineError::PeerFailed(format!(
            "collective mismatch between rank {} and rank {rank}: {what} (every task of a \
             barrier stage must call the same collectives with buffers of the same length)",
            self.rank()
        ))
    }

    /// The f32 bytes of a scatter message, after checking its announced buffer length.
    fn check_len<'a>(&self, r: usize, p: &'a [u8], len: usize, chunk: usize) -> Result<&'a [u8]> {
        let theirs = p
            .get(..8)
            .map(|h| u64::from_le_bytes(h.try_into().expect("8 bytes")) as usize);
        if theirs != Some(len) || p.len() != 8 + 4 * chunk {
            return Err(self.mismatch(
                r,
                &format!(
                    "all_reduce of {len} values here, {} there",
                    theirs.map_or("?".to_string(), |t| t.to_string())
                ),
            ));
        }
        Ok(&p[8..])
    }

    fn send(&self, rank: usize, seq: u32, phase: u8, bytes: Vec<u8>) {
        let msg = SchedMsg::Collective {
            attempt: self.launch.attempt,
            seq,
            phase,
            from: self.launch.rank,
            data: Payload(bytes),
        };
        let to = self.launch.workers[rank] as usize;
        self.mailbox.borrow_mut().round.send_now(to, msg);
    }

    /// Waits for one message of (`seq`, `phase`) from every other rank: `None` at this rank.
    fn receive_all(
        &self,
        seq: u32,
        phase: u8,
        waited: &mut Duration,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let n = self.num_tasks();
        let mut out: Vec<Option<Vec<u8>>> = vec![None; n];
        for _ in 1..n {
            let (from, bytes) = self.receive_any(seq, phase, waited)?;
            if from == self.rank() || out[from].is_some() {
                // Never the case while collectives are numbered per task: an error, not a
                // rank's contribution silently missing.
                return Err(self.mismatch(from, "two messages for one step of a collective"));
            }
            out[from] = Some(bytes);
        }
        Ok(out)
    }

    fn receive_from(
        &self,
        rank: usize,
        seq: u32,
        phase: u8,
        waited: &mut Duration,
    ) -> Result<Vec<u8>> {
        self.receive(seq, phase, Some(rank as u32), waited)
            .map(|(_, b)| b)
    }

    fn receive_any(&self, seq: u32, phase: u8, waited: &mut Duration) -> Result<(usize, Vec<u8>)> {
        self.receive(seq, phase, None, waited)
    }

    /// Waits for a message of this attempt's collective `seq` and `phase` (from `from`, or from
    /// anyone), failing when a peer task reports its failure.
    fn receive(
        &self,
        seq: u32,
        phase: u8,
        from: Option<u32>,
        waited: &mut Duration,
    ) -> Result<(usize, Vec<u8>)> {
        let attempt = self.launch.attempt;
        let mut mb = self.mailbox.borrow_mut();
        loop {
            // Messages of earlier attempts are stale: drop them.
            drop_stale(&mut mb, attempt);
            let found = mb.take(|m| {
                matches!(m, SchedMsg::Collective { attempt: a, seq: s, phase: p, from: f, .. }
                    if *a == attempt && *s == seq && *p == phase && from.is_none_or(|w| w == *f))
            });
            if let Some(SchedMsg::Collective { from, data, .. }) = found {
                return Ok((from as usize, data.0));
            }
            check_abort(&mut mb, attempt)?;
            let t = Instant::now();
            mb.pump(PARK)?;
            *waited += t.elapsed();
        }
    }
}

/// Drops the messages of earlier stage attempts: they are stale.
pub(super) fn drop_stale(mb: &mut Mailbox, attempt: u32) {
    mb.inbox.retain(|m| match m {
        SchedMsg::Collective { attempt: a, .. }
        | SchedMsg::BarrierAbort { attempt: a, .. }
        | SchedMsg::Message { attempt: a, .. } => *a >= attempt,
        _ => true,
    });
}

/// `PeerFailed` when a peer task of this attempt has reported its failure.
pub(super) fn check_abort(mb: &mut Mailbox, attempt: u32) -> Result<()> {
    let abort =
        mb.take(|m| matches!(m, SchedMsg::BarrierAbort { attempt: a, .. } if *a == attempt));
    if let Some(SchedMsg::BarrierAbort { rank, reason, .. }) = abort {
        return Err(EngineError::PeerFailed(format!(
            "barrier task of rank {rank} failed: {reason}"
        )));
    }
    Ok(())
}

fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `dst[i] = f32 at bytes[4i..]` (the bytes need not be aligned).
fn copy_from_bytes(dst: &mut [f32], bytes: &[u8]) {
    for (d, b) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
        *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

/// `dst[i] += f32 at bytes[4i..]`.
fn add_from_bytes(dst: &mut [f32], bytes: &[u8]) {
    for (d, b) in dst.iter_mut().zip(bytes.chunks_exact(4)) {
        *d += f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}
