//! The minibatch: features, labels and optional masks for a set of examples.

use ndarray::{concatenate, Array1, Array2, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, IxDyn};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::{Batches, DataError};

/// A set of examples: features `[batch, n_features]`, labels `[batch, n_labels]` (one-hot class
/// labels or regression targets) and optional masks. A whole data set is a `MiniBatch` too; iterate
/// over it in smaller ones with [`MiniBatch::batches`] or [`MiniBatch::shuffled_batches`].
///
/// Masks hold 1.0 where a value is present and 0.0 where it is masked out. A mask has either one
/// column (one flag per example) or as many columns as the array it masks (one flag per value).
///
/// The feature shape says how one row of features is laid out (for example `[1, 28, 28]` for an
/// MNIST image with one channel), so a convolutional network can view the features as
/// `[batch, 1, 28, 28]` with [`MiniBatch::features_nd`]; rows are stored in row-major order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MiniBatchRepr")]
pub struct MiniBatch {
    features: Array2<f32>,
    labels: Array2<f32>,
    features_mask: Option<Array2<f32>>,
    labels_mask: Option<Array2<f32>>,
    feature_shape: Vec<usize>,
}

/// The serialized form, checked when read back.
#[derive(Deserialize)]
struct MiniBatchRepr {
    features: Array2<f32>,
    labels: Array2<f32>,
    features_mask: Option<Array2<f32>>,
    labels_mask: Option<Array2<f32>>,
    feature_shape: Vec<usize>,
}

impl TryFrom<MiniBatchRepr> for MiniBatch {
    type Error = DataError;

    fn try_from(r: MiniBatchRepr) -> Result<Self, DataError> {
        let mut batch =
            MiniBatch::new(r.features, r.labels)?.with_feature_shape(r.feature_shape)?;
        if let Some(m) = r.features_mask {
            batch = batch.with_features_mask(m)?;
        }
        if let Some(m) = r.labels_mask {
            batch = batch.with_labels_mask(m)?;
        }
        Ok(batch)
    }
}

fn standard(a: Array2<f32>) -> Array2<f32> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

fn check_mask(mask: &Array2<f32>, rows: usize, cols: usize, what: &str) -> Result<(), DataError> {
    let (r, c) = mask.dim();
    if r != rows || (c != 1 && c != cols) {
        return Err(DataError::Shape(format!(
            "{what} mask has shape [{r}, {c}], expected [{rows}, 1] or [{rows}, {cols}]"
        )));
    }
    Ok(())
}

impl MiniBatch {
    /// A minibatch of `features` `[batch, n_features]` and `labels` `[batch, n_labels]`; the
    /// feature shape is `[n_features]`. Fails when the numbers of rows differ.
    pub fn new(features: Array2<f32>, labels: Array2<f32>) -> Result<Self, DataError> {
        let features = standard(features);
        let labels = standard(labels);
        if features.nrows() != labels.nrows() {
            return Err(DataError::Shape(format!(
                "features have {} rows but labels have {}",
                features.nrows(),
                labels.nrows()
            )));
        }
        let feature_shape = vec![features.ncols()];
        Ok(MiniBatch {
            features,
            labels,
            features_mask: None,
            labels_mask: None,
            feature_shape,
        })
    }

    /// Sets the layout of one feature row (for example `[1, 28, 28]`); its product must equal the
    /// number of feature columns.
    pub fn with_feature_shape(mut self, shape: Vec<usize>) -> Result<Self, DataError> {
        let product: usize = shape.iter().product();
        if shape.is_empty() || product != self.features.ncols() {
            return Err(DataError::Shape(format!(
                "feature shape {shape:?} does not hold {} feature columns",
                self.features.ncols()
            )));
        }
        self.feature_shape = shape;
        Ok(self)
    }

    /// Adds a feature mask, `[batch, 1]` or `[batch, n_features]`.
    pub fn with_features_mask(mut self, mask: Array2<f32>) -> Result<Self, DataError> {
        check_mask(&mask, self.len(), self.num_features(), "feature")?;
        self.features_mask = Some(standard(mask));
        Ok(self)
    }

    /// Adds a label mask, `[batch, 1]` or `[batch, n_labels]`.
    pub fn with_labels_mask(mut self, mask: Array2<f32>) -> Result<Self, DataError> {
        check_mask(&mask, self.len(), self.num_labels(), "label")?;
        self.labels_mask = Some(standard(mask));
        Ok(self)
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.features.nrows()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of feature columns.
    pub fn num_features(&self) -> usize {
        self.features.ncols()
    }

    /// Number of label columns (classes for one-hot labels, outputs for regression).
    pub fn num_labels(&self) -> usize {
        self.labels.ncols()
    }

    /// The features, `[batch, n_features]`.
    pub fn features(&self) -> &Array2<f32> {
        &self.features
    }

    /// The features, mutable in place (the shape cannot change).
    pub fn features_mut(&mut self) -> ArrayViewMut2<'_, f32> {
        self.features.view_mut()
    }

    /// The labels, `[batch, n_labels]`.
    pub fn labels(&self) -> &Array2<f32> {
        &self.labels
    }

    /// The labels, mutable in place (the shape cannot change).
    pub fn labels_mut(&mut self) -> ArrayViewMut2<'_, f32> {
        self.labels.view_mut()
    }

    /// The feature mask, if any.
    pub fn features_mask(&self) -> Option<&Array2<f32>> {
        self.features_mask.as_ref()
    }

    /// The label mask, if any.
    pub fn labels_mask(&self) -> Option<&Array2<f32>> {
        self.labels_mask.as_ref()
    }

    /// The layout of one feature row, for example `[1, 28, 28]`.
    pub fn feature_shape(&self) -> &[usize] {
        &self.feature_shape
    }

    /// The features viewed as `[batch, feature_shape...]`, for example `[batch, 1, 28, 28]`.
    pub fn features_nd(&self) -> ArrayViewD<'_, f32> {
        let mut shape = Vec::with_capacity(self.feature_shape.len() + 1);
        shape.push(self.len());
        shape.extend_from_slice(&self.feature_shape);
        self.features
            .view()
            .into_shape_with_order(IxDyn(&shape))
            .expect("features are in standard layout and the feature shape matches their width")
    }

    /// Splits into features, labels, feature mask and label mask.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> (
        Array2<f32>,
        Array2<f32>,
        Option<Array2<f32>>,
        Option<Array2<f32>>,
    ) {
        (
            self.features,
            self.labels,
            self.features_mask,
            self.labels_mask,
        )
    }

    /// The class index of every example (the position of the largest label value), for one-hot
    /// labels.
    pub fn label_indices(&self) -> Vec<usize> {
        self.labels
            .rows()
            .into_iter()
            .map(|row| {
                let mut best = 0;
                for (i, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = i;
                    }
                }
                best
            })
            .collect()
    }

    /// One flag per example from the label mask: an example counts when any of its label values
    /// is unmasked. `None` when there is no label mask.
    pub fn example_mask(&self) -> Option<Array1<f32>> {
        self.labels_mask.as_ref().map(|m| {
            m.rows()
                .into_iter()
                .map(|r| {
                    if r.iter().any(|&v| v != 0.0) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        })
    }

    /// The examples at `indices`, in that order (an index may repeat). Fails on an index out of
    /// range.
    pub fn select(&self, indices: &[usize]) -> Result<MiniBatch, DataError> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::Shape(format!(
                "example index {bad} out of range for {} examples",
                self.len()
            )));
        }
        Ok(self.select_unchecked(indices))
    }

    pub(crate) fn select_unchecked(&self, indices: &[usize]) -> MiniBatch {
        let pick = |a: &Array2<f32>| a.select(Axis(0), indices);
        MiniBatch {
            features: pick(&self.features),
            labels: pick(&self.labels),
            features_mask: self.features_mask.as_ref().map(pick),
            labels_mask: self.labels_mask.as_ref().map(pick),
            feature_shape: self.feature_shape.clone(),
        }
    }

    /// Examples `start..end` as a new minibatch (clamped to the data).
    pub fn slice(&self, start: usize, end: usize) -> MiniBatch {
        let end = end.min(self.len());
        let start = start.min(end);
        let cut = |a: &Array2<f32>| a.slice(ndarray::s![start..end, ..]).to_owned();
        MiniBatch {
            features: cut(&self.features),
            labels: cut(&self.labels),
            features_mask: self.features_mask.as_ref().map(cut),
            labels_mask: self.labels_mask.as_ref().map(cut),
            feature_shape: self.feature_shape.clone(),
        }
    }

    /// Splits into the first `at` examples and the rest (for example training and test sets).
    pub fn split_at(&self, at: usize) -> (MiniBatch, MiniBatch) {
        (self.slice(0, at), self.slice(at, self.len()))
    }

    /// Stacks minibatches with the same columns and feature shape into one. Masks are kept when
    /// every part has one of the same width. Fails on an empty list or parts that do not match.
    pub fn concat(parts: &[MiniBatch]) -> Result<MiniBatch, DataError> {
        let first = parts
            .first()
            .ok_or_else(|| DataError::Shape("no minibatches to concatenate".into()))?;
        for (i, p) in parts.iter().enumerate() {
            if p.num_features() != first.num_features()
                || p.num_labels() != first.num_labels()
                || p.feature_shape != first.feature_shape
            {
                return Err(DataError::Shape(format!(
                    "minibatch {i} has {} features {:?} and {} labels; minibatch 0 has {} \
                     features {:?} and {} labels",
                    p.num_features(),
                    p.feature_shape,
                    p.num_labels(),
                    first.num_features(),
                    first.feature_shape,
                    first.num_labels()
                )));
            }
        }
        let stack = |get: &dyn Fn(&MiniBatch) -> ArrayView2<'_, f32>| {
            let views: Vec<_> = parts.iter().map(get).collect();
            concatenate(Axis(0), &views).map_err(|e| DataError::Shape(e.to_string()))
        };
        let mask = |get: &dyn Fn(&MiniBatch) -> Option<&Array2<f32>>,
                    full: &dyn Fn(&MiniBatch) -> usize|
         -> Result<Option<Array2<f32>>, DataError> {
            if parts.iter().all(|p| get(p).is_none()) {
                return Ok(None);
            }
            // Parts without a mask get an all-ones mask of the width used by the others.
            let width = parts
                .iter()
                .filter_map(|p| get(p).map(|m| m.ncols()))
                .max()
                .unwrap_or(1);
            let owned: Vec<Array2<f32>> = parts
                .iter()
                .map(|p| match get(p) {
                    Some(m) if m.ncols() == width => m.clone(),
                    Some(m) => {
                        // [n, 1] mask widened to [n, width].
                        let mut w = Array2::zeros((m.nrows(), width));
                        for (mut row, v) in w.rows_mut().into_iter().zip(m.column(0).iter()) {
                            row.fill(*v);
                        }
                        w
                    }
                    None => Array2::ones((p.len(), if width == 1 { 1 } else { full(p) })),
                })
                .collect();
            let views: Vec<_> = owned.iter().map(|m| m.view()).collect();
            concatenate(Axis(0), &views)
                .map(Some)
                .map_err(|e| DataError::Shape(e.to_string()))
        };
        Ok(MiniBatch {
            features: stack(&|p| p.features.view())?,
            labels: stack(&|p| p.labels.view())?,
            features_mask: mask(&|p| p.features_mask.as_ref(), &|p| p.num_features())?,
            labels_mask: mask(&|p| p.labels_mask.as_ref(), &|p| p.num_labels())?,
            feature_shape: first.feature_shape.clone(),
        })
    }

    /// Shuffles the examples in place with a seeded random permutation (the same seed gives the
    /// same order).
    pub fn shuffle(&mut self, seed: u64) {
        let order = permutation(self.len(), seed);
        *self = self.select_unchecked(&order);
    }

    /// Iterates over consecutive minibatches of `batch_size` examples (the last may be smaller).
    /// Fails when `batch_size` is 0.
    pub fn batches(&self, batch_size: usize) -> Result<Batches<'_>, DataError> {
        Batches::new(self, batch_size, None)
    }

    /// Iterates over minibatches of `batch_size` examples in a seeded random order. Use a
    /// different seed per epoch (for example `seed + epoch`) to see a new order each epoch.
    pub fn shuffled_batches(&self, batch_size: usize, seed: u64) -> Result<Batches<'_>, DataError> {
        Batches::new(self, batch_size, Some(permutation(self.len(), seed)))
    }
}

/// A seeded random permutation of `0..n`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    order
}

/// One-hot labels `[n, num_classes]` for class indices; fails on an index not below
/// `num_classes`.
pub fn one_hot(indices: &[usize], num_classes: usize) -> Result<Array2<f32>, DataError> {
    let mut labels = Array2::zeros((indices.len(), num_classes));
    for (row, &class) in indices.iter().enumerate() {
        if class >= num_classes {
            return Err(DataError::Shape(format!(
                "class index {class} at row {row} is not below {num_classes} classes"
            )));
        }
        labels[[row, class]] = 1.0;
    }
    Ok(labels)
}

/// A minibatch is charged its arrays' buffers by the block manager, so a cached
/// `Rdd<MiniBatch>` at MEMORY_ONLY counts its true size (what Spark under-counts).
impl ember_engine::SizeOf for MiniBatch {
    fn heap_bytes(&self) -> usize {
        self.features.heap_bytes()
            + self.labels.heap_bytes()
            + self.features_mask.as_ref().map_or(0, |m| m.heap_bytes())
            + self.labels_mask.as_ref().map_or(0, |m| m.heap_bytes())
            + self.feature_shape.capacity() * std::mem::size_of::<usize>()
    }
}
