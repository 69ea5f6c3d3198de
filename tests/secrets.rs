//! The S3 secret key (and any `user:password@` in a URL) never appears in clear: not in the error
//! refusing a URL with credentials, not in errors or `RUST_LOG=trace` logs of a job whose S3
//! requests are refused, not in `{:?}` of `Conf` or `StorageConfig`, and not in
//! `ember-submit --hostfile --print`.

#[path = "../storage/tests/common/mod.rs"]
mod s3;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

use ember::prelude::*;
use ember::storage::{Location, StorageConfig};

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY";
const PASSWORD: &str = "hunter2-Pq8Lz";
const SUBMIT: &str = env!("CARGO_BIN_EXE_ember-submit");

fn assert_clean(text: &str) {
    assert!(!text.contains(SECRET), "the secret key leaked:\n{text}");
    assert!(
        !text.contains(s3::SECRET_KEY),
        "the test server's secret key leaked:\n{text}"
    );
    assert!(!text.contains(PASSWORD), "a URL password leaked:\n{text}");
}

/// A server that answers every HTTP request with S3's 403 `SignatureDoesNotMatch`.
fn refusing_s3_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    // Read one request's head (bodies are not expected: GET/HEAD/LIST).
                    let mut line = String::new();
                    let mut got = false;
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        got = true;
                        if line == "\r\n" {
                            break;
                        }
                        line.clear();
                    }
                    if !got {
                        return;
                    }
                    let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>\
                                <Message>The request signature we calculated does not match</Message></Error>";
                    let reply = format!(
                        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// What the child run prints: errors and `{:?}` of the configurations, with trace logs.
fn secret_paths(port: u16) {
    let endpoint = format!("http://127.0.0.1:{port}");
    let conf = Conf::new()
        .with("ember.master", "local[2]")
        .unwrap()
        .with("ember.s3.endpoint", &endpoint)
        .unwrap()
        .with("ember.s3.accessKey", "AKIDEXAMPLE")
        .unwrap()
        .with("ember.s3.secretKey", SECRET)
        .unwrap()
        .with("ember.storage.maxRetries", "0")
        .unwrap()
        .with("ember.storage.connectTimeout", "1s")
        .unwrap();
    println!("conf: {conf:?}");
    println!("storage config: {:?}", conf.storage_config());

    // A job whose S3 requests are refused: the error names the URL, never the secret.
    let result = ember::engine::run(conf.clone(), |ctx| {
        ctx.text_file("s3://bucket/logs/day1.txt", 2)?.count()
    });
    match result {
        Ok(Ok(n)) => panic!("read {n} lines from a server that refuses everything"),
        Ok(Err(e)) | Err(e) => println!("job error: {e} / {e:?}"),
    }

    // Credentials in the data URL.
    let url = format!("s3://AKIDEXAMPLE:{SECRET}@bucket/x");
    let err = Location::resolve(&url, &conf.storage_config()).unwrap_err();
    println!("url error: {err} / {err:?}");
    let job = ember::engine::run(conf.clone(), move |ctx| ctx.text_file(&url, 1)?.count());
    println!("url job: {job:?}");

    // Credentials in the endpoint URL.
    let with_password = conf
        .clone()
        .with(
            "ember.s3.endpoint",
            &format!("http://admin:{PASSWORD}@127.0.0.1:{port}"),
        )
        .unwrap();
    println!("conf with endpoint password: {with_password:?}");
    let err = Location::resolve("s3://bucket/x", &with_password.storage_config()).unwrap_err();
    println!("endpoint error: {err} / {err:?}");
    let job = ember::engine::run(with_password, |ctx| {
        ctx.text_file("s3://bucket/x", 1)?.count()
    });
    println!("endpoint job: {job:?}");
    let cfg = StorageConfig::new()
        .with("ember.s3.secretKey", SECRET)
        .with("ember.s3.endpoint", format!("http://u:{PASSWORD}@h"));
    println!("storage config: {cfg:?}");

    // Requests that succeed, signed with the secret, when the S3 test server is installed.
    if s3::find_s3s_fs().is_some() {
        let server = s3::S3Server::start();
        let bucket = server.bucket("logs");
        Location::resolve(&format!("{bucket}/a.txt"), &server.config())
            .unwrap()
            .put(b"one\ntwo\n".to_vec())
            .unwrap();
        let conf = server
            .settings()
            .into_iter()
            .fold(Conf::new(), |c, (k, v)| c.with(k, &v).unwrap());
        println!("real server conf: {conf:?}");
        let url = format!("{bucket}/a.txt");
        let lines = ember::engine::run(conf, move |ctx| ctx.text_file(&url, 1)?.count());
        println!("real server lines: {lines:?}");
    }
}

#[test]
fn secrets_never_appear_in_errors_debug_or_trace_logs() {
    if std::env::var("EMBER_SECRETS_CHILD").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
        let port = std::env::var("EMBER_SECRETS_PORT")
            .unwrap()
            .parse()
            .unwrap();
        secret_paths(port);
        return;
    }
    let port = refusing_s3_server();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "secrets_never_appear_in_errors_debug_or_trace_logs",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EMBER_SECRETS_CHILD", "1")
        .env("EMBER_SECRETS_PORT", port.to_string())
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    // The run did what it should: it logged at trace level, reached the server, and failed.
    assert!(
        stderr.contains("TRACE"),
        "no trace output captured:\n{stderr}"
    );
    assert!(stdout.contains("job error:"), "{stdout}");
    assert!(
        stdout.contains("s3://***@bucket/x") && stdout.contains("http://***@127.0.0.1"),
        "{stdout}"
    );
    assert_clean(&all);
}

#[test]
fn submit_print_never_shows_secrets_and_its_commands_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let hostfile = dir.path().join("hosts");
    std::fs::write(&hostfile, "127.0.0.1:7400\n127.0.0.1:7401\n").unwrap();
    let out = Command::new(SUBMIT)
        .args(["--hostfile", hostfile.to_str().unwrap(), "--print"])
        .args(["--conf", &format!("ember.s3.secretKey={SECRET}")])
        .args(["--conf", "ember.s3.accessKey=AKIDEXAMPLE"])
        .args([
            "--conf",
            &format!("ember.s3.endpoint=http://admin:{PASSWORD}@127.0.0.1:9000"),
        ])
        .args(["--", "env"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_clean(&format!("{stdout}\n{stderr}"));
    assert!(!stdout.contains("AKIDEXAMPLE"), "{stdout}");
    assert!(
        stdout.contains("EMBER_S3_ENDPOINT=http://***@127.0.0.1:9000"),
        "{stdout}"
    );
    // Each printed command takes the secret from the host's environment.
    let command = stdout
        .lines()
        .find(|l| l.contains("EMBER_CLUSTER_PROCESS=1"))
        .expect("a command for process 1");
    let run = Command::new("sh")
        .args(["-c", command])
        .env("EMBER_S3_SECRETKEY", SECRET)
        .env("EMBER_S3_ACCESSKEY", "AKIDEXAMPLE")
        .output()
        .unwrap();
    let env = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{env}");
    assert!(
        env.lines()
            .any(|l| l == format!("EMBER_S3_SECRETKEY={SECRET}")),
        "{env}"
    );
    // Without it, the command fails saying what to set instead of running with no secret.
    let run = Command::new("sh")
        .args(["-c", command])
        .env_remove("EMBER_S3_SECRETKEY")
        .env("EMBER_S3_ACCESSKEY", "AKIDEXAMPLE")
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("export EMBER_S3_SECRETKEY"));

    // A malformed --conf holding a secret is not echoed either.
    let out = Command::new(SUBMIT)
        .args([
            "--conf",
            &format!("ember.s3.secretKey:{SECRET}"),
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_clean(&String::from_utf8_lossy(&out.stderr));
}
