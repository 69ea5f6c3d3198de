//! MNIST: the handwritten digits in their original IDX files.

use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::{one_hot, read_idx, DataError, MiniBatch};

/// Which part of a data set to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training set (60,000 MNIST images).
    Train,
    /// The test set (10,000 MNIST images).
    Test,
}

/// Number of MNIST classes (the digits 0 to 9).
pub const MNIST_CLASSES: usize = 10;

/// The image and label files of an MNIST split inside `dir`, with the original file names
/// (`train-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`, ...). A name without `.gz` is
/// used when only the uncompressed file exists.
pub fn mnist_paths(dir: impl AsRef<Path>, split: Split) -> (PathBuf, PathBuf) {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let pick = |stem: String| {
        let gz = dir.as_ref().join(format!("{stem}.gz"));
        let plain = dir.as_ref().join(&stem);
        if !gz.exists() && plain.exists() {
            plain
        } else {
            gz
        }
    };
    (
        pick(format!("{prefix}-images-idx3-ubyte")),
        pick(format!("{prefix}-labels-idx1-ubyte")),
    )
}

/// Loads an MNIST split from `dir`: features `[n, 784]` scaled to `[0, 1]` (pixel / 255), one-hot
/// labels `[n, 10]`, and feature shape `[1, 28, 28]` (one channel) for convolutional networks.
pub fn mnist(dir: impl AsRef<Path>, split: Split) -> Result<MiniBatch, DataError> {
    let (images_path, labels_path) = mnist_paths(dir, split);
    mnist_files(&images_path, &labels_path)
}

/// Loads MNIST-format images and labels from two IDX files (see [`mnist`]). The images must be
/// a 3-D `u8` array and the labels a 1-D `u8` array of the same length with values below 10.
pub fn mnist_files(images_path: &Path, labels_path: &Path) -> Result<MiniBatch, DataError> {
    let images = read_idx(images_path)?;
    let labels = read_idx(labels_path)?;
    let pixels = images
        .as_u8()
        .filter(|_| images.dims.len() == 3)
        .ok_or_else(|| DataError::Invalid {
            path: images_path.to_path_buf(),
            what: format!(
                "expected a 3-D array of u8 images, found {:?} of {:?}",
                images.dims, images.kind
            ),
        })?;
    let classes = labels
        .as_u8()
        .filter(|_| labels.dims.len() == 1)
        .ok_or_else(|| DataError::Invalid {
            path: labels_path.to_path_buf(),
            what: format!(
                "expected a 1-D array of u8 labels, found {:?} of {:?}",
                labels.dims, labels.kind
            ),
        })?;
    let (count, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
    if count != classes.len() {
        return Err(DataError::CountMismatch {
            images: images_path.to_path_buf(),
            image_count: count,
            labels: labels_path.to_path_buf(),
            label_count: classes.len(),
        });
    }
    if let Some(pos) = classes
        .iter()
        .position(|&c| usize::from(c) >= MNIST_CLASSES)
    {
        return Err(DataError::Invalid {
            path: labels_path.to_path_buf(),
            what: format!(
                "label {} at byte {} is not a digit 0..9",
                classes[pos],
                8 + pos // after the magic number and the one dimension
            ),
        });
    }
    let scaled: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    let features = Array2::from_shape_vec((count, rows * cols), scaled)
        .map_err(|e| DataError::Shape(e.to_string()))?;
    let indices: Vec<usize> = classes.iter().map(|&c| usize::from(c)).collect();
    let labels = one_hot(&indices, MNIST_CLASSES)?;
    tracing::debug!(path = %images_path.display(), count, rows, cols, "loaded MNIST images");
    MiniBatch::new(features, labels)?.with_feature_shape(vec![1, rows, cols])
}
