//! Input splits: text files cut into byte ranges, planned the way Hadoop's `FileInputFormat` does.

use serde::{Deserialize, Serialize};

use crate::compression::Codec;
use crate::config::StorageConfig;
use crate::error::Result;
use crate::listing::list_inputs;
use crate::ops::ObjectInfo;

/// Hadoop's slop: the last split of a file may be up to 10% larger than the split size.
const SPLIT_SLOP: f64 = 1.1;

/// A byte range of one file, the unit of a text partition.
///
/// Line semantics are Hadoop's `TextInputFormat`: a split whose `start` is not 0 skips everything up
/// to and including the first line end at or after `start`, and a split reads every line that
/// *starts* at or before `end` (so it finishes the line it is in at `end`). Together the splits of a
/// file yield every line exactly once. Compressed files have one split covering the whole file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Split {
    /// The file's URL.
    pub url: String,
    /// First byte of the range.
    pub start: u64,
    /// End of the range (exclusive).
    pub end: u64,
    /// The file's total length.
    pub len: u64,
    /// Hosts holding the range, for locality-aware scheduling (empty when the store does not say).
    pub hosts: Vec<String>,
}

impl Split {
    /// The whole of a file.
    pub fn whole(url: impl Into<String>, len: u64) -> Split {
        Split {
            url: url.into(),
            start: 0,
            end: len,
            len,
            hosts: Vec::new(),
        }
    }

    /// Length of the range.
    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    /// The file's codec.
    pub fn codec(&self) -> Result<Codec> {
        Codec::for_url(&self.url)
    }
}

/// Cuts files into splits: `goal = total / min_partitions`, split size
/// `max(1, min(goal, ember.storage.maxSplitBytes))`. Empty files yield no split; compressed files
/// yield one whole-file split each.
pub fn plan_splits(
    files: &[ObjectInfo],
    min_partitions: usize,
    config: &StorageConfig,
) -> Result<Vec<Split>> {
    let max_split = config.max_split_bytes()?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let goal = total / (min_partitions.max(1) as u64);
    let split_size = goal.min(max_split).max(1);
    let mut out = Vec::new();
    for f in files {
        if f.size == 0 {
            continue;
        }
        let url = f.url().to_string();
        if !Codec::for_url(&url)?.splittable() {
            out.push(Split::whole(url, f.size));
            continue;
        }
        let mut start = 0u64;
        let mut remaining = f.size;
        while remaining as f64 / split_size as f64 > SPLIT_SLOP {
            out.push(Split {
                url: url.clone(),
                start,
                end: start + split_size,
                len: f.size,
                hosts: Vec::new(),
            });
            start += split_size;
            remaining -= split_size;
        }
        if remaining > 0 {
            out.push(Split {
                url: url.clone(),
                start,
                end: f.size,
                len: f.size,
                hosts: Vec::new(),
            });
        }
    }
    Ok(out)
}

/// Lists `urls` (files, directories, globs, comma-separated) and plans their splits.
pub fn text_splits(
    urls: &str,
    min_partitions: usize,
    config: &StorageConfig,
) -> Result<Vec<Split>> {
    let files = list_inputs(urls, config)?;
    plan_splits(&files, min_partitions, config)
}
