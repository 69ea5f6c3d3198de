//! Lost and damaged blocks: a spill directory deleted mid-job, corrupt spill files, everything
//! evicted between two actions, a full disk budget. Same answers every time, counted in the
//! block manager's metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ember_engine::prelude::*;
use ember_engine::StorageReport;

fn conf(extra: &[(&str, &str)], dir: &std::path::Path) -> Conf {
    let mut c = Conf::new()
        .with("ember.master", "local[1]")
        .unwrap()
        .with("ember.local.dir", dir.to_str().unwrap())
        .unwrap();
    for (k, v) in extra {
        c.set(k, v).unwrap();
    }
    c
}

/// 8 partitions of 32 KiB buffers of distinct values.
fn data(ctx: &Context) -> Rdd<(u64, Vec<u32>)> {
    ctx.range(0, 64, 1, 8).unwrap().map(|i| {
        (
            i as u64,
            (0..8192u32)
                .map(|j| j ^ (i as u32).wrapping_mul(2654435761))
                .collect(),
        )
    })
}

fn answer(rdd: &Rdd<(u64, Vec<u32>)>) -> u64 {
    rdd.map(|(k, v)| k + v.iter().map(|&x| x as u64).sum::<u64>())
        .reduce(|a, b| a + b)
        .unwrap()
        .unwrap()
}

fn expected() -> u64 {
    let dir = tempfile::tempdir().unwrap();
    ember_engine::run(conf(&[], dir.path()), |ctx| answer(&data(ctx))).unwrap()
}

fn spill_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn spill_directory_deleted_mid_job_is_recomputed() {
    let want = expected();
    let dir = tempfile::tempdir().unwrap();
    let (answers, report) = ember_engine::run(conf(&[], dir.path()), |ctx| {
        let rdd = data(ctx).persist(StorageLevel::DiskOnly);
        let first = answer(&rdd);
        let spill = ctx.spill_dir();
        assert_eq!(spill_files(&spill).len(), 8);
        // The first task of the next job deletes the whole spill directory.
        let deleted = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&deleted);
        let second = rdd
            .map(move |(k, v)| {
                if !d.swap(true, Ordering::SeqCst) {
                    std::fs::remove_dir_all(&spill).unwrap();
                }
                k + v.iter().map(|&x| x as u64).sum::<u64>()
            })
            .reduce(|a, b| a + b)
            .unwrap()
            .unwrap();
        assert!(deleted.load(Ordering::SeqCst));
        let third = answer(&rdd);
        (vec![first, second, third], ctx.storage_report())
    })
    .unwrap();
    assert_eq!(answers, vec![want; 3]);
    let m = report.metrics;
    // Partition 0 was already open when its file went (read in the second job, found missing
    // in the third); the other 7 were found missing in the second.
    assert_eq!(m.corrupt_or_missing, 8, "{report}");
    assert_eq!(m.recomputations, 8, "{report}");
    assert_eq!((m.hits, m.misses), (1 + 7, 8 + 7 + 1), "{report}");
    assert_eq!(
        report.rdds[0].cached_partitions, 8,
        "rewritten after recomputation\n{report}"
    );
}

#[test]
fn corrupt_spill_files_are_detected_and_recomputed() {
    let want = expected();
    for codec in ["lz4", "none"] {
        let dir = tempfile::tempdir().unwrap();
        let c = conf(&[("ember.io.compression.codec", codec)], dir.path());
        let (answers, report): (Vec<u64>, StorageReport) = ember_engine::run(c, |ctx| {
            let rdd = data(ctx).persist(StorageLevel::DiskOnly);
            let first = answer(&rdd);
            let files = spill_files(&ctx.spill_dir());
            // Flip a byte in the middle of every other block file.
            for f in files.iter().step_by(2) {
                let mut bytes = std::fs::read(f).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x55;
                std::fs::write(f, bytes).unwrap();
            }
            let second = answer(&rdd);
            let third = answer(&rdd);
            (vec![first, second, third], ctx.storage_report())
        })
        .unwrap();
        assert_eq!(answers, vec![want; 3], "{codec}");
        assert_eq!(report.metrics.corrupt_or_missing, 4, "{codec}: {report}");
        assert_eq!(report.metrics.recomputations, 4, "{codec}: {report}");
    }
}

#[test]
fn evicting_everything_between_actions() {
    let want = expected();
    for level in [
        StorageLevel::MemoryOnly,
        StorageLevel::MemoryAndDiskSer,
        StorageLevel::MemoryAndDisk,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (answers, evicted, after) = ember_engine::run(conf(&[], dir.path()), move |ctx| {
            let rdd = data(ctx).persist(level);
            let first = answer(&rdd);
            ctx.evict_cached_blocks();
            let evicted = ctx.storage_report();
            let second = answer(&rdd);
            (vec![first, second], evicted, ctx.storage_report())
        })
        .unwrap();
        assert_eq!(answers, vec![want; 2], "{level}");
        let r = &evicted.rdds[0];
        assert_eq!(
            r.host_bytes, 0,
            "{level}: nothing left in memory\n{evicted}"
        );
        assert_eq!(evicted.metrics.evictions, 8, "{level}\n{evicted}");
        if level == StorageLevel::MemoryOnly {
            assert_eq!(r.cached_partitions, 0);
            assert_eq!(after.metrics.recomputations, 8, "{after}");
        } else {
            assert_eq!(r.cached_partitions, 8, "{level}: spilled\n{evicted}");
            assert!(r.disk_bytes > 0);
            assert_eq!(after.metrics.spills, 8);
            assert_eq!(
                after.metrics.hits, 8,
                "{level}: read back from disk\n{after}"
            );
            assert_eq!(after.metrics.recomputations, 0);
        }
    }
}

#[test]
fn full_disk_budget_leaves_partitions_uncached_with_same_answers() {
    let want = expected();
    let dir = tempfile::tempdir().unwrap();
    let c = conf(
        &[
            ("ember.memory.disk", "100k"),
            ("ember.io.compression.codec", "none"),
        ],
        dir.path(),
    );
    let (answers, report) = ember_engine::run(c, |ctx| {
        let rdd = data(ctx).persist(StorageLevel::DiskOnly);
        (vec![answer(&rdd), answer(&rdd)], ctx.storage_report())
    })
    .unwrap();
    assert_eq!(answers, vec![want; 2]);
    assert!(report.disk_used <= 100 << 10, "{report}");
    let r = &report.rdds[0];
    // 256 KiB per partition uncompressed: none fits a 100 KiB disk budget.
    assert_eq!(r.cached_partitions, 0, "{report}");
    assert_eq!(report.metrics.dropped, 16, "{report}");
    assert!(spill_files(&report_dir(&dir)).is_empty());
}

fn report_dir(dir: &tempfile::TempDir) -> std::path::PathBuf {
    // The process's spill directory is removed when the application ends.
    std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .next()
        .unwrap_or_else(|| dir.path().join("none"))
}

#[test]
fn partition_larger_than_the_budget_never_overflows_it() {
    let want = expected();
    let dir = tempfile::tempdir().unwrap();
    for level in StorageLevel::ALL {
        // Each partition holds 256 KiB; the budget is 100 KiB.
        let c = conf(&[("ember.memory.storage", "100k")], dir.path());
        let (a, report) = ember_engine::run(c, move |ctx| {
            let rdd = data(ctx).persist(level);
            (vec![answer(&rdd), answer(&rdd)], ctx.storage_report())
        })
        .unwrap();
        assert_eq!(a, vec![want; 2], "{level}");
        assert!(report.peak_worker_host <= 100 << 10, "{level}\n{report}");
        assert_eq!(report.rdds[0].host_bytes, 0, "{level}\n{report}");
        if level.use_disk() {
            assert_eq!(report.rdds[0].cached_partitions, 8, "{level}\n{report}");
        } else {
            assert_eq!(report.metrics.recomputations, 8, "{level}\n{report}");
        }
    }
    assert!(
        spill_files(dir.path()).is_empty(),
        "spill directories removed at exit"
    );
}
