//! CSV files: header, delimiter, quoting, schema inference or a given schema, malformed rows as
//! errors naming URL and line, or dropped and counted in permissive mode.
//!
//! A CSV file is one partition (quoted fields may contain line breaks, so byte-range splits are not
//! safe); gzip/lz4 files are decompressed by extension. Empty fields (and `nullValue`) are nulls.
//! Inferred types, in order of preference: `Int64`, `Float64`, `Boolean`, `Utf8`.
//!
//! Two mistakes that would otherwise read as wrong data are errors, in every [`ParseMode`]:
//! - a quoted field whose closing quote never comes (the `csv` crate would read the rest of the
//!   file into that one field): [`StorageError::MalformedRecord`] naming the file, the record's
//!   line and the byte offset of the opening quote;
//! - with `header`, a file whose header differs from the first file's (columns are matched by
//!   position, so a reordered header would swap columns silently): [`StorageError::Schema`]
//!   naming both files and both headers (see [`CsvReader::expect_header`]).

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::csv_quotes::QuoteTracker;
use super::ParseMode;
use crate::compression::{open_decoded, DecodingReader};
use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::location::Location;

/// CSV reading options.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    /// The first record names the columns (default true).
    pub header: bool,
    /// Field delimiter (default `,`).
    pub delimiter: u8,
    /// Quote character (default `"`); a doubled quote inside quotes is a literal quote.
    pub quote: u8,
    /// Escape character inside quotes, if any (e.g. `\\`).
    pub escape: Option<u8>,
    /// The schema; inferred from the first `infer_rows` records of the first file when `None`.
    pub schema: Option<SchemaRef>,
    /// Records read for inference (default 1000).
    pub infer_rows: usize,
    /// Malformed rows: fail or drop-and-count.
    pub mode: ParseMode,
    /// Rows per batch (default 8192).
    pub batch_size: usize,
    /// A field equal to this is null, besides the empty field (default none).
    pub null_value: Option<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            delimiter: b',',
            quote: b'"',
            escape: None,
            schema: None,
            infer_rows: 1000,
            mode: ParseMode::FailFast,
            batch_size: 8192,
            null_value: None,
        }
    }
}

/// The decoded file, watched for a quote that is still open at the end.
type Source = QuoteTracker<DecodingReader>;

/// The error for a quoted field still open at the end of the file, if the reader is there.
fn check_quotes(rdr: &csv::Reader<Source>, url: &str, rec: &csv::ByteRecord) -> Result<()> {
    match rdr.get_ref().unterminated_quote() {
        None => Ok(()),
        Some(offset) => {
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            Err(StorageError::MalformedRecord {
                url: url.to_string(),
                format: "CSV",
                position: format!("line {line}"),
                reason: format!(
                    "unterminated quoted field: the quote at byte offset {offset} is never \
                     closed, so the rest of the file would be read as one field"
                ),
            })
        }
    }
}

fn csv_reader(
    loc: &Location,
    opts: &CsvOptions,
    config: &StorageConfig,
) -> Result<csv::Reader<Source>> {
    let src = QuoteTracker::new(open_decoded(loc, config)?, opts);
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(opts.delimiter)
        .quote(opts.quote)
        .escape(opts.escape)
        .double_quote(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(src))
}

fn read_err(url: &str, e: csv::Error) -> StorageError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.into_kind() {
        csv::ErrorKind::Io(io) => StorageError::from_io(url, io),
        other => StorageError::MalformedRecord {
            url: url.to_string(),
            format: "CSV",
            position: format!("line {line}"),
            reason: format!("{other:?}"),
        },
    }
}

fn is_null(field: &[u8], opts: &CsvOptions) -> bool {
    field.is_empty()
        || opts
            .null_value
            .as_deref()
            .is_some_and(|n| n.as_bytes() == field)
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn header_names(rec: &csv::ByteRecord) -> Vec<String> {
    rec.iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_string())
        .collect()
}

/// The column names in the header of `url` (`None` without `opts.header`, or for an empty file):
/// what [`CsvReader::expect_header`] compares the other files with.
pub fn read_csv_header(
    url: &str,
    opts: &CsvOptions,
    config: &StorageConfig,
) -> Result<Option<Vec<String>>> {
    if !opts.header {
        return Ok(None);
    }
    let loc = Location::resolve(url, config)?;
    let mut rdr = csv_reader(&loc, opts, config)?;
    let mut rec = csv::ByteRecord::new();
    let more = rdr
        .read_byte_record(&mut rec)
        .map_err(|e| read_err(loc.url(), e))?;
    check_quotes(&rdr, loc.url(), &rec)?;
    Ok(more.then(|| header_names(&rec)))
}

/// Infers a schema from the first `opts.infer_rows` records of `url`.
pub fn infer_csv_schema(url: &str, opts: &CsvOptions, config: &StorageConfig) -> Result<SchemaRef> {
    let loc = Location::resolve(url, config)?;
    let mut rdr = csv_reader(&loc, opts, config)?;
    let mut names: Vec<String> = Vec::new();
    // Per column: could still be int / float / bool; saw a non-null value.
    let mut can: Vec<[bool; 3]> = Vec::new();
    let mut seen: Vec<bool> = Vec::new();
    let mut rec = csv::ByteRecord::new();
    let mut first = true;
    let mut rows = 0;
    while rows < opts.infer_rows {
        let more = rdr
            .read_byte_record(&mut rec)
            .map_err(|e| read_err(loc.url(), e))?;
        check_quotes(&rdr, loc.url(), &rec)?;
        if !more {
            break;
        }
        if first {
            first = false;
            if opts.header {
                names = header_names(&rec);
                continue;
            }
        }
        if names.is_empty() {
            names = (0..rec.len()).map(|i| format!("_c{i}")).collect();
        }
        if can.len() < names.len() {
            can.resize(names.len(), [true; 3]);
            seen.resize(names.len(), false);
        }
        for (i, f) in rec.iter().enumerate().take(names.len()) {
            if is_null(f, opts) {
                continue;
            }
            seen[i] = true;
            let s = std::str::from_utf8(f).unwrap_or("\u{FFFD}").trim();
            can[i][0] &= s.parse::<i64>().is_ok();
            can[i][1] &= s.parse::<f64>().is_ok();
            can[i][2] &= parse_bool(s).is_some();
        }
        rows += 1;
    }
    can.resize(names.len(), [true; 3]);
    seen.resize(names.len(), false);
    let fields: Vec<Field> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let t = match (seen[i], can[i]) {
                (false, _) => DataType::Utf8,
                (true, [true, _, _]) => DataType::Int64,
                (true, [_, true, _]) => DataType::Float64,
                (true, [_, _, true]) => DataType::Boolean,
                _ => DataType::Utf8,
            };
            Field::new(n, t, true)
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

enum Col {
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
}

enum Val<'a> {
    Null,
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(&'a str),
}

impl Col {
    fn new(t: &DataType, cap: usize) -> Option<Col> {
        Some(match t {
            DataType::Int32 => Col::I32(Int32Builder::with_capacity(cap)),
            DataType::Int64 => Col::I64(Int64Builder::with_capacity(cap)),
            DataType::Float32 => Col::F32(Float32Builder::with_capacity(cap)),
            DataType::Float64 => Col::F64(Float64Builder::with_capacity(cap)),
            DataType::Boolean => Col::Bool(BooleanBuilder::with_capacity(cap)),
            DataType::Utf8 => Col::Str(StringBuilder::with_capacity(cap, cap * 16)),
            _ => return None,
        })
    }

    fn parse<'a>(&self, s: &'a str) -> Option<Val<'a>> {
        let t = s.trim();
        Some(match self {
            Col::I32(_) => Val::I32(t.parse().ok()?),
            Col::I64(_) => Val::I64(t.parse().ok()?),
            Col::F32(_) => Val::F32(t.parse().ok()?),
            Col::F64(_) => Val::F64(t.parse().ok()?),
            Col::Bool(_) => Val::Bool(parse_bool(t)?),
            Col::Str(_) => Val::Str(s),
        })
    }

    fn append(&mut self, v: &Val<'_>) {
        match (self, v) {
            (Col::I32(b), Val::I32(x)) => b.append_value(*x),
            (Col::I64(b), Val::I64(x)) => b.append_value(*x),
            (Col::F32(b), Val::F32(x)) => b.append_value(*x),
            (Col::F64(b), Val::F64(x)) => b.append_value(*x),
            (Col::Bool(b), Val::Bool(x)) => b.append_value(*x),
            (Col::Str(b), Val::Str(x)) => b.append_value(x),
            (c, _) => c.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Col::I32(b) => b.append_null(),
            Col::I64(b) => b.append_null(),
            Col::F32(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::Bool(b) => b.append_null(),
            Col::Str(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::I32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::F32(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Str(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Col::I32(b) => b.len(),
            Col::I64(b) => b.len(),
            Col::F32(b) => b.len(),
            Col::F64(b) => b.len(),
            Col::Bool(b) => b.len(),
            Col::Str(b) => b.len(),
        }
    }
}

/// Parses one record against the columns; `Err(reason)` when malformed.
fn check_row<'r>(
    rec: &'r csv::ByteRecord,
    cols: &[Col],
    schema: &Schema,
    opts: &CsvOptions,
) -> std::result::Result<Vec<Val<'r>>, String> {
    let n = cols.len();
    if rec.len() != n {
        return Err(format!("expected {n} fields, found {}", rec.len()));
    }
    let mut vals = Vec::with_capacity(n);
    for (i, f) in rec.iter().enumerate() {
        if is_null(f, opts) {
            vals.push(Val::Null);
            continue;
        }
        let name = schema.field(i).name();
        let s = std::str::from_utf8(f).map_err(|e| {
            format!(
                "field {} (`{name}`) is not valid UTF-8 at byte {}",
                i + 1,
                e.valid_up_to()
            )
        })?;
        match cols[i].parse(s) {
            Some(v) => vals.push(v),
            None => {
                return Err(format!(
                    "field {} (`{name}`) = {s:?} is not a valid {}",
                    i + 1,
                    schema.field(i).data_type()
                ))
            }
        }
    }
    Ok(vals)
}

/// Batches of one CSV file.
pub struct CsvReader {
    rdr: csv::Reader<Source>,
    url: String,
    /// The first file's URL and header, which this file's header must equal.
    expected_header: Option<(String, Vec<String>)>,
    schema: SchemaRef,
    opts: CsvOptions,
    cols: Vec<Col>,
    rec: csv::ByteRecord,
    header_pending: bool,
    dropped: u64,
    done: bool,
}

impl CsvReader {
    /// Opens `url` with `schema` (from [`infer_csv_schema`] or given). Supported column types:
    /// Int32, Int64, Float32, Float64, Boolean, Utf8.
    pub fn open(
        url: &str,
        schema: SchemaRef,
        opts: &CsvOptions,
        config: &StorageConfig,
    ) -> Result<CsvReader> {
        let loc = Location::resolve(url, config)?;
        let cap = opts.batch_size.max(1);
        let cols = schema
            .fields()
            .iter()
            .map(|f| {
                Col::new(f.data_type(), cap).ok_or_else(|| StorageError::Schema {
                    url: loc.url().to_string(),
                    reason: format!(
                        "CSV column `{}` has unsupported type {}",
                        f.name(),
                        f.data_type()
                    ),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CsvReader {
            rdr: csv_reader(&loc, opts, config)?,
            url: loc.url().to_string(),
            expected_header: None,
            schema,
            opts: opts.clone(),
            cols,
            rec: csv::ByteRecord::new(),
            header_pending: opts.header,
            dropped: 0,
            done: false,
        })
    }

    /// Requires this file's header (with `header`) to name the same columns in the same order as
    /// `first_header`, the header of `first_url` (from [`read_csv_header`], or the names of a
    /// schema inferred from that file): CSV columns are matched by position, so a file with
    /// reordered or different columns fails naming both files instead of being read into the
    /// wrong columns.
    pub fn expect_header(mut self, first_url: &str, first_header: Vec<String>) -> Self {
        self.expected_header = Some((first_url.to_string(), first_header));
        self
    }

    fn check_header(&self) -> Result<()> {
        let Some((first_url, expected)) = &self.expected_header else {
            return Ok(());
        };
        let found = header_names(&self.rec);
        if &found == expected {
            return Ok(());
        }
        let same_set = {
            let (mut a, mut b) = (found.clone(), expected.clone());
            a.sort();
            b.sort();
            a == b
        };
        Err(StorageError::Schema {
            url: self.url.clone(),
            reason: format!(
                "CSV header [{}] differs from the header [{}] of the first file {first_url}{}; \
                 CSV columns are matched by position, so every file must have the same header: \
                 rewrite the file with the first file's column order, or read it separately",
                found.join(", "),
                expected.join(", "),
                if same_set {
                    " (the same columns in another order)"
                } else {
                    ""
                },
            ),
        })
    }

    /// Rows dropped as malformed so far ([`ParseMode::DropMalformed`]).
    pub fn dropped_rows(&self) -> u64 {
        self.dropped
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        while !self.done && self.cols.first().map_or(0, Col::len) < self.opts.batch_size.max(1) {
            let more = self
                .rdr
                .read_byte_record(&mut self.rec)
                .map_err(|e| read_err(&self.url, e));
            let more = more.and_then(|more| {
                check_quotes(&self.rdr, &self.url, &self.rec)?;
                Ok(more)
            });
            let more = match more {
                Ok(more) => more,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            if !more {
                self.done = true;
                if self.dropped > 0 {
                    tracing::warn!(url = %self.url, dropped = self.dropped, "dropped malformed CSV rows");
                }
                break;
            }
            if self.header_pending {
                self.header_pending = false;
                if let Err(e) = self.check_header() {
                    self.done = true;
                    return Err(e);
                }
                continue;
            }
            let line = self.rec.position().map(|p| p.line()).unwrap_or(0);
            // The whole row is checked before anything is appended, so a bad row adds nothing.
            match check_row(&self.rec, &self.cols, &self.schema, &self.opts) {
                Ok(vals) => {
                    for (c, v) in self.cols.iter_mut().zip(&vals) {
                        c.append(v);
                    }
                }
                Err(reason) => match self.opts.mode {
                    ParseMode::DropMalformed => self.dropped += 1,
                    ParseMode::FailFast => {
                        self.done = true;
                        return Err(StorageError::MalformedRecord {
                            url: self.url.clone(),
                            format: "CSV",
                            position: format!("line {line}"),
                            reason,
                        });
                    }
                },
            }
        }
        if self.cols.first().map_or(0, Col::len) == 0 {
            return Ok(None);
        }
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map(Some)
            .map_err(|e| StorageError::Arrow {
                url: self.url.clone(),
                source: e,
            })
    }
}

impl Iterator for CsvReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done && self.cols.first().map_or(0, Col::len) == 0 {
            return None;
        }
        self.next_batch().transpose()
    }
}
