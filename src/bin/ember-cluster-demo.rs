//! A self-checking job suite that runs unchanged in local and cluster mode, printing its
//! answers as one JSON object (from worker 0).
//!
//! Local: `ember-cluster-demo` (or `EMBER_MASTER=local[4] ember-cluster-demo`).
//! Two processes on this host, two workers each (run both):
//! ```text
//! EMBER_MASTER=cluster EMBER_CLUSTER_HOSTS=127.0.0.1:7400,127.0.0.1:7401 EMBER_CLUSTER_PROCESS=0 ember-cluster-demo
//! EMBER_MASTER=cluster EMBER_CLUSTER_HOSTS=127.0.0.1:7400,127.0.0.1:7401 EMBER_CLUSTER_PROCESS=1 ember-cluster-demo
//! ```

use std::collections::BTreeMap;

use ember::prelude::*;
use serde_json::json;

fn main() {
    let conf = match Conf::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ember-cluster-demo: {e}");
            std::process::exit(2);
        }
    };
    // For fault tests: this process exits abruptly once its first job is done.
    let crash_process: Option<usize> = std::env::var("EMBER_DEMO_CRASH_PROCESS")
        .ok()
        .and_then(|v| v.parse().ok());
    let this_process: Option<usize> = std::env::var("EMBER_CLUSTER_PROCESS")
        .ok()
        .and_then(|v| v.parse().ok());
    let crash = crash_process.is_some() && crash_process == this_process;
    let result = ember::engine::run(
        conf,
        move |ctx| -> Result<Option<serde_json::Value>, EngineError> {
            let lines: Vec<String> = (0..2000u64)
                .map(|i| {
                    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
                    (0..(i % 7 + 1))
                        .map(|j| words[((i * 31 + j * 17) % 6) as usize])
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            let text = ctx.parallelize(lines, 6)?;
            let mut word_counts: Vec<(String, u64)> = text
                .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
                .map(|w| (w, 1u64))
                .reduce_by_key(|a, b| a + b)
                .collect()?;
            word_counts.sort();
            if crash {
                std::process::exit(3);
            }

            let pairs = ctx
                .range(0, 50_000, 1, 8)?
                .map(|i| ((i * 7919) % 1000, i))
                .cache();
            let sums: BTreeMap<i64, i64> = pairs
                .reduce_by_key(|a, b| a + b)
                .collect()?
                .into_iter()
                .collect();
            let group_sizes: u64 = pairs
                .group_by_key()
                .map(|(_, v)| v.len() as u64)
                .reduce(|a, b| a + b)?
                .unwrap_or(0);
            let right = ctx.range(0, 1000, 2, 3)?.map(|k| (k, k * 10));
            let joined = pairs.join(&right);
            let join_rows = joined.count()?;
            let join_sum: i64 = joined.map(|(_, (v, w))| v + w).fold(0, |a, b| a + b)?;
            let sorted = pairs.sort_by_key(true, Some(5))?.keys().collect()?;
            let is_sorted = sorted.windows(2).all(|w| w[0] <= w[1]);

            let table = ctx.broadcast((0..10).map(|i| i * i).collect::<Vec<i64>>())?;
            let looked_up: i64 = ctx
                .range(0, 100, 1, 4)?
                .map(move |i| table[(i % 10) as usize])
                .fold(0, |a, b| a + b)?;
            let seen = ctx.accumulator(0u64);
            let acc = seen.clone();
            ctx.range(0, 1234, 1, 5)?.foreach(move |_| acc.add(1))?;

            let indexed = ctx
                .range(0, 100, 1, 3)?
                .zip_with_index()?
                .filter(|(x, i)| *x as u64 != *i)
                .count()?;
            let cart = ctx
                .range(0, 20, 1, 3)?
                .cartesian(&ctx.range(0, 7, 1, 2)?)
                .count()?;
            let coalesced = ctx.range(0, 1000, 1, 8)?.coalesce(4)?.collect()?;
            let distinct = pairs.keys().distinct().count()?;

            let answer = json!({
                "workers": ctx.num_workers(),
                "word_counts": word_counts,
                "reduce_by_key_keys": sums.len(),
                "reduce_by_key_checksum": sums.iter().map(|(k, v)| k * 31 + v).sum::<i64>(),
                "group_sizes": group_sizes,
                "join_rows": join_rows,
                "join_sum": join_sum,
                "sorted_rows": sorted.len(),
                "sorted": is_sorted,
                "broadcast_lookup": looked_up,
                "accumulator": seen.value(),
                "zip_with_index_mismatches": indexed,
                "cartesian": cart,
                "coalesced_sum": coalesced.iter().sum::<i64>(),
                "distinct_keys": distinct,
            });
            Ok((ctx.worker_index() == 0).then_some(answer))
        },
    );
    match result {
        Ok(Ok(Some(answer))) => println!("{answer}"),
        Ok(Ok(None)) => {}
        Ok(Err(e)) | Err(e) => {
            eprintln!("ember-cluster-demo: {e}");
            std::process::exit(1);
        }
    }
}
