//! Writes the word-count benchmark text.
//!
//! ```text
//! ember-datagen --out PATH [--size 200MB] [--seed N]
//! ```
//!
//! The text is described in `ember_bench::text`: a 10k-word vocabulary, Zipf(1.1) ranks, lines
//! of 5..=20 words, all from a fixed seed. The file is written to `PATH.tmp` and renamed when
//! complete, so an interrupted run never leaves a truncated file behind.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use ember_bench::text::{self, DEFAULT_SEED, DEFAULT_SIZE};
use ember_bench::BenchError;

fn main() {
    if let Err(e) = run() {
        eprintln!("ember-datagen: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BenchError> {
    let mut out: Option<PathBuf> = None;
    let mut size = DEFAULT_SIZE;
    let mut seed = DEFAULT_SEED;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().ok_or_else(|| BenchError::Argument {
                arg: name.to_owned(),
                reason: "needs a value".to_owned(),
            })
        };
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--size" => size = text::parse_size(&value("--size")?)?,
            "--seed" => {
                let v = value("--seed")?;
                seed = v.parse().map_err(|_| BenchError::Argument {
                    arg: format!("--seed {v}"),
                    reason: "not an unsigned integer".to_owned(),
                })?;
            }
            "-h" | "--help" => {
                println!("usage: ember-datagen --out PATH [--size 200MB] [--seed N]");
                return Ok(());
            }
            other => {
                return Err(BenchError::Argument {
                    arg: other.to_owned(),
                    reason: "unknown (try --help)".to_owned(),
                })
            }
        }
    }
    let out = out.ok_or_else(|| BenchError::Argument {
        arg: "--out".to_owned(),
        reason: "is required".to_owned(),
    })?;
    let tmp = out.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| BenchError::io(&tmp, e))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template"),
        );
        bar
    });
    let start = Instant::now();
    let stats = text::generate(seed, size, &mut writer, |done| {
        if let Some(bar) = &bar {
            bar.set_position(done);
        }
    })
    .and_then(|s| writer.flush().map(|()| s))
    .map_err(|e| BenchError::io(&tmp, e))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    std::fs::rename(&tmp, &out).map_err(|e| BenchError::io(&out, e))?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "ember-datagen: wrote {} ({} bytes, {} lines, {} words, seed {seed}) in {secs:.2} s, {:.0} MB/s",
        out.display(),
        stats.bytes,
        stats.lines,
        stats.words,
        stats.bytes as f64 / 1e6 / secs
    );
    Ok(())
}
