//! Checksums of the Parquet files Ember writes, so a flipped byte reads as an error rather than as
//! different values.
//!
//! The `parquet` crate (60.x) verifies the optional page-header CRCs when its `crc` feature is on
//! (enabled here, so files from writers that set them, such as parquet-mr and pyarrow with
//! `write_page_checksum`, are checked), but it cannot write them. So Ember's part writer records a
//! CRC-32 of every column chunk it writes (the exact bytes of the chunk: page headers, pages and
//! dictionary) in the file's key-value metadata under [`CRC_KEY`], and the reader, when a file
//! has that entry, reads each column chunk it needs whole, checks it, and decodes from the checked
//! bytes. Files without the entry are read as before. The footer itself is not covered: damage
//! there is a decode error (or changed statistics, which only affect pruning).

use std::io::{Read, Write};

use bytes::{Buf, Bytes};
use parquet::file::metadata::{KeyValue, ParquetMetaData};
use parquet::file::reader::{ChunkReader, Length};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};

/// The key-value metadata entry holding the column-chunk checksums.
pub const CRC_KEY: &str = "ember.chunk_crc32";

/// The entry's JSON value.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ChunkChecksums {
    /// Format version (1).
    v: u32,
    /// CRC-32 (IEEE) of each column chunk: `crc32[row_group][leaf_column]`.
    crc32: Vec<Vec<u32>>,
}

impl ChunkChecksums {
    pub(crate) fn new() -> Self {
        ChunkChecksums {
            v: 1,
            crc32: Vec::new(),
        }
    }

    /// Row groups recorded so far.
    pub(crate) fn row_groups(&self) -> usize {
        self.crc32.len()
    }

    /// Records the next row group's chunk checksums.
    pub(crate) fn push(&mut self, chunks: Vec<u32>) {
        self.crc32.push(chunks);
    }

    /// The metadata entry to write.
    pub(crate) fn key_value(&self) -> KeyValue {
        KeyValue::new(
            CRC_KEY.to_string(),
            serde_json::to_string(self).unwrap_or_default(),
        )
    }

    /// The checksums stored in a file's metadata; `Ok(None)` when it has none (not written by
    /// Ember, or before checksums), an error when the entry is damaged.
    pub(crate) fn read(url: &str, meta: &ParquetMetaData) -> Result<Option<ChunkChecksums>> {
        let Some(kv) = meta.file_metadata().key_value_metadata() else {
            return Ok(None);
        };
        let Some(entry) = kv.iter().find(|kv| kv.key == CRC_KEY) else {
            return Ok(None);
        };
        let corrupt = |reason: String| StorageError::Corrupt {
            url: url.to_string(),
            reason,
        };
        let value = entry.value.as_deref().unwrap_or("");
        let sums: ChunkChecksums = serde_json::from_str(value)
            .map_err(|e| corrupt(format!("unreadable `{CRC_KEY}` metadata: {e}")))?;
        let shape_ok = sums.v == 1
            && sums.crc32.len() == meta.num_row_groups()
            && sums
                .crc32
                .iter()
                .zip(meta.row_groups())
                .all(|(c, rg)| c.len() == rg.num_columns());
        if !shape_ok {
            return Err(corrupt(format!(
                "`{CRC_KEY}` metadata does not match the file's row groups and columns"
            )));
        }
        Ok(Some(sums))
    }

    /// The stored checksum of one column chunk.
    pub(crate) fn get(&self, row_group: usize, column: usize) -> Option<u32> {
        self.crc32.get(row_group)?.get(column).copied()
    }
}

/// A writer that passes bytes through and keeps those not yet checksummed, so the part writer can
/// checksum each column chunk once its row group is written.
pub(crate) struct CrcTap<W> {
    inner: W,
    /// Bytes written so far.
    pos: u64,
    /// File offset of `kept[0]`.
    kept_from: u64,
    kept: Vec<u8>,
}

impl<W> CrcTap<W> {
    pub(crate) fn new(inner: W) -> Self {
        CrcTap {
            inner,
            pos: 0,
            kept_from: 0,
            kept: Vec::new(),
        }
    }

    /// CRC-32 of the file bytes `start..start + len`, if they are still kept.
    pub(crate) fn crc(&self, start: u64, len: u64) -> Option<u32> {
        let from = usize::try_from(start.checked_sub(self.kept_from)?).ok()?;
        let to = from.checked_add(usize::try_from(len).ok()?)?;
        self.kept.get(from..to).map(crc32fast::hash)
    }

    /// Forgets the bytes before `offset`.
    pub(crate) fn release_before(&mut self, offset: u64) {
        let n = offset
            .saturating_sub(self.kept_from)
            .min(self.kept.len() as u64) as usize;
        self.kept.drain(..n);
        self.kept_from += n as u64;
    }

    pub(crate) fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CrcTap<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.kept.extend_from_slice(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A Parquet source with some column chunks already read (and checked) in memory; reads inside
/// them are served from memory, anything else from the source.
pub(crate) struct Preloaded<S> {
    pub(crate) source: S,
    /// `(file offset, bytes)` of each loaded chunk.
    pub(crate) chunks: Vec<(u64, Bytes)>,
}

impl<S> Preloaded<S> {
    /// The loaded chunk holding `start..start + len`, as a slice.
    fn find(&self, start: u64, len: u64) -> Option<Bytes> {
        self.chunks.iter().find_map(|(at, bytes)| {
            let from = start.checked_sub(*at)?;
            let to = from.checked_add(len)?;
            (to <= bytes.len() as u64).then(|| bytes.slice(from as usize..to as usize))
        })
    }
}

impl<S: Length> Length for Preloaded<S> {
    fn len(&self) -> u64 {
        self.source.len()
    }
}

impl<S: ChunkReader<T = Box<dyn Read + Send>>> ChunkReader for Preloaded<S> {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let held = self.chunks.iter().find_map(|(at, bytes)| {
            let from = start.checked_sub(*at)?;
            (from < bytes.len() as u64).then(|| bytes.slice(from as usize..))
        });
        match held {
            Some(b) => Ok(Box::new(b.reader())),
            None => self.source.get_read(start),
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self.find(start, length as u64) {
            Some(b) => Ok(b),
            None => self.source.get_bytes(start, length),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tap_checksums_kept_ranges_only() {
        let mut tap = CrcTap::new(Vec::new());
        tap.write_all(b"PAR1hello world").unwrap();
        assert_eq!(tap.crc(4, 5), Some(crc32fast::hash(b"hello")));
        tap.release_before(9);
        assert_eq!(tap.crc(4, 5), None, "released");
        assert_eq!(tap.crc(10, 5), Some(crc32fast::hash(b"world")));
        assert_eq!(tap.crc(10, 6), None, "past the end");
        assert_eq!(tap.into_inner(), b"PAR1hello world");
    }
}
