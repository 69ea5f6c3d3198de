//! Checkpoints: written by a second job after the next action, lineage cut afterwards, reused by
//! a restarted application with the same lineage, and a non-writable directory is an error
//! naming it at `checkpoint()` time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ember_engine::prelude::*;

fn conf() -> Conf {
    Conf::new().with("ember.master", "local[2]").unwrap()
}

/// One application run: a shuffled RDD checkpointed, two actions. Returns the answers, how
/// many times the map closure ran, the lineage before and after, and whether it was reused.
fn app(
    dir: std::path::PathBuf,
    computed: Arc<AtomicUsize>,
) -> (Vec<(i64, i64)>, u64, String, String, bool) {
    ember_engine::run(conf(), move |ctx| {
        ctx.set_checkpoint_dir(&dir).unwrap();
        let c = Arc::clone(&computed);
        let sums = ctx
            .range(0, 1000, 1, 4)
            .unwrap()
            .map(move |x| {
                c.fetch_add(1, Ordering::SeqCst);
                (x % 7, x)
            })
            .reduce_by_key(|a, b| a + b)
            .map_values(|v| v * 2);
        let before = sums.lineage();
        sums.checkpoint().unwrap();
        let reused = sums.is_checkpointed();
        let mut first = sums.collect().unwrap();
        first.sort();
        assert!(sums.is_checkpointed());
        let count = sums.count().unwrap();
        assert_eq!(count as usize, first.len());
        (first, count, before, sums.lineage(), reused)
    })
    .unwrap()
}

#[test]
fn checkpoint_cuts_lineage_and_is_reused_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut want: Vec<(i64, i64)> = (0..7).map(|k| (k, 0)).collect();
    for x in 0..1000i64 {
        want[(x % 7) as usize].1 += 2 * x;
    }

    let computed = Arc::new(AtomicUsize::new(0));
    let (first, count, before, after, reused) =
        app(dir.path().to_path_buf(), Arc::clone(&computed));
    assert_eq!(first, want);
    assert_eq!(count, 7);
    assert!(!reused);
    assert!(before.contains("+-"), "a shuffle before:\n{before}");
    assert_eq!(after.lines().count(), 1, "lineage cut:\n{after}");
    // The map runs in the shuffle map stage of the first action only: the checkpoint job reads
    // the completed shuffle's output, and later jobs read the checkpoint.
    assert_eq!(computed.load(Ordering::SeqCst), 1000);
    let written: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(written.len(), 1, "one RDD directory");
    let rdd_dir = written[0].path();
    assert!(rdd_dir.join("_SUCCESS").exists());
    assert!(rdd_dir.join("part-00003").exists());

    // A restarted application with the same lineage reads the checkpoint instead.
    let again = Arc::new(AtomicUsize::new(0));
    let (first, _, _, after, reused) = app(dir.path().to_path_buf(), Arc::clone(&again));
    assert!(reused, "found the earlier checkpoint");
    assert_eq!(first, want);
    assert_eq!(again.load(Ordering::SeqCst), 0, "nothing recomputed");
    assert_eq!(after.lines().count(), 1);
}

#[test]
fn checkpoints_at_a_storage_url_are_written_and_reused() {
    let url = std::path::PathBuf::from("memory://checkpoint-test/app");
    let mut want: Vec<(i64, i64)> = (0..7).map(|k| (k, 0)).collect();
    for x in 0..1000i64 {
        want[(x % 7) as usize].1 += 2 * x;
    }
    let computed = Arc::new(AtomicUsize::new(0));
    let (first, _, _, after, reused) = app(url.clone(), Arc::clone(&computed));
    assert_eq!(first, want);
    assert!(!reused);
    assert_eq!(after.lines().count(), 1, "lineage cut:\n{after}");
    let config = ember_storage::StorageConfig::new();
    let objects: Vec<String> =
        ember_storage::Location::resolve("memory://checkpoint-test/app", &config)
            .unwrap()
            .list_recursive()
            .unwrap()
            .iter()
            .map(|o| o.url().to_string())
            .collect();
    assert!(
        objects.iter().any(|o| o.ends_with("/_SUCCESS")),
        "{objects:?}"
    );
    assert_eq!(
        objects.iter().filter(|o| o.contains("/part-")).count(),
        4,
        "one object per partition: {objects:?}"
    );

    let again = Arc::new(AtomicUsize::new(0));
    let (first, _, _, _, reused) = app(url, Arc::clone(&again));
    assert!(reused, "found the earlier checkpoint at the URL");
    assert_eq!(first, want);
    assert_eq!(again.load(Ordering::SeqCst), 0, "nothing recomputed");
}

#[test]
fn unwritable_checkpoint_dir_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let bad = file.join("checkpoints");
    let b = bad.clone();
    let (set_err, ckpt_err) = ember_engine::run(conf(), move |ctx| {
        let set_err = ctx.set_checkpoint_dir(&b).unwrap_err();
        let r = ctx.range(0, 10, 1, 2).unwrap();
        let no_dir = r.checkpoint().unwrap_err();
        assert!(
            matches!(no_dir, EngineError::InvalidArgument { .. }),
            "{no_dir}"
        );
        (set_err, no_dir)
    })
    .unwrap();
    match &set_err {
        EngineError::CheckpointDirNotWritable { path, .. } => assert_eq!(path, &bad),
        other => panic!("unexpected {other}"),
    }
    assert!(set_err.to_string().contains(&bad.display().to_string()));
    assert!(ckpt_err.to_string().contains("set_checkpoint_dir"));

    // A directory that becomes unwritable after being set fails at checkpoint() time.
    let dir2 = tempfile::tempdir().unwrap();
    let target = dir2.path().join("ckpt");
    let t = target.clone();
    let one = Conf::new().with("ember.master", "local[1]").unwrap();
    let err = ember_engine::run(one, move |ctx| {
        ctx.set_checkpoint_dir(&t).unwrap();
        std::fs::remove_dir_all(&t).unwrap_or(());
        std::fs::write(&t, b"now a file").unwrap_or(());
        ctx.range(0, 10, 1, 2).unwrap().checkpoint().unwrap_err()
    })
    .unwrap();
    assert!(
        matches!(&err, EngineError::CheckpointDirNotWritable { path, .. } if path == &target),
        "{err}"
    );
}

#[test]
fn persisted_checkpoint_is_computed_once() {
    let dir = tempfile::tempdir().unwrap();
    let computed = Arc::new(AtomicUsize::new(0));
    let c2 = Arc::clone(&computed);
    let d = dir.path().to_path_buf();
    let total = ember_engine::run(conf(), move |ctx| {
        ctx.set_checkpoint_dir(&d).unwrap();
        let c = Arc::clone(&c2);
        let r = ctx
            .range(0, 100, 1, 4)
            .unwrap()
            .map(move |x| {
                c.fetch_add(1, Ordering::SeqCst);
                x * 3
            })
            .persist(StorageLevel::MemoryAndDiskSer);
        r.checkpoint().unwrap();
        let a = r.reduce(|a, b| a + b).unwrap();
        let b = r.reduce(|a, b| a + b).unwrap();
        assert_eq!(a, b);
        assert!(r.is_checkpointed());
        a
    })
    .unwrap();
    assert_eq!(total, Some(3 * 4950));
    assert_eq!(
        computed.load(Ordering::SeqCst),
        100,
        "the checkpoint job read the cache"
    );
}
