//! Streaming readers over objects: byte ranges fetched with bounded ranged GETs, a few kept in
//! flight ahead of the reader, never the whole object at once. Local files are read directly.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use bytes::Bytes;
use object_store::ObjectStoreExt;

use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::location::Location;
use crate::runtime::{block_on, runtime};

/// Bytes fetched per GET past the soft end of a range (finishing a split's last line).
const TAIL_CHUNK: u64 = 64 << 10;

/// A sequential reader over bytes `[start, hard_end)` of an object.
///
/// Up to `soft_end` the reader fetches `readChunk`-sized ranges with `readAhead` requests in flight;
/// past it (a split finishing its last line) it fetches small ranges on demand only.
pub struct ObjectReader {
    inner: Inner,
    url: String,
}

enum Inner {
    Local(io::Take<File>),
    Remote(Remote),
}

struct Remote {
    loc: Location,
    next_fetch: u64,
    soft_end: u64,
    hard_end: u64,
    chunk: u64,
    ahead: usize,
    pending: VecDeque<tokio::task::JoinHandle<object_store::Result<Bytes>>>,
    current: Bytes,
}

impl ObjectReader {
    /// Opens `[start, hard_end)` of `loc`, streaming eagerly up to `soft_end`.
    pub fn open(
        loc: &Location,
        start: u64,
        soft_end: u64,
        hard_end: u64,
        config: &StorageConfig,
    ) -> Result<Self> {
        let url = loc.url().to_string();
        if let Some(path) = loc.local_path() {
            let mut f = File::open(&path).map_err(|e| local_err(&url, e))?;
            f.seek(SeekFrom::Start(start))
                .map_err(|e| local_err(&url, e))?;
            return Ok(ObjectReader {
                inner: Inner::Local(f.take(hard_end.saturating_sub(start))),
                url,
            });
        }
        Ok(ObjectReader {
            inner: Inner::Remote(Remote {
                loc: loc.clone(),
                next_fetch: start,
                soft_end: soft_end.min(hard_end),
                hard_end,
                chunk: config.read_chunk()?,
                ahead: config.read_ahead()?,
                pending: VecDeque::new(),
                current: Bytes::new(),
            }),
            url,
        })
    }

    /// Opens a whole object (its size is looked up).
    pub fn open_whole(loc: &Location, config: &StorageConfig) -> Result<Self> {
        let len = loc.head()?.size;
        Self::open(loc, 0, len, len, config)
    }

    /// The URL being read.
    pub fn url(&self) -> &str {
        &self.url
    }
}

pub(crate) fn local_err(url: &str, e: io::Error) -> StorageError {
    if e.kind() == io::ErrorKind::NotFound {
        StorageError::NotFound {
            url: url.to_string(),
            source: object_store::Error::NotFound {
                path: url.to_string(),
                source: Box::new(e),
            },
        }
    } else {
        StorageError::Io {
            url: url.to_string(),
            source: e,
        }
    }
}

impl Remote {
    fn schedule(&mut self) {
        let want = if self.next_fetch < self.soft_end {
            self.ahead + 1
        } else {
            1
        };
        while self.pending.len() < want && self.next_fetch < self.hard_end {
            let end = if self.next_fetch < self.soft_end {
                (self.next_fetch + self.chunk).min(self.soft_end)
            } else {
                (self.next_fetch + TAIL_CHUNK).min(self.hard_end)
            };
            let store = self.loc.store().clone();
            let path = self.loc.path().clone();
            let range = self.next_fetch..end;
            self.pending
                .push_back(runtime().spawn(async move { store.get_range(&path, range).await }));
            self.next_fetch = end;
        }
    }

    fn fill(&mut self) -> io::Result<bool> {
        while self.current.is_empty() {
            self.schedule();
            let Some(handle) = self.pending.pop_front() else {
                return Ok(false);
            };
            let got = block_on(handle).map_err(|e| io::Error::other(e.to_string()))?;
            self.current =
                got.map_err(|e| StorageError::from_store(self.loc.url(), e).into_io())?;
            self.schedule();
        }
        Ok(true)
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        for h in self.pending.drain(..) {
            h.abort();
        }
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Local(f) => f.read(buf),
            Inner::Remote(r) => {
                if !r.fill()? {
                    return Ok(0);
                }
                let n = buf.len().min(r.current.len());
                buf[..n].copy_from_slice(&r.current[..n]);
                let _ = r.current.split_to(n);
                Ok(n)
            }
        }
    }
}

/// A `Read + Seek` view of a whole object (for Arrow IPC files), caching one `readChunk` window.
pub struct SeekableReader {
    inner: SeekInner,
}

enum SeekInner {
    Local(File),
    Remote {
        loc: Location,
        len: u64,
        pos: u64,
        window: Bytes,
        window_start: u64,
        chunk: u64,
    },
}

impl SeekableReader {
    /// Opens `loc` for random access.
    pub fn open(loc: &Location, config: &StorageConfig) -> Result<Self> {
        if let Some(path) = loc.local_path() {
            let f = File::open(&path).map_err(|e| local_err(loc.url(), e))?;
            return Ok(SeekableReader {
                inner: SeekInner::Local(f),
            });
        }
        let len = loc.head()?.size;
        Ok(SeekableReader {
            inner: SeekInner::Remote {
                loc: loc.clone(),
                len,
                pos: 0,
                window: Bytes::new(),
                window_start: 0,
                chunk: config.read_chunk()?,
            },
        })
    }
}

impl Read for SeekableReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            SeekInner::Local(f) => f.read(buf),
            SeekInner::Remote {
                loc,
                len,
                pos,
                window,
                window_start,
                chunk,
            } => {
                if *pos >= *len || buf.is_empty() {
                    return Ok(0);
                }
                let in_window = *pos >= *window_start && *pos < *window_start + window.len() as u64;
                if !in_window {
                    let want = (buf.len() as u64).max(*chunk);
                    let end = (*pos + want).min(*len);
                    *window = loc.get_range(*pos, end).map_err(StorageError::into_io)?;
                    *window_start = *pos;
                }
                let off = (*pos - *window_start) as usize;
                let n = buf.len().min(window.len() - off);
                buf[..n].copy_from_slice(&window[off..off + n]);
                *pos += n as u64;
                Ok(n)
            }
        }
    }
}

impl Seek for SeekableReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match &mut self.inner {
            SeekInner::Local(f) => f.seek(to),
            SeekInner::Remote { len, pos, .. } => {
                let new = match to {
                    SeekFrom::Start(p) => p as i128,
                    SeekFrom::End(d) => *len as i128 + d as i128,
                    SeekFrom::Current(d) => *pos as i128 + d as i128,
                };
                if new < 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "seek before start",
                    ));
                }
                *pos = new as u64;
                Ok(*pos)
            }
        }
    }
}
