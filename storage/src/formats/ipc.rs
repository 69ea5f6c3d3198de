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
    let src = SeekableReader::open(&loc, config)?;
    let r = FileReader::try_new(src, None).map_err(|e| arrow_error(loc.url(), e))?;
    Ok((loc.url().to_string(), r))
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
    inner
        .set_index(split.batches.start)
        .map_err(|e| arrow_error(&url, e))?;
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
        self.inner
            .next()
            .map(|r| r.map_err(|e| arrow_error(&self.url, e)))
    }
}
