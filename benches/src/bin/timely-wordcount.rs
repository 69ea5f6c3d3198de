//! The hand-written timely word count: the floor for Ember's own layering.
//!
//! ```text
//! timely-wordcount FILE [--workers 2]
//! ```
//!
//! See `ember_bench::baseline` for the program: local counting in each worker, then timely's
//! `exchange` of the `(word, count)` pairs by word hash, summed by the receiver. Prints one
//! result line: `{"system":"timely","workload":"word_count","seconds":...,"answer":{...}}`,
//! where `seconds` runs from before the workers start to the merged answer.

use std::path::PathBuf;
use std::time::Instant;

use ember_bench::baseline::timely_word_count;
use ember_bench::record::{workloads, Record};
use ember_bench::BenchError;

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
    let answer = timely_word_count(&path, workers)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut record = Record::new("timely", workloads::WORD_COUNT, seconds, answer);
    record.extra.insert("workers".to_owned(), workers.into());
    println!("{}", record.to_line());
    Ok(())
}
