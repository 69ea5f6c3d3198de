//! Storage levels measured: memory footprint of `MEMORY_ONLY_SER` against `MEMORY_ONLY` (text
//! lines, f32 tensors), re-read speed of each level relative to `MEMORY_ONLY`, the block codec's
//! read-back bandwidth against a plain copy of the same bytes, and the cached logistic
//! regression of the engine benchmark under each level.
//!
//! ```text
//! ember-storage-levels-bench [--workers 2] [--tensors 256] [--lines 1000000] [--lr-points N] [--only footprint,reread,codec,lr]
//! ```
//!
//! Every figure comes from the block manager's own accounting or from wall-clock timing of the
//! second (cached) pass; each timing is the best of three. LR lines use the engine benchmark's
//! result-line format (`workload` = `logistic_regression`, `storage_level` added).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use ember_bench::protocol::{lr_point, LR_ITERATIONS, LR_POINTS, PARTITIONS};
use ember_engine::blocks::codec::{BlockWriter, ChunkReader, Codec, Compression, CHUNK_BYTES};
use ember_engine::blocks::{human_bytes, pod, SizeOf};
use ember_engine::{Conf, Context, EngineError, Rdd, StorageLevel};
use serde::{Deserialize, Serialize};

const FLOATS: usize = 1 << 18;

/// A 1 MiB f32 tensor with the raw-bytes serde path.
#[derive(Clone, Serialize, Deserialize, SizeOf)]
struct Tensor {
    id: u32,
    #[serde(with = "pod")]
    data: Vec<f32>,
}

/// The same tensor with serde's default per-number encoding.
#[derive(Clone, Serialize, Deserialize, SizeOf)]
struct PlainTensor {
    id: u32,
    data: Vec<f32>,
}

fn tensor(i: u64) -> Tensor {
    let mut s = ember_bench::mix::SplitMix64::new(i);
    let data = (0..FLOATS)
        .map(|_| (s.next_u64() >> 40) as f32 / 1024.0)
        .collect();
    Tensor { id: i as u32, data }
}

fn line(i: u64) -> String {
    let h = ember_bench::mix::mix(i);
    format!(
        "10.0.{}.{} - - [21/Nov/2026:05:{:02}:{:02}] \"GET /api/v1/items/{} HTTP/1.1\" {} {}",
        h % 256,
        (h >> 8) % 256,
        (h >> 16) % 60,
        (h >> 24) % 60,
        (h >> 32) % 100_000,
        [200, 200, 200, 404, 500][((h >> 48) % 5) as usize],
        (h >> 52) % 50_000
    )
}

struct Args {
    workers: usize,
    tensors: u64,
    lines: u64,
    lr_points: u64,
    only: Option<Vec<String>>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        workers: 2,
        tensors: 256,
        lines: 1_000_000,
        lr_points: LR_POINTS,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{arg}: {e}"));
        match arg.as_str() {
            "--workers" => a.workers = num(value()?)? as usize,
            "--tensors" => a.tensors = num(value()?)?,
            "--lines" => a.lines = num(value()?)?,
            "--lr-points" => a.lr_points = num(value()?)?,
            "--only" => a.only = Some(value()?.split(',').map(str::to_owned).collect()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn conf(workers: usize, extra: &[(&str, &str)]) -> Result<Conf, EngineError> {
    let mut c = Conf::new()
        .with("ember.master", &format!("local[{workers}]"))?
        .with("ember.memory.storage", "8g")?;
    for (k, v) in extra {
        c.set(k, v)?;
    }
    Ok(c)
}

/// Persists `make(ctx)` at `level`, materializes it, then times `pass` (best of three);
/// returns (host bytes, disk bytes, first pass s, best cached pass s, answer).
fn measure<T: ember_engine::Data + SizeOf>(
    workers: usize,
    extra: &[(&str, &str)],
    level: StorageLevel,
    make: impl Fn(&Context) -> Result<Rdd<T>, EngineError> + Send + Sync + 'static,
    pass: impl Fn(&Rdd<T>) -> Result<f64, EngineError> + Send + Sync + 'static,
) -> Result<(u64, u64, f64, f64, f64), EngineError> {
    ember_engine::run(
        conf(workers, extra)?,
        move |ctx| -> Result<_, EngineError> {
            let rdd = make(ctx)?.persist(level);
            let t = Instant::now();
            let answer = pass(&rdd)?;
            let first = t.elapsed().as_secs_f64();
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t = Instant::now();
                let a = pass(&rdd)?;
                best = best.min(t.elapsed().as_secs_f64());
                assert_eq!(a.to_bits(), answer.to_bits(), "cached pass differs");
            }
            let report = ctx.storage_report();
            let r = report.rdd(rdd.id()).cloned();
            ctx.range(0, 1, 1, 1)?.count()?;
            let r = r.expect("persisted rdd in the report");
            Ok((r.host_bytes, r.disk_bytes, first, best, answer))
        },
    )?
}

fn tensor_pass(r: &Rdd<Tensor>) -> Result<f64, EngineError> {
    Ok(r.map(|t| t.data.iter().map(|&x| x as f64).sum::<f64>())
        .reduce(|a, b| a + b)?
        .unwrap_or(0.0))
}

fn line_pass(r: &Rdd<String>) -> Result<f64, EngineError> {
    Ok(r.map(|l| l.len() as f64)
        .reduce(|a, b| a + b)?
        .unwrap_or(0.0))
}

fn footprint_and_reread(args: &Args, reread: bool) -> Result<(), EngineError> {
    let w = args.workers;
    let (tensors, lines) = (args.tensors, args.lines);
    let cases: Vec<(&str, &[(&str, &str)])> =
        vec![("", &[]), (" +lz4", &[("ember.rdd.compress", "true")])];
    let levels: Vec<StorageLevel> = if reread {
        StorageLevel::ALL.to_vec()
    } else {
        vec![StorageLevel::MemoryOnly, StorageLevel::MemoryOnlySer]
    };
    for (what, is_tensor) in [("f32 tensors", true), ("text lines", false)] {
        let mut base = None;
        for &(suffix, extra) in &cases {
            for &level in &levels {
                if !suffix.is_empty() && level.deserialized() {
                    continue;
                }
                let (host, disk, first, best, answer) = if is_tensor {
                    measure(
                        w,
                        extra,
                        level,
                        move |ctx| {
                            Ok(ctx
                                .range(0, tensors as i64, 1, PARTITIONS)?
                                .map(|i| tensor(i as u64)))
                        },
                        tensor_pass,
                    )?
                } else {
                    measure(
                        w,
                        extra,
                        level,
                        move |ctx| {
                            Ok(ctx
                                .range(0, lines as i64, 1, PARTITIONS)?
                                .map(|i| line(i as u64)))
                        },
                        line_pass,
                    )?
                };
                let (base_host, base_time) = *base.get_or_insert((host, best));
                println!(
                    "STORAGE {what:<11} {:<24} memory {:>10} ({:>5.2}x MEMORY_ONLY)  disk {:>10}  compute+cache {:>6.3}s  cached pass {:>7.4}s ({:>5.2}x MEMORY_ONLY time)  answer {answer}",
                    format!("{level}{suffix}"),
                    human_bytes(host),
                    host as f64 / base_host.max(1) as f64,
                    human_bytes(disk),
                    first,
                    best,
                    best / base_time
                );
            }
        }
    }
    Ok(())
}

fn bandwidth(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

fn best_of(n: usize, mut f: impl FnMut()) -> f64 {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn encode<T: Serialize>(codec: Codec, items: &[T], per_chunk: usize) -> Vec<u8> {
    let mut w = BlockWriter::memory(codec);
    for c in items.chunks(per_chunk) {
        w.write_chunk(c).expect("encode");
    }
    w.finish_memory().expect("finish")
}

fn decode_all<T: serde::de::DeserializeOwned>(bytes: &Arc<Vec<u8>>) -> usize {
    let mut r = ChunkReader::<T>::memory(Arc::clone(bytes), "bench".into()).expect("header");
    let mut n = 0;
    while let Some(chunk) = r.next_chunk().expect("chunk") {
        n += chunk.len();
        black_box(chunk);
    }
    n
}

fn codec_bench(args: &Args) {
    let n = args.tensors.min(128) as usize;
    let tensors: Vec<Tensor> = (0..n as u64).map(tensor).collect();
    let plain: Vec<PlainTensor> = tensors
        .iter()
        .map(|t| PlainTensor {
            id: t.id,
            data: t.data.clone(),
        })
        .collect();
    let raw_bytes = n * FLOATS * 4;
    let per_chunk = (CHUNK_BYTES / (FLOATS * 4)).max(1);
    // The reference: copy the same bytes into freshly allocated buffers (what a decode must do).
    let memcpy = best_of(5, || {
        for t in &tensors {
            let mut v = vec![0f32; FLOATS];
            v.copy_from_slice(&t.data);
            black_box(v);
        }
    });
    println!(
        "CODEC memcpy of {} into new buffers: {:.2} GB/s",
        human_bytes(raw_bytes as u64),
        bandwidth(raw_bytes, memcpy)
    );
    for (name, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let codec = Codec::new(compression);
        let enc_t = best_of(3, || {
            black_box(encode(codec, &tensors, per_chunk));
        });
        let bytes = Arc::new(encode(codec, &tensors, per_chunk));
        let dec_t = best_of(5, || {
            assert_eq!(decode_all::<Tensor>(&bytes), n);
        });
        let plain_bytes = Arc::new(encode(codec, &plain, per_chunk));
        let plain_dec = best_of(3, || {
            assert_eq!(decode_all::<PlainTensor>(&plain_bytes), n);
        });
        println!(
            "CODEC {name:<4} pod: encoded {} ({:.3}x raw), encode {:.2} GB/s, read back {:.2} GB/s = {:.0}% of memcpy | per-number serde: read back {:.2} GB/s = {:.0}% of memcpy",
            human_bytes(bytes.len() as u64),
            bytes.len() as f64 / raw_bytes as f64,
            bandwidth(raw_bytes, enc_t),
            bandwidth(raw_bytes, dec_t),
            100.0 * memcpy / dec_t,
            bandwidth(raw_bytes, plain_dec),
            100.0 * memcpy / plain_dec
        );
    }
}

fn lr(args: &Args) -> Result<(), EngineError> {
    let n = args.lr_points;
    for level in StorageLevel::ALL {
        let (w_final, iters) = ember_engine::run(
            conf(args.workers, &[])?,
            move |ctx| -> Result<_, EngineError> {
                let points = ctx
                    .range(0, n as i64, 1, PARTITIONS)?
                    .map(|i| lr_point(i as u64))
                    .persist(level);
                points.count()?;
                ember_bench::lr::train(&points, n, LR_ITERATIONS)
            },
        )??;
        let mut rec = ember_bench::lr::record(&w_final, &iters);
        rec.extra
            .insert("storage_level".into(), level.to_string().into());
        println!("{}", rec.to_line());
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ember-storage-levels-bench: {e}");
            std::process::exit(2);
        }
    };
    let wanted = |w: &str| args.only.as_ref().is_none_or(|o| o.iter().any(|x| x == w));
    let result = (|| -> Result<(), EngineError> {
        if wanted("footprint") || wanted("reread") {
            footprint_and_reread(&args, wanted("reread"))?;
        }
        if wanted("codec") {
            codec_bench(&args);
        }
        if wanted("lr") {
            lr(&args)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("ember-storage-levels-bench: {e}");
        std::process::exit(1);
    }
}
