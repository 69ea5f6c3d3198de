//! Fixpoint jobs on differential dataflow, on Debian 12's package dependency graph (shipped in
//! `data/graphs`): `cargo run --release --example graph_fixpoints [FILE] [key=value...]`.
//!
//! FILE is a `package<TAB>dependency` list (gzip allowed); by default the Debian graph. Runs on
//! `local[2]` unless told otherwise. Prints the ten packages of highest PageRank (20
//! iterations), the number of connected components, how many packages `0ad` needs in all
//! (reachability along dependencies), and the components again after an update that removes
//! every dependency on `perl`, computed by differences.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use ember::engine::differential::graph;
use ember::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let (conf, args) = common::conf_from_args()?;
    let path = match args.first() {
        Some(p) => std::path::PathBuf::from(p),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/graphs/debian-bookworm-depends.tsv.gz"),
    };
    let input = path.clone();
    let report = ember::engine::run(conf, move |ctx| -> Result<_, EngineError> {
        // Number the packages by name: every worker computes the same numbering.
        let pairs: Vec<(String, String)> = ctx
            .text_file(&input, ctx.num_workers() * 2)?
            .map(|line| match line.split_once('\t') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (line, String::new()),
            })
            .collect()?;
        if let Some((bad, _)) = pairs.iter().find(|(_, b)| b.is_empty()) {
            return Err(EngineError::InvalidArgument {
                operation: "graph_fixpoints".into(),
                reason: format!(
                    "{}: line `{bad}` is not `package<TAB>dependency`",
                    input.display()
                ),
            });
        }
        let names: Vec<String> = pairs
            .iter()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let id: HashMap<&str, u64> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u64))
            .collect();
        let edges: Vec<(u64, u64)> = pairs
            .iter()
            .map(|(a, b)| (id[a.as_str()], id[b.as_str()]))
            .collect();
        let partitions = ctx.num_workers() * 2;

        let dependencies = ctx
            .parallelize(edges.clone(), partitions)?
            .arrange_by_key()?;
        let mut ranks = graph::ranks(graph::pagerank(&dependencies, 20)?.collect()?);
        ranks.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<(String, f64)> = ranks
            .iter()
            .take(10)
            .map(|(n, r)| (names[*n as usize].clone(), *r))
            .collect();
        let needs = match id.get("0ad") {
            Some(&root) => graph::reachable(&dependencies, &[root])?.collect()?.len() - 1,
            None => 0,
        };

        let both: Vec<(u64, u64)> = edges.iter().flat_map(|&(a, b)| [(a, b), (b, a)]).collect();
        let undirected = ctx
            .parallelize(both.clone(), partitions)?
            .arrange_by_key()?;
        let components = graph::connected_components(&undirected)?;
        let count = |labels: Vec<(u64, u64)>| {
            labels
                .into_iter()
                .map(|l| l.1)
                .collect::<BTreeSet<_>>()
                .len()
        };
        let before = count(components.collect()?);
        let perl = id.get("perl").copied().unwrap_or(u64::MAX);
        let removed: Vec<(u64, u64)> = both
            .into_iter()
            .filter(|&(a, b)| a == perl || b == perl)
            .collect();
        let t = Instant::now();
        undirected.update(
            &ctx.parallelize(Vec::new(), 1)?,
            &ctx.parallelize(removed.clone(), partitions)?,
        )?;
        let after = count(components.collect()?);
        let update_s = t.elapsed().as_secs_f64();
        Ok((
            names.len(),
            edges.len(),
            top,
            needs,
            before,
            removed.len() / 2,
            after,
            update_s,
        ))
    })??;
    let (nodes, edges, top, needs, before, removed, after, update_s) = report;
    println!(
        "{}: {edges} dependencies between {nodes} packages",
        path.display()
    );
    println!("PageRank after 20 iterations, highest ten:");
    for (name, rank) in top {
        println!("{rank:>12.2}  {name}");
    }
    println!("0ad needs {needs} packages in all");
    println!("{before} connected components; without the {removed} dependencies on perl: {after} (updated by differences in {update_s:.3} s)");
    println!("elapsed: {:.3} s", started.elapsed().as_secs_f64());
    Ok(())
}
