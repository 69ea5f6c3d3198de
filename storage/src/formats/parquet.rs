//! Parquet: row groups as partitions, column projection, and row-group pruning from column
//! statistics for simple predicates (`column <op> literal`).
//!
//! Pruning is conservative: a row group is skipped only when its min/max/null statistics prove no
//! row can satisfy every predicate; rows of the kept groups are *not* filtered here (the engine
//! applies its filter after the scan). A predicate the scan cannot use (unknown column, a literal
//! of the wrong type) is an error when the scan is planned (see [`super::parquet_prune`]). Local
//! files are read with positioned reads; remote objects with one ranged GET per column chunk.
//!
//! Files Ember wrote carry a checksum of every column chunk, verified before decoding (see
//! [`super::parquet_crc`]); page-header CRCs written by other tools are verified too.
//!
//! A committed empty dataset (a save of an RDD without rows: a `_SUCCESS` manifest listing no
//! file) plans as no splits and an empty schema; projection and predicates are not checked then,
//! since there is no schema to check them against.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::file::reader::{ChunkReader, Length};
use serde::{Deserialize, Serialize};

use super::parquet_crc::{ChunkChecksums, Preloaded};
use super::parquet_prune::check_predicates;
pub use super::parquet_prune::{row_group_may_match, CmpOp, Predicate, Scalar};

use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::listing::list_inputs;
use crate::location::Location;
use crate::reader::{local_err, ObjectReader};

/// What to read from a Parquet dataset.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ParquetScan {
    /// Columns to read (top-level names); all when `None`.
    pub projection: Option<Vec<String>>,
    /// Predicates (ANDed) used to prune row groups.
    pub predicates: Vec<Predicate>,
    /// Rows per batch (0 = 8192).
    pub batch_size: usize,
}

/// One row group of one file: a partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParquetSplit {
    /// The file's URL.
    pub url: String,
    /// Row groups to read.
    pub row_groups: Vec<usize>,
    /// Rows in those row groups.
    pub rows: u64,
    /// Compressed bytes of those row groups.
    pub bytes: u64,
    /// Hosts holding the data (empty when the store does not say).
    pub hosts: Vec<String>,
}

/// The plan of a Parquet scan.
#[derive(Clone, Debug)]
pub struct ParquetPlan {
    /// Schema of the batches (after projection).
    pub schema: SchemaRef,
    /// Partitions that survived pruning.
    pub splits: Vec<ParquetSplit>,
    /// Row groups in all files.
    pub total_row_groups: usize,
    /// Row groups skipped by pruning.
    pub pruned_row_groups: usize,
}

/// A Parquet file for the sync reader: a local file, or an object fetched with ranged GETs.
pub enum ParquetSource {
    /// A local file.
    Local(File),
    /// A remote object and its length.
    Remote {
        /// The object.
        loc: Location,
        /// Its length.
        len: u64,
        /// Configuration for streaming reads.
        config: StorageConfig,
    },
}

impl ParquetSource {
    /// Opens `loc`.
    pub fn open(loc: &Location, config: &StorageConfig) -> Result<Self> {
        if let Some(p) = loc.local_path() {
            return Ok(ParquetSource::Local(
                File::open(p).map_err(|e| local_err(loc.url(), e))?,
            ));
        }
        let len = loc.head()?.size;
        Ok(ParquetSource::Remote {
            loc: loc.clone(),
            len,
            config: config.clone(),
        })
    }
}

impl Length for ParquetSource {
    fn len(&self) -> u64 {
        match self {
            ParquetSource::Local(f) => f.len(),
            ParquetSource::Remote { len, .. } => *len,
        }
    }
}

fn pq_err(e: StorageError) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl ChunkReader for ParquetSource {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        match self {
            ParquetSource::Local(f) => Ok(Box::new(f.get_read(start)?)),
            ParquetSource::Remote { loc, len, config } => Ok(Box::new(
                ObjectReader::open(loc, start, *len, *len, config).map_err(pq_err)?,
            )),
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            ParquetSource::Local(f) => {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; length];
                f.read_exact_at(&mut buf, start).map_err(|e| {
                    parquet::errors::ParquetError::EOF(format!(
                        "reading {length} bytes at {start}: {e}"
                    ))
                })?;
                Ok(Bytes::from(buf))
            }
            ParquetSource::Remote { loc, .. } => {
                loc.get_range(start, start + length as u64).map_err(pq_err)
            }
        }
    }
}

fn parquet_error(url: &str, e: parquet::errors::ParquetError) -> StorageError {
    match e {
        parquet::errors::ParquetError::External(inner) if inner.is::<StorageError>() => {
            *inner.downcast::<StorageError>().expect("checked")
        }
        e => StorageError::Parquet {
            url: url.to_string(),
            source: e,
        },
    }
}

/// Reads a file's metadata (footer) and Arrow schema.
pub fn read_metadata(url: &str, config: &StorageConfig) -> Result<ArrowReaderMetadata> {
    let loc = Location::resolve(url, config)?;
    let src = ParquetSource::open(&loc, config)?;
    ArrowReaderMetadata::load(&src, ArrowReaderOptions::new())
        .map_err(|e| parquet_error(loc.url(), e))
}

fn projection_indices(
    url: &str,
    schema: &SchemaRef,
    projection: &Option<Vec<String>>,
) -> Result<Option<Vec<usize>>> {
    let Some(cols) = projection else {
        return Ok(None);
    };
    cols.iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| StorageError::Schema {
                url: url.to_string(),
                reason: format!(
                    "no column `{c}` (columns: {:?})",
                    schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
                ),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Lists `urls` and plans one split per row group, pruning with `scan.predicates`.
pub fn parquet_splits(
    urls: &str,
    scan: &ParquetScan,
    config: &StorageConfig,
) -> Result<ParquetPlan> {
    let files = list_inputs(urls, config)?;
    let mut schema: Option<SchemaRef> = None;
    let mut splits = Vec::new();
    let (mut total, mut pruned) = (0, 0);
    for f in &files {
        let meta = read_metadata(f.url(), config)?;
        match &schema {
            None => {
                check_predicates(f.url(), meta.schema(), &scan.predicates)?;
                schema = Some(meta.schema().clone());
            }
            Some(s) if s.fields() != meta.schema().fields() => {
                return Err(StorageError::Schema {
                    url: f.url().to_string(),
                    reason: format!(
                        "schema {:?} differs from the first file's {:?}",
                        meta.schema(),
                        s
                    ),
                })
            }
            Some(_) => {}
        }
        let md = meta.metadata();
        for (i, rg) in md.row_groups().iter().enumerate() {
            total += 1;
            if !row_group_may_match(rg, &scan.predicates, f.url())? {
                pruned += 1;
                continue;
            }
            splits.push(ParquetSplit {
                url: f.url().to_string(),
                row_groups: vec![i],
                rows: rg.num_rows() as u64,
                bytes: rg.compressed_size() as u64,
                hosts: Vec::new(),
            });
        }
    }
    let Some(full) = schema else {
        // A committed empty dataset: nothing to read, and no schema to check the scan against.
        return Ok(ParquetPlan {
            schema: Arc::new(Schema::empty()),
            splits,
            total_row_groups: 0,
            pruned_row_groups: 0,
        });
    };
    let projected = match projection_indices(files[0].url(), &full, &scan.projection)? {
        Some(idx) => Arc::new(full.project(&idx).map_err(|e| StorageError::Arrow {
            url: urls.to_string(),
            source: e,
        })?),
        None => full,
    };
    tracing::debug!(urls, total, pruned, "planned parquet scan");
    Ok(ParquetPlan {
        schema: projected,
        splits,
        total_row_groups: total,
        pruned_row_groups: pruned,
    })
}

/// Reads one split's batches.
pub fn read_parquet_split(
    split: &ParquetSplit,
    scan: &ParquetScan,
    config: &StorageConfig,
) -> Result<ParquetBatchReader> {
    let loc = Location::resolve(&split.url, config)?;
    let src = ParquetSource::open(&loc, config)?;
    let meta = ArrowReaderMetadata::load(&src, ArrowReaderOptions::new())
        .map_err(|e| parquet_error(loc.url(), e))?;
    let idx = projection_indices(loc.url(), meta.schema(), &scan.projection)?;
    let src = verified_chunks(loc.url(), src, meta.metadata(), &split.row_groups, &idx)?;
    let mut b = ParquetRecordBatchReaderBuilder::new_with_metadata(src, meta)
        .with_row_groups(split.row_groups.clone())
        .with_batch_size(if scan.batch_size == 0 {
            8192
        } else {
            scan.batch_size
        });
    // The decoder yields projected columns in file order; `reorder` restores the requested order.
    let mut reorder = None;
    if let Some(idx) = idx {
        let mut sorted = idx.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let positions: Vec<usize> = idx
            .iter()
            .map(|i| sorted.binary_search(i).expect("present"))
            .collect();
        if positions.iter().enumerate().any(|(k, &p)| k != p) || positions.len() != sorted.len() {
            reorder = Some(positions);
        }
        let mask = ProjectionMask::roots(b.parquet_schema(), sorted);
        b = b.with_projection(mask);
    }
    let inner = b.build().map_err(|e| parquet_error(loc.url(), e))?;
    Ok(ParquetBatchReader {
        inner,
        url: loc.url().to_string(),
        reorder,
    })
}

/// With Ember's chunk checksums in the file: reads the column chunks the split needs (its row
/// groups, the projected columns) whole and checks each one before anything is decoded.
fn verified_chunks(
    url: &str,
    source: ParquetSource,
    meta: &parquet::file::metadata::ParquetMetaData,
    row_groups: &[usize],
    projection: &Option<Vec<usize>>,
) -> Result<Preloaded<ParquetSource>> {
    let mut chunks = Vec::new();
    let Some(sums) = ChunkChecksums::read(url, meta)? else {
        return Ok(Preloaded { source, chunks });
    };
    let schema = meta.file_metadata().schema_descr();
    for &rg in row_groups {
        let Some(group) = meta.row_groups().get(rg) else {
            continue; // the builder reports a bad row-group index
        };
        for (c, col) in group.columns().iter().enumerate() {
            let root = schema.get_column_root_idx(c);
            if projection.as_ref().is_some_and(|p| !p.contains(&root)) {
                continue;
            }
            let (start, len) = col.byte_range();
            let bytes = usize::try_from(len)
                .ok()
                .map(|n| source.get_bytes(start, n))
                .transpose()
                .map_err(|e| parquet_error(url, e))?;
            let computed = bytes.as_ref().map(|b| crc32fast::hash(b));
            let stored = sums.get(rg, c);
            if computed.is_none() || computed != stored {
                return Err(StorageError::Corrupt {
                    url: url.to_string(),
                    reason: format!(
                        "column chunk `{}` of row group {rg} (bytes {start}..{}) fails its CRC-32 \
                         check (stored {:08x}, computed {:08x}): the file changed after it was \
                         written",
                        col.column_path().string(),
                        start.saturating_add(len),
                        stored.unwrap_or(0),
                        computed.unwrap_or(0)
                    ),
                });
            }
            if let Some(b) = bytes {
                chunks.push((start, b));
            }
        }
    }
    Ok(Preloaded { source, chunks })
}

/// Batches of a Parquet split.
pub struct ParquetBatchReader {
    inner: ParquetRecordBatchReader,
    url: String,
    reorder: Option<Vec<usize>>,
}

impl ParquetBatchReader {
    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        use arrow_array::RecordBatchReader;
        let s = self.inner.schema();
        match &self.reorder {
            Some(p) => Arc::new(s.project(p).expect("positions are in range")),
            None => s,
        }
    }
}

impl Iterator for ParquetBatchReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let url = &self.url;
        self.inner.next().map(|r| {
            let batch = r.map_err(|e| StorageError::Arrow {
                url: url.clone(),
                source: e,
            })?;
            match &self.reorder {
                Some(p) => batch.project(p).map_err(|e| StorageError::Arrow {
                    url: url.clone(),
                    source: e,
                }),
                None => Ok(batch),
            }
        })
    }
}
