//! The error type of distributed evaluation and inference: input columns that cannot feed the
//! network, keyed tensors of the wrong shape, and network copies the memory budget cannot hold.

/// What is wrong with the input of a distributed evaluation or inference job, found before
/// the job starts wherever the schema or the settings tell (every variant names the column or
/// setting, and how to fix it).
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// A column the job needs is not in the input.
    #[error("column `{column}` ({role}) is not in the input; its columns are {available:?}")]
    MissingColumn {
        /// The column asked for.
        column: String,
        /// What it was asked for: "key column" or "feature column".
        role: &'static str,
        /// The columns the input has.
        available: Vec<String>,
    },
    /// A feature column holds something other than numbers (or lists of numbers).
    #[error(
        "feature column `{column}` has type {data_type}; features must be numeric (integers or \
         floats), or a list of floats for a column holding a whole example"
    )]
    NotNumeric {
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: String,
    },
    /// The feature columns give another number of values per row than the network takes.
    #[error(
        "feature column `{column}` gives {found} values per row but the network takes {expected} \
         (input shape {input_shape:?}); pick the right column or network"
    )]
    FeatureWidth {
        /// The column (or the assembled columns, comma-separated).
        column: String,
        /// Values per row found.
        found: usize,
        /// Values the network takes per example.
        expected: usize,
        /// The network's input shape.
        input_shape: Vec<usize>,
    },
    /// A keyed tensor (or its mask) does not have the shape of one example.
    #[error(
        "the {what} of key {key} has shape {found:?}; the network takes examples of shape \
         {expected:?} (or [1, ...] around it)"
    )]
    TensorShape {
        /// "tensor" or "mask".
        what: &'static str,
        /// The key, as Debug prints it.
        key: String,
        /// Shape found.
        found: Vec<usize>,
        /// One example's shape.
        expected: Vec<usize>,
    },
    /// A setting is out of range (batch size or copies 0, for instance).
    #[error("{setting} = {value}: {reason}")]
    Setting {
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: usize,
        /// Why it cannot be used.
        reason: String,
    },
    /// The network copies a process keeps do not fit its workers' memory budget.
    #[error(
        "eval_num_workers = {copies}: {per_worker} network copies per worker of {copy_bytes} \
         bytes each need {needed} bytes, but a worker's budget (ember.memory.storage) is \
         {budget} bytes; lower eval_num_workers or raise ember.memory.storage"
    )]
    MemoryBudget {
        /// Copies asked for per process.
        copies: usize,
        /// Copies one worker of the process holds at most.
        per_worker: usize,
        /// Bytes charged for one copy.
        copy_bytes: u64,
        /// Bytes one worker needs.
        needed: u64,
        /// A worker's host budget.
        budget: u64,
    },
}
