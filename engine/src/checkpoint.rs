//! Reliable checkpoints: an RDD marked with `checkpoint()` is written to the checkpoint
//! directory by a second job right after the next action that uses it (as in Spark), and its
//! lineage is then cut: its dependencies become empty and its partitions are read from the files.
//!
//! Checkpoint data is stored under `<dir>/rdd-<fingerprint>/part-NNNNN` with a `_SUCCESS`
//! marker written last. The fingerprint hashes the lineage (each node's id, operation, call site
//! and partition count, and its dependencies, recursively) and what each source reads: its input
//! files' URLs, sizes and versions (modification time, ETag), the hash of parallelized data, a
//! range's bounds, a reader's options. An application restarted after a crash that builds the
//! same lineage over the same data finds its earlier checkpoints and reads them instead of
//! recomputing; a run over changed input data computes anew.
//!
//! What the fingerprint cannot see are the values a closure captures (`map(move |x| x * k)`
//! with another `k`): a program whose closures depend on arguments should give each run its own
//! checkpoint directory.
//!
//! The directory is a local path (files are streamed to disk, then renamed) or any storage URL
//! (`s3://`, `memory://`, `hdfs://`...: each partition is encoded and written in one PUT, and the
//! `_SUCCESS` marker last).

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use ember_storage::{Location, StorageConfig};

use crate::blocks::codec::{BlockIter, BlockWriter, ChunkReader, Codec, Compression, Finished};
use crate::data::Data;
use crate::error::{EngineError, Result};
use crate::rdd::{BoxIter, Dependency, Rdd, RddBase, RddNode};
use crate::task::TaskContext;

/// Where an RDD stands with respect to checkpointing.
pub(crate) enum CheckpointState<T: 'static> {
    /// Not marked.
    None,
    /// Marked; written after the next action.
    Requested {
        /// The RDD's directory under the checkpoint dir.
        dir: PathBuf,
        /// The node itself, to run the writing job.
        node: Weak<RddNode<T>>,
    },
    /// The writing job is running.
    Writing,
    /// Written: partitions are read from `dir`.
    Done {
        /// The RDD's checkpoint directory.
        dir: PathBuf,
        /// The worker that wrote each partition (empty when an earlier run wrote them).
        writers: Vec<usize>,
    },
}

/// The per-node checkpoint cell.
pub(crate) type CheckpointCell<T> = RefCell<CheckpointState<T>>;

/// A stable hash of `rdd`'s lineage and sources (see the module docs); fails when a source's
/// inputs cannot be listed.
pub(crate) fn fingerprint(rdd: &Rc<dyn RddBase>) -> Result<u64> {
    // The text a recursive description would write, built with an explicit stack (lineages can
    // be thousands of steps deep): `(id op site partitions` then, the first time a node is
    // met, each dependency's label and description, then `)`.
    enum Step {
        Node(Rc<dyn RddBase>),
        Text(String),
    }
    let mut text = String::new();
    let mut seen = HashSet::new();
    let mut stack = vec![Step::Node(Rc::clone(rdd))];
    while let Some(step) = stack.pop() {
        let rdd = match step {
            Step::Text(t) => {
                text.push_str(&t);
                continue;
            }
            Step::Node(rdd) => rdd,
        };
        let site = rdd.call_site();
        text.push_str(&format!(
            "({} {} {}:{}:{} {}",
            rdd.id(),
            rdd.op(),
            site.file(),
            site.line(),
            site.column(),
            rdd.num_partitions()
        ));
        if let Some(version) = rdd.source_version()? {
            text.push_str(&format!(" [{version}]"));
        }
        stack.push(Step::Text(")".into()));
        if seen.insert(rdd.id()) {
            let mut next = Vec::new();
            for dep in rdd.dependencies() {
                let (label, parent) = match dep {
                    Dependency::OneToOne(p) => (" one".to_string(), p),
                    Dependency::Range {
                        parent,
                        in_start,
                        out_start,
                        len,
                    } => (format!(" range {in_start} {out_start} {len}"), parent),
                    Dependency::Groups { parent, groups } => {
                        (format!(" groups {groups:?}"), parent)
                    }
                    Dependency::Shuffle(s) => (format!(" shuffle {}", s.op()), s.parent()),
                };
                next.push(Step::Text(label));
                next.push(Step::Node(parent));
            }
            stack.extend(next.into_iter().rev());
        }
    }
    Ok(twox_hash::XxHash3_64::oneshot(text.as_bytes()))
}

/// Where checkpoint files live: a local directory, or an object-store URL.
enum Place {
    Local(PathBuf),
    Remote(String),
}

fn place(dir: &Path) -> Place {
    let text = dir.to_string_lossy();
    match text.strip_prefix("file://") {
        Some(local) => Place::Local(PathBuf::from(local)),
        None if text.contains("://") => Place::Remote(text.into_owned()),
        None => Place::Local(dir.to_path_buf()),
    }
}

/// Whether a checkpoint directory is a local path (not an object-store URL).
pub(crate) fn is_local(dir: &Path) -> bool {
    matches!(place(dir), Place::Local(_))
}

fn remote(url: &str, config: &StorageConfig) -> Result<Location> {
    Ok(Location::resolve(url, config)?)
}

/// Checks that `dir` can hold checkpoints: creates it and writes and removes a probe file.
pub(crate) fn check_writable(dir: &Path, config: &StorageConfig) -> Result<()> {
    let not_writable = |message: String| EngineError::CheckpointDirNotWritable {
        path: dir.to_path_buf(),
        message,
    };
    let probe_name = format!(".ember-probe-{}", std::process::id());
    match place(dir) {
        Place::Local(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| not_writable(e.to_string()))?;
            let probe = dir.join(probe_name);
            std::fs::write(&probe, b"probe").map_err(|e| not_writable(e.to_string()))?;
            let _ = std::fs::remove_file(&probe);
        }
        Place::Remote(url) => {
            let probe = Location::resolve(&format!("{url}/{probe_name}"), config)
                .map_err(|e| not_writable(e.to_string()))?;
            probe
                .put(b"probe".to_vec())
                .map_err(|e| not_writable(e.to_string()))?;
            let _ = probe.delete();
        }
    }
    Ok(())
}

fn part_name(split: usize) -> String {
    format!("part-{split:05}")
}

/// Whether `dir` holds a complete checkpoint.
pub(crate) fn is_complete(dir: &Path, config: &StorageConfig) -> bool {
    match place(dir) {
        Place::Local(dir) => dir.join("_SUCCESS").exists(),
        Place::Remote(url) => remote(&format!("{url}/_SUCCESS"), config)
            .and_then(|l| Ok(l.exists()?))
            .unwrap_or(false),
    }
}

/// Marks `dir` complete: written last, after every partition.
fn write_success(dir: &Path, config: &StorageConfig) -> Result<()> {
    match place(dir) {
        Place::Local(dir) => {
            let path = dir.join("_SUCCESS");
            std::fs::write(&path, b"").map_err(|e| EngineError::io(&path, e))
        }
        Place::Remote(url) => Ok(remote(&format!("{url}/_SUCCESS"), config)?.put(Vec::new())?),
    }
}

/// Writes one partition's elements as a checkpoint file: streamed to a temporary local file and
/// renamed, or encoded and written to an object store in one PUT.
pub fn write_partition<T: Data>(
    dir: &Path,
    split: usize,
    values: impl Iterator<Item = T>,
    config: &StorageConfig,
) -> Result<u64> {
    let target = place(dir);
    let mut w = match &target {
        Place::Local(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
            let tmp = dir.join(format!(".part-{split:05}.tmp-{}", std::process::id()));
            BlockWriter::file(Codec::new(Compression::Lz4), &tmp)?
        }
        Place::Remote(_) => BlockWriter::memory(Codec::new(Compression::Lz4)),
    };
    let mut chunk = Vec::with_capacity(1024);
    let mut count = 0u64;
    for v in values {
        chunk.push(v);
        if chunk.len() == 1024 {
            w.write_chunk(&chunk)?;
            count += chunk.len() as u64;
            chunk.clear();
        }
    }
    w.write_chunk(&chunk)?;
    count += chunk.len() as u64;
    match (target, w.finish()?) {
        (Place::Local(dir), Finished::File { path, .. }) => {
            let dest = dir.join(part_name(split));
            std::fs::rename(&path, &dest).map_err(|e| EngineError::io(&dest, e))?;
        }
        (Place::Remote(url), Finished::Memory(bytes)) => {
            remote(&format!("{url}/{}", part_name(split)), config)?.put(bytes)?;
        }
        _ => unreachable!("the writer's sink matches the place"),
    }
    Ok(count)
}

/// Reads one checkpointed partition.
pub(crate) fn read_partition<T: Data>(
    dir: &Path,
    split: usize,
    tc: &Rc<TaskContext>,
    config: &StorageConfig,
) -> BoxIter<T> {
    let reader = match place(dir) {
        Place::Local(dir) => ChunkReader::<T>::open(&dir.join(part_name(split))),
        Place::Remote(url) => {
            let url = format!("{url}/{}", part_name(split));
            remote(&url, config)
                .and_then(|l| Ok(l.read_all()?))
                .and_then(|bytes| ChunkReader::memory(Arc::new(bytes.to_vec()), url))
        }
    };
    match reader {
        Ok(r) => {
            let tc = Rc::clone(tc);
            Box::new(BlockIter::new(r, Box::new(move |e| tc.fail(e))))
        }
        Err(e) => {
            tc.fail(e);
            Box::new(std::iter::empty())
        }
    }
}

impl<T: Data> Rdd<T> {
    /// Marks this RDD for checkpointing: after the next action that computes it, a second job
    /// writes its partitions under the checkpoint directory (`Context::set_checkpoint_dir` or
    /// `ember.checkpoint.dir`) and its lineage is cut. If a complete checkpoint of the same
    /// lineage already exists there (an earlier run of the application), it is used at once.
    ///
    /// Persist the RDD first when it is expensive to compute, or it is computed twice.
    /// Fails when no checkpoint directory is set, or when it is not writable (naming it).
    pub fn checkpoint(&self) -> Result<()> {
        let root = self
            .context()
            .checkpoint_dir()
            .ok_or_else(|| EngineError::InvalidArgument {
                operation: "checkpoint".into(),
                reason: "no checkpoint directory: call Context::set_checkpoint_dir or set ember.checkpoint.dir".into(),
            })?;
        let config = self.context().conf().storage_config();
        check_writable(&root, &config)?;
        let dir = root.join(format!("rdd-{:016x}", fingerprint(&self.base())?));
        let mut state = self.node.checkpoint.borrow_mut();
        if matches!(*state, CheckpointState::Done { .. }) {
            return Ok(());
        }
        if is_complete(&dir, &config) {
            tracing::info!(rdd = self.id(), dir = %dir.display(), "reusing an earlier checkpoint");
            *state = CheckpointState::Done {
                dir,
                writers: Vec::new(),
            };
        } else {
            *state = CheckpointState::Requested {
                dir,
                node: Rc::downgrade(&self.node),
            };
        }
        Ok(())
    }

    /// Whether this RDD's partitions are read from a checkpoint (its lineage is cut).
    pub fn is_checkpointed(&self) -> bool {
        matches!(*self.node.checkpoint.borrow(), CheckpointState::Done { .. })
    }

    /// Writes the checkpoint if one was requested (the job after an action).
    pub(crate) fn write_checkpoint(&self) -> Result<()> {
        let dir = match std::mem::replace(
            &mut *self.node.checkpoint.borrow_mut(),
            CheckpointState::Writing,
        ) {
            CheckpointState::Requested { dir, .. } => dir,
            other => {
                *self.node.checkpoint.borrow_mut() = other;
                return Ok(());
            }
        };
        let out = dir.clone();
        let config = self.context().conf().storage_config();
        let task_config = config.clone();
        let result = self.run_partitions("checkpoint", move |tc, it| {
            match write_partition(&out, tc.partition, it, &task_config) {
                Ok(n) => (n, tc.worker),
                Err(e) => {
                    tc.fail(e);
                    (0, tc.worker)
                }
            }
        });
        match result {
            Ok(written) => {
                let writers = written.iter().map(|&(_, w)| w).collect();
                if self.context().worker_index() == 0 {
                    write_success(&dir, &config)?;
                }
                tracing::info!(rdd = self.id(), dir = %dir.display(), "checkpoint written; lineage cut");
                *self.node.checkpoint.borrow_mut() = CheckpointState::Done { dir, writers };
                Ok(())
            }
            Err(e) => {
                *self.node.checkpoint.borrow_mut() = CheckpointState::Requested {
                    dir,
                    node: Rc::downgrade(&self.node),
                };
                Err(e)
            }
        }
    }
}

/// After a job on `rdd`: writes the checkpoints requested in its lineage, ancestors first.
pub(crate) fn after_job(rdd: &Rc<dyn RddBase>) -> Result<()> {
    // A post-order walk with an explicit stack (lineages can be thousands of steps deep).
    let mut marked = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(Rc::clone(rdd), false)];
    while let Some((rdd, expanded)) = stack.pop() {
        if expanded {
            if rdd.checkpoint_requested() {
                marked.push(rdd);
            }
            continue;
        }
        if !seen.insert(rdd.id()) {
            continue;
        }
        let parents: Vec<Rc<dyn RddBase>> = rdd
            .dependencies()
            .into_iter()
            .map(|dep| match dep {
                Dependency::Shuffle(s) => s.parent(),
                Dependency::OneToOne(p)
                | Dependency::Range { parent: p, .. }
                | Dependency::Groups { parent: p, .. } => p,
            })
            .collect();
        stack.push((rdd, true));
        stack.extend(parents.into_iter().rev().map(|p| (p, false)));
    }
    for node in marked {
        node.write_checkpoint()?;
    }
    Ok(())
}
