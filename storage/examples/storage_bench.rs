//! Storage benchmarks (run through `benches/storage/run.sh`; numbers are printed, never asserted):
//!
//! 1. text: line iteration over splits (storage-level readers, and the engine's
//!    `text_file(..).count()` and `text_file_filter_map(..).count()` on 1 and 2 local workers) vs
//!    a raw read of the same file through the same store path with no parsing, on as many
//!    threads (target: >= 70%), with the file in the page cache and evicted from it;
//! 2. Parquet: scan with a projection on 2 worker threads vs pyarrow `read_table(columns=...)` on
//!    the same file in the same run (when `EMBER_BENCH_PYTHON` points at a Python with pyarrow);
//! 3. S3: our streaming reader vs a plain `object_store` GET loop, and text lines (storage reader
//!    and engine) vs a plain single GET of the same object, on the same `s3s-fs` server (when the
//!    binary is found, see `.ci/setup.d/40-s3s.sh`).
//!
//! Usage: `storage_bench [--dir DIR] [--text-mb N] [--rounds N] [--parquet-rows N] [--s3-mb N]`
//! (0 skips a part).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ember_storage::reader::ObjectReader;
use ember_storage::sink::ParquetPartWriter;
use ember_storage::{
    parquet_splits, read_parquet_split, text_splits, LineReader, Location, ObjectWriter,
    ParquetScan, Split, StorageConfig, Utf8Mode,
};
use object_store::ObjectStoreExt;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn dir_arg() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ember-storage-bench"))
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// Best of `n` runs.
fn best<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        let d = t.elapsed();
        if best.as_ref().is_none_or(|(b, _)| d < *b) {
            best = Some((d, v));
        }
    }
    best.expect("n > 0")
}

/// Log-like lines; every `utf8_every`-th line carries non-ASCII words, the others are ASCII.
fn gen_text(path: &Path, mb: u64, utf8_every: u64) {
    if path.metadata().is_ok_and(|m| m.len() >= mb << 20) {
        return;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let words = [
        "error",
        "warn",
        "info",
        "request",
        "GET",
        "/api/v1/items",
        "200",
        "latency_ms=",
        "user",
        "naïve",
    ];
    let utf8 = ["é→", "Zürich", "東京"];
    let mut x: u64 = 42;
    let mut written = 0u64;
    let mut i = 0u64;
    while written < mb << 20 {
        let mut line = format!("{i:010} ");
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for k in 0..(4 + (x >> 60)) {
            let w = words[((x >> (k * 4)) % words.len() as u64) as usize];
            line.push_str(if w == "naïve" {
                if i.is_multiple_of(utf8_every) {
                    utf8[(k % 3) as usize]
                } else {
                    "plain"
                }
            } else {
                w
            });
            line.push(' ');
        }
        line.push('\n');
        std::io::Write::write_all(&mut out, line.as_bytes()).unwrap();
        written += line.len() as u64;
        i += 1;
    }
}

/// Median of the samples.
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Reads the bytes of `splits` through the store path the line reader uses (`ObjectReader`, 1 MiB
/// reads), no parsing: the raw read speed of the same bytes. With `threads` > 1 the splits are
/// shared among that many threads, like the engine's workers.
fn raw_store_read(splits: &[Split], cfg: &StorageConfig, threads: usize) -> u64 {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = vec![0u8; 1 << 20];
                    let mut n = 0u64;
                    while let Some(s) =
                        splits.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        let loc = Location::resolve(&s.url, cfg).unwrap();
                        let mut r = ObjectReader::open(&loc, s.start, s.end, s.end, cfg).unwrap();
                        loop {
                            let k = r.read(&mut buf).unwrap();
                            if k == 0 {
                                break;
                            }
                            n += k as u64;
                        }
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// How the engine reads the lines it counts.
#[derive(Clone, Copy)]
enum EngineLines {
    /// `text_file`: an owned `String` per line (`Rdd<String>`).
    Owned,
    /// `text_file_filter_map`: each line borrowed by the parse function (here, its length).
    Parsed,
}

/// `text_file(url).count()` (or its borrowed-line twin) on the engine with `workers` local workers
/// (their start included).
fn engine_count(url: &str, workers: usize, how: EngineLines) -> u64 {
    engine_count_with(url, workers, how, &[])
}

/// [`engine_count`] with more configuration (an S3 endpoint and its keys).
fn engine_count_with(url: &str, workers: usize, how: EngineLines, conf: &[(&str, &str)]) -> u64 {
    let mut c = ember_engine::Conf::new()
        .with("ember.master", &format!("local[{workers}]"))
        .unwrap();
    for (k, v) in conf {
        c = c.with(k, v).unwrap();
    }
    let conf = c;
    let url = url.to_string();
    ember_engine::run(conf, move |ctx| match how {
        EngineLines::Owned => ctx.text_file(&url, workers).unwrap().count().unwrap(),
        EngineLines::Parsed => ctx
            .text_file_filter_map(&url, workers, |l| Some(l.len() as u32))
            .unwrap()
            .count()
            .unwrap(),
    })
    .unwrap()
}

/// Drops `path` from this machine's page cache (`posix_fadvise(DONTNEED)`, no privileges
/// needed), so the next read of it goes to the disk device.
fn evict(path: &Path) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: a valid open descriptor; offset 0 and length 0 mean the whole file.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise on {}", path.display());
}

/// One measured variant: its name, the variant it is compared with (a raw read), and whether it
/// reads with the file evicted from the page cache.
struct Variant<'a> {
    name: &'static str,
    baseline: Option<usize>,
    cold: bool,
    run: Box<dyn Fn() + 'a>,
}

/// Line throughput against the raw read of the same file, in the same run, with the file in the
/// page cache (warm: the raw read is a memory copy) and evicted from it before every variant
/// (cold: the raw read is the disk's speed). Every round runs each variant once (so load changes
/// hit all of them alike) and each figure is the median of the rounds.
fn bench_text(dir: &Path, name: &str, mb: u64, utf8_every: u64, rounds: usize) {
    let path = dir.join(name);
    gen_text(&path, mb, utf8_every);
    println!("text: {name}: non-ASCII words in 1 of every {utf8_every} lines");
    let len = path.metadata().unwrap().len();
    let url = path.to_str().unwrap();
    let cfg = StorageConfig::new();
    let splits = text_splits(url, 1, &cfg).unwrap();
    let raw_file = || {
        let mut f = std::fs::File::open(&path).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let k = f.read(&mut buf).unwrap();
            if k == 0 {
                break n;
            }
            n += k as u64;
        }
    };
    let each = || {
        let (mut lines, mut bytes) = (0u64, 0u64);
        for s in &splits {
            let mut r = LineReader::open(s, &cfg, Utf8Mode::Strict).unwrap();
            r.for_each_line(|l| {
                lines += 1;
                bytes += l.len() as u64;
            })
            .unwrap();
        }
        (lines, bytes)
    };
    let next_line = || {
        let (mut lines, mut bytes) = (0u64, 0u64);
        for s in &splits {
            let mut r = LineReader::open(s, &cfg, Utf8Mode::Strict).unwrap();
            while let Some(l) = r.next_line().unwrap() {
                lines += 1;
                bytes += l.len() as u64;
            }
        }
        (lines, bytes)
    };
    let owned = || {
        let mut lines = 0u64;
        for s in &splits {
            for l in LineReader::open(s, &cfg, Utf8Mode::Strict).unwrap() {
                std::hint::black_box(l.unwrap());
                lines += 1;
            }
        }
        lines
    };
    assert_eq!(raw_file(), len); // also warms the page cache
    let (lines, bytes) = each();
    assert_eq!(next_line(), (lines, bytes));
    assert_eq!(owned(), lines);
    let (splits_ref, cfg_ref) = (&splits, &cfg);
    let raw = |threads| move || assert_eq!(raw_store_read(splits_ref, cfg_ref, threads), len);
    let engine = |workers, how| move || assert_eq!(engine_count(url, workers, how), lines);
    let v = |name, baseline, cold, run| Variant {
        name,
        baseline,
        cold,
        run,
    };
    use EngineLines::{Owned, Parsed};
    let variants = [
        // Warm: 0..=9.
        v(
            "raw read, std::fs::File, 1 MiB reads, 1 thread",
            None,
            false,
            Box::new(|| assert_eq!(raw_file(), len)),
        ),
        v(
            "raw read, ObjectReader (same store path), 1 thread",
            None,
            false,
            Box::new(raw(1)),
        ),
        v(
            "LineReader::for_each_line (&str)",
            Some(1),
            false,
            Box::new(|| assert_eq!(each().0, lines)),
        ),
        v(
            "LineReader::next_line (borrowed &str)",
            Some(1),
            false,
            Box::new(|| assert_eq!(next_line().0, lines)),
        ),
        v(
            "LineReader iterator (owned String)",
            Some(1),
            false,
            Box::new(|| assert_eq!(owned(), lines)),
        ),
        v(
            "engine text_file(..).count(), local[1]",
            Some(1),
            false,
            Box::new(engine(1, Owned)),
        ),
        v(
            "engine text_file_filter_map(..).count(), local[1]",
            Some(1),
            false,
            Box::new(engine(1, Parsed)),
        ),
        v(
            "raw read, ObjectReader, 2 threads",
            None,
            false,
            Box::new(raw(2)),
        ),
        v(
            "engine text_file(..).count(), local[2]",
            Some(7),
            false,
            Box::new(engine(2, Owned)),
        ),
        v(
            "engine text_file_filter_map(..).count(), local[2]",
            Some(7),
            false,
            Box::new(engine(2, Parsed)),
        ),
        // Cold: 10..=15.
        v(
            "raw read, ObjectReader, 1 thread",
            None,
            true,
            Box::new(raw(1)),
        ),
        v(
            "engine text_file(..).count(), local[1]",
            Some(10),
            true,
            Box::new(engine(1, Owned)),
        ),
        v(
            "engine text_file_filter_map(..).count(), local[1]",
            Some(10),
            true,
            Box::new(engine(1, Parsed)),
        ),
        v(
            "raw read, ObjectReader, 2 threads",
            None,
            true,
            Box::new(raw(2)),
        ),
        v(
            "engine text_file(..).count(), local[2]",
            Some(13),
            true,
            Box::new(engine(2, Owned)),
        ),
        v(
            "engine text_file_filter_map(..).count(), local[2]",
            Some(13),
            true,
            Box::new(engine(2, Parsed)),
        ),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    let load_before = load_average();
    for _ in 0..rounds {
        for (v, t) in variants.iter().zip(&mut times) {
            if v.cold {
                evict(&path);
            } else {
                assert_eq!(raw_file(), len);
            }
            let start = Instant::now();
            (v.run)();
            t.push(start.elapsed());
        }
    }
    let med: Vec<Duration> = times.into_iter().map(median).collect();
    println!(
        "text: file {:.0} MB, {} splits, {lines} lines ({bytes} bytes of text); median of {rounds} \
         interleaved rounds; load average {load_before} before, {} after",
        len as f64 / 1e6,
        splits.len(),
        load_average()
    );
    for (i, v) in variants.iter().enumerate() {
        if i == 0 || i == 10 {
            let what = if v.cold {
                "cold: the file evicted from the page cache before every variant"
            } else {
                "warm: the file in the page cache (the raw read is a memory copy)"
            };
            println!("text: {what}");
        }
        let vs = v.baseline.map_or(String::new(), |b| {
            format!(
                "  = {:.0}% of \"{}\"",
                100.0 * med[b].as_secs_f64() / med[i].as_secs_f64(),
                variants[b].name
            )
        });
        println!("text: {:52} {:8.0} MB/s{vs}", v.name, mbps(len, med[i]));
    }
}

fn gen_parquet(path: &Path, rows: usize) {
    if path.exists() {
        return;
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, false),
        Field::new("k", DataType::Int32, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("z", DataType::Int64, false),
    ]));
    let cfg = StorageConfig::new();
    let loc = Location::resolve(path.to_str().unwrap(), &cfg).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut w = ParquetPartWriter::with_properties(
        ObjectWriter::create(&loc, &cfg).unwrap(),
        schema.clone(),
        props,
    )
    .unwrap();
    let batch = 1 << 16;
    let mut start = 0usize;
    while start < rows {
        let n = batch.min(rows - start);
        let ids = (start..start + n).map(|i| i as i64);
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(ids.clone())),
                Arc::new(Float64Array::from_iter_values(
                    ids.clone().map(|i| (i as f64 * 0.37).sin()),
                )),
                Arc::new(Float64Array::from_iter_values(
                    ids.clone().map(|i| (i % 1000) as f64),
                )),
                Arc::new(Int32Array::from_iter_values(
                    ids.clone().map(|i| (i % 97) as i32),
                )),
                Arc::new(StringArray::from_iter_values(
                    ids.clone().map(|i| format!("name-{}", i % 5000)),
                )),
                Arc::new(Int64Array::from_iter_values(
                    ids.map(|i| i.wrapping_mul(2654435761) % 1_000_003),
                )),
            ],
        )
        .unwrap();
        w.write(&b).unwrap();
        start += n;
    }
    w.finish().unwrap();
}

fn bench_parquet(dir: &Path, rows: usize) {
    let path = dir.join(format!("bench-{rows}.parquet"));
    gen_parquet(&path, rows);
    let url = path.to_str().unwrap().to_string();
    let cfg = StorageConfig::new();
    let columns = ["id", "x", "name"];
    let scan = ParquetScan {
        projection: Some(columns.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let plan = parquet_splits(&url, &scan, &cfg).unwrap();
    let workers = 2;
    let (t, total_rows) = best(3, || {
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| {
                        let mut rows = 0usize;
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(split) = plan.splits.get(i) else {
                                break rows;
                            };
                            for b in read_parquet_split(split, &scan, &cfg).unwrap() {
                                let b = b.unwrap();
                                rows += b.num_rows();
                                std::hint::black_box(b.column(1).len());
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum::<usize>()
        })
    });
    assert_eq!(total_rows, rows);
    let size = path.metadata().unwrap().len();
    println!(
        "parquet: file {:.0} MB, {rows} rows, {} row groups, projection {:?}",
        size as f64 / 1e6,
        plan.splits.len(),
        columns
    );
    println!(
        "parquet: ember scan, {workers} workers             {:8.3} s  ({:.1} M rows/s)",
        t.as_secs_f64(),
        rows as f64 / t.as_secs_f64() / 1e6
    );
    match std::env::var("EMBER_BENCH_PYTHON") {
        Ok(py) => {
            let script = format!(
                "import time, pyarrow, pyarrow.parquet as pq\nbest=1e9\nfor _ in range(3):\n    t=time.perf_counter(); tb=pq.read_table({url:?}, columns={columns:?}); best=min(best,time.perf_counter()-t)\nassert tb.num_rows=={rows}\nprint(best, pyarrow.__version__, pyarrow.cpu_count())"
            );
            match Command::new(&py).arg("-c").arg(&script).output() {
                Ok(out) if out.status.success() => {
                    let text = String::from_utf8_lossy(&out.stdout);
                    let mut it = text.split_whitespace();
                    let secs: f64 = it.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
                    let ver = it.next().unwrap_or("?");
                    let threads = it.next().unwrap_or("?");
                    println!("parquet: pyarrow {ver} read_table, {threads} threads {secs:8.3} s  ({:.1} M rows/s)", rows as f64 / secs / 1e6);
                    println!("parquet: ember / pyarrow speed ratio        {:8.2}x", secs / t.as_secs_f64());
                }
                Ok(out) => println!("parquet: pyarrow run failed: {}", String::from_utf8_lossy(&out.stderr)),
                Err(e) => println!("parquet: cannot run {py}: {e}"),
            }
        }
        Err(_) => println!("parquet: pyarrow comparison skipped (EMBER_BENCH_PYTHON not set; use benches/storage/run.sh)"),
    }
}

fn find_s3s_fs() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("EMBER_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let tools = std::env::var("EMBER_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/ember-tools")
        });
    let p = tools.join("bin/s3s-fs");
    p.is_file().then_some(p)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bench_s3(dir: &Path, mb: u64) {
    let Some(bin) = find_s3s_fs() else {
        println!("s3: skipped (s3s-fs not found; run .ci/setup.d/40-s3s.sh)");
        return;
    };
    let root = dir.join("s3root");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("bench")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                "bench",
                "--secret-key",
                "benchsecret",
            ])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    let s3_conf = [
        ("ember.s3.endpoint", endpoint.as_str()),
        ("ember.s3.accessKey", "bench"),
        ("ember.s3.secretKey", "benchsecret"),
        ("ember.s3.region", "us-east-1"),
    ];
    let cfg = s3_conf
        .iter()
        .fold(StorageConfig::new(), |c, (k, v)| c.with(*k, *v));
    let text = dir.join("log-ascii.txt");
    gen_text(&text, mb, 16);
    let mut data = std::fs::read(&text).unwrap();
    data.truncate((mb << 20) as usize);
    let len = data.len() as u64;
    let loc = Location::resolve("s3://bench/data.txt", &cfg).unwrap();
    let mut w = ObjectWriter::create(&loc, &cfg).unwrap();
    std::io::Write::write_all(&mut w, &data).unwrap();
    w.close().unwrap();
    drop(data);
    let chunk = cfg.read_chunk().unwrap();
    let (t_plain, n_plain) = best(3, || {
        let store = loc.store().clone();
        let path = loc.path().clone();
        ember_storage::runtime::block_on(async move {
            let mut n = 0u64;
            let mut off = 0u64;
            while off < len {
                let end = (off + chunk).min(len);
                n += store.get_range(&path, off..end).await.unwrap().len() as u64;
                off = end;
            }
            n
        })
    });
    let (t_single, n_single) = best(3, || {
        let store = loc.store().clone();
        let path = loc.path().clone();
        ember_storage::runtime::block_on(async move {
            store.get(&path).await.unwrap().bytes().await.unwrap().len() as u64
        })
    });
    let (t_ours, n_ours) = best(3, || {
        let mut r = ObjectReader::open_whole(&loc, &cfg).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let k = r.read(&mut buf).unwrap();
            if k == 0 {
                break n;
            }
            n += k as u64;
        }
    });
    let splits = text_splits("s3://bench/data.txt", 1, &cfg).unwrap();
    let (t_lines, _) = best(3, || {
        let mut lines = 0u64;
        for s in &splits {
            let mut r = LineReader::open(s, &cfg, Utf8Mode::Strict).unwrap();
            while r.next_line().unwrap().is_some() {
                lines += 1;
            }
        }
        lines
    });
    let url = "s3://bench/data.txt";
    let (t_engine, n_engine) = best(3, || {
        engine_count_with(url, 2, EngineLines::Owned, &s3_conf)
    });
    let (t_parsed, n_parsed) = best(3, || {
        engine_count_with(url, 2, EngineLines::Parsed, &s3_conf)
    });
    assert_eq!((n_plain, n_single, n_ours), (len, len, len));
    assert_eq!(n_engine, n_parsed);
    println!(
        "s3: object {:.0} MB on s3s-fs at 127.0.0.1, readChunk {} MiB",
        len as f64 / 1e6,
        chunk >> 20
    );
    println!(
        "s3: plain object_store get_range loop       {:8.0} MB/s",
        mbps(len, t_plain)
    );
    println!(
        "s3: plain object_store single GET           {:8.0} MB/s",
        mbps(len, t_single)
    );
    println!(
        "s3: ember ObjectReader (read-ahead {})       {:8.0} MB/s  = {:.0}% of the GET loop",
        cfg.read_ahead().unwrap(),
        mbps(len, t_ours),
        100.0 * t_plain.as_secs_f64() / t_ours.as_secs_f64()
    );
    for (name, t) in [
        ("ember text splits -> lines, 1 thread", t_lines),
        ("engine text_file(..).count(), local[2]", t_engine),
        (
            "engine text_file_filter_map(..).count(), local[2]",
            t_parsed,
        ),
    ] {
        println!(
            "s3: {name:50} {:8.0} MB/s  = {:.0}% of the single GET",
            mbps(len, t),
            100.0 * t_single.as_secs_f64() / t.as_secs_f64()
        );
    }
}

fn main() {
    let dir = dir_arg();
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "storage bench in {} ({} cores)",
        dir.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rounds = arg("--rounds", 5) as usize;
    let text_mb = arg("--text-mb", 512);
    if text_mb > 0 {
        bench_text(&dir, "log-ascii.txt", text_mb, 16, rounds);
        bench_text(&dir, "log-utf8.txt", text_mb / 2, 1, rounds);
    }
    let rows = arg("--parquet-rows", 10_000_000) as usize;
    if rows > 0 {
        bench_parquet(&dir, rows);
    }
    let s3_mb = arg("--s3-mb", 256);
    if s3_mb > 0 {
        bench_s3(&dir, s3_mb);
    }
}
