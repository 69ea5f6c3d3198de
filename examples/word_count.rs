//! Word count, the quickstart: `cargo run --release --example word_count [FILE] [key=value...]`.
//!
//! Without FILE it generates a 20 MB sample text first. Runs on `local[2]` unless told otherwise
//! (`ember.master=local[4]`, or `EMBER_MASTER=...`). Prints the ten most frequent words.

mod common;

use std::time::Instant;

use ember::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let (conf, args) = common::conf_from_args()?;
    let path = match args.first() {
        Some(p) => std::path::PathBuf::from(p),
        None => common::sample_text(20_000_000),
    };
    let shown = path.clone();
    let (top, distinct, total) = ember::engine::run(conf, move |ctx| -> Result<_, EngineError> {
        let lines = ctx.text_file(&path, ctx.num_workers() * 2)?;
        let counts = lines
            .flat_map(|line| {
                line.split_ascii_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .map(|word| (word, 1u64))
            .reduce_by_key(|a, b| a + b)
            .cache();
        let top = counts.take_ordered_by(10, |a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)))?;
        let distinct = counts.count()?;
        let total = counts.values().fold(0, |a, b| a + b)?;
        Ok((top, distinct, total))
    })??;
    println!("{}: {total} words, {distinct} distinct", shown.display());
    for (word, count) in top {
        println!("{count:>12}  {word}");
    }
    println!("elapsed: {:.3} s", started.elapsed().as_secs_f64());
    Ok(())
}
