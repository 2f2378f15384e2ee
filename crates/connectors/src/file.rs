//! `file`: read, write, list, delete and move files under the operator's
//! root (`SLUICE_FILE_ROOT`, default `./sluice-files`), in a directory per
//! realm and environment: `ROOT/<realm>/<environment>/`. Pipeline authors
//! give paths relative to that directory and cannot leave it: absolute
//! paths, `..` that would climb out, NUL and links leading outside are
//! refused. The disk work runs on tokio's blocking pool.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

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

use crate::input::{as_text, bad_input};

/// The environment variable naming the root directory.
const ROOT_VARIABLE: &str = "SLUICE_FILE_ROOT";

/// The root when the variable is not set (relative to the working directory).
const DEFAULT_ROOT: &str = "sluice-files";

/// The default `maxSize` of a read.
const DEFAULT_MAX_SIZE: u64 = 16_000_000;

#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Operation {
    /// The content of the file at `path`.
    Read,
    /// `content` into the file at `path`: `{path, size}`.
    Write,
    /// The entries of the directory at `path` (default "."):
    /// `[{path, size, modified, dir}]`.
    List,
    /// The file (or, with `recursive`, the directory) at `path`: `{deleted}`.
    Delete,
    /// Whether something is at `path`: `{exists}`.
    Exists,
    /// The file or directory at `path` to `to`: `{from, to}`.
    Move,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::List => "list",
            Operation::Delete => "delete",
            Operation::Exists => "exists",
            Operation::Move => "move",
        }
    }
}

/// How content is read or written.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    /// UTF-8 text (default). Writing: a string as it is, other JSON as JSON text.
    #[default]
    Text,
    /// Bytes as base64 text.
    Base64,
    /// JSON: a read parses the file; a write puts the value as JSON text
    /// (a string too, in quotes).
    Json,
}

/// Fields of the `file` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileConfig {
    /// read, write, list, delete, exists or move.
    operation: Operation,
    /// The file or directory, relative to the directory of the realm and
    /// environment (`reports/{{ message.day }}.csv`); may hold expressions.
    /// Required except for `list` (default ".").
    #[serde(default)]
    path: Option<String>,
    /// move: where to, relative like `path`; may hold expressions.
    #[serde(default)]
    to: Option<String>,
    /// write: what to write (may hold expressions). A string is written as
    /// it is, other JSON as JSON text; with `encoding: base64`, the bytes
    /// the base64 string holds.
    #[serde(default)]
    content: Option<Value>,
    /// read and write: text (default), base64 or json.
    #[serde(default)]
    encoding: Option<Encoding>,
    /// write: add to the end of the file instead of replacing it (default false).
    #[serde(default)]
    append: Option<bool>,
    /// write and move: create missing parent directories (default true).
    #[serde(default)]
    create_dirs: Option<bool>,
    /// list: only entries whose name matches this glob (`*` any text, `?`
    /// one character), e.g. `*.csv`; may hold expressions.
    #[serde(default)]
    pattern: Option<String>,
    /// list: go into subdirectories; delete: delete a directory with
    /// everything in it (default false).
    #[serde(default)]
    recursive: Option<bool>,
    /// move: replace what is at `to` (default false: a 409 when something is there).
    #[serde(default)]
    overwrite: Option<bool>,
    /// read: refuse larger files with a 413 (default 16MB).
    #[serde(default)]
    max_size: Option<ByteSize>,
}

pub(crate) const FILE: StepFactory = StepFactory {
    kind: StepKind {
        name: "file",
        summary: "Read, write, list, delete or move files in the directory of the realm and environment under the operator's root.",
        schema: schema_of::<FileConfig>,
    },
    compile,
};

struct FileStep {
    operation: Operation,
    path: Option<Template>,
    to: Option<Template>,
    content: Option<ValueTemplate>,
    pattern: Option<Template>,
    encoding: Encoding,
    append: bool,
    create_dirs: bool,
    recursive: bool,
    overwrite: bool,
    max_size: u64,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: FileConfig = cx.config()?;
    let base = cx.path().clone();
    let op = config.operation;
    let mut ok = true;
    // Fields that belong to other operations.
    let misplaced: [(&str, bool, &[Operation]); 9] = [
        ("to", config.to.is_some(), &[Operation::Move]),
        ("content", config.content.is_some(), &[Operation::Write]),
        (
            "encoding",
            config.encoding.is_some(),
            &[Operation::Read, Operation::Write],
        ),
        ("append", config.append.is_some(), &[Operation::Write]),
        (
            "createDirs",
            config.create_dirs.is_some(),
            &[Operation::Write, Operation::Move],
        ),
        ("pattern", config.pattern.is_some(), &[Operation::List]),
        (
            "recursive",
            config.recursive.is_some(),
            &[Operation::List, Operation::Delete],
        ),
        ("overwrite", config.overwrite.is_some(), &[Operation::Move]),
        ("maxSize", config.max_size.is_some(), &[Operation::Read]),
    ];
    for (field, given, ops) in misplaced {
        if given && !ops.contains(&op) {
            let names: Vec<&str> = ops.iter().map(|o| o.name()).collect();
            cx.problem(
                base.key(field),
                format!(
                    "`{field}` is for operation {}, not {}",
                    names.join(" and "),
                    op.name()
                ),
            );
            ok = false;
        }
    }
    if config.path.is_none() && op != Operation::List {
        cx.problem(
            base.key("path"),
            format!("operation {} needs `path`", op.name()),
        );
        ok = false;
    }
    if config.to.is_none() && op == Operation::Move {
        cx.problem(base.key("to"), "operation move needs `to`: where to move");
        ok = false;
    }
    if op == Operation::Write
        && !crate::input::check_content(
            cx,
            "write",
            "what to write",
            config.content.as_ref(),
            config.encoding == Some(Encoding::Base64),
        )
    {
        ok = false;
    }
    let path = compile_path(cx, "path", config.path.as_deref(), op, &mut ok);
    let to = compile_path(cx, "to", config.to.as_deref(), op, &mut ok);
    let pattern = match &config.pattern {
        Some(text) => {
            if text.contains('/') || text.is_empty() {
                cx.problem(
                    base.key("pattern"),
                    "the pattern is matched on names, so it is not empty and has no '/'",
                );
                ok = false;
            }
            cx.template("pattern", text)
        }
        None => None,
    };
    let content = match &config.content {
        Some(v) => cx.value_template("content", v),
        None => None,
    };
    if !ok {
        return None;
    }
    Some(Box::new(FileStep {
        operation: op,
        path: match config.path {
            Some(_) => Some(path?),
            None => None,
        },
        to: match config.to {
            Some(_) => Some(to?),
            None => None,
        },
        content: match config.content {
            Some(_) => Some(content?),
            None => None,
        },
        pattern: match config.pattern {
            Some(_) => Some(pattern?),
            None => None,
        },
        encoding: config.encoding.unwrap_or_default(),
        append: config.append.unwrap_or(false),
        create_dirs: config.create_dirs.unwrap_or(true),
        recursive: config.recursive.unwrap_or(false),
        overwrite: config.overwrite.unwrap_or(false),
        max_size: config.max_size.map_or(DEFAULT_MAX_SIZE, |s| s.0),
    }))
}

/// Compiles the path in `field`, checking it already when it holds no expression.
fn compile_path(
    cx: &mut StepCx<'_, '_>,
    field: &str,
    text: Option<&str>,
    op: Operation,
    ok: &mut bool,
) -> Option<Template> {
    let text = text?;
    let template = cx.template(field, text)?;
    if template.is_literal() {
        let at = cx.path().key(field);
        match parts(text) {
            Err(why) => {
                cx.problem(at, why);
                *ok = false;
            }
            Ok(p) if p.is_empty() && !matches!(op, Operation::List | Operation::Exists) => {
                cx.problem(
                    at,
                    format!(
                        "'{text}' is the directory of the realm and environment itself: operation {} needs something in it",
                        op.name()
                    ),
                );
                *ok = false;
            }
            Ok(_) => {}
        }
    }
    Some(template)
}

/// The root directory, read once per process.
fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| crate::input::root_dir(ROOT_VARIABLE, DEFAULT_ROOT))
}

/// The components of a relative path, with `.` dropped and `..` applied;
/// an error (for people) when the path is absolute, has NUL or climbs out.
fn parts(text: &str) -> Result<Vec<String>, String> {
    if text.contains('\0') {
        return Err(format!(
            "path '{}' contains a NUL character",
            text.escape_debug()
        ));
    }
    if text.trim().is_empty() {
        return Err("the path is empty".into());
    }
    if text.starts_with('/') || text.starts_with('\\') || Path::new(text).has_root() {
        return Err(format!(
            "path '{text}' is absolute: give a path relative to the directory of the realm and environment"
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for part in text.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(format!(
                        "path '{text}' leaves the directory of the realm and environment"
                    ));
                }
            }
            name => {
                let mut components = Path::new(name).components();
                if !matches!(
                    (components.next(), components.next()),
                    (Some(Component::Normal(_)), None)
                ) {
                    return Err(format!(
                        "path '{text}' is not a plain relative path ('{name}')"
                    ));
                }
                out.push(name.to_owned());
            }
        }
    }
    Ok(out)
}

/// A path of the step: what it was given (for messages that refuse it),
/// its components, and how it is shown (`a/b.txt`, or `.`).
#[derive(Clone)]
struct RelPath {
    given: String,
    parts: Vec<String>,
}

impl RelPath {
    fn new(given: String) -> Result<Self, FlowError> {
        let parts = parts(&given).map_err(|why| bad_input("file", why))?;
        Ok(RelPath { given, parts })
    }

    fn shown(&self) -> String {
        if self.parts.is_empty() {
            ".".into()
        } else {
            self.parts.join("/")
        }
    }

    /// Refuses the directory of the realm and environment itself.
    fn needs_name(&self, op: Operation) -> Result<(), FlowError> {
        if self.parts.is_empty() {
            return Err(bad_input(
                "file",
                format!(
                    "'{}' is the directory of the realm and environment itself: operation {} needs something in it",
                    self.given,
                    op.name()
                ),
            ));
        }
        Ok(())
    }
}

fn outside(rel: &RelPath) -> FlowError {
    bad_input(
        "file",
        format!(
            "path '{}' goes through a link that leads outside the directory of the realm and environment (or nowhere)",
            rel.given
        ),
    )
}

fn not_found(rel: &RelPath) -> FlowError {
    FlowError::new("file", 404, format!("'{}' does not exist", rel.shown()))
}

/// An I/O error about `rel` (OS messages name no path, so the root stays hidden).
fn io_error(e: &std::io::Error, doing: &str, rel: &RelPath) -> FlowError {
    let shown = rel.shown();
    match e.kind() {
        ErrorKind::NotFound => not_found(rel),
        ErrorKind::PermissionDenied => FlowError::new(
            "file",
            403,
            format!("cannot {doing} '{shown}': permission denied"),
        ),
        ErrorKind::IsADirectory => bad_input("file", format!("'{shown}' is a directory")),
        ErrorKind::NotADirectory => bad_input(
            "file",
            format!("cannot {doing} '{shown}': a part of the path is a file, not a directory"),
        ),
        ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty => {
            FlowError::new("file", 409, format!("cannot {doing} '{shown}': {e}"))
        }
        ErrorKind::InvalidInput => bad_input("file", format!("cannot {doing} '{shown}': {e}")),
        _ => FlowError::new("file", 500, format!("cannot {doing} '{shown}': {e}")),
    }
}

/// The directory of one realm and environment.
struct Area {
    dir: PathBuf,
}

impl Area {
    fn new(realm: &str, environment: &str) -> Result<Self, FlowError> {
        for (what, name) in [("realm", realm), ("environment", environment)] {
            let usable = !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains(['/', '\\', '\0']);
            if !usable {
                return Err(FlowError::new(
                    "file",
                    500,
                    format!(
                        "the {what} name '{}' cannot name a directory",
                        name.escape_debug()
                    ),
                ));
            }
        }
        Ok(Area {
            dir: root().join(realm).join(environment),
        })
    }

    /// The directory, links resolved; `None` when it does not exist yet
    /// (created first when `create`).
    fn base(&self, create: bool) -> Result<Option<PathBuf>, FlowError> {
        let failed = |e: std::io::Error| {
            FlowError::new(
                "file",
                500,
                format!("the directory of the realm and environment is not usable: {e}"),
            )
        };
        if create {
            fs::create_dir_all(&self.dir).map_err(failed)?;
        }
        match fs::canonicalize(&self.dir) {
            Ok(dir) => Ok(Some(dir)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }
}

/// Where `rel` is on disk under `base` (canonical): existing components are
/// followed (a link must lead inside `base`), the missing rest appended.
/// A last component that is a link stays the link (its target checked).
fn resolve(base: &Path, rel: &RelPath) -> Result<PathBuf, FlowError> {
    let mut current = base.to_path_buf();
    for (i, part) in rel.parts.iter().enumerate() {
        let next = current.join(part);
        let last = i + 1 == rel.parts.len();
        match fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::canonicalize(&next).map_err(|_| outside(rel))?;
                if !target.starts_with(base) {
                    return Err(outside(rel));
                }
                current = if last { next } else { target };
            }
            Ok(_) => current = next,
            Err(_) => {
                let mut path = next;
                path.extend(&rel.parts[i + 1..]);
                return Ok(path);
            }
        }
    }
    Ok(current)
}

/// What one execution asks of the disk.
enum Job {
    Read {
        path: RelPath,
        encoding: Encoding,
        max_size: u64,
    },
    Write {
        path: RelPath,
        bytes: Vec<u8>,
        append: bool,
        create_dirs: bool,
    },
    List {
        path: RelPath,
        pattern: Option<String>,
        recursive: bool,
    },
    Delete {
        path: RelPath,
        recursive: bool,
    },
    Exists {
        path: RelPath,
    },
    Move {
        from: RelPath,
        to: RelPath,
        create_dirs: bool,
        overwrite: bool,
    },
}

impl Job {
    fn run(self, area: &Area) -> Result<Value, FlowError> {
        match self {
            Job::Read {
                path,
                encoding,
                max_size,
            } => read(area, &path, encoding, max_size),
            Job::Write {
                path,
                bytes,
                append,
                create_dirs,
            } => write(area, &path, &bytes, append, create_dirs),
            Job::List {
                path,
                pattern,
                recursive,
            } => list(area, &path, pattern.as_deref(), recursive),
            Job::Delete { path, recursive } => delete(area, &path, recursive),
            Job::Exists { path } => {
                let Some(base) = area.base(false)? else {
                    return Ok(json!({"exists": false}));
                };
                let at = resolve(&base, &path)?;
                Ok(json!({"exists": fs::metadata(at).is_ok()}))
            }
            Job::Move {
                from,
                to,
                create_dirs,
                overwrite,
            } => move_to(area, &from, &to, create_dirs, overwrite),
        }
    }
}

fn read(area: &Area, rel: &RelPath, encoding: Encoding, max_size: u64) -> Result<Value, FlowError> {
    let base = area.base(false)?.ok_or_else(|| not_found(rel))?;
    let at = resolve(&base, rel)?;
    let shown = rel.shown();
    let meta = fs::metadata(&at).map_err(|e| io_error(&e, "read", rel))?;
    if meta.is_dir() {
        return Err(bad_input(
            "file",
            format!("'{shown}' is a directory: list it instead"),
        ));
    }
    let bytes = crate::input::read_at_most(&at, meta.len(), max_size)
        .map_err(|e| io_error(&e, "read", rel))?
        .map_err(|size| {
            FlowError::new(
                "file",
                413,
                format!(
                    "'{shown}' is {size} bytes, more than maxSize ({})",
                    ByteSize(max_size)
                ),
            )
        })?;
    match encoding {
        Encoding::Base64 => Ok(Value::String(STANDARD.encode(&bytes))),
        Encoding::Text => String::from_utf8(bytes).map(Value::String).map_err(|_| {
            FlowError::new(
                "file",
                422,
                format!("'{shown}' is not UTF-8 text: read it with `encoding: base64`"),
            )
        }),
        Encoding::Json => serde_json::from_slice(&bytes)
            .map_err(|e| FlowError::new("file", 422, format!("'{shown}' is not JSON: {e}"))),
    }
}

/// Creates the parent of `at` when asked; a 404 when it is missing otherwise.
fn parent_dir(at: &Path, create: bool, rel: &RelPath) -> Result<(), FlowError> {
    let Some(parent) = at.parent() else {
        return Ok(());
    };
    if create {
        fs::create_dir_all(parent).map_err(|e| io_error(&e, "create the directory of", rel))
    } else if parent.is_dir() {
        Ok(())
    } else {
        Err(FlowError::new(
            "file",
            404,
            format!(
                "the directory of '{}' does not exist (createDirs is false)",
                rel.shown()
            ),
        ))
    }
}

fn write(
    area: &Area,
    rel: &RelPath,
    bytes: &[u8],
    append: bool,
    create_dirs: bool,
) -> Result<Value, FlowError> {
    rel.needs_name(Operation::Write)?;
    let base = area.base(true)?.ok_or_else(|| not_found(rel))?;
    let at = resolve(&base, rel)?;
    if fs::metadata(&at).is_ok_and(|m| m.is_dir()) {
        return Err(bad_input(
            "file",
            format!("'{}' is a directory", rel.shown()),
        ));
    }
    parent_dir(&at, create_dirs, rel)?;
    let mut options = fs::OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    let mut file = options.open(&at).map_err(|e| io_error(&e, "write", rel))?;
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .map_err(|e| io_error(&e, "write", rel))?;
    let size = file
        .metadata()
        .map_err(|e| io_error(&e, "write", rel))?
        .len();
    Ok(json!({"path": rel.shown(), "size": size}))
}

fn list(
    area: &Area,
    rel: &RelPath,
    pattern: Option<&str>,
    recursive: bool,
) -> Result<Value, FlowError> {
    let Some(base) = area.base(false)? else {
        // Nothing written yet: the directory itself is empty.
        return if rel.parts.is_empty() {
            Ok(Value::Array(Vec::new()))
        } else {
            Err(not_found(rel))
        };
    };
    let at = resolve(&base, rel)?;
    let meta = fs::metadata(&at).map_err(|e| io_error(&e, "list", rel))?;
    if !meta.is_dir() {
        return Err(bad_input(
            "file",
            format!("'{}' is not a directory", rel.shown()),
        ));
    }
    let mut found = Vec::new();
    let prefix = if rel.parts.is_empty() {
        String::new()
    } else {
        format!("{}/", rel.shown())
    };
    walk(&base, &at, &prefix, pattern, recursive, rel, &mut found)?;
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Array(found.into_iter().map(|(_, v)| v).collect()))
}

/// Adds the entries of `dir` (shown as `prefix…`) to `found`; links are
/// listed when they lead inside `base` (and not followed into), else left out.
fn walk(
    base: &Path,
    dir: &Path,
    prefix: &str,
    pattern: Option<&str>,
    recursive: bool,
    rel: &RelPath,
    found: &mut Vec<(String, Value)>,
) -> Result<(), FlowError> {
    let entries = fs::read_dir(dir).map_err(|e| io_error(&e, "list", rel))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(&e, "list", rel))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let meta = if kind.is_symlink() {
            match fs::canonicalize(&path) {
                Ok(target) if target.starts_with(base) => fs::metadata(&target),
                _ => continue,
            }
        } else {
            entry.metadata()
        };
        let Ok(meta) = meta else {
            continue;
        };
        let shown = format!("{prefix}{name}");
        if pattern.is_none_or(|p| glob(p, &name)) {
            found.push((
                shown.clone(),
                json!({
                    "path": shown,
                    "size": if meta.is_dir() { 0 } else { meta.len() },
                    "modified": meta.modified().ok().map(rfc3339),
                    "dir": meta.is_dir(),
                }),
            ));
        }
        if recursive && kind.is_dir() {
            walk(
                base,
                &path,
                &format!("{shown}/"),
                pattern,
                recursive,
                rel,
                found,
            )?;
        }
    }
    Ok(())
}

fn delete(area: &Area, rel: &RelPath, recursive: bool) -> Result<Value, FlowError> {
    rel.needs_name(Operation::Delete)?;
    let Some(base) = area.base(false)? else {
        return Ok(json!({"deleted": false}));
    };
    let at = resolve(&base, rel)?;
    let meta = match fs::symlink_metadata(&at) {
        Ok(meta) => meta,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(json!({"deleted": false}));
        }
        Err(e) => return Err(io_error(&e, "delete", rel)),
    };
    if meta.is_dir() {
        if !recursive {
            return Err(bad_input(
                "file",
                format!(
                    "'{}' is a directory: set `recursive: true` to delete it with everything in it",
                    rel.shown()
                ),
            ));
        }
        fs::remove_dir_all(&at).map_err(|e| io_error(&e, "delete", rel))?;
    } else {
        fs::remove_file(&at).map_err(|e| io_error(&e, "delete", rel))?;
    }
    Ok(json!({"deleted": true}))
}

fn move_to(
    area: &Area,
    from: &RelPath,
    to: &RelPath,
    create_dirs: bool,
    overwrite: bool,
) -> Result<Value, FlowError> {
    from.needs_name(Operation::Move)?;
    to.needs_name(Operation::Move)?;
    let base = area.base(false)?.ok_or_else(|| not_found(from))?;
    let source = resolve(&base, from)?;
    let target = resolve(&base, to)?;
    fs::symlink_metadata(&source).map_err(|e| io_error(&e, "move", from))?;
    if fs::symlink_metadata(&target).is_ok() && source != target {
        if !overwrite {
            return Err(FlowError::new(
                "file",
                409,
                format!(
                    "'{}' exists already: set `overwrite: true` to replace it",
                    to.shown()
                ),
            ));
        }
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(FlowError::new(
                "file",
                409,
                format!(
                    "'{}' is a directory: delete it first to replace it",
                    to.shown()
                ),
            ));
        }
    }
    parent_dir(&target, create_dirs, to)?;
    fs::rename(&source, &target).map_err(|e| io_error(&e, "move", from))?;
    Ok(json!({"from": from.shown(), "to": to.shown()}))
}

/// Whether `name` matches `pattern`: `*` any text (also none), `?` one character.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // The last `*` seen and where in `name` it started matching.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A time as RFC 3339 in UTC, to the second (`2026-03-01T10:30:00Z`).
fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl FileStep {
    fn rel(
        &self,
        template: Option<&Template>,
        cx: &Context,
        message: &Value,
    ) -> Result<RelPath, FlowError> {
        let text = match template {
            Some(t) => cx.render(t, message)?.into_owned(),
            None => ".".into(),
        };
        RelPath::new(text)
    }

    fn job(&self, cx: &Context, message: &Value) -> Result<Job, FlowError> {
        let path = self.rel(self.path.as_ref(), cx, message)?;
        Ok(match self.operation {
            Operation::Read => Job::Read {
                path,
                encoding: self.encoding,
                max_size: self.max_size,
            },
            Operation::Write => {
                let content = match &self.content {
                    Some(t) => cx.eval_value(t, message)?,
                    None => Value::Null,
                };
                let bytes = match self.encoding {
                    Encoding::Text => as_text(content).into_bytes(),
                    Encoding::Json => content.to_string().into_bytes(),
                    Encoding::Base64 => {
                        let Value::String(text) = content else {
                            return Err(bad_input(
                                "file",
                                "with `encoding: base64` the content must be a string of base64",
                            ));
                        };
                        let clean: String =
                            text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                        STANDARD.decode(clean).map_err(|e| {
                            bad_input("file", format!("the content is not base64: {e}"))
                        })?
                    }
                };
                Job::Write {
                    path,
                    bytes,
                    append: self.append,
                    create_dirs: self.create_dirs,
                }
            }
            Operation::List => Job::List {
                path,
                pattern: match &self.pattern {
                    Some(t) => Some(cx.render(t, message)?.into_owned()),
                    None => None,
                },
                recursive: self.recursive,
            },
            Operation::Delete => Job::Delete {
                path,
                recursive: self.recursive,
            },
            Operation::Exists => Job::Exists { path },
            Operation::Move => Job::Move {
                from: path,
                to: self.rel(self.to.as_ref(), cx, message)?,
                create_dirs: self.create_dirs,
                overwrite: self.overwrite,
            },
        })
    }
}

impl Step for FileStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let metadata = cx.metadata();
            let realm = metadata
                .pointer("/pipeline/realm")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let environment = metadata
                .get("environment")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let area = Area::new(realm, environment)?;
            let job = self.job(cx, &message)?;
            let out = tokio::task::spawn_blocking(move || job.run(&area))
                .await
                .map_err(|e| FlowError::new("file", 500, format!("the file work failed: {e}")))??;
            Ok(Arc::new(out))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn glob_matches_names() {
        assert!(glob("*.csv", "a.csv"));
        assert!(glob("*.csv", ".csv"));
        assert!(!glob("*.csv", "a.csv.bak"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXXbYYbc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("**x", "yx"));
        assert!(glob("día-*.txt", "día-1.txt"));
    }

    #[test]
    fn parts_refuse_escapes() {
        assert_eq!(
            parts("a/./b//c").ok(),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(parts("a/../b").ok(), Some(vec!["b".into()]));
        assert_eq!(parts(".").ok(), Some(vec![]));
        assert!(parts("../x").is_err());
        assert!(parts("a/../../x").is_err());
        assert!(parts("/etc/passwd").is_err());
        assert!(parts("a\0b").is_err());
        assert!(parts("").is_err());
        assert!(parts("a\\..\\..\\x").is_err());
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_772_361_000);
        assert_eq!(rfc3339(t), "2026-03-01T10:30:00Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
