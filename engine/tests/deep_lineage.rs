//! Ten thousand (and fifty thousand) chained narrow transformations on the workers' default
//! thread stacks (issue 12: 10,000 overflowed the stack, 5,000 worked): building the chain,
//! planning and running jobs on it, rendering its lineage and dropping it all work in loops.

use ember_engine::prelude::*;
use ember_engine::EngineError;

fn local(n: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{n}]"))
        .unwrap()
}

#[test]
fn ten_and_fifty_thousand_chained_maps_compute_and_drop() {
    for depth in [10_000usize, 50_000] {
        let out = ember_engine::run_all(local(2), move |ctx| {
            let mut rdd = ctx.range(0, 100, 1, 4)?;
            for _ in 0..depth {
                rdd = rdd.map(|x| x + 1);
            }
            let sum = rdd.reduce(|a, b| a + b)?;
            let collected = rdd.collect()?;
            let lines = rdd.lineage().lines().count();
            drop(rdd);
            Ok::<_, EngineError>((sum, collected.len(), collected[0], lines))
        })
        .unwrap();
        let want = (0..100i64).sum::<i64>() + 100 * depth as i64;
        for r in out {
            assert_eq!(
                r,
                Ok((Some(want), 100, depth as i64, depth + 1)),
                "depth {depth}"
            );
        }
    }
}

#[test]
fn a_deep_mixed_chain_feeds_a_shuffle_and_a_cached_middle() {
    let out = ember_engine::run(local(2), |ctx| {
        let mut rdd = ctx.range(0, 60, 1, 3)?;
        for i in 0..6_000i64 {
            rdd = match i % 3 {
                0 => rdd.map(|x| x + 1),
                1 => rdd.filter(|_| true),
                _ => rdd.flat_map(|x| [x]),
            };
        }
        // A cached node in the middle of the chain, then as many steps again.
        let middle = rdd.cache();
        let mut top = middle.clone();
        for _ in 0..6_000 {
            top = top.map(|x| x - 1);
        }
        let by_key = top
            .map(|x| (x.rem_euclid(5), 1u64))
            .reduce_by_key(|a, b| a + b)
            .collect()?;
        let again = top.count()?;
        let middle_sum = middle.fold(0, |a, b| a + b)?;
        Ok::<_, EngineError>((by_key, again, middle_sum))
    })
    .unwrap()
    .unwrap();
    let (mut by_key, again, middle_sum) = out;
    by_key.sort();
    assert_eq!(by_key, (0..5).map(|k| (k, 12u64)).collect::<Vec<_>>());
    assert_eq!(again, 60);
    assert_eq!(middle_sum, (0..60i64).map(|x| x + 2_000).sum::<i64>());
}

#[test]
fn an_unused_deep_chain_is_dropped_without_running() {
    let n = ember_engine::run(local(1), |ctx| {
        let base = ctx.parallelize((0..10u32).collect(), 2)?;
        let mut rdd = base.clone();
        for _ in 0..100_000 {
            rdd = rdd.map(|x| x);
        }
        assert_eq!(rdd.num_partitions(), 2);
        drop(rdd);
        base.count()
    })
    .unwrap();
    assert_eq!(n, Ok(10));
}
