//! Text inputs on local files and memory://: splits with Hadoop line semantics, compression,
//! UTF-8 handling, listing (directories, globs, hidden files), whole files.

mod common;

use std::io::Write;

use ember_storage::{
    list_inputs, plan_splits, read_whole_text, text_splits, whole_text_files, LineReader, Location,
    Split, StorageConfig, StorageError, Utf8Mode,
};

fn read_split(split: &Split, cfg: &StorageConfig) -> Vec<String> {
    let lines = LineReader::open(split, cfg, Utf8Mode::Strict)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    // The bulk path must agree with the iterator.
    let mut bulk = Vec::new();
    let n = LineReader::open(split, cfg, Utf8Mode::Strict)
        .unwrap()
        .for_each_line(|l| bulk.push(l.to_string()))
        .unwrap();
    assert_eq!(
        bulk, lines,
        "for_each_line differs from the iterator on {split:?}"
    );
    assert_eq!(n as usize, lines.len());
    lines
}

fn reference_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

#[test]
fn splits_yield_every_line_exactly_once_for_many_split_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let text = common::sample_text(3000, 7);
    let path = dir.path().join("data.txt");
    std::fs::write(&path, &text).unwrap();
    let expected = reference_lines(&text);
    // Tiny split sizes on a small file (every byte a boundary), realistic ones on the big one.
    let small = common::sample_text(60, 9);
    let small_path = dir.path().join("small.txt");
    std::fs::write(&small_path, &small).unwrap();
    for split_bytes in [1u64, 2, 3, 5, 7, 13] {
        let cfg = StorageConfig::new().with("ember.storage.maxSplitBytes", split_bytes.to_string());
        let splits = text_splits(small_path.to_str().unwrap(), 1, &cfg).unwrap();
        let got: Vec<String> = splits.iter().flat_map(|s| read_split(s, &cfg)).collect();
        assert_eq!(got, reference_lines(&small), "split size {split_bytes}");
    }
    let sizes = [64u64, 100, 1000, 4096, 65_536, 10_000_000];
    for split_bytes in sizes {
        let cfg = StorageConfig::new().with("ember.storage.maxSplitBytes", split_bytes.to_string());
        // min_partitions = 1: maxSplitBytes decides the split size.
        let splits = text_splits(path.to_str().unwrap(), 1, &cfg).unwrap();
        assert!(
            split_bytes >= text.len() as u64 || splits.len() > 1,
            "size {split_bytes}"
        );
        let got: Vec<String> = splits.iter().flat_map(|s| read_split(s, &cfg)).collect();
        assert_eq!(got.len(), expected.len(), "split size {split_bytes}");
        assert_eq!(got, expected, "split size {split_bytes}");
    }
}

#[test]
fn split_boundary_exactly_at_line_start_follows_hadoop() {
    // "aa\nbb\ncc\n": a split ending at 3 (start of "bb") reads "aa" and "bb" (a line starting at or
    // before the end belongs to the split); the next split, starting at 3, skips "bb".
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.txt");
    std::fs::write(&path, "aa\nbb\ncc\n").unwrap();
    let url = path.to_str().unwrap();
    let cfg = StorageConfig::new();
    let first = Split {
        url: url.into(),
        start: 0,
        end: 3,
        len: 9,
        hosts: vec![],
    };
    let second = Split {
        url: url.into(),
        start: 3,
        end: 9,
        len: 9,
        hosts: vec![],
    };
    assert_eq!(read_split(&first, &cfg), vec!["aa", "bb"]);
    assert_eq!(read_split(&second, &cfg), vec!["cc"]);
    // A split starting inside a line skips the partial line and finishes its own last line.
    let mid = Split {
        url: url.into(),
        start: 1,
        end: 4,
        len: 9,
        hosts: vec![],
    };
    assert_eq!(read_split(&mid, &cfg), vec!["bb"]);
}

#[test]
fn crlf_and_missing_final_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crlf.txt");
    std::fs::write(&path, "one\r\ntwo\r\n\r\nthree").unwrap();
    let cfg = StorageConfig::new();
    let splits = text_splits(path.to_str().unwrap(), 1, &cfg).unwrap();
    assert_eq!(
        splits
            .iter()
            .flat_map(|s| read_split(s, &cfg))
            .collect::<Vec<_>>(),
        vec!["one", "two", "", "three"]
    );
}

#[test]
fn long_lines_grow_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.txt");
    let long = "x".repeat(3 << 20);
    std::fs::write(&path, format!("short\n{long}\nend\n")).unwrap();
    let cfg = StorageConfig::new();
    let lines: Vec<String> = text_splits(path.to_str().unwrap(), 1, &cfg)
        .unwrap()
        .iter()
        .flat_map(|s| read_split(s, &cfg))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1].len(), long.len());
}

#[test]
fn gzip_and_lz4_files_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let text = common::sample_text(2000, 3);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(dir.path().join("a.txt.gz"), gz.finish().unwrap()).unwrap();
    let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
    lz.write_all(text.as_bytes()).unwrap();
    std::fs::write(dir.path().join("b.txt.lz4"), lz.finish().unwrap()).unwrap();
    let cfg = StorageConfig::new().with("ember.storage.maxSplitBytes", "100");
    for name in ["a.txt.gz", "b.txt.lz4"] {
        let splits = text_splits(dir.path().join(name).to_str().unwrap(), 8, &cfg).unwrap();
        assert_eq!(splits.len(), 1, "{name} must not be split");
        assert_eq!(
            read_split(&splits[0], &cfg),
            reference_lines(&text),
            "{name}"
        );
    }
}

#[test]
fn truncated_gzip_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = common::sample_text(5000, 4);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let path = dir.path().join("cut.txt.gz");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let cfg = StorageConfig::new();
    let split = &text_splits(path.to_str().unwrap(), 1, &cfg).unwrap()[0];
    let result: Result<Vec<String>, _> = LineReader::open(split, &cfg, Utf8Mode::Strict)
        .unwrap()
        .collect();
    match result {
        Err(StorageError::Decompress { url, codec, .. }) => {
            assert_eq!(codec, "gzip");
            assert!(url.ends_with("cut.txt.gz"), "{url}");
        }
        other => panic!("expected a Decompress error, got {other:?}"),
    }
    assert!(matches!(
        read_whole_text(path.to_str().unwrap(), &cfg, Utf8Mode::Strict),
        Err(StorageError::Decompress { .. })
    ));
}

#[test]
fn invalid_utf8_names_url_and_offset_or_is_replaced_in_lossy_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.txt");
    let mut bytes = b"good line\nsecond ok\nbad \xff\xfe here\nafter\n".to_vec();
    std::fs::write(&path, &bytes).unwrap();
    let cfg = StorageConfig::new();
    let split = text_splits(path.to_str().unwrap(), 1, &cfg)
        .unwrap()
        .remove(0);
    let mut r = LineReader::open(&split, &cfg, Utf8Mode::Strict).unwrap();
    assert_eq!(r.next_line().unwrap(), Some("good line"));
    assert_eq!(r.next_line().unwrap(), Some("second ok"));
    match r.next_line() {
        Err(StorageError::InvalidUtf8 { url, offset }) => {
            assert!(url.ends_with("bad.txt"));
            assert_eq!(offset, 24, "offset of the 0xff byte");
            assert_eq!(bytes[offset as usize], 0xff);
        }
        other => panic!("expected InvalidUtf8, got {other:?}"),
    }
    let lossy: Vec<String> = LineReader::open(&split, &cfg, Utf8Mode::Lossy)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        lossy,
        vec![
            "good line",
            "second ok",
            "bad \u{FFFD}\u{FFFD} here",
            "after"
        ]
    );
    let mut bulk = Vec::new();
    LineReader::open(&split, &cfg, Utf8Mode::Lossy)
        .unwrap()
        .for_each_line(|l| bulk.push(l.to_string()))
        .unwrap();
    assert_eq!(bulk, lossy);
    let strict = LineReader::open(&split, &cfg, Utf8Mode::Strict)
        .unwrap()
        .for_each_line(|_| {});
    assert!(
        matches!(strict, Err(StorageError::InvalidUtf8 { offset: 24, .. })),
        "{strict:?}"
    );
    // A split that ends before the bad line never sees it.
    bytes.truncate(0);
    let first = Split {
        url: split.url.clone(),
        start: 0,
        end: 5,
        len: split.len,
        hosts: vec![],
    };
    assert_eq!(read_split(&first, &cfg), vec!["good line"]);
}

#[test]
fn directories_globs_hidden_files_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs/2024")).unwrap();
    std::fs::create_dir_all(d.join("logs/2025")).unwrap();
    std::fs::write(d.join("logs/2024/a.log"), "a1\na2\n").unwrap();
    std::fs::write(d.join("logs/2024/b.txt"), "b1\n").unwrap();
    std::fs::write(d.join("logs/2025/c.log"), "c1\n").unwrap();
    std::fs::write(d.join("logs/_ignored.log"), "x\n").unwrap();
    std::fs::write(d.join("logs/.hidden.log"), "x\n").unwrap();
    let cfg = StorageConfig::new();
    let names = |url: &str| -> Vec<String> {
        list_inputs(url, &cfg)
            .unwrap()
            .iter()
            .map(|o| o.location.file_name().to_string())
            .collect()
    };
    let base = d.to_str().unwrap();
    assert_eq!(
        names(&format!("{base}/logs")),
        vec!["a.log", "b.txt", "c.log"]
    );
    assert_eq!(
        names(&format!("{base}/logs/*/*.log")),
        vec!["a.log", "c.log"]
    );
    assert_eq!(
        names(&format!("file://{base}/logs/202[4]/*")),
        vec!["a.log", "b.txt"]
    );
    assert_eq!(
        names(&format!("{base}/logs/{{2024,2025}}")),
        vec!["a.log", "b.txt", "c.log"]
    );
    assert_eq!(
        names(&format!("{base}/logs/2024/a.log,{base}/logs/2025")),
        vec!["a.log", "c.log"]
    );
    assert!(matches!(
        list_inputs(&format!("{base}/logs/*.csv"), &cfg),
        Err(StorageError::NoInputs { .. })
    ));
    assert!(matches!(
        list_inputs(&format!("{base}/nothing-here"), &cfg),
        Err(StorageError::NoInputs { .. })
    ));
    let whole = whole_text_files(&format!("{base}/logs/2024"), &cfg, Utf8Mode::Strict).unwrap();
    assert_eq!(whole.len(), 2);
    assert!(whole[0].0.ends_with("/logs/2024/a.log") && whole[0].1 == "a1\na2\n");
}

#[test]
fn memory_store_roundtrip_and_splits() {
    let cfg = StorageConfig::new().with("ember.storage.readChunk", "4k");
    let text = common::sample_text(1500, 11);
    let loc = Location::resolve("memory://text-test/dir/file.txt", &cfg).unwrap();
    loc.put(text.clone().into_bytes()).unwrap();
    let files = list_inputs("memory://text-test/dir", &cfg).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].size, text.len() as u64);
    let splits = plan_splits(&files, 7, &cfg).unwrap();
    assert!(splits.len() >= 7);
    let got: Vec<String> = splits.iter().flat_map(|s| read_split(s, &cfg)).collect();
    assert_eq!(got, reference_lines(&text));
}

#[test]
fn bad_urls_are_typed_errors() {
    let cfg = StorageConfig::new();
    assert!(matches!(
        Location::resolve("ftp://host/x", &cfg),
        Err(StorageError::UnsupportedScheme { .. })
    ));
    assert!(matches!(
        Location::resolve("s3:///no-bucket", &cfg),
        Err(StorageError::InvalidUrl { .. })
    ));
    assert!(matches!(
        Location::resolve("s3://key:secret@bucket/x", &cfg),
        Err(StorageError::InvalidUrl { .. })
    ));
    #[cfg(not(feature = "hdfs"))]
    assert!(matches!(
        Location::resolve("hdfs://nn:8020/x", &cfg),
        Err(StorageError::UnsupportedScheme { .. })
    ));
    let missing = LineReader::open(
        &Split::whole("/definitely/not/here.txt", 10),
        &cfg,
        Utf8Mode::Strict,
    );
    match missing {
        Err(StorageError::NotFound { url, .. }) => {
            assert_eq!(url, "file:///definitely/not/here.txt")
        }
        other => panic!("expected NotFound, got {:?}", other.err()),
    }
    assert!(matches!(
        text_splits("/tmp/x.bz2", 1, &cfg),
        Err(StorageError::NoInputs { .. }) | Err(StorageError::UnsupportedCompression { .. })
    ));
}

#[test]
fn unsupported_compression_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.txt.bz2");
    std::fs::write(&path, b"BZh9").unwrap();
    let err = text_splits(path.to_str().unwrap(), 1, &StorageConfig::new()).unwrap_err();
    assert!(
        matches!(err, StorageError::UnsupportedCompression { ref codec, .. } if codec == "bz2"),
        "{err}"
    );
}

/// An invalid line is reported whatever split reads it: the bulk validation window starts at the
/// line being decoded, not past it.
#[test]
fn invalid_utf8_is_caught_in_every_split_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.txt");
    let mut bytes = b"hello\nworld\nab".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"cd\nlast\n");
    std::fs::write(&path, &bytes).unwrap();
    let cfg = ember_storage::StorageConfig::new();
    for n in 1..6 {
        let splits = ember_storage::text_splits(path.to_str().unwrap(), n, &cfg).unwrap();
        let mut errors = Vec::new();
        let mut lines = Vec::new();
        for s in &splits {
            for r in
                ember_storage::LineReader::open(s, &cfg, ember_storage::Utf8Mode::Strict).unwrap()
            {
                match r {
                    Ok(l) => lines.push(l),
                    Err(ember_storage::StorageError::InvalidUtf8 { offset, .. }) => {
                        errors.push(offset)
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(errors, vec![14], "{n} splits");
        // A reader stops at its error; every line it did return is one of the valid ones.
        assert!(
            lines
                .iter()
                .all(|l| ["hello", "world", "last"].contains(&l.as_str())),
            "{n} splits: {lines:?}"
        );
    }
}

/// Runs `f` on another thread and fails the test if it has not returned within 20 s (a pipe
/// opened for reading blocks until a writer comes: the bug this guards against).
fn within_20s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("hung on a named pipe")
}

#[test]
fn a_named_pipe_is_refused_naming_it_never_read_as_empty_or_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stream");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").unwrap();
    let cfg = StorageConfig::new();

    // The pipe itself, as a path and as a file:// URL: refused before anything opens it.
    for url in [
        fifo.to_string_lossy().into_owned(),
        format!("file://{}", fifo.display()),
    ] {
        let c = cfg.clone();
        let u = url.clone();
        let err = within_20s(move || text_splits(&u, 2, &c).unwrap_err());
        match &err {
            StorageError::NotARegularFile { url: named, kind } => {
                assert!(named.ends_with("/stream"), "{named}");
                assert_eq!(*kind, "named pipe");
            }
            other => panic!("{url}: expected NotARegularFile, got {other}"),
        }
        assert!(
            err.to_string().contains("copy the stream to a file"),
            "{err}"
        );
    }
    // A whole-file read of it.
    let f = fifo.to_string_lossy().into_owned();
    let c = cfg.clone();
    let err = within_20s(move || {
        ember_storage::Location::resolve(&f, &c)
            .and_then(|l| l.read_all())
            .unwrap_err()
    });
    assert!(matches!(err, StorageError::NotARegularFile { .. }), "{err}");

    // A directory holding one: the listing would skip it silently, so it is refused too.
    let d = dir.path().to_string_lossy().into_owned();
    let c = cfg.clone();
    let err = within_20s(move || ember_storage::list_inputs(&d, &c).unwrap_err());
    match &err {
        StorageError::NotARegularFile { url, .. } => assert!(url.ends_with("/stream"), "{url}"),
        other => panic!("expected NotARegularFile, got {other}"),
    }

    // Hidden pipes (`_` or `.` names) are not inputs and do not stand in the way.
    std::fs::rename(&fifo, dir.path().join("_stream")).unwrap();
    let found = ember_storage::list_inputs(&dir.path().to_string_lossy(), &cfg).unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].url().ends_with("/a.txt"));
}

#[test]
fn paths_with_dot_and_dot_dot_components_resolve_as_the_shell_would() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/a.txt"), "one\ntwo\n").unwrap();
    let cfg = StorageConfig::new();
    let odd = format!("{}/sub/../sub/./a.txt", dir.path().display());
    let text = read_whole_text(&odd, &cfg, Utf8Mode::Strict).unwrap();
    assert_eq!(text, "one\ntwo\n");
    let loc = Location::resolve(&odd, &cfg).unwrap();
    assert!(!loc.url().contains(".."), "{}", loc.url());
}
