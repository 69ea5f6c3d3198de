//! Shared setup for the examples: configuration from the environment and `key=value` arguments,
//! logging to stderr, and the sample data the examples generate when given no input.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ember::engine::{Conf, Result};

/// The configuration: defaults (`local[2]`), `EMBER_CONF_FILE`, `EMBER_*` variables, then every
/// `key=value` argument. Returns the remaining (positional) arguments.
pub fn conf_from_args() -> Result<(Conf, Vec<String>)> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("EMBER_LOG"))
        .with_writer(std::io::stderr)
        .try_init();
    let mut conf = Conf::from_env()?;
    let (overrides, positional): (Vec<String>, Vec<String>) = std::env::args()
        .skip(1)
        .partition(|a| a.contains('=') && a.starts_with("ember."));
    conf.apply_overrides(overrides.iter().map(String::as_str))?;
    Ok((conf, positional))
}

/// A generated text file (10k-word vocabulary, Zipf 1.1, fixed seed: the benchmark's generator)
/// of about `bytes` bytes, created once under the system temp directory.
pub fn sample_text(bytes: u64) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ember-sample-{bytes}.txt"));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create sample text"));
        ember_bench::text::generate(ember_bench::text::DEFAULT_SEED, bytes, &mut out, |_| {})
            .expect("write sample text");
        drop(out);
        std::fs::rename(&tmp, &path).expect("publish sample text");
    }
    path
}

/// A generated web-server-style log of `lines` lines, a tenth of them errors, created once.
pub fn sample_log(lines: usize) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ember-sample-log-{lines}.txt"));
    if !Path::new(&path).exists() {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create sample log"));
        let subsystems = ["php", "mysql", "cache", "auth"];
        let messages = [
            "foo timed out",
            "bar refused connection",
            "disk full",
            "foo and bar both failed",
            "ok",
        ];
        for i in 0..lines {
            let h = ember::engine::shuffle::mix64(i as u64);
            let level = if h.is_multiple_of(10) {
                "ERROR"
            } else if h % 10 < 3 {
                "WARN"
            } else {
                "INFO"
            };
            let sub = subsystems[(h >> 8) as usize % subsystems.len()];
            let msg = messages[(h >> 16) as usize % messages.len()];
            writeln!(out, "{level}\t{sub}\t{msg} (request {i})").expect("write sample log");
        }
        drop(out);
        std::fs::rename(&tmp, &path).expect("publish sample log");
    }
    path
}
