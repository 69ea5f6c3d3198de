//! URLs resolved to object stores.
//!
//! A [`Location`] is a normalized URL (no credentials), the `object_store` that serves it and the
//! object path inside that store. Stores are built once per (scheme, authority, configuration) and
//! shared, so resolving many URLs of one bucket reuses one HTTP client.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;

use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::secret::redact_url;

/// Which kind of store serves a location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// The local file system (`file://` and bare paths).
    Local,
    /// The process-wide in-memory store (`memory://name/...`), shared by every resolution.
    Memory,
    /// Amazon S3 or any S3-compatible endpoint (`s3://bucket/...`, `s3a://`).
    S3,
    /// Google Cloud Storage (`gs://bucket/...`).
    Gcs,
    /// Azure Blob Storage (`az://container/...`, `abfs://`).
    Azure,
    /// HDFS (`hdfs://namenode/...`, with the `hdfs` feature).
    Hdfs,
}

/// A resolved URL: the store that serves it and the path inside the store.
#[derive(Clone)]
pub struct Location {
    url: String,
    base: String,
    kind: StoreKind,
    store: Arc<dyn ObjectStore>,
    path: Path,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deliberately not the store: store Debug output may include configuration.
        f.debug_struct("Location")
            .field("url", &self.url)
            .field("kind", &self.kind)
            .finish()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

/// The parts of a URL string: scheme, authority and the raw (undecoded) path without leading `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UrlParts {
    pub scheme: String,
    pub authority: String,
    pub path: String,
}

/// Splits a URL or bare path into its parts; bare and relative paths become absolute `file` paths.
pub(crate) fn split_url(input: &str) -> Result<UrlParts> {
    let invalid = |reason: &str| StorageError::InvalidUrl {
        url: input.to_string(),
        reason: reason.to_string(),
    };
    if input.trim().is_empty() {
        return Err(invalid("empty path"));
    }
    match input.find("://") {
        Some(i)
            if input[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.') =>
        {
            let scheme = input[..i].to_ascii_lowercase();
            let rest = &input[i + 3..];
            let (authority, path) = match rest.find('/') {
                Some(j) => (&rest[..j], &rest[j + 1..]),
                None => (rest, ""),
            };
            if authority.contains('@') {
                // Never echo the credentials themselves.
                return Err(StorageError::InvalidUrl {
                    url: redact_url(input).into_owned(),
                    reason: "credentials in URLs are not accepted; set ember.s3.accessKey and \
                             ember.s3.secretKey (or the AWS_* variables) instead"
                        .into(),
                });
            }
            if scheme == "file" && !authority.is_empty() && authority != "localhost" {
                return Err(invalid("file URLs take no host: use file:///absolute/path"));
            }
            Ok(UrlParts {
                scheme,
                authority: if scheme_is_file(input) {
                    String::new()
                } else {
                    authority.to_string()
                },
                path: path.trim_end_matches('/').to_string(),
            })
        }
        _ => {
            let p = PathBuf::from(input);
            let abs = if p.is_absolute() {
                p
            } else {
                std::env::current_dir()
                    .map_err(|e| invalid(&e.to_string()))?
                    .join(p)
            };
            // `.` and `..` resolved lexically, as the shell would: object paths have neither.
            let mut clean = PathBuf::new();
            for c in abs.components() {
                match c {
                    std::path::Component::CurDir => {}
                    std::path::Component::ParentDir => {
                        clean.pop();
                    }
                    other => clean.push(other),
                }
            }
            let s = clean
                .to_str()
                .ok_or_else(|| invalid("path is not valid UTF-8"))?;
            Ok(UrlParts {
                scheme: "file".to_string(),
                authority: String::new(),
                path: s.trim_start_matches('/').trim_end_matches('/').to_string(),
            })
        }
    }
}

fn scheme_is_file(input: &str) -> bool {
    input.len() >= 7 && input[..7].eq_ignore_ascii_case("file://")
}

impl UrlParts {
    /// The normalized URL text.
    pub fn url(&self) -> String {
        format!("{}://{}/{}", self.scheme, self.authority, self.path)
    }
}

/// Parses an object path, accepting names `Path::parse` would reject by encoding them.
pub(crate) fn object_path(raw: &str) -> Path {
    Path::parse(raw).unwrap_or_else(|_| Path::from_iter(raw.split('/').filter(|s| !s.is_empty())))
}

type StoreKey = (String, String, u64);

fn store_cache() -> &'static Mutex<HashMap<StoreKey, Arc<dyn ObjectStore>>> {
    static CACHE: OnceLock<Mutex<HashMap<StoreKey, Arc<dyn ObjectStore>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn config_fingerprint(config: &StorageConfig) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    config.hash(&mut h);
    h.finish()
}

impl Location {
    /// Resolves a URL (or a bare local path) with the given configuration.
    pub fn resolve(url: &str, config: &StorageConfig) -> Result<Location> {
        let parts = split_url(url)?;
        let kind = match parts.scheme.as_str() {
            "file" => StoreKind::Local,
            "memory" => StoreKind::Memory,
            "s3" | "s3a" => StoreKind::S3,
            "gs" | "gcs" => StoreKind::Gcs,
            "az" | "abfs" | "abfss" | "azure" => StoreKind::Azure,
            "hdfs" | "viewfs" => StoreKind::Hdfs,
            other => {
                return Err(StorageError::UnsupportedScheme {
                    url: url.to_string(),
                    scheme: other.to_string(),
                    hint: "supported: file, memory, s3, s3a, gs, az, abfs, hdfs (feature `hdfs`)"
                        .into(),
                })
            }
        };
        if kind != StoreKind::Local && parts.authority.is_empty() {
            return Err(StorageError::InvalidUrl {
                url: url.to_string(),
                reason: "missing bucket / container / host".into(),
            });
        }
        let key = (
            parts.scheme.clone(),
            parts.authority.clone(),
            config_fingerprint(config),
        );
        let store = {
            let cached = store_cache()
                .lock()
                .expect("store cache poisoned")
                .get(&key)
                .cloned();
            match cached {
                Some(s) => s,
                None => {
                    let s = build_store(kind, &parts, config)?;
                    store_cache()
                        .lock()
                        .expect("store cache poisoned")
                        .entry(key)
                        .or_insert(s)
                        .clone()
                }
            }
        };
        let base = format!("{}://{}", parts.scheme, parts.authority);
        let location = Location {
            url: parts.url(),
            base,
            kind,
            store,
            path: object_path(&parts.path),
        };
        if let Some(path) = location.local_path() {
            check_not_special(&path, location.url())?;
        }
        Ok(location)
    }

    /// The normalized URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store kind.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The store serving this location.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object path inside the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The same store at another object path.
    pub fn with_path(&self, path: Path) -> Location {
        let url = format!("{}/{}", self.base, path.as_ref());
        Location {
            url,
            base: self.base.clone(),
            kind: self.kind,
            store: self.store.clone(),
            path,
        }
    }

    /// A child of this location (`name` may contain `/`).
    pub fn child(&self, name: &str) -> Location {
        let joined = if self.path.as_ref().is_empty() {
            name.trim_matches('/').to_string()
        } else {
            format!("{}/{}", self.path.as_ref(), name.trim_matches('/'))
        };
        self.with_path(object_path(&joined))
    }

    /// The local file-system path of a `file` location.
    pub fn local_path(&self) -> Option<PathBuf> {
        (self.kind == StoreKind::Local).then(|| PathBuf::from(format!("/{}", self.path.as_ref())))
    }

    /// The final path segment (file name).
    pub fn file_name(&self) -> &str {
        self.path.filename().unwrap_or("")
    }
}

/// What a local path is when it is neither a regular file nor a directory (see
/// [`StorageError::NotARegularFile`]); `None` for those and for paths that do not exist.
pub(crate) fn special_kind(path: &std::path::Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    // `metadata` stats without opening, so a pipe without a writer does not block it.
    let t = std::fs::metadata(path).ok()?.file_type();
    if t.is_fifo() {
        Some("named pipe")
    } else if t.is_socket() {
        Some("socket")
    } else if t.is_char_device() {
        Some("character device")
    } else if t.is_block_device() {
        Some("block device")
    } else {
        None
    }
}

/// Refuses a local path that is a pipe, socket or device.
pub(crate) fn check_not_special(path: &std::path::Path, url: &str) -> Result<()> {
    match special_kind(path) {
        Some(kind) => Err(StorageError::NotARegularFile {
            url: url.to_string(),
            kind,
        }),
        None => Ok(()),
    }
}

fn build_store(
    kind: StoreKind,
    parts: &UrlParts,
    config: &StorageConfig,
) -> Result<Arc<dyn ObjectStore>> {
    let url = parts.url();
    let setup = |e: object_store::Error| StorageError::StoreSetup {
        url: url.clone(),
        source: e,
    };
    let unknown_key = |key: &str| StorageError::InvalidConfig {
        key: key.to_string(),
        value: "<not shown>".into(),
        reason: "not a known option for this store".into(),
    };
    crate::runtime::install_crypto_provider();
    Ok(match kind {
        StoreKind::Local => Arc::new(LocalFileSystem::new().with_automatic_cleanup(true)),
        StoreKind::Memory => memory_store(&parts.authority),
        StoreKind::S3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_client_options(config.client_options()?)
                .with_retry(config.retry_config()?)
                .with_bucket_name(&parts.authority);
            let endpoint = s3_endpoint(config)?;
            if let Some(ep) = &endpoint {
                b = b.with_endpoint(ep);
            }
            let path_style = config
                .get_bool("ember.s3.pathStyle")?
                .unwrap_or(endpoint.is_some());
            b = b.with_virtual_hosted_style_request(!path_style);
            let allow_http = config.get_bool("ember.s3.allowHttp")?.unwrap_or_else(|| {
                endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://"))
            });
            b = b.with_allow_http(allow_http);
            if let Some(r) = config.get("ember.s3.region") {
                b = b.with_region(r);
            }
            if let Some(k) = config.secret("ember.s3.accessKey") {
                b = b.with_access_key_id(k.expose());
            }
            if let Some(k) = config.secret("ember.s3.secretKey") {
                b = b.with_secret_access_key(k.expose());
            }
            if let Some(k) = config.secret("ember.s3.sessionToken") {
                b = b.with_token(k.expose());
            }
            for (k, v) in config.with_prefix("ember.s3.") {
                if matches!(
                    k,
                    "endpoint"
                        | "pathStyle"
                        | "allowHttp"
                        | "region"
                        | "accessKey"
                        | "secretKey"
                        | "sessionToken"
                ) {
                    continue;
                }
                let key = AmazonS3ConfigKey::from_str(k)
                    .map_err(|_| unknown_key(&format!("ember.s3.{k}")))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(setup)?)
        }
        StoreKind::Gcs => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_client_options(config.client_options()?)
                .with_retry(config.retry_config()?)
                .with_bucket_name(&parts.authority);
            for (k, v) in config.with_prefix("ember.gs.") {
                let key = GoogleConfigKey::from_str(k)
                    .map_err(|_| unknown_key(&format!("ember.gs.{k}")))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(setup)?)
        }
        StoreKind::Azure => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_client_options(config.client_options()?)
                .with_retry(config.retry_config()?)
                .with_url(format!("{}://{}", parts.scheme, parts.authority));
            for (k, v) in config.with_prefix("ember.az.") {
                let key = AzureConfigKey::from_str(k)
                    .map_err(|_| unknown_key(&format!("ember.az.{k}")))?;
                b = b.with_config(key, v);
            }
            Arc::new(b.build().map_err(setup)?)
        }
        StoreKind::Hdfs => hdfs_store(parts, config)?,
    })
}

/// The S3 endpoint from `ember.s3.endpoint`, else `AWS_ENDPOINT_URL` / `AWS_ENDPOINT`. One that
/// carries `user:password@` is refused (with the credentials redacted): S3 requests are signed
/// with the access and secret keys, and a URL's user info would be sent and logged in clear.
fn s3_endpoint(config: &StorageConfig) -> Result<Option<String>> {
    let (key, endpoint) = match config.get("ember.s3.endpoint") {
        Some(ep) => ("ember.s3.endpoint", Some(ep.to_string())),
        None => match std::env::var("AWS_ENDPOINT_URL") {
            Ok(ep) => ("AWS_ENDPOINT_URL", Some(ep)),
            Err(_) => ("AWS_ENDPOINT", std::env::var("AWS_ENDPOINT").ok()),
        },
    };
    if let Some(ep) = &endpoint {
        let shown = redact_url(ep);
        if matches!(shown, std::borrow::Cow::Owned(_)) {
            return Err(StorageError::InvalidConfig {
                key: key.to_string(),
                value: shown.into_owned(),
                reason: "credentials in the endpoint URL are not accepted; set \
                         ember.s3.accessKey and ember.s3.secretKey (or AWS_ACCESS_KEY_ID and \
                         AWS_SECRET_ACCESS_KEY) instead"
                    .into(),
            });
        }
    }
    Ok(endpoint)
}

/// The process-wide in-memory store for a `memory://name` authority.
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    STORES
        .get_or_init(Default::default)
        .lock()
        .expect("memory store registry poisoned")
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

#[cfg(feature = "hdfs")]
fn hdfs_store(parts: &UrlParts, config: &StorageConfig) -> Result<Arc<dyn ObjectStore>> {
    let url = format!("{}://{}", parts.scheme, parts.authority);
    let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new()
        .with_url(url.clone())
        .with_config(
            config
                .with_prefix("ember.hdfs.")
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .with_io_runtime(crate::runtime::runtime().handle().clone())
        .build()
        .map_err(|e| StorageError::StoreSetup { url, source: e })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "hdfs"))]
fn hdfs_store(parts: &UrlParts, _config: &StorageConfig) -> Result<Arc<dyn ObjectStore>> {
    Err(StorageError::UnsupportedScheme {
        url: parts.url(),
        scheme: parts.scheme.clone(),
        hint: "build ember-storage with the `hdfs` feature".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_refused_without_echoing_them() {
        let err =
            Location::resolve("s3://AKID:wJalrXUtn@bucket/x", &StorageConfig::new()).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(matches!(err, StorageError::InvalidUrl { .. }), "{err:?}");
        assert!(
            !text.contains("wJalrXUtn") && !text.contains("AKID"),
            "{text}"
        );
        assert!(text.contains("s3://***@bucket/x"), "{text}");
    }

    #[test]
    fn endpoint_with_credentials_is_refused_without_echoing_them() {
        let cfg =
            StorageConfig::new().with("ember.s3.endpoint", "http://AKID:wJalrXUtn@127.0.0.1:9");
        let err = Location::resolve("s3://bucket/x", &cfg).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(
            matches!(&err, StorageError::InvalidConfig { key, .. } if key == "ember.s3.endpoint"),
            "{err:?}"
        );
        assert!(
            !text.contains("wJalrXUtn") && !text.contains("AKID"),
            "{text}"
        );
        assert!(text.contains("http://***@127.0.0.1:9"), "{text}");
    }
}
