//! Caching tensors whose bytes the JVM would not see: an RDD of 1 MiB `f32` buffers totalling
//! three times the storage budget, persisted at each storage level and read by two actions.
//!
//! For every level the answers equal the uncached run, and the worker process's peak resident
//! memory (VmHWM) stays within the storage budget of its workers plus 10% plus a fixed baseline
//! (the executable, timely's buffers and the one partition in flight per worker). Spark sizes
//! such buffers as a few bytes of JVM object and overflows the heap with MEMORY_ONLY.
//!
//! `cargo run --release --example tensor_cache [BUFFERS_PER_PARTITION] [key=value...]`
//! (defaults: `local[2]`, `ember.memory.storage=64m` per worker, 16 partitions of 24 buffers:
//! 384 MiB). Each level runs in a fresh child process so that each peak RSS is its own; the
//! children use `MALLOC_MMAP_THRESHOLD_=65536` so freed buffers go back to the system at once.

mod common;

use std::process::Command;
use std::time::Instant;

use ember::engine::blocks::{human_bytes, pod, SizeOf};
use ember::prelude::*;
use serde::{Deserialize, Serialize};

/// A tensor-like value: its bytes live in a heap buffer, which `SizeOf` reports.
#[derive(Clone, Serialize, Deserialize, SizeOf)]
struct Tensor {
    id: u32,
    #[serde(with = "pod")]
    data: Vec<f32>,
}

const FLOATS: usize = 1 << 18; // 1 MiB of f32
const PARTITIONS: usize = 16;
/// Fixed baseline allowed above budget + 10%: binary, allocator and one buffer in flight per worker.
const BASELINE: u64 = 48 << 20;

fn tensor(i: u32) -> Tensor {
    let data = (0..FLOATS)
        .map(|j| ((i as usize * 31 + j) % 997) as f32)
        .collect();
    Tensor { id: i, data }
}

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// One level (or none) in this process: prints one result line and the storage report.
fn child(
    level: Option<StorageLevel>,
    per_part: usize,
    conf: Conf,
) -> Result<(), Box<dyn std::error::Error>> {
    let workers = conf.total_workers()? as u64;
    let (answers, report, times) =
        ember::engine::run(conf, move |ctx| -> Result<_, EngineError> {
            let n = (PARTITIONS * per_part) as i64;
            let rdd = ctx.range(0, n, 1, PARTITIONS)?.map(|i| tensor(i as u32));
            if let Some(l) = level {
                rdd.persist(l);
            }
            let mut answers = Vec::new();
            let mut times = Vec::new();
            for _ in 0..2 {
                let t = Instant::now();
                let sum = rdd
                    .map(|t| t.data.iter().map(|&x| x as f64).sum::<f64>() + t.id as f64)
                    .reduce(|a, b| a + b)?
                    .unwrap_or(0.0);
                answers.push(sum);
                times.push(t.elapsed().as_secs_f64());
            }
            let report = ctx.storage_report();
            ctx.range(0, 1, 1, 1)?.count()?; // every worker is still here when the report is taken
            Ok((answers, report, times))
        })??;
    let name = level.map_or("NONE".to_string(), |l| l.to_string());
    let budget = report.host_budget.saturating_mul(workers);
    let peak = peak_rss();
    let bound = budget.saturating_add(budget / 10).saturating_add(BASELINE);
    println!(
        "RESULT level={name} sum={:.1} second={:.1} action1_s={:.2} action2_s={:.2} peak_rss={} budget={} bound={} within={}",
        answers[0], answers[1], times[0], times[1], peak, budget, bound, peak <= bound
    );
    if level.is_some() {
        println!("{report}");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut conf, args) = common::conf_from_args()?;
    if conf.get("ember.memory.storage").is_none() {
        conf.set("ember.memory.storage", "64m")?;
    }
    let per_part: usize = args.first().map(|a| a.parse()).transpose()?.unwrap_or(24);
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let level = match args.get(pos + 1).map(String::as_str) {
            Some("NONE") | None => None,
            Some(l) => Some(l.parse()?),
        };
        return child(level, per_part, conf);
    }
    let total = (PARTITIONS * per_part) as u64 * (FLOATS * 4) as u64;
    let budget = conf.get_bytes("ember.memory.storage").unwrap_or(0) * conf.total_workers()? as u64;
    println!(
        "{} buffers of {} ({}) in {PARTITIONS} partitions; storage budget {} in all ({}x); element size as SizeOf sees it: {}",
        PARTITIONS * per_part,
        human_bytes((FLOATS * 4) as u64),
        human_bytes(total),
        human_bytes(budget),
        total as f64 / budget.max(1) as f64,
        human_bytes(tensor(0).host_bytes() as u64)
    );
    let me = std::env::current_exe()?;
    let passthrough: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.starts_with("ember."))
        .collect();
    let mut reference = None;
    let mut all_ok = true;
    for level in std::iter::once("NONE".to_string()).chain(StorageLevel::ALL.map(|l| l.to_string()))
    {
        let out = Command::new(&me)
            .arg(per_part.to_string())
            .args(&passthrough)
            .args(["--child", &level])
            .env("MALLOC_MMAP_THRESHOLD_", "65536")
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        print!("{text}");
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            return Err(format!("level {level} failed").into());
        }
        let line = text
            .lines()
            .find(|l| l.starts_with("RESULT"))
            .unwrap_or_default()
            .to_string();
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{k}=")).map(str::to_string))
                .unwrap_or_default()
        };
        let (sum, second) = (field("sum"), field("second"));
        let reference = reference.get_or_insert_with(|| sum.clone());
        let same = &sum == reference && &second == reference;
        let within = field("within") == "true";
        all_ok &= same && (within || level == "NONE");
        println!(
            "==> {level}: answers {} the uncached run; peak RSS {} (bound {}){}\n",
            if same { "equal" } else { "DIFFER FROM" },
            human_bytes(field("peak_rss").parse().unwrap_or(0)),
            human_bytes(field("bound").parse().unwrap_or(0)),
            if within { "" } else { " EXCEEDED" }
        );
    }
    if !all_ok {
        return Err("some level differed from the uncached answers or exceeded its bound".into());
    }
    Ok(())
}
