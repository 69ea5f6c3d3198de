//! Finding input files: single objects, directories, globs and comma-separated lists, honouring
//! the `_SUCCESS` manifests written by [`crate::sink::JobCommitter`].
//!
//! Rules for a directory:
//! 1. If `_SUCCESS` exists and holds an Ember manifest, the inputs are exactly the files it lists
//!    (this is what makes commits on S3 atomic for readers: the manifest is written last, in one PUT).
//!    An empty `_SUCCESS` (written by Hadoop/Spark) means "all visible files".
//! 2. Otherwise, if `_temporary/` holds anything, a job is writing or failed there: the read fails
//!    with [`StorageError::IncompleteOutput`] instead of returning partial data.
//! 3. Otherwise every visible file: names whose path (below the directory) has no component starting
//!    with `_` or `.` (Hadoop's hidden-file rule), recursively.

use serde::{Deserialize, Serialize};

use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::glob::{glob_match, has_glob};
use crate::location::{split_url, Location};
use crate::ops::ObjectInfo;

/// The name of the commit marker.
pub const SUCCESS_MARKER: &str = "_SUCCESS";
/// The staging directory under a destination.
pub const TEMPORARY_DIR: &str = "_temporary";

/// The content of a `_SUCCESS` marker written by Ember: the committed files, relative to the
/// destination directory.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// Always `"ember"` (distinguishes our manifests from empty Hadoop markers).
    pub writer: String,
    /// The job that committed last.
    pub job_id: String,
    /// Committed files, relative to the directory.
    pub files: Vec<String>,
}

/// Whether a relative path is hidden (a component starts with `_` or `.`).
pub fn is_hidden(relative: &str) -> bool {
    relative
        .split('/')
        .any(|c| c.starts_with('_') || c.starts_with('.'))
}

/// Reads a directory's `_SUCCESS` manifest: `Ok(None)` when absent or empty (Hadoop marker).
pub fn read_manifest(dir: &Location) -> Result<Option<Manifest>> {
    let marker = dir.child(SUCCESS_MARKER);
    let bytes = match marker.read_all() {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| StorageError::BadManifest {
        url: marker.url().to_string(),
        reason: e.to_string(),
    })?;
    if m.writer != "ember" {
        return Err(StorageError::BadManifest {
            url: marker.url().to_string(),
            reason: "not an Ember manifest".into(),
        });
    }
    Ok(Some(m))
}

fn relative<'a>(dir: &Location, obj: &'a Location) -> &'a str {
    let d = dir.path().as_ref();
    let p = obj.path().as_ref();
    if d.is_empty() {
        p
    } else {
        p.strip_prefix(d)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(p)
    }
}

/// The committed or visible files of a directory (rules in the module docs).
pub fn list_directory(dir: &Location) -> Result<Vec<ObjectInfo>> {
    if let Some(path) = dir.local_path() {
        refuse_special_files(dir, &path)?;
    }
    let all = dir.list_recursive()?;
    if all.is_empty() {
        return Ok(all);
    }
    let has_marker = all
        .iter()
        .any(|o| relative(dir, &o.location) == SUCCESS_MARKER);
    if has_marker {
        if let Some(m) = read_manifest(dir)? {
            let mut out = Vec::with_capacity(m.files.len());
            for f in &m.files {
                match all.iter().find(|o| relative(dir, &o.location) == f) {
                    Some(o) => out.push(o.clone()),
                    None => {
                        let loc = dir.child(f);
                        let source = object_store::Error::NotFound {
                            path: loc.path().to_string(),
                            source: "listed in _SUCCESS manifest but missing".into(),
                        };
                        return Err(StorageError::NotFound {
                            url: loc.url().to_string(),
                            source,
                        });
                    }
                }
            }
            return Ok(out);
        }
    } else if all
        .iter()
        .any(|o| relative(dir, &o.location).starts_with("_temporary/"))
    {
        return Err(StorageError::IncompleteOutput {
            url: dir.url().to_string(),
        });
    }
    Ok(all
        .into_iter()
        .filter(|o| !is_hidden(relative(dir, &o.location)))
        .collect())
}

/// Fails on the first visible pipe, socket or device below a local directory: the object store's
/// listing skips them, so a directory of pipes would otherwise read as empty without a word.
fn refuse_special_files(dir: &Location, path: &std::path::Path) -> Result<()> {
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(['_', '.']) {
                continue;
            }
            let p = entry.path();
            if let Some(kind) = crate::location::special_kind(&p) {
                let rel = p.strip_prefix(path).unwrap_or(&p).to_string_lossy();
                return Err(StorageError::NotARegularFile {
                    url: dir.child(&rel).url().to_string(),
                    kind,
                });
            }
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(())
}

/// Expands one or more inputs (comma-separated) into files: objects, directories and globs.
/// Fails with [`StorageError::NoInputs`] when nothing matches, except for a committed empty
/// dataset: a directory whose Ember `_SUCCESS` manifest lists no file (a job that saved an empty
/// RDD) is a valid input with no files, so every reader sees it as empty.
pub fn list_inputs(urls: &str, config: &StorageConfig) -> Result<Vec<ObjectInfo>> {
    let mut out = Vec::new();
    let mut committed_empty = false;
    for url in split_top_level_commas(urls)
        .into_iter()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        let found = list_one(url, config)?;
        if found.is_empty() {
            if is_committed_empty(url, config)? {
                committed_empty = true;
                continue;
            }
            return Err(StorageError::NoInputs {
                url: url.to_string(),
            });
        }
        out.extend(found);
    }
    if out.is_empty() && !committed_empty {
        return Err(StorageError::NoInputs {
            url: urls.to_string(),
        });
    }
    Ok(out)
}

/// Whether `url` is a directory whose Ember manifest lists no file.
fn is_committed_empty(url: &str, config: &StorageConfig) -> Result<bool> {
    if has_glob(&split_url(url)?.path) {
        return Ok(false);
    }
    let dir = Location::resolve(url, config)?;
    Ok(read_manifest(&dir)?.is_some_and(|m| m.files.is_empty()))
}

/// Splits on commas outside `{...}` (so `a/{x,y}` stays one pattern).
fn split_top_level_commas(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn list_one(url: &str, config: &StorageConfig) -> Result<Vec<ObjectInfo>> {
    let parts = split_url(url)?;
    if !has_glob(&parts.path) {
        let loc = Location::resolve(url, config)?;
        if loc.path().as_ref().is_empty() {
            return list_directory(&loc);
        }
        return match loc.head() {
            Ok(meta) => Ok(vec![ObjectInfo::from_meta(loc, &meta)]),
            Err(e) if e.is_not_found() || loc.local_path().is_some_and(|p| p.is_dir()) => {
                list_directory(&loc)
            }
            // Some S3 servers answer HEAD on a "directory" with an error rather than 404: a
            // directory listing decides; if it finds nothing, the HEAD error stands.
            Err(e) => match list_directory(&loc) {
                Ok(found) if !found.is_empty() => Ok(found),
                Err(dir_err @ StorageError::IncompleteOutput { .. }) => Err(dir_err),
                _ => Err(e),
            },
        };
    }
    // Literal directory prefix before the first glob component.
    let comps: Vec<&str> = parts.path.split('/').collect();
    let first_glob = comps
        .iter()
        .position(|c| has_glob(c))
        .unwrap_or(comps.len());
    let prefix = comps[..first_glob].join("/");
    let pattern = comps[first_glob..].join("/");
    let base_url = format!("{}://{}/{}", parts.scheme, parts.authority, prefix);
    let base = Location::resolve(&base_url, config)?;
    let mut out = Vec::new();
    let mut matched_dirs: Vec<String> = Vec::new();
    for obj in base.list_recursive()? {
        let rel = relative(&base, &obj.location).to_string();
        if glob_match(&pattern, &rel) {
            if !is_hidden(&rel) {
                out.push(obj);
            }
            continue;
        }
        // A pattern matching a directory selects that directory's files.
        let comps: Vec<&str> = rel.split('/').collect();
        for i in 1..comps.len() {
            let dir = comps[..i].join("/");
            if glob_match(&pattern, &dir) {
                if !matched_dirs.contains(&dir) {
                    matched_dirs.push(dir);
                }
                break;
            }
        }
    }
    for dir in matched_dirs {
        out.extend(list_directory(&base.child(&dir))?);
    }
    out.sort_by(|a, b| a.location.path().cmp(b.location.path()));
    out.dedup_by(|a, b| a.location.path() == b.location.path());
    Ok(out)
}
