//! Graph algorithms on an arranged edge list, each one live differential dataflow: PageRank
//! (a fixed number of iterations), connected components (label propagation to a fixpoint) and
//! reachability. Edges are `(source, destination)` pairs arranged by source.

use differential_dataflow::operators::iterate::Iterate;

use super::iterate::limit;
use super::{Arranged, View};
use crate::error::Result;

/// GraphX's damping: the rank every node keeps, whatever links to it.
pub const RESET_PROBABILITY: f64 = 0.15;

/// PageRank as GraphX's static `PageRank.run` computes it: every node starts at rank 1.0, and
/// each iteration sets `rank(v) = 0.15 + 0.85 * sum(rank(u) / out_degree(u))` over the edges
/// `u -> v` (a node without out-edges passes nothing on). The view holds `(node, rank bits)`
/// (`f64::to_bits`; [`ranks`] turns them back), for every node that appears in an edge.
pub fn pagerank(edges: &Arranged<u64, u64>, iterations: u64) -> Result<View<(u64, u64)>> {
    edges.view("pagerank", move |arranged| {
        let nodes = arranged
            .clone()
            .flat_map_ref(|s: &u64, d: &u64| [*s, *d])
            .distinct();
        let degrees = arranged
            .clone()
            .as_collection(|s: &u64, _: &u64| *s)
            .count();
        let initial = nodes.clone().map(|n| (n, 1.0f64.to_bits()));
        initial.iterate(move |scope, ranks| {
            let edges = arranged.enter(scope);
            let degrees = degrees.enter(scope).arrange_by_key();
            // Every node takes part in the sum, with a share of 0.0 when nothing links to it.
            let zeros = nodes.enter(scope).map(|n| (n, 0.0f64.to_bits()));
            let shares = ranks
                .arrange_by_key()
                .join_core(degrees, |n: &u64, r: &u64, d: &isize| {
                    Some((*n, (f64::from_bits(*r) / *d as f64).to_bits()))
                })
                .arrange_by_key()
                .join_core(edges, |_src: &u64, share: &u64, dst: &u64| {
                    Some((*dst, *share))
                });
            let next = shares.concat(zeros).reduce(|_node, shares, out| {
                // `shares` comes sorted, so the sum is the same however the work was split.
                let sum: f64 = shares
                    .iter()
                    .map(|(bits, m)| f64::from_bits(**bits) * *m as f64)
                    .sum();
                out.push((
                    (RESET_PROBABILITY + (1.0 - RESET_PROBABILITY) * sum).to_bits(),
                    1,
                ));
            });
            limit(next, Some(iterations))
        })
    })
}

/// `(node, rank)` from a [`pagerank`] view's records.
pub fn ranks(records: Vec<(u64, u64)>) -> Vec<(u64, f64)> {
    records
        .into_iter()
        .map(|(n, bits)| (n, f64::from_bits(bits)))
        .collect()
}

/// Connected components by label propagation: every node ends labelled with the smallest node
/// of its component. The edges must be given in both directions (for an undirected graph).
pub fn connected_components(edges: &Arranged<u64, u64>) -> Result<View<(u64, u64)>> {
    edges.view("connected_components", |arranged| {
        let nodes = arranged
            .clone()
            .flat_map_ref(|s: &u64, d: &u64| [*s, *d])
            .distinct()
            .map(|n| (n, n));
        nodes.clone().iterate(move |scope, labels| {
            let edges = arranged.enter(scope);
            labels
                .arrange_by_key()
                .join_core(edges, |_src: &u64, label: &u64, dst: &u64| {
                    Some((*dst, *label))
                })
                .concat(nodes.enter(scope))
                .reduce(|_node, labels, out| out.push((*labels[0].0, 1)))
        })
    })
}

/// The nodes reachable from `roots` along the edges (the roots included). Every worker passes
/// the same roots.
pub fn reachable(edges: &Arranged<u64, u64>, roots: &[u64]) -> Result<View<u64>> {
    // Worker 0 gives the roots; the others give nothing, so each root enters once.
    let mine: Vec<u64> = if edges.source().context().worker_index() == 0 {
        roots.to_vec()
    } else {
        Vec::new()
    };
    edges.view_with("reachable", &mine, |arranged, roots| {
        roots.clone().iterate(move |scope, reached| {
            let edges = arranged.enter(scope);
            reached
                .map(|n| (n, ()))
                .arrange_by_key()
                .join_core(edges, |_src: &u64, _: &(), dst: &u64| Some(*dst))
                .concat(roots.enter(scope))
                .distinct()
        })
    })
}
