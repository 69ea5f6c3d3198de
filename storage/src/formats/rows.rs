//! Typed rows on top of record batches, through `serde_arrow`: any `Serialize`/`Deserialize`
//! struct maps to a schema whose columns are its fields.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{FieldRef, Schema, SchemaRef};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::error::{Result, StorageError};

fn rows_err(url: &str, e: serde_arrow::Error) -> StorageError {
    StorageError::Rows {
        url: url.to_string(),
        source: e,
    }
}

/// The Arrow schema of a row type (traced from the type; `Option` fields are nullable).
pub fn schema_of<T: DeserializeOwned>() -> Result<SchemaRef> {
    let fields = Vec::<FieldRef>::from_type::<T>(TracingOptions::default().allow_null_fields(true))
        .map_err(|e| rows_err("<memory>", e))?;
    Ok(Arc::new(Schema::new(fields)))
}

/// Rows of one batch (`url` names the source in errors).
pub fn rows_from_batch<T: DeserializeOwned>(url: &str, batch: &RecordBatch) -> Result<Vec<T>> {
    serde_arrow::from_record_batch(batch).map_err(|e| rows_err(url, e))
}

/// Rows of several batches, in order.
pub fn rows_from_batches<T: DeserializeOwned>(
    url: &str,
    batches: &[RecordBatch],
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for b in batches {
        out.extend(rows_from_batch::<T>(url, b)?);
    }
    Ok(out)
}

/// A batch holding `rows` with the given schema (e.g. from [`schema_of`]).
pub fn batch_from_rows<T: Serialize>(schema: &SchemaRef, rows: &[T]) -> Result<RecordBatch> {
    serde_arrow::to_record_batch(schema.fields(), &rows).map_err(|e| rows_err("<memory>", e))
}
