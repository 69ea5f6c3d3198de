//! The differential benchmark: PageRank (20 iterations) and connected components with Ember's
//! differential `iterate` against the same jobs written as one RDD job per iteration and a
//! single-thread Rust baseline (COST), on Debian's dependency graph and on an R-MAT graph; and
//! ten joins against one arranged table against ten plain joins. Every figure comes from this
//! one run, and the answers are checked against each other.
//!
//! ```text
//! ember-graph-bench [--graph data/graphs/debian-bookworm-depends.tsv.gz] [--rmat-edges 1000000]
//!                   [--join-rows 1000000] [--workers 2] [--iterations 20]
//! ```
//!
//! Prints one JSON line per measurement, then a table.

use std::path::PathBuf;
use std::time::Instant;

use ember_bench::graphs::{
    both_directions, components_single_thread, one_percent_update, pagerank_single_thread,
    read_tsv_edges, rmat_edges,
};
use ember_engine::differential::graph;
use ember_engine::prelude::*;
use serde_json::json;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    graph: PathBuf,
    rmat_edges: usize,
    join_rows: u64,
    workers: usize,
    iterations: u64,
    /// Write the graphs' numbered edge lists here (for GraphX) and stop.
    write_edges: Option<PathBuf>,
    /// GraphX's result lines, to print beside Ember's and check against them.
    peer: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        graph: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/graphs/debian-bookworm-depends.tsv.gz"
        )),
        rmat_edges: 1_000_000,
        join_rows: 1_000_000,
        workers: 2,
        iterations: 20,
        write_edges: None,
        peer: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: `{v}` is not a count"))
        };
        match flag.as_str() {
            "--graph" => a.graph = PathBuf::from(value),
            "--rmat-edges" => a.rmat_edges = num(&value)? as usize,
            "--join-rows" => a.join_rows = num(&value)?,
            "--workers" => a.workers = num(&value)?.max(1) as usize,
            "--iterations" => a.iterations = num(&value)?,
            "--write-edges" => a.write_edges = Some(PathBuf::from(value)),
            "--peer" => a.peer = Some(PathBuf::from(value)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

/// One measured figure, printed as a JSON line and kept for the table.
struct Row {
    graph: String,
    job: &'static str,
    system: &'static str,
    seconds: f64,
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ember-graph-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("ember-graph-bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let conf = Conf::new().with("ember.master", &format!("local[{}]", args.workers))?;
    let mut rows = Vec::new();
    let debian = read_tsv_edges(&args.graph)?;
    let rmat_scale = (args.rmat_edges as f64 / 8.0).log2().ceil().max(4.0) as u32;
    let rmat = rmat_edges(rmat_scale, args.rmat_edges, 0x0045_4D42_4552);
    let mut graphs = vec![("debian".to_string(), debian)];
    if args.rmat_edges > 0 {
        graphs.push((format!("rmat-{}", args.rmat_edges), rmat));
    }
    if let Some(dir) = &args.write_edges {
        std::fs::create_dir_all(dir)?;
        for (name, edges) in &graphs {
            let mut text = String::with_capacity(edges.len() * 16);
            for (a, b) in edges {
                text.push_str(&format!("{a}\t{b}\n"));
            }
            let path = dir.join(format!("{name}.edges"));
            std::fs::write(&path, text)?;
            println!("{name}={}", path.display());
        }
        return Ok(());
    }
    let peer: Vec<serde_json::Value> = match &args.peer {
        Some(p) => std::fs::read_to_string(p)?
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(serde_json::from_str)
            .collect::<std::result::Result<_, _>>()?,
        None => Vec::new(),
    };
    for (name, edges) in graphs {
        graph_jobs(&conf, args, &name, edges, &mut rows, &peer)?;
    }
    repeated_joins(&conf, args.join_rows, &mut rows)?;
    print_table(&rows, args.workers);
    Ok(())
}

fn record(rows: &mut Vec<Row>, graph: &str, job: &'static str, system: &'static str, s: f64) {
    println!(
        "{}",
        json!({"graph": graph, "job": job, "system": system, "seconds": s})
    );
    rows.push(Row {
        graph: graph.to_string(),
        job,
        system,
        seconds: s,
    });
}

/// PageRank and connected components three ways on one graph; the answers must agree.
fn graph_jobs(
    conf: &Conf,
    args: &Args,
    name: &str,
    edges: Vec<(u64, u64)>,
    rows: &mut Vec<Row>,
    peer: &[serde_json::Value],
) -> Result<(), Box<dyn std::error::Error>> {
    let iterations = args.iterations;
    let t = Instant::now();
    let reference = pagerank_single_thread(&edges, iterations as usize);
    record(
        rows,
        name,
        "pagerank",
        "single thread",
        t.elapsed().as_secs_f64(),
    );
    let symmetric = both_directions(&edges);
    let t = Instant::now();
    let components = components_single_thread(&edges);
    record(
        rows,
        name,
        "components",
        "single thread",
        t.elapsed().as_secs_f64(),
    );

    // The update: 1% of the edges removed, 1% new ones added.
    let update = one_percent_update(&edges);
    let components_updated = components_single_thread(&update.updated);
    let (adds, rems) = (
        both_directions(&update.added),
        both_directions(&update.removed),
    );
    let (e, s) = (edges.clone(), symmetric.clone());
    let out = ember_engine::run(conf.clone(), move |ctx| {
        let partitions = ctx.num_workers() * 2;
        let edges = ctx.parallelize(e.clone(), partitions)?.cache();
        let sym = ctx.parallelize(s.clone(), partitions)?.cache();
        edges.count()?;
        sym.count()?;
        let t = Instant::now();
        let arranged = edges.arrange_by_key()?;
        let ranks = graph::ranks(graph::pagerank(&arranged, iterations)?.collect()?);
        let pr_dd = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let ranks_rdd = pagerank_rdd(&edges, iterations)?;
        let pr_rdd = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let arranged = sym.arrange_by_key()?;
        let view = graph::connected_components(&arranged)?;
        let labels = view.collect()?;
        let cc_dd = t.elapsed().as_secs_f64();
        let additions = ctx.parallelize(adds.clone(), partitions)?.cache();
        let removals = ctx.parallelize(rems.clone(), partitions)?.cache();
        additions.count()?;
        removals.count()?;
        let t = Instant::now();
        arranged.update(&additions, &removals)?;
        let labels_updated = view.collect()?;
        let cc_update = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (labels_rdd, rounds) = components_rdd(&sym)?;
        let cc_rdd = t.elapsed().as_secs_f64();
        Ok::<_, EngineError>((
            (ranks, ranks_rdd, labels, labels_rdd, labels_updated),
            rounds,
            [pr_dd, pr_rdd, cc_dd, cc_rdd, cc_update],
        ))
    })??;
    let ((ranks, ranks_rdd, labels, labels_rdd, labels_updated), rounds, times) = out;
    let worst = |got: &[(u64, f64)]| {
        got.iter()
            .zip(&reference)
            .map(|(a, b)| {
                if a.0 == b.0 {
                    (a.1 - b.1).abs()
                } else {
                    f64::INFINITY
                }
            })
            .fold(0.0f64, f64::max)
            .max(if got.len() == reference.len() {
                0.0
            } else {
                f64::INFINITY
            })
    };
    let (d1, d2) = (worst(&ranks), worst(&ranks_rdd));
    if labels_updated != components_updated {
        return Err(format!("{name}: the updated components differ from a recomputation").into());
    }
    if d1 > 1e-9 || d2 > 1e-9 || labels != components || labels_rdd != components {
        return Err(format!(
            "{name}: answers disagree (PageRank differences {d1:e} and {d2:e}; components \
             equal: iterate {}, RDD {})",
            labels == components,
            labels_rdd == components
        )
        .into());
    }
    eprintln!(
        "{name}: {} edges, {} nodes; answers agree (PageRank within {:e}; RDD components took {rounds} rounds)",
        edges.len(),
        reference.len(),
        d1.max(d2)
    );
    // GraphX's figures, checked against these answers: its PageRank scales the ranks to sum to
    // the number of nodes when some node has no out-edges (SPARK-18847), so the top rank is
    // compared after the same scaling; its components by count and label sum.
    for line in peer.iter().filter(|l| l["graph"] == name) {
        let job = line["job"].as_str().unwrap_or_default();
        let seconds = line["seconds"].as_f64().unwrap_or(f64::NAN);
        let agrees = match job {
            "pagerank" => {
                let sum: f64 = reference.iter().map(|r| r.1).sum();
                let top = reference.iter().map(|r| r.1).fold(0.0, f64::max)
                    * reference.len() as f64
                    / sum;
                let theirs = line["top_rank"].as_f64().unwrap_or(f64::NAN);
                line["nodes"] == reference.len() && ((theirs - top) / top).abs() < 1e-6
            }
            "components" => {
                let count = components
                    .iter()
                    .map(|c| c.1)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                let label_sum: f64 = components.iter().map(|c| c.1 as f64).sum();
                let theirs = line["label_sum"].as_f64().unwrap_or(f64::NAN);
                line["components"] == count && ((theirs - label_sum) / label_sum).abs() < 1e-9
            }
            _ => continue,
        };
        if !agrees {
            return Err(
                format!("{name} {job}: GraphX's answer differs from Ember's: {line}").into(),
            );
        }
        let job = if job == "pagerank" {
            "pagerank"
        } else {
            "components"
        };
        record(rows, name, job, "spark graphx", seconds);
    }
    record(rows, name, "pagerank", "ember iterate", times[0]);
    record(rows, name, "pagerank", "ember rdd per iteration", times[1]);
    record(rows, name, "components", "ember iterate", times[2]);
    record(
        rows,
        name,
        "components",
        "ember rdd per iteration",
        times[3],
    );
    record(
        rows,
        name,
        "components after a 1% update",
        "ember iterate, by differences",
        times[4],
    );
    record(
        rows,
        name,
        "components after a 1% update",
        "ember rdd per iteration, recomputed",
        times[3],
    );
    Ok(())
}

/// PageRank written as one RDD job per iteration (a join of the cached links with the ranks,
/// then a sum by destination), as a Spark program writes it.
fn pagerank_rdd(edges: &Rdd<(u64, u64)>, iterations: u64) -> Result<Vec<(u64, f64)>, EngineError> {
    // A fixed partition count, as a Spark program passes `numPartitions`: a union's partitions
    // are its parents' together, so a loop without it doubles them every iteration.
    let partitions = edges.num_partitions();
    let links = edges.group_by_key().cache();
    let zeros = edges
        .flat_map(|(a, b)| [a, b])
        .distinct()
        .map(|n| (n, 0.0f64))
        .cache();
    let mut ranks = zeros.map_values(|_| 1.0f64);
    for _ in 0..iterations {
        let next = links
            .join(&ranks)
            .flat_map(|(_, (targets, rank))| {
                let share = rank / targets.len() as f64;
                targets.into_iter().map(move |t| (t, share))
            })
            .union(&zeros)
            .reduce_by_key_with(|a, b| a + b, partitions)
            .map_values(|s| 0.15 + 0.85 * s)
            .cache();
        next.count()?;
        ranks.unpersist();
        ranks = next;
    }
    let mut out = ranks.collect()?;
    out.sort_by_key(|x| x.0);
    Ok(out)
}

/// Connected components by label propagation, one RDD job per round until no label changes.
fn components_rdd(sym: &Rdd<(u64, u64)>) -> Result<(Vec<(u64, u64)>, usize), EngineError> {
    let partitions = sym.num_partitions();
    let adjacency = sym.group_by_key().cache();
    let mut labels = sym.keys().distinct().map(|n| (n, n)).cache();
    let mut rounds = 0;
    loop {
        let started = Instant::now();
        rounds += 1;
        let next = adjacency
            .join(&labels)
            .flat_map(|(_, (targets, label))| targets.into_iter().map(move |t| (t, label)))
            .union(&labels)
            .reduce_by_key_with(|a, b| a.min(b), partitions)
            .cache();
        let changed = next.join(&labels).filter(|(_, (a, b))| a != b).count()?;
        tracing_round(rounds, changed, started);
        labels.unpersist();
        labels = next;
        if changed == 0 {
            break;
        }
    }
    let mut out = labels.collect()?;
    out.sort();
    Ok((out, rounds))
}

/// Ten joins against one table of `rows` rows: plain `join` each time against joins with one
/// arrangement built first (its build time included).
fn repeated_joins(
    conf: &Conf,
    rows: u64,
    out: &mut Vec<Row>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (plain, arranged, counts) = ember_engine::run(conf.clone(), move |ctx| {
        let partitions = ctx.num_workers() * 2;
        let keys = (rows / 4).max(1);
        let table = ctx
            .range(0, rows as i64, 1, partitions)?
            .map(move |i| ((i as u64 * 0x9E37_79B9) % keys, i as u64))
            .cache();
        table.count()?;
        let probes: Vec<Rdd<(u64, u64)>> = (0..10u64)
            .map(|j| {
                ctx.range(0, 10_000, 1, partitions).map(|r| {
                    r.map(move |i| ((i as u64 * 7919 + j * 104_729) % keys, j))
                        .cache()
                })
            })
            .collect::<Result<_, EngineError>>()?;
        for p in &probes {
            p.count()?;
        }
        let t = Instant::now();
        let mut plain_counts = Vec::new();
        for p in &probes {
            plain_counts.push(table.join(p).count()?);
        }
        let plain = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let arr = table.arrange_by_key()?;
        let mut arranged_counts = Vec::new();
        for p in &probes {
            arranged_counts.push(arr.join(p)?.count()?);
        }
        let arranged = t.elapsed().as_secs_f64();
        Ok::<_, EngineError>((plain, arranged, (plain_counts, arranged_counts)))
    })??;
    if counts.0 != counts.1 {
        return Err(format!("repeated joins disagree: {:?} vs {:?}", counts.0, counts.1).into());
    }
    let name = format!("table-{rows}");
    record(out, &name, "10 joins", "ember plain join", plain);
    record(out, &name, "10 joins", "ember arranged join", arranged);
    Ok(())
}

fn print_table(rows: &[Row], workers: usize) {
    println!("\n| graph | job | system | seconds | vs Ember iterate/arranged |");
    println!("|---|---|---|---:|---:|");
    for r in rows {
        let ours = rows.iter().find(|o| {
            o.graph == r.graph
                && o.job == r.job
                && (o.system == "ember iterate"
                    || o.system == "ember arranged join"
                    || o.system == "ember iterate, by differences")
        });
        let ratio = ours.map_or("-".to_string(), |o| {
            format!("{:.2}x", r.seconds / o.seconds)
        });
        println!(
            "| {} | {} | {}{} | {:.3} | {} |",
            r.graph,
            r.job,
            r.system,
            if r.system.starts_with("ember") {
                format!(" ({workers} workers)")
            } else {
                String::new()
            },
            r.seconds,
            ratio
        );
    }
}

fn tracing_round(round: usize, changed: u64, started: Instant) {
    if std::env::var_os("EMBER_GRAPH_BENCH_VERBOSE").is_some() {
        eprintln!(
            "round {round}: {changed} labels changed in {:.3} s",
            started.elapsed().as_secs_f64()
        );
    }
}
