//! Every storage level against the uncached answers, with the block manager's own accounting:
//! data three times the storage budget, two actions, budgets never exceeded.

use ember_engine::blocks::{SizeOf, StorageReport};
use ember_engine::prelude::*;

/// The report, taken before a barrier: peers that finish their driver code early drop their
/// RDD handles (and blocks), so a report must be taken while every worker is still running.
fn report(ctx: &Context) -> StorageReport {
    let r = ctx.storage_report();
    barrier(ctx);
    r
}

/// Every worker reaches this point before any goes on (a one-task job).
fn barrier(ctx: &Context) {
    ctx.range(0, 1, 1, 1).unwrap().count().unwrap();
}

const BUF: usize = 16 * 1024; // f32s per buffer: 64 KiB
const PARTS: usize = 12;
const PER_PART: usize = 4; // 256 KiB per partition, 3 MiB in all
const BUDGET: u64 = 512 << 10; // per worker; two workers hold 1 MiB, a third of the data

fn buffers(ctx: &Context) -> Rdd<Vec<f32>> {
    ctx.range(0, (PARTS * PER_PART) as i64, 1, PARTS)
        .unwrap()
        .map(|i| {
            (0..BUF)
                .map(|j| ((i as usize * 7 + j) % 1000) as f32)
                .collect::<Vec<f32>>()
        })
}

fn answers(rdd: &Rdd<Vec<f32>>) -> (u64, usize) {
    let sum = rdd
        .map(|b| b.iter().map(|&x| x as u64).sum::<u64>())
        .reduce(|a, b| a + b)
        .unwrap()
        .unwrap();
    let count = rdd.count().unwrap();
    (sum, count as usize)
}

fn run_level(level: Option<StorageLevel>) -> ((u64, usize), (u64, usize), StorageReport, usize) {
    let dir = tempfile::tempdir().unwrap();
    let conf = Conf::new()
        .with("ember.master", "local[2]")
        .unwrap()
        .with("ember.memory.storage", &BUDGET.to_string())
        .unwrap()
        .with("ember.local.dir", dir.path().to_str().unwrap())
        .unwrap();
    ember_engine::run(conf, move |ctx| {
        let rdd = buffers(ctx);
        let id = rdd.id();
        if let Some(l) = level {
            rdd.persist(l);
        }
        let first = answers(&rdd);
        let second = answers(&rdd);
        (first, second, report(ctx), id)
    })
    .unwrap()
}

#[test]
fn every_level_matches_uncached_and_stays_within_budget() {
    let (plain, plain2, _, _) = run_level(None);
    assert_eq!(plain, plain2);
    assert_eq!(plain.1, PARTS * PER_PART);
    let part_bytes = (PER_PART * (BUF * 4 + std::mem::size_of::<Vec<f32>>())) as u64;
    for level in StorageLevel::ALL {
        let (a, b, report, id) = run_level(Some(level));
        assert_eq!(a, plain, "{level}: first action");
        assert_eq!(b, plain, "{level}: second action");
        let r = report
            .rdd(id)
            .unwrap_or_else(|| panic!("{level}: rdd in report\n{report}"));
        assert_eq!(r.level, level);
        assert!(
            report.peak_worker_host <= BUDGET,
            "{level}: peak {}\n{report}",
            report.peak_worker_host
        );
        let m = report.metrics;
        // Four reads of each partition (two per action): the first always computes.
        assert_eq!(m.hits + m.misses, 4 * PARTS as u64, "{level}\n{report}");
        match level {
            StorageLevel::MemoryOnly | StorageLevel::MemoryOnlySer => {
                assert!(r.cached_partitions < PARTS, "{level}\n{report}");
                assert!(
                    r.cached_partitions >= 2,
                    "{level}: one per worker fits\n{report}"
                );
                assert_eq!(r.disk_bytes, 0);
                assert!(m.recomputations > 0 && m.dropped > 0, "{level}\n{report}");
                assert!(r.host_bytes <= 2 * BUDGET);
            }
            StorageLevel::MemoryAndDisk | StorageLevel::MemoryAndDiskSer => {
                assert_eq!(r.cached_partitions, PARTS, "{level}\n{report}");
                assert!(r.host_bytes > 0 && r.disk_bytes > 0, "{level}\n{report}");
                assert!(m.spills > 0);
                assert_eq!(m.misses, PARTS as u64, "computed once\n{report}");
                assert_eq!(m.recomputations, 0);
            }
            StorageLevel::DiskOnly => {
                assert_eq!(r.cached_partitions, PARTS);
                assert_eq!(
                    r.host_bytes, 0,
                    "DISK_ONLY holds nothing in memory\n{report}"
                );
                // Spill files are LZ4-compressed; these buffers repeat, so they shrink a lot.
                assert!(
                    r.disk_bytes > 0 && r.disk_bytes < PARTS as u64 * part_bytes,
                    "{report}"
                );
                assert_eq!(m.misses, PARTS as u64);
            }
        }
    }
}

#[derive(SizeOf, Clone, serde::Serialize, serde::Deserialize)]
struct Sample {
    id: u64,
    label: Option<String>,
    pixels: Vec<f32>,
}

#[derive(SizeOf, Clone, serde::Serialize, serde::Deserialize)]
enum Shape {
    Point,
    Named(String, u32),
}

#[test]
fn derived_sizes_are_what_the_block_manager_charges() {
    let conf = Conf::new().with("ember.master", "local[1]").unwrap();
    let (report, id, expected, shape_bytes) = ember_engine::run(conf, |ctx| {
        let samples: Vec<Sample> = (0..20u64)
            .map(|i| Sample {
                id: i,
                label: (i % 2 == 0).then(|| format!("label-{i}")),
                pixels: vec![i as f32; 100 + i as usize],
            })
            .collect();
        let rdd = ctx.parallelize(samples, 1).unwrap().cache();
        // Clones (as cached) have exact capacities; size what the RDD holds.
        let expected: usize = rdd.collect().unwrap().iter().map(SizeOf::host_bytes).sum();
        let shapes = [Shape::Point, Shape::Named("abc".into(), 1)];
        let shape_bytes: usize = shapes.iter().map(SizeOf::heap_bytes).sum();
        (report(ctx), rdd.id(), expected, shape_bytes)
    })
    .unwrap();
    assert_eq!(report.rdd(id).unwrap().host_bytes, expected as u64);
    // Each element: its inline struct, the label's capacity and the pixel buffer.
    let manual: usize = (0..20usize)
        .map(|i| {
            std::mem::size_of::<Sample>()
                + if i % 2 == 0 {
                    format!("label-{i}").len()
                } else {
                    0
                }
                + 4 * (100 + i)
        })
        .sum();
    assert_eq!(expected, manual);
    assert_eq!(shape_bytes, 3);
}

#[test]
fn serialized_text_holds_less_than_deserialized() {
    let mut bytes = Vec::new();
    for level in [StorageLevel::MemoryOnly, StorageLevel::MemoryOnlySer] {
        let conf = Conf::new().with("ember.master", "local[2]").unwrap();
        let (report, id, lines) = ember_engine::run(conf, move |ctx| {
            let rdd = ctx
                .range(0, 5000, 1, 4)
                .unwrap()
                .map(|i| format!("line {i} of the log"))
                .persist(level);
            let lines = rdd.collect().unwrap();
            (report(ctx), rdd.id(), lines)
        })
        .unwrap();
        assert_eq!(lines.len(), 5000);
        assert_eq!(lines[4999], "line 4999 of the log");
        let r = report.rdd(id).unwrap().clone();
        assert_eq!(r.cached_partitions, 4);
        bytes.push(r.host_bytes);
    }
    assert!(
        bytes[1] < bytes[0],
        "MEMORY_ONLY {} vs MEMORY_ONLY_SER {}",
        bytes[0],
        bytes[1]
    );
}

#[test]
fn unpersist_and_level_change_free_the_blocks() {
    let conf = Conf::new().with("ember.master", "local[2]").unwrap();
    let (before, after) = ember_engine::run(conf, |ctx| {
        let rdd = ctx
            .range(0, 1000, 1, 4)
            .unwrap()
            .map(|x| (x, x.to_string()))
            .cache();
        rdd.count().unwrap();
        let before = report(ctx);
        rdd.unpersist();
        barrier(ctx);
        (before, report(ctx))
    })
    .unwrap();
    assert_eq!(before.rdds[0].cached_partitions, 4);
    assert!(before.host_used > 0);
    assert!(after.rdds.is_empty());
    assert_eq!(after.host_used, 0);
    let table = before.to_string();
    assert!(
        table.contains("MEMORY_ONLY") && table.contains("4/4"),
        "{table}"
    );
}
