//! Regression metrics per output column: MSE, MAE, RMSE, R² and Pearson correlation.

use std::fmt;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::input::{same_rows, value_mask};
use super::{EvalError, Evaluation};

/// Running sums of one output column. Means and (co)variances use the pairwise update of Chan
/// et al., so merging partitions loses no precision against one pass over everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Column {
    count: u64,
    sum_abs_error: f64,
    sum_sq_error: f64,
    mean_label: f64,
    mean_prediction: f64,
    /// Sum of squared deviations of the labels from their mean.
    m2_label: f64,
    /// Sum of squared deviations of the predictions from their mean.
    m2_prediction: f64,
    /// Sum of products of label and prediction deviations.
    co_moment: f64,
}

impl Column {
    fn add(&mut self, label: f64, prediction: f64) {
        let error = prediction - label;
        self.sum_abs_error += error.abs();
        self.sum_sq_error += error * error;
        self.count += 1;
        let n = self.count as f64;
        let dl = label - self.mean_label;
        let dp = prediction - self.mean_prediction;
        self.mean_label += dl / n;
        self.mean_prediction += dp / n;
        self.m2_label += dl * (label - self.mean_label);
        self.m2_prediction += dp * (prediction - self.mean_prediction);
        self.co_moment += dl * (prediction - self.mean_prediction);
    }

    fn merge(&mut self, other: &Column) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let dl = other.mean_label - self.mean_label;
        let dp = other.mean_prediction - self.mean_prediction;
        self.sum_abs_error += other.sum_abs_error;
        self.sum_sq_error += other.sum_sq_error;
        self.mean_label += dl * nb / n;
        self.mean_prediction += dp * nb / n;
        self.m2_label += other.m2_label + dl * dl * na * nb / n;
        self.m2_prediction += other.m2_prediction + dp * dp * na * nb / n;
        self.co_moment += other.co_moment + dl * dp * na * nb / n;
        self.count += other.count;
    }
}

/// Regression evaluation over one or more output columns, accumulated minibatch by minibatch and
/// mergeable across partitions. Labels and predictions are `[batch, columns]`; a mask
/// `[batch, 1]` leaves whole examples out and `[batch, columns]` single values.
///
/// Metrics are NaN for a column with no values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    column_names: Option<Vec<String>>,
    columns: Vec<Column>,
}

impl Regression {
    /// An empty evaluation for `columns` output columns (at least 1).
    pub fn new(columns: usize) -> Result<Self, EvalError> {
        if columns == 0 {
            return Err(EvalError::Config(
                "regression needs at least one column".into(),
            ));
        }
        Ok(Regression {
            column_names: None,
            columns: vec![Column::default(); columns],
        })
    }

    /// Names the columns in [`Regression::stats`].
    pub fn with_column_names(mut self, names: Vec<String>) -> Result<Self, EvalError> {
        if names.len() != self.num_columns() {
            return Err(EvalError::Config(format!(
                "{} column names for {} columns",
                names.len(),
                self.num_columns()
            )));
        }
        self.column_names = Some(names);
        Ok(self)
    }

    /// Number of output columns.
    pub fn num_columns(&self) -> usize {
        self.columns.len()
    }

    /// Number of values evaluated in `column`.
    pub fn count(&self, column: usize) -> u64 {
        self.columns[column].count
    }

    fn per_count(&self, column: usize, sum: f64) -> f64 {
        let n = self.columns[column].count;
        if n == 0 {
            f64::NAN
        } else {
            sum / n as f64
        }
    }

    /// Mean squared error of `column`.
    pub fn mse(&self, column: usize) -> f64 {
        self.per_count(column, self.columns[column].sum_sq_error)
    }

    /// Mean absolute error of `column`.
    pub fn mae(&self, column: usize) -> f64 {
        self.per_count(column, self.columns[column].sum_abs_error)
    }

    /// Root mean squared error of `column`.
    pub fn rmse(&self, column: usize) -> f64 {
        self.mse(column).sqrt()
    }

    /// Coefficient of determination of `column`: 1 − SSE / SST. When the labels are constant
    /// (SST = 0) it is 1 for perfect predictions and 0 otherwise (as scikit-learn's `r2_score`).
    pub fn r2(&self, column: usize) -> f64 {
        let c = &self.columns[column];
        if c.count == 0 {
            return f64::NAN;
        }
        if c.m2_label == 0.0 {
            return if c.sum_sq_error == 0.0 { 1.0 } else { 0.0 };
        }
        1.0 - c.sum_sq_error / c.m2_label
    }

    /// Pearson correlation between labels and predictions of `column` (NaN when either is
    /// constant).
    pub fn pearson(&self, column: usize) -> f64 {
        let c = &self.columns[column];
        let den = (c.m2_label * c.m2_prediction).sqrt();
        if c.count == 0 || den == 0.0 {
            f64::NAN
        } else {
            c.co_moment / den
        }
    }

    fn average(&self, metric: impl Fn(usize) -> f64) -> f64 {
        (0..self.num_columns()).map(metric).sum::<f64>() / self.num_columns() as f64
    }

    /// MSE averaged over columns (scikit-learn's `multioutput="uniform_average"`).
    pub fn average_mse(&self) -> f64 {
        self.average(|c| self.mse(c))
    }

    /// MAE averaged over columns.
    pub fn average_mae(&self) -> f64 {
        self.average(|c| self.mae(c))
    }

    /// RMSE averaged over columns.
    pub fn average_rmse(&self) -> f64 {
        self.average(|c| self.rmse(c))
    }

    /// R² averaged over columns.
    pub fn average_r2(&self) -> f64 {
        self.average(|c| self.r2(c))
    }

    fn column_name(&self, c: usize) -> String {
        match &self.column_names {
            Some(names) => names[c].clone(),
            None => format!("col_{c}"),
        }
    }
}

impl Evaluation for Regression {
    fn eval(
        &mut self,
        labels: ArrayView2<'_, f32>,
        predictions: ArrayView2<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<(), EvalError> {
        same_rows(&labels, &predictions)?;
        let n = self.num_columns();
        if labels.ncols() != n || predictions.ncols() != n {
            return Err(EvalError::Shape(format!(
                "labels with {} and predictions with {} columns for {n} columns",
                labels.ncols(),
                predictions.ncols()
            )));
        }
        let mask = value_mask(mask, labels.nrows(), n)?;
        let counted = |r: usize, c: usize| {
            mask.as_ref()
                .is_none_or(|m| m[[r, if m.ncols() == 1 { 0 } else { c }]] != 0.0)
        };
        // Check everything first so a bad value leaves the evaluation unchanged.
        for r in 0..labels.nrows() {
            for c in 0..n {
                if !counted(r, c) {
                    continue;
                }
                for (what, value) in [
                    ("label", labels[[r, c]]),
                    ("prediction", predictions[[r, c]]),
                ] {
                    if !value.is_finite() {
                        return Err(EvalError::NonFinite {
                            what,
                            row: r,
                            column: c,
                            value,
                        });
                    }
                }
            }
        }
        for r in 0..labels.nrows() {
            for (c, column) in self.columns.iter_mut().enumerate() {
                if counted(r, c) {
                    column.add(f64::from(labels[[r, c]]), f64::from(predictions[[r, c]]));
                }
            }
        }
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<(), EvalError> {
        if other.num_columns() != self.num_columns() {
            return Err(EvalError::Incompatible(format!(
                "{} columns against {}",
                self.num_columns(),
                other.num_columns()
            )));
        }
        for (mine, theirs) in self.columns.iter_mut().zip(&other.columns) {
            mine.merge(theirs);
        }
        if self.column_names.is_none() {
            self.column_names.clone_from(&other.column_names);
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.columns.iter_mut().for_each(|c| *c = Column::default());
    }

    fn stats(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Regression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = (0..self.num_columns())
            .map(|c| self.column_name(c).len())
            .max()
            .unwrap_or(1)
            .max(6);
        writeln!(
            f,
            "========================Regression Metrics========================"
        )?;
        writeln!(
            f,
            " {:<width$}  {:<12}  {:<12}  {:<12}  {:<12}  {:<12}  Count",
            "Column", "MSE", "MAE", "RMSE", "R^2", "Pearson"
        )?;
        for c in 0..self.num_columns() {
            writeln!(
                f,
                " {:<width$}  {:<12.6e}  {:<12.6e}  {:<12.6e}  {:<12.6}  {:<12.6}  {}",
                self.column_name(c),
                self.mse(c),
                self.mae(c),
                self.rmse(c),
                self.r2(c),
                self.pearson(c),
                self.count(c)
            )?;
        }
        if self.num_columns() > 1 {
            writeln!(
                f,
                " {:<width$}  {:<12.6e}  {:<12.6e}  {:<12.6e}  {:<12.6}",
                "Average",
                self.average_mse(),
                self.average_mae(),
                self.average_rmse(),
                self.average_r2()
            )?;
        }
        write!(
            f,
            "=================================================================="
        )
    }
}
