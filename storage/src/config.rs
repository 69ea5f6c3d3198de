//! Storage configuration: a string map (the engine's configuration) plus the environment.
//!
//! # Keys
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `ember.s3.endpoint` | S3-compatible endpoint URL, e.g. `http://127.0.0.1:9000` | `AWS_ENDPOINT_URL`, else AWS |
//! | `ember.s3.region` | region | `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1` |
//! | `ember.s3.pathStyle` | path-style requests (`http://host/bucket/key`) | `true` when an endpoint is set |
//! | `ember.s3.allowHttp` | allow plain-http endpoints | `true` when the endpoint is `http://` |
//! | `ember.s3.accessKey` | access key id (secret: never logged) | `AWS_ACCESS_KEY_ID` |
//! | `ember.s3.secretKey` | secret access key (secret) | `AWS_SECRET_ACCESS_KEY` |
//! | `ember.s3.sessionToken` | session token (secret) | `AWS_SESSION_TOKEN` |
//! | `ember.s3.<object_store key>` | any other `AmazonS3ConfigKey`, e.g. `ember.s3.skip_signature` | |
//! | `ember.gs.<key>` / `ember.az.<key>` | any `GoogleConfigKey` / `AzureConfigKey` | `GOOGLE_*` / `AZURE_*` env |
//! | `ember.hdfs.<key>` | Hadoop client settings passed to hdfs-native (`dfs.ha.namenodes.ns`...) | core-site/hdfs-site |
//! | `ember.storage.maxRetries` | retries per request (exponential backoff with jitter) | `5` |
//! | `ember.storage.retryTimeout` | give up retrying a request after this long | `60s` |
//! | `ember.storage.backoffInitial` / `backoffMax` | backoff bounds | `100ms` / `5s` |
//! | `ember.storage.requestTimeout` | bound on one HTTP request, body included | `60s` |
//! | `ember.storage.connectTimeout` | bound on connecting | `5s` |
//! | `ember.storage.readChunk` | bytes per ranged GET when streaming an object | `8m` |
//! | `ember.storage.readAhead` | ranged GETs kept in flight ahead of the reader | `2` |
//! | `ember.storage.maxSplitBytes` | largest text split | `64m` |
//! | `ember.storage.writePartSize` | multipart upload part size | `8m` |
//!
//! Durations and sizes are parsed by [`crate::units`] (the engine's configuration uses the same
//! parser): durations take `ms`, `s`, `m`, `h` suffixes (a bare number is milliseconds); sizes take
//! `k`, `m`, `g`, `t` (binary) suffixes. Configuration wins over the environment. Values of keys
//! that look secret (`secret`, `key`, `token`, `password`, `sas`, `credential` in the name) are
//! shown as `***` in `Debug` output and error messages, and credentials inside URL values
//! (`http://user:password@host`) as `***@` (see [`crate::secret`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::error::{Result, StorageError};
pub use crate::secret::is_secret_key;
use crate::secret::{redact_value, Secret};
pub use crate::units::{parse_duration, parse_size};

/// Storage options, built from the engine's configuration map.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StorageConfig {
    options: BTreeMap<String, String>,
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.options {
            m.entry(k, &redact_value(k, v));
        }
        m.finish()
    }
}

/// The keys documented in the table above (other keys of the `ember.s3.`, `ember.gs.`,
/// `ember.az.` and `ember.hdfs.` families go to the backends as they are). The engine maps the
/// environment variables of these keys (`EMBER_S3_ENDPOINT`) back to them.
pub const DOCUMENTED_KEYS: &[&str] = &[
    "ember.s3.endpoint",
    "ember.s3.region",
    "ember.s3.pathStyle",
    "ember.s3.allowHttp",
    "ember.s3.accessKey",
    "ember.s3.secretKey",
    "ember.s3.sessionToken",
    "ember.storage.maxRetries",
    "ember.storage.retryTimeout",
    "ember.storage.backoffInitial",
    "ember.storage.backoffMax",
    "ember.storage.requestTimeout",
    "ember.storage.connectTimeout",
    "ember.storage.readChunk",
    "ember.storage.readAhead",
    "ember.storage.maxSplitBytes",
    "ember.storage.writePartSize",
];

impl StorageConfig {
    /// An empty configuration (environment and defaults only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the `ember.*` entries of an engine configuration map.
    pub fn from_map(map: &HashMap<String, String>) -> Self {
        let options = map
            .iter()
            .filter(|(k, _)| k.starts_with("ember."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        StorageConfig { options }
    }

    /// Sets one option (builder style).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// Sets one option.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.options.insert(key.into(), value.into());
    }

    /// The raw value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// A credential option, wrapped so that it cannot be printed by accident.
    pub fn secret(&self, key: &str) -> Option<Secret> {
        self.get(key).map(Secret::from)
    }

    /// All options whose key starts with `prefix`, with the prefix removed.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.options
            .iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v.as_str())))
    }

    fn invalid(&self, key: &str, reason: &str) -> StorageError {
        let value = redact_value(key, self.get(key).unwrap_or_default()).into_owned();
        StorageError::InvalidConfig {
            key: key.to_string(),
            value,
            reason: reason.to_string(),
        }
    }

    /// A boolean option (`true`/`false`/`1`/`0`/`yes`/`no`).
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(Some(true)),
                "false" | "0" | "no" | "off" => Ok(Some(false)),
                _ => Err(self.invalid(key, "expected true or false")),
            },
        }
    }

    /// A duration option: `250ms`, `5s`, `2m`; a bare number is milliseconds.
    pub fn get_duration(&self, key: &str, default: Duration) -> Result<Duration> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        parse_duration(v).map_err(|e| self.invalid(key, &e.to_string()))
    }

    /// A byte-size option: `65536`, `64k`, `8m`, `1g`.
    pub fn get_bytes(&self, key: &str, default: u64) -> Result<u64> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        parse_size(v).map_err(|e| self.invalid(key, &e.to_string()))
    }

    /// An unsigned integer option.
    pub fn get_usize(&self, key: &str, default: usize) -> Result<usize> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        v.trim()
            .parse()
            .map_err(|_| self.invalid(key, "expected a non-negative integer"))
    }

    /// The retry policy for object-store requests.
    pub fn retry_config(&self) -> Result<RetryConfig> {
        Ok(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self
                    .get_duration("ember.storage.backoffInitial", Duration::from_millis(100))?,
                max_backoff: self
                    .get_duration("ember.storage.backoffMax", Duration::from_secs(5))?,
                base: 2.0,
            },
            max_retries: self.get_usize("ember.storage.maxRetries", 5)?,
            retry_timeout: self
                .get_duration("ember.storage.retryTimeout", Duration::from_secs(60))?,
        })
    }

    /// HTTP client options (timeouts) for cloud stores.
    pub fn client_options(&self) -> Result<ClientOptions> {
        Ok(ClientOptions::new()
            .with_timeout(
                self.get_duration("ember.storage.requestTimeout", Duration::from_secs(60))?,
            )
            .with_connect_timeout(
                self.get_duration("ember.storage.connectTimeout", Duration::from_secs(5))?,
            ))
    }

    /// Bytes fetched per ranged GET when streaming an object.
    pub fn read_chunk(&self) -> Result<u64> {
        Ok(self
            .get_bytes("ember.storage.readChunk", 8 << 20)?
            .max(4096))
    }

    /// Ranged GETs kept in flight ahead of a streaming reader.
    pub fn read_ahead(&self) -> Result<usize> {
        self.get_usize("ember.storage.readAhead", 2)
    }

    /// Largest text split in bytes.
    pub fn max_split_bytes(&self) -> Result<u64> {
        Ok(self
            .get_bytes("ember.storage.maxSplitBytes", 64 << 20)?
            .max(1))
    }

    /// Multipart upload part size (at least 5 MiB, S3's minimum).
    pub fn write_part_size(&self) -> Result<usize> {
        Ok(self
            .get_bytes("ember.storage.writePartSize", 8 << 20)?
            .max(5 << 20) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1500"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("8MB"), Ok(8 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_errors() {
        let cfg = StorageConfig::new()
            .with("ember.s3.secretKey", "s3cr3t-value")
            .with("ember.s3.accessKey", "AKIDEXAMPLE")
            .with("ember.s3.endpoint", "http://127.0.0.1:9000");
        let dbg = format!("{cfg:?}");
        assert!(
            !dbg.contains("s3cr3t-value") && !dbg.contains("AKIDEXAMPLE"),
            "{dbg}"
        );
        assert!(dbg.contains("http://127.0.0.1:9000"));
        let secret = cfg.secret("ember.s3.secretKey").unwrap();
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        assert_eq!(secret.expose(), "s3cr3t-value");
        let bad = cfg.clone().with("ember.s3.secretKey.pathStyle", "maybe");
        let err = bad
            .get_bool("ember.s3.secretKey.pathStyle")
            .unwrap_err()
            .to_string();
        assert!(err.contains("***") && !err.contains("maybe"), "{err}");
        let err = cfg
            .clone()
            .with("ember.storage.maxRetries", "lots")
            .retry_config()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ember.storage.maxRetries") && err.contains("lots"),
            "{err}"
        );
    }

    #[test]
    fn endpoint_credentials_are_redacted_in_debug() {
        let cfg = StorageConfig::new().with("ember.s3.endpoint", "http://AKID:wJalrXUtn@h:9000");
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("wJalrXUtn") && !dbg.contains("AKID"), "{dbg}");
        assert!(dbg.contains("http://***@h:9000"), "{dbg}");
    }

    #[test]
    fn extreme_durations_are_errors_naming_the_key() {
        for v in ["1e30s", "-1s", "NaN", "inf"] {
            let cfg = StorageConfig::new().with("ember.storage.retryTimeout", v);
            let err = cfg.retry_config().unwrap_err();
            assert!(
                matches!(&err, StorageError::InvalidConfig { key, .. } if key == "ember.storage.retryTimeout"),
                "{v}: {err:?}"
            );
            assert!(err.to_string().contains(v), "{err}");
        }
    }

    #[test]
    fn from_map_keeps_only_ember_keys() {
        let mut m = HashMap::new();
        m.insert("ember.s3.region".to_string(), "eu-west-1".to_string());
        m.insert("other.key".to_string(), "x".to_string());
        let cfg = StorageConfig::from_map(&m);
        assert_eq!(cfg.get("ember.s3.region"), Some("eu-west-1"));
        assert_eq!(cfg.get("other.key"), None);
    }
}
