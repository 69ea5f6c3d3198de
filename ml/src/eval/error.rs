//! The error type of evaluations.

/// Everything that can go wrong while evaluating predictions or merging evaluations.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Labels, predictions or masks do not have the shapes the evaluation needs.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A label is not a valid class (index out of range, not an integer, or an all-zero one-hot
    /// row).
    #[error("invalid label at row {row}: {what}")]
    Label {
        /// Row (example) index in the minibatch.
        row: usize,
        /// What was wrong.
        what: String,
    },
    /// A prediction or label is NaN or infinite.
    #[error("non-finite {what} {value} at row {row}, column {column}")]
    NonFinite {
        /// `"prediction"` or `"label"`.
        what: &'static str,
        /// Row (example) index in the minibatch.
        row: usize,
        /// Column index.
        column: usize,
        /// The value.
        value: f32,
    },
    /// Two evaluations cannot be merged (different numbers of classes, columns or settings).
    #[error("cannot merge evaluations: {0}")]
    Incompatible(String),
    /// An evaluation setting is not valid.
    #[error("invalid evaluation setting: {0}")]
    Config(String),
    /// JSON could not be written or parsed.
    #[error("evaluation JSON: {0}")]
    Json(#[from] serde_json::Error),
}
