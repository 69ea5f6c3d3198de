//! Part-file writers for each output format, on top of [`ObjectWriter`].

use std::io::Write;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::ObjectWriter;
use crate::error::{Result, StorageError};
use crate::formats::parquet_crc::{ChunkChecksums, CrcTap};

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

/// A Parquet file (snappy-compressed pages, one row group per ~1M rows), with a CRC-32 of every
/// column chunk in its metadata (see [`crate::formats::parquet_crc`]).
pub struct ParquetPartWriter {
    w: ArrowWriter<CrcTap<ObjectWriter>>,
    url: String,
    sums: ChunkChecksums,
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
        let w = ArrowWriter::try_new(CrcTap::new(w), schema, Some(props)).map_err(|e| {
            StorageError::Parquet {
                url: url.clone(),
                source: e,
            }
        })?;
        Ok(ParquetPartWriter {
            w,
            url,
            sums: ChunkChecksums::new(),
        })
    }

    fn parquet_err(&self, e: parquet::errors::ParquetError) -> StorageError {
        StorageError::Parquet {
            url: self.url.clone(),
            source: e,
        }
    }

    /// Checksums the column chunks of row groups written since the last call.
    fn checksum_flushed(&mut self) -> Result<()> {
        if self.w.flushed_row_groups().len() == self.sums.row_groups() {
            return Ok(());
        }
        // Push the writer's buffer through the tap so every chunk's bytes are there.
        self.w.sync().map_err(|e| io_err(&self.url, e))?;
        let mut end = 0;
        for rg in &self.w.flushed_row_groups()[self.sums.row_groups()..] {
            let mut crcs = Vec::with_capacity(rg.num_columns());
            for col in rg.columns() {
                let (start, len) = col.byte_range();
                let crc = self.w.inner().crc(start, len).ok_or_else(|| StorageError::Commit {
                    url: self.url.clone(),
                    reason: format!(
                        "internal: bytes {start}..{} of a column chunk were not seen by the checksum",
                        start + len
                    ),
                })?;
                crcs.push(crc);
                end = end.max(start + len);
            }
            self.sums.push(crcs);
        }
        self.w.inner_mut().release_before(end);
        Ok(())
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.w.write(batch).map_err(|e| self.parquet_err(e))?;
        self.checksum_flushed()
    }

    /// Writes the footer and finishes the file; returns bytes written.
    pub fn finish(mut self) -> Result<u64> {
        self.w.flush().map_err(|e| self.parquet_err(e))?;
        self.checksum_flushed()?;
        self.w.append_key_value_metadata(self.sums.key_value());
        let url = self.url;
        let inner = self
            .w
            .into_inner()
            .map_err(|e| StorageError::Parquet { url, source: e })?;
        inner.into_inner().close()
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
