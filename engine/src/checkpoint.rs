//! Reliable checkpoints: an RDD marked with `checkpoint()` is written to the checkpoint
//! directory by a second job right after the next action that uses it (as in Spark), and its
//! lineage is then cut: its dependencies become empty and its partitions are read from the files.
//!
//! Checkpoint data is stored under `<dir>/rdd-<fingerprint>/part-NNNNN` with a `_SUCCESS`
//! marker written last. The fingerprint hashes the lineage (each node's id, operation, call site
//! and partition count, and its dependencies, recursively), so an application restarted after
//! a crash that builds the same lineage finds its earlier checkpoints and reads them instead of
//! recomputing. The fingerprint describes the computation, not input data: after changing input
//! files, clear the checkpoint directory.
//!
//! The writer is [`write_partition`]; it takes a local path today and is where object-store
//! URLs plug in.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use crate::data::Data;
use crate::error::{EngineError, Result};
use crate::rdd::{BoxIter, Dependency, Rdd, RddBase, RddNode};
use crate::storage::codec::{BlockIter, BlockWriter, ChunkReader, Codec, Compression, Finished};
use crate::task::TaskContext;

/// Where an RDD stands with respect to checkpointing.
pub(crate) enum CheckpointState<T> {
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
    },
}

/// The per-node checkpoint cell.
pub(crate) type CheckpointCell<T> = RefCell<CheckpointState<T>>;

/// A stable hash of `rdd`'s lineage (see the module docs).
pub(crate) fn fingerprint(rdd: &Rc<dyn RddBase>) -> u64 {
    fn describe(rdd: &Rc<dyn RddBase>, out: &mut String, seen: &mut HashSet<usize>) {
        let site = rdd.call_site();
        out.push_str(&format!(
            "({} {} {}:{}:{} {}",
            rdd.id(),
            rdd.op(),
            site.file(),
            site.line(),
            site.column(),
            rdd.num_partitions()
        ));
        if seen.insert(rdd.id()) {
            for dep in rdd.dependencies() {
                match dep {
                    Dependency::OneToOne(p) => {
                        out.push_str(" one");
                        describe(&p, out, seen);
                    }
                    Dependency::Range {
                        parent,
                        in_start,
                        out_start,
                        len,
                    } => {
                        out.push_str(&format!(" range {in_start} {out_start} {len}"));
                        describe(&parent, out, seen);
                    }
                    Dependency::Groups { parent, groups } => {
                        out.push_str(&format!(" groups {groups:?}"));
                        describe(&parent, out, seen);
                    }
                    Dependency::Shuffle(s) => {
                        out.push_str(&format!(" shuffle {}", s.op()));
                        describe(&s.parent(), out, seen);
                    }
                }
            }
        }
        out.push(')');
    }
    let mut text = String::new();
    describe(rdd, &mut text, &mut HashSet::new());
    twox_hash::XxHash3_64::oneshot(text.as_bytes())
}

/// Checks that `dir` can hold checkpoints: creates it and writes and removes a probe file.
pub(crate) fn check_writable(dir: &Path) -> Result<()> {
    let not_writable = |e: std::io::Error| EngineError::CheckpointDirNotWritable {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(not_writable)?;
    let probe = dir.join(format!(".ember-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe").map_err(not_writable)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn part_path(dir: &Path, split: usize) -> PathBuf {
    dir.join(format!("part-{split:05}"))
}

fn success_path(dir: &Path) -> PathBuf {
    dir.join("_SUCCESS")
}

/// Whether `dir` holds a complete checkpoint.
pub(crate) fn is_complete(dir: &Path) -> bool {
    success_path(dir).exists()
}

/// Writes one partition's elements as a checkpoint file (temporary name, then renamed).
pub fn write_partition<T: Data>(
    dir: &Path,
    split: usize,
    values: impl Iterator<Item = T>,
) -> Result<u64> {
    let tmp = dir.join(format!(".part-{split:05}.tmp-{}", std::process::id()));
    let mut w = BlockWriter::file(Codec::new(Compression::Lz4), &tmp)?;
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
    if let Finished::File { path, .. } = w.finish()? {
        let dest = part_path(dir, split);
        std::fs::rename(&path, &dest).map_err(|e| EngineError::io(&dest, e))?;
    }
    Ok(count)
}

/// Reads one checkpointed partition.
pub(crate) fn read_partition<T: Data>(
    dir: &Path,
    split: usize,
    tc: &Rc<TaskContext>,
) -> BoxIter<T> {
    match ChunkReader::<T>::open(&part_path(dir, split)) {
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
        check_writable(&root)?;
        let dir = root.join(format!("rdd-{:016x}", fingerprint(&self.base())));
        let mut state = self.node.checkpoint.borrow_mut();
        if matches!(*state, CheckpointState::Done { .. }) {
            return Ok(());
        }
        if is_complete(&dir) {
            tracing::info!(rdd = self.id(), dir = %dir.display(), "reusing an earlier checkpoint");
            *state = CheckpointState::Done { dir };
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
        let result = self.run_partitions("checkpoint", move |tc, it| {
            match write_partition(&out, tc.partition, it) {
                Ok(n) => n,
                Err(e) => {
                    tc.fail(e);
                    0
                }
            }
        });
        match result {
            Ok(_) => {
                if self.context().worker_index() == 0 {
                    std::fs::write(success_path(&dir), b"")
                        .map_err(|e| EngineError::io(success_path(&dir), e))?;
                }
                tracing::info!(rdd = self.id(), dir = %dir.display(), "checkpoint written; lineage cut");
                *self.node.checkpoint.borrow_mut() = CheckpointState::Done { dir };
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
    fn visit(rdd: &Rc<dyn RddBase>, seen: &mut HashSet<usize>, out: &mut Vec<Rc<dyn RddBase>>) {
        if !seen.insert(rdd.id()) {
            return;
        }
        for dep in rdd.dependencies() {
            match dep {
                Dependency::Shuffle(s) => visit(&s.parent(), seen, out),
                Dependency::OneToOne(p)
                | Dependency::Range { parent: p, .. }
                | Dependency::Groups { parent: p, .. } => visit(&p, seen, out),
            }
        }
        if rdd.checkpoint_requested() {
            out.push(Rc::clone(rdd));
        }
    }
    let mut marked = Vec::new();
    visit(rdd, &mut HashSet::new(), &mut marked);
    for node in marked {
        node.write_checkpoint()?;
    }
    Ok(())
}
