//! Evaluations saved as JSON at any storage URL (`file://`, `s3://`, `memory://`, `hdfs://`, a
//! bare path) and loaded back with every count, so a stored evaluation can still be merged.

use ember_storage::{Location, StorageConfig};

use super::Evaluation;
use crate::error::{MlError, Result};

/// Writes `eval` as JSON at `url` in one PUT (readers see the old object or the whole new one).
pub fn save_json_url<E: Evaluation>(url: &str, config: &StorageConfig, eval: &E) -> Result<()> {
    let json = eval.to_json()?;
    Location::resolve(url, config)?.put(json.into_bytes())?;
    Ok(())
}

/// Reads an evaluation written by [`save_json_url`]; a missing object is a storage error
/// naming the URL, and JSON of another evaluation (or a truncated object) a JSON error naming it.
pub fn load_json_url<E: Evaluation>(url: &str, config: &StorageConfig) -> Result<E> {
    let bytes = Location::resolve(url, config)?.read_all()?;
    let text = std::str::from_utf8(&bytes).map_err(|e| MlError::Corrupt {
        offset: e.valid_up_to() as u64,
        what: format!("evaluation {url} is not UTF-8 JSON"),
    })?;
    serde_json::from_str(text).map_err(|source| MlError::Json {
        what: format!(
            "evaluation {url} (expected a {})",
            std::any::type_name::<E>()
                .rsplit("::")
                .next()
                .unwrap_or("evaluation")
        ),
        source,
    })
}
