//! What used to hang forever (issue 12) ends with a typed error: an action run on some workers
//! but not others (the driver code returned on a peer), and a task that never returns (with
//! `ember.task.timeout` set); a slow task is reported by a warning naming it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember_engine::prelude::*;
use ember_engine::EngineError;
use tracing_subscriber::util::SubscriberInitExt;

/// Runs `f` on a thread of its own and fails the test if it takes longer than `limit` (a hang
/// fails instead of stalling the suite).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("hung: no result within {limit:?}"))
}

fn local(n: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{n}]"))
        .unwrap()
}

#[test]
fn an_action_on_worker_zero_only_fails_peer_failed_naming_the_worker() {
    let results = within(Duration::from_secs(60), || {
        ember_engine::run_all(local(2), |ctx| {
            if ctx.worker_index() == 0 {
                ctx.range(0, 100, 1, 4)?.count()
            } else {
                Ok(0)
            }
        })
        .unwrap()
    });
    match &results[0] {
        Err(EngineError::PeerFailed(why)) => {
            assert!(
                why.contains("worker 1 returned from the driver code"),
                "{why}"
            );
            assert!(why.contains("same actions in the same order"), "{why}");
        }
        other => panic!("expected PeerFailed, got {other:?}"),
    }
    assert_eq!(results[1], Ok(0));
}

#[test]
fn an_action_on_a_later_worker_only_fails_worker_zero_does_not_wait() {
    let results = within(Duration::from_secs(60), || {
        ember_engine::run_all(local(3), |ctx| {
            let rdd = ctx.range(0, 30, 1, 3)?;
            let first = rdd.count()?;
            // Worker 2 runs a second action that its peers never run.
            let second = if ctx.worker_index() == 2 {
                rdd.map(|x| x * 2).count()?
            } else {
                0
            };
            Ok::<_, EngineError>((first, second))
        })
        .unwrap()
    });
    assert_eq!(results[0], Ok((30, 0)));
    assert_eq!(results[1], Ok((30, 0)));
    match &results[2] {
        Err(EngineError::PeerFailed(why)) => {
            assert!(why.contains("returned from the driver"), "{why}")
        }
        other => panic!("expected PeerFailed on worker 2, got {other:?}"),
    }
}

#[test]
fn matching_actions_still_agree_after_the_checks() {
    // The checks must not fail a correct program whose workers finish at different times.
    for n in [1, 2, 4] {
        let out = within(Duration::from_secs(60), move || {
            ember_engine::run_all(local(n), |ctx| {
                let mut total = 0;
                for i in 0..5i64 {
                    total += ctx
                        .range(0, 40, 1, 4)?
                        .map(move |x| (x % 3, x + i))
                        .reduce_by_key(|a, b| a + b)
                        .count()?;
                }
                Ok::<_, EngineError>(total)
            })
            .unwrap()
        });
        assert_eq!(out, vec![Ok(15); n], "local[{n}]");
    }
}

static RELEASE: AtomicBool = AtomicBool::new(false);

/// A task that does not return until the test ends.
fn stuck() {
    while !RELEASE.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_task_that_never_returns_times_out_naming_it() {
    for n in [1, 2] {
        let started = Instant::now();
        let conf = local(n).with("ember.task.timeout", "700ms").unwrap();
        let err = within(Duration::from_secs(60), move || {
            ember_engine::run(conf, |ctx| {
                ctx.range(0, 8, 1, 4)?
                    .map_partitions_with_index(|p, it| {
                        if p == 2 && ember_engine::task::current_attempt() == Some(0) {
                            stuck();
                        }
                        it
                    })
                    .count()
            })
        });
        let elapsed = started.elapsed();
        match err {
            Err(EngineError::TaskTimedOut {
                partition,
                attempt,
                timeout_ms,
                ..
            })
            | Ok(Err(EngineError::TaskTimedOut {
                partition,
                attempt,
                timeout_ms,
                ..
            })) => {
                assert_eq!((partition, attempt, timeout_ms), (2, 0, 700), "local[{n}]");
            }
            Ok(Err(EngineError::PeerFailed(why))) if why.contains("ember.task.timeout") => {}
            other => panic!("local[{n}]: expected TaskTimedOut, got {other:?}"),
        }
        assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}");
    }
    RELEASE.store(true, Ordering::SeqCst);
}

#[test]
fn a_task_under_the_timeout_is_not_failed() {
    let conf = local(2).with("ember.task.timeout", "10s").unwrap();
    let n = within(Duration::from_secs(60), move || {
        ember_engine::run(conf, |ctx| {
            ctx.range(0, 8, 1, 4)?
                .map(|x| {
                    std::thread::sleep(Duration::from_millis(20));
                    x
                })
                .count()
        })
        .unwrap()
    });
    assert_eq!(n, Ok(8));
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_slow_task_is_reported_with_stage_partition_worker_and_elapsed() {
    let captured = Captured::default();
    let writer = captured.clone();
    let guard = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .set_default();
    let conf = local(2).with("ember.task.slowWarning", "200ms").unwrap();
    let n = ember_engine::run(conf, |ctx| {
        ctx.range(0, 4, 1, 2)?
            .map_partitions_with_index(|p, it| {
                if p == 1 {
                    std::thread::sleep(Duration::from_millis(700));
                }
                it
            })
            .count()
    })
    .unwrap();
    drop(guard);
    assert_eq!(n, Ok(4));
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("slow task"))
        .unwrap_or_else(|| panic!("no slow-task warning in:\n{logs}"));
    assert!(line.contains("partition 1 (attempt 0)"), "{line}");
    assert!(line.contains("stage 0"), "{line}");
    assert!(line.contains("on worker"), "{line}");
    assert!(line.contains("ember.task.slowWarning"), "{line}");
    assert_eq!(
        logs.matches("slow task").count(),
        1,
        "one warning per attempt:\n{logs}"
    );
}
