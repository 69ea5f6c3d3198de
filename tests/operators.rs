//! Every operator against a sequential reference, across partition counts and worker counts.

use std::collections::{BTreeMap, BTreeSet};

use ember::prelude::*;
use proptest::prelude::*;

type Pair = (u8, i32);

fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .unwrap()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn grouped<V: Clone + Ord>(pairs: &[(u8, V)]) -> BTreeMap<u8, Vec<V>> {
    let mut m: BTreeMap<u8, Vec<V>> = BTreeMap::new();
    for (k, v) in pairs {
        m.entry(*k).or_default().push(v.clone());
    }
    m
}

/// Results of the pair-RDD operators, each normalized so order does not matter.
#[derive(Debug, PartialEq)]
struct PairResults {
    reduce: Vec<(u8, i64)>,
    fold: Vec<(u8, i64)>,
    aggregate: Vec<(u8, (i64, usize))>,
    combine: Vec<(u8, Vec<i32>)>,
    group: Vec<(u8, Vec<i32>)>,
    map_values: Vec<(u8, i64)>,
    flat_map_values: Vec<(u8, i32)>,
    keys: Vec<u8>,
    values: Vec<i32>,
    join: Vec<(u8, (i32, i32))>,
    left: Vec<(u8, (i32, Option<i32>))>,
    right: Vec<(u8, (Option<i32>, i32))>,
    full: Vec<(u8, (Option<i32>, Option<i32>))>,
    cogroup: Vec<(u8, (Vec<i32>, Vec<i32>))>,
    subtract: Vec<(u8, i32)>,
    sorted_asc: Vec<u8>,
    sorted_desc: Vec<u8>,
    partition_by: Vec<(u8, i32)>,
    count_by_key: Vec<(u8, u64)>,
}

fn pair_reference(data: &[Pair], other: &[Pair]) -> PairResults {
    let g = grouped(data);
    let h = grouped(other);
    let mut join = Vec::new();
    let mut left = Vec::new();
    let mut right = Vec::new();
    let mut full = Vec::new();
    let keys: BTreeSet<u8> = g.keys().chain(h.keys()).copied().collect();
    let mut cogroup = Vec::new();
    for k in &keys {
        let vs = g.get(k).cloned().unwrap_or_default();
        let ws = h.get(k).cloned().unwrap_or_default();
        cogroup.push((*k, (sorted(vs.clone()), sorted(ws.clone()))));
        for v in &vs {
            if ws.is_empty() {
                left.push((*k, (*v, None)));
                full.push((*k, (Some(*v), None)));
            }
            for w in &ws {
                join.push((*k, (*v, *w)));
                left.push((*k, (*v, Some(*w))));
                right.push((*k, (Some(*v), *w)));
                full.push((*k, (Some(*v), Some(*w))));
            }
        }
        if vs.is_empty() {
            for w in &ws {
                right.push((*k, (None, *w)));
                full.push((*k, (None, Some(*w))));
            }
        }
    }
    PairResults {
        reduce: g
            .iter()
            .map(|(k, vs)| (*k, vs.iter().map(|&v| v as i64).sum()))
            .collect(),
        fold: g
            .iter()
            .map(|(k, vs)| (*k, vs.iter().map(|&v| v as i64).sum::<i64>()))
            .collect(),
        aggregate: g
            .iter()
            .map(|(k, vs)| (*k, (vs.iter().map(|&v| v as i64).sum(), vs.len())))
            .collect(),
        combine: g.iter().map(|(k, vs)| (*k, sorted(vs.clone()))).collect(),
        group: g.iter().map(|(k, vs)| (*k, sorted(vs.clone()))).collect(),
        map_values: sorted(data.iter().map(|&(k, v)| (k, v as i64 * 2)).collect()),
        flat_map_values: sorted(
            data.iter()
                .flat_map(|&(k, v)| [(k, v), (k, v + 1)])
                .collect(),
        ),
        keys: sorted(data.iter().map(|p| p.0).collect()),
        values: sorted(data.iter().map(|p| p.1).collect()),
        join: sorted(join),
        left: sorted(left),
        right: sorted(right),
        full: sorted(full),
        cogroup,
        subtract: sorted(
            data.iter()
                .filter(|(k, _)| !h.contains_key(k))
                .copied()
                .collect(),
        ),
        sorted_asc: sorted(data.iter().map(|p| p.0).collect()),
        sorted_desc: {
            let mut v: Vec<u8> = data.iter().map(|p| p.0).collect();
            v.sort_by(|a, b| b.cmp(a));
            v
        },
        partition_by: sorted(data.to_vec()),
        count_by_key: g.iter().map(|(k, vs)| (*k, vs.len() as u64)).collect(),
    }
}

fn pair_ember(data: Vec<Pair>, other: Vec<Pair>, parts: usize, workers: usize) -> PairResults {
    ember::engine::run(conf(workers), move |ctx| {
        let r = ctx.parallelize(data.clone(), parts).unwrap();
        let o = ctx.parallelize(other.clone(), parts.max(2) - 1).unwrap();
        let norm_groups =
            |v: Vec<(u8, Vec<i32>)>| sorted(v.into_iter().map(|(k, vs)| (k, sorted(vs))).collect());
        PairResults {
            reduce: sorted(
                r.map_values(|v| v as i64)
                    .reduce_by_key(|a, b| a + b)
                    .collect()
                    .unwrap(),
            ),
            fold: sorted(
                r.map_values(|v| v as i64)
                    .fold_by_key(0, |a, b| a + b)
                    .collect()
                    .unwrap(),
            ),
            aggregate: sorted(
                r.aggregate_by_key(
                    (0i64, 0usize),
                    |(s, n), v| (s + v as i64, n + 1),
                    |a, b| (a.0 + b.0, a.1 + b.1),
                )
                .collect()
                .unwrap(),
            ),
            combine: norm_groups(
                r.combine_by_key(
                    |v| vec![v],
                    |mut c, v| {
                        c.push(v);
                        c
                    },
                    |mut a, mut b| {
                        a.append(&mut b);
                        a
                    },
                    Some(3),
                )
                .collect()
                .unwrap(),
            ),
            group: norm_groups(r.group_by_key().collect().unwrap()),
            map_values: sorted(r.map_values(|v| v as i64 * 2).collect().unwrap()),
            flat_map_values: sorted(r.flat_map_values(|v| [v, v + 1]).collect().unwrap()),
            keys: sorted(r.keys().collect().unwrap()),
            values: sorted(r.values().collect().unwrap()),
            join: sorted(r.join(&o).collect().unwrap()),
            left: sorted(r.left_outer_join(&o).collect().unwrap()),
            right: sorted(r.right_outer_join(&o).collect().unwrap()),
            full: sorted(r.full_outer_join(&o).collect().unwrap()),
            cogroup: sorted(
                r.cogroup(&o)
                    .collect()
                    .unwrap()
                    .into_iter()
                    .map(|(k, (a, b))| (k, (sorted(a), sorted(b))))
                    .collect(),
            ),
            subtract: sorted(r.subtract_by_key(&o).collect().unwrap()),
            sorted_asc: r
                .sort_by_key(true, Some(3))
                .unwrap()
                .keys()
                .collect()
                .unwrap(),
            sorted_desc: r
                .sort_by_key(false, None)
                .unwrap()
                .keys()
                .collect()
                .unwrap(),
            partition_by: sorted(r.partition_by(HashPartitioner::new(5)).collect().unwrap()),
            count_by_key: sorted(r.count_by_key().unwrap().into_iter().collect()),
        }
    })
    .unwrap()
}

/// Results of the element-wise operators and actions, in the order Ember promises.
#[derive(Debug, PartialEq)]
struct ElemResults {
    collect: Vec<i32>,
    map: Vec<i64>,
    filter: Vec<i32>,
    flat_map: Vec<i32>,
    map_partitions: Vec<i32>,
    with_index_len: usize,
    union: Vec<i32>,
    distinct: Vec<i32>,
    zip_with_index: Vec<(i32, u64)>,
    key_by: Vec<(bool, i32)>,
    coalesce: Vec<i32>,
    repartition: Vec<i32>,
    cartesian: Vec<(i32, i32)>,
    count: u64,
    reduce: Option<i64>,
    fold: i64,
    aggregate: (i64, u64),
    take: Vec<i32>,
    first: Option<i32>,
    take_ordered: Vec<i32>,
    top: Vec<i32>,
    count_by_value: Vec<(i32, u64)>,
    sort_by: Vec<i32>,
    glom_total: usize,
}

fn elem_reference(data: &[i32], parts: usize) -> ElemResults {
    let wide: Vec<i64> = data.iter().map(|&x| x as i64).collect();
    let small: Vec<i32> = data.iter().take(3).copied().collect();
    let mut counts: BTreeMap<i32, u64> = BTreeMap::new();
    for &x in data {
        *counts.entry(x).or_default() += 1;
    }
    ElemResults {
        collect: data.to_vec(),
        map: wide.iter().map(|x| x * 3).collect(),
        filter: data.iter().filter(|&&x| x % 2 == 0).copied().collect(),
        flat_map: data
            .iter()
            .flat_map(|&x| vec![x; (x.rem_euclid(3)) as usize])
            .collect(),
        map_partitions: data.iter().map(|x| x + 1).collect(),
        with_index_len: parts,
        union: data.iter().chain(data.iter()).copied().collect(),
        distinct: counts.keys().copied().collect(),
        zip_with_index: data
            .iter()
            .enumerate()
            .map(|(i, &x)| (x, i as u64))
            .collect(),
        key_by: data.iter().map(|&x| (x > 0, x)).collect(),
        coalesce: sorted(data.to_vec()),
        repartition: sorted(data.to_vec()),
        cartesian: sorted(
            data.iter()
                .flat_map(|&a| small.iter().map(move |&b| (a, b)))
                .collect(),
        ),
        count: data.len() as u64,
        reduce: wide.iter().copied().reduce(|a, b| a + b),
        fold: wide.iter().sum(),
        aggregate: (wide.iter().sum(), data.len() as u64),
        take: data.iter().take(5).copied().collect(),
        first: data.first().copied(),
        take_ordered: sorted(data.to_vec()).into_iter().take(4).collect(),
        top: {
            let mut v = data.to_vec();
            v.sort_by(|a, b| b.cmp(a));
            v.truncate(4);
            v
        },
        count_by_value: counts.into_iter().collect(),
        sort_by: {
            let mut v = data.to_vec();
            v.sort_by_key(|x| x.rem_euclid(7));
            v.into_iter().map(|x| x.rem_euclid(7)).collect()
        },
        glom_total: data.len(),
    }
}

fn elem_ember(data: Vec<i32>, parts: usize, workers: usize) -> ElemResults {
    ember::engine::run(conf(workers), move |ctx| {
        let r = ctx.parallelize(data.clone(), parts).unwrap();
        let small = ctx
            .parallelize(data.iter().take(3).copied().collect(), 2)
            .unwrap();
        ElemResults {
            collect: r.collect().unwrap(),
            map: r.map(|x| x as i64 * 3).collect().unwrap(),
            filter: r.filter(|x| x % 2 == 0).collect().unwrap(),
            flat_map: r
                .flat_map(|x| vec![x; (x.rem_euclid(3)) as usize])
                .collect()
                .unwrap(),
            map_partitions: r
                .map_partitions(|it| Box::new(it.map(|x| x + 1)))
                .collect()
                .unwrap(),
            with_index_len: r
                .map_partitions_with_index(|i, _| Box::new(std::iter::once(i)))
                .collect()
                .unwrap()
                .len(),
            union: r.union(&r).collect().unwrap(),
            distinct: sorted(r.distinct().collect().unwrap()),
            zip_with_index: r.zip_with_index().unwrap().collect().unwrap(),
            key_by: r.key_by(|x| *x > 0).collect().unwrap(),
            coalesce: sorted(r.coalesce(2).unwrap().collect().unwrap()),
            repartition: sorted(r.repartition(3).unwrap().collect().unwrap()),
            cartesian: sorted(r.cartesian(&small).collect().unwrap()),
            count: r.count().unwrap(),
            reduce: r.map(|x| x as i64).reduce(|a, b| a + b).unwrap(),
            fold: r.map(|x| x as i64).fold(0, |a, b| a + b).unwrap(),
            aggregate: r
                .aggregate(
                    (0i64, 0u64),
                    |(s, n), x| (s + x as i64, n + 1),
                    |a, b| (a.0 + b.0, a.1 + b.1),
                )
                .unwrap(),
            take: r.take(5).unwrap(),
            first: r.first().unwrap(),
            take_ordered: r.take_ordered(4).unwrap(),
            top: r.top(4).unwrap(),
            count_by_value: sorted(r.count_by_value().unwrap().into_iter().collect()),
            sort_by: r
                .sort_by(|x| x.rem_euclid(7), true)
                .unwrap()
                .map(|x| x.rem_euclid(7))
                .collect()
                .unwrap(),
            glom_total: r.glom().collect().unwrap().iter().map(Vec::len).sum(),
        }
    })
    .unwrap()
}

fn workers() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), Just(2), Just(4)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn pair_operators_match_reference(
        data in prop::collection::vec((0u8..12, -50i32..50), 0..60),
        other in prop::collection::vec((0u8..16, -50i32..50), 0..30),
        parts in 1usize..6,
        workers in workers(),
    ) {
        let expected = pair_reference(&data, &other);
        let got = pair_ember(data, other, parts, workers);
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn element_operators_match_reference(
        data in prop::collection::vec(-40i32..40, 0..80),
        parts in 1usize..7,
        workers in workers(),
    ) {
        let expected = elem_reference(&data, parts);
        let got = elem_ember(data, parts, workers);
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn sample_is_deterministic_and_near_fraction() {
    let (a, b, with_rep) = ember::engine::run(conf(2), |ctx| {
        let r = ctx.range(0, 10_000, 1, 4).unwrap();
        let a = r.sample(false, 0.3, 7).unwrap().collect().unwrap();
        let b = r.sample(false, 0.3, 7).unwrap().collect().unwrap();
        let with_rep = r.sample(true, 2.0, 7).unwrap().count().unwrap();
        (a, b, with_rep)
    })
    .unwrap();
    assert_eq!(a, b, "same seed, same sample");
    assert!((2700..3300).contains(&a.len()), "kept {}", a.len());
    assert!(
        a.windows(2).all(|w| w[0] < w[1]),
        "sampling keeps order and never repeats without replacement"
    );
    assert!(
        (18_500..21_500).contains(&with_rep),
        "with replacement kept {with_rep}"
    );
}

#[test]
fn range_matches_std() {
    for workers in [1, 3] {
        let got = ember::engine::run(conf(workers), |ctx| {
            (
                ctx.range(0, 101, 7, 4).unwrap().collect().unwrap(),
                ctx.range(10, -10, -3, 3).unwrap().collect().unwrap(),
                ctx.range(5, 5, 1, 2).unwrap().count().unwrap(),
            )
        })
        .unwrap();
        assert_eq!(got.0, (0..101).step_by(7).collect::<Vec<i64>>());
        assert_eq!(got.1, vec![10, 7, 4, 1, -2, -5, -8]);
        assert_eq!(got.2, 0);
    }
}
