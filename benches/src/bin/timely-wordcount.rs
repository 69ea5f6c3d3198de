//! The hand-written timely word count: the floor for Ember's own layering.
//!
//! ```text
//! timely-wordcount FILE [--workers 2]
//! ```
//!
//! Each worker reads its line-aligned share of the file's bytes (`ember_bench::split`), counts
//! the words locally into an `FxHashMap<String, u64>`, then sends its `(word, count)` pairs
//! through timely's `exchange`, routed by a hash of the word; the receiving worker sums them.
//! Each worker returns the answer of the words it owns, and the answers are merged. Prints one
//! result line: `{"system":"timely","workload":"word_count","seconds":...,"answer":{...}}`,
//! where `seconds` runs from before the workers start to the merged answer.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use ember_bench::answer::{fnv1a64, WordCountAnswer};
use ember_bench::record::{workloads, Record};
use ember_bench::split::{line_aligned_range, read_range};
use ember_bench::wordcount::count_words;
use ember_bench::BenchError;
use rustc_hash::FxHashMap;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{Exchange, Operator, ToStream};

fn main() {
    if let Err(e) = run() {
        eprintln!("timely-wordcount: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BenchError> {
    let mut path: Option<PathBuf> = None;
    let mut workers = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => {
                let v = args.next().unwrap_or_default();
                workers =
                    v.parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| BenchError::Argument {
                            arg: format!("--workers {v}"),
                            reason: "needs a positive integer".to_owned(),
                        })?;
            }
            a if !a.starts_with('-') && path.is_none() => path = Some(PathBuf::from(a)),
            other => {
                return Err(BenchError::Argument {
                    arg: other.to_owned(),
                    reason: "usage: timely-wordcount FILE [--workers N]".to_owned(),
                })
            }
        }
    }
    let path = path.ok_or_else(|| BenchError::Argument {
        arg: "FILE".to_owned(),
        reason: "is required".to_owned(),
    })?;

    let start = Instant::now();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        count_share(worker, &path)
    })
    .map_err(BenchError::Timely)?;
    let mut answer = WordCountAnswer::default();
    for result in guards.join() {
        answer = answer.merge(result.map_err(BenchError::Timely)??);
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut record = Record::new("timely", workloads::WORD_COUNT, seconds, answer);
    record.extra.insert("workers".to_owned(), workers.into());
    println!("{}", record.to_line());
    Ok(())
}

/// One worker: count its share locally, exchange the counts, sum the words it owns.
fn count_share(
    worker: &mut timely::worker::Worker,
    path: &std::path::Path,
) -> Result<WordCountAnswer, BenchError> {
    let io = |e| BenchError::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let range = line_aligned_range(&mut file, len, worker.index(), worker.peers()).map_err(io)?;
    let offset = range.start;
    let bytes = read_range(&mut file, range).map_err(io)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| BenchError::Utf8 {
        path: path.to_owned(),
        offset: offset + e.valid_up_to() as u64,
    })?;
    let mut local = FxHashMap::default();
    count_words(text, &mut local);

    let sums: Rc<RefCell<FxHashMap<String, u64>>> = Rc::default();
    let sink = Rc::clone(&sums);
    worker.dataflow::<u64, _, _>(|scope| {
        local
            .to_stream(scope)
            .container::<Vec<_>>()
            .exchange(|(word, _): &(String, u64)| fnv1a64(word.as_bytes()))
            .sink(Pipeline, "Sum", move |(input, _frontier)| {
                let mut sums = sink.borrow_mut();
                input.for_each(|_time, data| {
                    for (word, count) in data.drain(..) {
                        *sums.entry(word).or_insert(0) += count;
                    }
                });
            });
    });
    while worker.step_or_park(None) {}
    let sums = sums.borrow();
    Ok(WordCountAnswer::of(
        sums.iter().map(|(w, c)| (w.as_str(), *c)),
    ))
}
