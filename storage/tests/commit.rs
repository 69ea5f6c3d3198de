//! The job committer on local files and memory://: save modes, aborts, retried attempts, and what
//! readers see while a job is unfinished.

use ember_storage::{
    list_inputs, text_splits, JobCommitter, LineReader, Location, SaveMode, StorageConfig,
    StorageError, TaskCommit, Utf8Mode,
};

fn write_job(
    dest: &str,
    job: &str,
    mode: SaveMode,
    parts: &[&[&str]],
    cfg: &StorageConfig,
) -> JobCommitter {
    let c = JobCommitter::new(dest, job, mode, cfg).unwrap();
    c.setup_job().unwrap();
    let commits: Vec<TaskCommit> = parts
        .iter()
        .enumerate()
        .map(|(p, lines)| {
            let mut t = c.task(p, 0);
            let mut w = t.text_writer().unwrap();
            for l in *lines {
                w.write_line(l).unwrap();
            }
            w.finish().unwrap();
            t.commit()
        })
        .collect();
    c.commit_job(&commits).unwrap();
    c
}

fn read_all(url: &str, cfg: &StorageConfig) -> Result<Vec<String>, StorageError> {
    let mut out = Vec::new();
    for s in text_splits(url, 1, cfg)? {
        for l in LineReader::open(&s, cfg, Utf8Mode::Strict)? {
            out.push(l?);
        }
    }
    out.sort();
    Ok(out)
}

fn modes_on(dest: &str) {
    let cfg = StorageConfig::new();
    write_job(
        dest,
        "job1",
        SaveMode::ErrorIfExists,
        &[&["a", "b"], &["c"]],
        &cfg,
    );
    assert_eq!(read_all(dest, &cfg).unwrap(), vec!["a", "b", "c"]);
    // Error-if-exists refuses a second write, before any task runs.
    let again = JobCommitter::new(dest, "job2", SaveMode::ErrorIfExists, &cfg).unwrap();
    assert!(matches!(
        again.setup_job(),
        Err(StorageError::AlreadyExists { .. })
    ));
    // Append adds files; the manifest lists old and new.
    write_job(dest, "job3", SaveMode::Append, &[&["d"]], &cfg);
    assert_eq!(read_all(dest, &cfg).unwrap(), vec!["a", "b", "c", "d"]);
    // Overwrite replaces everything at commit.
    write_job(dest, "job4", SaveMode::Overwrite, &[&["x"], &["y"]], &cfg);
    assert_eq!(read_all(dest, &cfg).unwrap(), vec!["x", "y"]);
    let files = list_inputs(dest, &cfg).unwrap();
    assert!(
        files
            .iter()
            .all(|f| f.location.file_name().contains("job4")),
        "{files:?}"
    );
    // Nothing left in staging.
    let dest_loc = Location::resolve(dest, &cfg).unwrap();
    assert!(dest_loc
        .child("_temporary")
        .list_recursive()
        .unwrap()
        .is_empty());
}

#[test]
fn save_modes_on_local_files() {
    let dir = tempfile::tempdir().unwrap();
    modes_on(dir.path().join("out").to_str().unwrap());
}

#[test]
fn save_modes_on_memory_store() {
    modes_on("memory://commit-test/out");
}

#[test]
fn aborted_and_failed_jobs_leave_nothing_visible() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest = dest.to_str().unwrap();
    let cfg = StorageConfig::new();
    // A job whose tasks wrote parts but which never committed: readers refuse the directory.
    let c = JobCommitter::new(dest, "crashed", SaveMode::ErrorIfExists, &cfg).unwrap();
    c.setup_job().unwrap();
    let mut t = c.task(0, 0);
    let mut w = t.text_writer().unwrap();
    w.write_line("partial").unwrap();
    w.finish().unwrap();
    let _ = t.commit();
    assert!(matches!(
        read_all(dest, &cfg),
        Err(StorageError::IncompleteOutput { .. })
    ));
    // Abort removes it all.
    c.abort_job().unwrap();
    assert!(matches!(
        read_all(dest, &cfg),
        Err(StorageError::NoInputs { .. })
    ));
    assert!(!dir.path().join("out/_temporary").exists());

    // With a previous committed output, an unfinished overwrite is invisible: readers follow the
    // old manifest; after abort the old output is intact.
    write_job(
        dest,
        "good",
        SaveMode::ErrorIfExists,
        &[&["old1", "old2"]],
        &cfg,
    );
    let c = JobCommitter::new(dest, "failing", SaveMode::Overwrite, &cfg).unwrap();
    let mut t = c.task(0, 0);
    let mut w = t.text_writer().unwrap();
    w.write_line("new").unwrap();
    w.finish().unwrap();
    let tc = t.commit();
    // Simulate a commit that published a part and then died before writing _SUCCESS.
    let staged = c.staging().child(&format!("0-0/{}", tc.files[0]));
    staged
        .rename_to(&c.destination().child(&tc.files[0]))
        .unwrap();
    assert_eq!(read_all(dest, &cfg).unwrap(), vec!["old1", "old2"]);
    c.abort_job().unwrap();
    assert_eq!(read_all(dest, &cfg).unwrap(), vec!["old1", "old2"]);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("failing")), "{names:?}");
}

#[test]
fn only_the_committed_attempt_of_a_retried_task_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest = dest.to_str().unwrap();
    let cfg = StorageConfig::new();
    let c = JobCommitter::new(dest, "retry", SaveMode::ErrorIfExists, &cfg).unwrap();
    c.setup_job().unwrap();
    // Attempt 0 fails half-way (its writer is dropped without finishing).
    let mut a0 = c.task(0, 0);
    let mut w = a0.text_writer().unwrap();
    w.write_line("from failed attempt").unwrap();
    drop(w);
    a0.abort().unwrap();
    // Attempt 1 succeeds; a speculative attempt 2 also finishes but is not chosen.
    let mut a1 = c.task(0, 1);
    let mut w = a1.text_writer().unwrap();
    w.write_line("from attempt 1").unwrap();
    w.finish().unwrap();
    let mut a2 = c.task(0, 2);
    let mut w = a2.text_writer().unwrap();
    w.write_line("from attempt 2").unwrap();
    w.finish().unwrap();
    let _unused = a2.commit();
    let manifest = c.commit_job(&[a1.commit()]).unwrap();
    assert_eq!(manifest.files.len(), 1);
    assert_eq!(read_all(dest, &cfg).unwrap(), vec!["from attempt 1"]);
    assert!(!dir.path().join("out/_temporary").exists());
    // Duplicate partitions are refused.
    let c = JobCommitter::new(dest, "dup", SaveMode::Append, &cfg).unwrap();
    let t0 = c.task(0, 0).commit();
    let t1 = c.task(0, 1).commit();
    assert!(matches!(
        c.commit_job(&[t0, t1]),
        Err(StorageError::Commit { .. })
    ));
}

#[test]
fn invalid_job_ids_and_save_mode_names() {
    let cfg = StorageConfig::new();
    assert!(matches!(
        JobCommitter::new("/tmp/x", "a/b", SaveMode::Append, &cfg),
        Err(StorageError::Commit { .. })
    ));
    assert_eq!(
        "overwrite".parse::<SaveMode>().unwrap(),
        SaveMode::Overwrite
    );
    assert_eq!(
        "error-if-exists".parse::<SaveMode>().unwrap(),
        SaveMode::ErrorIfExists
    );
    assert!("sometimes".parse::<SaveMode>().is_err());
    assert_ne!(JobCommitter::new_job_id(), JobCommitter::new_job_id());
}
