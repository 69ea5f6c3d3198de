//! Model files: round trips, Python's safetensors reading them, and bad files as typed errors:
//! a flipped bit in the configuration, unknown keys, a small file declaring an enormous layer
//! (refused before allocating), and files of the previous format version still read.

use std::collections::BTreeMap;
use std::process::Command;

#[path = "../../storage/tests/common/mutate.rs"]
mod mutate;

use ember_ml::model_io::{self, safetensors};
use ember_ml::nn::{Activation, Loss, Network, NetworkConfig};
use ember_ml::optim::{Method, Optimizer, OptimizerConfig};
use ember_ml::MlError;
use ndarray::{ArrayD, IxDyn};

fn small_cnn(seed: u64) -> NetworkConfig {
    NetworkConfig::builder(&[1, 6, 6])
        .conv2d(2, 3, 1, Activation::Relu)
        .batch_norm()
        .max_pool(2, 2)
        .flatten()
        .dense(5, Activation::Tanh)
        .dense(3, Activation::Identity)
        .loss(Loss::SoftmaxCrossEntropy)
        .seed(seed)
        .config()
}

fn batch(n: usize) -> (ArrayD<f32>, ArrayD<f32>) {
    let x = ArrayD::from_shape_fn(IxDyn(&[n, 1, 6, 6]), |i| {
        ((i[0] * 7 + i[2] * 3 + i[3]) % 11) as f32 / 11.0 - 0.4
    });
    let y = ArrayD::from_shape_fn(IxDyn(&[n, 3]), |i| f32::from(i[1] == i[0] % 3));
    (x, y)
}

/// A trained network with Adam state, so every tensor kind is present and non-trivial.
fn trained() -> (Network, Optimizer) {
    let mut net = Network::new(small_cnn(11)).unwrap();
    let mut opt =
        Optimizer::new(OptimizerConfig::new(Method::adam(), 0.01), net.num_params()).unwrap();
    let (x, y) = batch(4);
    for _ in 0..3 {
        net.fit_batch(x.view(), y.view(), &mut opt).unwrap();
    }
    (net, opt)
}

#[test]
fn save_load_round_trip_restores_everything() {
    let (mut net, opt) = trained();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model_io::save(&path, &net, Some(&opt)).unwrap();
    let loaded = model_io::load(&path).unwrap();
    let mut back = loaded.network;
    assert_eq!(back.config(), net.config());
    assert_eq!(back.params(), net.params());
    assert_eq!(back.buffers(), net.buffers());
    assert!(
        net.buffers().iter().any(|&v| v != 0.0 && v != 1.0),
        "running stats were updated"
    );
    assert_eq!(loaded.optimizer.as_ref(), Some(&opt));
    let (x, _) = batch(4);
    assert_eq!(
        back.predict(x.view()).unwrap(),
        net.predict(x.view()).unwrap()
    );
    // Without an optimizer.
    model_io::save(&path, &net, None).unwrap();
    assert!(model_io::load(&path).unwrap().optimizer.is_none());
    // Continuing training from the loaded optimizer matches continuing the original.
    let (x, y) = batch(4);
    let mut o1 = opt.clone();
    let mut o2 = loaded.optimizer.unwrap();
    net.fit_batch(x.view(), y.view(), &mut o1).unwrap();
    back.fit_batch(x.view(), y.view(), &mut o2).unwrap();
    assert_eq!(net.params(), back.params());
}

#[test]
fn python_safetensors_reads_the_weights() {
    let (net, opt) = trained();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model_io::save(&path, &net, Some(&opt)).unwrap();
    let script = r#"
import json, sys
try:
    import numpy
    from safetensors.numpy import load_file
    from safetensors import safe_open
except ImportError as e:
    print("MISSING-PYTHON-PACKAGE", e)
    sys.exit(3)
path = sys.argv[1]
tensors = load_file(path)
with safe_open(path, framework="numpy") as f:
    meta = f.metadata()
out = {"meta": meta, "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape),
       "values": [float(x) for x in v.reshape(-1)]} for k, v in tensors.items()}}
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            panic!("python3 is required for this test (run .ci/setup.d/50-python-ml.sh): {e}")
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python could not read the model file (if MISSING-PYTHON-PACKAGE: install numpy and \
         safetensors with .ci/setup.d/50-python-ml.sh)\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let tensors = v["tensors"].as_object().unwrap();
    let mut expected = 0;
    for t in net.tensors() {
        let py = &tensors[&t.name];
        assert_eq!(py["dtype"], "float32", "{}", t.name);
        let shape: Vec<usize> = serde_json::from_value(py["shape"].clone()).unwrap();
        assert_eq!(shape, t.shape, "{}", t.name);
        let vals: Vec<f32> = serde_json::from_value(py["values"].clone()).unwrap();
        let src = match t.kind {
            ember_ml::nn::TensorKind::Param => net.params(),
            ember_ml::nn::TensorKind::Buffer => net.buffers(),
        };
        assert_eq!(vals, src[t.range.clone()], "{}", t.name);
        expected += 1;
    }
    let m: Vec<f32> = serde_json::from_value(tensors["optimizer.m"]["values"].clone()).unwrap();
    assert_eq!(m, opt.state()[..net.num_params()]);
    assert_eq!(
        tensors.len(),
        expected + 2,
        "network tensors plus optimizer m and v"
    );
    let cfg = v["meta"]["ember.config"].as_str().unwrap();
    assert_eq!(&NetworkConfig::from_json(cfg).unwrap(), net.config());
}

fn inner(e: MlError) -> MlError {
    match e {
        MlError::InFile { source, .. } => *source,
        other => other,
    }
}

#[test]
fn truncated_files_are_errors_at_every_length() {
    let (net, opt) = trained();
    let bytes = model_io::to_bytes(&net, Some(&opt)).unwrap();
    for cut in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        match model_io::from_bytes(&bytes[..cut]) {
            Err(MlError::Truncated { .. }) | Err(MlError::Corrupt { .. }) => {}
            Err(other) => panic!("cut at {cut}: unexpected error kind {other}"),
            Ok(_) => panic!("cut at {cut}: a truncated file loaded"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = model_io::load(&path).unwrap_err();
    assert!(
        err.to_string().contains("cut.safetensors"),
        "error names the file: {err}"
    );
    assert!(matches!(inner(err), MlError::Truncated { .. }));
    assert!(matches!(
        model_io::load(dir.path().join("absent")),
        Err(MlError::Io { .. })
    ));
}

#[test]
fn corrupt_files_are_typed_errors() {
    let (net, opt) = trained();
    let bytes = model_io::to_bytes(&net, Some(&opt)).unwrap();
    // A flipped bit in the tensor data: checksum.
    let mut b = bytes.clone();
    let last = b.len() - 3;
    b[last] ^= 0x10;
    assert!(matches!(
        model_io::from_bytes(&b),
        Err(MlError::Checksum { .. })
    ));
    // Garbage in the JSON header.
    let mut b = bytes.clone();
    b[9] = b'#';
    assert!(matches!(
        model_io::from_bytes(&b),
        Err(MlError::Corrupt { .. })
    ));
    // An absurd header length.
    let mut b = bytes.clone();
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        model_io::from_bytes(&b),
        Err(MlError::Corrupt { .. })
    ));
    // Random bytes.
    let noise: Vec<u8> = (0..500u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(model_io::from_bytes(&noise).is_err());
    // Every single-byte change of the header: loads or fails with an error, never panics.
    let hlen = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for i in 0..hlen {
        for v in [b'0', b'"', b'}', 0xff] {
            let mut b = bytes.clone();
            b[i] = v;
            let _ = model_io::from_bytes(&b);
        }
    }
    // A valid safetensors file that is not an Ember model.
    let plain = safetensors::write(&[("w".into(), vec![2], &[1.0, 2.0][..])], &BTreeMap::new());
    assert!(matches!(
        model_io::from_bytes(&plain),
        Err(MlError::Corrupt { .. })
    ));
}

/// Rewrites a model file with other tensors and metadata.
fn rebuild(
    bytes: &[u8],
    edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>, &mut BTreeMap<String, String>),
) -> Vec<u8> {
    let st = safetensors::read(bytes).unwrap();
    let mut meta = st.metadata.clone();
    meta.remove(safetensors::CRC_KEY);
    meta.remove(safetensors::HEADER_CRC_KEY);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = st
        .tensors
        .iter()
        .map(|(k, e)| (k.clone(), e.shape.clone(), st.f32_values(k).unwrap()))
        .collect();
    edit(&mut tensors, &mut meta);
    let refs: Vec<(String, Vec<usize>, &[f32])> = tensors
        .iter()
        .map(|(k, s, v)| (k.clone(), s.clone(), &v[..]))
        .collect();
    safetensors::write(&refs, &meta)
}

#[test]
fn mismatched_files_are_typed_errors() {
    let (net, opt) = trained();
    let bytes = model_io::to_bytes(&net, Some(&opt)).unwrap();
    // The configuration of a wider network: shapes no longer match.
    let mut wider = small_cnn(11);
    wider.layers[4] = ember_ml::nn::LayerConfig::Dense {
        units: 6,
        activation: Activation::Tanh,
        init: None,
    };
    let b = rebuild(&bytes, |_, m| {
        m.insert("ember.config".into(), wider.to_json());
    });
    assert!(matches!(
        model_io::from_bytes(&b),
        Err(MlError::TensorShape { .. })
    ));
    // A tensor missing.
    let b = rebuild(&bytes, |t, _| {
        t.retain(|(k, _, _)| k != "layers.1.running_var")
    });
    match model_io::from_bytes(&b) {
        Err(MlError::MissingTensor { name }) => assert_eq!(name, "layers.1.running_var"),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    // Optimizer state of the wrong length.
    let b = rebuild(&bytes, |t, _| {
        for (k, s, v) in t.iter_mut() {
            if k == "optimizer.v" {
                v.pop();
                s[0] -= 1;
            }
        }
    });
    assert!(matches!(
        model_io::from_bytes(&b),
        Err(MlError::TensorShape { .. })
    ));
    // An extra tensor.
    let b = rebuild(&bytes, |t, _| t.push(("extra".into(), vec![1], vec![0.0])));
    assert!(matches!(
        model_io::from_bytes(&b),
        Err(MlError::Corrupt { .. })
    ));
    // A configuration asking for absurd sizes: an error, not an abort.
    let mut huge = small_cnn(11);
    huge.layers[4] = ember_ml::nn::LayerConfig::Dense {
        units: 1 << 40,
        activation: Activation::Tanh,
        init: None,
    };
    let b = rebuild(&bytes, |_, m| {
        m.insert("ember.config".into(), huge.to_json());
    });
    assert!(matches!(model_io::from_bytes(&b), Err(MlError::Config(_))));
    huge.layers[4] = ember_ml::nn::LayerConfig::Dense {
        units: 1 << 23,
        activation: Activation::Tanh,
        init: None,
    };
    huge.layers[5] = ember_ml::nn::LayerConfig::Dense {
        units: 1 << 23,
        activation: Activation::Tanh,
        init: None,
    };
    let b = rebuild(&bytes, |_, m| {
        m.insert("ember.config".into(), huge.to_json());
    });
    // Refused before allocating: the file does not hold the declared tensors.
    assert!(
        matches!(
            model_io::from_bytes(&b),
            Err(MlError::Config(_) | MlError::TensorShape { .. })
        ),
        "2^46 parameters"
    );
    // Bad configuration JSON.
    let b = rebuild(&bytes, |_, m| {
        m.insert("ember.config".into(), "{\"layers\": 3}".into());
    });
    assert!(matches!(
        model_io::from_bytes(&b),
        Err(MlError::Json { .. })
    ));
    // A float64 tensor where float32 is needed.
    let st = safetensors::read(&bytes).unwrap();
    let name = "layers.0.bias";
    let e = &st.tensors[name];
    let json_start = 8;
    let hlen = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[json_start..json_start + hlen].to_vec()).unwrap();
    // Same byte count read as half as many F64 values: well-formed, wrong dtype.
    let old = format!(
        "\"{name}\":{{\"data_offsets\":[{},{}],\"dtype\":\"F32\",\"shape\":[{}]}}",
        e.range.start, e.range.end, e.shape[0]
    );
    assert!(header.contains(&old), "header layout: {header}");
    let new = old.replace("F32", "F64").replace(
        &format!("[{}]}}", e.shape[0]),
        &format!("[{}]}}", e.shape[0] / 2),
    );
    let h = header.replacen(&old, &new, 1);
    // As a writer of F64 tensors would: with the header checksum over the new table.
    let mut h: serde_json::Value = serde_json::from_str(&h).unwrap();
    reseal(&mut h);
    let b = join_file(&h, &bytes[json_start + hlen..]);
    let r = model_io::from_bytes(&b);
    assert!(matches!(r, Err(MlError::Dtype { .. })), "{r:?}");
}

#[test]
fn models_save_and_load_at_storage_urls() {
    let (net, opt) = trained();
    let config = ember_storage::StorageConfig::new();
    let dir = tempfile::tempdir().unwrap();
    let file_url = format!("file://{}/models/m.safetensors", dir.path().display());
    for url in ["memory://models/run-1/m.safetensors", file_url.as_str()] {
        model_io::save_url(url, &config, &net, Some(&opt)).unwrap();
        let loaded = model_io::load_url(url, &config).unwrap();
        assert_eq!(loaded.network.params(), net.params(), "{url}");
        assert_eq!(loaded.optimizer.as_ref(), Some(&opt), "{url}");
    }
    // A missing object is a storage error naming the URL; a truncated one names it too.
    let missing = model_io::load_url("memory://models/none.safetensors", &config).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("memory://models/none.safetensors"),
        "{missing}"
    );
    let bytes = model_io::to_bytes(&net, None).unwrap();
    let cut = ember_storage::Location::resolve("memory://models/cut.safetensors", &config).unwrap();
    cut.put(bytes[..bytes.len() / 2].to_vec()).unwrap();
    let err = model_io::load_url("memory://models/cut.safetensors", &config).unwrap_err();
    assert!(err.to_string().contains("cut.safetensors"), "{err}");
}

/// The largest single allocation this test binary has made since the last reset.
static LARGEST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The system allocator, recording the largest allocation.
struct Recording;

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl std::alloc::GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        LARGEST.fetch_max(size, std::sync::atomic::Ordering::Relaxed);
        std::alloc::System.realloc(ptr, layout, size)
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

fn tiny() -> (Network, Optimizer) {
    let config = NetworkConfig::builder(&[3])
        .dense(4, Activation::Relu)
        .dense(2, Activation::Identity)
        .loss(Loss::Mse)
        .seed(3)
        .config();
    let net = Network::new(config).unwrap();
    let opt = Optimizer::new(OptimizerConfig::new(Method::adam(), 0.01), net.num_params()).unwrap();
    (net, opt)
}

/// The JSON header of a file and its data section.
fn split_file(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&bytes[8..n]).unwrap(),
        bytes[n..].to_vec(),
    )
}

/// A file from a JSON header and a data section.
fn join_file(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

#[test]
fn a_flipped_bit_in_the_header_never_loads_another_model() {
    let (net, opt) = tiny();
    let bytes = model_io::to_bytes(&net, Some(&opt)).unwrap();
    let hlen = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let config = net.config().to_json();
    let mut loaded = 0;
    // Every bit of the header (tensor table, configuration, optimizer, checksums).
    for i in 8..hlen {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            match model_io::from_bytes(&b) {
                Err(_) => {}
                Ok(m) => {
                    // Only a change that means nothing may load (a checksum's hex digit
                    // changing case), and then it must be the same model.
                    assert_eq!(m.network.config().to_json(), config, "byte {i} bit {bit}");
                    assert_eq!(m.network.params(), net.params(), "byte {i} bit {bit}");
                    let o = m.optimizer.expect("optimizer");
                    assert_eq!(o.config(), opt.config(), "byte {i} bit {bit}");
                    loaded += 1;
                }
            }
        }
    }
    assert!(
        loaded <= 16,
        "{loaded} flips loaded: more than the checksums' hex letters"
    );
    // A changed activation is refused: the header checksum covers the configuration.
    let flipped = config.replacen("\"relu\"", "\"tanh\"", 1);
    assert_ne!(flipped, config);
    let (mut header, data) = split_file(&bytes);
    header["__metadata__"]["ember.config"] = serde_json::Value::String(flipped);
    let err = model_io::from_bytes(&join_file(&header, &data)).unwrap_err();
    assert!(
        err.to_string().contains("header checksum mismatch"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_refused() {
    let (net, opt) = tiny();
    let bytes = model_io::to_bytes(&net, Some(&opt)).unwrap();
    let config: serde_json::Value = serde_json::from_str(&net.config().to_json()).unwrap();
    let cases: Vec<(&str, Box<dyn Fn(&mut BTreeMap<String, String>)>)> = vec![
        (
            "unknown key ember.config.dropout_everywhere",
            Box::new({
                let config = config.clone();
                move |m| {
                    let mut c = config.clone();
                    c["dropout_everywhere"] = serde_json::json!(0.5);
                    m.insert("ember.config".into(), c.to_string());
                }
            }),
        ),
        (
            "unknown key ember.config.layers[1]",
            Box::new({
                let config = config.clone();
                move |m| {
                    let mut c = config.clone();
                    c["layers"][1]["epsilon"] = serde_json::json!(1e-3);
                    m.insert("ember.config".into(), c.to_string());
                }
            }),
        ),
        (
            "unknown key ember.optimizer.",
            Box::new(|m| {
                let mut o: serde_json::Value = serde_json::from_str(&m["ember.optimizer"]).unwrap();
                o["warmup"] = serde_json::json!(10);
                m.insert("ember.optimizer".into(), o.to_string());
            }),
        ),
        (
            "unknown metadata key \"ember.comment\"",
            Box::new(|m| {
                m.insert("ember.comment".into(), "hello".into());
            }),
        ),
    ];
    for (want, edit) in cases {
        let b = rebuild(&bytes, |_, m| edit(m));
        let err = model_io::from_bytes(&b).unwrap_err();
        assert!(matches!(err, MlError::Corrupt { .. }), "{want}: {err:?}");
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
}

#[test]
fn a_small_file_declaring_an_enormous_layer_is_refused_before_allocating() {
    let (net, _) = tiny();
    let bytes = model_io::to_bytes(&net, None).unwrap();
    assert!(bytes.len() < 4096);
    let mut config: serde_json::Value = serde_json::from_str(&net.config().to_json()).unwrap();
    // The first dense layer declares 2^24 units (the most a layer may have): 200 MB of
    // weights, and as much again for gradients and optimizer state, for a file of a few KiB.
    config["layers"][0]["units"] = serde_json::json!(1u64 << 24);
    let b = rebuild(&bytes, |_, m| {
        m.insert("ember.config".into(), config.to_string());
    });
    LARGEST.store(0, std::sync::atomic::Ordering::SeqCst);
    let err = model_io::from_bytes(&b).unwrap_err();
    let largest = LARGEST.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        matches!(&err, MlError::TensorShape { name, .. } if name == "layers.0.weight"),
        "{err:?}"
    );
    // Other tests of this binary allocate at the same time, but nothing near this bound.
    assert!(largest < 64 << 20, "largest allocation {largest} bytes");
}

#[test]
fn files_of_the_previous_format_version_still_load() {
    let (net, opt) = trained();
    let bytes = model_io::to_bytes(&net, Some(&opt)).unwrap();
    // What the previous version wrote: ember-ml/1 and no header checksum.
    let (mut header, data) = split_file(&bytes);
    let meta = header["__metadata__"].as_object_mut().unwrap();
    meta.remove(safetensors::HEADER_CRC_KEY);
    meta.insert("ember.format".into(), model_io::FORMAT_V1.into());
    let v1 = join_file(&header, &data);
    let m = model_io::from_bytes(&v1).unwrap();
    assert_eq!(m.network.params(), net.params());
    assert_eq!(m.network.config(), net.config());
    // The current version requires the header checksum.
    meta_format(&mut header, model_io::FORMAT);
    let err = model_io::from_bytes(&join_file(&header, &data)).unwrap_err();
    assert!(
        err.to_string().contains(safetensors::HEADER_CRC_KEY),
        "{err}"
    );
    // An unknown version is refused, naming the versions this one reads.
    meta_format(&mut header, "ember-ml/9");
    let err = model_io::from_bytes(&join_file(&header, &data)).unwrap_err();
    assert!(err.to_string().contains("ember-ml/9"), "{err}");
    assert!(err.to_string().contains(model_io::FORMAT_V1), "{err}");
}

/// Recomputes the header checksum of a JSON header, as a writer of that header would.
fn reseal(header: &mut serde_json::Value) {
    let mut tensors = BTreeMap::new();
    let mut meta = BTreeMap::new();
    for (k, v) in header.as_object().unwrap() {
        if k == "__metadata__" {
            for (mk, mv) in v.as_object().unwrap() {
                meta.insert(mk.clone(), mv.as_str().unwrap().to_string());
            }
            continue;
        }
        let offs = v["data_offsets"].as_array().unwrap();
        let entry = safetensors::TensorEntry {
            dtype: v["dtype"].as_str().unwrap().to_string(),
            shape: v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect(),
            range: offs[0].as_u64().unwrap() as usize..offs[1].as_u64().unwrap() as usize,
        };
        tensors.insert(k.clone(), entry);
    }
    let digest = safetensors::header_digest(&tensors, &meta);
    header["__metadata__"][safetensors::HEADER_CRC_KEY] =
        serde_json::Value::String(format!("{digest:08x}"));
}

fn meta_format(header: &mut serde_json::Value, format: &str) {
    header["__metadata__"]["ember.format"] = serde_json::Value::String(format.into());
}

#[test]
fn model_file_mutants_are_errors_or_the_same_model() {
    let (net, opt) = trained();
    let bytes = model_io::to_bytes(&net, Some(&opt)).unwrap();
    for (i, m) in mutate::mutants(&bytes, 21, 2000).into_iter().enumerate() {
        let started = std::time::Instant::now();
        let loaded = std::panic::catch_unwind(|| model_io::from_bytes(&m))
            .unwrap_or_else(|_| panic!("mutant {i} (seed 21) panicked"));
        if let Ok(model) = loaded {
            // Only a change that means nothing loads (a checksum's hex letter changing case).
            assert_eq!(model.network.config(), net.config(), "mutant {i}");
            assert_eq!(model.network.params(), net.params(), "mutant {i}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "mutant {i}"
        );
    }
}
