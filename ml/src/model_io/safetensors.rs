//! The safetensors container, written and read by hand (it is small): an 8-byte little-endian
//! header length, a JSON header mapping each tensor name to its dtype, shape and byte range
//! (plus an optional `__metadata__` map of strings), then the raw little-endian tensor bytes.
//! Files written here are read by Python's `safetensors` package (`safetensors.numpy.load_file`).
//!
//! Reading validates everything before touching data: lengths, ranges, overlaps, dtypes and, when
//! the metadata holds them (this writer always adds both), a CRC-32 of the data section
//! (`ember.crc32`) and one of the header (`ember.header_crc32`: every tensor's name, dtype, shape
//! and offsets, and every other metadata entry). Any problem is an [`MlError`], never a panic.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{MlError, Result};

/// Metadata key of the CRC-32 (hex) of the data section.
pub const CRC_KEY: &str = "ember.crc32";

/// Metadata key of the CRC-32 (hex) of the header ([`header_digest`]).
pub const HEADER_CRC_KEY: &str = "ember.header_crc32";

/// Header lengths above this are treated as corrupt rather than allocated.
const MAX_HEADER: u64 = 100 << 20;

/// One tensor of a file, as read.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    /// Data type as named in the header (`F32`, `F64`, ...).
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte range in the data section.
    pub range: std::ops::Range<usize>,
}

/// A parsed file: metadata, tensor index and the data section.
#[derive(Debug)]
pub struct SafeTensors<'a> {
    /// The `__metadata__` map (empty when absent).
    pub metadata: BTreeMap<String, String>,
    /// Tensors by name.
    pub tensors: BTreeMap<String, TensorEntry>,
    data: &'a [u8],
}

/// Serializes `f32` tensors `(name, shape, values)` with `metadata`, in the given order. A CRC-32
/// of the data is added to the metadata under [`CRC_KEY`].
pub fn write(
    tensors: &[(String, Vec<usize>, &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut data = Vec::with_capacity(tensors.iter().map(|t| t.2.len() * 4).sum());
    let mut header = Map::new();
    for (name, shape, values) in tensors {
        let begin = data.len();
        for v in values.iter() {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let mut meta: Map<String, Value> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    meta.insert(
        CRC_KEY.into(),
        Value::String(format!("{:08x}", crc32fast::hash(&data))),
    );
    let mut entries = BTreeMap::new();
    let mut offset = 0;
    for (name, shape, values) in tensors {
        let end = offset + values.len() * 4;
        let entry = TensorEntry {
            dtype: "F32".into(),
            shape: shape.clone(),
            range: offset..end,
        };
        entries.insert(name.clone(), entry);
        offset = end;
    }
    let strings: BTreeMap<String, String> = meta
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect();
    meta.insert(
        HEADER_CRC_KEY.into(),
        Value::String(format!("{:08x}", header_digest(&entries, &strings))),
    );
    header.insert("__metadata__".into(), Value::Object(meta));
    let mut h = serde_json::to_vec(&Value::Object(header)).expect("JSON of strings and numbers");
    // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
    while (8 + h.len()) & 7 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}

fn corrupt(offset: u64, what: impl Into<String>) -> MlError {
    MlError::Corrupt {
        offset,
        what: what.into(),
    }
}

/// Parses and validates a file's bytes.
pub fn read(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    let len = bytes.len() as u64;
    if len < 8 {
        return Err(MlError::Truncated {
            what: "header length".into(),
            needed: 8,
            len,
        });
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER {
        return Err(corrupt(0, format!("header length {n} is implausible")));
    }
    if 8 + n > len {
        return Err(MlError::Truncated {
            what: "JSON header".into(),
            needed: 8 + n,
            len,
        });
    }
    let header: Value = serde_json::from_slice(&bytes[8..8 + n as usize])
        .map_err(|e| corrupt(8, format!("header is not JSON: {e}")))?;
    let Value::Object(header) = header else {
        return Err(corrupt(8, "header is not a JSON object"));
    };
    let data = &bytes[8 + n as usize..];
    let mut metadata = BTreeMap::new();
    let mut tensors = BTreeMap::new();
    for (name, v) in header {
        if name == "__metadata__" {
            let Value::Object(m) = v else {
                return Err(corrupt(8, "__metadata__ is not an object"));
            };
            for (k, v) in m {
                let Value::String(s) = v else {
                    return Err(corrupt(8, format!("metadata {k} is not a string")));
                };
                metadata.insert(k, s);
            }
            continue;
        }
        let entry = parse_entry(&name, &v)?;
        if entry.range.end > data.len() {
            return Err(MlError::Truncated {
                what: format!("data of tensor {name}"),
                needed: 8 + n + entry.range.end as u64,
                len,
            });
        }
        tensors.insert(name, entry);
    }
    let mut ranges: Vec<_> = tensors.iter().map(|(k, e)| (e.range.clone(), k)).collect();
    ranges.sort_by_key(|(r, _)| (r.start, r.end));
    let mut end = 0;
    for (r, name) in &ranges {
        if r.start != end {
            return Err(corrupt(
                8 + n + r.start as u64,
                format!("tensor {name} does not start where the previous one ends ({end})"),
            ));
        }
        end = r.end;
    }
    if end != data.len() {
        return Err(corrupt(8 + n + end as u64, "bytes after the last tensor"));
    }
    if let Some(crc) = metadata.get(HEADER_CRC_KEY) {
        let expected = u32::from_str_radix(crc, 16)
            .map_err(|_| corrupt(8, format!("header checksum {crc:?} is not hex")))?;
        let found = header_digest(&tensors, &metadata);
        if expected != found {
            return Err(corrupt(
                8,
                format!(
                    "header checksum mismatch (stored {expected:08x}, computed {found:08x}): \
                     the tensor table or the metadata (configuration) was altered"
                ),
            ));
        }
    }
    if let Some(crc) = metadata.get(CRC_KEY) {
        let expected = u32::from_str_radix(crc, 16)
            .map_err(|_| corrupt(8, format!("checksum {crc:?} is not hex")))?;
        let found = crc32fast::hash(data);
        if expected != found {
            return Err(MlError::Checksum { expected, found });
        }
    }
    Ok(SafeTensors {
        metadata,
        tensors,
        data,
    })
}

/// The CRC-32 of a header's contents as parsed (so formatting does not matter): each tensor's
/// name, dtype, shape and offsets, then each metadata entry but [`HEADER_CRC_KEY`], in name
/// order, each field ended by a NUL byte.
pub fn header_digest(
    tensors: &BTreeMap<String, TensorEntry>,
    metadata: &BTreeMap<String, String>,
) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for (name, e) in tensors {
        h.update(b"T\0");
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(e.dtype.as_bytes());
        h.update(b"\0");
        for d in &e.shape {
            h.update(&(*d as u64).to_le_bytes());
        }
        h.update(b"\0");
        h.update(&(e.range.start as u64).to_le_bytes());
        h.update(&(e.range.end as u64).to_le_bytes());
    }
    for (k, v) in metadata.iter().filter(|(k, _)| *k != HEADER_CRC_KEY) {
        h.update(b"M\0");
        h.update(k.as_bytes());
        h.update(b"\0");
        h.update(v.as_bytes());
        h.update(b"\0");
    }
    h.finalize()
}

fn parse_entry(name: &str, v: &Value) -> Result<TensorEntry> {
    let bad = |what: &str| corrupt(8, format!("tensor {name}: {what}"));
    let dtype = v
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no dtype"))?;
    let shape = v
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no shape"))?
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| bad("shape is not a list of sizes"))?;
    let offs = v
        .get("data_offsets")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 2)
        .ok_or_else(|| bad("no data_offsets pair"))?;
    let (b, e) = match (offs[0].as_u64(), offs[1].as_u64()) {
        (Some(b), Some(e)) if b <= e => (b as usize, e as usize),
        _ => return Err(bad("data_offsets are not an increasing pair")),
    };
    let width = match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return Err(bad(&format!("unknown dtype {dtype}"))),
    };
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count.and_then(|c| c.checked_mul(width)) != Some(e - b) {
        return Err(bad(&format!(
            "{} bytes do not hold shape {shape:?} of {dtype}",
            e - b
        )));
    }
    Ok(TensorEntry {
        dtype: dtype.to_string(),
        shape,
        range: b..e,
    })
}

impl SafeTensors<'_> {
    /// The values of an `F32` tensor.
    pub fn f32_values(&self, name: &str) -> Result<Vec<f32>> {
        let e = self
            .tensors
            .get(name)
            .ok_or_else(|| MlError::MissingTensor {
                name: name.to_string(),
            })?;
        if e.dtype != "F32" {
            return Err(MlError::Dtype {
                name: name.to_string(),
                dtype: e.dtype.clone(),
            });
        }
        Ok(self.data[e.range.clone()]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let a = [1.0f32, -2.5, 3.25];
        let b = [0.5f32; 4];
        let mut meta = BTreeMap::new();
        meta.insert("k".to_string(), "v".to_string());
        let bytes = write(
            &[("a".into(), vec![3], &a), ("b".into(), vec![2, 2], &b)],
            &meta,
        );
        let hlen = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + hlen) % 8, 0, "data is 8-byte aligned");
        let st = read(&bytes).unwrap();
        assert_eq!(st.metadata["k"], "v");
        assert_eq!(st.f32_values("a").unwrap(), a);
        assert_eq!(st.tensors["b"].shape, vec![2, 2]);
        assert!(matches!(
            st.f32_values("c"),
            Err(MlError::MissingTensor { .. })
        ));
    }
}
