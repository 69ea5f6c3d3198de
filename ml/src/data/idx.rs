//! The IDX format of the MNIST files: a magic number naming the element type and the number of
//! dimensions, big-endian `u32` dimensions, then the elements in row-major order (big-endian).
//! Files may be gzip-compressed; that is detected from their first bytes.

use std::io::Read;
use std::path::Path;

use super::source::Source;
use super::DataError;

/// The element type named by the third byte of an IDX magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxType {
    /// `0x08`: unsigned byte.
    U8,
    /// `0x09`: signed byte.
    I8,
    /// `0x0B`: big-endian `i16`.
    I16,
    /// `0x0C`: big-endian `i32`.
    I32,
    /// `0x0D`: big-endian `f32`.
    F32,
    /// `0x0E`: big-endian `f64`.
    F64,
}

impl IdxType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x08 => IdxType::U8,
            0x09 => IdxType::I8,
            0x0B => IdxType::I16,
            0x0C => IdxType::I32,
            0x0D => IdxType::F32,
            0x0E => IdxType::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }
}

/// The contents of an IDX file: its dimensions and its elements, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// The dimensions, outermost first (for MNIST images: count, rows, columns).
    pub dims: Vec<usize>,
    /// The element type.
    pub kind: IdxType,
    /// The raw element bytes as stored (big-endian for multi-byte types).
    bytes: Vec<u8>,
}

impl IdxArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.kind.size()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The elements as bytes, when the type is [`IdxType::U8`].
    pub fn as_u8(&self) -> Option<&[u8]> {
        (self.kind == IdxType::U8).then_some(&self.bytes[..])
    }

    /// The elements converted to `f32` (exact for the integer types and `f32`, rounded for
    /// `f64`).
    pub fn to_f32(&self) -> Vec<f32> {
        let b = &self.bytes;
        match self.kind {
            IdxType::U8 => b.iter().map(|&v| f32::from(v)).collect(),
            IdxType::I8 => b.iter().map(|&v| f32::from(v as i8)).collect(),
            IdxType::I16 => b
                .chunks_exact(2)
                .map(|c| f32::from(i16::from_be_bytes([c[0], c[1]])))
                .collect(),
            IdxType::I32 => b
                .chunks_exact(4)
                .map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            IdxType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            IdxType::F64 => b
                .chunks_exact(8)
                .map(|c| {
                    f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
        }
    }
}

/// Reads an IDX file, plain or gzip-compressed.
///
/// Errors: [`DataError::BadMagic`] when the first two bytes are not zero or the type code is
/// unknown, [`DataError::Truncated`] when the file ends before the announced dimensions or
/// elements (naming the offset), [`DataError::Corrupt`] for damaged gzip data, and
/// [`DataError::TrailingData`] when bytes follow the announced elements.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    parse(Source::open(path.as_ref())?)
}

/// Reads an IDX file at any storage URL (`s3://`, `memory://`, `file://`, a bare path) with the
/// storage settings in `config` (for an application: `ctx.conf().storage_config()`).
pub fn read_idx_at(
    url: &str,
    config: &ember_storage::StorageConfig,
) -> Result<IdxArray, DataError> {
    parse(Source::open_with(Path::new(url), config)?)
}

fn parse(mut src: Source) -> Result<IdxArray, DataError> {
    let path = src.path().to_path_buf();
    let mut magic = [0u8; 4];
    src.read_exact_or(&mut magic, "reading the magic number")?;
    let magic_value = u32::from_be_bytes(magic);
    let bad = |reason: &str| DataError::BadMagic {
        path: path.clone(),
        magic: magic_value,
        reason: reason.to_string(),
    };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad("the first two bytes must be zero"));
    }
    let kind = IdxType::from_code(magic[2]).ok_or_else(|| bad("unknown element type code"))?;
    let ndims = usize::from(magic[3]);
    if ndims == 0 {
        return Err(bad("zero dimensions"));
    }
    let mut dims = Vec::with_capacity(ndims);
    for d in 0..ndims {
        let mut buf = [0u8; 4];
        src.read_exact_or(&mut buf, &format!("reading dimension {d} of {ndims}"))?;
        dims.push(u32::from_be_bytes(buf) as usize);
    }
    let total = dims
        .iter()
        .try_fold(kind.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::Invalid {
            path: path.clone(),
            what: format!("dimensions {dims:?} overflow the address space"),
        })?;
    let bytes = read_elements(&mut src, total)?;
    src.expect_end()?;
    Ok(IdxArray { dims, kind, bytes })
}

/// Reads `total` bytes without trusting the header for the allocation size up front: a corrupt
/// header claiming terabytes fails as truncated instead of exhausting memory.
fn read_elements(src: &mut Source, total: usize) -> Result<Vec<u8>, DataError> {
    const CHUNK: usize = 1 << 22;
    let mut bytes = Vec::with_capacity(total.min(CHUNK));
    while bytes.len() < total {
        let want = (total - bytes.len()).min(CHUNK);
        let start = bytes.len();
        bytes.resize(start + want, 0);
        let what = format!("reading elements: {total} bytes announced after the header");
        src.read_exact_or(&mut bytes[start..], &what)?;
    }
    Ok(bytes)
}

/// Reads an IDX file from any reader (plain or gzip-compressed bytes); `name` stands for the
/// source in error messages.
pub fn read_idx_from(
    reader: impl Read + Send + 'static,
    name: &str,
) -> Result<IdxArray, DataError> {
    parse(Source::new(Box::new(reader), Path::new(name))?)
}
