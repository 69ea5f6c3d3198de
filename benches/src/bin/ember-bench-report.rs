//! Merges benchmark result lines, checks that the systems' answers agree, and prints the table.
//!
//! ```text
//! ember-bench-report [--reference] [--out-dir DIR] [--readme README.md] RESULTS.jsonl...
//! ```
//!
//! `--reference` also computes the sequential reference answers of the pair workloads and the
//! logistic regression (a few seconds) and checks every system against them. `--out-dir`
//! writes `latest.json` (rows, records, references) and `latest.md` there; `--readme` replaces
//! the table between the `<!-- results:start -->` and `<!-- results:end -->` markers.
//! Exits with status 2 when any answers differ.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ember_bench::answer;
use ember_bench::protocol::{LR_ITERATIONS, LR_POINTS, N_PAIRS, PAIR_KEYS};
use ember_bench::record::{read_records, workloads as w, Record};
use ember_bench::report::{build_rows, markdown, splice_results};
use ember_bench::BenchError;
use serde_json::{json, Value};

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(2),
        Err(e) => {
            eprintln!("ember-bench-report: {e}");
            std::process::exit(1);
        }
    }
}

fn references() -> BTreeMap<String, Value> {
    let start = Instant::now();
    let value = |v| serde_json::to_value(v).expect("answers serialize");
    let mut refs = BTreeMap::new();
    refs.insert(
        w::REDUCE_BY_KEY.to_owned(),
        value(json!(answer::reduce_by_key_reference(N_PAIRS, PAIR_KEYS))),
    );
    refs.insert(
        w::GROUP_BY_KEY.to_owned(),
        value(json!(answer::group_by_key_reference(N_PAIRS, PAIR_KEYS))),
    );
    refs.insert(
        w::JOIN.to_owned(),
        value(json!(answer::join_reference(N_PAIRS, PAIR_KEYS))),
    );
    refs.insert(
        w::SORT_BY_KEY.to_owned(),
        value(json!(answer::sort_reference(N_PAIRS, PAIR_KEYS))),
    );
    refs.insert(
        w::LOGISTIC_REGRESSION.to_owned(),
        value(json!(answer::lr_reference(LR_POINTS, LR_ITERATIONS))),
    );
    eprintln!(
        "ember-bench-report: reference answers computed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    refs
}

fn run() -> Result<bool, BenchError> {
    let mut files = Vec::new();
    let mut out_dir: Option<PathBuf> = None;
    let mut readme: Option<PathBuf> = None;
    let mut reference = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .map(PathBuf::from)
                .ok_or_else(|| BenchError::Argument {
                    arg: name.to_owned(),
                    reason: "needs a value".to_owned(),
                })
        };
        match arg.as_str() {
            "--reference" => reference = true,
            "--out-dir" => out_dir = Some(value("--out-dir")?),
            "--readme" => readme = Some(value("--readme")?),
            a if !a.starts_with('-') => files.push(PathBuf::from(a)),
            other => {
                return Err(BenchError::Argument {
                    arg: other.to_owned(),
                    reason: "usage: ember-bench-report [--reference] [--out-dir DIR] \
                             [--readme README.md] RESULTS.jsonl..."
                        .to_owned(),
                })
            }
        }
    }
    let mut records: Vec<Record> = Vec::new();
    for file in &files {
        records.extend(read_records(file)?);
    }
    let refs = if reference {
        references()
    } else {
        BTreeMap::new()
    };
    let rows = build_rows(&records, &refs);
    let table = markdown(&rows);
    println!("{table}");
    let agree = rows.iter().all(|r| !r.answers.starts_with("DIFFER"));

    if let Some(dir) = out_dir {
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        // The load when the report is written: a hint of how busy the machine was.
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        let summary = json!({
            "generated_unix": now,
            "cores": cores,
            "load_average_1min": load,
            "rows": rows,
            "records": records,
            "references": refs,
        });
        let path = dir.join("latest.json");
        let text = serde_json::to_string_pretty(&summary).expect("summary serializes");
        std::fs::write(&path, text + "\n").map_err(|e| BenchError::io(&path, e))?;
        let extras = describe_extras(&records);
        let md = format!(
            "# Latest benchmark results\n\nGenerated at unix time {now} on a {cores}-core machine \
             (1-minute load average {load} when the report was written; 2 Ember workers vs Spark \
             local[2]). Seconds are wall time inside each system; \
             logistic_regression is one cached iteration; startup compares a whole Ember \
             `word_count` process with Spark's JVM start-up plus `SparkContext` creation.\n\n\
             {table}\n{extras}"
        );
        let path = dir.join("latest.md");
        std::fs::write(&path, md).map_err(|e| BenchError::io(&path, e))?;
        eprintln!("ember-bench-report: wrote {}", dir.display());
    }
    if let Some(path) = readme {
        let doc = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
        match splice_results(&doc, &table) {
            Some(new) => std::fs::write(&path, new).map_err(|e| BenchError::io(&path, e))?,
            None => eprintln!(
                "ember-bench-report: {} has no results markers; left unchanged",
                path.display()
            ),
        }
    }
    if !agree {
        eprintln!("ember-bench-report: answers DIFFER (see the table)");
    }
    Ok(agree)
}

/// The extra figures worth showing below the table (Spark's start-up split, LR totals).
fn describe_extras(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        let fields: Vec<String> = r
            .extra
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "runs" | "iteration_seconds"))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !fields.is_empty() {
            out.push_str(&format!(
                "- {} {}: {:.3} s; {}\n",
                r.system,
                r.workload,
                r.seconds,
                fields.join(", ")
            ));
        }
    }
    out
}
