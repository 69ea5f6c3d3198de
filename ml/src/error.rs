//! The error type of the ML core: tensors, networks, optimizers and model files.

use std::path::PathBuf;

/// Everything that can go wrong while building, running, training, saving or loading a network.
///
/// Model-file errors name what was wrong (the path where there is one, the byte offset, the
/// tensor); none of them is ever a panic.
#[derive(thiserror::Error)]
pub enum MlError {
    /// Arrays or settings do not fit together (shapes, sizes, lengths).
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A network or optimizer configuration is not valid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No backend could be loaded for the requested devices.
    #[error("no usable backend: {0}")]
    Backend(String),
    /// A model file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A model file ended before the bytes its header announces.
    #[error("model file truncated: {what} needs bytes up to {needed} but the file has {len}")]
    Truncated {
        /// What was being read.
        what: String,
        /// Bytes needed (end offset).
        needed: u64,
        /// Bytes present.
        len: u64,
    },
    /// A model file's header or layout is malformed.
    #[error("corrupt model file at byte {offset}: {what}")]
    Corrupt {
        /// Byte offset of the problem (0 when it concerns the whole header).
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// The tensor data does not match the checksum recorded when the file was written.
    #[error("corrupt model file: checksum of the tensor data is {found:#010x}, header says {expected:#010x}")]
    Checksum {
        /// The checksum recorded in the header.
        expected: u32,
        /// The checksum of the bytes found.
        found: u32,
    },
    /// A tensor has a data type this crate cannot read.
    #[error("tensor {name} has unsupported dtype {dtype} (only F32 is supported)")]
    Dtype {
        /// The tensor.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// A tensor the configuration needs is not in the file.
    #[error("model file lacks tensor {name}")]
    MissingTensor {
        /// The tensor.
        name: String,
    },
    /// A tensor in the file has another shape than the configuration gives it.
    #[error(
        "tensor {name} has shape {found:?} in the file but the configuration needs {expected:?}"
    )]
    TensorShape {
        /// The tensor.
        name: String,
        /// Shape the configuration implies.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A model file is bad; the inner error says how.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        #[source]
        source: Box<MlError>,
    },
    /// Reading or writing a model at a storage URL failed; the message names the URL.
    #[error(transparent)]
    Storage(#[from] ember_storage::StorageError),
    /// Loading or preparing data failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// An evaluation failed.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// A job on the engine failed (a distributed training or evaluation stage); the error
    /// names the stage, partition and cause.
    #[error(transparent)]
    Engine(#[from] ember_engine::EngineError),
    /// Distributed evaluation or inference input that cannot feed the network (a missing,
    /// non-numeric or wrong-width column, a keyed tensor of the wrong shape), or network copies
    /// beyond the memory budget.
    #[error(transparent)]
    Inference(#[from] crate::distributed::InferenceError),
    /// A training checkpoint cannot be used: from another network, or unreadable.
    #[error("checkpoint {url}: {reason}")]
    Checkpoint {
        /// Where the checkpoint is.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Gradient sharing failed: a diverged update, a damaged message, a bad setting.
    #[error(transparent)]
    Sharing(#[from] crate::distributed::sharing::SharingError),
    /// JSON configuration could not be parsed.
    #[error("bad JSON in {what}: {source}")]
    Json {
        /// Which JSON document.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

impl MlError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MlError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the ML core.
pub type Result<T, E = MlError> = std::result::Result<T, E>;

/// Debug prints the message, as Display does: it is what `fn main() -> Result<(), MlError>` and
/// `unwrap()` show a person, so it reads as a sentence, not as a struct dump.
impl std::fmt::Debug for MlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
