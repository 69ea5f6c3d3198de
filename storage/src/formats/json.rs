//! JSON lines: one JSON object per line, split by byte ranges like text (a [`Split`] per
//! partition), decoded with `arrow-json`. Malformed lines (bad JSON, not an object, a value of the
//! wrong type for the schema) are errors naming URL and byte offset, or dropped and counted.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_json::reader::{infer_json_schema_from_iterator, Decoder, ReaderBuilder};
use arrow_schema::{DataType, Schema, SchemaRef};
use serde_json::Value;

use super::ParseMode;
use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::lines::{LineReader, Utf8Mode};
use crate::split::Split;

/// JSON lines reading options.
#[derive(Clone, Debug)]
pub struct JsonOptions {
    /// The schema; inferred from the first `infer_rows` objects when `None` (see
    /// [`infer_json_schema`]).
    pub schema: Option<SchemaRef>,
    /// Lines read for inference (default 1000).
    pub infer_rows: usize,
    /// Malformed lines: fail or drop-and-count.
    pub mode: ParseMode,
    /// Rows per batch (default 8192).
    pub batch_size: usize,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            schema: None,
            infer_rows: 1000,
            mode: ParseMode::FailFast,
            batch_size: 8192,
        }
    }
}

fn malformed(url: &str, offset: u64, reason: String) -> StorageError {
    StorageError::MalformedRecord {
        url: url.to_string(),
        format: "JSON",
        position: format!("byte offset {offset}"),
        reason,
    }
}

/// Infers a schema from the first `opts.infer_rows` JSON objects of `splits`, read in order (a
/// split of blank lines does not end the search). `input` names the dataset in errors.
///
/// With no object to infer from (no splits: empty files; or only blank lines) this is a
/// [`StorageError::Schema`] saying to pass [`JsonOptions::schema`], rather than an empty schema
/// that would read every later line as a row with no columns.
pub fn infer_json_schema(
    input: &str,
    splits: &[Split],
    opts: &JsonOptions,
    config: &StorageConfig,
) -> Result<SchemaRef> {
    let mut values = Vec::new();
    for split in splits {
        if values.len() >= opts.infer_rows.max(1) {
            break;
        }
        let mut lines = LineReader::open(split, config, Utf8Mode::Strict)?;
        while values.len() < opts.infer_rows.max(1) {
            let offset = lines.offset();
            let Some(line) = lines.next_line()? else {
                break;
            };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(v @ Value::Object(_)) => values.push(v),
                Ok(_) if opts.mode == ParseMode::DropMalformed => {}
                Err(_) if opts.mode == ParseMode::DropMalformed => {}
                Ok(_) => return Err(malformed(&split.url, offset, "not a JSON object".into())),
                Err(e) => return Err(malformed(&split.url, offset, e.to_string())),
            }
        }
    }
    if values.is_empty() {
        return Err(StorageError::Schema {
            url: splits.first().map_or(input, |s| s.url.as_str()).to_string(),
            reason: "cannot infer a JSON schema: the input holds no JSON object (empty files or \
                     blank lines only); pass the schema in JsonOptions::schema"
                .into(),
        });
    }
    let schema =
        infer_json_schema_from_iterator(values.iter().map(Ok::<_, arrow_schema::ArrowError>))
            .map_err(|e| StorageError::Arrow {
                url: splits[0].url.clone(),
                source: e,
            })?;
    Ok(Arc::new(schema))
}

/// Whether `v` can be decoded as `t` (the checks arrow-json would otherwise fail at flush).
fn compatible(v: &Value, t: &DataType) -> bool {
    use DataType::*;
    match v {
        Value::Null => true,
        Value::Bool(_) => matches!(t, Boolean),
        Value::Number(n) => match t {
            Int8 | Int16 | Int32 | Int64 => n.is_i64(),
            UInt8 | UInt16 | UInt32 | UInt64 => n.is_u64(),
            Float16 | Float32 | Float64 | Decimal128(..) | Decimal256(..) => true,
            Timestamp(..) | Date32 | Date64 => n.is_i64(),
            _ => false,
        },
        Value::String(_) => matches!(
            t,
            Utf8 | LargeUtf8
                | Utf8View
                | Timestamp(..)
                | Date32
                | Date64
                | Time32(_)
                | Time64(_)
                | Decimal128(..)
                | Decimal256(..)
                | Binary
                | LargeBinary
        ),
        Value::Array(_) => matches!(t, List(_) | LargeList(_) | FixedSizeList(..) | ListView(_)),
        Value::Object(_) => matches!(t, Struct(_) | Map(..)),
    }
}

fn check_line(line: &str, schema: &Schema) -> std::result::Result<(), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let Value::Object(obj) = v else {
        return Err("not a JSON object".into());
    };
    for f in schema.fields() {
        match obj.get(f.name()) {
            Some(v) if !compatible(v, f.data_type()) => {
                return Err(format!(
                    "field `{}` = {v} is not a valid {}",
                    f.name(),
                    f.data_type()
                ))
            }
            None | Some(Value::Null) if !f.is_nullable() => {
                return Err(format!(
                    "non-nullable field `{}` is missing or null",
                    f.name()
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Batches of one JSON-lines split.
pub struct JsonLinesReader {
    lines: LineReader,
    decoder: Decoder,
    schema: SchemaRef,
    url: String,
    mode: ParseMode,
    batch_size: usize,
    batch_offset: u64,
    dropped: u64,
    done: bool,
}

impl JsonLinesReader {
    /// Opens `split` with `schema` (from [`infer_json_schema`] or given).
    pub fn open(
        split: &Split,
        schema: SchemaRef,
        opts: &JsonOptions,
        config: &StorageConfig,
    ) -> Result<Self> {
        let decoder = ReaderBuilder::new(schema.clone())
            .with_batch_size(opts.batch_size.max(1))
            .build_decoder()
            .map_err(|e| StorageError::Arrow {
                url: split.url.clone(),
                source: e,
            })?;
        let lines = LineReader::open(split, config, Utf8Mode::Strict)?;
        Ok(JsonLinesReader {
            batch_offset: lines.offset(),
            lines,
            decoder,
            schema,
            url: split.url.clone(),
            mode: opts.mode,
            batch_size: opts.batch_size.max(1),
            dropped: 0,
            done: false,
        })
    }

    /// Lines dropped as malformed so far ([`ParseMode::DropMalformed`]).
    pub fn dropped_rows(&self) -> u64 {
        self.dropped
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        while !self.done && self.decoder.len() < self.batch_size {
            let offset = self.lines.offset();
            let Some(line) = self.lines.next_line()? else {
                self.done = true;
                if self.dropped > 0 {
                    tracing::warn!(url = %self.url, dropped = self.dropped, "dropped malformed JSON lines");
                }
                break;
            };
            if line.trim().is_empty() {
                continue;
            }
            if let Err(reason) = check_line(line, &self.schema) {
                match self.mode {
                    ParseMode::DropMalformed => {
                        self.dropped += 1;
                        continue;
                    }
                    ParseMode::FailFast => {
                        self.done = true;
                        return Err(malformed(&self.url, offset, reason));
                    }
                }
            }
            let url = &self.url;
            self.decoder
                .decode(line.as_bytes())
                .map_err(|e| malformed(url, offset, e.to_string()))?;
            // Terminate the record explicitly so the next line starts a new one.
            self.decoder
                .decode(b"\n")
                .map_err(|e| malformed(url, offset, e.to_string()))?;
        }
        let start = self.batch_offset;
        self.batch_offset = self.lines.offset();
        self.decoder
            .flush()
            .map_err(|e| StorageError::MalformedRecord {
                url: self.url.clone(),
                format: "JSON",
                position: format!("byte offsets {start}..{}", self.batch_offset),
                reason: e.to_string(),
            })
    }
}

impl Iterator for JsonLinesReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done && self.decoder.is_empty() {
            return None;
        }
        match self.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
