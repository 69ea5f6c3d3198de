//! Single-worker training loops over in-memory data: one epoch with a progress bar, and
//! classification evaluation.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ndarray::ArrayViewD;

use crate::data::MiniBatch;
use crate::error::{MlError, Result};
use crate::eval::{Classification, Evaluation};
use crate::nn::Network;
use crate::optim::Optimizer;

/// What one epoch did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// Mean training loss over the epoch's minibatches.
    pub mean_loss: f32,
    /// Examples seen.
    pub examples: usize,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
}

/// The features of a minibatch in the shape the network takes: `[batch, features]` for a network
/// on flat inputs, `[batch, feature_shape...]` (e.g. `[batch, 1, 28, 28]`) for one on images.
pub fn network_input<'a>(net: &Network, batch: &'a MiniBatch) -> Result<ArrayViewD<'a, f32>> {
    let want = &net.config().input_shape;
    if want.as_slice() == batch.feature_shape() {
        Ok(batch.features_nd())
    } else if want.as_slice() == [batch.num_features()] {
        Ok(batch.features().view().into_dyn())
    } else {
        Err(MlError::Shape(format!(
            "network takes examples of shape {want:?}, data has feature shape {:?}",
            batch.feature_shape()
        )))
    }
}

/// A progress bar on stderr when a person is watching (stderr is a terminal), hidden otherwise.
pub fn progress_bar(len: u64, prefix: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} batches {per_sec} eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}

/// Trains one epoch over `data` in shuffled minibatches (order seeded by `seed`), showing a
/// progress bar with the running loss (mean of the last 50 minibatches).
pub fn fit_epoch(
    net: &mut Network,
    opt: &mut Optimizer,
    data: &MiniBatch,
    batch_size: usize,
    seed: u64,
    label: &str,
) -> Result<EpochStats> {
    let batches = data.shuffled_batches(batch_size, seed)?;
    let bar = progress_bar(batches.len() as u64, label);
    let start = Instant::now();
    let (mut total, mut count, mut examples) = (0f64, 0usize, 0usize);
    let mut recent = std::collections::VecDeque::with_capacity(50);
    for b in batches {
        let x = network_input(net, &b)?;
        let loss = net.fit_batch(x, b.labels().view().into_dyn(), opt)?;
        total += loss as f64;
        count += 1;
        examples += b.len();
        if recent.len() == 50 {
            recent.pop_front();
        }
        recent.push_back(loss);
        if count % 10 == 0 {
            let running = recent.iter().sum::<f32>() / recent.len() as f32;
            bar.set_message(format!("loss {running:.4}"));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(EpochStats {
        mean_loss: (total / count.max(1) as f64) as f32,
        examples,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Evaluates a classifier on `data` in minibatches (inference mode).
pub fn evaluate(net: &mut Network, data: &MiniBatch, batch_size: usize) -> Result<Classification> {
    let mut eval = Classification::new(data.num_labels())?;
    for b in data.batches(batch_size)? {
        let out = net.predict(network_input(net, &b)?)?;
        let out = out
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| MlError::Shape(format!("classifier output is not 2-D: {e}")))?;
        eval.eval(b.labels().view(), out.view(), None)?;
    }
    Ok(eval)
}
