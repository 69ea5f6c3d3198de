//! Fixpoint jobs on differential dataflow, on Debian 12's package dependency graph (274,876
//! edges, shipped in `data/graphs`): PageRank after 20 iterations equals a sequential
//! reference to 1e-9, connected components equal a union-find's labels, reachability equals a
//! breadth-first search, and after removing 1% of the edges and adding 1% new ones the updated
//! components equal a recomputation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

use ember::engine::differential::graph;
use ember::prelude::*;

/// The graph's edges with packages numbered by name (sorted), so every run numbers alike.
fn debian_edges() -> Vec<(u64, u64)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/graphs/debian-bookworm-depends.tsv.gz"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let pairs: Vec<(&str, &str)> = text
        .lines()
        .map(|l| l.split_once('\t').expect("package<TAB>dependency"))
        .collect();
    let names: BTreeSet<&str> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let id: HashMap<&str, u64> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, i as u64))
        .collect();
    pairs.iter().map(|(a, b)| (id[a], id[b])).collect()
}

fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .unwrap()
}

/// GraphX's static PageRank, sequentially: rank 1.0, then `iterations` times
/// `0.15 + 0.85 * sum(rank(u) / outdeg(u))`.
fn pagerank_reference(edges: &[(u64, u64)], iterations: usize) -> BTreeMap<u64, f64> {
    let mut degree: HashMap<u64, f64> = HashMap::new();
    let mut rank: BTreeMap<u64, f64> = BTreeMap::new();
    for &(s, d) in edges {
        *degree.entry(s).or_default() += 1.0;
        rank.insert(s, 1.0);
        rank.insert(d, 1.0);
    }
    for _ in 0..iterations {
        let mut sum: BTreeMap<u64, f64> = rank.keys().map(|&n| (n, 0.0)).collect();
        for &(s, d) in edges {
            *sum.get_mut(&d).unwrap() += rank[&s] / degree[&s];
        }
        rank = sum.into_iter().map(|(n, x)| (n, 0.15 + 0.85 * x)).collect();
    }
    rank
}

/// Each node's smallest fellow member of its (undirected) component, by union-find.
fn components_reference(edges: &[(u64, u64)]) -> BTreeMap<u64, u64> {
    fn find(parent: &mut HashMap<u64, u64>, x: u64) -> u64 {
        let p = parent[&x];
        if p == x {
            return x;
        }
        let root = find(parent, p);
        parent.insert(x, root);
        root
    }
    let mut parent: HashMap<u64, u64> = HashMap::new();
    for &(a, b) in edges {
        parent.entry(a).or_insert(a);
        parent.entry(b).or_insert(b);
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        // The smaller root wins, so each root is its component's smallest node.
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        parent.insert(hi, lo);
    }
    let nodes: Vec<u64> = parent.keys().copied().collect();
    nodes
        .into_iter()
        .map(|n| (n, find(&mut parent, n)))
        .collect()
}

fn both_directions(edges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    edges.iter().flat_map(|&(a, b)| [(a, b), (b, a)]).collect()
}

#[test]
fn pagerank_equals_the_sequential_reference() {
    let edges = debian_edges();
    let want = pagerank_reference(&edges, 20);
    for workers in [1, 2] {
        let input = edges.clone();
        let got = ember::engine::run(conf(workers), move |ctx| {
            let arranged = ctx.parallelize(input.clone(), 4)?.arrange_by_key()?;
            let view = graph::pagerank(&arranged, 20)?;
            Ok::<_, EngineError>(graph::ranks(view.collect()?))
        })
        .unwrap()
        .unwrap();
        assert_eq!(got.len(), want.len(), "nodes on {workers} workers");
        let worst = got
            .iter()
            .map(|(n, r)| (r - want[n]).abs())
            .fold(0.0f64, f64::max);
        assert!(
            worst <= 1e-9,
            "largest rank difference {worst} on {workers} workers"
        );
        // libc6 has tens of thousands of dependents: the top rank is far above the floor.
        let top = got.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        assert!(top > 100.0, "top rank {top}");
    }
}

#[test]
fn components_and_reachability_equal_the_references_and_updates_equal_a_recomputation() {
    let edges = debian_edges();
    let want = components_reference(&edges);
    // 1% of the edges removed, and 1% new ones added (between existing nodes).
    let removed: Vec<(u64, u64)> = edges.iter().copied().step_by(100).collect();
    let nodes = want.len() as u64;
    let existing: BTreeSet<(u64, u64)> = edges.iter().copied().collect();
    let added: Vec<(u64, u64)> = (0..edges.len() as u64 / 100)
        .map(|i| ((i * 7919) % nodes, (i * 104_729 + 13) % nodes))
        .filter(|&(a, b)| a != b && !existing.contains(&(a, b)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let removed_set: BTreeSet<(u64, u64)> = removed.iter().copied().collect();
    let updated: Vec<(u64, u64)> = edges
        .iter()
        .copied()
        .filter(|e| !removed_set.contains(e))
        .chain(added.iter().copied())
        .collect();
    let want_updated = components_reference(&updated);
    // Reachability from the first package, by breadth-first search along dependencies.
    let root = edges[0].0;
    let mut adjacency: HashMap<u64, Vec<u64>> = HashMap::new();
    for &(a, b) in &edges {
        adjacency.entry(a).or_default().push(b);
    }
    let mut want_reach: BTreeSet<u64> = BTreeSet::from([root]);
    let mut frontier = vec![root];
    while let Some(n) = frontier.pop() {
        for &m in adjacency.get(&n).map_or(&[][..], |v| v.as_slice()) {
            if want_reach.insert(m) {
                frontier.push(m);
            }
        }
    }

    let (sym, sym_updated, add, rem, directed) = (
        both_directions(&edges),
        both_directions(&updated),
        both_directions(&added),
        both_directions(&removed),
        edges.clone(),
    );
    let (before, after, recomputed, reach) = ember::engine::run(conf(2), move |ctx| {
        let graph_edges = ctx.parallelize(sym.clone(), 4)?.arrange_by_key()?;
        let components = graph::connected_components(&graph_edges)?;
        let before = components.collect()?;
        graph_edges.update(
            &ctx.parallelize(add.clone(), 2)?,
            &ctx.parallelize(rem.clone(), 2)?,
        )?;
        let after = components.collect()?;
        // A recomputation from scratch over the updated edge list, in the same run.
        let fresh = ctx.parallelize(sym_updated.clone(), 4)?.arrange_by_key()?;
        let recomputed = graph::connected_components(&fresh)?.collect()?;
        let dependencies = ctx.parallelize(directed.clone(), 4)?.arrange_by_key()?;
        let reach = graph::reachable(&dependencies, &[root])?.collect()?;
        Ok::<_, EngineError>((before, after, recomputed, reach))
    })
    .unwrap()
    .unwrap();
    assert_eq!(before.into_iter().collect::<BTreeMap<_, _>>(), want);
    assert_eq!(after, recomputed);
    assert_eq!(after.into_iter().collect::<BTreeMap<_, _>>(), want_updated);
    assert_eq!(reach.into_iter().collect::<BTreeSet<_>>(), want_reach);
    assert!(want_reach.len() > 1);
}
