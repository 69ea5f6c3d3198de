//! Part-file writers for each output format, on top of [`ObjectWriter`].

use std::io::Write;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::ObjectWriter;
use crate::error::{Result, StorageError};

fn io_err(url: &str, e: std::io::Error) -> StorageError {
    StorageError::from_io(url, e)
}

/// Text lines, each followed by `\n`.
pub struct TextPartWriter {
    w: ObjectWriter,
    url: String,
}

impl TextPartWriter {
    /// Wraps an object writer.
    pub fn new(w: ObjectWriter) -> Self {
        let url = w.location().url().to_string();
        TextPartWriter { w, url }
    }

    /// Writes one line (a `\n` is appended).
    pub fn write_line(&mut self, line: &str) -> Result<()> {
        self.w
            .write_all(line.as_bytes())
            .map_err(|e| io_err(&self.url, e))?;
        self.w.write_all(b"\n").map_err(|e| io_err(&self.url, e))
    }

    /// Finishes the file; returns bytes written.
    pub fn finish(self) -> Result<u64> {
        self.w.close()
    }
}

/// A Parquet file (snappy-compressed pages, one row group per ~1M rows).
pub struct ParquetPartWriter {
    w: ArrowWriter<ObjectWriter>,
    url: String,
}

impl ParquetPartWriter {
    /// Starts a file with `schema`.
    pub fn new(w: ObjectWriter, schema: SchemaRef) -> Result<Self> {
        Self::with_properties(
            w,
            schema,
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build(),
        )
    }

    /// Starts a file with explicit writer properties (row-group size, compression...).
    pub fn with_properties(
        w: ObjectWriter,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<Self> {
        let url = w.location().url().to_string();
        let w =
            ArrowWriter::try_new(w, schema, Some(props)).map_err(|e| StorageError::Parquet {
                url: url.clone(),
                source: e,
            })?;
        Ok(ParquetPartWriter { w, url })
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.w.write(batch).map_err(|e| StorageError::Parquet {
            url: self.url.clone(),
            source: e,
        })
    }

    /// Writes the footer and finishes the file; returns bytes written.
    pub fn finish(self) -> Result<u64> {
        let url = self.url;
        let inner = self
            .w
            .into_inner()
            .map_err(|e| StorageError::Parquet { url, source: e })?;
        inner.close()
    }
}

/// An Arrow IPC file.
pub struct IpcPartWriter {
    w: arrow_ipc::writer::FileWriter<ObjectWriter>,
    url: String,
}

impl IpcPartWriter {
    /// Starts a file with `schema`.
    pub fn new(w: ObjectWriter, schema: SchemaRef) -> Result<Self> {
        let url = w.location().url().to_string();
        let w = arrow_ipc::writer::FileWriter::try_new(w, &schema).map_err(|e| {
            StorageError::Arrow {
                url: url.clone(),
                source: e,
            }
        })?;
        Ok(IpcPartWriter { w, url })
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.w.write(batch).map_err(|e| StorageError::Arrow {
            url: self.url.clone(),
            source: e,
        })
    }

    /// Writes the footer and finishes the file; returns bytes written.
    pub fn finish(self) -> Result<u64> {
        let url = self.url;
        self.w
            .into_inner()
            .map_err(|e| StorageError::Arrow { url, source: e })?
            .close()
    }
}

/// JSON lines from record batches.
pub struct JsonLinesPartWriter {
    w: arrow_json::LineDelimitedWriter<ObjectWriter>,
    url: String,
}

impl JsonLinesPartWriter {
    /// Wraps an object writer.
    pub fn new(w: ObjectWriter) -> Self {
        let url = w.location().url().to_string();
        JsonLinesPartWriter {
            w: arrow_json::LineDelimitedWriter::new(w),
            url,
        }
    }

    /// Appends a batch (one JSON object per row).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.w.write(batch).map_err(|e| StorageError::Arrow {
            url: self.url.clone(),
            source: e,
        })
    }

    /// Finishes the file; returns bytes written.
    pub fn finish(mut self) -> Result<u64> {
        self.w.finish().map_err(|e| StorageError::Arrow {
            url: self.url.clone(),
            source: e,
        })?;
        self.w.into_inner().close()
    }
}
