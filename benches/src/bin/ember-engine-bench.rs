//! The Ember side of the engine benchmark: the same workloads as the Spark suite, printing one
//! result line per workload (see `ember_bench::record`).
//!
//! ```text
//! ember-engine-bench --text FILE [--workers 2] [--only w1,w2] [--pairs N]
//! ```
//!
//! Word count is timed from before the workers start to the answer (like the timely baseline),
//! after one untimed warm-up pass over the file (as Spark's suite warms up). The pair workloads
//! generate their data inside the timed job, as the Spark suite does; logistic regression reports
//! the mean iteration time after the points are cached.

use std::path::PathBuf;
use std::time::Instant;

use ember_bench::answer::{
    GroupByKeyAnswer, JoinAnswer, ReduceByKeyAnswer, SortAnswer, WordCountAnswer,
};
use ember_bench::protocol::{
    join_right, lr_point, pair, LR_ITERATIONS, LR_POINTS, N_PAIRS, PAIR_KEYS, PARTITIONS,
};
use ember_bench::record::{workloads, Record};
use ember_engine::{Conf, Context, EngineError, Rdd};
use rustc_hash::FxHashMap;

/// A fast general-purpose allocator: RDD pipelines allocate a string per line and per word.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Word count with per-partition counting of borrowed slices (the timely program's algorithm).
const WORD_COUNT_LOCAL: &str = "word_count_local_combine";

struct Args {
    text: Option<PathBuf>,
    workers: usize,
    only: Option<Vec<String>>,
    pairs: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        text: None,
        workers: 2,
        only: None,
        pairs: N_PAIRS,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--text" => a.text = Some(PathBuf::from(value()?)),
            "--workers" => a.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?,
            "--only" => a.only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--pairs" => a.pairs = value()?.parse().map_err(|e| format!("--pairs: {e}"))?,
            other => return Err(format!("unknown argument {other}; usage: ember-engine-bench --text FILE [--workers N] [--only a,b] [--pairs N]")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ember-engine-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("ember-engine-bench: {e}");
        std::process::exit(1);
    }
}

fn wanted(args: &Args, workload: &str) -> bool {
    args.only
        .as_ref()
        .is_none_or(|o| o.iter().any(|w| w == workload))
}

fn conf(workers: usize) -> Result<Conf, EngineError> {
    Conf::new().with("ember.master", &format!("local[{workers}]"))
}

/// Runs `job` on every worker and returns worker 0's answer with the wall time of the whole run.
fn timed<R: Send + 'static>(
    workers: usize,
    job: impl Fn(&Context) -> Result<R, EngineError> + Send + Sync + 'static,
) -> Result<(R, f64), EngineError> {
    let start = Instant::now();
    let r = ember_engine::run(conf(workers)?, job)??;
    Ok((r, start.elapsed().as_secs_f64()))
}

fn run(args: &Args) -> Result<(), EngineError> {
    let w = args.workers;
    if let (Some(text), true) = (&args.text, wanted(args, workloads::WORD_COUNT)) {
        let path = text.clone();
        let count = move |ctx: &Context| -> Result<WordCountAnswer, EngineError> {
            let counts = ctx
                .text_file(&path, ctx.num_workers() * 2)?
                .flat_map(|line| {
                    line.split_ascii_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .map(|word| (word, 1u64))
                .reduce_by_key(|a, b| a + b)
                .collect()?;
            Ok(WordCountAnswer::of(
                counts.iter().map(|(w, c)| (w.as_str(), *c)),
            ))
        };
        let count = std::sync::Arc::new(count);
        let warm = std::sync::Arc::clone(&count);
        timed(w, move |ctx| warm(ctx))?;
        let (answer, secs) = timed(w, move |ctx| count(ctx))?;
        println!(
            "{}",
            Record::new("ember", workloads::WORD_COUNT, secs, answer).to_line()
        );
    }

    if let (Some(text), true) = (&args.text, wanted(args, WORD_COUNT_LOCAL)) {
        // The hand-written timely program's algorithm, expressed through Ember: each partition
        // counts borrowed word slices (allocating only for new words), then reduce_by_key merges.
        let path = text.clone();
        let (answer, secs) = timed(w, move |ctx| {
            let counts = ctx
                .text_file(&path, ctx.num_workers() * 2)?
                .map_partitions(|lines| {
                    let mut local: FxHashMap<String, u64> = FxHashMap::default();
                    for line in lines {
                        for word in line.split_ascii_whitespace() {
                            match local.get_mut(word) {
                                Some(c) => *c += 1,
                                None => {
                                    local.insert(word.to_owned(), 1);
                                }
                            }
                        }
                    }
                    Box::new(local.into_iter())
                })
                .reduce_by_key(|a, b| a + b)
                .collect()?;
            Ok(WordCountAnswer::of(
                counts.iter().map(|(w, c)| (w.as_str(), *c)),
            ))
        })?;
        println!(
            "{}",
            Record::new("ember", WORD_COUNT_LOCAL, secs, answer).to_line()
        );
    }

    if wanted(args, workloads::LOGISTIC_REGRESSION) {
        let ((w_final, iters), _) = timed(w, |ctx| {
            let points = ctx
                .range(0, LR_POINTS as i64, 1, PARTITIONS)?
                .map(|i| lr_point(i as u64))
                .cache();
            points.count()?;
            ember_bench::lr::train(&points, LR_POINTS, LR_ITERATIONS)
        })?;
        println!("{}", ember_bench::lr::record(&w_final, &iters).to_line());
    }

    let n = args.pairs;
    let pairs = move |ctx: &Context| -> Result<Rdd<(u64, u64)>, EngineError> {
        Ok(ctx
            .range(0, n as i64, 1, PARTITIONS)?
            .map(|i| pair(i as u64, PAIR_KEYS)))
    };

    if wanted(args, workloads::REDUCE_BY_KEY) {
        let (answer, secs) = timed(w, move |ctx| {
            let parts = pairs(ctx)?
                .reduce_by_key_with(|a, b| a.wrapping_add(b), PARTITIONS)
                .map_partitions(|it| {
                    let (mut keys, mut sum) = (0u64, 0u64);
                    for (k, v) in it {
                        keys += 1;
                        sum = sum.wrapping_add(k.wrapping_mul(31).wrapping_add(v));
                    }
                    Box::new(std::iter::once((keys, sum)))
                })
                .collect()?;
            Ok(parts.iter().fold(
                ReduceByKeyAnswer {
                    keys: 0,
                    checksum: 0,
                },
                |a, (k, s)| ReduceByKeyAnswer {
                    keys: a.keys + k,
                    checksum: a.checksum.wrapping_add(*s),
                },
            ))
        })?;
        println!(
            "{}",
            Record::new("ember", workloads::REDUCE_BY_KEY, secs, answer).to_line()
        );
    }

    if wanted(args, workloads::GROUP_BY_KEY) {
        let (answer, secs) = timed(w, move |ctx| {
            let parts = pairs(ctx)?
                .group_by_key_with(PARTITIONS)
                .map_partitions(|it| {
                    let (mut groups, mut values, mut sum) = (0u64, 0u64, 0u64);
                    for (k, vs) in it {
                        groups += 1;
                        values += vs.len() as u64;
                        sum = sum.wrapping_add(k.wrapping_mul(vs.len() as u64));
                    }
                    Box::new(std::iter::once((groups, values, sum)))
                })
                .collect()?;
            Ok(parts.iter().fold(
                GroupByKeyAnswer {
                    groups: 0,
                    values: 0,
                    checksum: 0,
                },
                |a, p| GroupByKeyAnswer {
                    groups: a.groups + p.0,
                    values: a.values + p.1,
                    checksum: a.checksum.wrapping_add(p.2),
                },
            ))
        })?;
        println!(
            "{}",
            Record::new("ember", workloads::GROUP_BY_KEY, secs, answer).to_line()
        );
    }

    if wanted(args, workloads::JOIN) {
        let (answer, secs) = timed(w, move |ctx| {
            let right = ctx
                .range(0, PAIR_KEYS as i64, 1, PARTITIONS)?
                .map(|k| join_right(k as u64));
            let parts = pairs(ctx)?
                .join(&right)
                .map_partitions(|it| {
                    let (mut rows, mut sum) = (0u64, 0u64);
                    for (_, (v, w)) in it {
                        rows += 1;
                        sum = sum.wrapping_add(v.wrapping_add(w));
                    }
                    Box::new(std::iter::once((rows, sum)))
                })
                .collect()?;
            Ok(parts.iter().fold(
                JoinAnswer {
                    rows: 0,
                    checksum: 0,
                },
                |a, p| JoinAnswer {
                    rows: a.rows + p.0,
                    checksum: a.checksum.wrapping_add(p.1),
                },
            ))
        })?;
        println!(
            "{}",
            Record::new("ember", workloads::JOIN, secs, answer).to_line()
        );
    }

    if wanted(args, workloads::SORT_BY_KEY) {
        let (answer, secs) = timed(w, move |ctx| {
            // Per partition: rows, sorted within, first three keys, last key.
            let parts = pairs(ctx)?
                .sort_by_key(true, Some(PARTITIONS))?
                .map_partitions(|it| {
                    let (mut rows, mut sorted, mut first, mut last) =
                        (0u64, true, Vec::new(), None::<u64>);
                    for (k, _) in it {
                        if last.is_some_and(|l| l > k) {
                            sorted = false;
                        }
                        if first.len() < 3 {
                            first.push(k);
                        }
                        last = Some(k);
                        rows += 1;
                    }
                    Box::new(std::iter::once((rows, sorted, first, last)))
                })
                .collect()?;
            let mut answer = SortAnswer {
                rows: 0,
                sorted: true,
                first_keys: Vec::new(),
                last_key: None,
            };
            for (rows, sorted, first, last) in parts {
                if let (Some(prev), Some(&f)) = (answer.last_key, first.first()) {
                    answer.sorted &= prev <= f;
                }
                answer.sorted &= sorted;
                answer.rows += rows;
                for k in first {
                    if answer.first_keys.len() < 3 {
                        answer.first_keys.push(k);
                    }
                }
                answer.last_key = last.or(answer.last_key);
            }
            Ok(answer)
        })?;
        println!(
            "{}",
            Record::new("ember", workloads::SORT_BY_KEY, secs, answer).to_line()
        );
    }
    Ok(())
}
