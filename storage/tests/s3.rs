//! Against a real S3-protocol server (`s3s-fs`, installed by `.ci/setup.d/40-s3s.sh`): reads,
//! ranged split reads, compressed globs, writes (single and multipart), job commit, listing, bad
//! credentials, missing bucket/object, and the server dying mid-read.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{S3Server, SECRET_KEY};
use ember_storage::reader::ObjectReader;
use ember_storage::{
    list_inputs, parquet_splits, read_parquet_split, text_splits, JobCommitter, LineReader,
    Location, ObjectWriter, ParquetScan, SaveMode, StorageConfig, StorageError, Utf8Mode,
};

fn lines_of(url: &str, min_parts: usize, cfg: &StorageConfig) -> Vec<String> {
    text_splits(url, min_parts, cfg)
        .unwrap()
        .iter()
        .flat_map(|s| {
            LineReader::open(s, cfg, Utf8Mode::Strict)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        })
        .collect()
}

#[test]
fn s3_write_list_and_ranged_split_reads() {
    let server = S3Server::start();
    let bucket = server.bucket("data");
    // Small chunks and splits so that each split takes several ranged GETs and finishes its last
    // line with extra GETs past its end.
    let cfg = server
        .config()
        .with("ember.storage.readChunk", "4k")
        .with("ember.storage.maxSplitBytes", "10000");
    let text = common::sample_text(4000, 5);
    let url = format!("{bucket}/logs/day1.txt");
    let loc = Location::resolve(&url, &cfg).unwrap();
    let mut w = ObjectWriter::create(&loc, &cfg).unwrap();
    std::io::Write::write_all(&mut w, text.as_bytes()).unwrap();
    w.close().unwrap();
    Location::resolve(&format!("{bucket}/logs/day2.txt"), &cfg)
        .unwrap()
        .put(b"x\ny\n".to_vec())
        .unwrap();
    Location::resolve(&format!("{bucket}/logs/_hidden"), &cfg)
        .unwrap()
        .put(b"no\n".to_vec())
        .unwrap();

    let files = list_inputs(&format!("{bucket}/logs"), &cfg).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.location.file_name().to_string())
        .collect();
    assert_eq!(names, vec!["day1.txt", "day2.txt"]);
    assert_eq!(files[0].size, text.len() as u64);
    assert_eq!(
        list_inputs(&format!("{bucket}/logs/*1.txt"), &cfg)
            .unwrap()
            .len(),
        1
    );

    let splits = text_splits(&url, 1, &cfg).unwrap();
    assert!(splits.len() > 10, "{} splits", splits.len());
    let got = lines_of(&url, 1, &cfg);
    let expected: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(got, expected);
    assert_eq!(
        lines_of(&format!("{bucket}/logs"), 1, &cfg).len(),
        expected.len() + 2
    );
}

#[test]
fn s3_multipart_upload_and_whole_read() {
    let server = S3Server::start();
    let bucket = server.bucket("big");
    let cfg = server.config().with("ember.storage.writePartSize", "5m");
    let loc = Location::resolve(&format!("{bucket}/blob.bin"), &cfg).unwrap();
    let data: Vec<u8> = (0..12u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let mut w = ObjectWriter::create(&loc, &cfg).unwrap();
    for chunk in data.chunks(1 << 20) {
        std::io::Write::write_all(&mut w, chunk).unwrap();
    }
    assert_eq!(w.close().unwrap(), data.len() as u64);
    assert_eq!(loc.head().unwrap().size, data.len() as u64);
    let mut back = Vec::new();
    ObjectReader::open_whole(&loc, &cfg)
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == data, "multipart object differs");
    assert_eq!(loc.get_range(5, 10).unwrap().as_ref(), &data[5..10]);
}

#[test]
fn s3_job_commit_parquet_and_abort() {
    let server = S3Server::start();
    let bucket = server.bucket("warehouse");
    let cfg = server.config();
    let dest = format!("{bucket}/tables/t1");
    let schema = std::sync::Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "v",
        arrow_schema::DataType::Int64,
        false,
    )]));
    let job = JobCommitter::new(&dest, "s3job", SaveMode::ErrorIfExists, &cfg).unwrap();
    job.setup_job().unwrap();
    let mut commits = Vec::new();
    for p in 0..3i64 {
        let mut t = job.task(p as usize, 0);
        let mut w = t.parquet_writer(schema.clone()).unwrap();
        let col = arrow_array::Int64Array::from_iter_values(p * 100..p * 100 + 100);
        w.write(
            &arrow_array::RecordBatch::try_new(schema.clone(), vec![std::sync::Arc::new(col)])
                .unwrap(),
        )
        .unwrap();
        w.finish().unwrap();
        commits.push(t.commit());
    }
    // Before commit the output is not readable.
    assert!(matches!(
        list_inputs(&dest, &cfg),
        Err(StorageError::IncompleteOutput { .. })
    ));
    job.commit_job(&commits).unwrap();
    let plan = parquet_splits(&dest, &ParquetScan::default(), &cfg).unwrap();
    assert_eq!(plan.splits.len(), 3);
    let mut total = 0i64;
    for s in &plan.splits {
        for b in read_parquet_split(s, &ParquetScan::default(), &cfg).unwrap() {
            let b = b.unwrap();
            let c = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap();
            total += c.values().iter().sum::<i64>();
        }
    }
    assert_eq!(total, (0..300).sum::<i64>());
    assert!(Location::resolve(&format!("{dest}/_temporary"), &cfg)
        .unwrap()
        .list_recursive()
        .unwrap()
        .is_empty());
    // Error-if-exists on S3 too.
    let again = JobCommitter::new(&dest, "again", SaveMode::ErrorIfExists, &cfg).unwrap();
    assert!(matches!(
        again.setup_job(),
        Err(StorageError::AlreadyExists { .. })
    ));
    // An aborted overwrite leaves the committed table as it was.
    let ow = JobCommitter::new(&dest, "ow", SaveMode::Overwrite, &cfg).unwrap();
    let mut t = ow.task(0, 0);
    let mut w = t.text_writer().unwrap();
    w.write_line("junk").unwrap();
    w.finish().unwrap();
    let _ = t.commit();
    ow.abort_job().unwrap();
    assert_eq!(list_inputs(&dest, &cfg).unwrap().len(), 3);
    assert!(Location::resolve(&format!("{dest}/_temporary"), &cfg)
        .unwrap()
        .list_recursive()
        .unwrap()
        .is_empty());
}

#[test]
fn s3_wrong_credentials_missing_bucket_and_object() {
    let server = S3Server::start();
    let bucket = server.bucket("secure");
    let cfg = server.config();
    Location::resolve(&format!("{bucket}/a.txt"), &cfg)
        .unwrap()
        .put(b"hello\n".to_vec())
        .unwrap();

    let bad = cfg
        .clone()
        .with("ember.s3.secretKey", "wrong-secret-123")
        .with("ember.s3.accessKey", "nobody");
    let err = Location::resolve(&format!("{bucket}/a.txt"), &bad)
        .unwrap()
        .read_all()
        .unwrap_err();
    assert!(matches!(err, StorageError::AccessDenied { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("wrong-secret-123") && !shown.contains(SECRET_KEY),
        "secret leaked: {shown}"
    );
    assert!(shown.contains("s3://secure/a.txt"), "{shown}");

    let err = Location::resolve("s3://no-such-bucket/a.txt", &cfg)
        .unwrap()
        .read_all()
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    let err = Location::resolve(&format!("{bucket}/missing.txt"), &cfg)
        .unwrap()
        .read_all()
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::NotFound { url, .. } if url == "s3://secure/missing.txt"),
        "{err:?}"
    );
    let err = text_splits(&format!("{bucket}/missing-dir"), 1, &cfg).unwrap_err();
    assert!(matches!(err, StorageError::NoInputs { .. }), "{err:?}");
}

#[test]
fn credentials_never_appear_in_debug_output() {
    let server = S3Server::start();
    let bucket = server.bucket("dbg");
    let cfg = server.config().with("ember.s3.sessionToken", "tok-abc-987");
    let loc = Location::resolve(&format!("{bucket}/x"), &cfg).unwrap();
    let printed = format!("{cfg:?} {loc:?} {loc} {:?}", loc.store());
    for secret in [SECRET_KEY, "tok-abc-987"] {
        assert!(
            !printed.contains(secret),
            "secret `{secret}` printed: {printed}"
        );
    }
    assert!(printed.contains("\"***\""), "{printed}");
    assert!(printed.contains("ember.s3.endpoint"));
}

#[test]
fn s3_server_going_away_mid_read_is_a_clear_bounded_error() {
    let mut server = S3Server::start();
    let bucket = server.bucket("flaky");
    let cfg = server
        .config()
        .with("ember.storage.readChunk", "16k")
        .with("ember.storage.readAhead", "0");
    let text = common::sample_text(20_000, 8);
    let url = format!("{bucket}/big.txt");
    Location::resolve(&url, &cfg)
        .unwrap()
        .put(text.clone().into_bytes())
        .unwrap();
    let split = text_splits(&url, 1, &cfg).unwrap().remove(0);
    let mut r = LineReader::open(&split, &cfg, Utf8Mode::Strict).unwrap();
    for _ in 0..10 {
        r.next_line().unwrap().unwrap();
    }
    server.kill();
    let started = Instant::now();
    let err = loop {
        match r.next_line() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("read finished although the server is gone"),
            Err(e) => break e,
        }
    };
    let took = started.elapsed();
    assert!(matches!(err, StorageError::Store { .. }), "{err:?}");
    assert!(err.to_string().contains("s3://flaky/big.txt"), "{err}");
    // Bounded by retryTimeout (3s) plus backoff; generous margin for slow CI machines.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// Lines of pseudo-random letters (with a multi-byte character now and then): text that gzip
/// cannot shrink much, so `bytes` of it compress to well over a megabyte.
fn random_text(bytes: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005) | 1;
    let mut s = String::with_capacity(bytes + 128);
    while s.len() < bytes {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (x >> 58) as usize + 20;
        for k in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(if k % 37 == 36 {
                'é'
            } else {
                (b'a' + (x % 26) as u8) as char
            });
        }
        s.push('\n');
    }
    s
}

#[test]
fn s3_compressed_globs_are_read_whole_and_truncation_is_named() {
    use std::io::Write;
    let server = S3Server::start();
    let bucket = server.bucket("logs");
    let cfg = server
        .config()
        .with("ember.storage.readChunk", "256k")
        .with("ember.storage.maxSplitBytes", "64k");
    let put = |name: &str, bytes: Vec<u8>| {
        Location::resolve(&format!("{bucket}/logs/{name}"), &cfg)
            .unwrap()
            .put(bytes)
            .unwrap();
    };
    let gzip = |text: &str| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap()
    };
    // A small gzip file (decoded in line), a large one (decoded by the read-ahead thread, over
    // many ranged GETs), and files the glob must not match.
    let day1 = random_text(2 << 20, 1);
    let day2 = random_text(5000, 2);
    let big = gzip(&day1);
    assert!(big.len() > 1 << 20, "{} compressed bytes", big.len());
    put("day1.txt.gz", big);
    put("day2.txt.gz", gzip(&day2));
    put("day3.txt", b"plain\n".to_vec());
    let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
    lz.write_all(day2.as_bytes()).unwrap();
    put("day4.txt.lz4", lz.finish().unwrap());

    let glob = format!("{bucket}/logs/*.gz");
    let splits = text_splits(&glob, 8, &cfg).unwrap();
    assert_eq!(splits.len(), 2, "compressed files are never split");
    let expected: Vec<String> = day1
        .lines()
        .chain(day2.lines())
        .map(str::to_string)
        .collect();
    assert_eq!(lines_of(&glob, 8, &cfg), expected);
    let lz4_lines = lines_of(&format!("{bucket}/logs/*.lz4"), 8, &cfg);
    assert_eq!(lz4_lines, day2.lines().collect::<Vec<_>>());

    // Cut short on the server: a typed decompression error naming the object.
    let whole = gzip(&day2);
    put("day5.txt.gz", whole[..whole.len() / 2].to_vec());
    let url = format!("{bucket}/logs/day5.txt.gz");
    let split = &text_splits(&url, 1, &cfg).unwrap()[0];
    let result: Result<Vec<String>, _> = LineReader::open(split, &cfg, Utf8Mode::Strict)
        .unwrap()
        .collect();
    match result {
        Err(StorageError::Decompress {
            url: named, codec, ..
        }) => {
            assert_eq!(codec, "gzip");
            assert_eq!(named, url);
        }
        other => panic!("expected a Decompress error, got {other:?}"),
    }
}
