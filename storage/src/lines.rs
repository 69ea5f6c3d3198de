//! Lines of a text split (or of a whole compressed file), fast: one large buffer filled straight
//! from the source, `memchr` to find line ends, and UTF-8 validated in bulk per buffer fill.

use std::io::Read;

use crate::compression::{open_decoded, Codec};
use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::location::Location;
use crate::reader::ObjectReader;
use crate::split::Split;

/// What to do with bytes that are not UTF-8.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Utf8Mode {
    /// Fail with [`StorageError::InvalidUtf8`] naming the URL and byte offset (the default).
    #[default]
    Strict,
    /// Replace invalid sequences with U+FFFD.
    Lossy,
}

/// Default buffer size (grows for longer lines).
const BUFFER: usize = 1 << 20;

/// Reads the lines of one [`Split`].
///
/// Lines end at `\n`; a `\r` before it is dropped (`\r\n` files). The line terminator is not part
/// of the line. Use [`LineReader::next_line`] for borrowed lines without allocation, or iterate for
/// owned `String`s.
pub struct LineReader {
    src: Box<dyn Read + Send>,
    url: String,
    buf: Vec<u8>,
    filled: usize,
    pos: usize,
    validated: usize,
    base: u64,
    limit: Option<u64>,
    eof: bool,
    done: bool,
    mode: Utf8Mode,
    scratch: String,
}

impl LineReader {
    /// Opens a split with Hadoop's line semantics (see [`Split`]).
    pub fn open(split: &Split, config: &StorageConfig, mode: Utf8Mode) -> Result<LineReader> {
        let loc = Location::resolve(&split.url, config)?;
        if split.codec()? != Codec::None {
            let src = open_decoded(&loc, config)?;
            return Ok(Self::from_reader(Box::new(src), loc.url(), 0, None, mode));
        }
        let src = ObjectReader::open(&loc, split.start, split.end, split.len, config)?;
        let mut r = Self::from_reader(Box::new(src), loc.url(), split.start, Some(split.end), mode);
        // Small splits get a small buffer (it grows for long lines).
        let want = (split.size() as usize).saturating_add(4096).clamp(8 << 10, BUFFER);
        r.buf.truncate(want);
        if split.start != 0 {
            r.skip_first_line()?;
        }
        Ok(r)
    }

    /// Lines of an arbitrary reader whose first byte is at stream offset `base`; with `limit`,
    /// stops before the first line that starts after offset `limit`.
    pub fn from_reader(
        src: Box<dyn Read + Send>,
        url: &str,
        base: u64,
        limit: Option<u64>,
        mode: Utf8Mode,
    ) -> LineReader {
        LineReader {
            src,
            url: url.to_string(),
            buf: vec![0; BUFFER],
            filled: 0,
            pos: 0,
            validated: 0,
            base,
            limit,
            eof: false,
            done: false,
            mode,
            scratch: String::new(),
        }
    }

    /// The URL being read.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn skip_first_line(&mut self) -> Result<()> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.filled]) {
                self.pos += i + 1;
                return Ok(());
            }
            if self.eof {
                self.pos = self.filled;
                return Ok(());
            }
            self.pos = self.filled;
            self.refill()?;
        }
    }

    fn refill(&mut self) -> Result<()> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.validated = self.validated.saturating_sub(self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if self.filled == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        let before = self.filled;
        loop {
            match self.src.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.filled += n;
                    // Keep reading until the buffer is reasonably full: fewer, larger validations.
                    if self.filled >= self.buf.len() / 2 {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StorageError::from_io(&self.url, e)),
            }
        }
        if self.filled > before {
            self.validate_bulk();
        }
        Ok(())
    }

    /// Validates complete lines in the buffer at once; a failure is left for the per-line check,
    /// which reports the exact offset (and only if the split actually reaches that line).
    fn validate_bulk(&mut self) {
        let from = self.validated.max(self.pos);
        let Some(last_nl) = memchr::memrchr(b'\n', &self.buf[from..self.filled]) else { return };
        let to = from + last_nl + 1;
        if simdutf8::basic::from_utf8(&self.buf[from..to]).is_ok() {
            self.validated = to;
        }
    }

    fn decode(&mut self, s: usize, e: usize) -> Result<&str> {
        if e <= self.validated {
            // SAFETY: buf[..validated] was checked as UTF-8 and ends at a line end, so any line
            // inside it is a valid UTF-8 substring (line ends are ASCII bytes).
            return Ok(unsafe { std::str::from_utf8_unchecked(&self.buf[s..e]) });
        }
        match std::str::from_utf8(&self.buf[s..e]) {
            Ok(_) => Ok(std::str::from_utf8(&self.buf[s..e]).expect("checked")),
            Err(err) => match self.mode {
                Utf8Mode::Lossy => {
                    self.scratch = String::from_utf8_lossy(&self.buf[s..e]).into_owned();
                    Ok(&self.scratch)
                }
                Utf8Mode::Strict => Err(StorageError::InvalidUtf8 {
                    url: self.url.clone(),
                    offset: self.base + (s + err.valid_up_to()) as u64,
                }),
            },
        }
    }

    /// The next line, borrowed from the reader's buffer; `Ok(None)` at the end of the split.
    pub fn next_line(&mut self) -> Result<Option<&str>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let line_start = self.base + self.pos as u64;
            if self.limit.is_some_and(|l| line_start > l) {
                self.done = true;
                return Ok(None);
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.filled]) {
                let s = self.pos;
                let mut e = s + i;
                self.pos = e + 1;
                if e > s && self.buf[e - 1] == b'\r' {
                    e -= 1;
                }
                return self.decode(s, e).map(Some);
            }
            if self.eof {
                if self.pos < self.filled {
                    let s = self.pos;
                    let mut e = self.filled;
                    self.pos = e;
                    if e > s && self.buf[e - 1] == b'\r' {
                        e -= 1;
                    }
                    return self.decode(s, e).map(Some);
                }
                self.done = true;
                return Ok(None);
            }
            self.refill()?;
        }
    }

    /// Stream offset of the next unread byte (file offset for plain files).
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }
}

impl Iterator for LineReader {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_line() {
            Ok(Some(l)) => Some(Ok(l.to_string())),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The whole text of one file (decompressed by extension).
pub fn read_whole_text(url: &str, config: &StorageConfig, mode: Utf8Mode) -> Result<String> {
    let loc = Location::resolve(url, config)?;
    let mut r = open_decoded(&loc, config)?;
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes).map_err(|e| StorageError::from_io(loc.url(), e))?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => match mode {
            Utf8Mode::Lossy => Ok(String::from_utf8_lossy(e.as_bytes()).into_owned()),
            Utf8Mode::Strict => Err(StorageError::InvalidUtf8 {
                url: loc.url().to_string(),
                offset: e.utf8_error().valid_up_to() as u64,
            }),
        },
    }
}

/// `(url, content)` for every file of `urls` (files, directories, globs), like Spark's
/// `wholeTextFiles`. The engine can instead list with [`crate::list_inputs`] and call
/// [`read_whole_text`] per partition.
pub fn whole_text_files(urls: &str, config: &StorageConfig, mode: Utf8Mode) -> Result<Vec<(String, String)>> {
    crate::listing::list_inputs(urls, config)?
        .iter()
        .map(|f| Ok((f.url().to_string(), read_whole_text(f.url(), config, mode)?)))
        .collect()
}
