//! Opening data files that may be gzip-compressed, with byte offsets for error messages.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::DataError;

/// A reader over a file's (decompressed) bytes that counts how many bytes it has delivered, so
/// errors can name the offset where reading failed.
pub(crate) struct Source {
    path: PathBuf,
    inner: Box<dyn BufRead + Send>,
    offset: u64,
    gzip: bool,
}

impl Source {
    /// Opens `path`, decompressing it on the fly when it starts with the gzip magic bytes.
    pub(crate) fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        Self::new(Box::new(file), path)
    }

    /// Reads from `reader`, decompressing when it starts with the gzip magic bytes; `path` names
    /// the source in errors.
    pub(crate) fn new(reader: Box<dyn Read + Send>, path: &Path) -> Result<Self, DataError> {
        let mut buffered = BufReader::with_capacity(1 << 16, reader);
        let head = buffered.fill_buf().map_err(|e| DataError::io(path, e))?;
        let gzip = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
        let inner: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                1 << 16,
                MultiGzDecoder::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        Ok(Source {
            path: path.to_path_buf(),
            inner,
            offset: 0,
            gzip,
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
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData if self.gzip => {
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
