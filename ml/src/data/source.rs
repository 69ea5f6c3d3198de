//! Opening data files through `ember-storage` (local paths or any storage URL), decoded as
//! their first bytes say (gzip, lz4), with byte offsets for error messages.

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use ember_storage::{decode_sniffed, Codec, Location, StorageConfig, StorageError};

use super::DataError;

/// A reader over a file's (decompressed) bytes that counts how many bytes it has delivered, so
/// errors can name the offset where reading failed.
pub(crate) struct Source {
    path: PathBuf,
    inner: Box<dyn BufRead + Send>,
    offset: u64,
    compressed: bool,
}

impl Source {
    /// Opens `path` (a local path or a storage URL) through `ember-storage`, decompressing it
    /// on the fly when its first bytes say it is compressed.
    pub(crate) fn open(path: &Path) -> Result<Self, DataError> {
        Self::open_with(path, &StorageConfig::new())
    }

    /// [`Source::open`] with the storage settings (S3 endpoint, credentials...) in `config`.
    pub(crate) fn open_with(path: &Path, config: &StorageConfig) -> Result<Self, DataError> {
        let storage = |e: StorageError| {
            let kind = if e.is_not_found() {
                io::ErrorKind::NotFound
            } else {
                io::ErrorKind::Other
            };
            DataError::io(path, io::Error::new(kind, e.to_string()))
        };
        let loc = Location::resolve(&path.to_string_lossy(), config).map_err(storage)?;
        let reader =
            ember_storage::reader::ObjectReader::open_whole(&loc, config).map_err(storage)?;
        Self::new(Box::new(reader), path)
    }

    /// Reads from `reader`, decompressing when its first bytes say it is compressed
    /// ([`Codec::sniff`]); `path` names the source in errors.
    pub(crate) fn new(reader: Box<dyn Read + Send>, path: &Path) -> Result<Self, DataError> {
        let (codec, inner) = decode_sniffed(reader).map_err(|e| DataError::io(path, e))?;
        Ok(Source {
            path: path.to_path_buf(),
            inner,
            offset: 0,
            compressed: codec != Codec::None,
        })
    }

    /// The file being read.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Turns an I/O error met at the current offset into a typed error.
    pub(crate) fn error(&self, err: io::Error, what: &str) -> DataError {
        match err.kind() {
            io::ErrorKind::UnexpectedEof => DataError::Truncated {
                path: self.path.clone(),
                offset: self.offset,
                what: what.to_string(),
            },
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData if self.compressed => {
                DataError::Corrupt {
                    path: self.path.clone(),
                    offset: self.offset,
                    source: err,
                }
            }
            _ => DataError::io(&self.path, err),
        }
    }

    /// Reads exactly `buf.len()` bytes; running out of data is a [`DataError::Truncated`].
    pub(crate) fn read_exact_or(&mut self, buf: &mut [u8], what: &str) -> Result<(), DataError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(DataError::Truncated {
                        path: self.path.clone(),
                        offset: self.offset,
                        what: format!("{what}: {} more bytes expected", buf.len() - filled),
                    })
                }
                Ok(n) => {
                    filled += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(e, what)),
            }
        }
        Ok(())
    }

    /// Reads one line (without its terminator) into `line`; returns `false` at end of file.
    pub(crate) fn read_line_into(&mut self, line: &mut Vec<u8>) -> Result<bool, DataError> {
        line.clear();
        let n = match self.inner.read_until(b'\n', line) {
            Ok(n) => n,
            Err(e) => return Err(self.error(e, "reading a line")),
        };
        self.offset += n as u64;
        if n == 0 {
            return Ok(false);
        }
        while line.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            line.pop();
        }
        Ok(true)
    }

    /// Checks that no data is left; trailing bytes are a [`DataError::TrailingData`].
    pub(crate) fn expect_end(&mut self) -> Result<(), DataError> {
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(DataError::TrailingData {
                        path: self.path.clone(),
                        offset: self.offset,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(e, "checking for the end of the data")),
            }
        }
    }
}
