//! Lineage: stages are cut at shuffles, completed shuffles are reused by later jobs, and
//! co-partitioned inputs join without a shuffle.

use ember::engine::last_job_stats;
use ember::prelude::*;

fn stage_names() -> Vec<String> {
    last_job_stats()
        .unwrap()
        .stages
        .into_iter()
        .map(|s| s.name)
        .collect()
}

#[test]
fn stages_are_cut_at_shuffles_and_reused() {
    let (first, second, joined, lineage) = ember::engine::run(Conf::new(), |ctx| {
        let counts = ctx
            .range(0, 100, 1, 4)
            .unwrap()
            .map(|x| (x % 10, 1))
            .reduce_by_key(|a, b| a + b);
        counts.count().unwrap();
        let first = stage_names();
        counts.count().unwrap();
        let second = stage_names();
        let other = ctx
            .range(0, 10, 1, 2)
            .unwrap()
            .map(|x| (x, x))
            .group_by_key();
        counts.join(&other).count().unwrap();
        let joined = stage_names();
        (first, second, joined, counts.join(&other).lineage())
    })
    .unwrap();
    assert_eq!(
        first,
        vec!["shuffle map for reduce_by_key", "result for count"]
    );
    assert_eq!(
        second,
        vec!["result for count"],
        "the completed shuffle is not run again"
    );
    // counts is already hash-partitioned into the join's 4 partitions, so it is read narrowly;
    // other's group_by_key shuffle runs, then other is shuffled into the join's partitioning.
    assert_eq!(
        joined,
        vec![
            "shuffle map for group_by_key",
            "shuffle map for join",
            "result for count"
        ]
    );
    assert_eq!(lineage.matches("+-").count(), 3, "{lineage}");
    assert!(lineage.starts_with("(4) join ["), "{lineage}");
    assert!(
        lineage.contains("reduce_by_key")
            && lineage.contains("group_by_key")
            && lineage.contains("range")
    );
}

#[test]
fn co_partitioned_join_needs_no_new_shuffle() {
    let (stages, answer) = ember::engine::run(Conf::new(), |ctx| {
        let p = HashPartitioner::new(3);
        let a = ctx
            .range(0, 60, 1, 4)
            .unwrap()
            .map(|x| (x % 6, x))
            .partition_by(p)
            .cache();
        let b = ctx
            .range(0, 6, 1, 2)
            .unwrap()
            .map(|k| (k, k * 100))
            .partition_by(p)
            .cache();
        a.count().unwrap();
        b.count().unwrap();
        let j = a.join(&b);
        let mut answer = j.map(|(k, (v, w))| (k, v + w)).collect().unwrap();
        answer.sort();
        (stage_names(), answer)
    })
    .unwrap();
    assert_eq!(stages, vec!["result for collect"], "{stages:?}");
    let mut expected: Vec<(i64, i64)> = (0..60).map(|x| (x % 6, x + (x % 6) * 100)).collect();
    expected.sort();
    assert_eq!(answer, expected);
}

#[test]
fn cached_partitions_are_reused() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let computed = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&computed);
    let lineage = ember::engine::run(
        Conf::new().with("ember.master", "local[1]").unwrap(),
        move |ctx| {
            let c = Arc::clone(&c);
            let r = ctx.range(0, 10, 1, 2).unwrap().map(move |x| {
                c.fetch_add(1, Ordering::SeqCst);
                x
            });
            let cached = r.cache();
            assert_eq!(cached.count().unwrap(), 10);
            assert_eq!(cached.collect().unwrap(), (0..10).collect::<Vec<_>>());
            let lineage = cached.lineage();
            cached.unpersist();
            assert_eq!(cached.count().unwrap(), 10);
            lineage
        },
    )
    .unwrap();
    assert_eq!(
        computed.load(Ordering::SeqCst),
        20,
        "computed once while cached, once after unpersist"
    );
    assert!(lineage.contains("[MEMORY_ONLY]"), "{lineage}");
}
