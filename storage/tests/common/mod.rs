//! Shared test helpers: a real S3 server (`s3s-fs`) on 127.0.0.1 and data generators.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ember_storage::StorageConfig;

/// Access key and secret the test server is started with.
pub const ACCESS_KEY: &str = "ember-test-access";
/// The secret (tests check it never shows up in Debug output or errors).
pub const SECRET_KEY: &str = "ember-test-secret-Zq9xV2";

/// Finds the `s3s-fs` binary: `$EMBER_S3S_FS`, `$EMBER_TOOLS_DIR/bin/s3s-fs`
/// (default `$HOME/.cache/ember-tools`), then `PATH`.
pub fn find_s3s_fs() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("EMBER_S3S_FS") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    let tools = std::env::var("EMBER_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/ember-tools")
        });
    let p = tools.join("bin/s3s-fs");
    if p.is_file() {
        return Some(p);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    })
}

/// A running `s3s-fs` serving a temporary directory; killed on drop.
pub struct S3Server {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    /// Its root directory (buckets are subdirectories).
    pub root: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server; fails the test (with instructions) when the binary is missing.
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = S3Server {
            child: None,
            port,
            root,
        };
        server.restart();
        server
    }

    /// Starts the server again (after [`S3Server::kill`]) on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        let bin = find_s3s_fs().unwrap_or_else(|| {
            panic!(
                "s3s-fs not found: the S3 tests need a real S3 server. Run `bash .ci/setup.d/40-s3s.sh` \
                 (installs s3s-fs into $EMBER_TOOLS_DIR, default ~/.cache/ember-tools), or set EMBER_S3S_FS"
            )
        });
        let port = self.port;
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not start listening on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (a directory of the server's root).
    pub fn bucket(&self, name: &str) -> String {
        std::fs::create_dir_all(self.root.path().join(name)).unwrap();
        format!("s3://{name}")
    }

    /// The settings for this server: right credentials, short retries and timeouts (also usable
    /// as engine configuration keys).
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ember.s3.endpoint", self.endpoint()),
            ("ember.s3.region", "us-east-1".into()),
            ("ember.s3.accessKey", ACCESS_KEY.into()),
            ("ember.s3.secretKey", SECRET_KEY.into()),
            ("ember.storage.maxRetries", "2".into()),
            ("ember.storage.retryTimeout", "3s".into()),
            ("ember.storage.backoffInitial", "50ms".into()),
            ("ember.storage.backoffMax", "200ms".into()),
            ("ember.storage.connectTimeout", "1s".into()),
            ("ember.storage.requestTimeout", "5s".into()),
        ]
    }

    /// Storage configuration for this server (see [`S3Server::settings`]).
    pub fn config(&self) -> StorageConfig {
        self.settings()
            .into_iter()
            .fold(StorageConfig::new(), |c, (k, v)| c.with(k, v))
    }

    /// Kills the server now.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Deterministic text: `n` lines of varying length (some empty), ASCII plus some multi-byte UTF-8.
pub fn sample_text(n: usize, seed: u64) -> String {
    let mut s = String::new();
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (x >> 33) % 120;
        if len.is_multiple_of(17) {
            s.push('\n');
            continue;
        }
        s.push_str(&format!("line {i} "));
        for j in 0..len {
            s.push(match (j + i as u64) % 29 {
                0 => 'é',
                1 => '→',
                k => (b'a' + (k % 26) as u8) as char,
            });
        }
        s.push('\n');
    }
    s
}
