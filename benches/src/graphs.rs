//! Graph workloads for the differential benchmark: the edge lists (Debian's dependency graph,
//! R-MAT graphs) and the single-thread baselines (COST) that Ember's PageRank and connected
//! components are measured against.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use crate::error::BenchError;
use crate::mix::SplitMix64;

/// The edges of a `source<TAB>target` file (gzip-compressed when it ends in `.gz`), with nodes
/// numbered by name in sorted order.
pub fn read_tsv_edges(path: &Path) -> Result<Vec<(u64, u64)>, BenchError> {
    let file = std::fs::File::open(path).map_err(|e| BenchError::io(path, e))?;
    let mut text = String::new();
    let read = if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_string(&mut text)
    } else {
        std::io::BufReader::new(file).read_to_string(&mut text)
    };
    read.map_err(|e| BenchError::io(path, e))?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (a, b) = line.split_once('\t').ok_or_else(|| {
            BenchError::Input(format!(
                "{} line {}: expected `source<TAB>target`, found `{line}`",
                path.display(),
                i + 1
            ))
        })?;
        pairs.push((a, b));
    }
    let names: BTreeSet<&str> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let id: HashMap<&str, u64> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, i as u64))
        .collect();
    Ok(pairs.iter().map(|(a, b)| (id[a], id[b])).collect())
}

/// An R-MAT graph (Chakrabarti et al.; a = 0.57, b = c = 0.19) of `edges` edges over `2^scale`
/// nodes from `seed`, self-loops and duplicates kept out.
pub fn rmat_edges(scale: u32, edges: usize, seed: u64) -> Vec<(u64, u64)> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(edges);
    let mut seen = rustc_hash::FxHashSet::default();
    while out.len() < edges {
        let (mut s, mut d) = (0u64, 0u64);
        for _ in 0..scale {
            let r = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let (bs, bd) = if r < 0.57 {
                (0, 0)
            } else if r < 0.76 {
                (0, 1)
            } else if r < 0.95 {
                (1, 0)
            } else {
                (1, 1)
            };
            s = s * 2 + bs;
            d = d * 2 + bd;
        }
        if s != d && seen.insert((s, d)) {
            out.push((s, d));
        }
    }
    out
}

/// A compact adjacency: the nodes that occur in an edge, renumbered densely, and per node its
/// out-edges.
struct Csr {
    nodes: Vec<u64>,
    offsets: Vec<usize>,
    targets: Vec<usize>,
}

fn csr(edges: &[(u64, u64)]) -> Csr {
    let mut nodes: Vec<u64> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let index = |n: u64| nodes.binary_search(&n).expect("node of an edge");
    let mut offsets = vec![0usize; nodes.len() + 1];
    for &(s, _) in edges {
        offsets[index(s) + 1] += 1;
    }
    for i in 0..nodes.len() {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut targets = vec![0usize; edges.len()];
    for &(s, d) in edges {
        let i = index(s);
        targets[fill[i]] = index(d);
        fill[i] += 1;
    }
    Csr {
        nodes,
        offsets,
        targets,
    }
}

/// GraphX's static PageRank on one thread: rank 1.0, then `iterations` times
/// `0.15 + 0.85 * sum(rank(u) / outdeg(u))`. Returns `(node, rank)` sorted by node.
pub fn pagerank_single_thread(edges: &[(u64, u64)], iterations: usize) -> Vec<(u64, f64)> {
    let g = csr(edges);
    let n = g.nodes.len();
    let mut rank = vec![1.0f64; n];
    let mut sum = vec![0.0f64; n];
    for _ in 0..iterations {
        sum.iter_mut().for_each(|x| *x = 0.0);
        for (u, r) in rank.iter().enumerate() {
            let (lo, hi) = (g.offsets[u], g.offsets[u + 1]);
            if hi > lo {
                let share = r / (hi - lo) as f64;
                for &v in &g.targets[lo..hi] {
                    sum[v] += share;
                }
            }
        }
        for (r, s) in rank.iter_mut().zip(&sum) {
            *r = 0.15 + 0.85 * s;
        }
    }
    g.nodes.into_iter().zip(rank).collect()
}

/// Connected components (edges undirected) on one thread by union-find: `(node, smallest node
/// of its component)` sorted by node.
pub fn components_single_thread(edges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let g = csr(edges);
    let mut parent: Vec<usize> = (0..g.nodes.len()).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for u in 0..g.nodes.len() {
        for &v in &g.targets[g.offsets[u]..g.offsets[u + 1]] {
            let (a, b) = (find(&mut parent, u), find(&mut parent, v));
            // Dense indices keep node order, so the smaller root is the smaller node.
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    (0..g.nodes.len())
        .map(|u| (g.nodes[u], g.nodes[find(&mut parent, u)]))
        .collect()
}

/// A 1% change of a graph: every hundredth edge removed and about as many new edges added
/// between nodes that occur in it (none a self-loop or already there).
pub struct Update {
    /// The new edges.
    pub added: Vec<(u64, u64)>,
    /// The edges taken out.
    pub removed: Vec<(u64, u64)>,
    /// The graph after the change.
    pub updated: Vec<(u64, u64)>,
}

/// The 1% change of `edges` used by the tests and the benchmark.
pub fn one_percent_update(edges: &[(u64, u64)]) -> Update {
    let mut nodes: Vec<u64> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let n = nodes.len().max(1) as u64;
    let removed: Vec<(u64, u64)> = edges.iter().copied().step_by(100).collect();
    let existing: rustc_hash::FxHashSet<(u64, u64)> = edges.iter().copied().collect();
    let mut added: Vec<(u64, u64)> = (0..edges.len() as u64 / 100)
        .map(|i| {
            (
                nodes[((i * 7919) % n) as usize],
                nodes[((i * 104_729 + 13) % n) as usize],
            )
        })
        .filter(|&(a, b)| a != b && !existing.contains(&(a, b)))
        .collect();
    added.sort_unstable();
    added.dedup();
    let gone: rustc_hash::FxHashSet<(u64, u64)> = removed.iter().copied().collect();
    let updated = edges
        .iter()
        .copied()
        .filter(|e| !gone.contains(e))
        .chain(added.iter().copied())
        .collect();
    Update {
        added,
        removed,
        updated,
    }
}

/// Every edge in both directions (an undirected graph as a directed one).
pub fn both_directions(edges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    edges.iter().flat_map(|&(a, b)| [(a, b), (b, a)]).collect()
}
