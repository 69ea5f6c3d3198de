//! Classification metrics from a confusion matrix: accuracy, precision, recall, F1 (per class,
//! macro, micro and weighted), Matthews correlation and top-N accuracy.

use std::fmt;

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::input::{argmax, example_mask, finite_predictions, label_class, ratio, same_rows};
use super::{EvalError, Evaluation};

/// How per-class precision, recall and F1 are averaged (as scikit-learn's `average=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    /// Unweighted mean over all classes.
    Macro,
    /// Computed from the summed true positives, false positives and false negatives of all
    /// classes (for single-label data: precision = recall = F1 = accuracy).
    Micro,
    /// Mean over classes weighted by their support (number of true examples).
    Weighted,
}

/// Counts of (actual class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// `counts[actual][predicted]`.
    counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    fn new(classes: usize) -> Self {
        ConfusionMatrix {
            counts: vec![vec![0; classes]; classes],
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.counts.len()
    }

    /// How often class `actual` was predicted as `predicted`.
    pub fn get(&self, actual: usize, predicted: usize) -> u64 {
        self.counts[actual][predicted]
    }

    /// Examples whose true class is `class`.
    pub fn actual_total(&self, class: usize) -> u64 {
        self.counts[class].iter().sum()
    }

    /// Examples predicted as `class`.
    pub fn predicted_total(&self, class: usize) -> u64 {
        self.counts.iter().map(|row| row[class]).sum()
    }

    /// All examples.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// The matrix as an array, rows actual and columns predicted (as scikit-learn's
    /// `confusion_matrix`).
    pub fn to_array(&self) -> Array2<u64> {
        let n = self.classes();
        Array2::from_shape_fn((n, n), |(a, p)| self.counts[a][p])
    }
}

/// Classification evaluation over `num_classes` classes, accumulated minibatch by minibatch and
/// mergeable across partitions.
///
/// Predictions are scores or probabilities `[batch, num_classes]` (the predicted class is the
/// largest, the first on ties), or for two classes a single column holding the probability of
/// class 1, compared with a threshold (0.5 by default; class 1 when the probability is above
/// it). Labels are one-hot `[batch, num_classes]` or class indices `[batch, 1]`. Precision,
/// recall and F1 are 0 where undefined (scikit-learn's `zero_division=0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    top_n: usize,
    threshold: f32,
    class_names: Option<Vec<String>>,
    confusion: ConfusionMatrix,
    top_n_correct: u64,
}

impl Classification {
    /// An empty evaluation for `num_classes` classes (at least 2).
    pub fn new(num_classes: usize) -> Result<Self, EvalError> {
        if num_classes < 2 {
            return Err(EvalError::Config(format!(
                "classification needs at least 2 classes, not {num_classes}"
            )));
        }
        Ok(Classification {
            top_n: 1,
            threshold: 0.5,
            class_names: None,
            confusion: ConfusionMatrix::new(num_classes),
            top_n_correct: 0,
        })
    }

    /// Also counts top-N accuracy: an example counts as correct when fewer than `n` classes
    /// score strictly higher than its true class.
    pub fn with_top_n(mut self, n: usize) -> Result<Self, EvalError> {
        if n == 0 || n > self.num_classes() {
            return Err(EvalError::Config(format!(
                "top-N must be between 1 and {} classes, not {n}",
                self.num_classes()
            )));
        }
        self.top_n = n;
        Ok(self)
    }

    /// Names the classes in [`Classification::stats`].
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

    /// Sets the decision threshold for single-column binary predictions (a finite value).
    pub fn with_threshold(mut self, threshold: f32) -> Result<Self, EvalError> {
        if !threshold.is_finite() {
            return Err(EvalError::Config(format!(
                "threshold {threshold} is not finite"
            )));
        }
        self.threshold = threshold;
        Ok(self)
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.confusion.classes()
    }

    /// The N of top-N accuracy.
    pub fn top_n(&self) -> usize {
        self.top_n
    }

    /// Adds examples given by class indices and predictions; `mask` as in
    /// [`Evaluation::eval`].
    pub fn eval_indices(
        &mut self,
        labels: &[usize],
        predictions: ArrayView2<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<(), EvalError> {
        let as_column = Array2::from_shape_fn((labels.len(), 1), |(r, _)| labels[r] as f32);
        self.eval(as_column.view(), predictions, mask)
    }

    /// The confusion matrix.
    pub fn confusion_matrix(&self) -> &ConfusionMatrix {
        &self.confusion
    }

    /// Number of examples evaluated.
    pub fn count(&self) -> u64 {
        self.confusion.total()
    }

    fn tp(&self, c: usize) -> f64 {
        self.confusion.get(c, c) as f64
    }

    /// Fraction of examples whose predicted class is the true class (0 when empty).
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.num_classes())
            .map(|c| self.confusion.get(c, c))
            .sum();
        ratio(correct as f64, self.count() as f64)
    }

    /// Fraction of examples whose true class is among the `top_n` highest scores.
    pub fn top_n_accuracy(&self) -> f64 {
        ratio(self.top_n_correct as f64, self.count() as f64)
    }

    /// Precision of `class`: true positives / predicted positives.
    pub fn precision(&self, class: usize) -> f64 {
        ratio(self.tp(class), self.confusion.predicted_total(class) as f64)
    }

    /// Recall of `class`: true positives / actual positives.
    pub fn recall(&self, class: usize) -> f64 {
        ratio(self.tp(class), self.confusion.actual_total(class) as f64)
    }

    /// F1 of `class`: the harmonic mean of its precision and recall.
    pub fn f1(&self, class: usize) -> f64 {
        let (p, r) = (self.precision(class), self.recall(class));
        ratio(2.0 * p * r, p + r)
    }

    /// False positive rate of `class`: false positives / actual negatives.
    pub fn false_positive_rate(&self, class: usize) -> f64 {
        let fp = self.confusion.predicted_total(class) - self.confusion.get(class, class);
        let negatives = self.count() - self.confusion.actual_total(class);
        ratio(fp as f64, negatives as f64)
    }

    /// Number of examples whose true class is `class`.
    pub fn support(&self, class: usize) -> u64 {
        self.confusion.actual_total(class)
    }

    fn averaged(&self, average: Average, metric: impl Fn(usize) -> f64, micro: f64) -> f64 {
        let n = self.num_classes();
        match average {
            Average::Macro => (0..n).map(&metric).sum::<f64>() / n as f64,
            Average::Micro => micro,
            Average::Weighted => ratio(
                (0..n).map(|c| metric(c) * self.support(c) as f64).sum(),
                self.count() as f64,
            ),
        }
    }

    fn micro(&self) -> (f64, f64, f64) {
        // Summed over classes: TP = correct, TP + FP = TP + FN = all examples.
        let tp: f64 = (0..self.num_classes()).map(|c| self.tp(c)).sum();
        let p = ratio(tp, self.count() as f64);
        let r = p;
        (p, r, ratio(2.0 * p * r, p + r))
    }

    /// Precision averaged over classes.
    pub fn precision_avg(&self, average: Average) -> f64 {
        self.averaged(average, |c| self.precision(c), self.micro().0)
    }

    /// Recall averaged over classes.
    pub fn recall_avg(&self, average: Average) -> f64 {
        self.averaged(average, |c| self.recall(c), self.micro().1)
    }

    /// F1 averaged over classes (macro: the mean of per-class F1, as scikit-learn).
    pub fn f1_avg(&self, average: Average) -> f64 {
        self.averaged(average, |c| self.f1(c), self.micro().2)
    }

    /// Matthews correlation coefficient (multiclass, as scikit-learn's `matthews_corrcoef`); 0
    /// when undefined.
    pub fn matthews_correlation(&self) -> f64 {
        let n = self.num_classes();
        let s = self.count() as f64;
        let c: f64 = (0..n).map(|k| self.tp(k)).sum();
        let t: Vec<f64> = (0..n)
            .map(|k| self.confusion.actual_total(k) as f64)
            .collect();
        let p: Vec<f64> = (0..n)
            .map(|k| self.confusion.predicted_total(k) as f64)
            .collect();
        let cov_tp = c * s - (0..n).map(|k| t[k] * p[k]).sum::<f64>();
        let cov_pp = s * s - p.iter().map(|x| x * x).sum::<f64>();
        let cov_tt = s * s - t.iter().map(|x| x * x).sum::<f64>();
        ratio(cov_tp, (cov_tt * cov_pp).sqrt())
    }

    fn class_name(&self, c: usize) -> String {
        match &self.class_names {
            Some(names) => names[c].clone(),
            None => c.to_string(),
        }
    }
}

impl Evaluation for Classification {
    /// Labels one-hot `[batch, classes]` or class indices `[batch, 1]`; predictions
    /// `[batch, classes]` (or `[batch, 1]` for two classes); mask `[batch, 1]` (0 leaves an
    /// example out) or `[batch, classes]` with whole rows masked.
    fn eval(
        &mut self,
        labels: ArrayView2<'_, f32>,
        predictions: ArrayView2<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<(), EvalError> {
        same_rows(&labels, &predictions)?;
        let n = self.num_classes();
        let single = predictions.ncols() == 1 && n == 2;
        if predictions.ncols() != n && !single {
            return Err(EvalError::Shape(format!(
                "predictions have {} columns for {n} classes",
                predictions.ncols()
            )));
        }
        finite_predictions(&predictions)?;
        let mask = example_mask(mask, labels.nrows(), labels.ncols())?;
        // Decode everything first so a bad row leaves the evaluation unchanged.
        let mut decoded = Vec::with_capacity(labels.nrows());
        for (r, (label_row, pred_row)) in labels
            .rows()
            .into_iter()
            .zip(predictions.rows())
            .enumerate()
        {
            if mask.as_ref().is_some_and(|m| !m[r]) {
                continue;
            }
            let actual = label_class(label_row, r, n)?;
            let (predicted, in_top_n) = if single {
                let predicted = usize::from(pred_row[0] > self.threshold);
                (predicted, predicted == actual)
            } else {
                let higher = pred_row.iter().filter(|&&s| s > pred_row[actual]).count();
                (argmax(pred_row), higher < self.top_n)
            };
            decoded.push((actual, predicted, in_top_n));
        }
        for (actual, predicted, in_top_n) in decoded {
            self.confusion.counts[actual][predicted] += 1;
            self.top_n_correct += u64::from(in_top_n);
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<(), EvalError> {
        if other.num_classes() != self.num_classes() || other.top_n != self.top_n {
            return Err(EvalError::Incompatible(format!(
                "{} classes with top-{} against {} classes with top-{}",
                self.num_classes(),
                self.top_n,
                other.num_classes(),
                other.top_n
            )));
        }
        if self.threshold != other.threshold {
            return Err(EvalError::Incompatible(
                "different binary thresholds".into(),
            ));
        }
        for (mine, theirs) in self
            .confusion
            .counts
            .iter_mut()
            .zip(&other.confusion.counts)
        {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
        self.top_n_correct += other.top_n_correct;
        if self.class_names.is_none() {
            self.class_names.clone_from(&other.class_names);
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.confusion = ConfusionMatrix::new(self.num_classes());
        self.top_n_correct = 0;
    }

    fn stats(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.num_classes();
        writeln!(
            f,
            "========================Evaluation Metrics========================"
        )?;
        writeln!(f, " # of classes:    {n}")?;
        writeln!(f, " # of examples:   {}", self.count())?;
        writeln!(f, " Accuracy:        {:.4}", self.accuracy())?;
        if self.top_n > 1 {
            writeln!(
                f,
                " Top {} Accuracy:  {:.4}",
                self.top_n,
                self.top_n_accuracy()
            )?;
        }
        writeln!(
            f,
            " Precision:       {:.4}",
            self.precision_avg(Average::Macro)
        )?;
        writeln!(
            f,
            " Recall:          {:.4}",
            self.recall_avg(Average::Macro)
        )?;
        writeln!(f, " F1 Score:        {:.4}", self.f1_avg(Average::Macro))?;
        writeln!(f, " Matthews corr.:  {:.4}", self.matthews_correlation())?;
        writeln!(
            f,
            "Precision, recall & F1: macro-averaged (equally weighted avg. of {n} classes)"
        )?;
        let never: Vec<String> = (0..n)
            .filter(|&c| self.count() > 0 && self.confusion.predicted_total(c) == 0)
            .map(|c| self.class_name(c))
            .collect();
        if !never.is_empty() {
            writeln!(
                f,
                "Warning: {} class(es) never predicted (their precision counts as 0): {}",
                never.len(),
                never.join(", ")
            )?;
        }
        writeln!(f)?;
        let width = (0..n)
            .map(|c| self.class_name(c).len())
            .max()
            .unwrap_or(1)
            .max(5);
        writeln!(
            f,
            " {:<width$}  Precision  Recall  F1      Support",
            "Class"
        )?;
        for c in 0..n {
            writeln!(
                f,
                " {:<width$}  {:<9.4}  {:<6.4}  {:<6.4}  {}",
                self.class_name(c),
                self.precision(c),
                self.recall(c),
                self.f1(c),
                self.support(c)
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "=========================Confusion Matrix========================="
        )?;
        let cell = (0..n)
            .flat_map(|a| (0..n).map(move |p| (a, p)))
            .map(|(a, p)| self.confusion.get(a, p).to_string().len())
            .max()
            .unwrap_or(1)
            .max(n.to_string().len());
        let header: Vec<String> = (0..n).map(|c| format!("{c:>cell$}")).collect();
        writeln!(f, " {}", header.join(" "))?;
        writeln!(f, "{}", "-".repeat((cell + 1) * n + 1))?;
        for a in 0..n {
            let row: Vec<String> = (0..n)
                .map(|p| format!("{:>cell$}", self.confusion.get(a, p)))
                .collect();
            writeln!(f, " {} | {a} = {}", row.join(" "), self.class_name(a))?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "Confusion matrix format: Actual (rowClass) predicted as (columnClass) N times"
        )?;
        write!(
            f,
            "=================================================================="
        )
    }
}
