//! Raw-bytes serde for vectors of plain-old-data numbers: `#[serde(with =
//! "ember_engine::blocks::pod")]` on a `Vec<f32>` (or any `bytemuck::Pod` element) field makes
//! the block codec copy its buffer in one `memcpy` instead of encoding every number.
//!
//! The bytes are the host's native layout (little-endian on every platform Ember runs on), so
//! blocks written this way are read back by the same build; self-describing formats (JSON) get
//! a list of byte values.

use std::fmt;
use std::marker::PhantomData;

use bytemuck::Pod;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Serializes the vector's memory as one byte string.
pub fn serialize<T: Pod, S: Serializer>(values: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytemuck::cast_slice(values))
}

/// Reads a byte string written by [`serialize`] back into a vector.
pub fn deserialize<'de, T: Pod, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    d.deserialize_bytes(PodVisitor(PhantomData))
}

struct PodVisitor<T>(PhantomData<T>);

fn from_bytes<T: Pod, E: de::Error>(bytes: &[u8]) -> Result<Vec<T>, E> {
    let size = std::mem::size_of::<T>().max(1);
    if bytes.len() / size * size != bytes.len() {
        return Err(E::invalid_length(
            bytes.len(),
            &"a multiple of the element size",
        ));
    }
    let mut out = vec![T::zeroed(); bytes.len() / size];
    bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(bytes);
    Ok(out)
}

impl<'de, T: Pod> Visitor<'de> for PodVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string holding plain-old-data values")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<T>, E> {
        from_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<T>, E> {
        from_bytes(&v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Buf {
        #[serde(with = "super")]
        data: Vec<f32>,
    }

    #[test]
    fn bincode_round_trips_as_raw_bytes() {
        let b = Buf {
            data: vec![1.5, -2.0, f32::MAX],
        };
        let bytes = bincode::serialize(&b).unwrap();
        assert_eq!(bytes.len(), 8 + 12, "length prefix and the raw floats");
        assert_eq!(bincode::deserialize::<Buf>(&bytes).unwrap(), b);
    }

    #[test]
    fn a_length_that_is_not_whole_elements_is_rejected() {
        let mut bytes = bincode::serialize(&Buf { data: vec![1.0; 4] }).unwrap();
        bytes[0] = 13;
        bytes.truncate(8 + 13);
        assert!(bincode::deserialize::<Buf>(&bytes).is_err());
    }
}
