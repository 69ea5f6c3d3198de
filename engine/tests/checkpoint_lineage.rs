//! Checkpoints: written by a second job after the next action, lineage cut afterwards, reused by
//! a restarted application with the same lineage over the same data (and not over changed input
//! files, parallelized data or range bounds), and a non-writable directory is an error naming it
//! at `checkpoint()` time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ember_engine::prelude::*;
use ember_engine::{Batch, CsvOptions};

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

/// Which source [`sourced_run`] reads.
#[derive(Clone)]
enum Source {
    Text(std::path::PathBuf),
    Csv(std::path::PathBuf),
    Data(Vec<i64>),
    Range(i64),
}

/// One application run over `source`: its numbers summed by key after a shuffle, checkpointed
/// in `dir`. Returns the sums and whether an earlier checkpoint was reused. Every run builds
/// the same lineage from the same call sites, as a restarted program does.
fn sourced_run(dir: std::path::PathBuf, source: Source) -> (Vec<(i64, i64)>, bool) {
    ember_engine::run(conf(), move |ctx| {
        ctx.set_checkpoint_dir(&dir).unwrap();
        let numbers: Rdd<i64> = match &source {
            Source::Text(p) => ctx
                .text_file(p, 2)
                .unwrap()
                .map(|l: String| l.trim().parse::<i64>().unwrap()),
            Source::Csv(p) => ctx
                .csv(&p.to_string_lossy(), CsvOptions::default())
                .unwrap()
                .flat_map(|b: Batch| {
                    let col = b.0.column(0).clone();
                    let ints = col
                        .as_any()
                        .downcast_ref::<ember_storage::arrow_array::Int64Array>()
                        .expect("an Int64 column")
                        .clone();
                    ints.values().to_vec()
                }),
            Source::Data(v) => ctx.parallelize(v.clone(), 3).unwrap(),
            Source::Range(n) => ctx.range(0, *n, 1, 3).unwrap(),
        };
        let sums = numbers.map(|x| (x % 3, x)).reduce_by_key(|a, b| a + b);
        sums.checkpoint().unwrap();
        let reused = sums.is_checkpointed();
        let mut out = sums.collect().unwrap();
        out.sort();
        (out, reused)
    })
    .unwrap()
}

fn sums_of(values: &[i64]) -> Vec<(i64, i64)> {
    let mut m = std::collections::BTreeMap::new();
    for &x in values {
        *m.entry(x % 3).or_insert(0) += x;
    }
    m.into_iter().collect()
}

fn write_numbers(path: &std::path::Path, header: bool, values: &[i64]) {
    let mut text = if header {
        "n\n".to_string()
    } else {
        String::new()
    };
    for v in values {
        text.push_str(&format!("{v}\n"));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn checkpoint_is_not_reused_over_changed_input_files() {
    for csv in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let input = tempfile::tempdir().unwrap();
        let file = input.path().join(if csv { "n.csv" } else { "n.txt" });
        let source = |p: &std::path::Path| {
            if csv {
                Source::Csv(p.to_path_buf())
            } else {
                Source::Text(p.to_path_buf())
            }
        };
        let first: Vec<i64> = (100..200).collect();
        write_numbers(&file, csv, &first);
        let (a, reused) = sourced_run(dir.path().into(), source(input.path()));
        assert_eq!(a, sums_of(&first));
        assert!(!reused);
        // The same program over the same files reuses the checkpoint.
        let (b, reused) = sourced_run(dir.path().into(), source(input.path()));
        assert!(reused, "same input: reused");
        assert_eq!(b, a);

        // The same file rewritten with other numbers of the same total length.
        let second: Vec<i64> = (100..200)
            .map(|x| if x < 150 { x + 50 } else { x })
            .collect();
        assert_ne!(sums_of(&second), sums_of(&first));
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_numbers(&file, csv, &second);
        let (c, reused) = sourced_run(dir.path().into(), source(input.path()));
        assert!(
            !reused,
            "csv={csv}: a rewritten input must not reuse the old checkpoint"
        );
        assert_eq!(c, sums_of(&second), "csv={csv}");

        // A file added to the input directory.
        let extra = input.path().join(if csv { "m.csv" } else { "m.txt" });
        write_numbers(&extra, csv, &[1000, 1001]);
        let (d, reused) = sourced_run(dir.path().into(), source(input.path()));
        assert!(
            !reused,
            "csv={csv}: an added file must not reuse the old checkpoint"
        );
        let mut all = second.clone();
        all.extend([1000, 1001]);
        assert_eq!(d, sums_of(&all), "csv={csv}");
    }
}

#[test]
fn checkpoint_is_not_reused_over_other_data_or_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<i64> = (0..50).collect();
    let (a, reused) = sourced_run(dir.path().into(), Source::Data(data.clone()));
    assert!(!reused);
    assert_eq!(a, sums_of(&data));
    let (_, reused) = sourced_run(dir.path().into(), Source::Data(data.clone()));
    assert!(reused, "the same parallelized data reuses the checkpoint");
    let mut other = data.clone();
    other[7] = 700;
    let (b, reused) = sourced_run(dir.path().into(), Source::Data(other.clone()));
    assert!(!reused, "one element changed: computed anew");
    assert_eq!(b, sums_of(&other));

    let (c, reused) = sourced_run(dir.path().into(), Source::Range(40));
    assert!(!reused);
    assert_eq!(c, sums_of(&(0..40).collect::<Vec<_>>()));
    let (d, reused) = sourced_run(dir.path().into(), Source::Range(41));
    assert!(!reused, "another bound: computed anew");
    assert_eq!(d, sums_of(&(0..41).collect::<Vec<_>>()));
    let (_, reused) = sourced_run(dir.path().into(), Source::Range(41));
    assert!(reused);
}
