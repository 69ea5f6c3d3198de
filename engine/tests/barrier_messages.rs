//! Point-to-point messages between barrier tasks: every message reaches its receiver exactly
//! once on 2 and 4 workers; a receive that finds nothing says so without waiting; a restarted
//! stage never reads a message of its failed attempt, and a receiver whose peer failed fails
//! with `PeerFailed` instead of waiting; a message to oneself or a missing rank is refused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ember_engine::prelude::*;

fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .unwrap()
}

fn message(from: usize, to: usize, i: usize) -> Vec<u8> {
    format!("{from}->{to}#{i}").into_bytes()
}

#[test]
fn every_message_reaches_its_receiver_exactly_once() {
    const EACH: usize = 40;
    for workers in [2, 4] {
        let got: Vec<(usize, BTreeMap<usize, Vec<Vec<u8>>>)> =
            ember_engine::run(conf(workers), move |ctx| {
                let n = ctx.num_workers();
                ctx.parallelize((0..n).collect::<Vec<usize>>(), n)?
                    .barrier()
                    .map_partitions(move |task, _| {
                        let (me, n) = (task.rank(), task.num_tasks());
                        for i in 0..EACH {
                            for to in (0..n).filter(|&t| t != me) {
                                task.send_message(to, message(me, to, i))?;
                            }
                        }
                        let mut by_sender: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
                        for _ in 0..EACH * (n - 1) {
                            let (from, bytes) = task.receive_message()?;
                            by_sender.entry(from).or_default().push(bytes);
                        }
                        // Nothing more was sent: a last look finds nothing once all are done.
                        task.barrier()?;
                        assert!(task.try_receive_message()?.is_none());
                        let stats = task.comm_stats();
                        assert!(stats.bytes_sent > 0 && stats.bytes_received > 0);
                        Ok(std::iter::once((me, by_sender)))
                    })
                    .collect()
            })
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), workers);
        for (me, by_sender) in got {
            let senders: Vec<usize> = by_sender.keys().copied().collect();
            let want: Vec<usize> = (0..workers).filter(|&s| s != me).collect();
            assert_eq!(senders, want, "workers={workers} rank {me}");
            for (from, mut msgs) in by_sender {
                msgs.sort();
                let mut expected: Vec<Vec<u8>> = (0..EACH).map(|i| message(from, me, i)).collect();
                expected.sort();
                assert_eq!(msgs, expected, "workers={workers} {from}->{me}");
            }
        }
    }
}

#[test]
fn a_receive_that_finds_nothing_returns_at_once() {
    let out = ember_engine::run(conf(2), |ctx| {
        ctx.parallelize(vec![0u8, 1], 2)?
            .barrier()
            .map_partitions(|task, _| {
                // Nobody sends before the barrier, so rank 0's first look finds nothing.
                let early = if task.rank() == 0 {
                    task.try_receive_message()?.is_none()
                } else {
                    true
                };
                task.barrier()?;
                let got = if task.rank() == 1 {
                    task.send_message(0, b"hello".to_vec())?;
                    None
                } else {
                    Some(task.receive_message()?)
                };
                Ok(std::iter::once((early, got)))
            })
            .collect()
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        out,
        vec![(true, Some((1, b"hello".to_vec()))), (true, None)]
    );
}

#[test]
fn a_restarted_stage_reads_only_its_own_attempts_messages() {
    let failures = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&failures);
    let out = ember_engine::run(conf(2), move |ctx| {
        let f = Arc::clone(&f);
        ctx.parallelize(vec![0u8, 1], 2)?
            .barrier()
            .map_partitions(move |task, _| {
                let attempt = task.attempt();
                if task.rank() == 1 {
                    task.send_message(0, format!("attempt {attempt}").into_bytes())?;
                    if attempt == 0 {
                        f.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(30));
                        panic!("injected failure after sending");
                    }
                    return Ok(vec![]);
                }
                // Rank 0 reads the message, then waits for a second one that never comes in
                // attempt 0: its peer's failure must end the wait.
                let (_, first) = task.receive_message()?;
                if attempt == 0 {
                    let second = task.receive_message();
                    let err = second.expect_err("the peer failed: the receive must fail");
                    assert!(matches!(err, EngineError::PeerFailed(_)), "{err}");
                    return Err(err);
                }
                let late = task.try_receive_message()?;
                Ok(vec![(String::from_utf8(first).unwrap(), late.is_none())])
            })
            .collect()
    })
    .unwrap()
    .unwrap();
    assert_eq!(out, vec![("attempt 1".to_string(), true)]);
    assert_eq!(failures.load(Ordering::SeqCst), 1);
}

#[test]
fn a_message_to_oneself_or_a_missing_rank_is_refused() {
    let out = ember_engine::run(conf(2), |ctx| {
        ctx.parallelize(vec![0u8, 1], 2)?
            .barrier()
            .map_partitions(|task, _| {
                let me = task.rank();
                let to_self = task.send_message(me, vec![1]).unwrap_err().to_string();
                let missing = task.send_message(5, vec![1]).unwrap_err().to_string();
                Ok(std::iter::once((to_self, missing)))
            })
            .collect()
    })
    .unwrap()
    .unwrap();
    for (to_self, missing) in out {
        assert!(to_self.contains("does not message itself"), "{to_self}");
        assert!(missing.contains("rank 5"), "{missing}");
    }
}
