//! Normalizers: per-column statistics fit on training data, then applied to any data set.
//! They serialize with serde, so they can be saved with a model and applied at inference.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use super::{DataError, MiniBatch};

/// Per-column count, mean, sum of squared deviations, minimum and maximum, mergeable across
/// partitions (Chan et al.'s parallel variance), so a normalizer can be fit on distributed data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    count: Vec<u64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    min: Vec<f32>,
    max: Vec<f32>,
}

impl ColumnStats {
    /// Empty statistics for `columns` columns.
    pub fn new(columns: usize) -> Self {
        ColumnStats {
            count: vec![0; columns],
            mean: vec![0.0; columns],
            m2: vec![0.0; columns],
            // Finite sentinels (so the statistics serialize to JSON); every observed value is
            // finite and replaces them.
            min: vec![f32::MAX; columns],
            max: vec![f32::MIN; columns],
        }
    }

    /// Number of columns.
    pub fn columns(&self) -> usize {
        self.count.len()
    }

    /// Adds the rows of `data`; where `mask` (`[rows, 1]` or `[rows, columns]`) is 0 a value is
    /// left out. Fails on a width mismatch or a non-finite value.
    pub fn update(
        &mut self,
        data: ArrayView2<'_, f32>,
        mask: Option<ArrayView2<'_, f32>>,
    ) -> Result<(), DataError> {
        if data.ncols() != self.columns() {
            return Err(DataError::Shape(format!(
                "{} columns given to statistics of {} columns",
                data.ncols(),
                self.columns()
            )));
        }
        if let Some(m) = &mask {
            if m.nrows() != data.nrows() || (m.ncols() != 1 && m.ncols() != data.ncols()) {
                return Err(DataError::Shape(format!(
                    "mask of shape {:?} does not fit data of shape {:?}",
                    m.shape(),
                    data.shape()
                )));
            }
        }
        for (r, row) in data.rows().into_iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if let Some(m) = &mask {
                    if m[[r, if m.ncols() == 1 { 0 } else { c }]] == 0.0 {
                        continue;
                    }
                }
                if !v.is_finite() {
                    return Err(DataError::NonFinite {
                        row: r,
                        column: c,
                        value: v,
                    });
                }
                self.count[c] += 1;
                let x = f64::from(v);
                let delta = x - self.mean[c];
                self.mean[c] += delta / self.count[c] as f64;
                self.m2[c] += delta * (x - self.mean[c]);
                self.min[c] = self.min[c].min(v);
                self.max[c] = self.max[c].max(v);
            }
        }
        Ok(())
    }

    /// Adds the statistics of another partition.
    pub fn merge(&mut self, other: &ColumnStats) -> Result<(), DataError> {
        if other.columns() != self.columns() {
            return Err(DataError::Shape(format!(
                "cannot merge statistics of {} columns into {}",
                other.columns(),
                self.columns()
            )));
        }
        for c in 0..self.columns() {
            let (na, nb) = (self.count[c] as f64, other.count[c] as f64);
            if other.count[c] == 0 {
                continue;
            }
            let n = na + nb;
            let delta = other.mean[c] - self.mean[c];
            self.mean[c] += delta * nb / n;
            self.m2[c] += other.m2[c] + delta * delta * na * nb / n;
            self.count[c] += other.count[c];
            self.min[c] = self.min[c].min(other.min[c]);
            self.max[c] = self.max[c].max(other.max[c]);
        }
        Ok(())
    }

    /// Values seen per column.
    pub fn count(&self) -> &[u64] {
        &self.count
    }

    /// Mean per column.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Population standard deviation per column (divided by the count, as NumPy's `std` and
    /// scikit-learn's `StandardScaler`).
    pub fn std(&self) -> Vec<f64> {
        self.m2
            .iter()
            .zip(&self.count)
            .map(|(&m2, &n)| {
                if n == 0 {
                    0.0
                } else {
                    (m2 / n as f64).max(0.0).sqrt()
                }
            })
            .collect()
    }

    /// Minimum per column (`f32::MAX` for a column with no values).
    pub fn min(&self) -> &[f32] {
        &self.min
    }

    /// Maximum per column (`f32::MIN` for a column with no values).
    pub fn max(&self) -> &[f32] {
        &self.max
    }
}

/// How a [`Normalizer`] maps values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum NormalizerKind {
    /// `(x - mean) / std` per column; a constant column is only centred (its std counts as 1,
    /// as in scikit-learn's `StandardScaler`).
    Standardize,
    /// `lo + (x - min) * (hi - lo) / (max - min)` per column; a constant column maps to `lo`.
    MinMax {
        /// The value the column minimum maps to.
        lo: f32,
        /// The value the column maximum maps to.
        hi: f32,
    },
}

/// A per-column affine map (`x * scale + shift`) derived from statistics fit on training data,
/// for features and optionally labels (regression targets).
///
/// ```
/// use ember_ml::data::{MiniBatch, Normalizer};
/// use ndarray::array;
/// let train = MiniBatch::new(array![[1.0, 10.0], [3.0, 30.0]], array![[0.0], [1.0]])?;
/// let norm = Normalizer::standardize().fit(&train)?;
/// let mut test = MiniBatch::new(array![[2.0, 20.0]], array![[1.0]])?;
/// norm.transform(&mut test)?;
/// assert_eq!(test.features()[[0, 0]], 0.0);
/// # Ok::<(), ember_ml::data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    kind: NormalizerKind,
    fit_labels: bool,
    features: Option<ColumnStats>,
    labels: Option<ColumnStats>,
}

impl Normalizer {
    /// A standardizing normalizer (zero mean, unit variance), not yet fit.
    pub fn standardize() -> Self {
        Normalizer {
            kind: NormalizerKind::Standardize,
            fit_labels: false,
            features: None,
            labels: None,
        }
    }

    /// A min-max normalizer onto `[lo, hi]`, not yet fit.
    pub fn min_max(lo: f32, hi: f32) -> Self {
        Normalizer {
            kind: NormalizerKind::MinMax { lo, hi },
            fit_labels: false,
            features: None,
            labels: None,
        }
    }

    /// Also normalizes labels (for regression targets); [`Normalizer::revert_labels`] maps
    /// predictions back.
    pub fn with_labels(mut self) -> Self {
        self.fit_labels = true;
        self
    }

    /// The kind of map.
    pub fn kind(&self) -> NormalizerKind {
        self.kind
    }

    /// Fits on one data set (replacing earlier statistics).
    pub fn fit(self, data: &MiniBatch) -> Result<Self, DataError> {
        self.fit_batches(std::iter::once(data))
    }

    /// Fits on a data set given as minibatches, in one pass (replacing earlier statistics). Masked
    /// values are left out.
    pub fn fit_batches<'a>(
        mut self,
        batches: impl IntoIterator<Item = &'a MiniBatch>,
    ) -> Result<Self, DataError> {
        self.features = None;
        self.labels = None;
        for batch in batches {
            self.update(batch)?;
        }
        if self
            .features
            .as_ref()
            .is_none_or(|s| s.count.iter().all(|&n| n == 0))
        {
            return Err(DataError::Shape(
                "a normalizer cannot be fit on no data".into(),
            ));
        }
        Ok(self)
    }

    /// Adds one minibatch to the statistics (for fitting incrementally or per partition).
    pub fn update(&mut self, batch: &MiniBatch) -> Result<(), DataError> {
        let stats = self
            .features
            .get_or_insert_with(|| ColumnStats::new(batch.num_features()));
        stats.update(
            batch.features().view(),
            batch.features_mask().map(|m| m.view()),
        )?;
        if self.fit_labels {
            let stats = self
                .labels
                .get_or_insert_with(|| ColumnStats::new(batch.num_labels()));
            stats.update(batch.labels().view(), batch.labels_mask().map(|m| m.view()))?;
        }
        Ok(())
    }

    /// Merges the statistics of a normalizer fit on another partition.
    pub fn merge(&mut self, other: &Normalizer) -> Result<(), DataError> {
        if self.kind != other.kind || self.fit_labels != other.fit_labels {
            return Err(DataError::Shape(
                "cannot merge normalizers of different kinds".into(),
            ));
        }
        fn merge_into(
            a: &mut Option<ColumnStats>,
            b: &Option<ColumnStats>,
        ) -> Result<(), DataError> {
            match (a.as_mut(), b) {
                (_, None) => Ok(()),
                (None, Some(b)) => {
                    *a = Some(b.clone());
                    Ok(())
                }
                (Some(a), Some(b)) => a.merge(b),
            }
        }
        merge_into(&mut self.features, &other.features)?;
        merge_into(&mut self.labels, &other.labels)
    }

    /// Statistics of the features, once fit.
    pub fn feature_stats(&self) -> Option<&ColumnStats> {
        self.features.as_ref()
    }

    /// Statistics of the labels, once fit with [`Normalizer::with_labels`].
    pub fn label_stats(&self) -> Option<&ColumnStats> {
        self.labels.as_ref()
    }

    /// Per-column `(scale, shift)` so that `normalized = x * scale + shift`.
    fn affine(&self, stats: &ColumnStats) -> Vec<(f64, f64)> {
        let std = stats.std();
        (0..stats.columns())
            .map(|c| match self.kind {
                NormalizerKind::Standardize => {
                    let s = if std[c] > 0.0 { std[c] } else { 1.0 };
                    (1.0 / s, -stats.mean[c] / s)
                }
                NormalizerKind::MinMax { lo, hi } => {
                    let (min, max) = (f64::from(stats.min[c]), f64::from(stats.max[c]));
                    let range = max - min;
                    if stats.count[c] == 0 || range <= 0.0 {
                        (0.0, f64::from(lo))
                    } else {
                        let scale = (f64::from(hi) - f64::from(lo)) / range;
                        (scale, f64::from(lo) - min * scale)
                    }
                }
            })
            .collect()
    }

    fn apply(
        &self,
        stats: Option<&ColumnStats>,
        mut data: ArrayViewMut2<'_, f32>,
        revert: bool,
        what: &str,
    ) -> Result<(), DataError> {
        let stats =
            stats.ok_or_else(|| DataError::Shape(format!("normalizer not fit on {what}")))?;
        if data.ncols() != stats.columns() {
            return Err(DataError::Shape(format!(
                "normalizer fit on {} {what} columns applied to {}",
                stats.columns(),
                data.ncols()
            )));
        }
        let map = self.affine(stats);
        for mut row in data.rows_mut() {
            for (c, (v, &(scale, shift))) in row.iter_mut().zip(&map).enumerate() {
                let x = f64::from(*v);
                *v = match (revert, scale == 0.0) {
                    (false, _) => (x * scale + shift) as f32,
                    (true, false) => ((x - shift) / scale) as f32,
                    // A constant min-max column maps everything to `lo`: its value was the min.
                    (true, true) => stats.min[c],
                };
            }
        }
        Ok(())
    }

    /// Normalizes features `[n, n_features]` in place.
    pub fn transform_features(&self, features: ArrayViewMut2<'_, f32>) -> Result<(), DataError> {
        self.apply(self.features.as_ref(), features, false, "feature")
    }

    /// Normalizes a minibatch in place: its features, and its labels when fit with labels.
    pub fn transform(&self, batch: &mut MiniBatch) -> Result<(), DataError> {
        self.transform_features(batch.features_mut())?;
        if self.fit_labels {
            self.apply(self.labels.as_ref(), batch.labels_mut(), false, "label")?;
        }
        Ok(())
    }

    /// Maps normalized features back to the original scale (a constant min-max column cannot be
    /// recovered and comes back as its minimum).
    pub fn revert_features(&self, features: ArrayViewMut2<'_, f32>) -> Result<(), DataError> {
        self.apply(self.features.as_ref(), features, true, "feature")
    }

    /// Maps normalized labels (or a network's regression outputs) back to the original scale.
    pub fn revert_labels(&self, labels: ArrayViewMut2<'_, f32>) -> Result<(), DataError> {
        self.apply(self.labels.as_ref(), labels, true, "label")
    }

    /// A normalized copy of `features`.
    pub fn transformed(&self, features: &Array2<f32>) -> Result<Array2<f32>, DataError> {
        let mut out = features.clone();
        self.transform_features(out.view_mut())?;
        Ok(out)
    }
}
