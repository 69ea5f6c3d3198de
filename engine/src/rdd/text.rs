//! Text files as partitioned sources: byte-range splits cut at line ends, read as Hadoop's
//! `TextInputFormat` does (a split skips its partial first line and finishes the line that starts
//! inside it, so every line is read exactly once).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::error::{EngineError, Result};
use crate::rdd::{BoxIter, Compute};
use crate::task::TaskContext;

/// One byte range of one file.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    pub file: PathBuf,
    pub start: u64,
    pub end: u64,
}

/// A text source over one file or a directory of files.
pub(crate) struct TextFile {
    splits: Vec<Split>,
    lossy: bool,
}

/// Files of `path`: the file itself, or the visible regular files of a directory, sorted.
pub(crate) fn input_files(path: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => EngineError::InputNotFound {
            path: path.to_path_buf(),
        },
        _ => EngineError::io(path, e),
    })?;
    if meta.is_file() {
        return Ok(vec![(path.to_path_buf(), meta.len())]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| EngineError::io(path, e))? {
        let entry = entry.map_err(|e| EngineError::io(path, e))?;
        let name = entry.file_name();
        let hidden = name.to_string_lossy().starts_with(['_', '.']);
        let meta = entry
            .metadata()
            .map_err(|e| EngineError::io(entry.path(), e))?;
        if !hidden && meta.is_file() {
            files.push((entry.path(), meta.len()));
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(EngineError::InputNotFound {
            path: path.to_path_buf(),
        });
    }
    Ok(files)
}

impl TextFile {
    pub(crate) fn open(path: &Path, min_partitions: usize, lossy: bool) -> Result<TextFile> {
        let files = input_files(path)?;
        let total: u64 = files.iter().map(|(_, len)| len).sum();
        let goal = total.div_ceil(min_partitions as u64).max(1);
        let mut splits = Vec::new();
        for (file, len) in files {
            let mut start = 0;
            loop {
                let end = (start + goal).min(len);
                splits.push(Split {
                    file: file.clone(),
                    start,
                    end,
                });
                start = end;
                if start >= len {
                    break;
                }
            }
        }
        Ok(TextFile { splits, lossy })
    }
}

impl Compute<String> for TextFile {
    fn num_partitions(&self) -> usize {
        self.splits.len()
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<String> {
        let s = &self.splits[split];
        match LineReader::open(s, self.lossy, Rc::clone(tc)) {
            Ok(reader) => Box::new(reader),
            Err(e) => {
                tc.fail(e);
                Box::new(std::iter::empty())
            }
        }
    }
}

const CHUNK: usize = 1 << 20;

/// Lines of one split, read in large chunks and cut with `memchr`.
pub(crate) struct LineReader {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    /// Next unread byte in `buf`.
    pos: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    end: u64,
    done: bool,
    lossy: bool,
    tc: Rc<TaskContext>,
}

impl LineReader {
    fn open(split: &Split, lossy: bool, tc: Rc<TaskContext>) -> Result<LineReader> {
        let path = split.file.clone();
        let mut file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EngineError::InputNotFound { path: path.clone() },
            _ => EngineError::io(&path, e),
        })?;
        file.seek(SeekFrom::Start(split.start))
            .map_err(|e| EngineError::io(&path, e))?;
        let mut reader = LineReader {
            file,
            path,
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            buf_offset: split.start,
            eof: false,
            end: split.end,
            done: false,
            lossy,
            tc,
        };
        if split.start != 0 {
            // The partial (or exactly aligned) first line belongs to the previous split.
            reader.next_line_bytes()?;
        }
        Ok(reader)
    }

    /// Reads more of the file, keeping the unread tail of the buffer.
    fn refill(&mut self) -> Result<()> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.buf_offset += self.pos as u64;
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let n = loop {
            match self.file.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(EngineError::io(&self.path, e));
                }
            }
        };
        self.buf.truncate(old + n);
        self.eof = n == 0;
        Ok(())
    }

    /// The next line's byte range in `buf` and its file offset, without the line end.
    fn next_line_bytes(&mut self) -> Result<Option<(usize, usize, u64)>> {
        let mut searched = 0;
        loop {
            let hay = &self.buf[self.pos + searched..];
            if let Some(i) = memchr::memchr(b'\n', hay) {
                let start = self.pos;
                let nl = self.pos + searched + i;
                self.pos = nl + 1;
                let end = if nl > start && self.buf[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                return Ok(Some((start, end, self.buf_offset + start as u64)));
            }
            if self.eof {
                if self.pos == self.buf.len() {
                    return Ok(None);
                }
                let start = self.pos;
                self.pos = self.buf.len();
                return Ok(Some((
                    start,
                    self.buf.len(),
                    self.buf_offset + start as u64,
                )));
            }
            searched = self.buf.len() - self.pos;
            self.refill()?;
        }
    }
}

impl Iterator for LineReader {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        // A split reads every line that starts at or before its end offset.
        if self.buf_offset + self.pos as u64 > self.end {
            self.done = true;
            return None;
        }
        match self.next_line_bytes() {
            Ok(Some((start, end, offset))) => {
                let bytes = &self.buf[start..end];
                match std::str::from_utf8(bytes) {
                    Ok(s) => Some(s.to_owned()),
                    Err(_) if self.lossy => Some(String::from_utf8_lossy(bytes).into_owned()),
                    Err(e) => {
                        self.done = true;
                        let offset = offset + e.valid_up_to() as u64;
                        self.tc.fail(EngineError::InvalidUtf8 {
                            path: self.path.clone(),
                            offset,
                        });
                        None
                    }
                }
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                self.tc.fail(e);
                None
            }
        }
    }
}
