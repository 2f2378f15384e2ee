//! The `local` backend: buckets are directories under the operator's root
//! (`SLUICE_OBJECT_ROOT`, default `./sluice-objects`), one area per realm
//! and environment: `ROOT/<realm>/<environment>/<bucket>/<key>`. Keys are
//! checked before they get here (no `.`/`..`/empty segment, not absolute),
//! and links placed by the operator are only followed while they stay in
//! the bucket. The content type and etag of each object are kept beside it
//! in `ROOT/<realm>/<environment>/.object-meta/<bucket>/<key>` (bucket names
//! cannot start with a dot, so that directory is never a bucket). Runs on
//! tokio's blocking pool.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sluice_engine::FlowError;
use sluice_spec::ByteSize;

use super::{Job, Listing, ObjectInfo, Outcome, bad_input, not_found, rfc3339, storage_error};

/// The environment variable naming the root directory.
const ROOT_VARIABLE: &str = "SLUICE_OBJECT_ROOT";

/// The root when the variable is not set (relative to the working directory).
const DEFAULT_ROOT: &str = "sluice-objects";

/// Beside the buckets: content types and etags.
const META_DIR: &str = ".object-meta";

/// Beside the buckets: objects being written, renamed into place when whole.
const TEMP_DIR: &str = ".object-tmp";

/// The root directory, read once per process.
fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| crate::input::root_dir(ROOT_VARIABLE, DEFAULT_ROOT))
}

/// Runs `job` on `bucket` in the area of `realm` and `environment`.
pub(super) fn run(
    realm: &str,
    environment: &str,
    bucket: &str,
    job: Job,
) -> Result<Outcome, FlowError> {
    let area = Area::new(realm, environment, bucket)?;
    match job {
        Job::Put {
            key,
            bytes,
            content_type,
        } => area.put(&key, &bytes, &content_type).map(Outcome::Stored),
        Job::Get { key, max_size } => area.get(&key, max_size),
        Job::Head { key } => Ok(match area.head(&key)? {
            Some(info) => Outcome::Found(info),
            None => Outcome::Missing(key),
        }),
        Job::List {
            prefix,
            delimiter,
            max_keys,
            token,
        } => area
            .list(&prefix, delimiter.as_deref(), max_keys, token.as_deref())
            .map(Outcome::Listed),
        Job::Delete { key } => area.delete(&key).map(|()| Outcome::Deleted(key)),
        Job::CreateBucket => {
            fs::create_dir_all(&area.bucket_dir)
                .map_err(|e| io_error(&e, "create bucket", bucket))?;
            Ok(Outcome::BucketReady(bucket.to_owned()))
        }
    }
}

/// An I/O error about `what` (OS messages name no path, so the root stays hidden).
fn io_error(e: &std::io::Error, doing: &str, what: &str) -> FlowError {
    match e.kind() {
        ErrorKind::PermissionDenied => {
            storage_error(403, format!("cannot {doing} '{what}': permission denied"))
        }
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists | ErrorKind::IsADirectory => {
            storage_error(
                409,
                format!(
                    "cannot {doing} '{what}': the local backend keeps keys as paths, so a key cannot be both an object and the start of other keys ('a' and 'a/b')"
                ),
            )
        }
        _ => storage_error(500, format!("cannot {doing} '{what}': {e}")),
    }
}

/// The directories of one bucket in one realm and environment.
struct Area {
    bucket: String,
    /// `ROOT/<realm>/<environment>`.
    dir: PathBuf,
    /// `…/<bucket>`.
    bucket_dir: PathBuf,
    /// `…/.object-meta/<bucket>`.
    meta_dir: PathBuf,
}

/// What is kept beside an object.
struct Meta {
    content_type: Option<String>,
    etag: Option<String>,
    /// The modification time the etag is for (nanoseconds since 1970).
    modified: Option<u128>,
}

impl Area {
    fn new(realm: &str, environment: &str, bucket: &str) -> Result<Self, FlowError> {
        for (what, name) in [("realm", realm), ("environment", environment)] {
            let usable = !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains(['/', '\\', '\0']);
            if !usable {
                return Err(storage_error(
                    500,
                    format!(
                        "the {what} name '{}' cannot name a directory",
                        name.escape_debug()
                    ),
                ));
            }
        }
        let dir = root().join(realm).join(environment);
        Ok(Area {
            bucket: bucket.to_owned(),
            bucket_dir: dir.join(bucket),
            meta_dir: dir.join(META_DIR).join(bucket),
            dir,
        })
    }

    fn data_path(&self, key: &str) -> PathBuf {
        let mut path = self.bucket_dir.clone();
        path.extend(key.split('/'));
        path
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        let mut path = self.meta_dir.clone();
        path.extend(key.split('/'));
        path
    }

    /// The object's file when it is one, inside the bucket (links followed
    /// only while they stay in it): `None` when there is no such object.
    fn object_file(&self, key: &str) -> Result<Option<(PathBuf, fs::Metadata)>, FlowError> {
        let path = self.data_path(key);
        let Ok(bucket) = fs::canonicalize(&self.bucket_dir) else {
            return Ok(None);
        };
        let real = match fs::canonicalize(&path) {
            Ok(real) => real,
            Err(_) => return Ok(None),
        };
        if !real.starts_with(&bucket) {
            return Err(self.outside(key));
        }
        match fs::metadata(&real) {
            Ok(meta) if meta.is_file() => Ok(Some((real, meta))),
            _ => Ok(None),
        }
    }

    fn read_meta(&self, key: &str) -> Meta {
        let stored: Value = fs::read(self.meta_path(key))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let text = |k: &str| stored.get(k).and_then(Value::as_str).map(str::to_owned);
        Meta {
            content_type: text("contentType"),
            etag: text("etag"),
            modified: text("modified").and_then(|m| m.parse().ok()),
        }
    }

    fn info(&self, key: &str, meta: &fs::Metadata, with_type: bool) -> ObjectInfo {
        let modified = meta.modified().ok();
        let nanos = modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos());
        let kept = self.read_meta(key);
        // A file changed by something else than this step has no stored
        // etag: one is made from its time and size.
        let etag = match (&kept.etag, kept.modified) {
            (Some(etag), Some(at)) if Some(at) == nanos => etag.clone(),
            _ => format!("{:x}-{:x}", nanos.unwrap_or(0), meta.len()),
        };
        ObjectInfo {
            key: key.to_owned(),
            size: meta.len(),
            content_type: with_type.then(|| {
                kept.content_type
                    .unwrap_or_else(|| guess_type(key).to_owned())
            }),
            etag: Some(etag),
            last_modified: modified.map(|t| rfc3339(t.into())),
        }
    }

    fn put(&self, key: &str, bytes: &[u8], content_type: &str) -> Result<ObjectInfo, FlowError> {
        let path = self.data_path(key);
        let failed = |e: &std::io::Error| io_error(e, "put", key);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(&self.bucket_dir).map_err(|e| failed(&e))?;
            // Nothing is made outside the bucket: the part of the path that
            // exists is checked before the rest is made.
            let mut existing = parent;
            while fs::symlink_metadata(existing).is_err()
                && let Some(up) = existing.parent()
            {
                existing = up;
            }
            if !self.within(existing) {
                return Err(self.outside(key));
            }
            fs::create_dir_all(parent).map_err(|e| failed(&e))?;
            if !self.within(parent) {
                return Err(self.outside(key));
            }
        }
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return Err(storage_error(
                409,
                format!(
                    "cannot put '{key}': other keys start with '{key}/', and the local backend keeps keys as paths"
                ),
            ));
        }
        let temp = self.temp_file().map_err(|e| failed(&e))?;
        let written = fs::File::create(&temp)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()))
            .and_then(|()| fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(failed(&e));
        }
        let meta = fs::metadata(&path).map_err(|e| failed(&e))?;
        let etag = hex(&Md5::digest(bytes));
        let nanos = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let meta_path = self.meta_path(key);
        let kept = json!({
            "contentType": content_type,
            "etag": etag,
            "modified": nanos.to_string(),
        });
        let stored = meta_path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&meta_path, kept.to_string()));
        if let Err(e) = stored {
            return Err(failed(&e));
        }
        Ok(ObjectInfo {
            key: key.to_owned(),
            size: meta.len(),
            content_type: Some(content_type.to_owned()),
            etag: Some(etag),
            last_modified: meta.modified().ok().map(|t| rfc3339(t.into())),
        })
    }

    /// A fresh path in the area's temporary directory (made when missing).
    fn temp_file(&self) -> std::io::Result<PathBuf> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = self.dir.join(TEMP_DIR);
        fs::create_dir_all(&dir)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(dir.join(format!(
            "{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )))
    }

    fn get(&self, key: &str, max_size: u64) -> Result<Outcome, FlowError> {
        let Some((path, meta)) = self.object_file(key)? else {
            return Err(not_found(&self.bucket, key));
        };
        let bytes = crate::input::read_at_most(&path, meta.len(), max_size)
            .map_err(|e| io_error(&e, "get", key))?
            .map_err(|size| {
                storage_error(
                    413,
                    format!(
                        "object '{key}' is {size} bytes, more than maxSize ({})",
                        ByteSize(max_size)
                    ),
                )
            })?;
        let mut info = self.info(key, &meta, true);
        info.size = bytes.len() as u64;
        Ok(Outcome::Fetched(info, bytes))
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, FlowError> {
        Ok(self
            .object_file(key)?
            .map(|(_, meta)| self.info(key, &meta, true)))
    }

    /// Whether the existing directory `dir` is in the bucket, links followed.
    fn within(&self, dir: &Path) -> bool {
        match (fs::canonicalize(&self.bucket_dir), fs::canonicalize(dir)) {
            (Ok(bucket), Ok(real)) => real.starts_with(bucket),
            _ => false,
        }
    }

    fn outside(&self, key: &str) -> FlowError {
        bad_input(
            super::STEP,
            format!(
                "`key` '{key}' goes through a link that leads outside bucket '{}'",
                self.bucket
            ),
        )
    }

    fn delete(&self, key: &str) -> Result<(), FlowError> {
        let path = self.data_path(key);
        if let Some(parent) = path.parent()
            && fs::metadata(parent).is_ok_and(|m| m.is_dir())
        {
            if !self.within(parent) {
                return Err(self.outside(key));
            }
            // A link itself goes, not what it leads to.
            if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
                fs::remove_file(&path).map_err(|e| io_error(&e, "delete", key))?;
            }
        }
        let meta_path = self.meta_path(key);
        if fs::symlink_metadata(&meta_path).is_ok_and(|m| m.is_file()) {
            let _ = fs::remove_file(&meta_path);
        }
        // S3 has no directories: the ones left empty go too.
        prune(&path, &self.bucket_dir);
        prune(&meta_path, &self.meta_dir);
        Ok(())
    }

    fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        max_keys: u32,
        token: Option<&str>,
    ) -> Result<Listing, FlowError> {
        let after = match token {
            Some(t) => Some(
                URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        bad_input(
                            super::STEP,
                            "`continuationToken` is not a nextToken this step gave",
                        )
                    })?,
            ),
            None => None,
        };
        let mut keys = Vec::new();
        if fs::metadata(&self.bucket_dir).is_ok_and(|m| m.is_dir()) {
            // Start in the deepest directory the prefix names, when it names one.
            let (start, start_key) = match prefix.rfind('/') {
                Some(end)
                    if prefix[..end]
                        .split('/')
                        .all(|s| !s.is_empty() && s != "." && s != "..") =>
                {
                    (
                        self.data_path(&prefix[..end]),
                        format!("{}/", &prefix[..end]),
                    )
                }
                _ => (self.bucket_dir.clone(), String::new()),
            };
            if fs::metadata(&start).is_ok_and(|m| m.is_dir()) && self.within(&start) {
                walk(&start, &start_key, &mut keys)
                    .map_err(|e| io_error(&e, "list bucket", &self.bucket))?;
            }
        }
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        // Keys and common prefixes, in order, each once.
        let mut entries: Vec<(String, bool)> = Vec::new();
        for key in keys {
            let grouped = delimiter.and_then(|d| {
                key[prefix.len()..]
                    .find(d)
                    .map(|at| key[..prefix.len() + at + d.len()].to_owned())
            });
            match grouped {
                Some(common) => {
                    if entries.last().is_none_or(|(last, _)| *last != common) {
                        entries.push((common, true));
                    }
                }
                None => entries.push((key, false)),
            }
        }
        if let Some(after) = &after {
            entries.retain(|(name, _)| name.as_str() > after.as_str());
        }
        let limit = usize::try_from(max_keys).unwrap_or(usize::MAX);
        let more = entries.len() > limit;
        entries.truncate(limit);
        let mut listing = Listing {
            next_token: if more {
                entries
                    .last()
                    .map(|(name, _)| URL_SAFE_NO_PAD.encode(name.as_bytes()))
            } else {
                None
            },
            ..Listing::default()
        };
        for (name, is_prefix) in entries {
            if is_prefix {
                listing.prefixes.push(name);
            } else if let Ok(meta) = fs::metadata(self.data_path(&name)) {
                listing.objects.push(self.info(&name, &meta, false));
            }
        }
        Ok(listing)
    }
}

/// Adds the keys of the files under `dir` (named `prefix…`) to `keys`.
/// Links are left out, as are names that are not UTF-8.
fn walk(dir: &Path, prefix: &str, keys: &mut Vec<String>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&entry.path(), &format!("{prefix}{name}/"), keys)?;
        } else if kind.is_file() {
            keys.push(format!("{prefix}{name}"));
        }
    }
    Ok(())
}

/// Removes the empty directories from `path`'s parent up to, not
/// including, `stop`.
fn prune(path: &Path, stop: &Path) {
    let mut current = path.parent();
    while let Some(dir) = current {
        if dir == stop || !dir.starts_with(stop) || fs::remove_dir(dir).is_err() {
            break;
        }
        current = dir.parent();
    }
}

/// A content type from the key's extension, for files put there by other means.
fn guess_type(key: &str) -> &'static str {
    let extension = key
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "json" => "application/json",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        _ => "application/octet-stream",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_guessed_from_extensions() {
        assert_eq!(guess_type("a/b.JSON"), "application/json");
        assert_eq!(guess_type("a/b"), "application/octet-stream");
        assert_eq!(guess_type("report.csv"), "text/csv");
    }

    #[test]
    fn md5_is_hex() {
        assert_eq!(hex(&Md5::digest(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
