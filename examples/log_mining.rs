//! The classic log-mining session: keep the ERROR lines, split on tabs, keep the message, cache
//! it, then count messages mentioning "foo" and "bar". The second and third counts read the cache.
//! The lines are filtered and split while borrowed from the reader (`text_file_filter_map`), so
//! the lines dropped are never copied.
//!
//! `cargo run --release --example log_mining [LOGFILE] [key=value...]` (generates a sample log
//! of one million lines when no file is given).

mod common;

use std::time::Instant;

use ember::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (conf, args) = common::conf_from_args()?;
    let path = match args.first() {
        Some(p) => std::path::PathBuf::from(p),
        None => common::sample_log(1_000_000),
    };
    let report = ember::engine::run(conf, move |ctx| -> Result<Vec<String>, EngineError> {
        // Spark's `textFile(..).filter(..).map(..)`, parsed as the lines are read: only the
        // messages kept are copied out of the reader's buffer.
        let messages = ctx
            .text_file_filter_map(&path, ctx.num_workers() * 2, |l| {
                l.starts_with("ERROR")
                    .then(|| l.split('\t').nth(2).unwrap_or("").to_string())
            })?
            .cache();
        let mut out = Vec::new();
        for word in ["foo", "bar"] {
            let t = Instant::now();
            let n = messages.filter(move |m| m.contains(word)).count()?;
            out.push(format!(
                "{n:>9} error messages mention {word:<4} ({:.3} s)",
                t.elapsed().as_secs_f64()
            ));
        }
        out.push(format!("{:>9} error messages in all", messages.count()?));
        out.push(messages.lineage());
        Ok(out)
    })??;
    for line in report {
        println!("{line}");
    }
    Ok(())
}
