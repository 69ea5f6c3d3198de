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
/// Bytes validated as UTF-8 at once.
const VALIDATE_WINDOW: usize = 1 << 20;

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
    no_bulk_until: usize,
    base: u64,
    limit: Option<u64>,
    eof: bool,
    done: bool,
    mode: Utf8Mode,
    scratch: String,
    scan: Option<(usize, u64)>,
}

/// Bitmask of the `\n` bytes among `bytes[start..start + 64]` (fewer at the end of `bytes`).
#[inline]
fn newline_mask(bytes: &[u8], start: usize) -> u64 {
    if let Some(chunk) = bytes.get(start..start + 64) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{
                __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
            };
            // SAFETY: SSE2 is part of the x86_64 baseline; the four unaligned 16-byte loads stay
            // inside `chunk`, which is 64 bytes long.
            unsafe {
                let nl = _mm_set1_epi8(b'\n' as i8);
                let p = chunk.as_ptr() as *const __m128i;
                let m = |k: usize| {
                    _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(p.add(k)), nl)) as u16 as u64
                };
                return m(0) | (m(1) << 16) | (m(2) << 32) | (m(3) << 48);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        return chunk
            .iter()
            .enumerate()
            .fold(0u64, |m, (i, &b)| m | (((b == b'\n') as u64) << i));
    }
    bytes[start.min(bytes.len())..]
        .iter()
        .enumerate()
        .fold(0u64, |m, (i, &b)| m | (((b == b'\n') as u64) << i))
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
        r.buf.truncate(
            (split.size() as usize)
                .saturating_add(4096)
                .clamp(8 << 10, BUFFER),
        );
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
            no_bulk_until: 0,
            base,
            limit,
            eof: false,
            done: false,
            mode,
            scratch: String::new(),
            scan: None,
        }
    }

    /// The URL being read.
    pub fn url(&self) -> &str {
        &self.url
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// The next `\n` at or after `self.pos`: 64-byte blocks are turned into bitmasks once, so each
    /// line costs a few bit operations instead of a `memchr` call.
    #[inline(always)]
    fn next_newline(&mut self) -> Option<usize> {
        let pos = self.pos;
        let (mut start, mut mask) = match self.scan {
            Some((start, mask)) if pos >= start && pos < start + 64 => {
                (start, mask & (!0u64 << (pos - start)))
            }
            _ => (pos, newline_mask(self.bytes(), pos)),
        };
        loop {
            if mask != 0 {
                self.scan = Some((start, mask));
                return Some(start + mask.trailing_zeros() as usize);
            }
            start += 64;
            if start >= self.filled {
                self.scan = None;
                return None;
            }
            mask = newline_mask(self.bytes(), start);
        }
    }

    fn skip_first_line(&mut self) -> Result<()> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.bytes()[self.pos..]) {
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
        let (buf, src) = (&mut self.buf, &mut self.src);
        self.scan = None;
        if self.pos > 0 {
            buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.validated = self.validated.saturating_sub(self.pos);
            self.no_bulk_until = self.no_bulk_until.saturating_sub(self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if self.filled == buf.len() {
            let n = buf.len() * 2;
            buf.resize(n, 0);
        }
        loop {
            match src.read(&mut buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.filled += n;
                    // Keep reading until the buffer is reasonably full: fewer, larger validations.
                    if self.filled >= buf.len() / 2 {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StorageError::from_io(&self.url, e)),
            }
        }
        Ok(())
    }

    /// Validates the next window of complete lines at once. A failure is left for the per-line
    /// check, which reports the exact offset (and only if the split actually reaches that line).
    fn extend_validation(&mut self, line_start: usize) {
        // From the line being decoded: callers have already moved `pos` past it.
        let from = self.validated.max(line_start);
        if from < self.no_bulk_until {
            return;
        }
        let bytes = self.bytes();
        let mut wend = (from + VALIDATE_WINDOW).min(bytes.len());
        if let Some(l) = self.limit {
            // Nothing past the split's last line is needed: stop the window at the split end.
            let lim = l.saturating_sub(self.base) as usize;
            wend = wend.min(lim.max(from) + 1).min(bytes.len());
        }
        let to = match memchr::memrchr(b'\n', &bytes[from..wend]) {
            Some(i) => from + i + 1,
            None => match memchr::memchr(b'\n', &bytes[wend..]) {
                Some(i) => wend + i + 1,
                None => return,
            },
        };
        if simdutf8::basic::from_utf8(&bytes[from..to]).is_ok() {
            self.validated = to;
        } else {
            self.no_bulk_until = to;
        }
    }

    #[inline(always)]
    fn decode(&mut self, s: usize, e: usize) -> Result<&str> {
        if e <= self.validated {
            // SAFETY: bytes[..validated] were checked as UTF-8 up to a line end, so any line inside
            // is a valid UTF-8 substring (line ends are ASCII bytes).
            return Ok(unsafe { std::str::from_utf8_unchecked(&self.bytes()[s..e]) });
        }
        self.decode_slow(s, e)
    }

    #[cold]
    #[inline(never)]
    fn decode_slow(&mut self, s: usize, e: usize) -> Result<&str> {
        self.extend_validation(s);
        if e <= self.validated {
            // SAFETY: as in `decode`.
            return Ok(unsafe { std::str::from_utf8_unchecked(&self.bytes()[s..e]) });
        }
        match std::str::from_utf8(&self.bytes()[s..e]) {
            Ok(_) => {
                // SAFETY: checked on the line just above.
                Ok(unsafe { std::str::from_utf8_unchecked(&self.bytes()[s..e]) })
            }
            Err(err) => match self.mode {
                Utf8Mode::Lossy => {
                    self.scratch = String::from_utf8_lossy(&self.bytes()[s..e]).into_owned();
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
    #[inline]
    pub fn next_line(&mut self) -> Result<Option<&str>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.limit.is_some_and(|l| self.base + self.pos as u64 > l) {
                self.done = true;
                return Ok(None);
            }
            if let Some(nl) = self.next_newline() {
                let s = self.pos;
                let mut e = nl;
                self.pos = e + 1;
                if e > s && self.bytes()[e - 1] == b'\r' {
                    e -= 1;
                }
                return self.decode(s, e).map(Some);
            }
            if self.eof {
                if self.pos < self.filled {
                    let s = self.pos;
                    let mut e = self.filled;
                    self.pos = e;
                    if e > s && self.bytes()[e - 1] == b'\r' {
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

    /// Calls `f` on every remaining line; returns how many. The fastest way to consume a split:
    /// whole buffers are validated and scanned at once, with no per-line `Result`.
    pub fn for_each_line<F: FnMut(&str)>(&mut self, mut f: F) -> Result<u64> {
        let mut n = 0u64;
        while !self.done {
            // Complete lines in the buffer: bytes[pos..=last newline].
            let bytes = &self.buf[..self.filled];
            let Some(last) = memchr::memrchr(b'\n', &bytes[self.pos..]).map(|i| self.pos + i)
            else {
                if self.eof {
                    break; // the final unterminated line goes through next_line below
                }
                self.refill()?;
                continue;
            };
            let from = self.validated.max(self.pos);
            let ok = from > last || simdutf8::basic::from_utf8(&bytes[from..=last]).is_ok();
            if !ok {
                // Some line here is not UTF-8: let next_line find it (error or lossy).
                while self.pos <= last && !self.done {
                    match self.next_line()? {
                        Some(line) => {
                            f(line);
                            n += 1;
                        }
                        None => break,
                    }
                }
                continue;
            }
            self.validated = self.validated.max(last + 1);
            let lim = self
                .limit
                .map_or(usize::MAX, |l| l.saturating_sub(self.base) as usize);
            let mut s = self.pos;
            let mut block = s;
            let mut mask = newline_mask(bytes, block);
            loop {
                while mask == 0 {
                    block += 64;
                    if block > last {
                        break;
                    }
                    mask = newline_mask(bytes, block);
                }
                if mask == 0 {
                    break;
                }
                let nl = block + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                if nl < s {
                    continue;
                }
                if s > lim {
                    self.done = true;
                    break;
                }
                let e = if nl > s && bytes[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                // SAFETY: bytes[..=last] were validated as UTF-8 just above, and [s, e) lies
                // between line ends (ASCII bytes), so it is a valid UTF-8 substring.
                f(unsafe { std::str::from_utf8_unchecked(&bytes[s..e]) });
                n += 1;
                s = nl + 1;
                if nl == last {
                    break;
                }
            }
            self.pos = s;
            self.scan = None;
            if !self.done && !self.eof {
                self.refill()?;
            } else if self.eof {
                break;
            }
        }
        // The tail (a last line without `\n`, or the end of the split) follows next_line's rules.
        while let Some(line) = self.next_line()? {
            f(line);
            n += 1;
        }
        Ok(n)
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
    r.read_to_end(&mut bytes)
        .map_err(|e| StorageError::from_io(loc.url(), e))?;
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
pub fn whole_text_files(
    urls: &str,
    config: &StorageConfig,
    mode: Utf8Mode,
) -> Result<Vec<(String, String)>> {
    crate::listing::list_inputs(urls, config)?
        .iter()
        .map(|f| Ok((f.url().to_string(), read_whole_text(f.url(), config, mode)?)))
        .collect()
}
