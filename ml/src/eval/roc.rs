//! ROC and precision-recall analysis with exact areas: every distinct score is kept with its
//! counts of positive and negative examples, so AUC and average precision are computed from all
//! scores (no thresholds binned) and merging partitions stays exact.

use std::collections::BTreeMap;
use std::fmt;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::input::{example_mask, finite_predictions, label_class, ratio, same_rows};
use super::{EvalError, Evaluation};

/// A point of the ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    /// Examples scoring at least this are predicted positive (`+inf` for the first point).
    pub threshold: f64,
    /// False positive rate.
    pub fpr: f64,
    /// True positive rate (recall).
    pub tpr: f64,
}

/// A point of the precision-recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    /// Examples scoring at least this are predicted positive.
    pub threshold: f64,
    /// Precision at this threshold.
    pub precision: f64,
    /// Recall at this threshold.
    pub recall: f64,
}

/// Maps a finite `f32` to a `u32` with the same order (`-0.0` and `0.0` are one key).
fn key(score: f32) -> u32 {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

fn score_of(key: u32) -> f32 {
    if key & 0x8000_0000 != 0 {
        f32::from_bits(key & 0x7fff_ffff)
    } else {
        f32::from_bits(!key)
    }
}

/// One distinct score with its counts, as serialized.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct ScoreCount {
    score: f32,
    positives: u64,
    negatives: u64,
}

#[derive(Serialize, Deserialize)]
struct RocRepr {
    scores: Vec<ScoreCount>,
}

/// Binary ROC evaluation: exact ROC AUC and area under the precision-recall curve.
///
/// Predictions are the probability (or any score) of the positive class, `[batch, 1]`, or
/// two-class probabilities `[batch, 2]` (column 1 is used). Labels are 0/1 `[batch, 1]` or
/// one-hot `[batch, 2]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "RocRepr", into = "RocRepr")]
pub struct Roc {
    /// Score key → (positives, negatives).
    counts: BTreeMap<u32, (u64, u64)>,
}

impl From<RocRepr> for Roc {
    fn from(repr: RocRepr) -> Self {
        let mut roc = Roc::new();
        for s in repr.scores {
            let entry = roc.counts.entry(key(s.score)).or_default();
            entry.0 += s.positives;
            entry.1 += s.negatives;
        }
        roc
    }
}

impl From<Roc> for RocRepr {
    fn from(roc: Roc) -> Self {
        RocRepr {
            scores: roc
                .counts
                .iter()
                .map(|(&k, &(positives, negatives))| ScoreCount {
                    score: score_of(k),
                    positives,
                    negatives,
                })
                .collect(),
        }
    }
}

impl Roc {
    /// An empty evaluation.
    pub fn new() -> Self {
        Roc::default()
    }

    /// Adds one example: its score and whether it is positive. Fails on a non-finite score.
    pub fn add(&mut self, score: f32, positive: bool) -> Result<(), EvalError> {
        if !score.is_finite() {
            return Err(EvalError::NonFinite {
                what: "prediction",
                row: 0,
                column: 0,
                value: score,
            });
        }
        self.add_unchecked(score, positive);
        Ok(())
    }

    fn add_unchecked(&mut self, score: f32, positive: bool) {
        let entry = self.counts.entry(key(score)).or_default();
        if positive {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }

    /// Adds examples given as scores and positive flags.
    pub fn eval_scores(&mut self, scores: &[f32], positive: &[bool]) -> Result<(), EvalError> {
        if scores.len() != positive.len() {
            return Err(EvalError::Shape(format!(
                "{} scores but {} labels",
                scores.len(),
                positive.len()
            )));
        }
        if let Some(r) = scores.iter().position(|s| !s.is_finite()) {
            return Err(EvalError::NonFinite {
                what: "prediction",
                row: r,
                column: 0,
                value: scores[r],
            });
        }
        for (&s, &p) in scores.iter().zip(positive) {
            self.add_unchecked(s, p);
        }
        Ok(())
    }

    /// Number of positive examples.
    pub fn positives(&self) -> u64 {
        self.counts.values().map(|c| c.0).sum()
    }

    /// Number of negative examples.
    pub fn negatives(&self) -> u64 {
        self.counts.values().map(|c| c.1).sum()
    }

    /// Number of distinct scores kept.
    pub fn distinct_scores(&self) -> usize {
        self.counts.len()
    }

    /// Exact area under the ROC curve: the probability that a random positive scores above a
    /// random negative, ties counting one half. NaN without both positives and negatives.
    pub fn auc(&self) -> f64 {
        let (p, n) = (self.positives(), self.negatives());
        if p == 0 || n == 0 {
            return f64::NAN;
        }
        // Twice the count of (positive, negative) pairs ordered correctly, ties counting 1;
        // integers are exact, so the only rounding is the final division.
        let mut pairs2: u128 = 0;
        let mut positives_above: u128 = 0;
        for &(pos, neg) in self.counts.values().rev() {
            pairs2 += u128::from(neg) * (2 * positives_above + u128::from(pos));
            positives_above += u128::from(pos);
        }
        pairs2 as f64 / (2.0 * p as f64 * n as f64)
    }

    /// Area under the precision-recall curve as average precision: the sum over thresholds of
    /// the precision times the recall gained (a step function, no interpolation; the same as
    /// scikit-learn's `average_precision_score`). NaN without positives.
    pub fn auprc(&self) -> f64 {
        let total_pos = self.positives();
        if total_pos == 0 {
            return f64::NAN;
        }
        let (mut tp, mut fp, mut area) = (0u64, 0u64, 0.0f64);
        for &(pos, neg) in self.counts.values().rev() {
            tp += pos;
            fp += neg;
            if pos > 0 {
                area += (pos as f64 / total_pos as f64) * (tp as f64 / (tp + fp) as f64);
            }
        }
        area
    }

    /// The ROC curve, one point per distinct score from the highest, after a first point at
    /// (0, 0).
    pub fn roc_curve(&self) -> Vec<RocPoint> {
        let (p, n) = (self.positives() as f64, self.negatives() as f64);
        let mut points = vec![RocPoint {
            threshold: f64::INFINITY,
            fpr: 0.0,
            tpr: 0.0,
        }];
        let (mut tp, mut fp) = (0u64, 0u64);
        for (&k, &(pos, neg)) in self.counts.iter().rev() {
            tp += pos;
            fp += neg;
            points.push(RocPoint {
                threshold: f64::from(score_of(k)),
                fpr: ratio(fp as f64, n),
                tpr: ratio(tp as f64, p),
            });
        }
        points
    }

    /// The precision-recall curve, one point per distinct score from the highest.
    pub fn pr_curve(&self) -> Vec<PrPoint> {
        let p = self.positives() as f64;
        let (mut tp, mut fp) = (0u64, 0u64);
        self.counts
            .iter()
            .rev()
            .map(|(&k, &(pos, neg))| {
                tp += pos;
                fp += neg;
                PrPoint {
                    threshold: f64::from(score_of(k)),
                    precision: ratio(tp as f64, (tp + fp) as f64),
                    recall: ratio(tp as f64, p),
                }
            })
            .collect()
    }

    fn merge_counts(&mut self, other: &Roc) {
        for (&k, &(pos, neg)) in &other.counts {
            let entry = self.counts.entry(k).or_default();
            entry.0 += pos;
            entry.1 += neg;
        }
    }
}

impl Evaluation for Roc {
    fn eval(
        &mut self,
        labels: ArrayView2<'_, f32>,
        predictions: ArrayView2<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<(), EvalError> {
        same_rows(&labels, &predictions)?;
        let column = match predictions.ncols() {
            1 => 0,
            2 => 1,
            c => {
                return Err(EvalError::Shape(format!(
                    "binary ROC needs predictions with 1 or 2 columns, not {c}; use \
                     RocMultiClass for more classes"
                )))
            }
        };
        finite_predictions(&predictions)?;
        let mask = example_mask(mask, labels.nrows(), labels.ncols())?;
        let mut decoded = Vec::with_capacity(labels.nrows());
        for (r, label_row) in labels.rows().into_iter().enumerate() {
            if mask.as_ref().is_some_and(|m| !m[r]) {
                continue;
            }
            let positive = label_class(label_row, r, 2)? == 1;
            decoded.push((predictions[[r, column]], positive));
        }
        for (score, positive) in decoded {
            self.add_unchecked(score, positive);
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<(), EvalError> {
        self.merge_counts(other);
        Ok(())
    }

    fn reset(&mut self) {
        self.counts.clear();
    }

    fn stats(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Roc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "===========================ROC (binary)==========================="
        )?;
        writeln!(f, " AUC (ROC):       {:.6}", self.auc())?;
        writeln!(f, " AUPRC (avg. precision): {:.6}", self.auprc())?;
        writeln!(f, " Positives:       {}", self.positives())?;
        writeln!(f, " Negatives:       {}", self.negatives())?;
        writeln!(f, " Distinct scores: {}", self.distinct_scores())?;
        write!(
            f,
            "=================================================================="
        )
    }
}

/// One-vs-all ROC for several classes: one exact [`Roc`] per class, where the class's examples
/// are positive and all others negative.
///
/// Predictions are per-class scores `[batch, classes]`; labels one-hot `[batch, classes]` or class
/// indices `[batch, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocMultiClass {
    class_names: Option<Vec<String>>,
    classes: Vec<Roc>,
}

impl RocMultiClass {
    /// An empty evaluation for `num_classes` classes (at least 2).
    pub fn new(num_classes: usize) -> Result<Self, EvalError> {
        if num_classes < 2 {
            return Err(EvalError::Config(format!(
                "one-vs-all ROC needs at least 2 classes, not {num_classes}"
            )));
        }
        Ok(RocMultiClass {
            class_names: None,
            classes: vec![Roc::new(); num_classes],
        })
    }

    /// Names the classes in [`RocMultiClass::stats`].
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Self, EvalError> {
        if names.len() != self.num_classes() {
            return Err(EvalError::Config(format!(
                "{} class names for {} classes",
                names.len(),
                self.num_classes()
            )));
        }
        self.class_names = Some(names);
        Ok(self)
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The one-vs-all evaluation of `class`.
    pub fn roc(&self, class: usize) -> &Roc {
        &self.classes[class]
    }

    /// Exact ROC AUC of `class` against all others.
    pub fn auc(&self, class: usize) -> f64 {
        self.classes[class].auc()
    }

    /// Average precision of `class` against all others.
    pub fn auprc(&self, class: usize) -> f64 {
        self.classes[class].auprc()
    }

    /// Mean AUC over classes (scikit-learn's `roc_auc_score(multi_class="ovr",
    /// average="macro")`); NaN when a class has no positive or no negative example.
    pub fn average_auc(&self) -> f64 {
        self.classes.iter().map(Roc::auc).sum::<f64>() / self.num_classes() as f64
    }

    /// Mean average precision over classes; NaN when a class has no positive example.
    pub fn average_auprc(&self) -> f64 {
        self.classes.iter().map(Roc::auprc).sum::<f64>() / self.num_classes() as f64
    }

    /// All classes' (score, is-this-class) pairs pooled into one binary evaluation: its AUC and
    /// AUPRC are the micro averages.
    pub fn micro(&self) -> Roc {
        let mut pooled = Roc::new();
        for roc in &self.classes {
            pooled.merge_counts(roc);
        }
        pooled
    }

    fn class_name(&self, c: usize) -> String {
        match &self.class_names {
            Some(names) => names[c].clone(),
            None => c.to_string(),
        }
    }
}

impl Evaluation for RocMultiClass {
    fn eval(
        &mut self,
        labels: ArrayView2<'_, f32>,
        predictions: ArrayView2<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<(), EvalError> {
        same_rows(&labels, &predictions)?;
        let n = self.num_classes();
        if predictions.ncols() != n {
            return Err(EvalError::Shape(format!(
                "predictions have {} columns for {n} classes",
                predictions.ncols()
            )));
        }
        finite_predictions(&predictions)?;
        let mask = example_mask(mask, labels.nrows(), labels.ncols())?;
        let mut actual = Vec::with_capacity(labels.nrows());
        for (r, label_row) in labels.rows().into_iter().enumerate() {
            if mask.as_ref().is_none_or(|m| m[r]) {
                actual.push((r, label_class(label_row, r, n)?));
            }
        }
        for (r, class) in actual {
            for (c, roc) in self.classes.iter_mut().enumerate() {
                roc.add_unchecked(predictions[[r, c]], c == class);
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<(), EvalError> {
        if other.num_classes() != self.num_classes() {
            return Err(EvalError::Incompatible(format!(
                "{} classes against {}",
                self.num_classes(),
                other.num_classes()
            )));
        }
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            mine.merge_counts(theirs);
        }
        if self.class_names.is_none() {
            self.class_names.clone_from(&other.class_names);
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.classes.iter_mut().for_each(Roc::reset);
    }

    fn stats(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for RocMultiClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "====================ROC (one-vs-all, {} classes)====================",
            self.num_classes()
        )?;
        let width = (0..self.num_classes())
            .map(|c| self.class_name(c).len())
            .max()
            .unwrap_or(1)
            .max(5);
        writeln!(
            f,
            " {:<width$}  AUC       AUPRC     Positives  Negatives",
            "Class"
        )?;
        for (c, roc) in self.classes.iter().enumerate() {
            writeln!(
                f,
                " {:<width$}  {:<8.6}  {:<8.6}  {:<9}  {}",
                self.class_name(c),
                roc.auc(),
                roc.auprc(),
                roc.positives(),
                roc.negatives()
            )?;
        }
        writeln!(f, " Average AUC:   {:.6}", self.average_auc())?;
        writeln!(f, " Average AUPRC: {:.6}", self.average_auprc())?;
        write!(
            f,
            "=================================================================="
        )
    }
}
