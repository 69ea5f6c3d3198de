//! A blocking `Write` into an object: local files are written directly; other stores get one PUT
//! for small objects and a multipart upload (bounded memory) for large ones.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};

use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::location::Location;
use crate::runtime::block_on;

/// Writes one object; nothing is visible until [`ObjectWriter::close`] (remote stores), and a
/// writer dropped without `close` aborts its upload.
pub struct ObjectWriter {
    loc: Location,
    inner: Inner,
    written: u64,
}

enum Inner {
    Local(BufWriter<File>),
    Remote {
        buf: Vec<u8>,
        part_size: usize,
        upload: Option<Box<dyn MultipartUpload>>,
    },
    Closed,
}

impl ObjectWriter {
    /// Creates (or replaces) the object at `loc`.
    pub fn create(loc: &Location, config: &StorageConfig) -> Result<Self> {
        let inner = if let Some(p) = loc.local_path() {
            let io_err = |e| StorageError::Io {
                url: loc.url().to_string(),
                source: e,
            };
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(io_err)?;
            }
            Inner::Local(BufWriter::with_capacity(
                1 << 20,
                File::create(&p).map_err(io_err)?,
            ))
        } else {
            let part_size = config.write_part_size()?;
            Inner::Remote {
                buf: Vec::with_capacity(part_size.min(1 << 20)),
                part_size,
                upload: None,
            }
        };
        Ok(ObjectWriter {
            loc: loc.clone(),
            inner,
            written: 0,
        })
    }

    /// The object's location.
    pub fn location(&self) -> &Location {
        &self.loc
    }

    fn upload_part(&mut self) -> Result<()> {
        let Inner::Remote { buf, upload, .. } = &mut self.inner else {
            return Ok(());
        };
        let url = self.loc.url();
        if upload.is_none() {
            let u = block_on(self.loc.store().put_multipart(self.loc.path()))
                .map_err(|e| StorageError::from_store(url, e))?;
            *upload = Some(u);
        }
        let data = std::mem::take(buf);
        let fut = upload
            .as_mut()
            .expect("set above")
            .put_part(PutPayload::from(data));
        block_on(fut).map_err(|e| StorageError::from_store(url, e))
    }

    /// Finishes the object: flushes, completes the upload, makes it visible. Returns bytes written.
    pub fn close(mut self) -> Result<u64> {
        let url = self.loc.url().to_string();
        match std::mem::replace(&mut self.inner, Inner::Closed) {
            Inner::Local(mut w) => {
                w.flush().map_err(|e| StorageError::Io {
                    url: url.clone(),
                    source: e,
                })?;
                w.into_inner()
                    .map_err(|e| StorageError::Io {
                        url: url.clone(),
                        source: e.into_error(),
                    })?
                    .sync_data()
                    .map_err(|e| StorageError::Io { url, source: e })?;
            }
            Inner::Remote {
                buf, upload: None, ..
            } => {
                block_on(self.loc.store().put(self.loc.path(), PutPayload::from(buf)))
                    .map_err(|e| StorageError::from_store(&url, e))?;
            }
            Inner::Remote {
                buf,
                part_size,
                upload: Some(u),
            } => {
                self.inner = Inner::Remote {
                    buf,
                    part_size,
                    upload: Some(u),
                };
                let has_rest = matches!(&self.inner, Inner::Remote { buf, .. } if !buf.is_empty());
                if has_rest {
                    self.upload_part()?;
                }
                if let Inner::Remote {
                    upload: Some(mut u),
                    ..
                } = std::mem::replace(&mut self.inner, Inner::Closed)
                {
                    block_on(u.complete()).map_err(|e| StorageError::from_store(&url, e))?;
                }
            }
            Inner::Closed => {}
        }
        Ok(self.written)
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Local(w) => {
                let n = w.write(data)?;
                self.written += n as u64;
                Ok(n)
            }
            Inner::Remote { buf, part_size, .. } => {
                buf.extend_from_slice(data);
                self.written += data.len() as u64;
                if buf.len() >= *part_size {
                    self.upload_part().map_err(StorageError::into_io)?;
                }
                Ok(data.len())
            }
            Inner::Closed => Err(io::Error::other("write after close")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Local(w) => w.flush(),
            _ => Ok(()),
        }
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Inner::Remote {
            upload: Some(u), ..
        } = &mut self.inner
        {
            let _ = block_on(u.abort());
        }
    }
}
