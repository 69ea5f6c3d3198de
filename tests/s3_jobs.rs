//! Whole engine jobs against a real S3-protocol server (`s3s-fs` on 127.0.0.1, installed by
//! `.ci/setup.d/40-s3s.sh`): compressed inputs matched by a glob, a shuffle, an output committed to
//! S3 and read back; and a job whose server dies under it, which fails with the URL named and
//! publishes nothing.

#[path = "../storage/tests/common/mod.rs"]
mod s3;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use ember::prelude::*;
use ember::storage::Location;
use s3::S3Server;

/// Engine configuration for `workers` local workers talking to `server`.
fn conf(server: &S3Server, workers: usize) -> Conf {
    server.settings().iter().fold(
        Conf::new()
            .with("ember.master", &format!("local[{workers}]"))
            .unwrap(),
        |c, (k, v)| c.with(k, v).unwrap(),
    )
}

fn word_counts(texts: &[String]) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for text in texts {
        for w in text.split_whitespace() {
            *counts.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn word_count_over_gzip_objects_commits_to_s3_and_reads_back() {
    let server = S3Server::start();
    let bucket = server.bucket("lake");
    let cfg = server.config();
    let texts: Vec<String> = (0..3).map(|i| s3::sample_text(3000, i)).collect();
    for (i, text) in texts.iter().enumerate() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        Location::resolve(&format!("{bucket}/logs/day{i}.txt.gz"), &cfg)
            .unwrap()
            .put(gz.finish().unwrap())
            .unwrap();
    }
    // Not matched by the glob.
    Location::resolve(&format!("{bucket}/logs/notes.txt"), &cfg)
        .unwrap()
        .put(b"stray words\n".to_vec())
        .unwrap();

    let (b, out) = (bucket.clone(), format!("{bucket}/counts"));
    let (read_back, lines, kept) = ember::engine::run(conf(&server, 2), move |ctx| {
        let input = format!("{b}/logs/*.gz");
        ctx.text_file(&input, 4)
            .unwrap()
            .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b)
            .map(|(w, c)| format!("{w}\t{c}"))
            .save_as_text_file(&out)
            .unwrap();
        let read_back: Vec<String> = ctx.text_file(&out, 3).unwrap().collect().unwrap();
        let lines = ctx.text_file(&input, 4).unwrap().count().unwrap();
        let kept = ctx
            .text_file_filter_map(&input, 4, |l| l.starts_with("line 1").then_some(()))
            .unwrap()
            .count()
            .unwrap();
        (read_back, lines, kept)
    })
    .unwrap();

    let got: HashMap<String, u64> = read_back
        .iter()
        .map(|l| {
            let (w, c) = l.split_once('\t').expect("word<TAB>count");
            (w.to_string(), c.parse().unwrap())
        })
        .collect();
    assert_eq!(got, word_counts(&texts));
    let all_lines: Vec<&str> = texts.iter().flat_map(|t| t.lines()).collect();
    assert_eq!(lines, all_lines.len() as u64);
    let starting = all_lines.iter().filter(|l| l.starts_with("line 1")).count();
    assert_eq!(kept, starting as u64);
    assert!(
        server.root.path().join("lake/counts/_SUCCESS").is_file(),
        "the commit writes its manifest"
    );
}

#[test]
fn a_job_whose_s3_server_dies_fails_naming_the_url_and_publishes_nothing() {
    let server = Arc::new(Mutex::new(S3Server::start()));
    let (bucket, job_conf) = {
        let s = server.lock().unwrap();
        let c = conf(&s, 2).with("ember.task.maxFailures", "1").unwrap();
        (s.bucket("sink"), c)
    };
    let out = format!("{bucket}/out");
    let (killer, dest) = (Arc::clone(&server), out.clone());
    let err = ember::engine::run(job_conf, move |ctx| {
        let killer = Arc::clone(&killer);
        ctx.range(0, 4000, 1, 4)
            .unwrap()
            .map(move |x| {
                // The server goes away in the last partition's task: it starts only once an
                // earlier task has finished, so some parts are already staged.
                if x == 3990 {
                    killer.lock().unwrap().kill();
                }
                x
            })
            .save_as_text_file(&dest)
            .unwrap_err()
    })
    .unwrap();
    match &err {
        EngineError::JobFailed { cause, .. } => {
            assert!(cause.contains("s3://sink/out"), "{cause}")
        }
        EngineError::Storage { message, .. } => {
            assert!(message.contains("s3://sink/out"), "{message}")
        }
        other => panic!("expected a failed job naming the output, got {other:?}"),
    }

    // Back up: the output is not there, and reading it is refused rather than partial.
    let mut s = server.lock().unwrap();
    s.restart();
    let dir = s.root.path().join("sink/out");
    assert!(!dir.join("_SUCCESS").exists());
    let published: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("part-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(published.is_empty(), "published parts: {published:?}");
    assert!(
        dir.join("_temporary").is_dir(),
        "earlier tasks staged their parts"
    );
    let read_conf = conf(&s, 1);
    drop(s);
    let read = ember::engine::run(read_conf, move |ctx| {
        ctx.text_file(&out, 1).and_then(|r| r.collect())
    })
    .unwrap();
    match read {
        Err(EngineError::Storage { message, .. }) => {
            assert!(message.contains("incomplete"), "{message}")
        }
        other => panic!("an unfinished output must not read as data: {other:?}"),
    }
}

#[test]
fn storage_keys_passed_to_ember_submit_reach_the_application() {
    // `ember-submit --conf ember.s3.endpoint=...` used to be accepted and then ignored: the
    // application's `Conf::from_env` read no storage keys, so it asked AWS instead.
    let server = S3Server::start();
    let bucket = server.bucket("submitted");
    let text: String = (0..500).map(|i| format!("line {i}\n")).collect();
    std::fs::write(server.root.path().join("submitted/input.txt"), &text).unwrap();
    let mut args: Vec<String> = ["-n", "2", "-w", "1"].map(String::from).to_vec();
    for (k, v) in server.settings() {
        args.push("--conf".into());
        args.push(format!("{k}={v}"));
    }
    // Nothing from the test's own environment may supply what --conf must.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ember-submit"))
        .args(&args)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_ember-cluster-demo"))
        .env("EMBER_DEMO_MODE", "lines")
        .env("EMBER_DEMO_INPUT", format!("{bucket}/input.txt"))
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("[p0] ").filter(|l| l.starts_with('{')))
        .unwrap_or_else(|| panic!("no answer from process 0:\n{stdout}\n{stderr}"));
    let answer: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(answer["lines"], 500, "{stdout}\n{stderr}");
    let keys: Vec<&str> = answer["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    for (k, _) in server.settings() {
        assert!(
            keys.contains(&k),
            "{k} did not reach the application: {keys:?}"
        );
    }
    assert!(
        !stdout.contains(s3::SECRET_KEY) && !stderr.contains(s3::SECRET_KEY),
        "the secret key was printed"
    );
}
