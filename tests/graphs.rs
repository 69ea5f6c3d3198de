//! Fixpoint jobs on differential dataflow, on Debian 12's package dependency graph (274,876
//! edges, shipped in `data/graphs`): PageRank after 20 iterations equals a sequential
//! reference to 1e-9, connected components equal a union-find's labels, reachability equals a
//! depth-first search, and after removing 1% of the edges and adding 1% new ones the updated
//! components equal a recomputation. The sequential references are the benchmark's
//! single-thread baselines (`ember_bench::graphs`).

use std::collections::{BTreeSet, HashMap};

use ember::engine::differential::graph;
use ember::prelude::*;
use ember_bench::graphs::{
    both_directions, components_single_thread, one_percent_update, pagerank_single_thread,
    read_tsv_edges,
};

/// The graph's edges with packages numbered by name (sorted), so every run numbers alike.
fn debian_edges() -> Vec<(u64, u64)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/graphs/debian-bookworm-depends.tsv.gz"
    );
    read_tsv_edges(std::path::Path::new(path)).unwrap()
}

fn conf(workers: usize) -> Conf {
    Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .unwrap()
}

#[test]
fn pagerank_equals_the_sequential_reference() {
    let edges = debian_edges();
    let want = pagerank_single_thread(&edges, 20);
    for workers in [1, 2] {
        let input = edges.clone();
        let mut got = ember::engine::run(conf(workers), move |ctx| {
            let arranged = ctx.parallelize(input.clone(), 4)?.arrange_by_key()?;
            let view = graph::pagerank(&arranged, 20)?;
            Ok::<_, EngineError>(graph::ranks(view.collect()?))
        })
        .unwrap()
        .unwrap();
        got.sort_by_key(|r| r.0);
        assert_eq!(got.len(), want.len(), "nodes on {workers} workers");
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| {
                assert_eq!(g.0, w.0);
                (g.1 - w.1).abs()
            })
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
    let want = components_single_thread(&edges);
    let update = one_percent_update(&edges);
    assert!(update.added.len() > 2000 && update.removed.len() > 2000);
    let want_updated = components_single_thread(&update.updated);
    assert_ne!(want, want_updated, "the update changes some components");
    // Reachability from the first package, by depth-first search along dependencies.
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
        both_directions(&update.updated),
        both_directions(&update.added),
        both_directions(&update.removed),
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
    assert_eq!(before, want);
    assert_eq!(after, recomputed);
    assert_eq!(after, want_updated);
    assert_eq!(reach.into_iter().collect::<BTreeSet<_>>(), want_reach);
    assert!(want_reach.len() > 1);
}
