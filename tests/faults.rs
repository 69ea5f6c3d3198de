//! The fault suite (issue 12): a word count, a cached logistic regression and a data-parallel
//! training run (`ember_ml::distributed::DistributedNetwork`), each under injected faults, give
//! the fault-free answer or a typed error, and leave no partial output.
//!
//! Faults here: a task panicking once (retried, or its barrier stage restarted) and always (a
//! typed `JobFailed`, no output committed); cached blocks evicted between iterations; spill files
//! deleted or corrupted between iterations; a full scratch disk (a disk budget of one kilobyte);
//! the S3 server stopped (a typed error naming the URL, nothing published) and restarted (the
//! same answer). A killed process is `tests/submit.rs`'s (`ember-submit` restarts the cluster,
//! which resumes from its checkpoints with a clean run's answer); the narrower cases of each fault
//! are in `tests/failures.rs`, `engine/tests/persist_faults.rs` and
//! `storage/tests/format_faults.rs`.

#[path = "../storage/tests/common/mod.rs"]
mod s3;

use std::path::Path;

use ember::engine::task::current_attempt;
use ember::engine::{EngineError, StorageLevel};
use ember::ml::data::{one_hot, MiniBatch};
use ember::ml::distributed::{sharded_minibatches, DataParallel, DistributedNetwork};
use ember::ml::nn::{Activation, NetworkConfig};
use ember::ml::optim::{Method, OptimizerConfig};
use ember::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    PanicOnce,
    PanicAlways,
    Evict,
    DeleteSpills,
    CorruptSpills,
    FullScratch,
}

const ALL: [Fault; 7] = [
    Fault::None,
    Fault::PanicOnce,
    Fault::PanicAlways,
    Fault::Evict,
    Fault::DeleteSpills,
    Fault::CorruptSpills,
    Fault::FullScratch,
];

/// Panics in partition 1 as `fault` says (inside a task).
fn inject(fault: Fault, partition: usize) {
    let first = current_attempt() == Some(0);
    match fault {
        Fault::PanicAlways if partition == 1 => panic!("injected: always"),
        Fault::PanicOnce if partition == 1 && first => panic!("injected: once"),
        _ => {}
    }
}

/// What `fault` does between two iterations of a job on cached data.
fn between(ctx: &Context, fault: Fault) {
    let files = || {
        let mut f: Vec<_> = std::fs::read_dir(ctx.spill_dir())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        f.sort();
        f
    };
    match fault {
        Fault::Evict => ctx.evict_cached_blocks(),
        Fault::DeleteSpills => files().iter().for_each(|f| {
            let _ = std::fs::remove_file(f);
        }),
        Fault::CorruptSpills => {
            for f in files() {
                if let Ok(mut b) = std::fs::read(&f) {
                    if !b.is_empty() {
                        let mid = b.len() / 2;
                        b[mid] ^= 0x5a;
                        let _ = std::fs::write(&f, b);
                    }
                }
            }
        }
        _ => {}
    }
}

fn conf(workers: usize, scratch: &Path, fault: Fault) -> Conf {
    let mut c = Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .unwrap()
        .with("ember.local.dir", scratch.to_str().unwrap())
        .unwrap()
        .with("ember.task.maxFailures", "2")
        .unwrap();
    if matches!(fault, Fault::DeleteSpills | Fault::CorruptSpills) {
        // Cached blocks go to disk, so there are spill files to damage.
        c.set("ember.memory.storage", "1k").unwrap();
    }
    if fault == Fault::FullScratch {
        c.set("ember.memory.storage", "1k").unwrap();
        c.set("ember.memory.disk", "1k").unwrap();
    }
    c
}

/// Word counts of the files under `input`, saved under `out` and read back, sorted.
fn word_count(
    ctx: &Context,
    input: &str,
    out: &str,
    fault: Fault,
) -> Result<Vec<String>, EngineError> {
    ctx.text_file(input, 4)?
        .map_partitions_with_index(move |p, it| {
            inject(fault, p);
            it
        })
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .map(|w| (w, 1u64))
        .reduce_by_key(|a, b| a + b)
        .map(|(w, n)| format!("{w} {n}"))
        .save_as_text_file(out)?;
    let mut lines = ctx.text_file(out, 2)?.collect()?;
    lines.sort();
    Ok(lines)
}

/// Five steps of logistic regression's gradient descent over cached points: the weights' bits,
/// and the block manager's counts (evictions, lost or corrupt blocks, recomputations).
fn logistic_regression(ctx: &Context, fault: Fault) -> Result<(Vec<u64>, [u64; 3]), EngineError> {
    let points: Vec<(f64, f64, f64)> = (0..400)
        .map(|i| {
            let (x, y) = ((i % 20) as f64 / 10.0 - 1.0, (i / 20) as f64 / 10.0 - 1.0);
            (x, y, if x + 0.5 * y > 0.1 { 1.0 } else { 0.0 })
        })
        .collect();
    let data = ctx
        .parallelize(points, 4)?
        .map_partitions_with_index(move |p, it| {
            inject(fault, p);
            it
        })
        .persist(StorageLevel::MemoryAndDiskSer);
    let mut w = [0.0f64; 2];
    for step in 0..5 {
        if step > 0 {
            between(ctx, fault);
        }
        let wc = w;
        let grad = data
            .map(move |(x, y, label)| {
                let p = 1.0 / (1.0 + (-(wc[0] * x + wc[1] * y)).exp());
                [(p - label) * x, (p - label) * y]
            })
            .reduce(|a, b| [a[0] + b[0], a[1] + b[1]])?
            .unwrap_or([0.0; 2]);
        w = [w[0] - 0.5 * grad[0] / 400.0, w[1] - 0.5 * grad[1] / 400.0];
    }
    let m = ctx.storage_report().metrics;
    let counts = [m.evictions, m.corrupt_or_missing, m.recomputations];
    Ok((w.iter().map(|v| v.to_bits()).collect(), counts))
}

/// Two epochs of data-parallel training of a small network; the parameters' bits.
fn training(ctx: &Context, fault: Fault) -> ember::ml::Result<Vec<u32>> {
    let rows = 128;
    let class = |r: usize| (r * 7 + r / 3) % 3;
    let features = ndarray::Array2::from_shape_fn((rows, 8), |(r, c)| {
        ((r * 131 + c * 71) % 101) as f32 / 101.0 + if c % 3 == class(r) { 0.8 } else { 0.0 }
    });
    let labels = one_hot(&(0..rows).map(class).collect::<Vec<_>>(), 3)?;
    let data = MiniBatch::new(features, labels)?;
    let batches = sharded_minibatches(ctx, &data, 32, ctx.num_workers())?
        .map_partitions_with_index(move |p, it| {
            inject(fault, p);
            it
        })
        .cache();
    let net = NetworkConfig::builder(&[8])
        .dense(8, Activation::Relu)
        .dense(3, Activation::Identity)
        .seed(5)
        .build()?;
    let opt = OptimizerConfig::new(Method::Sgd, 0.1);
    let mut dn = DistributedNetwork::new(ctx, net, opt, DataParallel::default())?;
    for epoch in 0..2 {
        if epoch > 0 {
            between(ctx, fault);
        }
        dn.fit(&batches)?;
    }
    let bits = dn.network().params().iter().map(|v| v.to_bits()).collect();
    Ok(bits)
}

fn is_injected_failure(e: &str) -> bool {
    e.contains("injected: always")
}

#[test]
fn word_count_under_faults() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    for f in 0..4 {
        let text: String = (0..300)
            .map(|i| format!("w{} w{} x\n", (i * 7 + f) % 13, i % 5))
            .collect();
        std::fs::write(input.join(format!("part-{f}.txt")), text).unwrap();
    }
    let input = input.to_str().unwrap().to_string();
    let mut want = None;
    for fault in ALL {
        let scratch = tempfile::tempdir().unwrap();
        let out = dir.path().join(format!("out-{fault:?}"));
        let (i, o) = (input.clone(), out.to_str().unwrap().to_string());
        let got = ember_engine_run(conf(2, scratch.path(), fault), move |ctx| {
            word_count(ctx, &i, &o, fault)
        });
        match (fault, got) {
            (Fault::PanicAlways, Err(e)) => {
                assert!(is_injected_failure(&e), "{e}");
                assert!(
                    !out.exists(),
                    "a failed job left output at {}",
                    out.display()
                );
            }
            (_, Ok(lines)) => {
                let w = want.get_or_insert_with(|| lines.clone());
                assert_eq!(&lines, w, "{fault:?}");
            }
            (fault, Err(e)) => panic!("{fault:?}: {e}"),
        }
    }
    assert!(want.is_some_and(|w| w.len() == 14));
}

/// Runs `driver` on local workers; the first worker's result, errors as text.
fn ember_engine_run<R: Send + 'static, E: std::fmt::Display + Send + 'static>(
    conf: Conf,
    driver: impl Fn(&Context) -> Result<R, E> + Send + Sync + 'static,
) -> Result<R, String> {
    match ember::engine::run(conf, driver) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn cached_logistic_regression_under_faults() {
    let mut want = None;
    for fault in ALL {
        let scratch = tempfile::tempdir().unwrap();
        let got = ember_engine_run(conf(2, scratch.path(), fault), move |ctx| {
            logistic_regression(ctx, fault)
        });
        match (fault, got) {
            (Fault::PanicAlways, Err(e)) => assert!(is_injected_failure(&e), "{e}"),
            (_, Ok((w, [evicted, lost, recomputed]))) => {
                assert_eq!(&w, want.get_or_insert_with(|| w.clone()), "{fault:?}");
                // The fault happened (the same answer is not from an untouched cache).
                match fault {
                    Fault::Evict => assert!(evicted > 0, "{fault:?}"),
                    Fault::DeleteSpills | Fault::CorruptSpills => {
                        assert!(lost > 0 && recomputed > 0, "{fault:?}: {lost} {recomputed}")
                    }
                    Fault::FullScratch => assert!(recomputed > 0, "{fault:?}"),
                    _ => {}
                }
            }
            (fault, Err(e)) => panic!("{fault:?}: {e}"),
        }
    }
}

#[test]
fn distributed_training_under_faults() {
    let mut want = None;
    for fault in ALL {
        let scratch = tempfile::tempdir().unwrap();
        let got = ember_engine_run(conf(2, scratch.path(), fault), move |ctx| {
            training(ctx, fault)
        });
        match (fault, got) {
            (Fault::PanicAlways, Err(e)) => assert!(is_injected_failure(&e), "{e}"),
            (_, Ok(p)) => assert_eq!(&p, want.get_or_insert_with(|| p.clone()), "{fault:?}"),
            (fault, Err(e)) => panic!("{fault:?}: {e}"),
        }
    }
}

#[test]
fn word_count_over_s3_while_its_server_stops_and_restarts() {
    let mut server = s3::S3Server::start();
    let bucket = server.bucket("faults");
    let text: String = (0..500)
        .map(|i| format!("a{} b{}\n", i % 7, i % 3))
        .collect();
    std::fs::write(server.root.path().join("faults/in.txt"), &text).unwrap();
    let conf = |server: &s3::S3Server| {
        server.settings().iter().fold(
            Conf::new().with("ember.master", "local[2]").unwrap(),
            |c, (k, v)| c.with(k, v).unwrap(),
        )
    };
    let run = |server: &s3::S3Server, out: &str| {
        let (i, o) = (format!("{bucket}/in.txt"), format!("{bucket}/{out}"));
        ember_engine_run(conf(server), move |ctx| {
            word_count(ctx, &i, &o, Fault::None)
        })
    };
    let want = run(&server, "first").unwrap();
    assert_eq!(want.len(), 10);
    server.kill();
    let err = run(&server, "while-stopped").unwrap_err();
    assert!(
        err.contains("s3://faults/"),
        "the error names the URL: {err}"
    );
    server.restart();
    assert!(
        !server
            .root
            .path()
            .join("faults/while-stopped/_SUCCESS")
            .exists(),
        "nothing published while the server was down"
    );
    assert_eq!(run(&server, "after-restart").unwrap(), want);
}
