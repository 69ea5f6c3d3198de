//! A worker's resident replica (its network and optimizer, kept across steps and epochs, never
//! serialized per step) and the minibatch source a training task reads, with prefetching.

use std::sync::mpsc::{sync_channel, Receiver};

use ember_engine::{BoxIter, EngineError};
use ember_storage::StorageConfig;

use crate::data::MiniBatch;
use crate::error::{MlError, Result};
use crate::nn::Network;
use crate::optim::Optimizer;

/// One worker's copy of the network being trained, with its optimizer.
#[derive(Debug)]
pub struct Replica {
    /// The network.
    pub net: Network,
    /// Its optimizer (state and step count).
    pub opt: Optimizer,
}

/// Parameters, optimizer state and step count: what restarting a failed stage restores.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    params: Vec<f32>,
    buffers: Vec<f32>,
    state: Vec<f32>,
    step: u64,
}

impl Replica {
    /// A checksum of the parameters' bits (FNV-1a): equal on two replicas exactly when their
    /// parameters are bit-identical (barring collisions).
    pub fn checksum(&self) -> u64 {
        checksum(self.net.params())
    }

    /// Appends what averaging combines (parameters, running statistics and, with `updater`,
    /// the optimizer state), each value times `scale`, to `out`.
    pub(crate) fn append_averaged(&self, out: &mut Vec<f32>, updater: bool, scale: f32) {
        out.extend(self.net.params().iter().map(|v| v * scale));
        out.extend(self.net.buffers().iter().map(|v| v * scale));
        if updater {
            out.extend(self.opt.state().iter().map(|v| v * scale));
        }
    }

    /// The inverse of [`Replica::append_averaged`]: takes the values from the front of
    /// `values`, each times `scale`.
    pub(crate) fn load_averaged(&mut self, values: &[f32], updater: bool, scale: f32) {
        let mut it = values.iter().map(|v| v * scale);
        let mut fill = |dst: &mut [f32]| {
            for d in dst {
                *d = it.next().expect("sized by append_averaged");
            }
        };
        fill(self.net.params_mut());
        fill(self.net.buffers_mut());
        if updater {
            fill(self.opt.state_mut());
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            params: self.net.params().to_vec(),
            buffers: self.net.buffers().to_vec(),
            state: self.opt.state().to_vec(),
            step: self.opt.step_count(),
        }
    }

    pub(crate) fn restore(&mut self, s: &Snapshot) -> Result<()> {
        self.net.set_params(&s.params)?;
        self.net.buffers_mut().copy_from_slice(&s.buffers);
        self.opt = Optimizer::from_state(
            *self.opt.config(),
            self.net.num_params(),
            s.state.clone(),
            s.step,
        )?;
        Ok(())
    }
}

/// FNV-1a over the bits of `values`.
pub fn checksum(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
        (h ^ v.to_bits() as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An ML error as the engine reports a failed task: storage errors stay retryable when they
/// were, anything else is the data's or the configuration's fault (not retried per task).
pub(crate) fn to_engine(e: MlError) -> EngineError {
    match e {
        MlError::Engine(e) => e,
        MlError::Storage(s) => EngineError::from(s),
        other => EngineError::InvalidArgument {
            operation: "distributed training".into(),
            reason: other.to_string(),
        },
    }
}

/// The minibatches a training task reads.
pub(crate) enum BatchSource {
    /// From the task's input partition (an in-memory or cached RDD).
    Partition(BoxIter<MiniBatch>),
    /// Exported files loaded ahead by a reader thread.
    Prefetched(Receiver<Result<MiniBatch>>),
}

impl BatchSource {
    /// Starts a reader thread that loads `urls` in order, keeping up to `prefetch` minibatches
    /// ready (at least 1).
    pub(crate) fn prefetch(urls: Vec<String>, prefetch: usize, config: StorageConfig) -> Self {
        let (tx, rx) = sync_channel(prefetch.max(1));
        std::thread::Builder::new()
            .name("ember-ml-prefetch".into())
            .spawn(move || {
                for url in urls {
                    let batch = super::data::read_minibatch(&url, &config);
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            })
            .map(|_| BatchSource::Prefetched(rx))
            .unwrap_or_else(|e| {
                let (tx, rx) = sync_channel(1);
                let _ = tx.send(Err(MlError::Config(format!(
                    "cannot start the prefetch thread: {e}"
                ))));
                BatchSource::Prefetched(rx)
            })
    }

    /// The next minibatch, `None` at the end.
    pub(crate) fn next_batch(&mut self) -> Result<Option<MiniBatch>> {
        match self {
            BatchSource::Partition(it) => Ok(it.next()),
            BatchSource::Prefetched(rx) => rx.recv().ok().transpose(),
        }
    }
}
