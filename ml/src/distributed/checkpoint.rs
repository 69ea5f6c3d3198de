//! Training checkpoints: the replica (parameters, running statistics, optimizer state) as a
//! model file, plus where training stood, under a directory URL on any storage. The model file
//! is written first and `latest.json` (which names it) second, so a reader never sees progress
//! that its model file does not hold. An application restarted by `ember-submit --restarts`
//! resumes from the last one ([`super::DistributedNetwork::with_checkpoints`]).

use serde::{Deserialize, Serialize};

use super::replica::Replica;
use crate::error::{MlError, Result};
use crate::model_io::{self, LoadedModel};
use ember_storage::{Location, StorageConfig};

/// Where training stood when a checkpoint was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The epoch being trained (or just finished, with `epoch_done`).
    pub epoch: usize,
    /// Synchronizations of that epoch done.
    pub syncs_in_epoch: u64,
    /// Global steps done.
    pub global_step: u64,
    /// Global step number of the epoch's first step.
    pub epoch_first_step: u64,
    /// Whether the epoch was complete.
    pub epoch_done: bool,
}

#[derive(Serialize, Deserialize)]
struct Latest {
    model: String,
    progress: Progress,
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Writes a checkpoint of `rep` at `progress` under the directory URL `dir`.
pub fn save(dir: &str, config: &StorageConfig, rep: &Replica, progress: &Progress) -> Result<()> {
    let name = format!(
        "model-e{}-s{}.safetensors",
        progress.epoch, progress.global_step
    );
    let bytes = model_io::to_bytes(&rep.net, Some(&rep.opt))?;
    Location::resolve(&join(dir, &name), config)?.put(bytes)?;
    let latest = Latest {
        model: name,
        progress: progress.clone(),
    };
    let json = serde_json::to_vec_pretty(&latest).map_err(|source| MlError::Json {
        what: "checkpoint progress".into(),
        source,
    })?;
    Location::resolve(&join(dir, "latest.json"), config)?.put(json)?;
    tracing::info!(
        dir,
        epoch = progress.epoch,
        step = progress.global_step,
        "checkpoint saved"
    );
    Ok(())
}

/// The last checkpoint under `dir`, or `None` when there is none yet.
pub fn load(dir: &str, config: &StorageConfig) -> Result<Option<(LoadedModel, Progress)>> {
    let url = join(dir, "latest.json");
    let loc = Location::resolve(&url, config)?;
    if !loc.exists()? {
        return Ok(None);
    }
    let latest: Latest =
        serde_json::from_slice(&loc.read_all()?).map_err(|e| MlError::Checkpoint {
            url: url.clone(),
            reason: format!("unreadable progress file: {e}"),
        })?;
    if latest.model.contains('/') {
        return Err(MlError::Checkpoint {
            url,
            reason: format!("model name {} is not a file name", latest.model),
        });
    }
    let model = model_io::load_url(&join(dir, &latest.model), config)?;
    Ok(Some((model, latest.progress)))
}
