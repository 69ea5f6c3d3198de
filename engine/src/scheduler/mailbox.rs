//! A stage's mailbox: one exchange round that stays open while the stage runs and carries every
//! message of the stage: registrations, launches, finished tasks, block fetches, and the
//! collectives of a barrier stage's tasks. Block fetches are answered as soon as they arrive;
//! every other message waits in the inbox for whoever is looking for it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::blocks::{BlockChange, BlockManager};
use crate::error::Result;
use crate::exchange::Round;
use crate::task::RemoteRead;

use super::locality::Locality;
use super::metrics::TaskMetrics;

/// Bytes that serialize as one byte string (a copy), not element by element: the buffers of
/// collectives, which can be tens of megabytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Payload(pub Vec<u8>);

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Payload, E> {
                Ok(Payload(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(
                self,
                v: Vec<u8>,
            ) -> std::result::Result<Payload, E> {
                Ok(Payload(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Payload, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Payload(out))
            }
        }
        d.deserialize_byte_buf(Visit)
    }
}

/// What a barrier task is told at launch: which attempt of the stage it belongs to, and the
/// worker of every task of the stage (by rank, the task's index in partition order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BarrierLaunch {
    /// The stage attempt (0 first; every task of the stage restarts together).
    pub attempt: u32,
    /// This task's rank.
    pub rank: u32,
    /// The worker running each rank.
    pub workers: Vec<u32>,
}

/// A message of the stage mailbox.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) enum SchedMsg {
    /// To the coordinator: this worker is in the stage and free.
    Ready { worker: usize },
    /// To the coordinator: a task finished (the worker is free again).
    Done {
        metrics: TaskMetrics,
        changes: Vec<BlockChange>,
    },
    /// To a worker: run this partition.
    Launch {
        partition: usize,
        level: Locality,
        remote: Option<RemoteRead>,
        barrier: Option<BarrierLaunch>,
    },
    /// To every worker: the stage is over.
    End { tasks: Vec<TaskMetrics> },
    /// To a block's holder: send it to `requester`.
    Fetch {
        requester: usize,
        rdd: usize,
        split: usize,
    },
    /// A fetched block (`None` when the holder no longer has it).
    Block {
        rdd: usize,
        split: usize,
        bytes: Option<Vec<u8>>,
        error: Option<String>,
    },
    /// Part of a collective between the tasks of a barrier stage: the `seq`-th collective of
    /// stage attempt `attempt`, from rank `from`, step `phase` of the algorithm.
    Collective {
        attempt: u32,
        seq: u32,
        phase: u8,
        from: u32,
        data: Payload,
    },
    /// A barrier task failed: its peers stop waiting for it (their attempt fails too).
    BarrierAbort {
        attempt: u32,
        rank: u32,
        reason: String,
    },
    /// A point-to-point message between the tasks of a barrier stage (attempt `attempt`, from
    /// rank `from`), outside any collective: read by the receiving task in arrival order.
    Message {
        attempt: u32,
        from: u32,
        data: Payload,
    },
}

impl SchedMsg {
    /// Whether the message belongs to a barrier task's collectives (read by the task, not by
    /// the scheduler).
    pub(crate) fn is_collective(&self) -> bool {
        matches!(
            self,
            SchedMsg::Collective { .. } | SchedMsg::BarrierAbort { .. } | SchedMsg::Message { .. }
        )
    }
}

/// The mailbox of the stage running on this worker.
pub(crate) struct Mailbox {
    pub round: Round<SchedMsg>,
    pub inbox: VecDeque<SchedMsg>,
    pub blocks: Arc<BlockManager>,
    pub me: usize,
}

impl Mailbox {
    /// Moves messages in, waiting at most `park` for one; answers block fetches at once and
    /// queues the rest. Returns how many messages were queued.
    pub(crate) fn pump(&mut self, park: Duration) -> Result<usize> {
        let mut queued = 0;
        for msg in self.round.poll(Some(park))? {
            match msg {
                SchedMsg::Fetch {
                    requester,
                    rdd,
                    split,
                } => {
                    let (bytes, error) = match self.blocks.encode_block((rdd, split)) {
                        None => (None, None),
                        Some(Ok(b)) => (Some(b), None),
                        Some(Err(e)) => (None, Some(e.to_string())),
                    };
                    tracing::debug!(rdd, split, requester, "serving a block fetch");
                    let reply = SchedMsg::Block {
                        rdd,
                        split,
                        bytes,
                        error,
                    };
                    self.round.send_now(requester, reply);
                }
                other => {
                    queued += 1;
                    self.inbox.push_back(other)
                }
            }
        }
        Ok(queued)
    }

    /// Removes and returns the first queued message `pick` accepts.
    pub(crate) fn take(&mut self, mut pick: impl FnMut(&SchedMsg) -> bool) -> Option<SchedMsg> {
        let pos = self.inbox.iter().position(&mut pick)?;
        self.inbox.remove(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_serialize_as_one_byte_string() {
        let p = Payload((0..=255u8).collect());
        let bytes = bincode::serialize(&p).unwrap();
        // Length prefix (8 bytes) and the bytes themselves.
        assert_eq!(bytes.len(), 8 + 256);
        assert_eq!(bincode::deserialize::<Payload>(&bytes).unwrap(), p);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Payload>(&json).unwrap(), p);
    }
}
