//! Graph algorithms on an arranged edge list, each one live differential dataflow: PageRank
//! (a fixed number of iterations), connected components (label propagation to a fixpoint) and
//! reachability. Edges are `(source, destination)` pairs arranged by source.

use differential_dataflow::algorithms::graphs::propagate::propagate_core;
use differential_dataflow::operators::iterate::Iterate;

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
        // (node, out-degree) for every node: its out-edges counted, plus one for itself.
        let degrees = arranged
            .clone()
            .as_collection(|s: &u64, _: &u64| *s)
            .concat(nodes.clone())
            .count()
            .map(|(n, c)| (n, c as u64 - 1));
        if iterations == 0 {
            return nodes.map(|n| (n, 1.0f64.to_bits()));
        }
        let facts = degrees.clone().map(|(n, d)| (n, Part::Degree(d)));
        // What each node with out-edges passes along each of them: rank / out-degree.
        let mut shares = degrees
            .filter(|(_, d)| *d > 0)
            .map(|(n, d)| (n, (1.0 / d as f64).to_bits()));
        // A fixed number of iterations is unrolled into a chain of stages rather than run as
        // a loop: each stage then holds one version of the ranks, where a loop's operators
        // would keep every iteration's differences (its timestamps are only partly ordered).
        for i in 0..iterations {
            let last = i + 1 == iterations;
            shares = shares
                .arrange_by_key()
                .join_core(arranged.clone(), |_src: &u64, share: &u64, dst: &u64| {
                    Some((*dst, Part::Share(*share)))
                })
                .concat(facts.clone())
                .reduce(move |_node, parts, out| {
                    // `parts` comes sorted, so the sum is the same however the work was split.
                    let (mut sum, mut degree) = (0.0f64, 0u64);
                    for (part, m) in parts {
                        match part {
                            Part::Degree(d) => degree = *d,
                            Part::Share(bits) => sum += f64::from_bits(*bits) * *m as f64,
                        }
                    }
                    let rank = RESET_PROBABILITY + (1.0 - RESET_PROBABILITY) * sum;
                    if last {
                        out.push((rank.to_bits(), 1));
                    } else if degree > 0 {
                        out.push(((rank / degree as f64).to_bits(), 1));
                    }
                });
        }
        shares
    })
}

/// What a PageRank stage knows of a node: its out-degree, and the shares its in-edges bring.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
enum Part {
    Degree(u64),
    Share(u64),
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
        // Differential's label propagation over the arrangement as it is: labels enter the loop
        // in order of magnitude (label l at round ~256 * log2(l)), so small labels spread before
        // large ones are proposed and mostly never are.
        propagate_core(arranged, nodes, |label: &u64| *label)
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
