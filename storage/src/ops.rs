//! Blocking object operations on a [`Location`], for the engine's plain worker threads.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};

use crate::error::{Result, StorageError};
use crate::location::Location;
use crate::runtime::block_on;

/// One object found by a listing: its location, size and version.
#[derive(Clone, Debug)]
pub struct ObjectInfo {
    /// The object's location.
    pub location: Location,
    /// Its size in bytes.
    pub size: u64,
    /// What identifies this state of the object: its modification time (nanoseconds) and, where
    /// the store gives them, its ETag and version id. A rewritten object gets a new one, so a
    /// lineage fingerprint that includes it (checkpoints) notices changed input data.
    pub version: String,
}

impl ObjectInfo {
    /// The listing entry for `meta`, found under `location`'s store.
    pub(crate) fn from_meta(location: Location, meta: &ObjectMeta) -> ObjectInfo {
        let version = format!(
            "{}/{}/{}",
            meta.last_modified
                .timestamp_nanos_opt()
                .unwrap_or_else(|| meta.last_modified.timestamp_millis()),
            meta.e_tag.as_deref().unwrap_or(""),
            meta.version.as_deref().unwrap_or("")
        );
        ObjectInfo {
            location,
            size: meta.size,
            version,
        }
    }

    /// The object's URL.
    pub fn url(&self) -> &str {
        self.location.url()
    }
}

impl Location {
    fn err(&self, e: object_store::Error) -> StorageError {
        StorageError::from_store(self.url(), e)
    }

    /// The object's metadata (`NotFound` when there is no object at exactly this path).
    pub fn head(&self) -> Result<ObjectMeta> {
        block_on(self.store().head(self.path())).map_err(|e| self.err(e))
    }

    /// Whether an object exists at exactly this path.
    pub fn exists(&self) -> Result<bool> {
        match self.head() {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            // Local directories answer HEAD with an error that is not NotFound on some platforms.
            Err(_) if self.local_path().is_some_and(|p| p.is_dir()) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every object under this location treated as a directory, recursively, sorted by path.
    pub fn list_recursive(&self) -> Result<Vec<ObjectInfo>> {
        if let Some(p) = self.local_path() {
            if !p.exists() {
                return Ok(Vec::new());
            }
        }
        let prefix = if self.path().as_ref().is_empty() {
            None
        } else {
            Some(self.path().clone())
        };
        let store = self.store().clone();
        let metas: Vec<ObjectMeta> =
            block_on(async move { store.list(prefix.as_ref()).try_collect().await })
                .map_err(|e| self.err(e))?;
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .map(|m| ObjectInfo::from_meta(self.with_path(m.location.clone()), &m))
            .collect();
        out.sort_by(|a, b| a.location.path().cmp(b.location.path()));
        Ok(out)
    }

    /// Bytes `[start, end)` of the object.
    pub fn get_range(&self, start: u64, end: u64) -> Result<Bytes> {
        if start >= end {
            return Ok(Bytes::new());
        }
        block_on(self.store().get_range(self.path(), start..end)).map_err(|e| self.err(e))
    }

    /// The whole object in memory (for small objects: manifests, footers, whole-file reads).
    pub fn read_all(&self) -> Result<Bytes> {
        let store = self.store().clone();
        let path = self.path().clone();
        block_on(async move { store.get(&path).await?.bytes().await }).map_err(|e| self.err(e))
    }

    /// Writes the object in one request (atomic: readers see all of it or none).
    pub fn put(&self, data: impl Into<Bytes>) -> Result<()> {
        let payload = PutPayload::from_bytes(data.into());
        block_on(self.store().put(self.path(), payload))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Deletes the object; a missing object is not an error.
    pub fn delete(&self) -> Result<()> {
        match block_on(self.store().delete(self.path())) {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Deletes every object under this location (as a directory). Returns how many were deleted.
    pub fn delete_recursive(&self) -> Result<usize> {
        let objects = self.list_recursive()?;
        let n = objects.len();
        let store = self.store().clone();
        let paths: Vec<_> = objects
            .into_iter()
            .map(|o| Ok(o.location.path().clone()))
            .collect();
        block_on(async move {
            let stream = futures::stream::iter(paths).boxed();
            store
                .delete_stream(stream)
                .try_for_each(|_| async { Ok(()) })
                .await
        })
        .or_else(|e| match e {
            object_store::Error::NotFound { .. } => Ok(()),
            e => Err(self.err(e)),
        })?;
        if let Some(p) = self.local_path() {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(n)
    }

    /// Moves this object to `to` (same store): an atomic rename on local files and HDFS, a copy
    /// followed by a delete on object stores without rename (S3, GCS, Azure).
    pub fn rename_to(&self, to: &Location) -> Result<()> {
        block_on(self.store().rename(self.path(), to.path())).map_err(|e| self.err(e))
    }

    /// Copies this object to `to` (same store).
    pub fn copy_to(&self, to: &Location) -> Result<()> {
        block_on(self.store().copy(self.path(), to.path())).map_err(|e| self.err(e))
    }
}
