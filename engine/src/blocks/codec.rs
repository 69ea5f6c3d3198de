//! The one encoding of blocks: serialized in-memory levels, spill files and checkpoints.
//!
//! A block is a header (`EMB1` and the compression used) followed by chunks. Each chunk holds
//! a run of elements serialized with `bincode` (fixed-width little-endian integers: the fastest
//! serde format in our measurements, see `ember-storage-levels-bench`), optionally compressed
//! with LZ4 (`lz4_flex` block format), and is framed as
//! `[stored length u64][raw length u64][xxh3 of the stored bytes u64][stored bytes]`.
//! A final frame of length 0 carries the chunk count, so a truncated block is detected; a
//! flipped bit fails the chunk's checksum. Chunks are cut at about [`CHUNK_BYTES`] of element
//! bytes, so a reader holds one chunk at a time, never a whole partition.
//!
//! Plain-old-data vectors inside elements encode as raw bytes with `#[serde(with =
//! "ember_engine::blocks::pod")]` (one `memcpy` each way); without it bincode writes each
//! number separately.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::Conf;
use crate::error::{EngineError, Result};

/// Element bytes (as [`SizeOf`](super::SizeOf) counts them) at which a chunk is cut.
pub const CHUNK_BYTES: usize = 1 << 20;

const MAGIC: &[u8; 4] = b"EMB1";
const FRAME: usize = 24;

/// How chunks are compressed (`ember.io.compression.codec`, applied when `ember.rdd.compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Stored as serialized.
    None,
    /// LZ4 block compression (`lz4_flex`).
    Lz4,
}

/// The block codec: bincode, then the chosen compression, with a checksum per chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// Compression of each chunk.
    pub compression: Compression,
}

impl Codec {
    /// Serialized RDD blocks (`ember.rdd.compress`, default false as in Spark) and spill files
    /// (always compressed with `ember.io.compression.codec` unless it is `none`).
    pub fn for_rdd(conf: &Conf) -> Codec {
        let compress = conf.get_bool("ember.rdd.compress").unwrap_or(false);
        Codec {
            compression: if compress {
                Codec::configured(conf)
            } else {
                Compression::None
            },
        }
    }

    /// The compression named by `ember.io.compression.codec` (`lz4` or `none`).
    pub fn configured(conf: &Conf) -> Compression {
        match conf.get("ember.io.compression.codec") {
            Some("none") => Compression::None,
            _ => Compression::Lz4,
        }
    }

    /// A codec with the given compression.
    pub fn new(compression: Compression) -> Codec {
        Codec { compression }
    }

    /// Encodes a whole block at once (tests and small blocks).
    pub fn encode<T: Serialize>(&self, items: &[T]) -> Result<Vec<u8>> {
        let mut w = BlockWriter::memory(*self);
        w.write_chunk(items)?;
        w.finish_memory()
    }

    /// Decodes a whole block held in memory.
    pub fn decode<T: DeserializeOwned>(bytes: Arc<Vec<u8>>) -> Result<Vec<T>> {
        let mut r = ChunkReader::<T>::memory(bytes, "memory block".into())?;
        let mut out = Vec::new();
        while let Some(chunk) = r.next_chunk()? {
            out.extend(chunk);
        }
        Ok(out)
    }
}

fn checksum(bytes: &[u8]) -> u64 {
    twox_hash::XxHash3_64::oneshot(bytes)
}

enum Sink {
    Memory(Vec<u8>),
    File { out: BufWriter<File>, path: PathBuf },
}

/// Writes a block chunk by chunk to memory or to a file.
pub struct BlockWriter {
    codec: Codec,
    sink: Sink,
    written: u64,
    chunks: u64,
    scratch: Vec<u8>,
}

impl BlockWriter {
    /// A block built in memory.
    pub fn memory(codec: Codec) -> BlockWriter {
        let mut w = BlockWriter {
            codec,
            sink: Sink::Memory(Vec::new()),
            written: 0,
            chunks: 0,
            scratch: Vec::new(),
        };
        w.header_bytes();
        w
    }

    /// A block written to a new file at `path` (its directory is created if missing).
    pub fn file(codec: Codec, path: &Path) -> Result<BlockWriter> {
        let out = create_file(path)?;
        let mut w = BlockWriter {
            codec,
            sink: Sink::File {
                out: BufWriter::with_capacity(1 << 16, out),
                path: path.to_path_buf(),
            },
            written: 0,
            chunks: 0,
            scratch: Vec::new(),
        };
        w.put(&header(codec))?;
        Ok(w)
    }

    fn header_bytes(&mut self) {
        if let Sink::Memory(v) = &mut self.sink {
            v.extend_from_slice(&header(self.codec));
            self.written = v.len() as u64;
        }
    }

    /// Bytes of the block so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Moves a block being built in memory to a new file at `path`; the rest goes there.
    pub fn move_to_file(&mut self, path: &Path) -> Result<()> {
        if let Sink::Memory(bytes) = &mut self.sink {
            let bytes = std::mem::take(bytes);
            let mut out = BufWriter::with_capacity(1 << 16, create_file(path)?);
            out.write_all(&bytes)
                .map_err(|e| EngineError::io(path, e))?;
            self.sink = Sink::File {
                out,
                path: path.to_path_buf(),
            };
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.sink {
            Sink::Memory(v) => v.extend_from_slice(bytes),
            Sink::File { out, path } => out
                .write_all(bytes)
                .map_err(|e| EngineError::io(&*path, e))?,
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Appends one chunk holding `items` (empty slices write nothing).
    pub fn write_chunk<T: Serialize>(&mut self, items: &[T]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut raw = std::mem::take(&mut self.scratch);
        raw.clear();
        bincode::serialize_into(&mut raw, items)
            .map_err(|e| EngineError::Serialization(e.to_string()))?;
        let raw_len = raw.len() as u64;
        let stored = match self.codec.compression {
            Compression::None => raw,
            Compression::Lz4 => {
                let c = lz4_flex::block::compress(&raw);
                self.scratch = raw;
                c
            }
        };
        let mut frame = [0u8; FRAME];
        frame[..8].copy_from_slice(&(stored.len() as u64).to_le_bytes());
        frame[8..16].copy_from_slice(&raw_len.to_le_bytes());
        frame[16..].copy_from_slice(&checksum(&stored).to_le_bytes());
        self.put(&frame)?;
        self.put(&stored)?;
        self.chunks += 1;
        if self.codec.compression == Compression::None {
            self.scratch = stored;
        }
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        let mut frame = [0u8; FRAME];
        frame[8..16].copy_from_slice(&self.chunks.to_le_bytes());
        frame[16..].copy_from_slice(&checksum(&self.chunks.to_le_bytes()).to_le_bytes());
        self.put(&frame)
    }

    /// Ends a block built in memory and returns its bytes.
    pub fn finish_memory(mut self) -> Result<Vec<u8>> {
        self.end()?;
        match self.sink {
            Sink::Memory(mut v) => {
                v.shrink_to_fit();
                Ok(v)
            }
            Sink::File { path, .. } => Err(EngineError::InvalidArgument {
                operation: "BlockWriter::finish_memory".into(),
                reason: format!("the block was moved to {}", path.display()),
            }),
        }
    }

    /// Ends the block; for a file, flushes it and returns its path and length.
    pub fn finish(mut self) -> Result<Finished> {
        self.end()?;
        match self.sink {
            Sink::Memory(mut v) => {
                v.shrink_to_fit();
                Ok(Finished::Memory(v))
            }
            Sink::File { out, path } => {
                let file = out
                    .into_inner()
                    .map_err(|e| EngineError::io(&path, e.into_error()))?;
                drop(file);
                Ok(Finished::File {
                    path,
                    bytes: self.written,
                })
            }
        }
    }

    /// The file being written, if the block is on its way to disk.
    pub fn path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::File { path, .. } => Some(path),
            Sink::Memory(_) => None,
        }
    }
}

/// A finished block.
pub enum Finished {
    /// The block's bytes.
    Memory(Vec<u8>),
    /// A block file.
    File {
        /// Where it is.
        path: PathBuf,
        /// Its length.
        bytes: u64,
    },
}

fn header(codec: Codec) -> [u8; 5] {
    let mut h = [0u8; 5];
    h[..4].copy_from_slice(MAGIC);
    h[4] = match codec.compression {
        Compression::None => 0,
        Compression::Lz4 => 1,
    };
    h
}

fn create_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    }
    File::create(path).map_err(|e| EngineError::io(path, e))
}

enum Source {
    Memory { bytes: Arc<Vec<u8>>, pos: usize },
    File(BufReader<File>),
}

/// Reads a block's chunks back, checking each chunk's checksum.
pub struct ChunkReader<T> {
    source: Source,
    location: String,
    compression: Compression,
    offset: u64,
    chunks: u64,
    done: bool,
    buf: Vec<u8>,
    raw: Vec<u8>,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> ChunkReader<T> {
    /// Reads a block held in memory; `location` names it in errors.
    pub fn memory(bytes: Arc<Vec<u8>>, location: String) -> Result<ChunkReader<T>> {
        let head: [u8; 5] = bytes
            .get(..5)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| corrupt(&location, 0, "shorter than the block header"))?;
        let compression = parse_header(&head, &location)?;
        Ok(ChunkReader::with(
            Source::Memory { bytes, pos: 5 },
            location,
            compression,
        ))
    }

    /// Opens a block file.
    pub fn open(path: &Path) -> Result<ChunkReader<T>> {
        let file = File::open(path).map_err(|e| EngineError::io(path, e))?;
        let mut r = BufReader::with_capacity(1 << 16, file);
        let location = path.display().to_string();
        let mut head = [0u8; 5];
        r.read_exact(&mut head)
            .map_err(|_| corrupt(&location, 0, "shorter than the block header"))?;
        let compression = parse_header(&head, &location)?;
        Ok(ChunkReader::with(Source::File(r), location, compression))
    }

    fn with(source: Source, location: String, compression: Compression) -> ChunkReader<T> {
        ChunkReader {
            source,
            location,
            compression,
            offset: 5,
            chunks: 0,
            done: false,
            buf: Vec::new(),
            raw: Vec::new(),
            _t: PhantomData,
        }
    }

    fn read_exact(&mut self, n: usize, what: &str) -> Result<()> {
        self.buf.clear();
        match &mut self.source {
            Source::Memory { bytes, pos } => {
                let slice = bytes.get(*pos..*pos + n).ok_or_else(|| {
                    corrupt(&self.location, self.offset, &format!("truncated {what}"))
                })?;
                self.buf.extend_from_slice(slice);
                *pos += n;
            }
            Source::File(r) => {
                self.buf.resize(n, 0);
                r.read_exact(&mut self.buf).map_err(|e| {
                    corrupt(
                        &self.location,
                        self.offset,
                        &format!("truncated {what}: {e}"),
                    )
                })?;
            }
        }
        self.offset += n as u64;
        Ok(())
    }

    /// The next chunk's elements, or `None` after the end frame.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<T>>> {
        if self.done {
            return Ok(None);
        }
        let frame_at = self.offset;
        self.read_exact(FRAME, "chunk frame")?;
        let word =
            |i: usize| u64::from_le_bytes(self.buf[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        let (stored, raw_len, sum) = (word(0), word(1), word(2));
        if stored == 0 {
            if raw_len != self.chunks || sum != checksum(&raw_len.to_le_bytes()) {
                return Err(corrupt(&self.location, frame_at, "bad end frame"));
            }
            self.done = true;
            return Ok(None);
        }
        let limit = 1u64 << 40;
        if stored > limit || raw_len > limit {
            return Err(corrupt(
                &self.location,
                frame_at,
                "implausible chunk length",
            ));
        }
        // Memory blocks are checked and decoded in place, without a copy.
        let data_at = self.offset;
        let in_place = match &mut self.source {
            Source::Memory { bytes, pos } => {
                let end = *pos + stored as usize;
                if end > bytes.len() {
                    return Err(corrupt(&self.location, data_at, "truncated chunk"));
                }
                let b = Arc::clone(bytes);
                *pos = end;
                self.offset += stored;
                Some((b, end - stored as usize, end))
            }
            Source::File(_) => None,
        };
        let stored_bytes: &[u8] = match &in_place {
            Some((b, s, e)) => &b[*s..*e],
            None => {
                self.read_exact(stored as usize, "chunk")?;
                &self.buf
            }
        };
        if checksum(stored_bytes) != sum {
            return Err(corrupt(&self.location, data_at, "checksum mismatch"));
        }
        let raw: &[u8] = match self.compression {
            Compression::None => stored_bytes,
            Compression::Lz4 => {
                self.raw.resize(raw_len as usize, 0);
                let n = lz4_flex::block::decompress_into(stored_bytes, &mut self.raw)
                    .map_err(|e| corrupt(&self.location, data_at, &format!("lz4: {e}")))?;
                if n as u64 != raw_len {
                    return Err(corrupt(
                        &self.location,
                        data_at,
                        "decompressed length differs",
                    ));
                }
                &self.raw
            }
        };
        let items: Vec<T> = bincode::deserialize(raw)
            .map_err(|e| corrupt(&self.location, data_at, &format!("decode: {e}")))?;
        self.chunks += 1;
        Ok(Some(items))
    }
}

fn parse_header(head: &[u8; 5], location: &str) -> Result<Compression> {
    if &head[..4] != MAGIC {
        return Err(corrupt(location, 0, "not an Ember block (bad magic)"));
    }
    match head[4] {
        0 => Ok(Compression::None),
        1 => Ok(Compression::Lz4),
        other => Err(corrupt(
            location,
            4,
            &format!("unknown compression {other}"),
        )),
    }
}

fn corrupt(location: &str, offset: u64, reason: &str) -> EngineError {
    EngineError::CorruptBlock {
        location: location.to_string(),
        offset,
        reason: reason.to_string(),
    }
}

/// The elements of a block, chunk by chunk; the first error ends the iteration and is handed
/// to `on_error` (which fails the task so that it is retried and the block recomputed).
pub struct BlockIter<T> {
    reader: ChunkReader<T>,
    current: std::vec::IntoIter<T>,
    on_error: Option<Box<dyn FnOnce(EngineError)>>,
}

impl<T: DeserializeOwned> BlockIter<T> {
    /// Iterates `reader`, reporting a failure to `on_error`.
    pub fn new(reader: ChunkReader<T>, on_error: Box<dyn FnOnce(EngineError)>) -> BlockIter<T> {
        BlockIter {
            reader,
            current: Vec::new().into_iter(),
            on_error: Some(on_error),
        }
    }
}

impl<T: DeserializeOwned> Iterator for BlockIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(v) = self.current.next() {
                return Some(v);
            }
            self.on_error.as_ref()?;
            match self.reader.next_chunk() {
                Ok(Some(chunk)) => self.current = chunk.into_iter(),
                Ok(None) => {
                    self.on_error = None;
                    return None;
                }
                Err(e) => {
                    if let Some(f) = self.on_error.take() {
                        f(e);
                    }
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(u64, String)> {
        (0..1000).map(|i| (i, format!("value {i}"))).collect()
    }

    #[test]
    fn round_trips_with_and_without_lz4() {
        for c in [Compression::None, Compression::Lz4] {
            let codec = Codec::new(c);
            let mut w = BlockWriter::memory(codec);
            let data = sample();
            for chunk in data.chunks(300) {
                w.write_chunk(chunk).unwrap();
            }
            let bytes = Arc::new(w.finish_memory().unwrap());
            assert_eq!(Codec::decode::<(u64, String)>(bytes).unwrap(), data);
        }
    }

    #[test]
    fn every_flipped_byte_and_truncation_is_detected() {
        let bytes = Codec::new(Compression::Lz4).encode(&sample()).unwrap();
        for i in (0..bytes.len()).step_by(97) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            let r = Codec::decode::<(u64, String)>(Arc::new(bad));
            assert!(
                matches!(r, Err(EngineError::CorruptBlock { .. })),
                "byte {i}: {r:?}"
            );
        }
        let cut = Arc::new(bytes[..bytes.len() - 3].to_vec());
        assert!(matches!(
            Codec::decode::<(u64, String)>(cut),
            Err(EngineError::CorruptBlock { .. })
        ));
    }
}
