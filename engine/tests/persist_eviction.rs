//! LRU eviction across RDDs and the device budget, checked with the block manager's accounting.

use ember_engine::blocks::SizeOf;
use ember_engine::prelude::*;

/// 128 KiB of host bytes per element.
fn blob(i: i64) -> Vec<u8> {
    vec![(i % 251) as u8; 128 << 10]
}

#[test]
fn storing_a_new_rdd_evicts_least_recently_used_blocks_of_others() {
    let conf = Conf::new()
        .with("ember.master", "local[1]")
        .unwrap()
        .with("ember.memory.storage", "600k")
        .unwrap();
    let (after_b, after_a_again, sums) = ember_engine::run(conf, |ctx| {
        let a = ctx.range(0, 4, 1, 4).unwrap().map(blob).cache();
        let b = ctx.range(100, 104, 1, 4).unwrap().map(blob).cache();
        let sum = |r: &Rdd<Vec<u8>>| {
            r.map(|v| v.iter().map(|&x| x as u64).sum::<u64>())
                .reduce(|x, y| x + y)
                .unwrap()
        };
        let s1 = sum(&a); // A: 4 blocks, 512 KiB
        let s2 = sum(&b); // B needs room: A's least recently used blocks go
        let after_b = ctx.storage_report();
        let s3 = sum(&a);
        (after_b, ctx.storage_report(), (s1, s2, s3))
    })
    .unwrap();
    assert_eq!(sums.0, sums.2);
    let (a, b) = (
        after_b.rdd(0).or(after_b.rdds.first()).unwrap(),
        after_b.rdds.last().unwrap(),
    );
    assert_eq!(
        b.cached_partitions, 4,
        "the RDD being stored is never evicted for itself\n{after_b}"
    );
    assert!(a.cached_partitions < 4, "{after_b}");
    assert!(after_b.metrics.evictions >= 3, "{after_b}");
    assert!(after_b.peak_worker_host <= 600 << 10);
    // Reading A again recomputes its evicted blocks (and evicts B's in turn).
    assert_eq!(
        after_a_again.metrics.recomputations,
        4 - a.cached_partitions as u64,
        "{after_a_again}"
    );
}

/// A value whose buffer lives on a (pretend) device: counted in device bytes only.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct DeviceBuf {
    id: i64,
    device_len: usize,
}

impl SizeOf for DeviceBuf {
    fn device_bytes(&self) -> usize {
        self.device_len
    }
}

#[test]
fn device_budget_limits_device_bytes() {
    let conf = Conf::new()
        .with("ember.master", "local[1]")
        .unwrap()
        .with("ember.memory.device", "1m")
        .unwrap();
    let (report, ids) = ember_engine::run(conf, |ctx| {
        // 6 partitions of 512 KiB of device bytes: two fit the 1 MiB device budget.
        let r = ctx
            .range(0, 12, 1, 6)
            .unwrap()
            .map(|id| DeviceBuf {
                id,
                device_len: 256 << 10,
            })
            .persist(StorageLevel::MemoryOnly);
        let first: Vec<i64> = r.map(|d| d.id).collect().unwrap();
        let second: Vec<i64> = r.map(|d| d.id).collect().unwrap();
        assert_eq!(first, second);
        (ctx.storage_report(), first)
    })
    .unwrap();
    assert_eq!(ids, (0..12).collect::<Vec<_>>());
    let r = &report.rdds[0];
    assert!(r.device_bytes <= 1 << 20, "{report}");
    assert!(r.device_bytes >= 512 << 10, "{report}");
    assert!(
        r.cached_partitions >= 1 && r.cached_partitions < 6,
        "{report}"
    );
    assert!(report.device_used <= report.device_budget);
    assert!(report.metrics.recomputations > 0, "{report}");
}
