//! Point-to-point messages between the tasks of a barrier stage, beside the collectives: a
//! task sends bytes to one peer and reads what peers sent it, in arrival order, without the
//! lockstep a collective imposes. What asynchronous exchanges need (sparse updates sent to
//! every peer or relayed along a tree, with peers allowed to run a bounded number of steps
//! apart); the bytes are the caller's format.
//!
//! Messages are scoped to the stage attempt: a restarted stage never reads a message of an
//! earlier attempt. A peer that fails makes a waiting receiver fail with
//! [`EngineError::PeerFailed`], as in a collective. Bytes count in [`BarrierTask::comm_stats`].

use std::time::{Duration, Instant};

use crate::error::{EngineError, Result};

use super::collective::{check_abort, drop_stale, BarrierTask};
use super::mailbox::{Payload, SchedMsg};
use super::stage::PARK;

impl BarrierTask {
    /// Sends `bytes` to the task of rank `to` (another rank: a task does not message itself).
    /// Does not wait for the receiver.
    pub fn send_message(&self, to: usize, bytes: Vec<u8>) -> Result<()> {
        let started = Instant::now();
        let n = self.num_tasks();
        if to >= n || to == self.rank() {
            return Err(EngineError::InvalidArgument {
                operation: "send_message".into(),
                reason: format!(
                    "rank {} cannot message rank {to}: the stage has ranks 0..{n} and a task \
                     does not message itself",
                    self.rank()
                ),
            });
        }
        let sent = bytes.len() as u64;
        let msg = SchedMsg::Message {
            attempt: self.launch.attempt,
            from: self.launch.rank,
            data: Payload(bytes),
        };
        let worker = self.launch.workers[to] as usize;
        self.mailbox.borrow_mut().round.send_now(worker, msg);
        self.record(started, Duration::ZERO, sent, 0);
        Ok(())
    }

    /// The oldest message a peer sent this task that has not been read yet, as (sender rank,
    /// bytes); `None` when none has come. Never waits. Fails when a peer task failed.
    pub fn try_receive_message(&self) -> Result<Option<(usize, Vec<u8>)>> {
        let started = Instant::now();
        let got = {
            let mut mb = self.mailbox.borrow_mut();
            mb.pump(Duration::ZERO)?;
            self.take_message(&mut mb)?
        };
        if let Some((_, bytes)) = &got {
            self.record(started, Duration::ZERO, 0, bytes.len() as u64);
        }
        Ok(got)
    }

    /// Waits for the next message a peer sends this task (see
    /// [`BarrierTask::try_receive_message`]); the time waiting counts as waited in
    /// [`BarrierTask::comm_stats`].
    pub fn receive_message(&self) -> Result<(usize, Vec<u8>)> {
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let got = {
            let mut mb = self.mailbox.borrow_mut();
            loop {
                if let Some(got) = self.take_message(&mut mb)? {
                    break got;
                }
                let t = Instant::now();
                mb.pump(PARK)?;
                waited += t.elapsed();
            }
        };
        self.record(started, waited, 0, got.1.len() as u64);
        Ok(got)
    }

    fn take_message(&self, mb: &mut super::mailbox::Mailbox) -> Result<Option<(usize, Vec<u8>)>> {
        let attempt = self.launch.attempt;
        drop_stale(mb, attempt);
        let found = mb.take(|m| matches!(m, SchedMsg::Message { attempt: a, .. } if *a == attempt));
        if let Some(SchedMsg::Message { from, data, .. }) = found {
            return Ok(Some((from as usize, data.0)));
        }
        check_abort(mb, attempt)?;
        Ok(None)
    }
}
