//! Model files: a network's configuration, parameters, running statistics and (optionally) its
//! optimizer state in one safetensors file.
//!
//! Layout of the file (readable with Python's `safetensors.numpy.load_file`):
//! - tensors `layers.{i}.weight`, `layers.{i}.bias` (PyTorch's layouts: dense `[out, in]`, conv
//!   `[out, in, kh, kw]`), `layers.{i}.running_mean` / `running_var` for batch norm;
//! - with an optimizer, its flat state per slot: `optimizer.velocity`, or `optimizer.m` and
//!   `optimizer.v`, each of shape `[num_params]` in the order of the parameters above;
//! - metadata: `ember.format` (`ember-ml/2`), `ember.config` (the [`NetworkConfig`] JSON),
//!   `ember.optimizer` (optimizer configuration and step count, JSON), `ember.crc32` (CRC-32 of
//!   the tensor data) and `ember.header_crc32` (CRC-32 of the tensor table and every other
//!   metadata entry, so a flipped bit in the configuration is an error, not another model).
//!
//! Reading checks, before allocating the network, that every metadata key and every key of the
//! configuration and optimizer JSON is one this version writes, and that every tensor the
//! configuration declares is in the file with its shape: a small file cannot make the reader
//! allocate more than its own tensors hold. Files of the previous version (`ember-ml/1`, without
//! the header checksum) are still read.
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
pub const FORMAT: &str = "ember-ml/2";

/// The previous version's `ember.format`: no header checksum; still read.
pub const FORMAT_V1: &str = "ember-ml/1";

/// The metadata keys of a model file; any other is refused.
const METADATA_KEYS: &[&str] = &[
    "ember.format",
    "ember.config",
    "ember.optimizer",
    safetensors::CRC_KEY,
    safetensors::HEADER_CRC_KEY,
];

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

fn corrupt(what: impl Into<String>) -> MlError {
    MlError::Corrupt {
        offset: 8,
        what: what.into(),
    }
}

/// The format's checks on a file's metadata: a known version with its checksums, known keys.
fn check_metadata(st: &safetensors::SafeTensors<'_>) -> Result<()> {
    let meta = &st.metadata;
    match meta.get("ember.format").map(String::as_str) {
        Some(FORMAT) => {
            if !meta.contains_key(safetensors::HEADER_CRC_KEY) {
                return Err(corrupt(format!(
                    "no {} metadata in an {FORMAT} file",
                    safetensors::HEADER_CRC_KEY
                )));
            }
        }
        Some(FORMAT_V1) => {
            tracing::debug!("reading a model file of the previous format ({FORMAT_V1})")
        }
        Some(other) => {
            return Err(corrupt(format!(
                "unknown format {other:?} (this version reads {FORMAT} and {FORMAT_V1})"
            )))
        }
        None => {
            return Err(corrupt(
                "not an Ember model file (no ember.format metadata)",
            ))
        }
    }
    if !meta.contains_key(safetensors::CRC_KEY) {
        return Err(corrupt(format!(
            "no {} metadata (the data checksum)",
            safetensors::CRC_KEY
        )));
    }
    if let Some(k) = meta.keys().find(|k| !METADATA_KEYS.contains(&k.as_str())) {
        return Err(corrupt(format!(
            "unknown metadata key {k:?} (known: {})",
            METADATA_KEYS.join(", ")
        )));
    }
    Ok(())
}

/// Parses JSON metadata `what` into `T`, refusing keys that `T` does not have (serde would
/// ignore them): the JSON read must hold no key that `T` written back lacks.
fn parse_strict<T: Serialize + serde::de::DeserializeOwned>(json: &str, what: &str) -> Result<T> {
    let bad_json = |source| MlError::Json {
        what: format!("{what} metadata"),
        source,
    };
    let value: serde_json::Value = serde_json::from_str(json).map_err(bad_json)?;
    let parsed: T = serde_json::from_value(value.clone()).map_err(bad_json)?;
    let known = serde_json::to_value(&parsed).map_err(bad_json)?;
    if let Some(path) = unknown_key(&value, &known, what) {
        return Err(corrupt(format!("unknown key {path} in {what}")));
    }
    Ok(parsed)
}

/// The path of the first object key of `read` that `known` lacks, if any.
fn unknown_key(read: &serde_json::Value, known: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (read, known) {
        (Value::Object(r), Value::Object(k)) => r.iter().find_map(|(key, v)| {
            let here = format!("{path}.{key}");
            match k.get(key) {
                None => Some(here),
                Some(kv) => unknown_key(v, kv, &here),
            }
        }),
        (Value::Array(r), Value::Array(k)) => r
            .iter()
            .zip(k)
            .enumerate()
            .find_map(|(i, (rv, kv))| unknown_key(rv, kv, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// Checks, without allocating the network, that every tensor `config` declares is in the file
/// as an `F32` tensor of its shape: what [`Network::new`] then allocates is bounded by the file.
fn check_declared(config: &NetworkConfig, st: &safetensors::SafeTensors<'_>) -> Result<()> {
    use crate::nn::layers;
    if config.input_shape.is_empty() || config.input_shape.contains(&0) {
        return Ok(()); // Network::new refuses it before allocating.
    }
    let mut shape = config.input_shape.clone();
    for (i, cfg) in config.layers.iter().enumerate() {
        let layer = layers::build(cfg, &shape)
            .map_err(|e| MlError::Config(format!("layer {i} ({cfg:?}): {e}")))?;
        for spec in layer.params().into_iter().chain(layer.buffers()) {
            let name = format!("layers.{i}.{}", spec.name);
            let entry = st
                .tensors
                .get(&name)
                .ok_or_else(|| MlError::MissingTensor { name: name.clone() })?;
            if entry.dtype != "F32" {
                return Err(MlError::Dtype {
                    name,
                    dtype: entry.dtype.clone(),
                });
            }
            if entry.shape != spec.shape {
                return Err(MlError::TensorShape {
                    name,
                    expected: spec.shape,
                    found: entry.shape.clone(),
                });
            }
        }
        shape = layer.out_shape();
    }
    Ok(())
}

/// Rebuilds a network (and optimizer, when saved) from [`to_bytes`] output.
pub fn from_bytes(bytes: &[u8]) -> Result<LoadedModel> {
    let st = safetensors::read(bytes)?;
    check_metadata(&st)?;
    let cfg_json = st
        .metadata
        .get("ember.config")
        .ok_or_else(|| corrupt("no ember.config metadata"))?;
    let config: NetworkConfig = parse_strict(cfg_json, "ember.config")?;
    check_declared(&config, &st)?;
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
            let m: OptimizerMeta = parse_strict(js, "ember.optimizer")?;
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
