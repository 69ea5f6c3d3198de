//! Configuration: documented keys with defaults, a defaults file (the role of
//! `spark-defaults.conf`), environment variables and programmatic `key=value` overrides.
//!
//! Precedence, lowest first: built-in defaults, the defaults file, environment variables, then
//! values set in code or passed as `key=value` arguments. Every key must be one Ember knows (see
//! [`KEYS`]); an unknown key or a value that does not parse is an error naming the key (and, for
//! the defaults file, the file and line). An `EMBER_*` environment variable that names no key but
//! is close to one (`EMBER_TASK_MAXFAILURE`) is ignored with a warning suggesting the right one.
//!
//! Durations and sizes go through the storage layer's parser ([`ember_storage::units`]), the one
//! both layers use. Values of keys that look secret (`secretKey`, `sessionToken`...) and the
//! `user:password@` part of URL values are never shown: `{:?}` of a [`Conf`], [`Conf::explicit`]
//! and error messages print `***` instead.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use ember_storage::units::{self, UnitError};
use ember_storage::{redact_url, redact_value};

use crate::error::{EngineError, Result};

/// How values of a key are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// `local`, `local[N]`, `local[*]` or `cluster`.
    Master,
    /// An integer of at least 1.
    PositiveInt,
    /// An integer of at least 0.
    NonNegativeInt,
    /// `true` or `false`.
    Bool,
    /// A size such as `512m`, `2g`, `1048576` (bytes).
    Bytes,
    /// A duration such as `0`, `100ms`, `3s`, `1m` (a bare number means milliseconds).
    Duration,
    /// Any text.
    Text,
    /// One of a fixed set of words.
    OneOf(&'static [&'static str]),
}

/// One documented configuration key.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// The key, e.g. `ember.master`.
    pub key: &'static str,
    /// The value used when nothing sets it; empty means "unset".
    pub default: &'static str,
    /// What values are accepted.
    pub kind: ValueKind,
    /// What the key controls.
    pub doc: &'static str,
}

/// Every key Ember understands. Later subsystems add their keys here so that validation and the
/// documentation table stay in one place.
pub const KEYS: &[KeySpec] = &[
    KeySpec { key: "ember.master", default: "local[2]", kind: ValueKind::Master,
        doc: "Where workers run: `local[N]` threads in this process, or `cluster` (processes listed in `ember.cluster.hosts`)." },
    KeySpec { key: "ember.app.name", default: "ember", kind: ValueKind::Text,
        doc: "Application name shown in logs." },
    KeySpec { key: "ember.default.parallelism", default: "", kind: ValueKind::PositiveInt,
        doc: "Partitions used when an operation is not told how many (default: total worker count)." },
    KeySpec { key: "ember.task.maxFailures", default: "4", kind: ValueKind::PositiveInt,
        doc: "Attempts of one task before its job fails." },
    KeySpec { key: "ember.task.timeout", default: "", kind: ValueKind::Duration,
        doc: "Abort the application when one task attempt runs longer than this (the job fails with `TaskTimedOut` naming the task); unset or `0`: no timeout." },
    KeySpec { key: "ember.task.slowWarning", default: "60s", kind: ValueKind::Duration,
        doc: "Log a warning naming a task attempt (stage, partition, attempt, worker, elapsed) that has run longer than this; `0` disables the warning." },
    KeySpec { key: "ember.cluster.startupTimeout", default: "60s", kind: ValueKind::Duration,
        doc: "Cluster mode: how long a process waits at start-up for every peer process to connect before failing with an error naming the peer." },
    KeySpec { key: "ember.cluster.hosts", default: "", kind: ValueKind::Text,
        doc: "Cluster mode: comma-separated `host:port` of every process, in process order." },
    KeySpec { key: "ember.cluster.process", default: "0", kind: ValueKind::NonNegativeInt,
        doc: "Cluster mode: this process's index in `ember.cluster.hosts`." },
    KeySpec { key: "ember.cluster.threads", default: "2", kind: ValueKind::PositiveInt,
        doc: "Cluster mode: worker threads per process." },
    KeySpec { key: "ember.local.dir", default: "", kind: ValueKind::Text,
        doc: "Scratch directory for spill and temporary files (default: the system temp dir)." },
    KeySpec { key: "ember.text.invalidUtf8", default: "error", kind: ValueKind::OneOf(&["error", "lossy"]),
        doc: "What text sources do with bytes that are not UTF-8: fail naming file and offset, or replace them with U+FFFD." },
    KeySpec { key: "ember.shuffle.batchSize", default: "8192", kind: ValueKind::PositiveInt,
        doc: "Records per message when a shuffle streams records without combining them." },
    KeySpec { key: "ember.memory.storage", default: "", kind: ValueKind::Bytes,
        doc: "Per-worker budget for cached host bytes (block manager); default 60% of physical memory divided by the process's worker threads." },
    KeySpec { key: "ember.memory.device", default: "", kind: ValueKind::Bytes,
        doc: "Per-worker budget for cached device (GPU) bytes (block manager); default unlimited." },
    KeySpec { key: "ember.memory.disk", default: "", kind: ValueKind::Bytes,
        doc: "Per-process budget for spill files of cached blocks; default unlimited. A block that fits neither memory nor disk is not cached." },
    KeySpec { key: "ember.rdd.compress", default: "false", kind: ValueKind::Bool,
        doc: "Compress serialized RDD blocks in memory (`*_SER` levels) with `ember.io.compression.codec`." },
    KeySpec { key: "ember.io.compression.codec", default: "lz4", kind: ValueKind::OneOf(&["lz4", "none"]),
        doc: "Compression of spill files and compressed blocks: `lz4` or `none`." },
    KeySpec { key: "ember.locality.wait", default: "3s", kind: ValueKind::Duration,
        doc: "Delay scheduling: how long a stage waits without a launch at its current locality level before it loosens the level; `0` never waits." },
    KeySpec { key: "ember.locality.wait.process", default: "", kind: ValueKind::Duration,
        doc: "The wait at PROCESS_LOCAL (the worker holding the block) before NODE_LOCAL is allowed; default `ember.locality.wait`." },
    KeySpec { key: "ember.locality.wait.node", default: "", kind: ValueKind::Duration,
        doc: "The wait at NODE_LOCAL (same process or host) before ANY is allowed; default `ember.locality.wait`." },
    KeySpec { key: "ember.scheduler.remoteBlock", default: "auto", kind: ValueKind::OneOf(&["auto", "fetch", "recompute"]),
        doc: "A task running away from the cached block it reads, in another process: fetch the block from its holder, recompute it from lineage, or `auto` (fetch when the estimated fetch time is below the block's recorded compute time)." },
    KeySpec { key: "ember.scheduler.fetchBandwidth", default: "200m", kind: ValueKind::Bytes,
        doc: "Bytes per second assumed for a remote block fetch by the `auto` rule of `ember.scheduler.remoteBlock`." },
    KeySpec { key: "ember.ui.showProgress", default: "true", kind: ValueKind::Bool,
        doc: "Show a progress bar per running stage on worker 0 when stderr is a terminal." },
    KeySpec { key: "ember.checkpoint.dir", default: "", kind: ValueKind::Text,
        doc: "Directory or URL where `checkpoint()` writes RDD data." },
    KeySpec { key: "ember.eventLog.dir", default: "", kind: ValueKind::Text,
        doc: "Directory or URL for the JSON-lines event log; unset disables it." },
];

/// The environment variable that sets `key`: upper case, dots replaced by underscores
/// (`ember.task.maxFailures` is `EMBER_TASK_MAXFAILURES`).
pub fn env_var_for(key: &str) -> String {
    key.to_ascii_uppercase().replace('.', "_")
}

fn spec(key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|s| s.key == key)
}

/// Key families owned by the storage layer (`ember.s3.endpoint`, `ember.storage.maxRetries`...):
/// accepted as text here and validated by `ember-storage` when a store is opened, since
/// `object_store` gives each backend many options of its own. See `ember_storage::config`.
pub const STORAGE_PREFIXES: &[&str] = &[
    "ember.s3.",
    "ember.gs.",
    "ember.az.",
    "ember.hdfs.",
    "ember.storage.",
];

/// The storage layer's key families accept any text.
const STORAGE_SPEC: KeySpec = KeySpec {
    key: "ember.storage.*",
    default: "",
    kind: ValueKind::Text,
    doc: "Storage options, validated by ember-storage.",
};

fn spec_for(key: &str) -> Option<&'static KeySpec> {
    spec(key).or_else(|| {
        STORAGE_PREFIXES
            .iter()
            .any(|p| key.starts_with(p))
            .then_some(&STORAGE_SPEC)
    })
}

/// Validated configuration of one application.
#[derive(Clone, Default)]
pub struct Conf {
    values: BTreeMap<String, String>,
}

impl fmt::Debug for Conf {
    /// Secret values and URL credentials print as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: BTreeMap<&str, std::borrow::Cow<'_, str>> = self
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), redact_value(k, v)))
            .collect();
        f.debug_struct("Conf").field("values", &shown).finish()
    }
}

/// `EMBER_*` variables that are not configuration keys but are read by Ember's tools.
const NON_KEY_ENV_VARS: &[&str] = &[
    "EMBER_CONF_FILE",
    "EMBER_CONF_NAMES",
    "EMBER_SUBMIT_ATTEMPT",
    "EMBER_LOG",
];

/// Where the workers of an application run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Master {
    /// `local[N]`: N worker threads in this process.
    Local(usize),
    /// Several processes of the same binary, connected by timely's networking.
    Cluster {
        /// `host:port` of every process, in process order.
        hosts: Vec<String>,
        /// This process's index.
        process: usize,
        /// Worker threads per process.
        threads: usize,
    },
}

impl Conf {
    /// Built-in defaults only: no file, no environment.
    pub fn new() -> Conf {
        Conf::default()
    }

    /// Defaults, then the defaults file named by `EMBER_CONF_FILE` (if set), then `EMBER_*`
    /// environment variables of known keys.
    pub fn from_env() -> Result<Conf> {
        let mut conf = Conf::new();
        if let Ok(path) = std::env::var("EMBER_CONF_FILE") {
            conf.load_file(Path::new(&path))?;
        }
        conf.load_env_vars(std::env::vars())?;
        Ok(conf)
    }

    /// Reads a defaults file: one `key value` or `key=value` per line; `#` starts a comment. An
    /// unknown key or a bad value is an error naming the file and line.
    pub fn load_file(&mut self, path: &Path) -> Result<&mut Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = match line.split_once('=') {
                Some((k, v)) if !k.trim().contains(char::is_whitespace) => (k.trim(), v.trim()),
                _ => match line.split_once(char::is_whitespace) {
                    Some((k, v)) => (k.trim(), v.trim()),
                    None => {
                        return Err(EngineError::MalformedConfigLine {
                            path: path.to_path_buf(),
                            line: i + 1,
                            text: redact_url(raw).into_owned(),
                        })
                    }
                },
            };
            self.set(k, v).map_err(|e| at_line(e, path, i + 1))?;
        }
        Ok(self)
    }

    /// Applies environment variables that name known keys (see [`env_var_for`]): the keys of
    /// [`KEYS`], the storage layer's documented keys (`EMBER_S3_ENDPOINT`), and any key listed
    /// by name in `EMBER_CONF_NAMES` (comma-separated; `ember-submit` lists its `--conf` keys
    /// there, since a variable's name cannot tell `ember.s3.skip_signature` from
    /// `ember.s3.skip.signature`). An `EMBER_*` variable that names no key is ignored, with a
    /// warning when it looks like a misspelt one (the warning suggests the right variable).
    pub fn load_env_vars(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<&mut Self> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let mut named: BTreeMap<String, String> = KEYS
            .iter()
            .map(|s| s.key)
            .chain(ember_storage::config::DOCUMENTED_KEYS.iter().copied())
            .map(|k| (env_var_for(k), k.to_string()))
            .collect();
        if let Some((_, listed)) = vars.iter().find(|(n, _)| n == "EMBER_CONF_NAMES") {
            for key in listed.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                spec_for(key).ok_or_else(|| unknown_key(key))?;
                named.insert(env_var_for(key), key.to_string());
            }
        }
        for (name, value) in vars {
            if let Some(key) = named.get(&name) {
                self.set(key, &value)?;
            } else if name.starts_with("EMBER_") && !NON_KEY_ENV_VARS.contains(&name.as_str()) {
                match env_var_suggestion(&name) {
                    Some(key) => tracing::warn!(
                        variable = %name,
                        "ignoring environment variable {name}: no configuration key has that \
                         name (did you mean {} for `{key}`?)",
                        env_var_for(key)
                    ),
                    None => tracing::debug!(
                        variable = %name,
                        "environment variable {name} is not a configuration key; ignored"
                    ),
                }
            }
        }
        Ok(self)
    }

    /// Sets one key after validating it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        let spec = spec_for(key).ok_or_else(|| unknown_key(key))?;
        validate(spec, value)?;
        self.values
            .insert(key.to_string(), value.trim().to_string());
        Ok(self)
    }

    /// Builder form of [`Conf::set`].
    pub fn with(mut self, key: &str, value: &str) -> Result<Conf> {
        self.set(key, value)?;
        Ok(self)
    }

    /// Applies `key=value` arguments (for example from a command line).
    pub fn apply_overrides<'a>(
        &mut self,
        args: impl IntoIterator<Item = &'a str>,
    ) -> Result<&mut Self> {
        for arg in args {
            let (k, v) = arg
                .split_once('=')
                .ok_or_else(|| EngineError::InvalidArgument {
                    operation: "configuration override".into(),
                    reason: format!("`{arg}` is not of the form key=value"),
                })?;
            self.set(k.trim(), v)?;
        }
        Ok(self)
    }

    /// The value of a known key (set or default); `None` when unset and without default.
    pub fn get(&self, key: &str) -> Option<&str> {
        let spec = spec_for(key)?;
        let v = self
            .values
            .get(key)
            .map(String::as_str)
            .unwrap_or(spec.default);
        (!v.is_empty()).then_some(v)
    }

    fn parsed<T>(&self, key: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        // Values were validated when set, so a parse failure here can only be a default typo.
        self.get(key).and_then(parse)
    }

    /// An integer key.
    pub fn get_usize(&self, key: &str) -> Option<usize> {
        self.parsed(key, |v| v.parse().ok())
    }

    /// A size key, in bytes.
    pub fn get_bytes(&self, key: &str) -> Option<u64> {
        self.parsed(key, parse_bytes)
    }

    /// A duration key.
    pub fn get_duration(&self, key: &str) -> Option<Duration> {
        self.parsed(key, parse_duration)
    }

    /// A boolean key.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.parsed(key, |v| v.parse().ok())
    }

    /// Whether this process holds worker 0 (the driver's role): always in local mode, and for
    /// process 0 (`ember.cluster.process`) in cluster mode. In cluster mode every process gets
    /// a result from [`crate::run`]; print it once with
    /// `if conf.is_driver_process() { println!(..) }`.
    pub fn is_driver_process(&self) -> bool {
        match self.master() {
            Ok(Master::Cluster { process, .. }) => process == 0,
            _ => true,
        }
    }

    /// Where the workers run.
    pub fn master(&self) -> Result<Master> {
        let m = self.get("ember.master").unwrap_or("local[2]");
        if m == "cluster" {
            let hosts: Vec<String> = self
                .get("ember.cluster.hosts")
                .unwrap_or("")
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect();
            let process = self.get_usize("ember.cluster.process").unwrap_or(0);
            if hosts.is_empty() {
                return Err(invalid(
                    "ember.cluster.hosts",
                    "",
                    "at least one host:port in cluster mode",
                ));
            }
            if process >= hosts.len() {
                return Err(invalid(
                    "ember.cluster.process",
                    &process.to_string(),
                    &format!(
                        "an index below the {} hosts of ember.cluster.hosts",
                        hosts.len()
                    ),
                ));
            }
            let threads = self.get_usize("ember.cluster.threads").unwrap_or(2);
            Ok(Master::Cluster {
                hosts,
                process,
                threads,
            })
        } else {
            Ok(Master::Local(parse_local(m).expect("validated when set")))
        }
    }

    /// Total worker count across all processes.
    pub fn total_workers(&self) -> Result<usize> {
        Ok(match self.master()? {
            Master::Local(n) => n,
            Master::Cluster { hosts, threads, .. } => hosts.len() * threads,
        })
    }

    /// The storage layer's options: every explicitly set key (it reads the `ember.s3.*`,
    /// `ember.storage.*`... families and the standard cloud environment variables).
    pub fn storage_config(&self) -> ember_storage::StorageConfig {
        let map: std::collections::HashMap<String, String> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        ember_storage::StorageConfig::from_map(&map)
    }

    /// All explicitly set keys, for logging: values of secret keys (`secret`, `key`, `token`,
    /// `password`... in the name) are `***`, and URL credentials `***@`.
    pub fn explicit(&self) -> impl Iterator<Item = (&str, std::borrow::Cow<'_, str>)> {
        self.values
            .iter()
            .map(|(k, v)| (k.as_str(), redact_value(k, v)))
    }
}

fn invalid(key: &str, value: &str, expected: &str) -> EngineError {
    EngineError::InvalidConfigValue {
        key: key.into(),
        value: redact_value(key, value).into_owned(),
        expected: expected.into(),
    }
}

/// Adds where a defaults-file entry came from to the error it caused.
fn at_line(err: EngineError, path: &Path, line: usize) -> EngineError {
    let place = format!("configuration file {}, line {line}", path.display());
    match err {
        EngineError::InvalidConfigValue {
            key,
            value,
            expected,
        } => EngineError::InvalidConfigValue {
            key,
            value,
            expected: format!("{expected} ({place})"),
        },
        EngineError::UnknownConfigKey { key, hint } => EngineError::UnknownConfigKey {
            key,
            hint: format!("{hint} ({place})"),
        },
        other => other,
    }
}

/// The key whose environment variable is within a small edit distance of `name`, if any.
fn env_var_suggestion(name: &str) -> Option<&'static str> {
    let (key, distance) = KEYS
        .iter()
        .map(|s| (s.key, edit_distance(&env_var_for(s.key), name)))
        .min_by_key(|(_, d)| *d)?;
    (distance <= 3).then_some(key)
}

fn unknown_key(key: &str) -> EngineError {
    let lower = key.to_ascii_lowercase();
    let close = KEYS
        .iter()
        .map(|s| s.key)
        .min_by_key(|k| edit_distance(&k.to_ascii_lowercase(), &lower));
    let hint = match close {
        Some(k) if edit_distance(&k.to_ascii_lowercase(), &lower) <= 3 => {
            format!(" (did you mean `{k}`?)")
        }
        _ => String::new(),
    };
    EngineError::UnknownConfigKey {
        key: key.into(),
        hint,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn validate(spec: &KeySpec, value: &str) -> Result<()> {
    let v = value.trim();
    let ok = match spec.kind {
        ValueKind::Master => v == "cluster" || parse_local(v).is_some(),
        ValueKind::PositiveInt => v.parse::<usize>().is_ok_and(|n| n >= 1),
        ValueKind::NonNegativeInt => v.parse::<usize>().is_ok(),
        ValueKind::Bool => v == "true" || v == "false",
        ValueKind::Bytes => match units::parse_size(v) {
            Ok(_) => true,
            Err(e) => return Err(unit_error(spec, value, e)),
        },
        ValueKind::Duration => match units::parse_duration(v) {
            Ok(_) => true,
            Err(e) => return Err(unit_error(spec, value, e)),
        },
        ValueKind::Text => true,
        ValueKind::OneOf(words) => words.contains(&v),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(spec.key, value, &expected(spec.kind)))
    }
}

fn unit_error(spec: &KeySpec, value: &str, e: UnitError) -> EngineError {
    let why = match e {
        UnitError::Malformed { .. } => String::new(),
        other => format!(" ({other})"),
    };
    invalid(
        spec.key,
        value,
        &format!("{}{}", expected(spec.kind), redact_value(spec.key, &why)),
    )
}

fn expected(kind: ValueKind) -> String {
    match kind {
        ValueKind::Master => "`local`, `local[N]` with N >= 1, `local[*]` or `cluster`".into(),
        ValueKind::PositiveInt => "an integer >= 1".into(),
        ValueKind::NonNegativeInt => "an integer >= 0".into(),
        ValueKind::Bool => "`true` or `false`".into(),
        ValueKind::Bytes => units::SIZE_EXAMPLES.into(),
        ValueKind::Duration => format!(
            "a non-negative {} of at most 100 years",
            units::DURATION_EXAMPLES.trim_start_matches("a ")
        ),
        ValueKind::Text => "text".into(),
        ValueKind::OneOf(words) => format!("one of {}", words.join(", ")),
    }
}

fn parse_local(v: &str) -> Option<usize> {
    if v == "local" {
        return Some(1);
    }
    let inner = v.strip_prefix("local[")?.strip_suffix(']')?;
    if inner == "*" {
        return Some(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        );
    }
    inner.parse::<usize>().ok().filter(|n| *n >= 1)
}

/// Parses `1048576`, `512k`, `256m`, `2g` (binary multiples), optionally with a trailing `b`;
/// `None` when malformed or too large. The same parser as [`ember_storage::units::parse_size`].
pub fn parse_bytes(v: &str) -> Option<u64> {
    units::parse_size(v).ok()
}

/// Parses `0`, `250` (milliseconds), `100ms`, `3s`, `2m`, `1h`; `None` when malformed, negative,
/// NaN or longer than 100 years. The same parser as [`ember_storage::units::parse_duration`].
pub fn parse_duration(v: &str) -> Option<Duration> {
    units::parse_duration(v).ok()
}

#[cfg(test)]
mod tests;
