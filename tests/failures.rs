//! Task retries, accumulator exactly-once semantics, broadcasts, and bad input: each failure is a
//! typed error naming what went wrong, the same on every worker, and never a hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ember::prelude::*;

fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .unwrap()
}

#[test]
fn panicking_task_is_retried_and_accumulator_counts_once() {
    // Each partition's first attempt panics after adding to the accumulator; the retry succeeds.
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&attempts);
    let results = ember::engine::run_all(conf(2), move |ctx| {
        let acc = ctx.accumulator(0u64);
        let a = acc.clone();
        let seen = Arc::clone(&seen);
        ctx.range(0, 100, 1, 4)
            .unwrap()
            .foreach(move |x| {
                a.add(1);
                if x % 25 == 24 && ember::engine::task::current_attempt() == Some(0) {
                    seen.fetch_add(1, Ordering::SeqCst);
                    panic!("injected failure at {x}");
                }
            })
            .unwrap();
        acc.value()
    })
    .unwrap();
    assert_eq!(
        results,
        vec![100, 100],
        "every worker sees each element counted once"
    );
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        4,
        "every partition failed once"
    );
}

#[test]
fn always_failing_task_fails_the_job_with_stage_partition_and_cause() {
    let c = conf(2).with("ember.task.maxFailures", "3").unwrap();
    let errors = ember::engine::run_all(c, |ctx| {
        ctx.range(0, 40, 1, 4)
            .unwrap()
            .map(|x| if x == 33 { panic!("bad record {x}") } else { x })
            .count()
            .unwrap_err()
    })
    .unwrap();
    assert_eq!(errors[0], errors[1], "both workers report the same failure");
    match &errors[0] {
        EngineError::JobFailed {
            partition,
            attempts,
            cause,
            stage_name,
            ..
        } => {
            assert_eq!(*partition, 3);
            assert_eq!(*attempts, 3);
            assert!(cause.contains("bad record 33"), "{cause}");
            assert!(stage_name.contains("count"), "{stage_name}");
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
}

#[test]
fn failure_in_shuffle_map_stage_fails_job_and_later_jobs_still_run() {
    let (err, after) = ember::engine::run(conf(2), |ctx| {
        let bad = ctx.range(0, 100, 1, 4).unwrap().map(|x| {
            if x == 7 {
                panic!("map side {x}")
            } else {
                (x % 3, x)
            }
        });
        let err = bad.reduce_by_key(|a, b| a + b).collect().unwrap_err();
        let after = ctx
            .range(0, 10, 1, 2)
            .unwrap()
            .map(|x| (x % 2, x))
            .reduce_by_key(|a, b| a + b)
            .count()
            .unwrap();
        (err, after)
    })
    .unwrap();
    assert!(
        matches!(&err, EngineError::JobFailed { stage_name, partition: 0, .. } if stage_name.contains("shuffle map for reduce_by_key")),
        "{err:?}"
    );
    assert_eq!(after, 2);
}

#[test]
fn actions_inside_tasks_are_rejected_with_a_clear_error() {
    let err = ember::engine::run(conf(1), |ctx| {
        let inner = ctx.range(0, 3, 1, 1).unwrap();
        ctx.range(0, 2, 1, 1)
            .unwrap()
            .map(move |_| inner.count().unwrap())
            .collect()
            .unwrap_err()
    })
    .unwrap();
    assert!(
        err.to_string().contains("actions cannot run inside a task"),
        "{err}"
    );
}

#[test]
fn broadcast_value_comes_from_worker_zero() {
    let seen = ember::engine::run_all(conf(3), |ctx| {
        // Each worker computes a different value; worker 0's is the one shared.
        let b = ctx
            .broadcast(vec![ctx.worker_index() as u64 * 100 + 7; 3])
            .unwrap();
        let b2 = b.clone();
        let sum = ctx
            .range(0, 30, 1, 6)
            .unwrap()
            .map(move |i| b2[(i % 3) as usize])
            .fold(0, |a, x| a + x)
            .unwrap();
        (b[0], sum)
    })
    .unwrap();
    assert_eq!(seen, vec![(7, 210); 3]);
}

#[test]
fn zero_partitions_and_bad_arguments_are_typed_errors() {
    let errs = ember::engine::run(conf(1), |ctx| {
        vec![
            ctx.parallelize(vec![1, 2, 3], 0).err(),
            ctx.range(0, 10, 0, 2).err(),
            ctx.text_file("Cargo.toml", 0).err(),
            ctx.range(0, 10, 1, 2).unwrap().sample(false, 1.5, 1).err(),
            ctx.range(0, 10, 1, 2).unwrap().repartition(0).err(),
        ]
    })
    .unwrap();
    for e in errs {
        assert!(
            matches!(e, Some(EngineError::InvalidArgument { .. })),
            "{e:?}"
        );
    }
}

#[test]
fn bad_configuration_is_an_error_naming_the_key() {
    let err = Conf::new()
        .with("ember.default.parallelism", "many")
        .unwrap_err();
    assert!(
        err.to_string().contains("ember.default.parallelism"),
        "{err}"
    );
    let err = Conf::new().with("ember.workers", "2").unwrap_err();
    assert!(
        matches!(err, EngineError::UnknownConfigKey { .. }),
        "{err:?}"
    );
    let cluster = Conf::new().with("ember.master", "cluster").unwrap();
    let err = ember::engine::run(cluster, |_| ()).unwrap_err();
    assert!(err.to_string().contains("ember.cluster.hosts"), "{err}");
}

#[test]
fn missing_and_vanished_input_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let path = dir.path().join("data.txt");
    std::fs::write(&path, "a\nb\nc\n").unwrap();
    let p = path.clone();
    let (e1, e2) = ember::engine::run(conf(2), move |ctx| {
        let e1 = ctx.text_file(&missing, 2).err().unwrap();
        let lines = ctx.text_file(&p, 2).unwrap();
        // Every worker has built the RDD before worker 0 deletes the file (a job is a barrier).
        ctx.range(0, 2, 1, 2).unwrap().count().unwrap();
        if ctx.worker_index() == 0 {
            std::fs::remove_file(&p).unwrap();
        }
        ctx.range(0, 2, 1, 2).unwrap().count().unwrap();
        (e1, lines.count().unwrap_err())
    })
    .unwrap();
    assert!(
        matches!(&e1, EngineError::InputNotFound { path } if path.ends_with("nope.txt")),
        "{e1:?}"
    );
    match e2 {
        EngineError::JobFailed {
            attempts, cause, ..
        } => {
            assert_eq!(attempts, 1, "a missing file is not retried");
            assert!(cause.contains("data.txt"), "{cause}");
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
}

#[test]
fn invalid_utf8_names_file_and_offset_or_is_replaced_in_lossy_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.txt");
    let mut bytes = b"hello\nworld\nab".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"cd\nlast\n");
    std::fs::write(&path, &bytes).unwrap();
    let p = path.clone();
    let errs = ember::engine::run(conf(2), move |ctx| {
        [
            ctx.text_file(&p, 3).unwrap().count().unwrap_err(),
            ctx.text_file_filter_map(&p, 3, |l| Some(l.len()))
                .unwrap()
                .count()
                .unwrap_err(),
        ]
    })
    .unwrap();
    for err in errs {
        match err {
            EngineError::JobFailed {
                cause, attempts, ..
            } => {
                assert!(
                    cause.contains("bad.txt") && cause.contains("byte offset 14"),
                    "{cause}"
                );
                assert_eq!(attempts, 1);
            }
            other => panic!("expected JobFailed, got {other:?}"),
        }
    }
    let lossy = conf(2).with("ember.text.invalidUtf8", "lossy").unwrap();
    let (lines, parsed) = ember::engine::run(lossy, move |ctx| {
        let lines = ctx.text_file(&path, 3).unwrap().collect().unwrap();
        let parsed = ctx
            .text_file_filter_map(&path, 3, |l| l.contains('\u{fffd}').then_some(l.len()))
            .unwrap()
            .collect()
            .unwrap();
        (lines, parsed)
    })
    .unwrap();
    assert_eq!(
        lines,
        vec!["hello", "world", "ab\u{fffd}\u{fffd}cd", "last"]
    );
    assert_eq!(parsed, vec!["ab\u{fffd}\u{fffd}cd".len()]);
}

#[test]
fn save_as_text_file_commits_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let failed = dir.path().join("failed");
    let (o, f) = (out.clone(), failed.clone());
    let (again, read_back, failure) = ember::engine::run(conf(2), move |ctx| {
        let r = ctx.range(0, 1000, 1, 4).unwrap();
        r.save_as_text_file(&o).unwrap();
        let again = r.save_as_text_file(&o).unwrap_err();
        let read_back: Vec<i64> = ctx
            .text_file(&o, 3)
            .unwrap()
            .map(|l| l.parse().unwrap())
            .collect()
            .unwrap();
        let failure = r
            .map(|x| if x == 999 { panic!("disk on fire") } else { x })
            .save_as_text_file(&f)
            .unwrap_err();
        (again, read_back, failure)
    })
    .unwrap();
    assert!(out.join("_SUCCESS").exists());
    assert!(!out.join("_temporary").exists());
    // One part per partition, named `part-<partition>-<job id>.txt`.
    let parts: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("part-"))
        .collect();
    assert_eq!(parts.len(), 4, "{parts:?}");
    assert!(
        matches!(again, EngineError::OutputExists { .. }),
        "{again:?}"
    );
    assert_eq!(read_back, (0..1000).collect::<Vec<i64>>());
    assert!(
        matches!(failure, EngineError::JobFailed { .. }),
        "{failure:?}"
    );
    assert!(!failed.exists(), "a failed save leaves nothing behind");
}

#[test]
fn driver_panic_on_one_worker_does_not_hang_the_others() {
    let result = ember::engine::run_all(conf(2), |ctx| {
        if ctx.worker_index() == 1 {
            panic!("driver bug on worker 1");
        }
        ctx.range(0, 10, 1, 2).unwrap().count()
    });
    let err = result.unwrap_err();
    assert!(err.to_string().contains("driver bug on worker 1"), "{err}");
}
