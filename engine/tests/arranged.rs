//! Arranged RDDs (differential arrangements): joins, cogroups, subtractions and lookups against
//! an arrangement equal the plain RDD operators on 1, 2 and 4 workers with skewed keys; a
//! second join against the arrangement runs no shuffle; updates change what later operators see.

use ember_engine::differential::{ArrangedLoop, CollectionLoop};
use ember_engine::prelude::*;

fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .unwrap()
}

/// Skewed pairs: key 0 holds about half of the records, the rest spread over 200 keys.
fn skewed(n: u64, salt: u64) -> Vec<(u64, u64)> {
    (0..n)
        .map(|i| {
            let h = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt) >> 7;
            let key = if h.is_multiple_of(2) { 0 } else { h % 200 };
            (key, i * 10 + salt)
        })
        .collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A cogroup's groups, each side sorted, in key order.
fn groups(rdd: Rdd<(u64, (Vec<u64>, Vec<u64>))>) -> Vec<(u64, (Vec<u64>, Vec<u64>))> {
    sorted(
        rdd.map(|(k, (mut v, mut w))| {
            v.sort();
            w.sort();
            (k, (v, w))
        })
        .collect()
        .unwrap(),
    )
}

#[test]
fn arranged_operators_equal_the_plain_ones() {
    for workers in [1, 2, 4] {
        let (arranged, plain) = ember_engine::run(conf(workers), |ctx| {
            let left = ctx.parallelize(skewed(3000, 1), 5).unwrap();
            let right = ctx.parallelize(skewed(400, 2), 3).unwrap();
            let arr = left.arrange_by_key().unwrap();
            let a = (
                sorted(arr.join(&right).unwrap().collect().unwrap()),
                groups(arr.cogroup(&right).unwrap()),
                sorted(
                    arr.subtract_by_key(&right.filter(|(k, _)| k % 3 == 0))
                        .unwrap()
                        .collect()
                        .unwrap(),
                ),
                arr.lookup(&7).unwrap(),
            );
            let p = (
                sorted(left.join(&right).collect().unwrap()),
                groups(left.cogroup(&right)),
                sorted(
                    left.subtract_by_key(&right.filter(|(k, _)| k % 3 == 0))
                        .collect()
                        .unwrap(),
                ),
                sorted(left.lookup(&7).unwrap()),
            );
            (a, p)
        })
        .unwrap();
        assert!(!plain.0.is_empty() && !plain.3.is_empty());
        assert_eq!(arranged.0, plain.0, "join on {workers} workers");
        assert_eq!(arranged.1, plain.1, "cogroup on {workers} workers");
        assert_eq!(arranged.2, plain.2, "subtract_by_key on {workers} workers");
        assert_eq!(arranged.3, plain.3, "lookup on {workers} workers");
    }
}

#[test]
fn a_second_join_runs_no_shuffle_and_updates_are_seen() {
    let (stages, first, second, after, expected_after, reserved) =
        ember_engine::run(conf(2), |ctx| {
            let left = ctx.parallelize(skewed(2000, 3), 4).unwrap();
            let right = ctx.parallelize(skewed(300, 4), 2).unwrap();
            let arr = left.arrange_by_key().unwrap();
            let first = sorted(arr.join(&right).unwrap().collect().unwrap());
            let joined = arr.join(&right).unwrap();
            let second = sorted(joined.collect().unwrap());
            // The job that read the second join's output ran one stage: no shuffle map stage.
            let stats = ember_engine::last_job_stats().unwrap();
            let stages: Vec<String> = stats.stages.iter().map(|s| s.name.clone()).collect();
            let adds = ctx
                .parallelize(vec![(7u64, 1u64), (7, 2), (1000, 5)], 2)
                .unwrap();
            let removals = left.filter(|(k, _)| *k == 0);
            arr.update(&adds, &removals).unwrap();
            let after = sorted(arr.join(&right).unwrap().collect().unwrap());
            let new_left = left.filter(|(k, _)| *k != 0).union(&adds);
            let expected_after = sorted(new_left.join(&right).collect().unwrap());
            (
                stages,
                first,
                second,
                after,
                expected_after,
                arr.reserved_bytes(),
            )
        })
        .unwrap();
    assert_eq!(first, second);
    assert!(!first.is_empty());
    assert_eq!(
        stages.len(),
        1,
        "stages of the second join's job: {stages:?}"
    );
    assert!(!stages[0].starts_with("shuffle"), "{stages:?}");
    assert_eq!(after, expected_after);
    assert_ne!(after, first);
    assert!(
        reserved > 0,
        "the arrangement is charged to the block manager"
    );
}

#[test]
fn an_arrangement_over_the_budget_is_an_error_naming_the_key() {
    let err = ember_engine::run(
        conf(2).with("ember.memory.storage", "64k").unwrap(),
        |ctx| {
            // One key: one worker holds everything, and both must fail.
            let pairs: Vec<(u64, String)> =
                (0..20_000).map(|i| (0, format!("value {i}"))).collect();
            ctx.parallelize(pairs, 2)
                .unwrap()
                .arrange_by_key()
                .map(|_| ())
        },
    )
    .unwrap()
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("ember.memory.storage"), "{msg}");
    assert!(msg.contains("arrange_by_key"), "{msg}");
}

/// One step of reachability: the reached nodes and their successors.
fn reach_step<'i>(
    edges: ArrangedLoop<'i, u64, u64>,
    reached: CollectionLoop<'i, u64>,
) -> CollectionLoop<'i, u64> {
    reached
        .clone()
        .map(|n| (n, ()))
        .arrange_by_key()
        .join_core(edges, |_: &u64, _: &(), d: &u64| Some(*d))
        .concat(reached)
        .distinct()
}

#[test]
fn iterate_runs_a_loop_to_its_fixpoint_or_its_step_limit() {
    // A chain 0 -> 1 -> ... -> 9: the nodes reachable from 0 within k steps are 0..=k.
    let (limited, full) = ember_engine::run(conf(2), |ctx| {
        let chain: Vec<(u64, u64)> = (0..9).map(|i| (i, i + 1)).collect();
        let edges = ctx.parallelize(chain, 3).unwrap().arrange_by_key().unwrap();
        let roots = ctx.parallelize(vec![0u64], 1).unwrap();
        let limited = edges
            .iterate("reach3", &roots, Some(3), reach_step)
            .unwrap();
        let full = edges.iterate("reach", &roots, None, reach_step).unwrap();
        (limited.collect().unwrap(), full.collect().unwrap())
    })
    .unwrap();
    assert_eq!(limited, vec![0, 1, 2, 3]);
    assert_eq!(full, (0..10).collect::<Vec<u64>>());
}

#[test]
fn removing_records_that_are_not_there_is_an_error_naming_one() {
    let err = ember_engine::run(conf(2), |ctx| {
        let arr = ctx
            .parallelize(vec![(1u64, 10u64), (2, 20)], 2)?
            .arrange_by_key()?;
        let none = ctx.parallelize(Vec::<(u64, u64)>::new(), 1)?;
        arr.update(&none, &ctx.parallelize(vec![(3u64, 30u64)], 1)?)?;
        arr.join(&ctx.parallelize(vec![(3u64, 0u64)], 1)?)?
            .collect()
    })
    .unwrap()
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("more removals than additions"), "{msg}");
    assert!(msg.contains("(3, (30, 0))"), "{msg}");
}

#[test]
fn a_lookup_of_an_absent_key_is_empty_on_every_worker() {
    let found = ember_engine::run(conf(4), |ctx| {
        let arr = ctx
            .parallelize(vec![(1u64, 10u64), (1, 11), (2, 20)], 3)
            .unwrap()
            .arrange_by_key()
            .unwrap();
        (arr.lookup(&9).unwrap(), arr.lookup(&1).unwrap())
    })
    .unwrap();
    assert_eq!(found, (vec![], vec![10, 11]));
}
