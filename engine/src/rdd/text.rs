//! Text sources over any storage URL (bare paths, `file://`, `s3://`, `memory://`, `hdfs://`...):
//! the storage layer cuts files into byte-range splits at line ends, exactly as Hadoop's
//! `TextInputFormat` does (a split skips its partial first line and finishes the line that starts
//! inside it), and reads compressed files (gzip, lz4) whole.

use std::rc::Rc;

use ember_storage::{text_splits, LineReader, Split, StorageConfig, Utf8Mode};

use crate::error::Result;
use crate::rdd::{BoxIter, Compute};
use crate::task::TaskContext;

/// A text source: one partition per split.
pub(crate) struct TextFile {
    splits: Vec<Split>,
    config: StorageConfig,
    lossy: bool,
}

impl TextFile {
    pub(crate) fn open(
        url: &str,
        min_partitions: usize,
        lossy: bool,
        config: StorageConfig,
    ) -> Result<TextFile> {
        let splits = text_splits(url, min_partitions, &config)?;
        Ok(TextFile {
            splits,
            config,
            lossy,
        })
    }
}

impl Compute<String> for TextFile {
    fn num_partitions(&self) -> usize {
        self.splits.len()
    }
    fn preferred_hosts(&self, split: usize) -> Vec<String> {
        self.splits[split].hosts.clone()
    }
    fn compute(&self, split: usize, tc: &Rc<TaskContext>) -> BoxIter<String> {
        let mode = if self.lossy {
            Utf8Mode::Lossy
        } else {
            Utf8Mode::Strict
        };
        match LineReader::open(&self.splits[split], &self.config, mode) {
            Ok(reader) => Box::new(Lines {
                reader,
                tc: Rc::clone(tc),
            }),
            Err(e) => {
                tc.fail(e.into());
                Box::new(std::iter::empty())
            }
        }
    }
}

/// Lines of one split; a read error fails the task and ends the iterator.
struct Lines {
    reader: LineReader,
    tc: Rc<TaskContext>,
}

impl Iterator for Lines {
    type Item = String;
    fn next(&mut self) -> Option<String> {
        match self.reader.next()? {
            Ok(line) => Some(line),
            Err(e) => {
                self.tc.fail(e.into());
                None
            }
        }
    }
}
