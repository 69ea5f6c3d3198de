//! Collectives and barrier stages: all-reduce, broadcast and all-gather against sequential
//! computations on 1, 2 and 4 workers; a barrier stage whose task fails once restarts and gives
//! the same answer; stages that cannot run as barrier stages (too many partitions, some of the
//! partitions only, a union or coalesce after the barrier RDD) are refused before they start;
//! two barrier RDDs in one stage keep their collectives apart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ember_engine::prelude::*;
use ember_engine::ReduceOp;

fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .unwrap()
}

/// Worker `rank`'s test buffer of `len` values (distinct per rank, exact in f32 sums).
fn buffer(rank: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7 + rank * 13) % 1000) as f32 - 500.0 + rank as f32 * 0.25)
        .collect()
}

/// The element-wise sum of every rank's buffer, added in rank order.
fn sequential_sum(ranks: usize, len: usize) -> Vec<f32> {
    let mut acc = buffer(0, len);
    for r in 1..ranks {
        for (a, b) in acc.iter_mut().zip(buffer(r, len)) {
            *a += b;
        }
    }
    acc
}

/// Runs an all-reduce of `len` values on every worker; returns each rank's result.
fn all_reduce_on(workers: usize, len: usize, op: ReduceOp) -> Vec<Vec<f32>> {
    ember_engine::run(conf(workers), move |ctx| {
        let n = ctx.num_workers();
        ctx.parallelize((0..n).collect::<Vec<usize>>(), n)?
            .barrier()
            .map_partitions(move |task, _| {
                let mut buf = buffer(task.rank(), len);
                task.all_reduce(&mut buf, op)?;
                Ok(std::iter::once(buf))
            })
            .collect()
    })
    .unwrap()
    .unwrap()
}

#[test]
fn all_reduce_sums_match_sequential_sums() {
    for workers in [1, 2, 4] {
        for len in [0, 1, 7, 1000, 10_000_000] {
            if len == 10_000_000 && workers == 1 {
                continue;
            }
            let got = all_reduce_on(workers, len, ReduceOp::Sum);
            let want = sequential_sum(workers, len);
            assert_eq!(got.len(), workers);
            for (rank, g) in got.iter().enumerate() {
                assert!(g == &want, "workers={workers} len={len} rank={rank}");
            }
        }
    }
}

#[test]
fn all_reduce_mean_divides_by_the_number_of_tasks() {
    let got = all_reduce_on(4, 9, ReduceOp::Mean);
    let want: Vec<f32> = sequential_sum(4, 9).iter().map(|v| v * 0.25).collect();
    for g in got {
        assert_eq!(g, want);
    }
}

#[test]
fn broadcast_and_all_gather_reach_every_task() {
    for workers in [1, 2, 4] {
        let out = ember_engine::run(conf(workers), |ctx| {
            let n = ctx.num_workers();
            ctx.parallelize((0..n).collect::<Vec<usize>>(), n)?
                .barrier()
                .map_partitions(|task, _| {
                    let root = task.num_tasks() - 1;
                    let mut buf = if task.rank() == root {
                        vec![1.5f32, 2.5, 3.5]
                    } else {
                        vec![9.0; 17]
                    };
                    task.broadcast(&mut buf, root)?;
                    let names = task.all_gather(&format!("rank-{}", task.rank()))?;
                    task.barrier()?;
                    Ok(std::iter::once((buf, names, task.comm_stats().calls)))
                })
                .collect()
        })
        .unwrap()
        .unwrap();
        let names: Vec<String> = (0..workers).map(|r| format!("rank-{r}")).collect();
        for (buf, got, calls) in out {
            assert_eq!(buf, vec![1.5, 2.5, 3.5]);
            assert_eq!(got, names);
            assert_eq!(calls, 3);
        }
    }
}

#[test]
fn a_barrier_stage_runs_every_task_at_once_with_fewer_partitions_than_workers() {
    // Three tasks on four workers: each sees the other two through the collectives.
    let out = ember_engine::run(conf(4), |ctx| {
        ctx.parallelize(vec![1.0f32, 2.0, 3.0], 3)?
            .barrier()
            .map_partitions(|task, xs| {
                let mut v: Vec<f32> = xs.collect();
                task.all_reduce(&mut v, ReduceOp::Sum)?;
                let workers = task.workers();
                Ok(std::iter::once((v[0], task.num_tasks(), workers)))
            })
            .collect()
    })
    .unwrap()
    .unwrap();
    assert_eq!(out.len(), 3);
    for (sum, tasks, workers) in &out {
        assert_eq!((*sum, *tasks), (6.0, 3));
        let mut distinct = workers.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "one task per worker: {workers:?}");
    }
}

#[test]
fn a_failed_barrier_task_restarts_the_whole_stage_with_the_same_answer() {
    let runs = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let (r, f) = (Arc::clone(&runs), Arc::clone(&failures));
    let out = ember_engine::run(conf(2), move |ctx| {
        let (r, f) = (Arc::clone(&r), Arc::clone(&f));
        ctx.parallelize(vec![10.0f32, 20.0], 2)?
            .barrier()
            .map_partitions(move |task, xs| {
                r.fetch_add(1, Ordering::SeqCst);
                let mut v: Vec<f32> = xs.collect();
                // Rank 1 fails in its first attempt after rank 0 is already waiting.
                if task.rank() == 1 && task.attempt() == 0 {
                    f.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    panic!("injected failure");
                }
                task.all_reduce(&mut v, ReduceOp::Sum)?;
                Ok(std::iter::once((v[0], task.attempt())))
            })
            .collect()
    })
    .unwrap()
    .unwrap();
    assert_eq!(out, vec![(30.0, 1), (30.0, 1)]);
    assert_eq!(failures.load(Ordering::SeqCst), 1);
    // Both tasks ran twice: the stage restarted as a whole.
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[test]
fn a_barrier_task_that_always_fails_fails_the_job_naming_it() {
    let conf = conf(2).with("ember.task.maxFailures", "2").unwrap();
    let err = ember_engine::run(conf, |ctx| {
        ctx.parallelize(vec![1.0f32, 2.0], 2)?
            .barrier()
            .map_partitions(|task, xs| {
                let mut v: Vec<f32> = xs.collect();
                if task.rank() == 0 {
                    return Err(EngineError::InvalidArgument {
                        operation: "test".into(),
                        reason: "always fails".into(),
                    });
                }
                task.all_reduce(&mut v, ReduceOp::Sum)?;
                Ok(v)
            })
            .collect()
    })
    .unwrap()
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, EngineError::JobFailed { .. }), "{text}");
    assert!(
        text.contains("always fails") || text.contains("rank 0"),
        "{text}"
    );
}

#[test]
fn a_barrier_stage_with_more_partitions_than_workers_is_refused_before_it_starts() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let err = ember_engine::run(conf(2), move |ctx| {
        let r = Arc::clone(&r);
        ctx.parallelize((0..10).collect::<Vec<i32>>(), 3)?
            .barrier()
            .map_partitions(move |_, xs| {
                r.fetch_add(1, Ordering::SeqCst);
                Ok(xs)
            })
            .count()
    })
    .unwrap()
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("3 partitions") && text.contains("2 workers"),
        "{text}"
    );
    assert!(text.contains("repartition"), "names the fix: {text}");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn buffers_of_different_lengths_are_an_error_not_a_wrong_sum() {
    let err = ember_engine::run(conf(2), |ctx| {
        ctx.parallelize(vec![0usize, 1], 2)?
            .barrier()
            .map_partitions(|task, _| {
                let mut v = vec![1.0f32; 4 + task.rank()];
                task.all_reduce(&mut v, ReduceOp::Sum)?;
                Ok(v)
            })
            .collect()
    })
    .unwrap()
    .unwrap_err();
    assert!(err.to_string().contains("all_reduce of"), "{err}");
}

#[test]
fn a_barrier_rdd_under_a_shuffle_runs_as_a_barrier_map_stage() {
    // The shuffle map stage holding the barrier RDD runs as a barrier stage.
    let out = ember_engine::run(conf(2), |ctx| {
        ctx.parallelize(vec![(1, 1.0f32), (2, 2.0)], 2)?
            .barrier()
            .map_partitions(|task, xs| {
                let mut v: Vec<(i32, f32)> = xs.collect();
                let mut s = [v.iter().map(|p| p.1).sum::<f32>()];
                task.all_reduce(&mut s, ReduceOp::Sum)?;
                v.iter_mut().for_each(|p| p.1 = s[0]);
                Ok(v)
            })
            .reduce_by_key(|a, b| a + b)
            .collect()
    })
    .unwrap()
    .unwrap();
    let mut out = out;
    out.sort_by_key(|p| p.0);
    assert_eq!(out, vec![(1, 3.0), (2, 3.0)]);
}

#[test]
fn tree_aggregate_equals_aggregate_at_every_depth() {
    let out = ember_engine::run(conf(3), |ctx| {
        let rdd = ctx.range(0, 10_000, 1, 37).unwrap();
        let plain = rdd.aggregate(0i64, |a, x| a + x, |a, b| a + b).unwrap();
        let trees: Vec<i64> = (1..=4)
            .map(|d| {
                rdd.tree_aggregate(0i64, |a, x| a + x, |a, b| a + b, d)
                    .unwrap()
            })
            .collect();
        let vecs = rdd
            .tree_aggregate(
                vec![0i64; 3],
                |mut a, x| {
                    a[(x % 3) as usize] += x;
                    a
                },
                |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
                2,
            )
            .unwrap();
        let bad = rdd
            .tree_aggregate(0i64, |a, x| a + x, |a, b| a + b, 0)
            .is_err();
        (plain, trees, vecs, bad)
    })
    .unwrap();
    let sum: i64 = (0..10_000).sum();
    assert_eq!(out.0, sum);
    assert_eq!(out.1, vec![sum; 4]);
    assert_eq!(out.2.iter().sum::<i64>(), sum);
    assert!(out.3);
}

#[test]
fn a_barrier_rdd_over_another_in_one_stage_keeps_their_collectives_apart() {
    // Both barrier RDDs run in one stage, so every task makes two `BarrierTask`s, one after the
    // other. A fast rank's first message for the outer one could reach a slow rank still
    // waiting in the inner one; collectives numbered per `BarrierTask` then matched it (the
    // same number and step), and a rank's value went missing, replaced by the slow rank's own.
    let bad = ember_engine::run(conf(4), |ctx| {
        let mut bad = Vec::new();
        for round in 0..300u64 {
            let out = ctx
                .parallelize((0..4u64).collect::<Vec<_>>(), 4)?
                .barrier()
                .map_partitions(move |task, _| {
                    let inner = task.all_gather(&(task.rank() as u64 + round * 10))?;
                    Ok(std::iter::once(inner))
                })
                .barrier()
                .map_partitions(move |task, inner| {
                    let inner: Vec<Vec<u64>> = inner.collect();
                    let outer = task.all_gather(&(task.rank() as u64 + 1000 + round * 10))?;
                    let mut sum = [task.rank() as f32];
                    task.all_reduce(&mut sum, ReduceOp::Sum)?;
                    Ok(std::iter::once((inner, outer, sum[0])))
                })
                .collect()?;
            let inner: Vec<u64> = (0..4).map(|r| r + round * 10).collect();
            let outer: Vec<u64> = (0..4).map(|r| r + 1000 + round * 10).collect();
            for (i, o, s) in out {
                if i != vec![inner.clone()] || o != outer || s != 6.0 {
                    bad.push((round, i, o, s));
                }
            }
        }
        Ok::<_, EngineError>(bad)
    })
    .unwrap()
    .unwrap();
    assert!(bad.is_empty(), "{bad:?}");
}

/// A barrier RDD of one partition per worker whose tasks all-reduce their values.
fn summed(ctx: &Context, partitions: usize) -> Rdd<f32> {
    ctx.parallelize((1..=partitions).map(|p| p as f32).collect(), partitions)
        .unwrap()
        .barrier()
        .map_partitions(|task, xs| {
            let mut v = [xs.sum::<f32>()];
            task.all_reduce(&mut v, ReduceOp::Sum)?;
            Ok(std::iter::once(v[0]))
        })
}

#[test]
fn actions_on_some_partitions_of_a_barrier_stage_are_refused() {
    // `first` ran a barrier stage of partition 0 alone: a sum over one task, silently.
    let out = ember_engine::run(conf(2), |ctx| {
        let rdd = summed(ctx, 2);
        let errors: Vec<String> = [
            rdd.first().map(|_| ()),
            rdd.take(1).map(|_| ()),
            rdd.zip_with_index().map(|_| ()),
        ]
        .into_iter()
        .map(|r| r.unwrap_err().to_string())
        .collect();
        let after_shuffle = rdd.repartition(1).unwrap().first().unwrap();
        (rdd.collect().unwrap(), errors, after_shuffle)
    })
    .unwrap();
    assert_eq!(out.0, vec![3.0, 3.0]);
    for e in &out.1 {
        assert!(e.contains("1 of the 2 partitions"), "{e}");
        assert!(e.contains("repartition"), "names the fix: {e}");
    }
    assert_eq!(out.2, Some(3.0));
}

#[test]
fn a_union_or_coalesce_after_a_barrier_rdd_in_its_stage_is_refused() {
    let out = ember_engine::run(conf(2), |ctx| {
        // Four barrier partitions in two tasks: sums over pairs of partitions, silently.
        let coalesced = summed(ctx, 4).coalesce(2).unwrap().collect();
        let union = summed(ctx, 1).union(&summed(ctx, 1)).collect();
        // Before the barrier RDD, in the same stage, a coalesce is fine.
        let before = ctx
            .parallelize(vec![1.0f32, 2.0, 3.0, 4.0], 4)
            .unwrap()
            .coalesce(2)
            .unwrap()
            .barrier()
            .map_partitions(|task, xs| {
                let mut v = [xs.sum::<f32>()];
                task.all_reduce(&mut v, ReduceOp::Sum)?;
                Ok(std::iter::once(v[0]))
            })
            .collect();
        (coalesced, union, before)
    })
    .unwrap();
    let coalesced = out.0.unwrap_err().to_string();
    assert!(coalesced.contains("through a coalesce"), "{coalesced}");
    let union = out.1.unwrap_err().to_string();
    assert!(union.contains("through a union"), "{union}");
    assert_eq!(out.2.unwrap(), vec![10.0, 10.0]);
}
