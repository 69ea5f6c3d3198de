//! Training statistics (DL4J's `setCollectTrainingStats`): per worker and step, where the time
//! went (data wait, forward/backward, optimizer, communication, waiting for peers), the loss and
//! the bytes moved. Clocks of different processes are aligned by the engine when the training
//! stage starts, so one timeline holds every worker.
//!
//! Written as JSON lines (one [`StepRecord`] a line) to any storage URL ([`write_json_lines`],
//! [`read_json_lines`]), and as one self-contained HTML report ([`super::report`]).

use serde::{Deserialize, Serialize};

/// What one worker did in one training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The worker (engine worker index).
    pub worker: usize,
    /// Epoch, from 0.
    pub epoch: usize,
    /// Step within the whole run, from 0 (the same number on every worker for one step).
    pub step: u64,
    /// When the step started: microseconds since the run's origin, on the aligned clock.
    pub start_us: u64,
    /// Waiting for the next minibatch (prefetch not ready).
    pub data_wait_us: u64,
    /// Forward and backward pass.
    pub compute_us: u64,
    /// The optimizer's update.
    pub optimizer_us: u64,
    /// Communication: sending, receiving, summing and copying buffers.
    pub comm_us: u64,
    /// Waiting inside collectives for peers' messages.
    pub peer_wait_us: u64,
    /// Examples this worker trained on in this step.
    pub examples: usize,
    /// Training loss of this worker's minibatch.
    pub loss: f32,
    /// Bytes this worker sent in this step.
    pub bytes_sent: u64,
    /// Bytes this worker received in this step.
    pub bytes_received: u64,
    /// Encoding and exchange figures, for gradient sharing
    /// ([`SharedGradients`](super::SharedGradients)) only.
    #[serde(default)]
    pub sharing: Option<super::sharing::SharingRecord>,
}

impl StepRecord {
    /// The record of a step that starts at `start_us` and waited `data_wait_us` for its data;
    /// every other phase still 0, no examples yet.
    pub(crate) fn begin(
        worker: usize,
        epoch: usize,
        step: u64,
        start_us: u64,
        data_wait_us: u64,
    ) -> StepRecord {
        StepRecord {
            worker,
            epoch,
            step,
            start_us,
            data_wait_us,
            compute_us: 0,
            optimizer_us: 0,
            comm_us: 0,
            peer_wait_us: 0,
            examples: 0,
            loss: 0.0,
            bytes_sent: 0,
            bytes_received: 0,
            sharing: None,
        }
    }

    /// Sets the communication phases and bytes from a barrier task's counters before and
    /// after the step.
    pub(crate) fn set_comm(
        &mut self,
        before: &ember_engine::CommStats,
        after: &ember_engine::CommStats,
    ) {
        self.comm_us = (after.busy - before.busy).as_micros() as u64;
        self.peer_wait_us = (after.waited - before.waited).as_micros() as u64;
        self.bytes_sent = after.bytes_sent - before.bytes_sent;
        self.bytes_received = after.bytes_received - before.bytes_received;
    }

    /// Wall time of the step: the sum of its phases.
    pub fn total_us(&self) -> u64 {
        [
            self.compute_us,
            self.optimizer_us,
            self.comm_us,
            self.peer_wait_us,
        ]
        .iter()
        .fold(self.data_wait_us, |a, &b| a.saturating_add(b))
    }
}

/// What a report describes, shown in its header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// A title, e.g. `mnist_distributed mlp`.
    pub title: String,
    /// The training master and its settings, e.g. `dense data parallel`.
    pub master: String,
    /// Number of workers.
    pub workers: usize,
    /// Trainable parameters of the network.
    pub params: usize,
}

/// Writes `records` to a storage URL (`file://`, bare path, `memory://`, `s3://`...) as JSON lines,
/// one [`StepRecord`] a line, in one PUT.
///
/// JSON has no NaN or infinity: a non-finite `loss` is written as the string `"NaN"`, `"inf"` or
/// `"-inf"`, which [`read_json_lines`] reads back.
pub fn write_json_lines(
    url: &str,
    records: &[StepRecord],
    config: &ember_storage::StorageConfig,
) -> crate::Result<()> {
    let json_err = |source| crate::MlError::Json {
        what: format!("step records for {url}"),
        source,
    };
    let mut out = Vec::with_capacity(records.len() * 256);
    for r in records {
        if r.loss.is_finite() {
            serde_json::to_writer(&mut out, r).map_err(json_err)?;
        } else {
            let mut v = serde_json::to_value(r).map_err(json_err)?;
            let loss = if r.loss.is_nan() {
                "NaN"
            } else if r.loss > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            v["loss"] = serde_json::Value::String(loss.into());
            serde_json::to_writer(&mut out, &v).map_err(json_err)?;
        }
        out.push(b'\n');
    }
    ember_storage::Location::resolve(url, config)?.put(out)?;
    Ok(())
}

/// Reads JSON lines written by [`write_json_lines`] from a storage URL. Blank lines are skipped;
/// a line that is not a [`StepRecord`] is an [`crate::MlError::Json`] naming the URL and line.
///
/// A `loss` of `null` (what plain `serde_json` writes for NaN) reads as NaN.
pub fn read_json_lines(
    url: &str,
    config: &ember_storage::StorageConfig,
) -> crate::Result<Vec<StepRecord>> {
    let bytes = ember_storage::Location::resolve(url, config)?.read_all()?;
    let mut records = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = parse_record(line).map_err(|source| crate::MlError::Json {
            what: format!("{url} line {}", i + 1),
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// One JSON line: the plain form, or one whose `loss` is a string or `null` (non-finite).
fn parse_record(line: &[u8]) -> Result<StepRecord, serde_json::Error> {
    let plain_err = match serde_json::from_slice::<StepRecord>(line) {
        Ok(r) => return Ok(r),
        Err(e) => e,
    };
    let mut v: serde_json::Value = serde_json::from_slice(line)?;
    let loss = match v.get("loss") {
        Some(serde_json::Value::Null) => f32::NAN,
        Some(serde_json::Value::String(s)) => match s.as_str() {
            "NaN" | "nan" => f32::NAN,
            "inf" | "+inf" | "Infinity" => f32::INFINITY,
            "-inf" | "-Infinity" => f32::NEG_INFINITY,
            _ => return Err(plain_err),
        },
        _ => return Err(plain_err),
    };
    v["loss"] = serde_json::Value::from(0.0);
    let mut r: StepRecord = serde_json::from_value(v)?;
    r.loss = loss;
    Ok(r)
}
