//! Model files: a network's configuration, parameters, running statistics and (optionally) its
//! optimizer state in one safetensors file.
//!
//! Layout of the file (readable with Python's `safetensors.numpy.load_file`):
//! - tensors `layers.{i}.weight`, `layers.{i}.bias` (PyTorch's layouts: dense `[out, in]`, conv
//!   `[out, in, kh, kw]`), `layers.{i}.running_mean` / `running_var` for batch norm;
//! - with an optimizer, its flat state per slot: `optimizer.velocity`, or `optimizer.m` and
//!   `optimizer.v`, each of shape `[num_params]` in the order of the parameters above;
//! - metadata: `ember.format` (`ember-ml/1`), `ember.config` (the [`NetworkConfig`] JSON),
//!   `ember.optimizer` (optimizer configuration and step count, JSON) and `ember.crc32`.
//!
//! Files are written to a temporary name and renamed, so a crash never leaves a half-written
//! model under the final name. Truncated, corrupt or mismatched files give typed errors.
//! [`to_bytes`] / [`from_bytes`] do the same in memory, for storage layers that move bytes.

pub mod safetensors;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{MlError, Result};
use crate::nn::{Network, NetworkConfig, TensorKind};
use crate::optim::{Optimizer, OptimizerConfig};

/// Value of the `ember.format` metadata key.
pub const FORMAT: &str = "ember-ml/1";

#[derive(Serialize, Deserialize)]
struct OptimizerMeta {
    config: OptimizerConfig,
    step: u64,
}

/// A network read from a model file, with its optimizer when the file holds one.
#[derive(Debug)]
pub struct LoadedModel {
    /// The network, parameters and running statistics restored.
    pub network: Network,
    /// The optimizer with its state, when it was saved.
    pub optimizer: Option<Optimizer>,
}

/// Serializes a network (and optionally its optimizer) to safetensors bytes.
pub fn to_bytes(net: &Network, opt: Option<&Optimizer>) -> Result<Vec<u8>> {
    let mut tensors: Vec<(String, Vec<usize>, &[f32])> = net
        .tensors()
        .iter()
        .map(|t| {
            let src = match t.kind {
                TensorKind::Param => net.params(),
                TensorKind::Buffer => net.buffers(),
            };
            (t.name.clone(), t.shape.clone(), &src[t.range.clone()])
        })
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert("ember.format".to_string(), FORMAT.to_string());
    meta.insert("ember.config".to_string(), net.config().to_json());
    if let Some(o) = opt {
        if o.num_params() != net.num_params() {
            return Err(MlError::Shape(format!(
                "optimizer for {} parameters saved with a network of {}",
                o.num_params(),
                net.num_params()
            )));
        }
        let n = o.num_params();
        for (s, slot) in o.config().method.slot_names().iter().enumerate() {
            tensors.push((
                format!("optimizer.{slot}"),
                vec![n],
                &o.state()[s * n..(s + 1) * n],
            ));
        }
        let m = OptimizerMeta {
            config: *o.config(),
            step: o.step_count(),
        };
        meta.insert(
            "ember.optimizer".to_string(),
            serde_json::to_string(&m).expect("optimizer config serializes"),
        );
    }
    Ok(safetensors::write(&tensors, &meta))
}

/// Rebuilds a network (and optimizer, when saved) from [`to_bytes`] output.
pub fn from_bytes(bytes: &[u8]) -> Result<LoadedModel> {
    let st = safetensors::read(bytes)?;
    match st.metadata.get("ember.format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(MlError::Corrupt {
                offset: 8,
                what: format!("unknown format {other:?}"),
            })
        }
        None => {
            return Err(MlError::Corrupt {
                offset: 8,
                what: "not an Ember model file (no ember.format metadata)".into(),
            })
        }
    }
    let cfg_json = st
        .metadata
        .get("ember.config")
        .ok_or_else(|| MlError::Corrupt {
            offset: 8,
            what: "no ember.config metadata".into(),
        })?;
    let config = NetworkConfig::from_json(cfg_json)?;
    let mut net = Network::new(config)?;
    let mut expected: Vec<String> = Vec::new();
    for t in net.tensors().to_vec() {
        let entry = st
            .tensors
            .get(&t.name)
            .ok_or_else(|| MlError::MissingTensor {
                name: t.name.clone(),
            })?;
        if entry.dtype != "F32" {
            return Err(MlError::Dtype {
                name: t.name.clone(),
                dtype: entry.dtype.clone(),
            });
        }
        if entry.shape != t.shape {
            return Err(MlError::TensorShape {
                name: t.name.clone(),
                expected: t.shape.clone(),
                found: entry.shape.clone(),
            });
        }
        let values = st.f32_values(&t.name)?;
        let dst = match t.kind {
            TensorKind::Param => &mut net.params_mut()[t.range.clone()],
            TensorKind::Buffer => &mut net.buffers_mut()[t.range.clone()],
        };
        dst.copy_from_slice(&values);
        expected.push(t.name.clone());
    }
    let optimizer = match st.metadata.get("ember.optimizer") {
        None => None,
        Some(js) => {
            let m: OptimizerMeta = serde_json::from_str(js).map_err(|source| MlError::Json {
                what: "ember.optimizer metadata".into(),
                source,
            })?;
            let n = net.num_params();
            let mut state = Vec::new();
            for slot in m.config.method.slot_names() {
                let name = format!("optimizer.{slot}");
                let entry = st
                    .tensors
                    .get(&name)
                    .ok_or_else(|| MlError::MissingTensor { name: name.clone() })?;
                if entry.shape != [n] {
                    return Err(MlError::TensorShape {
                        name,
                        expected: vec![n],
                        found: entry.shape.clone(),
                    });
                }
                state.extend(st.f32_values(&name)?);
                expected.push(name);
            }
            Some(Optimizer::from_state(m.config, n, state, m.step)?)
        }
    };
    if let Some(extra) = st.tensors.keys().find(|k| !expected.contains(k)) {
        return Err(MlError::Corrupt {
            offset: 8,
            what: format!("tensor {extra} is not part of the saved configuration"),
        });
    }
    Ok(LoadedModel {
        network: net,
        optimizer,
    })
}

/// Saves a network (and optionally its optimizer) to `path`, atomically.
pub fn save(path: impl AsRef<Path>, net: &Network, opt: Option<&Optimizer>) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_bytes(net, opt)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| MlError::io(path, std::io::Error::other("path has no file name")))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, &bytes).map_err(|e| MlError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        MlError::io(path, e)
    })
}

/// Saves a network (and optionally its optimizer) at any storage URL (`file://`, `s3://`,
/// `memory://`, `hdfs://`...) in one PUT, so readers see the old file or the whole new one.
pub fn save_url(
    url: &str,
    config: &ember_storage::StorageConfig,
    net: &Network,
    opt: Option<&Optimizer>,
) -> Result<()> {
    let bytes = to_bytes(net, opt)?;
    ember_storage::Location::resolve(url, config)?.put(bytes)?;
    Ok(())
}

/// Loads a model file written by [`save`] or [`save_url`] from any storage URL.
pub fn load_url(url: &str, config: &ember_storage::StorageConfig) -> Result<LoadedModel> {
    let bytes = ember_storage::Location::resolve(url, config)?.read_all()?;
    from_bytes(&bytes).map_err(|e| match e {
        MlError::Io { .. } | MlError::Storage(_) => e,
        other => MlError::InFile {
            path: url.into(),
            source: Box::new(other),
        },
    })
}

/// Loads a model file written by [`save`].
pub fn load(path: impl AsRef<Path>) -> Result<LoadedModel> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| MlError::io(path, e))?;
    from_bytes(&bytes).map_err(|e| match e {
        MlError::Io { .. } => e,
        other => MlError::InFile {
            path: path.to_path_buf(),
            source: Box::new(other),
        },
    })
}
