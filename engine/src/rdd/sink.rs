//! Writing an RDD to a local directory of part files, committed atomically: tasks write under
//! `<dir>/_temporary/`, and only when every task succeeded are the parts moved into place and a
//! `_SUCCESS` marker written. A failed job removes what it wrote.

use std::fmt::Display;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::data::Data;
use crate::error::{EngineError, Result};
use crate::rdd::{Rdd, RddBase};

fn part_name(split: usize) -> String {
    format!("part-{split:05}")
}

impl<T: Data + Display> Rdd<T> {
    /// Writes one line per element (its `Display` form) to `dir/part-NNNNN`, one file per
    /// partition. Fails if `dir` exists; leaves nothing behind if the job fails.
    pub fn save_as_text_file(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref().to_path_buf();
        let ctx = self.context();
        // Every worker checks before anyone writes, and all agree on the verdict.
        let mut check = ctx.round::<bool>("save-check");
        check.send_to_all(dir.exists());
        if check.finish()?.into_iter().any(|exists| exists) {
            return Err(EngineError::OutputExists { path: dir });
        }
        let job_tag = format!("job-{}", self.id());
        let staging = dir.join("_temporary").join(&job_tag);
        let written = self.run_partitions("save_as_text_file", |tc, it| {
            let attempt_dir = staging.join(format!("attempt-{}-{}", tc.partition, tc.attempt));
            match write_part(&attempt_dir, &part_name(tc.partition), it) {
                Ok(path) => Some(path.to_string_lossy().into_owned()),
                Err(e) => {
                    tc.fail(e);
                    None
                }
            }
        });
        let outcome = written.and_then(|files| {
            // Each worker publishes the parts its own tasks wrote (they are on its host).
            for (split, file) in files.into_iter().enumerate() {
                if self.node.task_worker(split) == ctx.worker_index() {
                    let file = PathBuf::from(file.expect("successful tasks report their file"));
                    let target = dir.join(part_name(split));
                    std::fs::rename(&file, &target).map_err(|e| EngineError::io(&target, e))?;
                }
            }
            Ok(())
        });
        // Everyone has published (or failed) before worker 0 marks success or cleans up.
        let mut published = ctx.round::<bool>("save-commit");
        published.send_to_all(outcome.is_ok());
        let all_ok = published.finish()?.into_iter().all(|ok| ok);
        if ctx.worker_index() == 0 {
            if all_ok {
                let _ = std::fs::remove_dir_all(dir.join("_temporary"));
                std::fs::write(dir.join("_SUCCESS"), b"")
                    .map_err(|e| EngineError::io(dir.join("_SUCCESS"), e))?;
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        ctx.round::<()>("save-done").finish()?;
        match outcome {
            Ok(()) if all_ok => Ok(()),
            Ok(()) => Err(EngineError::Io {
                path: dir,
                message: "another worker failed to publish its parts".into(),
            }),
            Err(e) => Err(e),
        }
    }
}

fn write_part<T: Display>(
    attempt_dir: &Path,
    name: &str,
    it: impl Iterator<Item = T>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(attempt_dir).map_err(|e| EngineError::io(attempt_dir, e))?;
    let path = attempt_dir.join(name);
    let file = std::fs::File::create(&path).map_err(|e| EngineError::io(&path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    for x in it {
        writeln!(w, "{x}").map_err(|e| EngineError::io(&path, e))?;
    }
    w.flush().map_err(|e| EngineError::io(&path, e))?;
    Ok(path)
}
