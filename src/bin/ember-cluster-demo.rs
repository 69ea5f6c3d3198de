//! A self-checking job suite that runs unchanged in local and cluster mode, printing its
//! answers as one JSON object (from worker 0). Every answer is the same whatever the number of
//! workers (but `workers`), so a cluster run can be compared key by key with local runs.
//!
//! Local: `ember-cluster-demo` (or `EMBER_MASTER=local[4] ember-cluster-demo`).
//! Two processes on this host, two workers each (run both, or use `ember-submit -n 2 -w 2`):
//! ```text
//! EMBER_MASTER=cluster EMBER_CLUSTER_HOSTS=127.0.0.1:7400,127.0.0.1:7401 EMBER_CLUSTER_PROCESS=0 ember-cluster-demo
//! EMBER_MASTER=cluster EMBER_CLUSTER_HOSTS=127.0.0.1:7400,127.0.0.1:7401 EMBER_CLUSTER_PROCESS=1 ember-cluster-demo
//! ```
//!
//! Environment variables for fault and supervision tests (of `ember-submit`):
//! - `EMBER_DEMO_CRASH_PROCESS=P`: in the default suite, process P exits with status 3 once its
//!   first job is done.
//! - `EMBER_DEMO_MODE=checkpoint` with `EMBER_DEMO_DIR=DIR` (an existing directory): instead of
//!   the suite, an application that recovers from a lost process through its checkpoints. It
//!   checkpoints a shuffled RDD under `ember.checkpoint.dir` (or `DIR/checkpoints` when that is
//!   not set), computes it in a first job (which writes the checkpoint) and then runs a second
//!   job on it. Each partition of the checkpointed RDD's lineage that is computed appends a line
//!   `attempt=A process=P partition=I` to `DIR/computed` (A is `EMBER_SUBMIT_ATTEMPT`, set by
//!   `ember-submit`), so a run that reused the checkpoint adds none. With
//!   `EMBER_DEMO_CRASH_ONCE=1`, the process running partition 3 of the second job's first stage
//!   exits with status 3 mid-job if `DIR/crashed` does not exist, creating it first with its
//!   process index: the first attempt dies, a restarted one runs through. Worker 0 prints
//!   `{"answer": {...}, "reused_checkpoint": bool}`.
//! - `EMBER_DEMO_MODE=long` with `EMBER_DEMO_DIR=DIR`: runs small jobs for up to 60 seconds, a
//!   process to interrupt.
//!
//! - `EMBER_DEMO_MODE=small`: one small job; worker 0 prints `{"sum": ..., "workers": N}`.
//! - `EMBER_DEMO_MODE=lines` with `EMBER_DEMO_INPUT=URL`: counts the lines of the text input at
//!   URL (a path or `s3://...`, read with the application's configuration); worker 0 prints
//!   `{"lines": N, "keys": [...]}`, the keys being those set explicitly in the configuration.
//! - `EMBER_DEMO_MODE=spmd`: a driver with the SPMD mistake: after a first job on every worker,
//!   only the workers of process 0 run a second one. Process 0 must fail with a `PeerFailed`
//!   error naming a worker of process 1 (not wait forever); process 1 ends normally.
//!
//! In the `checkpoint` and `long` modes each process writes its process index into the file `DIR/pids/<its pid>`, so a
//! test can find or kill a given process and check that none is left running: in `checkpoint`
//! mode at start, in `long` mode once its first job is done (the cluster is up).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ember::engine::ReduceOp;
use ember::prelude::*;
use serde_json::json;

fn main() {
    let conf = match Conf::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ember-cluster-demo: {e}");
            std::process::exit(2);
        }
    };
    let this_process: usize = std::env::var("EMBER_CLUSTER_PROCESS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mode = std::env::var("EMBER_DEMO_MODE").unwrap_or_default();
    let dir = || match std::env::var_os("EMBER_DEMO_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            eprintln!("ember-cluster-demo: EMBER_DEMO_MODE={mode} needs EMBER_DEMO_DIR");
            std::process::exit(2);
        }
    };
    let result = match mode.as_str() {
        "" | "suite" => {
            // For fault tests: this process exits abruptly once its first job is done.
            let crash = std::env::var("EMBER_DEMO_CRASH_PROCESS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                == Some(this_process);
            ember::engine::run(conf, move |ctx| suite(ctx, crash))
        }
        "checkpoint" => {
            let dir = dir();
            write_pid_file(&dir, this_process);
            let crash_once = std::env::var("EMBER_DEMO_CRASH_ONCE").is_ok_and(|v| v == "1");
            let attempt = std::env::var("EMBER_SUBMIT_ATTEMPT").unwrap_or_else(|_| "0".into());
            ember::engine::run(conf, move |ctx| {
                recovering(ctx, &dir, this_process, &attempt, crash_once)
            })
        }
        "long" => {
            let dir = dir();
            ember::engine::run(conf, move |ctx| long_running(ctx, &dir, this_process))
        }
        "small" => ember::engine::run(conf, small),
        "lines" => {
            let Ok(input) = std::env::var("EMBER_DEMO_INPUT") else {
                eprintln!("ember-cluster-demo: EMBER_DEMO_MODE=lines needs EMBER_DEMO_INPUT");
                std::process::exit(2);
            };
            ember::engine::run(conf, move |ctx| count_lines(ctx, &input))
        }
        "spmd" => {
            let threads = conf.get_usize("ember.cluster.threads").unwrap_or(2);
            ember::engine::run(conf, move |ctx| spmd_mistake(ctx, threads))
        }
        other => {
            eprintln!(
                "ember-cluster-demo: unknown EMBER_DEMO_MODE `{other}` (suite, checkpoint, long, small, lines, spmd)"
            );
            std::process::exit(2);
        }
    };
    match result {
        Ok(Ok(Some(answer))) => println!("{answer}"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) | Err(e) => {
            eprintln!("ember-cluster-demo: {e}");
            std::process::exit(1);
        }
    }
}

/// What one worker's driver returns: the answer on worker 0, nothing elsewhere.
type Outcome = Result<Option<serde_json::Value>, EngineError>;

/// The job suite: operators across shuffles, broadcast, accumulators, sorting, joins, and the
/// collectives of barrier stages.
fn suite(ctx: &Context, crash: bool) -> Outcome {
    let lines: Vec<String> = (0..2000u64)
        .map(|i| {
            let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
            (0..(i % 7 + 1))
                .map(|j| words[((i * 31 + j * 17) % 6) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let text = ctx.parallelize(lines, 6)?;
    let mut word_counts: Vec<(String, u64)> = text
        .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b)
        .collect()?;
    word_counts.sort();
    if crash {
        std::process::exit(3);
    }

    let pairs = ctx
        .range(0, 50_000, 1, 8)?
        .map(|i| ((i * 7919) % 1000, i))
        .cache();
    let sums: BTreeMap<i64, i64> = pairs
        .reduce_by_key(|a, b| a + b)
        .collect()?
        .into_iter()
        .collect();
    let group_sizes: u64 = pairs
        .group_by_key()
        .map(|(_, v)| v.len() as u64)
        .reduce(|a, b| a + b)?
        .unwrap_or(0);
    let right = ctx.range(0, 1000, 2, 3)?.map(|k| (k, k * 10));
    let joined = pairs.join(&right);
    let join_rows = joined.count()?;
    let join_sum: i64 = joined.map(|(_, (v, w))| v + w).fold(0, |a, b| a + b)?;
    let sorted = pairs.sort_by_key(true, Some(5))?.keys().collect()?;
    let is_sorted = sorted.windows(2).all(|w| w[0] <= w[1]);

    let table = ctx.broadcast((0..10).map(|i| i * i).collect::<Vec<i64>>())?;
    let looked_up: i64 = ctx
        .range(0, 100, 1, 4)?
        .map(move |i| table[(i % 10) as usize])
        .fold(0, |a, b| a + b)?;
    let seen = ctx.accumulator(0u64);
    let acc = seen.clone();
    ctx.range(0, 1234, 1, 5)?.foreach(move |_| acc.add(1))?;

    let indexed = ctx
        .range(0, 100, 1, 3)?
        .zip_with_index()?
        .filter(|(x, i)| *x as u64 != *i)
        .count()?;
    let cart = ctx
        .range(0, 20, 1, 3)?
        .cartesian(&ctx.range(0, 7, 1, 2)?)
        .count()?;
    let coalesced = ctx.range(0, 1000, 1, 8)?.coalesce(4)?.collect()?;
    let distinct = pairs.keys().distinct().count()?;
    let collectives = collectives(ctx)?;
    let arranged = arranged(ctx)?;

    let answer = json!({
        "workers": ctx.num_workers(),
        "word_counts": word_counts,
        "reduce_by_key_keys": sums.len(),
        "reduce_by_key_checksum": sums.iter().map(|(k, v)| k * 31 + v).sum::<i64>(),
        "group_sizes": group_sizes,
        "join_rows": join_rows,
        "join_sum": join_sum,
        "sorted_rows": sorted.len(),
        "sorted": is_sorted,
        "broadcast_lookup": looked_up,
        "accumulator": seen.value(),
        "zip_with_index_mismatches": indexed,
        "cartesian": cart,
        "coalesced_sum": coalesced.iter().sum::<i64>(),
        "distinct_keys": distinct,
        "collective_mismatches": collectives.mismatches,
        "collective_tasks_ok": collectives.tasks_ok,
        "barrier_restart_ok": collectives.restart_ok,
        "arranged_join": arranged.0,
        "arranged_matches_plain": arranged.1,
        "components": arranged.2,
    });
    Ok((ctx.worker_index() == 0).then_some(answer))
}

/// Differential arrangements: a join against an arranged RDD with skewed keys (its checksum,
/// and whether it equals the plain join), and the connected components of a small graph with
/// an update (the sorted component sizes after it).
fn arranged(ctx: &Context) -> Result<(u64, bool, Vec<u64>), EngineError> {
    let left = ctx
        .range(0, 20_000, 1, 6)?
        .map(|i| (if i % 3 == 0 { 0u64 } else { (i % 97) as u64 }, i as u64));
    let right = ctx
        .range(0, 500, 1, 3)?
        .map(|i| ((i % 50) as u64, i as u64));
    let arr = left.arrange_by_key()?;
    let mut got = arr.join(&right)?.collect()?;
    let mut want = left.join(&right).collect()?;
    got.sort();
    want.sort();
    let checksum = got.iter().map(|(k, (v, w))| k * 7 + v * 3 + w).sum::<u64>();
    // Three chains of 10 nodes, both directions; the update links the first two.
    let edges: Vec<(u64, u64)> = (0..3u64)
        .flat_map(|c| (0..9u64).map(move |i| (c * 100 + i, c * 100 + i + 1)))
        .flat_map(|(a, b)| [(a, b), (b, a)])
        .collect();
    let graph = ctx.parallelize(edges, 4)?.arrange_by_key()?;
    let components = ember::engine::differential::graph::connected_components(&graph)?;
    graph.update(
        &ctx.parallelize(vec![(9u64, 100u64), (100, 9)], 2)?,
        &ctx.parallelize(Vec::new(), 1)?,
    )?;
    let mut sizes: BTreeMap<u64, u64> = BTreeMap::new();
    for (_, label) in components.collect()? {
        *sizes.entry(label).or_default() += 1;
    }
    let mut sizes: Vec<u64> = sizes.into_values().collect();
    sizes.sort();
    Ok((checksum, got == want, sizes))
}

/// What the collectives section found; the same whatever the number of workers.
struct Collectives {
    /// Values (and ranks) that differ from the sums computed here by the driver.
    mismatches: u64,
    /// Every task ran once, at its rank, on a worker of its own, with every collective counted.
    tasks_ok: bool,
    /// A barrier stage whose task of rank 1 panics in the first attempt restarted as a whole and
    /// gave the same sums.
    restart_ok: bool,
}

/// Buffer lengths all-reduced by every task: empty, one value, fewer values than tasks, and
/// more than a million (not a multiple of the number of tasks).
const REDUCE_LENGTHS: [usize; 4] = [0, 1, 7, 1_000_003];
/// Length of the buffer broadcast from the last rank.
const BROADCAST_LENGTH: usize = 10_007;

/// Rank `rank`'s buffer of `len` values: distinct per rank, and exact in f32 sums over a few
/// ranks, so any order of additions gives the same bits.
fn rank_buffer(rank: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7 + rank * 13) % 1000) as f32 - 500.0 + rank as f32 * 0.25)
        .collect()
}

/// How many positions of `got` differ (bit for bit) from `want`, a missing or extra value
/// counting as one.
fn count_mismatches(got: &[f32], want: &[f32]) -> u64 {
    let differ = got
        .iter()
        .zip(want)
        .filter(|(g, w)| g.to_bits() != w.to_bits())
        .count();
    (differ + got.len().abs_diff(want.len())) as u64
}

/// What one task of the collectives stage reports to the driver: its rank, partition, number
/// of tasks, attempt, the worker of every rank, its mismatches and its collective calls (a
/// tuple: the binary has no serde derive).
type TaskReport = (usize, usize, usize, usize, Vec<usize>, u64, u64);

/// Barrier stages of one task per worker: all-reduces (sum and mean) of rank-built buffers,
/// a broadcast from the last rank and an all-gather of the ranks, checked against sequential
/// sums computed here; then a stage whose rank 1 task panics in the first attempt (rank 0 on a
/// single worker), which must restart as a whole and give the same sums.
fn collectives(ctx: &Context) -> Result<Collectives, EngineError> {
    let n = ctx.num_workers();
    // The sums, added in rank order, and the means as all_reduce forms them (sum times 1/n).
    let sums: Vec<Vec<f32>> = REDUCE_LENGTHS
        .iter()
        .map(|&len| {
            let mut acc = rank_buffer(0, len);
            for r in 1..n {
                for (a, b) in acc.iter_mut().zip(rank_buffer(r, len)) {
                    *a += b;
                }
            }
            acc
        })
        .collect();
    let scale = 1.0 / n as f32;
    let means: Vec<Vec<f32>> = sums
        .iter()
        .map(|s| s.iter().map(|v| v * scale).collect())
        .collect();
    let broadcast = rank_buffer(n - 1, BROADCAST_LENGTH);
    let ranks: Vec<usize> = (0..n).collect();
    let expected = std::rc::Rc::new((sums, means, broadcast, ranks.clone()));

    let want = std::rc::Rc::clone(&expected);
    let reports: Vec<TaskReport> = ctx
        .parallelize(ranks.clone(), n)?
        .barrier()
        .map_partitions(move |task, _| {
            let (sums, means, broadcast, ranks) = &*want;
            let rank = task.rank();
            let mut wrong = 0;
            for (i, &len) in REDUCE_LENGTHS.iter().enumerate() {
                let mut buf = rank_buffer(rank, len);
                task.all_reduce(&mut buf, ReduceOp::Sum)?;
                wrong += count_mismatches(&buf, &sums[i]);
                let mut buf = rank_buffer(rank, len);
                task.all_reduce(&mut buf, ReduceOp::Mean)?;
                wrong += count_mismatches(&buf, &means[i]);
            }
            let root = task.num_tasks() - 1;
            let mut buf = if rank == root {
                rank_buffer(rank, BROADCAST_LENGTH)
            } else {
                vec![-1.0; 3]
            };
            task.broadcast(&mut buf, root)?;
            wrong += count_mismatches(&buf, broadcast);
            let gathered = task.all_gather(&rank)?;
            wrong += gathered.len().abs_diff(ranks.len()) as u64;
            wrong += gathered.iter().zip(ranks).filter(|(g, r)| g != r).count() as u64;
            task.barrier()?;
            let report: TaskReport = (
                rank,
                task.partition(),
                task.num_tasks(),
                task.attempt(),
                task.workers(),
                wrong,
                task.comm_stats().calls,
            );
            Ok(std::iter::once(report))
        })
        .collect()?;
    // Two all-reduces per length, the broadcast, the all-gather and the barrier.
    let calls = 2 * REDUCE_LENGTHS.len() as u64 + 3;
    let misplaced = reports
        .iter()
        .enumerate()
        .filter(|(i, r)| r.0 != *i || r.1 != *i)
        .count()
        + reports.len().abs_diff(n);
    let mismatches = reports.iter().map(|r| r.5).sum::<u64>() + misplaced as u64;
    let tasks_ok = reports.len() == n
        && reports
            .iter()
            .all(|(_, _, tasks, attempt, workers, _, made)| {
                let mut distinct = workers.clone();
                distinct.sort_unstable();
                distinct.dedup();
                *tasks == n
                    && *attempt == 0
                    && *made == calls
                    && distinct.len() == n
                    && *workers == reports[0].4
            });

    // Rank 1 fails once, after a first barrier: its peers are waiting in the all-reduce when
    // it panics, and must give up on it, then run again with it.
    let failing = 1.min(n - 1);
    let want = std::rc::Rc::clone(&expected);
    let restarted: Vec<(usize, usize, u64)> = ctx
        .parallelize(ranks, n)?
        .barrier()
        .map_partitions(move |task, _| {
            let rank = task.rank();
            task.barrier()?;
            if rank == failing && task.attempt() == 0 {
                panic!("ember-cluster-demo: rank {rank} fails in attempt 0, as planned");
            }
            let len = REDUCE_LENGTHS[2];
            let mut buf = rank_buffer(rank, len);
            task.all_reduce(&mut buf, ReduceOp::Sum)?;
            Ok(std::iter::once((
                rank,
                task.attempt(),
                count_mismatches(&buf, &want.0[2]),
            )))
        })
        .collect()?;
    let restart_ok = restarted.len() == n
        && restarted
            .iter()
            .enumerate()
            .all(|(i, &(rank, attempt, wrong))| rank == i && attempt == 1 && wrong == 0);
    Ok(Collectives {
        mismatches,
        tasks_ok,
        restart_ok,
    })
}

/// Writes `process` (the process index) into `dir/pids/<this process's id>`.
fn write_pid_file(dir: &Path, process: usize) {
    let pids = dir.join("pids");
    let made = std::fs::create_dir_all(&pids).and_then(|()| {
        std::fs::write(
            pids.join(std::process::id().to_string()),
            process.to_string(),
        )
    });
    if let Err(e) = made {
        eprintln!(
            "ember-cluster-demo: cannot write a pid file under {}: {e}",
            pids.display()
        );
        std::process::exit(2);
    }
}

/// Appends one line to `path` (one small `O_APPEND` write, so lines from several processes
/// never interleave).
fn append_line(path: &Path, line: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "ember-cluster-demo: cannot append to {}: {e}",
            path.display()
        );
        std::process::exit(2);
    }
}

/// The `checkpoint` mode: a checkpointed RDD computed by a first job, used by a second job that
/// loses a process on the first attempt (see the module docs).
fn recovering(
    ctx: &Context,
    dir: &Path,
    process: usize,
    attempt: &str,
    crash_once: bool,
) -> Outcome {
    if ctx.checkpoint_dir().is_none() {
        ctx.set_checkpoint_dir(dir.join("checkpoints"))?;
    }
    let computed = dir.join("computed");
    let attempt = attempt.to_string();
    let sums = ctx
        .range(0, 40_000, 1, 8)?
        .map_partitions_with_index(move |partition, it| {
            append_line(
                &computed,
                &format!("attempt={attempt} process={process} partition={partition}"),
            );
            Box::new(it.map(|x| (x % 97, (x * x) % 10_007)))
        })
        .reduce_by_key_with(|a, b| a + b, 8);
    sums.checkpoint()?;
    // Found complete under the checkpoint directory: an earlier run wrote it.
    let reused = sums.is_checkpointed();
    let mut first: Vec<(i64, i64)> = sums.collect()?;
    first.sort();

    let marker = dir.join("crashed");
    let mut second: Vec<(i64, i64)> = sums
        .map_partitions_with_index(move |partition, it| {
            if crash_once && partition == 3 {
                // Only the first process to get here, and only once across attempts.
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&marker)
                {
                    let _ = f.write_all(process.to_string().as_bytes());
                    let _ = f.sync_all();
                    eprintln!("ember-cluster-demo: process {process} exits mid-job, as asked");
                    std::process::exit(3);
                }
            }
            Box::new(it.map(|(k, v)| (k % 10, v % 1_000)))
        })
        .reduce_by_key(|a, b| a + b)
        .collect()?;
    second.sort();
    let answer = json!({
        "answer": { "first": first, "second": second },
        "reused_checkpoint": reused,
    });
    Ok((ctx.worker_index() == 0).then_some(answer))
}

/// The `long` mode: small jobs for up to 60 seconds.
fn long_running(ctx: &Context, dir: &Path, process: usize) -> Outcome {
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < Duration::from_secs(60) {
        ctx.range(0, 1000, 1, 4)?.map(|x| x * 2).count()?;
        if rounds == 0 {
            write_pid_file(dir, process);
        }
        rounds += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((ctx.worker_index() == 0).then_some(json!({ "rounds": rounds })))
}

/// The `small` mode: one job with a shuffle.
fn small(ctx: &Context) -> Outcome {
    let sum: i64 = ctx
        .range(0, 1000, 1, 8)?
        .map(|x| (x % 7, x * x))
        .reduce_by_key(|a, b| a + b)
        .map(|(_, v)| v)
        .fold(0, |a, b| a + b)?;
    let answer = json!({ "sum": sum, "workers": ctx.num_workers() });
    Ok((ctx.worker_index() == 0).then_some(answer))
}

/// The `spmd` mode: the workers of process 0 (`threads` of them) run a job the others never run.
fn spmd_mistake(ctx: &Context, threads: usize) -> Outcome {
    let first = ctx.range(0, 100, 1, 4)?.count()?;
    if ctx.worker_index() < threads {
        ctx.range(0, 100, 1, 4)?.map(|x| x + 1).count()?;
    }
    Ok((ctx.worker_index() == 0).then_some(json!({ "first": first })))
}

/// The `lines` mode: the line count of `input`, and the configuration's explicit keys.
fn count_lines(ctx: &Context, input: &str) -> Outcome {
    let lines = ctx.text_file(input, 2)?.count()?;
    let keys: Vec<&str> = ctx.conf().explicit().map(|(k, _)| k).collect();
    let answer = json!({ "lines": lines, "keys": keys });
    Ok((ctx.worker_index() == 0).then_some(answer))
}
