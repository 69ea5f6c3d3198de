//! Data loading: minibatches, IDX and CSV readers, batching iterators and normalizers.
//!
//! Everything takes paths as arguments; nothing here knows where data sets live.
//!
//! ```no_run
//! use ember_ml::data::{mnist, Normalizer, Split};
//! let train = mnist("data/mnist", Split::Train)?;
//! let norm = Normalizer::standardize().fit(&train)?;
//! for (epoch, seed) in (0..2u64).map(|e| (e, 42 + e)) {
//!     for mut batch in train.shuffled_batches(128, seed)? {
//!         norm.transform(&mut batch)?;
//!         // train on batch.features() / batch.features_nd() and batch.labels() ...
//!     }
//!     # let _ = epoch;
//! }
//! # Ok::<(), ember_ml::data::DataError>(())
//! ```

mod batches;
mod csv;
mod error;
mod idx;
mod minibatch;
mod mnist;
mod normalize;
mod source;

pub use batches::Batches;
pub use csv::{
    read_sklearn_csv, sklearn_header, CsvBatches, CsvReader, Header, LabelColumn, SklearnHeader,
    Target,
};
pub use error::DataError;
pub use idx::{read_idx, read_idx_at, read_idx_from, IdxArray, IdxType};
pub use minibatch::{one_hot, permutation, MiniBatch};
pub use mnist::{mnist, mnist_files, mnist_paths, Split, MNIST_CLASSES};
pub use normalize::{ColumnStats, Normalizer, NormalizerKind};
