//! `ember-events`: summarizes an Ember event log (written when `ember.eventLog.dir` is set).
//!
//! ```text
//! ember-events [--json] [--conf k=v]... LOG
//! ```
//!
//! `LOG` is a local path or a URL (`s3://bucket/logs/app-....jsonl`); `--conf` passes storage
//! options (`ember.s3.endpoint=...`) for URLs. Prints per job and stage the task count, the
//! locality mix, tasks per worker, run time and scheduler delay (median and max) and where cached
//! blocks were read from; `--json` prints the same as one JSON object.

use std::process::ExitCode;

use ember::engine::scheduler::{read_event_log, summarize};
use ember::engine::Conf;

const USAGE: &str = "usage: ember-events [--json] [--conf k=v]... LOG";

fn main() -> ExitCode {
    let mut json = false;
    let mut conf = Conf::new();
    let mut log = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--conf" => {
                let Some(kv) = args.next() else {
                    eprintln!("ember-events: --conf needs k=v\n{USAGE}");
                    return ExitCode::from(2);
                };
                if let Err(e) = conf.apply_overrides([kv.as_str()]) {
                    eprintln!("ember-events: {e}");
                    return ExitCode::from(2);
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if log.is_none() && !arg.starts_with('-') => log = Some(arg),
            _ => {
                eprintln!("ember-events: unexpected argument `{arg}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(log) = log else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let lines = match read_event_log(&log, &conf.storage_config()) {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("ember-events: {e}");
            return ExitCode::FAILURE;
        }
    };
    let summary = summarize(&lines);
    if json {
        match serde_json::to_string_pretty(&summary) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("ember-events: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{summary}");
    }
    ExitCode::SUCCESS
}
