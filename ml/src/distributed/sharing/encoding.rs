//! Threshold encoding of updates (Strom 2015, as DL4J's `EncodingHandler` does it): every entry
//! of the residual with |r| >= τ is sent as ±τ and τ is taken off it; what stays below τ waits
//! in the residual for later steps, so nothing is lost, only delayed.
//!
//! A message is a 36-byte header and a payload, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `EGS1` |
//! | 4 | encoding: 0 sparse, 1 bitmap |
//! | 5 | flags: bit 0 set when the worker trained in this step |
//! | 6..8 | reserved, 0 |
//! | 8..12 | worker (rank) that made the update |
//! | 12..20 | step |
//! | 20..24 | length N of the update vector |
//! | 24..28 | count of entries sent |
//! | 28..32 | threshold τ (f32) |
//! | 32..36 | CRC-32 of the header (this field as 0) and the payload |
//!
//! The sparse payload is `count` i32 values, `index + 1` for +τ and `-(index + 1)` for −τ, in
//! ascending index order. When the sparse form would hold N/16 entries or more (4 bytes an
//! entry against N/4 bytes for the whole vector) the payload is a bitmap instead: 2 bits a
//! value (0 nothing, 1 +τ, 2 −τ), four values a byte, lowest bits first.
//!
//! Decoding checks everything (magic, lengths, CRC, index order and range, bitmap codes and
//! count), so a truncated or corrupt message is a [`SharingError::Message`], never a panic or
//! a wrong update.

use super::error::SharingError;

/// Bytes of a message header.
pub const HEADER_BYTES: usize = 36;
const MAGIC: &[u8; 4] = b"EGS1";
const FLAG_ACTIVE: u8 = 1;

/// How a message's entries are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Signed indices, 4 bytes an entry sent.
    Sparse,
    /// 2 bits a value of the whole vector.
    Bitmap,
}

/// A message's header, read before its payload is applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    /// Layout of the payload.
    pub encoding: Encoding,
    /// Whether the worker trained in this step (an idle worker still sends, with no entries).
    pub active: bool,
    /// The worker (rank) whose update it is.
    pub worker: u32,
    /// The step.
    pub step: u64,
    /// Length of the update vector.
    pub len: u32,
    /// Entries sent.
    pub count: u32,
    /// The threshold τ each entry stands for.
    pub threshold: f32,
}

/// What encoding one residual sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoded {
    /// The message.
    pub bytes: Vec<u8>,
    /// Its header.
    pub header: Header,
}

impl Encoded {
    /// Fraction of the vector's entries sent.
    pub fn sparsity(&self) -> f64 {
        self.header.count as f64 / (self.header.len as f64).max(1.0)
    }
}

/// The number of entries at or above which a vector of `len` values is sent as a bitmap.
pub fn bitmap_from(len: usize) -> usize {
    len.div_ceil(16).max(1)
}

/// Encodes `residual` at threshold `threshold`: every entry with |r| >= τ is sent and ±τ is
/// taken off it. `on_sent(i)` is called for every index sent (for momentum masking). `active`
/// says whether the worker trained in this step.
pub fn encode(
    residual: &mut [f32],
    threshold: f32,
    worker: u32,
    step: u64,
    active: bool,
    mut on_sent: impl FnMut(usize),
) -> Encoded {
    let t = threshold;
    let len = residual.len();
    let count = if t > 0.0 {
        residual.iter().filter(|r| r.abs() >= t).count()
    } else {
        0
    };
    let encoding = if count >= bitmap_from(len) {
        Encoding::Bitmap
    } else {
        Encoding::Sparse
    };
    let payload = match encoding {
        Encoding::Sparse => 4 * count,
        Encoding::Bitmap => len.div_ceil(4),
    };
    let mut bytes = vec![0u8; HEADER_BYTES + payload];
    if count > 0 {
        let body = &mut bytes[HEADER_BYTES..];
        let mut k = 0;
        for (i, r) in residual.iter_mut().enumerate() {
            let code = if *r >= t {
                *r -= t;
                1u8
            } else if *r <= -t {
                *r += t;
                2u8
            } else {
                continue;
            };
            on_sent(i);
            match encoding {
                Encoding::Sparse => {
                    let v = (i as i32 + 1) * if code == 1 { 1 } else { -1 };
                    body[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
                    k += 1;
                }
                Encoding::Bitmap => body[i / 4] |= code << (2 * (i % 4)),
            }
        }
    }
    let header = Header {
        encoding,
        active,
        worker,
        step,
        len: len as u32,
        count: count as u32,
        threshold: t,
    };
    write_header(&mut bytes, &header);
    Encoded { bytes, header }
}

fn write_header(bytes: &mut [u8], h: &Header) {
    bytes[0..4].copy_from_slice(MAGIC);
    bytes[4] = match h.encoding {
        Encoding::Sparse => 0,
        Encoding::Bitmap => 1,
    };
    bytes[5] = if h.active { FLAG_ACTIVE } else { 0 };
    bytes[6..8].fill(0);
    bytes[8..12].copy_from_slice(&h.worker.to_le_bytes());
    bytes[12..20].copy_from_slice(&h.step.to_le_bytes());
    bytes[20..24].copy_from_slice(&h.len.to_le_bytes());
    bytes[24..28].copy_from_slice(&h.count.to_le_bytes());
    bytes[28..32].copy_from_slice(&h.threshold.to_le_bytes());
    bytes[32..36].fill(0);
    let crc = crc32fast::hash(bytes);
    bytes[32..36].copy_from_slice(&crc.to_le_bytes());
}

fn corrupt(reason: impl Into<String>) -> SharingError {
    SharingError::Message {
        reason: reason.into(),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads and checks a message's header and payload size (not yet its CRC or entries): what
/// routing and deduplication need.
pub fn read_header(bytes: &[u8]) -> Result<Header, SharingError> {
    if bytes.len() < HEADER_BYTES {
        return Err(corrupt(format!(
            "truncated: {} bytes, a header alone is {HEADER_BYTES}",
            bytes.len()
        )));
    }
    if &bytes[0..4] != MAGIC {
        return Err(corrupt("not an encoded update (bad magic)"));
    }
    let encoding = match bytes[4] {
        0 => Encoding::Sparse,
        1 => Encoding::Bitmap,
        e => return Err(corrupt(format!("unknown encoding {e}"))),
    };
    if bytes[5] & !FLAG_ACTIVE != 0 || bytes[6..8] != [0, 0] {
        return Err(corrupt("unknown flags"));
    }
    let h = Header {
        encoding,
        active: bytes[5] & FLAG_ACTIVE != 0,
        worker: u32_at(bytes, 8),
        step: u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")),
        len: u32_at(bytes, 20),
        count: u32_at(bytes, 24),
        threshold: f32::from_le_bytes(bytes[28..32].try_into().expect("4 bytes")),
    };
    let payload = match h.encoding {
        Encoding::Sparse => 4 * h.count as usize,
        Encoding::Bitmap => (h.len as usize).div_ceil(4),
    };
    if bytes.len() != HEADER_BYTES + payload {
        return Err(corrupt(format!(
            "{} bytes, but the header announces {} ({:?}, {} entries of {})",
            bytes.len(),
            HEADER_BYTES + payload,
            h.encoding,
            h.count,
            h.len
        )));
    }
    if h.count > h.len {
        return Err(corrupt(format!("{} entries of {} values", h.count, h.len)));
    }
    if h.count > 0 && !(h.threshold.is_finite() && h.threshold > 0.0) {
        return Err(corrupt(format!("threshold {}", h.threshold)));
    }
    Ok(h)
}

/// Checks a whole message against an update vector of `len` values and adds its entries (±τ)
/// to `target` (of `len` values). On an error `target` is untouched.
pub fn decode_add(bytes: &[u8], len: usize, target: &mut [f32]) -> Result<Header, SharingError> {
    let h = read_header(bytes)?;
    if h.len as usize != len || target.len() != len {
        return Err(corrupt(format!(
            "an update of {} values for a vector of {len}",
            h.len
        )));
    }
    // The CRC was computed with its own field as 0.
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..32]);
    hasher.update(&[0; 4]);
    hasher.update(&bytes[HEADER_BYTES..]);
    if hasher.finalize() != u32_at(bytes, 32) {
        return Err(corrupt(
            "CRC-32 mismatch (the message was damaged in transit)",
        ));
    }
    let body = &bytes[HEADER_BYTES..];
    let t = h.threshold;
    // Check every entry first, so a bad one leaves the target untouched.
    match h.encoding {
        Encoding::Sparse => {
            let mut last = 0usize;
            for c in body.chunks_exact(4) {
                let v = i32::from_le_bytes(c.try_into().expect("4 bytes"));
                let i = v.unsigned_abs() as usize;
                if v == 0 || i > len || i <= last {
                    return Err(corrupt(format!(
                        "entry {v} out of order or range for {len} values"
                    )));
                }
                last = i;
            }
            for c in body.chunks_exact(4) {
                let v = i32::from_le_bytes(c.try_into().expect("4 bytes"));
                let i = v.unsigned_abs() as usize - 1;
                target[i] += if v > 0 { t } else { -t };
            }
        }
        Encoding::Bitmap => {
            let mut n = 0u32;
            for (k, &byte) in body.iter().enumerate() {
                for j in 0..4 {
                    let code = (byte >> (2 * j)) & 3;
                    if code == 0 {
                        continue;
                    }
                    if code == 3 || 4 * k + j >= len {
                        return Err(corrupt(format!(
                            "bitmap code {code} at value {}",
                            4 * k + j
                        )));
                    }
                    n += 1;
                }
            }
            if n != h.count {
                return Err(corrupt(format!(
                    "bitmap holds {n} entries, the header says {}",
                    h.count
                )));
            }
            for (k, &byte) in body.iter().enumerate() {
                for j in 0..4 {
                    match (byte >> (2 * j)) & 3 {
                        1 => target[4 * k + j] += t,
                        2 => target[4 * k + j] -= t,
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_at_the_threshold_are_sent_and_taken_off() {
        let mut r = vec![0.5, -0.25, 0.1, -0.6, 0.0, 0.25];
        let e = encode(&mut r, 0.25, 3, 9, true, |_| {});
        assert_eq!(e.header.count, 4);
        assert_eq!(e.header.encoding, Encoding::Bitmap, "4 of 6 >= 6/16");
        assert_eq!(r, vec![0.25, 0.0, 0.1, -0.6f32 + 0.25, 0.0, 0.0]);
        let mut got = vec![0f32; 6];
        let h = decode_add(&e.bytes, 6, &mut got).unwrap();
        assert_eq!((h.worker, h.step, h.active), (3, 9, true));
        assert_eq!(got, vec![0.25, -0.25, 0.0, -0.25, 0.0, 0.25]);
    }
}
