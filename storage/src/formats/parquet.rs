//! Parquet: row groups as partitions, column projection, and row-group pruning from column
//! statistics for simple predicates (`column <op> literal`).
//!
//! Pruning is conservative: a row group is skipped only when its min/max/null statistics prove no
//! row can satisfy every predicate; rows of the kept groups are *not* filtered here (the engine
//! applies its filter after the scan). Local files are read with positioned reads; remote objects
//! with one ranged GET per column chunk.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::Statistics;
use serde::{Deserialize, Serialize};

use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::listing::list_inputs;
use crate::location::Location;
use crate::reader::{local_err, ObjectReader};

/// A comparison operator of a pruning predicate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

/// A literal of a pruning predicate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Scalar {
    /// An integer (compared with integer and floating-point columns).
    Int(i64),
    /// A float (compared with integer and floating-point columns).
    Float(f64),
    /// A string (compared bytewise with UTF-8 columns).
    Str(String),
    /// A boolean.
    Bool(bool),
}

/// `column <op> literal`; SQL semantics: null never satisfies a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    /// Top-level column name.
    pub column: String,
    /// The operator.
    pub op: CmpOp,
    /// The literal.
    pub value: Scalar,
}

impl Predicate {
    /// Builds `column <op> value`.
    pub fn new(column: impl Into<String>, op: CmpOp, value: Scalar) -> Self {
        Predicate {
            column: column.into(),
            op,
            value,
        }
    }
}

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
            None => schema = Some(meta.schema().clone()),
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
    let full = schema.expect("list_inputs returns at least one file");
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

/// A column's statistics as comparable values.
enum Bound {
    I(i64),
    F(f64),
    S(Vec<u8>),
    B(bool),
}

fn to_f64(b: &Bound) -> Option<f64> {
    match b {
        Bound::I(i) => Some(*i as f64),
        Bound::F(f) => Some(*f),
        _ => None,
    }
}

/// Compares a statistics bound with the literal; `None` when the types are not comparable.
fn cmp(b: &Bound, v: &Scalar) -> Option<std::cmp::Ordering> {
    match (b, v) {
        (Bound::I(x), Scalar::Int(y)) => Some(x.cmp(y)),
        (Bound::S(x), Scalar::Str(y)) => Some(x.as_slice().cmp(y.as_bytes())),
        (Bound::B(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        (b, Scalar::Float(y)) => to_f64(b)?.partial_cmp(y),
        (Bound::F(x), Scalar::Int(y)) => x.partial_cmp(&(*y as f64)),
        _ => None,
    }
}

fn bounds(
    stats: &Statistics,
    desc: &parquet::schema::types::ColumnDescriptor,
) -> Option<(Bound, Bound)> {
    let signed_int = matches!(
        desc.converted_type(),
        ConvertedType::NONE
            | ConvertedType::INT_8
            | ConvertedType::INT_16
            | ConvertedType::INT_32
            | ConvertedType::INT_64
    ) && !matches!(desc.logical_type_ref(), Some(LogicalType::Integer(t)) if !t.is_signed);
    let string = desc.converted_type() == ConvertedType::UTF8
        || matches!(desc.logical_type_ref(), Some(LogicalType::String));
    Some(match (stats, desc.physical_type()) {
        (Statistics::Int32(s), PhysicalType::INT32) if signed_int => (
            Bound::I(*s.min_opt()? as i64),
            Bound::I(*s.max_opt()? as i64),
        ),
        (Statistics::Int64(s), PhysicalType::INT64) if signed_int => {
            (Bound::I(*s.min_opt()?), Bound::I(*s.max_opt()?))
        }
        (Statistics::Float(s), _) => (
            Bound::F(*s.min_opt()? as f64),
            Bound::F(*s.max_opt()? as f64),
        ),
        (Statistics::Double(s), _) => (Bound::F(*s.min_opt()?), Bound::F(*s.max_opt()?)),
        (Statistics::Boolean(s), _) => (Bound::B(*s.min_opt()?), Bound::B(*s.max_opt()?)),
        (Statistics::ByteArray(s), _) if string => (
            Bound::S(s.min_opt()?.data().to_vec()),
            Bound::S(s.max_opt()?.data().to_vec()),
        ),
        _ => return None,
    })
}

/// Whether some row of `rg` may satisfy all predicates (false only when statistics prove otherwise).
pub fn row_group_may_match(
    rg: &RowGroupMetaData,
    predicates: &[Predicate],
    url: &str,
) -> Result<bool> {
    use std::cmp::Ordering::*;
    for p in predicates {
        let schema = rg.schema_descr();
        let Some(ci) =
            (0..schema.num_columns()).find(|&i| schema.column(i).path().string() == p.column)
        else {
            return Err(StorageError::Schema {
                url: url.to_string(),
                reason: format!("predicate on unknown column `{}`", p.column),
            });
        };
        let col = rg.column(ci);
        let Some(stats) = col.statistics() else {
            continue;
        };
        if stats.null_count_opt() == Some(rg.num_rows() as u64) && rg.num_rows() > 0 {
            return Ok(false); // all nulls: no comparison holds
        }
        let Some((min, max)) = bounds(stats, &schema.column(ci)) else {
            continue;
        };
        let (Some(lo), Some(hi)) = (cmp(&min, &p.value), cmp(&max, &p.value)) else {
            continue;
        };
        let may = match p.op {
            CmpOp::Eq => lo != Greater && hi != Less,
            CmpOp::NotEq => !(lo == Equal && hi == Equal),
            CmpOp::Lt => lo == Less,
            CmpOp::LtEq => lo != Greater,
            CmpOp::Gt => hi == Greater,
            CmpOp::GtEq => hi != Less,
        };
        if !may {
            return Ok(false);
        }
    }
    Ok(true)
}
