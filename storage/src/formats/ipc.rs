//! Arrow IPC files (the random-access "file" format with a footer). A split is a range of record
//! batches of one file; remote files are read through a seekable ranged-GET reader.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::reader::FileReader;
use arrow_schema::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::listing::list_inputs;
use crate::location::Location;
use crate::reader::SeekableReader;

/// A range of record batches of one IPC file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpcSplit {
    /// The file's URL.
    pub url: String,
    /// Batch indices to read.
    pub batches: Range<usize>,
    /// Hosts holding the data (empty when the store does not say).
    pub hosts: Vec<String>,
}

fn open(url: &str, config: &StorageConfig) -> Result<(String, FileReader<SeekableReader>)> {
    let loc = Location::resolve(url, config)?;
    let mut src = SeekableReader::open(&loc, config)?;
    check_declared_sizes(loc.url(), &mut src)?;
    let r = decoding(loc.url(), || {
        FileReader::try_new(src, None).map_err(|e| arrow_error(loc.url(), e))
    })?;
    Ok((loc.url().to_string(), r))
}

/// Checks the sizes an IPC file declares (its footer, record batch and dictionary blocks)
/// against its length before Arrow allocates buffers of those sizes: a flipped bit in a length
/// must not make a reader of a small file allocate gigabytes.
fn check_declared_sizes(url: &str, src: &mut SeekableReader) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e: std::io::Error| StorageError::from_io(url, e);
    let bad = |reason: String| StorageError::Corrupt {
        url: url.to_string(),
        reason,
    };
    let len = src.seek(SeekFrom::End(0)).map_err(io)?;
    if len < 18 {
        // Too short for magic, footer length and magic: Arrow says so without allocating.
        src.seek(SeekFrom::Start(0)).map_err(io)?;
        return Ok(());
    }
    let mut tail = [0u8; 10];
    src.seek(SeekFrom::End(-10)).map_err(io)?;
    src.read_exact(&mut tail).map_err(io)?;
    let footer_len = i32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if footer_len < 0 || footer_len as u64 + 18 > len {
        return Err(bad(format!(
            "footer length {footer_len} does not fit in a file of {len} bytes"
        )));
    }
    let mut footer = vec![0u8; footer_len as usize];
    src.seek(SeekFrom::End(-10 - i64::from(footer_len)))
        .map_err(io)?;
    src.read_exact(&mut footer).map_err(io)?;
    let footer =
        arrow_ipc::root_as_footer(&footer).map_err(|e| bad(format!("malformed footer: {e}")))?;
    let blocks = footer.recordBatches().into_iter().flatten();
    for b in blocks.chain(footer.dictionaries().into_iter().flatten()) {
        let end =
            i128::from(b.offset()) + i128::from(b.metaDataLength()) + i128::from(b.bodyLength());
        if b.offset() < 0 || b.metaDataLength() < 0 || b.bodyLength() < 0 || end > i128::from(len) {
            return Err(bad(format!(
                "a block at offset {} of {} + {} bytes does not fit in a file of {len} bytes",
                b.offset(),
                b.metaDataLength(),
                b.bodyLength()
            )));
        }
    }
    src.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(())
}

/// Runs Arrow's IPC decoder, which panics on some malformed files (a buffer offset past its
/// body) instead of returning an error: the panic becomes [`StorageError::Corrupt`] naming the
/// file.
fn decoding<T>(url: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(StorageError::Corrupt {
            url: url.to_string(),
            reason: format!("malformed Arrow IPC data ({why})"),
        })
    })
}

fn arrow_error(url: &str, e: arrow_schema::ArrowError) -> StorageError {
    match e {
        arrow_schema::ArrowError::IoError(_, io) => StorageError::from_io(url, io),
        e => StorageError::Arrow {
            url: url.to_string(),
            source: e,
        },
    }
}

/// Lists `urls` and cuts each file into splits of at most `batches_per_split` batches
/// (0 = one split per file). Returns the schema of the first file (empty for a committed empty
/// dataset, which has no file) and the splits.
pub fn ipc_splits(
    urls: &str,
    batches_per_split: usize,
    config: &StorageConfig,
) -> Result<(SchemaRef, Vec<IpcSplit>)> {
    let mut schema = None;
    let mut splits = Vec::new();
    for f in list_inputs(urls, config)? {
        let (url, r) = open(f.url(), config)?;
        match &schema {
            None => schema = Some(r.schema()),
            Some(s) if s.fields() != r.schema().fields() => {
                return Err(StorageError::Schema {
                    url,
                    reason: "schema differs from the first file's".into(),
                })
            }
            Some(_) => {}
        }
        let n = r.num_batches();
        let step = if batches_per_split == 0 {
            n.max(1)
        } else {
            batches_per_split
        };
        let mut i = 0;
        while i < n {
            splits.push(IpcSplit {
                url: url.clone(),
                batches: i..(i + step).min(n),
                hosts: Vec::new(),
            });
            i += step;
        }
    }
    // No file: a committed empty dataset, with an empty schema.
    let schema = schema.unwrap_or_else(|| Arc::new(arrow_schema::Schema::empty()));
    Ok((schema, splits))
}

/// Batches of one IPC split.
pub struct IpcBatchReader {
    inner: FileReader<SeekableReader>,
    url: String,
    remaining: usize,
}

/// Opens a split.
pub fn read_ipc_split(split: &IpcSplit, config: &StorageConfig) -> Result<IpcBatchReader> {
    let (url, mut inner) = open(&split.url, config)?;
    if split.batches.end > inner.num_batches() {
        return Err(StorageError::Schema {
            url,
            reason: format!(
                "split wants batches {:?}, file has {}",
                split.batches,
                inner.num_batches()
            ),
        });
    }
    decoding(&url, || {
        inner
            .set_index(split.batches.start)
            .map_err(|e| arrow_error(&url, e))
    })?;
    Ok(IpcBatchReader {
        inner,
        url,
        remaining: split.batches.len(),
    })
}

impl IpcBatchReader {
    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Iterator for IpcBatchReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (inner, url) = (&mut self.inner, &self.url);
        match decoding(url, || Ok(inner.next())) {
            Ok(next) => next.map(|r| r.map_err(|e| arrow_error(url, e))),
            Err(corrupt) => {
                // The decoder's state after a panic is unknown: read no further.
                self.remaining = 0;
                Some(Err(corrupt))
            }
        }
    }
}
