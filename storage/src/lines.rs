//! Lines of a text split (or of a whole compressed file), fast:
//!
//! - plain splits are read straight into one reused buffer (remote stores fetch ahead in
//!   [`ObjectReader`]); compressed files are decoded by a read-ahead thread while the caller parses
//!   the previous buffer, which is handed over without copying ([`crate::readahead`]);
//! - one SIMD pass per window of up to [`WINDOW`] bytes indexes every line end and notes which
//!   64-byte blocks hold non-ASCII bytes ([`crate::scan`]); only those parts of a window are
//!   validated as UTF-8, in bulk, while they are still in cache;
//! - lines are then handed out as `&str` slices of the buffer: no copy, no per-line check.
//!
//! A window that fails validation is decoded line by line, so the error names the exact offset
//! (and only for a line the split actually returns), or lossy mode replaces just the bad bytes.

use std::io::Read;

use crate::compression::{open_decoded, Codec};
use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::location::Location;
use crate::readahead::ReadAhead;
use crate::reader::ObjectReader;
use crate::scan::{index_newlines, set_runs, BLOCK};
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

/// Default buffer size for direct reads (grows for longer lines).
const BUFFER: usize = 1 << 20;
/// Bytes indexed (and, when not ASCII, validated) at once: small enough to stay in L1/L2 cache
/// between the scan, the validation and the caller's use of the lines.
const WINDOW: usize = 32 << 10;
/// Runs of non-ASCII blocks at most this many ASCII blocks apart are validated in one call (fewer
/// calls; the ASCII blocks in between cost little).
const MERGE_GAP: usize = 4;
/// A window with more than one block in this many holding non-ASCII bytes is validated in one
/// call: with so many runs, the cost of a call per run outweighs the ASCII blocks skipped (on text
/// with non-ASCII words on every line, per-run calls were measured 3% slower than one call).
const DENSE: usize = 4;
/// Compressed files at least this long are decoded by a read-ahead thread.
const READ_AHEAD_MIN: u64 = 1 << 20;
/// Bytes per read-ahead buffer.
const AHEAD_CHUNK: usize = 1 << 20;
/// Free bytes before each read-ahead buffer's data, for the unfinished line of the previous one.
const AHEAD_HEAD: usize = 64 << 10;

/// Where a [`LineReader`]'s bytes come from.
enum Source {
    /// Read straight into the line buffer.
    Direct(Box<dyn Read + Send>),
    /// Buffers filled by a background thread (see [`ReadAhead`]).
    Ahead(ReadAhead),
}

/// Reads the lines of one [`Split`].
///
/// Lines end at `\n`; a `\r` before it is dropped (`\r\n` files). The line terminator is not part
/// of the line. Use [`LineReader::next_line`] for borrowed lines without allocation,
/// [`LineReader::for_each_line`] for the fastest loop, or iterate for owned `String`s.
pub struct LineReader {
    src: Source,
    url: String,
    buf: Vec<u8>,
    filled: usize,
    /// Start of the next line.
    pos: usize,
    /// Line ends (indices into `buf`) of the indexed window; `ends[next_end..]` are still to come.
    ends: Vec<usize>,
    next_end: usize,
    /// Whether every line of the indexed window is known to be UTF-8.
    window_ok: bool,
    /// Which 64-byte blocks of the last scanned piece hold non-ASCII bytes (see [`index_newlines`]).
    high: Vec<u64>,
    /// Bytes from `pos` up to here hold no line end (a long line seen across several windows).
    scanned: usize,
    /// Whether any byte in `pos..scanned` is non-ASCII.
    scanned_high: bool,
    /// Stream offset of `buf[0]` (negative while a read-ahead buffer's head is unused).
    base: i64,
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
            if split.len < READ_AHEAD_MIN {
                return Ok(Self::from_reader(Box::new(src), loc.url(), 0, None, mode));
            }
            // Decompression is the slow part: a thread decodes ahead while this one parses.
            let ahead = ReadAhead::spawn(Box::new(src), AHEAD_HEAD, AHEAD_CHUNK)
                .map_err(|e| StorageError::from_io(loc.url(), e))?;
            return Ok(Self::new(Source::Ahead(ahead), loc.url(), 0, None, mode));
        }
        // Plain files are read straight into the line buffer: measured on 2 cores, a read-ahead
        // thread handing each buffer to another core cost more than it overlapped (the raw
        // read is a memory copy, not a wait). Remote stores already fetch ahead (`ObjectReader`).
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
        let mut r = Self::new(Source::Direct(src), url, base, limit, mode);
        r.buf = vec![0; BUFFER];
        r
    }

    fn new(src: Source, url: &str, base: u64, limit: Option<u64>, mode: Utf8Mode) -> LineReader {
        LineReader {
            src,
            url: url.to_string(),
            buf: Vec::new(),
            filled: 0,
            pos: 0,
            ends: Vec::with_capacity(1024),
            next_end: 0,
            window_ok: true,
            high: Vec::with_capacity(WINDOW / BLOCK / 64 + 1),
            scanned: 0,
            scanned_high: false,
            base: base as i64,
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

    /// Buffer index of stream offset `off` (0 before the buffer).
    #[inline]
    fn rel(&self, off: u64) -> usize {
        (off as i64 - self.base).max(0) as usize
    }

    /// Stream offset of buffer index `i`.
    #[inline]
    fn abs(&self, i: usize) -> u64 {
        (self.base + i as i64) as u64
    }

    fn skip_first_line(&mut self) -> Result<()> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..self.filled]) {
                self.pos += i + 1;
                return Ok(());
            }
            self.pos = self.filled;
            if self.eof {
                return Ok(());
            }
            self.refill()?;
        }
    }

    /// Reads more bytes. Only called once every indexed line is consumed; the unread bytes (an
    /// unfinished line) are kept, and are indexed again from their start.
    fn refill(&mut self) -> Result<()> {
        self.ends.clear();
        self.next_end = 0;
        // Bytes after `pos` already scanned (a long line) are not scanned again.
        let carried = self.scanned.saturating_sub(self.pos);
        let res = if matches!(self.src, Source::Ahead(_)) {
            self.refill_ahead()
        } else {
            self.refill_direct()
        };
        self.scanned = self.pos + carried;
        self.scanned_high &= carried > 0;
        res
    }

    fn refill_direct(&mut self) -> Result<()> {
        self.compact();
        let (buf, Source::Direct(src)) = (&mut self.buf, &mut self.src) else {
            unreachable!("direct source");
        };
        if self.filled == buf.len() {
            let n = (buf.len() * 2).max(8 << 10);
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
                    // Keep reading until the buffer is reasonably full: fewer, larger scans.
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

    /// Moves the unread bytes to the start of the buffer.
    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.base += self.pos as i64;
            self.pos = 0;
        }
    }

    /// Takes the next read-ahead buffer: the unread bytes (an unfinished line) go into its head
    /// and parsing goes on there, so the new data is never copied. A line longer than the head
    /// instead gets the new data appended to the current buffer.
    fn refill_ahead(&mut self) -> Result<()> {
        let Source::Ahead(ahead) = &mut self.src else {
            unreachable!("read-ahead source");
        };
        let got = ahead
            .next()
            .map_err(|e| StorageError::from_io(&self.url, e))?;
        let Some((mut next, n)) = got else {
            self.eof = true;
            return Ok(());
        };
        let head = ahead.head();
        let left = self.filled - self.pos;
        if left <= head {
            let start = head - left;
            next[start..head].copy_from_slice(&self.buf[self.pos..self.filled]);
            self.base += self.pos as i64 - start as i64;
            self.pos = start;
            self.filled = head + n;
            let old = std::mem::replace(&mut self.buf, next);
            ahead.give_back(old);
        } else {
            if self.buf.len() < self.filled + n {
                self.compact();
            }
            if self.buf.len() < self.filled + n {
                self.buf.resize(self.filled + n, 0);
            }
            self.buf[self.filled..self.filled + n].copy_from_slice(&next[head..head + n]);
            self.filled += n;
            if let Source::Ahead(ahead) = &mut self.src {
                ahead.give_back(next);
            }
        }
        Ok(())
    }

    /// Indexes the next window of lines after `pos` (and validates it when it holds non-ASCII
    /// bytes). Returns false when the buffer holds no further line end.
    fn index_window(&mut self) -> bool {
        self.ends.clear();
        self.next_end = 0;
        let mut from = self.scanned.max(self.pos);
        while from < self.filled {
            let to = (from + WINDOW).min(self.filled);
            let high = index_newlines(&self.buf, from, to, &mut self.ends, &mut self.high);
            let Some(&last) = self.ends.last() else {
                self.scanned = to;
                self.scanned_high |= high;
                from = to;
                continue;
            };
            // Lines pos..=last are complete: validate them unless all ASCII. (`high` may come
            // from bytes after `last`: that only costs a look at the bitmap.)
            self.window_ok =
                !(high || self.scanned_high) || self.complete_lines_are_utf8(from, last);
            self.scanned = 0;
            self.scanned_high = false;
            return true;
        }
        false
    }

    /// Whether `buf[pos..=last]` (the complete lines of a window whose bytes `from..` were just
    /// scanned into `high`) is UTF-8, validating only the parts that hold non-ASCII bytes.
    ///
    /// Why that is enough: ASCII bytes never belong to a multi-byte sequence, so a byte string is
    /// UTF-8 exactly when each maximal run of bytes `>= 0x80` is UTF-8 on its own. A run of
    /// consecutive non-ASCII blocks covers every such byte run it touches whole (a byte run, even
    /// one straddling two blocks, sets the bits of every block it crosses, so it cannot leave
    /// the block run: the byte before the run's first block is ASCII, or is in `pos..from`, all
    /// ASCII here, or precedes `pos`, a line start), and `last` is a `\n`, so cutting the region
    /// there cuts no byte run either. Validating those regions (or unions of nearby ones, with the
    /// ASCII blocks between them) is thus the same as validating the whole window.
    ///
    /// Bytes `pos..from` (a long line scanned in earlier pieces) have no bitmap: when any of them
    /// was non-ASCII (`scanned_high`), the whole of `pos..=last` is validated. So is a window
    /// dense with non-ASCII blocks (see [`DENSE`]).
    #[inline]
    fn complete_lines_are_utf8(&self, from: usize, last: usize) -> bool {
        if self.scanned_high {
            return simdutf8::basic::from_utf8(&self.buf[self.pos..=last]).is_ok();
        }
        let high_blocks: u32 = self.high.iter().map(|w| w.count_ones()).sum();
        if high_blocks as usize * DENSE > (last + 1 - from).div_ceil(BLOCK) {
            return simdutf8::basic::from_utf8(&self.buf[self.pos..=last]).is_ok();
        }
        let mut runs = set_runs(&self.high);
        let Some(mut run) = runs.next() else {
            return true;
        };
        let check = |run: std::ops::Range<usize>| {
            let s = from + run.start * BLOCK;
            // A block run reaching past `last` is cut there (the rest is scanned again with the
            // next window).
            s > last
                || simdutf8::basic::from_utf8(&self.buf[s..(from + run.end * BLOCK).min(last + 1)])
                    .is_ok()
        };
        for next in runs {
            if next.start - run.end <= MERGE_GAP {
                run.end = next.end;
                continue;
            }
            if !check(run) {
                return false;
            }
            run = next;
        }
        check(run)
    }

    /// A line that is not known to be UTF-8: checked on its own (the exact error offset).
    #[cold]
    #[inline(never)]
    fn decode_checked(&mut self, s: usize, e: usize) -> Result<&str> {
        match std::str::from_utf8(&self.buf[s..e]) {
            // SAFETY: checked on the line just above.
            Ok(_) => Ok(unsafe { std::str::from_utf8_unchecked(&self.buf[s..e]) }),
            Err(err) => match self.mode {
                Utf8Mode::Lossy => {
                    self.scratch = String::from_utf8_lossy(&self.buf[s..e]).into_owned();
                    Ok(&self.scratch)
                }
                Utf8Mode::Strict => Err(StorageError::InvalidUtf8 {
                    url: self.url.clone(),
                    offset: self.abs(s + err.valid_up_to()),
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
            if let Some(&nl) = self.ends.get(self.next_end) {
                let s = self.pos;
                if self.limit.is_some_and(|l| self.abs(s) > l) {
                    self.done = true;
                    return Ok(None);
                }
                self.next_end += 1;
                self.pos = nl + 1;
                let e = if nl > s && self.buf[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                if self.window_ok {
                    // SAFETY: the window's lines were validated as UTF-8 (or are all ASCII), and
                    // [s, e) lies between line ends (ASCII bytes): a valid UTF-8 substring.
                    return Ok(Some(unsafe {
                        std::str::from_utf8_unchecked(&self.buf[s..e])
                    }));
                }
                return self.decode_checked(s, e).map(Some);
            }
            if self.index_window() {
                continue;
            }
            if self.eof {
                // A last line without `\n`.
                let s = self.pos;
                self.done = true;
                if s == self.filled || self.limit.is_some_and(|l| self.abs(s) > l) {
                    return Ok(None);
                }
                self.pos = self.filled;
                let mut e = self.filled;
                if self.buf[e - 1] == b'\r' {
                    e -= 1;
                }
                return self.decode_checked(s, e).map(Some);
            }
            self.refill()?;
        }
    }

    /// Calls `f` on every remaining line; returns how many. The fastest way to consume a split:
    /// the lines of a validated window go to `f` in a tight loop, with no per-line `Result`.
    pub fn for_each_line<F: FnMut(&str)>(&mut self, mut f: F) -> Result<u64> {
        let mut n = 0u64;
        loop {
            if self.window_ok && !self.done && self.next_end < self.ends.len() {
                let lim = self.limit.map_or(usize::MAX, |l| self.rel(l));
                let bytes = &self.buf[..self.filled];
                let mut s = self.pos;
                let mut used = 0;
                for &nl in &self.ends[self.next_end..] {
                    if s > lim || (s == lim && self.limit.is_some_and(|l| self.abs(s) > l)) {
                        break;
                    }
                    let e = if nl > s && bytes[nl - 1] == b'\r' {
                        nl - 1
                    } else {
                        nl
                    };
                    // SAFETY: as in `next_line`.
                    f(unsafe { std::str::from_utf8_unchecked(&bytes[s..e]) });
                    s = nl + 1;
                    used += 1;
                }
                n += used as u64;
                self.next_end += used;
                self.pos = s;
            }
            // The rest (a new window, a window with bad UTF-8, the end) follows next_line.
            match self.next_line()? {
                Some(line) => {
                    f(line);
                    n += 1;
                }
                None => return Ok(n),
            }
        }
    }

    /// Stream offset of the next unread byte (file offset for plain files).
    pub fn offset(&self) -> u64 {
        self.abs(self.pos)
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

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Lines of every length class: empty, short, non-ASCII, CRLF, longer than a read-ahead head
    /// and longer than a scan window.
    fn sample(seed: u64, lines: usize) -> (Vec<u8>, Vec<String>) {
        let mut x = seed;
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for i in 0..lines {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = match (x >> 60) % 8 {
                0 => 0,
                1 => WINDOW + (x >> 20) as usize % 5000,
                2 => 200 + (x >> 20) as usize % 300,
                _ => (x >> 20) as usize % 90,
            };
            let mut line: String = (0..len).map(|k| (b'a' + (k % 26) as u8) as char).collect();
            if i % 3 == 0 {
                line.insert_str(line.len() / 2, "Zürich 東京");
            }
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(if i % 5 == 0 { b"\r\n" } else { b"\n" });
            want.push(line);
        }
        (bytes, want)
    }

    fn ahead_reader(bytes: Vec<u8>, head: usize, chunk: usize, mode: Utf8Mode) -> LineReader {
        let ahead = ReadAhead::spawn(Box::new(Cursor::new(bytes)), head, chunk).unwrap();
        LineReader::new(Source::Ahead(ahead), "mem://t", 0, None, mode)
    }

    fn direct_reader(bytes: Vec<u8>, mode: Utf8Mode) -> LineReader {
        LineReader::from_reader(Box::new(Cursor::new(bytes)), "mem://t", 0, None, mode)
    }

    fn all_lines(mut r: LineReader) -> Result<Vec<String>> {
        let mut out = Vec::new();
        while let Some(l) = r.next_line()? {
            out.push(l.to_string());
        }
        Ok(out)
    }

    fn bulk_lines(mut r: LineReader) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let n = r.for_each_line(|l| out.push(l.to_string()))?;
        assert_eq!(n as usize, out.len());
        Ok(out)
    }

    #[test]
    fn read_ahead_and_direct_reads_give_the_same_lines() {
        let sample_without_final_newline = |lines| {
            let (mut bytes, mut want) = sample(3, lines);
            bytes.extend_from_slice("last line é".as_bytes());
            want.push("last line é".into());
            (bytes, want)
        };
        // Tiny pieces on a small sample only (one thread hand-off per piece).
        let small = sample_without_final_newline(40);
        let (bytes, want) = sample_without_final_newline(300);
        for (head, chunk) in [
            (1, 1),
            (16, 7),
            (64, 1000),
            (4096, 65_536),
            (AHEAD_HEAD, 1 << 20),
        ] {
            let (bytes, want) = if chunk < 100 {
                (&small.0, &small.1)
            } else {
                (&bytes, &want)
            };
            let mode = Utf8Mode::Strict;
            let got = all_lines(ahead_reader(bytes.clone(), head, chunk, mode)).unwrap();
            assert_eq!(&got, want, "next_line, head {head} chunk {chunk}");
            let got = bulk_lines(ahead_reader(bytes.clone(), head, chunk, mode)).unwrap();
            assert_eq!(&got, want, "for_each_line, head {head} chunk {chunk}");
        }
        assert_eq!(
            all_lines(direct_reader(bytes.clone(), Utf8Mode::Strict)).unwrap(),
            want
        );
        assert_eq!(
            bulk_lines(direct_reader(bytes, Utf8Mode::Strict)).unwrap(),
            want
        );
    }

    #[test]
    fn invalid_utf8_is_found_at_its_offset_in_every_window_layout() {
        let (bytes, want) = sample(11, 200);
        // A bad byte in a short line, and one deep inside a line longer than a scan window
        // whose first window held non-ASCII text.
        let long = want
            .iter()
            .position(|l| l.len() > WINDOW + 100 && !l.is_ascii());
        let short = want.iter().position(|l| (10..90).contains(&l.len()));
        for line in [short.unwrap(), long.unwrap()] {
            let start: usize = want[..line]
                .iter()
                .enumerate()
                .map(|(i, l)| l.len() + if i % 5 == 0 { 2 } else { 1 })
                .sum();
            let at = start + want[line].len() - 3;
            let mut bad = bytes.clone();
            bad[at] = 0xFF;
            let readers = [
                direct_reader(bad.clone(), Utf8Mode::Strict),
                ahead_reader(bad.clone(), 64, 4096, Utf8Mode::Strict),
            ];
            for r in readers {
                match all_lines(r) {
                    Err(StorageError::InvalidUtf8 { offset, url }) => {
                        assert_eq!((offset, url.as_str()), (at as u64, "mem://t"))
                    }
                    other => panic!("expected invalid UTF-8 at {at}, got {other:?}"),
                }
            }
            match bulk_lines(ahead_reader(bad.clone(), 64, 4096, Utf8Mode::Strict)) {
                Err(StorageError::InvalidUtf8 { offset, .. }) => assert_eq!(offset, at as u64),
                other => panic!("expected invalid UTF-8 at {at}, got {other:?}"),
            }
            // Lossy: only that line changes, and only by the replaced byte.
            let mut lossy_want = want.clone();
            let mut l = want[line].clone().into_bytes();
            l[at - start] = 0xFF;
            lossy_want[line] = String::from_utf8_lossy(&l).into_owned();
            let got = bulk_lines(direct_reader(bad, Utf8Mode::Lossy)).unwrap();
            assert_eq!(got, lossy_want);
        }
    }

    /// The readers the layout tests use: one window per read, and small read-ahead buffers
    /// (window ends every 4 KiB, at the end of each buffer).
    fn readers(bytes: &[u8], mode: Utf8Mode) -> [LineReader; 2] {
        [
            direct_reader(bytes.to_vec(), mode),
            ahead_reader(bytes.to_vec(), 64, 4096, mode),
        ]
    }

    #[test]
    fn characters_across_block_and_window_edges_are_accepted() {
        for ch in ["é", "東", "😀"] {
            for edge in [64, 128, 4032, 4096, 4160, WINDOW, 2 * WINDOW] {
                for cut in 1..ch.len() {
                    // Short lines, or a line longer than a window (with or without non-ASCII
                    // text in its first window) holding the character.
                    for (every, prefix) in [(50, ""), (3 * WINDOW, ""), (3 * WINDOW, "ü")] {
                        let mut text = prefix.to_string();
                        while text.len() < edge - cut {
                            let c = if text.len() % every == every - 1 {
                                '\n'
                            } else {
                                'x'
                            };
                            text.push(c);
                        }
                        text.truncate(edge - cut);
                        text += ch;
                        text += "yz\nlast é";
                        let want: Vec<&str> = text.split('\n').collect();
                        let case = format!("{ch} at {} every {every} {prefix}", edge - cut);
                        for r in readers(text.as_bytes(), Utf8Mode::Strict) {
                            assert_eq!(all_lines(r).unwrap(), want, "{case}");
                        }
                        let r = ahead_reader(text.clone().into_bytes(), 64, 4096, Utf8Mode::Strict);
                        assert_eq!(bulk_lines(r).unwrap(), want, "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn invalid_bytes_around_and_inside_non_ascii_blocks_are_found_at_their_offset() {
        // Realistic log lines, 1 in 16 with non-ASCII words, across three windows, and an ASCII
        // line longer than two windows (scanned in pieces before its end is found).
        let mut text = String::new();
        let mut i = 0;
        let mut long = 0..0;
        while text.len() < 3 * WINDOW {
            if i == 300 {
                let start = text.len();
                text.extend(std::iter::repeat_n('x', 2 * WINDOW + 700));
                long = start..text.len();
                text.push('\n');
            }
            let word = if i % 16 == 5 {
                "Zürich 東京 😀"
            } else {
                "Zurich Tokyo"
            };
            text += &format!(
                "2024-05-01T12:00:{:02} INFO request {i} from {word} done\n",
                i % 60
            );
            i += 1;
        }
        let bytes = text.into_bytes();
        let chars: Vec<usize> = (0..bytes.len()).filter(|&k| bytes[k] >= 0xC0).collect();
        // Characters early (known block alignment: the first window starts at 0), at the first
        // window's end, and in later windows.
        let near = |at: usize| chars[chars.partition_point(|&c| c < at)];
        let mut places = Vec::new();
        for c in [
            chars[0],
            chars[1],
            near(WINDOW - 200),
            near(WINDOW),
            near(WINDOW + 5000),
        ] {
            let len = bytes[c].leading_ones() as usize;
            places.extend([
                c - 1,
                c + len,
                c + len + 1,
                c / 64 * 64 - 1,
                (c + len).div_ceil(64) * 64,
            ]);
            // The first byte of a block before or after (a run of its own, or joining the
            // character's).
            let (first, next) = (c / 64 * 64, (c + len).div_ceil(64) * 64);
            places.extend([first - 64, first - 4 * 64, next + 64, next + 4 * 64]);
            // The last byte of the character's block, and of a block of its own.
            places.extend([next - 1, next + 4 * 64 + 63]);
            // Bytes in the ASCII blocks around.
            places.extend([c + 60, c - 70]);
        }
        // At the start, in the middle and at the end of the long line.
        places.extend([long.start + 100, long.start + WINDOW + 100, long.end - 5]);
        let mut checked = 0;
        for &at in &places {
            for error in 0..4 {
                let mut bad = bytes.clone();
                if error < 3 && bytes[at] >= 0x80 {
                    // Replacing part of a character may leave it valid: only ASCII is replaced.
                    continue;
                }
                match error {
                    // A byte that is never UTF-8, and a lone continuation byte.
                    0 => bad[at] = 0xFF,
                    1 => bad[at] = 0x80,
                    // A lead byte followed by too few continuation bytes.
                    2 => bad[at] = 0xE6,
                    // A character cut short: a continuation byte replaced by ASCII.
                    _ => {
                        let Some(c) = chars.iter().find(|&&c| c >= at) else {
                            continue;
                        };
                        bad[c + 1] = b'a';
                    }
                }
                let Err(e) = std::str::from_utf8(&bad) else {
                    panic!("{at}/{error}: still valid")
                };
                let want = e.valid_up_to() as u64;
                let case = format!("error {error} at {at}");
                for r in readers(&bad, Utf8Mode::Strict) {
                    match all_lines(r) {
                        Err(StorageError::InvalidUtf8 { offset, .. }) => {
                            assert_eq!(offset, want, "{case}")
                        }
                        other => panic!("{case}: expected invalid UTF-8 at {want}, got {other:?}"),
                    }
                }
                match bulk_lines(direct_reader(bad.clone(), Utf8Mode::Strict)) {
                    Err(StorageError::InvalidUtf8 { offset, .. }) => {
                        assert_eq!(offset, want, "{case}")
                    }
                    other => panic!("{case}: expected invalid UTF-8 at {want}, got {other:?}"),
                }
                // Lossy mode replaces the bad bytes of that line only.
                let lossy: Vec<String> = bad
                    .split(|&b| b == b'\n')
                    .map(|l| String::from_utf8_lossy(l).into_owned())
                    .collect();
                let got = bulk_lines(direct_reader(bad, Utf8Mode::Lossy)).unwrap();
                assert_eq!(got, lossy[..lossy.len() - 1], "{case}");
                checked += 1;
            }
        }
        assert!(checked >= places.len() * 3, "{checked} cases");
    }

    #[test]
    fn read_errors_after_some_lines_are_reported() {
        struct Failing(Cursor<Vec<u8>>);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(std::io::Error::other("connection reset")),
                    n => Ok(n),
                }
            }
        }
        let src = Failing(Cursor::new(b"a\nb\nc".to_vec()));
        let ahead = ReadAhead::spawn(Box::new(src), 8, 3).unwrap();
        let mut r = LineReader::new(Source::Ahead(ahead), "mem://t", 0, None, Utf8Mode::Strict);
        assert_eq!(r.next_line().unwrap(), Some("a"));
        assert_eq!(r.next_line().unwrap(), Some("b"));
        let err = r.next_line().unwrap_err();
        assert!(err.to_string().contains("mem://t"), "{err}");
    }

    #[test]
    fn a_split_limit_stops_after_the_line_that_starts_at_it() {
        let text = b"aa\nbb\ncc\n".to_vec();
        for limit in 0..9u64 {
            let want: Vec<&str> = ["aa", "bb", "cc"]
                .into_iter()
                .enumerate()
                .filter(|(i, _)| (*i as u64) * 3 <= limit)
                .map(|(_, l)| l)
                .collect();
            let r = LineReader::from_reader(
                Box::new(Cursor::new(text.clone())),
                "mem://t",
                0,
                Some(limit),
                Utf8Mode::Strict,
            );
            assert_eq!(bulk_lines(r).unwrap(), want, "limit {limit}");
        }
    }
}
