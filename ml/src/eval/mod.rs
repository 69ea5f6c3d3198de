//! Evaluation: classification, ROC and regression metrics, mergeable across partitions.
//!
//! Every evaluation accumulates counts or sums minibatch by minibatch ([`Evaluation::eval`]),
//! merges with the evaluation of another partition ([`Evaluation::merge`]) so that merging
//! per-partition results equals evaluating everything at once, serializes to JSON, and prints a
//! readable summary ([`Evaluation::stats`], also through `Display`).
//!
//! ```
//! use ember_ml::eval::{Classification, Evaluation};
//! use ndarray::array;
//! let labels = array![[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]];
//! let predictions = array![[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]];
//! let mut eval = Classification::new(2)?;
//! eval.eval(labels.view(), predictions.view(), None)?;
//! assert!((eval.accuracy() - 2.0 / 3.0).abs() < 1e-12);
//! let restored = Classification::from_json(&eval.to_json()?)?;
//! assert_eq!(restored, eval);
//! # Ok::<(), ember_ml::eval::EvalError>(())
//! ```

mod classification;
mod error;
mod input;
mod regression;
mod roc;
mod set;
mod store;

use ndarray::ArrayView2;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::data::MiniBatch;

pub use classification::{Average, Classification, ConfusionMatrix};
pub use error::EvalError;
pub use regression::Regression;
pub use roc::{PrPoint, Roc, RocMultiClass, RocPoint};
pub use set::{AnyEvaluation, Evaluations};
pub use store::{load_json_url, save_json_url};

/// What every evaluation can do: accumulate, merge, reset, summarize and round-trip JSON.
pub trait Evaluation: Clone + Serialize + DeserializeOwned {
    /// Adds a minibatch of `labels` and `predictions` (`[batch, ...]`, see each type for the
    /// accepted layouts). A `mask` holds 0 where an example (`[batch, 1]`) or value is left out.
    /// On error nothing is added.
    fn eval(
        &mut self,
        labels: ArrayView2<'_, f32>,
        predictions: ArrayView2<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<(), EvalError>;

    /// Adds a minibatch's labels (and label mask) with the network's `predictions` for it.
    fn eval_batch(
        &mut self,
        batch: &MiniBatch,
        predictions: ArrayView2<'_, f32>,
    ) -> Result<(), EvalError> {
        self.eval(
            batch.labels().view(),
            predictions,
            batch.labels_mask().map(|m| m.view()),
        )
    }

    /// Adds the counts of an evaluation of other examples (another partition); fails when the
    /// two are set up differently (classes, columns, top-N).
    fn merge(&mut self, other: &Self) -> Result<(), EvalError>;

    /// Forgets all examples, keeping the settings.
    fn reset(&mut self);

    /// A readable multi-line summary.
    fn stats(&self) -> String;

    /// The evaluation as JSON (all counts, so it can be merged after reading back).
    fn to_json(&self) -> Result<String, EvalError> {
        Ok(serde_json::to_string(self)?)
    }

    /// Reads an evaluation written by [`Evaluation::to_json`].
    fn from_json(json: &str) -> Result<Self, EvalError> {
        Ok(serde_json::from_str(json)?)
    }
}
