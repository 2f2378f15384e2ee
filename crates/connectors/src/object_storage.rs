//! `object-storage`: put, get, head, list and delete objects in buckets,
//! on an S3-compatible service (AWS S3, MinIO, Ceph, …; requests signed
//! with SigV4) or on the local filesystem under the operator's root, in a
//! directory per realm and environment. Both backends give the same output
//! shapes; this module owns the fields, the key rules and the shapes, the
//! backends only move bytes. The S3 backend keeps one HTTP connection pool
//! per compiled step.

mod local;
mod s3;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, schema_of,
};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::{ByteSize, StepKind};

use crate::input::bad_input;

/// The step's name, and the code of its errors (but `not_found`).
const STEP: &str = "object-storage";

/// The default `maxSize` of a get.
const DEFAULT_MAX_SIZE: u64 = 16_000_000;

/// The most keys one list gives (S3's own limit).
const MAX_KEYS: u32 = 1000;

/// The longest key S3 takes, in bytes.
const MAX_KEY_BYTES: usize = 1024;

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum Operation {
    /// Store `content` at `key`: `{key, size, etag, contentType}`.
    Put,
    /// The object at `key`: `{key, size, contentType, etag, lastModified, encoding, body}`.
    Get,
    /// Whether the object at `key` exists, and its description:
    /// `{key, exists, size, contentType, etag, lastModified}`.
    Head,
    /// Objects whose key starts with `prefix`: `{objects, prefixes, nextToken}`.
    List,
    /// The object at `key` (nothing there is no error): `{deleted: key}`.
    Delete,
    /// Make `bucket` (already there and yours is no error): `{bucket}`.
    CreateBucket,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Put => "put",
            Operation::Get => "get",
            Operation::Head => "head",
            Operation::List => "list",
            Operation::Delete => "delete",
            Operation::CreateBucket => "create-bucket",
        }
    }
}

/// Where objects are kept.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum BackendKind {
    /// An S3-compatible service, with the keys of `account` (the default).
    #[default]
    S3,
    /// Directories under the operator's root (`SLUICE_OBJECT_ROOT`), per
    /// realm and environment.
    Local,
}

/// How content is written and bodies are read.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    /// put: a string as UTF-8 text, other JSON as JSON text. get: parsed
    /// JSON when the content type is JSON, else text when the bytes are
    /// UTF-8, else base64 (the default).
    #[default]
    Auto,
    /// put: like auto. get: the body as text (a 422 when it is not UTF-8).
    Text,
    /// put: the value as JSON text (a string too, in quotes). get: the body
    /// parsed as JSON (a 422 when it is not JSON).
    Json,
    /// put: `content` is base64 of the bytes to store. get: the body as base64.
    Base64,
}

/// Fields of the `object-storage` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ObjectStorageConfig {
    /// put, get, head, list, delete or create-bucket.
    operation: Operation,
    /// s3 (default) or local.
    #[serde(default)]
    backend: Option<BackendKind>,
    /// s3: the account with `accessKeyId` and `secretAccessKey` (and
    /// optionally `sessionToken`, `region`, `endpoint`, `pathStyle`).
    #[serde(default)]
    account: Option<String>,
    /// s3: the service's URL for S3-compatible servers
    /// (`http://127.0.0.1:9000`); default the account's, else AWS for the
    /// region. May hold expressions.
    #[serde(default)]
    endpoint: Option<String>,
    /// s3: the region requests are signed for; default the account's,
    /// else us-east-1. May hold expressions.
    #[serde(default)]
    region: Option<String>,
    /// s3: address buckets in the path (`endpoint/bucket/key`) instead of
    /// the host name (`bucket.endpoint/key`); default the account's, else
    /// true when an endpoint is given and false for AWS.
    #[serde(default)]
    path_style: Option<bool>,
    /// The bucket; may hold expressions.
    bucket: String,
    /// put, get, head, delete: the object's key (`orders/{{ message.id }}.json`);
    /// may hold expressions.
    #[serde(default)]
    key: Option<String>,
    /// list: only keys starting with this; may hold expressions.
    #[serde(default)]
    prefix: Option<String>,
    /// list: group keys that have this after the prefix (usually "/") into
    /// `prefixes`, like directories.
    #[serde(default)]
    delimiter: Option<String>,
    /// list: at most this many keys and prefixes (1 to 1000, default 1000).
    #[serde(default)]
    max_keys: Option<u32>,
    /// list: where to go on, the `nextToken` of the previous list; may hold
    /// expressions (empty or null: from the start).
    #[serde(default)]
    continuation_token: Option<String>,
    /// put: what to store (may hold expressions); see `encoding`.
    #[serde(default)]
    content: Option<Value>,
    /// put: the content type stored with the object; default by content:
    /// text/plain for a string, application/json for other JSON,
    /// application/octet-stream with base64. May hold expressions.
    #[serde(default)]
    content_type: Option<String>,
    /// put and get: auto (default), text, json or base64.
    #[serde(default)]
    encoding: Option<Encoding>,
    /// get: refuse larger objects with a 413 (default 16MB).
    #[serde(default)]
    max_size: Option<ByteSize>,
}

pub(crate) const OBJECT_STORAGE: StepFactory = StepFactory {
    kind: StepKind {
        name: "object-storage",
        summary: "Put, get, head, list and delete objects on S3-compatible storage or in the local directory of the realm and environment.",
        schema: schema_of::<ObjectStorageConfig>,
    },
    compile,
};

enum Backend {
    S3(Box<s3::S3Backend>),
    Local,
}

struct ObjectStorageStep {
    operation: Operation,
    backend: Backend,
    bucket: Template,
    key: Option<Template>,
    prefix: Option<Template>,
    delimiter: Option<String>,
    max_keys: u32,
    continuation_token: Option<Template>,
    content: Option<ValueTemplate>,
    content_type: Option<Template>,
    encoding: Encoding,
    max_size: u64,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: ObjectStorageConfig = cx.config()?;
    let base = cx.path().clone();
    let op = config.operation;
    let kind = config.backend.unwrap_or_default();
    let mut ok = true;
    // Fields that belong to other operations.
    let misplaced: [(&str, bool, &[Operation]); 9] = [
        (
            "key",
            config.key.is_some(),
            &[
                Operation::Put,
                Operation::Get,
                Operation::Head,
                Operation::Delete,
            ],
        ),
        ("prefix", config.prefix.is_some(), &[Operation::List]),
        ("delimiter", config.delimiter.is_some(), &[Operation::List]),
        ("maxKeys", config.max_keys.is_some(), &[Operation::List]),
        (
            "continuationToken",
            config.continuation_token.is_some(),
            &[Operation::List],
        ),
        ("content", config.content.is_some(), &[Operation::Put]),
        (
            "contentType",
            config.content_type.is_some(),
            &[Operation::Put],
        ),
        (
            "encoding",
            config.encoding.is_some(),
            &[Operation::Put, Operation::Get],
        ),
        ("maxSize", config.max_size.is_some(), &[Operation::Get]),
    ];
    for (field, given, ops) in misplaced {
        if given && !ops.contains(&op) {
            let names: Vec<&str> = ops.iter().map(|o| o.name()).collect();
            cx.problem(
                base.key(field),
                format!(
                    "`{field}` is for operation {}, not {}",
                    names.join(", "),
                    op.name()
                ),
            );
            ok = false;
        }
    }
    if kind == BackendKind::Local {
        for (field, given) in [
            ("account", config.account.is_some()),
            ("endpoint", config.endpoint.is_some()),
            ("region", config.region.is_some()),
            ("pathStyle", config.path_style.is_some()),
        ] {
            if given {
                cx.problem(
                    base.key(field),
                    format!("`{field}` is for the s3 backend, not local"),
                );
                ok = false;
            }
        }
    } else if config.account.is_none() {
        cx.problem(
            base.key("account"),
            "the s3 backend needs `account`: an account with accessKeyId and secretAccessKey (or set `backend: local`)",
        );
        ok = false;
    }
    let needs_key = matches!(
        op,
        Operation::Put | Operation::Get | Operation::Head | Operation::Delete
    );
    if needs_key && config.key.is_none() {
        cx.problem(
            base.key("key"),
            format!("operation {} needs `key`", op.name()),
        );
        ok = false;
    }
    if op == Operation::Put
        && !crate::input::check_content(
            cx,
            "put",
            "what to store",
            config.content.as_ref(),
            config.encoding == Some(Encoding::Base64),
        )
    {
        ok = false;
    }
    if let Some(n) = config.max_keys
        && !(1..=MAX_KEYS).contains(&n)
    {
        cx.problem(
            base.key("maxKeys"),
            format!("maxKeys must be from 1 to {MAX_KEYS}"),
        );
        ok = false;
    }
    if config.delimiter.as_deref() == Some("") {
        cx.problem(
            base.key("delimiter"),
            "the delimiter is not empty (usually \"/\")",
        );
        ok = false;
    }
    let bucket = cx.template("bucket", &config.bucket);
    if let Some(t) = &bucket
        && t.is_literal()
        && let Err(why) = check_bucket(&config.bucket)
    {
        cx.problem(base.key("bucket"), why);
        ok = false;
    }
    let key = compile_opt(cx, "key", config.key.as_deref());
    if let (Some(t), Some(text)) = (&key, &config.key)
        && t.is_literal()
        && let Err(why) = check_key(text, kind)
    {
        cx.problem(base.key("key"), why);
        ok = false;
    }
    let prefix = compile_opt(cx, "prefix", config.prefix.as_deref());
    let continuation_token = compile_opt(
        cx,
        "continuationToken",
        config.continuation_token.as_deref(),
    );
    let content_type = compile_opt(cx, "contentType", config.content_type.as_deref());
    let content = match &config.content {
        Some(v) => cx.value_template("content", v),
        None => None,
    };
    let endpoint = compile_opt(cx, "endpoint", config.endpoint.as_deref());
    if let (Some(t), Some(text)) = (&endpoint, &config.endpoint)
        && t.is_literal()
        && let Err(why) = s3::check_endpoint(text)
    {
        cx.problem(base.key("endpoint"), why);
        ok = false;
    }
    let region = compile_opt(cx, "region", config.region.as_deref());
    if !ok {
        return None;
    }
    let backend = match kind {
        BackendKind::Local => Backend::Local,
        BackendKind::S3 => {
            let client = match crate::http::client(false, true) {
                Ok(c) => c,
                Err(e) => {
                    cx.problem(base, format!("cannot make an HTTP client: {e}"));
                    return None;
                }
            };
            Backend::S3(Box::new(s3::S3Backend {
                client,
                account: config.account.unwrap_or_default(),
                endpoint: given(config.endpoint.is_some(), endpoint)?,
                region: given(config.region.is_some(), region)?,
                path_style: config.path_style,
            }))
        }
    };
    Some(Box::new(ObjectStorageStep {
        operation: op,
        backend,
        bucket: bucket?,
        key: given(config.key.is_some(), key)?,
        prefix: given(config.prefix.is_some(), prefix)?,
        delimiter: config.delimiter,
        max_keys: config.max_keys.unwrap_or(MAX_KEYS),
        continuation_token: given(config.continuation_token.is_some(), continuation_token)?,
        content: given(config.content.is_some(), content)?,
        content_type: given(config.content_type.is_some(), content_type)?,
        encoding: config.encoding.unwrap_or_default(),
        max_size: config.max_size.map_or(DEFAULT_MAX_SIZE, |s| s.0),
    }))
}

/// Compiles an optional template field.
fn compile_opt(cx: &mut StepCx<'_, '_>, field: &str, text: Option<&str>) -> Option<Template> {
    cx.template(field, text?)
}

/// A compiled optional field: `Some(None)` when it was not given, `None`
/// when it was given but did not compile (the problem is recorded).
fn given<T>(was_given: bool, compiled: Option<T>) -> Option<Option<T>> {
    match (was_given, compiled) {
        (false, _) => Some(None),
        (true, Some(t)) => Some(Some(t)),
        (true, None) => None,
    }
}

/// Checks a bucket name by S3's rules (which also make it a safe directory name).
fn check_bucket(name: &str) -> Result<(), String> {
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if (3..=63).contains(&name.len())
        && chars_ok
        && ends_ok(name.as_bytes().first())
        && ends_ok(name.as_bytes().last())
        && !name.contains("..")
    {
        Ok(())
    } else {
        Err(format!(
            "`bucket` '{}' is not a bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit",
            name.escape_debug()
        ))
    }
}

/// Checks an object key: never empty, absolute, with NUL or with a `.` or
/// `..` segment (which would climb out of the bucket on disk, and which URLs
/// rewrite); on the local backend also no empty segment, trailing `/` or `\`,
/// since keys there are paths.
fn check_key(key: &str, backend: BackendKind) -> Result<(), String> {
    let shown = key.escape_debug();
    if key.is_empty() {
        return Err("`key` is empty".into());
    }
    if key.contains('\0') {
        return Err(format!("`key` '{shown}' contains a NUL character"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "`key` is {} bytes long; keys have at most {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    if key.starts_with('/') {
        return Err(format!(
            "`key` '{shown}' is absolute: keys start without '/'"
        ));
    }
    for segment in key.split('/') {
        if segment == "." || segment == ".." {
            return Err(format!(
                "`key` '{shown}' has a '{segment}' segment: keys name objects inside the bucket and cannot climb out of it"
            ));
        }
    }
    if backend == BackendKind::Local {
        if key.contains('\\') {
            return Err(format!(
                "`key` '{shown}' contains '\\': the local backend keeps keys as paths, with '/' between names"
            ));
        }
        if key.split('/').any(str::is_empty) {
            return Err(format!(
                "`key` '{shown}' has an empty segment ('//' or a '/' at the end): the local backend keeps keys as paths"
            ));
        }
    }
    Ok(())
}

/// What one execution asks of a backend.
enum Job {
    Put {
        key: String,
        bytes: Vec<u8>,
        content_type: String,
    },
    Get {
        key: String,
        max_size: u64,
    },
    Head {
        key: String,
    },
    List {
        prefix: String,
        delimiter: Option<String>,
        max_keys: u32,
        token: Option<String>,
    },
    Delete {
        key: String,
    },
    CreateBucket,
}

/// What a backend knows of an object.
#[derive(Default, Debug, Clone, PartialEq)]
struct ObjectInfo {
    key: String,
    size: u64,
    content_type: Option<String>,
    /// Without the quotes S3 puts around it.
    etag: Option<String>,
    /// RFC 3339 in UTC, to the second.
    last_modified: Option<String>,
}

/// One page of a list.
#[derive(Default, Debug)]
struct Listing {
    objects: Vec<ObjectInfo>,
    prefixes: Vec<String>,
    next_token: Option<String>,
}

/// What a backend did.
enum Outcome {
    Stored(ObjectInfo),
    Fetched(ObjectInfo, Vec<u8>),
    Found(ObjectInfo),
    /// head: there is no object at this key.
    Missing(String),
    Listed(Listing),
    Deleted(String),
    BucketReady(String),
}

/// The error of a missing object (get): code `not_found`, status 404.
fn not_found(bucket: &str, key: &str) -> FlowError {
    FlowError::new(
        "not_found",
        404,
        format!("there is no object '{key}' in bucket '{bucket}'"),
    )
    .with_details(json!({"bucket": bucket, "key": key}))
}

/// An error of the step (code `object-storage`).
fn storage_error(status: u16, message: impl Into<String>) -> FlowError {
    FlowError::new(STEP, status, message)
}

/// A time as RFC 3339 in UTC, to the second (`2026-03-01T10:30:00Z`).
fn rfc3339(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The bytes to store for `content`, and the content type they have by default.
fn content_bytes(content: Value, encoding: Encoding) -> Result<(Vec<u8>, &'static str), FlowError> {
    Ok(match encoding {
        Encoding::Auto | Encoding::Text => match content {
            Value::String(s) => (s.into_bytes(), "text/plain; charset=utf-8"),
            other => (other.to_string().into_bytes(), "application/json"),
        },
        Encoding::Json => (content.to_string().into_bytes(), "application/json"),
        Encoding::Base64 => {
            let Value::String(text) = content else {
                return Err(bad_input(
                    STEP,
                    "with `encoding: base64` the content must be a string of base64",
                ));
            };
            let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = STANDARD
                .decode(clean)
                .map_err(|e| bad_input(STEP, format!("the content is not base64: {e}")))?;
            (bytes, "application/octet-stream")
        }
    })
}

/// Whether a content type is JSON (`application/json`, `…+json`).
fn is_json_type(content_type: Option<&str>) -> bool {
    let essence = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// A body as JSON by `encoding`, and how it was given (`json`, `text` or `base64`).
fn body_value(
    bytes: Vec<u8>,
    content_type: Option<&str>,
    encoding: Encoding,
    key: &str,
) -> Result<(Value, &'static str), FlowError> {
    match encoding {
        Encoding::Base64 => Ok((Value::String(STANDARD.encode(&bytes)), "base64")),
        Encoding::Json => serde_json::from_slice(&bytes)
            .map(|v| (v, "json"))
            .map_err(|e| storage_error(422, format!("object '{key}' is not JSON: {e}"))),
        Encoding::Text => String::from_utf8(bytes)
            .map(|t| (Value::String(t), "text"))
            .map_err(|_| {
                storage_error(
                    422,
                    format!("object '{key}' is not UTF-8 text: get it with `encoding: base64`"),
                )
            }),
        Encoding::Auto => {
            if is_json_type(content_type)
                && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
            {
                return Ok((v, "json"));
            }
            Ok(match String::from_utf8(bytes) {
                Ok(text) => (Value::String(text), "text"),
                Err(e) => (Value::String(STANDARD.encode(e.as_bytes())), "base64"),
            })
        }
    }
}

/// An object's description as JSON (without `body`).
fn description(info: &ObjectInfo) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    out.insert("key".into(), json!(info.key));
    out.insert("size".into(), json!(info.size));
    out.insert("contentType".into(), json!(info.content_type));
    out.insert("etag".into(), json!(info.etag));
    out.insert("lastModified".into(), json!(info.last_modified));
    out
}

impl ObjectStorageStep {
    fn backend_kind(&self) -> BackendKind {
        match self.backend {
            Backend::S3(_) => BackendKind::S3,
            Backend::Local => BackendKind::Local,
        }
    }

    fn text(
        &self,
        template: Option<&Template>,
        cx: &Context,
        message: &Value,
    ) -> Result<Option<String>, FlowError> {
        match template {
            Some(t) => Ok(Some(cx.render(t, message)?.into_owned())),
            None => Ok(None),
        }
    }

    fn key(&self, cx: &Context, message: &Value) -> Result<String, FlowError> {
        let key = self
            .text(self.key.as_ref(), cx, message)?
            .unwrap_or_default();
        check_key(&key, self.backend_kind()).map_err(|why| bad_input(STEP, why))?;
        Ok(key)
    }

    fn job(&self, cx: &Context, message: &Value) -> Result<Job, FlowError> {
        Ok(match self.operation {
            Operation::Put => {
                let content = match &self.content {
                    Some(t) => cx.eval_value(t, message)?,
                    None => Value::Null,
                };
                let (bytes, default_type) = content_bytes(content, self.encoding)?;
                let content_type = match self.text(self.content_type.as_ref(), cx, message)? {
                    Some(t) if !t.trim().is_empty() => t.trim().to_owned(),
                    _ => default_type.to_owned(),
                };
                Job::Put {
                    key: self.key(cx, message)?,
                    bytes,
                    content_type,
                }
            }
            Operation::Get => Job::Get {
                key: self.key(cx, message)?,
                max_size: self.max_size,
            },
            Operation::Head => Job::Head {
                key: self.key(cx, message)?,
            },
            Operation::Delete => Job::Delete {
                key: self.key(cx, message)?,
            },
            Operation::List => {
                let prefix = self
                    .text(self.prefix.as_ref(), cx, message)?
                    .unwrap_or_default();
                if prefix.contains('\0') {
                    return Err(bad_input(STEP, "`prefix` contains a NUL character"));
                }
                Job::List {
                    prefix,
                    delimiter: self.delimiter.clone(),
                    max_keys: self.max_keys,
                    token: self
                        .text(self.continuation_token.as_ref(), cx, message)?
                        .filter(|t| !t.is_empty() && t != "null"),
                }
            }
            Operation::CreateBucket => Job::CreateBucket,
        })
    }

    fn output(&self, outcome: Outcome) -> Result<Value, FlowError> {
        Ok(match outcome {
            Outcome::Stored(info) => json!({
                "key": info.key,
                "size": info.size,
                "etag": info.etag,
                "contentType": info.content_type,
            }),
            Outcome::Fetched(info, bytes) => {
                let (body, given_as) = body_value(
                    bytes,
                    info.content_type.as_deref(),
                    self.encoding,
                    &info.key,
                )?;
                let mut out = description(&info);
                out.insert("encoding".into(), json!(given_as));
                out.insert("body".into(), body);
                Value::Object(out)
            }
            Outcome::Found(info) => {
                let mut out = description(&info);
                out.insert("exists".into(), Value::Bool(true));
                Value::Object(out)
            }
            Outcome::Missing(key) => json!({"key": key, "exists": false}),
            Outcome::Listed(listing) => json!({
                "objects": listing.objects.iter().map(|o| json!({
                    "key": o.key,
                    "size": o.size,
                    "lastModified": o.last_modified,
                    "etag": o.etag,
                })).collect::<Vec<_>>(),
                "prefixes": listing.prefixes,
                "nextToken": listing.next_token,
            }),
            Outcome::Deleted(key) => json!({"deleted": key}),
            Outcome::BucketReady(bucket) => json!({"bucket": bucket}),
        })
    }
}

impl Step for ObjectStorageStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let bucket = cx.render(&self.bucket, &message)?.into_owned();
            check_bucket(&bucket).map_err(|why| bad_input(STEP, why))?;
            let job = self.job(cx, &message)?;
            let outcome = match &self.backend {
                Backend::S3(s3) => {
                    let target = s3.target(cx, &message)?;
                    s3.run(&target, &bucket, job).await?
                }
                Backend::Local => {
                    let metadata = cx.metadata();
                    let realm = metadata
                        .pointer("/pipeline/realm")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let environment = metadata
                        .get("environment")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    tokio::task::spawn_blocking(move || {
                        local::run(&realm, &environment, &bucket, job)
                    })
                    .await
                    .map_err(|e| storage_error(500, format!("the disk work failed: {e}")))??
                }
            };
            Ok(Arc::new(self.output(outcome)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my-bucket.v2", "a1b", &"a".repeat(63)] {
            assert!(check_bucket(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "Abc",
            "a_b",
            "-abc",
            "abc-",
            "a..b",
            ".meta",
            "",
            &"a".repeat(64),
            "a/b",
        ] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_cannot_escape() {
        for good in ["a", "a/b/c.json", "día/ünï.txt", "a..b", ".hidden", "x/.y"] {
            assert!(check_key(good, BackendKind::Local).is_ok(), "{good}");
            assert!(check_key(good, BackendKind::S3).is_ok(), "{good}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/./b", ".", "a\0b"] {
            let why = check_key(bad, BackendKind::Local).unwrap_err();
            assert!(why.starts_with("`key`"), "{why}");
            assert!(check_key(bad, BackendKind::S3).is_err(), "{bad}");
        }
        for local_only in ["a//b", "a/", "a\\b"] {
            assert!(
                check_key(local_only, BackendKind::Local).is_err(),
                "{local_only}"
            );
            assert!(
                check_key(local_only, BackendKind::S3).is_ok(),
                "{local_only}"
            );
        }
        assert!(check_key(&"k".repeat(1025), BackendKind::S3).is_err());
    }

    #[test]
    fn content_and_bodies() {
        let (bytes, ty) = content_bytes(json!("héllo"), Encoding::Auto).unwrap();
        assert_eq!(
            (bytes, ty),
            ("héllo".as_bytes().to_vec(), "text/plain; charset=utf-8")
        );
        let (bytes, ty) = content_bytes(json!({"a": 1}), Encoding::Auto).unwrap();
        assert_eq!((bytes, ty), (b"{\"a\":1}".to_vec(), "application/json"));
        let (bytes, _) = content_bytes(json!("hi"), Encoding::Json).unwrap();
        assert_eq!(bytes, b"\"hi\"");
        let (bytes, _) = content_bytes(json!("AAEC/w=="), Encoding::Base64).unwrap();
        assert_eq!(bytes, vec![0, 1, 2, 255]);
        assert!(content_bytes(json!("!!"), Encoding::Base64).is_err());

        let json_type = Some("application/json; charset=utf-8");
        let auto = |b: &[u8], t| body_value(b.to_vec(), t, Encoding::Auto, "k").unwrap();
        assert_eq!(auto(b"{\"a\":1}", json_type), (json!({"a": 1}), "json"));
        assert_eq!(
            auto(b"{\"a\":1}", Some("text/plain")),
            (json!("{\"a\":1}"), "text")
        );
        assert_eq!(auto(b"not json", json_type), (json!("not json"), "text"));
        assert_eq!(auto(&[0, 255], None), (json!("AP8="), "base64"));
        assert!(is_json_type(Some("application/vnd.api+json")));
        let e = body_value(vec![0, 255], None, Encoding::Text, "k").unwrap_err();
        assert_eq!(e.status, 422);
    }
}
