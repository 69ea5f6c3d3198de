//! Text sources over any storage URL (bare paths, `file://`, `s3://`, `memory://`, `hdfs://`...):
//! the storage layer cuts files into byte-range splits at line ends, exactly as Hadoop's
//! `TextInputFormat` does (a split skips its partial first line and finishes the line that starts
//! inside it), and reads compressed files (gzip, lz4) whole.
//!
//! Lines are borrowed from the reader's buffer and handed to a per-line function: `text_file`
//! copies each into a `String`, `text_file_filter_map` lets the caller parse or drop a line before
//! anything is allocated for it.

use std::rc::Rc;

use ember_storage::{text_splits, LineReader, Split, StorageConfig, Utf8Mode};

use crate::error::Result;
use crate::rdd::{BoxIter, Compute};
use crate::task::TaskContext;

/// A text source: one partition per split, each line turned into at most one element by `f`.
pub(crate) struct TextFile<F> {
    /// The input as given (files, directories, globs), for [`Compute::source_version`].
    url: String,
    splits: Vec<Split>,
    config: StorageConfig,
    lossy: bool,
    f: Rc<F>,
}

impl<F> TextFile<F> {
    pub(crate) fn open(
        url: &str,
        min_partitions: usize,
        lossy: bool,
        config: StorageConfig,
        f: F,
    ) -> Result<TextFile<F>> {
        let splits = text_splits(url, min_partitions, &config)?;
        Ok(TextFile {
            url: url.to_string(),
            splits,
            config,
            lossy,
            f: Rc::new(f),
        })
    }
}

impl<T, F> Compute<T> for TextFile<F>
where
    T: 'static,
    F: Fn(&str) -> Option<T> + 'static,
{
    fn num_partitions(&self) -> usize {
        self.splits.len()
    }
    fn preferred_hosts(&self, split: usize) -> Vec<String> {
        self.splits[split].hosts.clone()
    }
    fn source_version(&self) -> Result<Option<String>> {
        crate::rdd::source::files_version(&self.url, &self.config).map(Some)
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<T> {
        let mode = if self.lossy {
            Utf8Mode::Lossy
        } else {
            Utf8Mode::Strict
        };
        match LineReader::open(&self.splits[split], &self.config, mode) {
            Ok(reader) => Box::new(Lines {
                reader,
                f: Rc::clone(&self.f),
                tc: Rc::clone(tc),
            }),
            Err(e) => {
                tc.fail(e.into());
                Box::new(std::iter::empty())
            }
        }
    }
}

/// The elements of one split; a read error fails the task and ends the iterator.
struct Lines<F> {
    reader: LineReader,
    f: Rc<F>,
    tc: Rc<TaskContext>,
}

impl<T, F: Fn(&str) -> Option<T>> Iterator for Lines<F> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        loop {
            match self.reader.next_line() {
                Ok(Some(line)) => {
                    if let Some(v) = (self.f)(line) {
                        return Some(v);
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    self.tc.fail(e.into());
                    return None;
                }
            }
        }
    }
}
