//! `redis`: one command on a Redis server per step — strings, counters,
//! hashes, lists and pub/sub. Values are written as text (strings as they
//! are, anything else as its JSON text) and read back by one rule (see
//! [`Parse`]). Each compiled step keeps one multiplexed connection per
//! server, made on first use and made again after a connection error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, schema_of,
};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::{FieldPath, HumanDuration, StepKind};

use crate::input::{self, Input, as_text, bad_input};

/// The command the step runs.
#[derive(Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Operation {
    /// The value of `key` (null when there is none).
    Get,
    /// Store `value` at `key` (optionally with `ttl`, `ifNotExists`): `{set}`.
    Set,
    /// Delete `key` or `keys`: `{deleted}`.
    Del,
    /// Add `by` (default 1) to the integer at `key`: the new number.
    Incr,
    /// Make `key` expire after `ttl`: `{expired}` (false when there is no key).
    Expire,
    /// Whether `key` exists (a boolean), or how many of `keys` exist.
    Exists,
    /// The value of `field` in the hash at `key`.
    Hget,
    /// Set the `fields` object in the hash at `key`: `{added}`.
    Hset,
    /// The hash at `key` as an object (null when there is none).
    Hgetall,
    /// Delete `field` or the `fields` list from the hash at `key`: `{deleted}`.
    Hdel,
    /// Put `values` at the head of the list at `key`: the new length.
    Lpush,
    /// Put `values` at the tail of the list at `key`: the new length.
    Rpush,
    /// Take the first element (or `count` elements) of the list at `key`.
    Lpop,
    /// Take the last element (or `count` elements) of the list at `key`.
    Rpop,
    /// Elements `start` to `stop` (default 0 and -1: all) of the list at `key`.
    Lrange,
    /// Send `value` to `channel`: `{receivers}`.
    Publish,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Del => "del",
            Operation::Incr => "incr",
            Operation::Expire => "expire",
            Operation::Exists => "exists",
            Operation::Hget => "hget",
            Operation::Hset => "hset",
            Operation::Hgetall => "hgetall",
            Operation::Hdel => "hdel",
            Operation::Lpush => "lpush",
            Operation::Rpush => "rpush",
            Operation::Lpop => "lpop",
            Operation::Rpop => "rpop",
            Operation::Lrange => "lrange",
            Operation::Publish => "publish",
        }
    }

    /// The fields the operation must have: each entry is a set of
    /// alternatives (exactly one of them).
    fn needs(self) -> &'static [&'static [&'static str]] {
        match self {
            Operation::Get
            | Operation::Set
            | Operation::Incr
            | Operation::Hgetall
            | Operation::Lpop
            | Operation::Rpop
            | Operation::Lrange => &[&["key"]],
            Operation::Del | Operation::Exists => &[&["key", "keys"]],
            Operation::Expire => &[&["key"], &["ttl"]],
            Operation::Hget => &[&["key"], &["field"]],
            Operation::Hset => &[&["key"], &["fields"]],
            Operation::Hdel => &[&["key"], &["field", "fields"]],
            Operation::Lpush | Operation::Rpush => &[&["key"], &["values"]],
            Operation::Publish => &[&["channel"]],
        }
    }

    /// The optional fields the operation takes.
    fn takes(self) -> &'static [&'static str] {
        match self {
            Operation::Get | Operation::Hget | Operation::Hgetall => &["parse"],
            Operation::Set => &["value", "ttl", "ifNotExists"],
            Operation::Incr => &["by"],
            Operation::Lpop | Operation::Rpop => &["count", "parse"],
            Operation::Lrange => &["start", "stop", "parse"],
            Operation::Publish => &["value"],
            _ => &[],
        }
    }
}

/// How values read from Redis become JSON.
#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Parse {
    /// Text holding a JSON object or array comes back parsed; anything
    /// else as a string (the default; `"42"` stays `"42"`).
    #[default]
    Auto,
    /// Text holding any JSON value comes back parsed (`"42"` → `42`,
    /// `"true"` → `true`); other text as a string.
    Json,
    /// Always a string.
    Text,
}

/// Fields of the `redis` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RedisConfig {
    /// get, set, del, incr, expire, exists, hget, hset, hgetall, hdel,
    /// lpush, rpush, lpop, rpop, lrange or publish.
    operation: Operation,
    /// The server: `redis://[user:password@]host:6379/0`; may hold
    /// expressions (`{{ global.cache-url }}`).
    #[serde(default)]
    url: Option<String>,
    /// An account whose `url` field is the server URL, and optional
    /// `username`/`password` fields used to log in.
    #[serde(default)]
    account: Option<String>,
    /// The key; may hold expressions (`order:{{ message.id }}`).
    #[serde(default)]
    key: Option<String>,
    /// del, exists: several keys — a list (items may hold expressions) or
    /// an expression giving an array.
    #[serde(default)]
    keys: Option<Value>,
    /// set, publish: what to store or send (default: the message). Strings
    /// are stored as they are, anything else as its JSON text.
    #[serde(default)]
    value: Option<Value>,
    /// lpush, rpush: the elements — a list or an expression giving an array.
    #[serde(default)]
    values: Option<Value>,
    /// hget, hdel: the hash field; may hold expressions.
    #[serde(default)]
    field: Option<String>,
    /// hset: an object of fields and values; hdel: a list of field names.
    /// Either may be an expression giving one.
    #[serde(default)]
    fields: Option<Value>,
    /// set: expire after this long; expire: the time to live (`30s`, `500ms`, `1h`).
    #[serde(default)]
    ttl: Option<HumanDuration>,
    /// set: only when the key does not exist yet (SET NX).
    #[serde(default)]
    if_not_exists: Option<bool>,
    /// incr: the integer to add (default 1; negative subtracts); may be an expression.
    #[serde(default)]
    by: Option<Value>,
    /// lpop, rpop: take this many elements and give an array; may be an expression.
    #[serde(default)]
    count: Option<Value>,
    /// lrange: the first index (default 0; negative counts from the end).
    #[serde(default)]
    start: Option<Value>,
    /// lrange: the last index, included (default -1: the last element).
    #[serde(default)]
    stop: Option<Value>,
    /// publish: the channel; may hold expressions.
    #[serde(default)]
    channel: Option<String>,
    /// How values read back become JSON: auto (default: JSON objects and
    /// arrays parsed, the rest strings), json (any JSON parsed) or text.
    #[serde(default)]
    parse: Option<Parse>,
    /// How long to wait for a connection (default 10s).
    #[serde(default)]
    connect_timeout: Option<HumanDuration>,
}

pub(crate) const REDIS: StepFactory = StepFactory {
    kind: StepKind {
        name: "redis",
        summary: "Run a Redis command: get/set, counters, expiry, hashes, lists, publish.",
        schema: schema_of::<RedisConfig>,
    },
    compile,
};

/// An integer field: a number, or an expression giving one.
enum Int {
    Fixed(i64),
    Expr(ValueTemplate, &'static str),
}

struct RedisStep {
    operation: Operation,
    url: Option<Template>,
    account: Option<String>,
    key: Option<Template>,
    keys: Option<ValueTemplate>,
    value: Input,
    values: Option<ValueTemplate>,
    field: Option<Template>,
    fields: Option<ValueTemplate>,
    ttl_ms: Option<u64>,
    if_not_exists: bool,
    by: Int,
    count: Option<Int>,
    start: Int,
    stop: Int,
    channel: Option<Template>,
    parse: Parse,
    connect_timeout: Duration,
    connections: tokio::sync::Mutex<Connections>,
}

/// The step's connections by server, each with the number it was made
/// under (so a failed one is replaced once, not by every run that saw it fail).
#[derive(Default)]
struct Connections {
    made: u64,
    by_server: HashMap<String, (u64, MultiplexedConnection)>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: RedisConfig = cx.config()?;
    let base = cx.path().clone();
    input::url_or_account(
        cx,
        "the server",
        config.url.as_ref(),
        config.account.as_ref(),
    )?;
    if !check_fields(cx, &config, &base) {
        return None;
    }
    let op = config.operation;
    let url = match &config.url {
        Some(u) => Some(cx.template("url", u)?),
        None => None,
    };
    let key = match &config.key {
        Some(k) => Some(cx.template("key", k)?),
        None => None,
    };
    let keys = match &config.keys {
        Some(v) => Some(list_template(cx, &base, "keys", v)?),
        None => None,
    };
    let values = match &config.values {
        Some(v) => Some(list_template(cx, &base, "values", v)?),
        None => None,
    };
    let field = match &config.field {
        Some(f) => Some(cx.template("field", f)?),
        None => None,
    };
    let fields = match &config.fields {
        Some(v) if op == Operation::Hset => {
            if !(v.is_object() || v.is_string()) {
                cx.problem(
                    base.key("fields"),
                    "hset takes `fields` as an object of fields and values (or an expression giving one)",
                );
                return None;
            }
            Some(cx.value_template("fields", v)?)
        }
        Some(v) => Some(list_template(cx, &base, "fields", v)?),
        None => None,
    };
    let channel = match &config.channel {
        Some(c) => Some(cx.template("channel", c)?),
        None => None,
    };
    let value = Input::compile(cx, config.value.as_ref())?;
    let ttl_ms = match config.ttl {
        Some(HumanDuration(d)) => {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            if ms == 0 {
                cx.problem(base.key("ttl"), "the ttl must be at least 1ms");
                return None;
            }
            Some(ms)
        }
        None => None,
    };
    let by = int_field(cx, &base, "by", config.by.as_ref(), 1)?;
    let count = match &config.count {
        Some(v) => {
            let count = int_field(cx, &base, "count", Some(v), 1)?;
            if let Int::Fixed(n) = count
                && n < 1
            {
                cx.problem(base.key("count"), "count must be at least 1");
                return None;
            }
            Some(count)
        }
        None => None,
    };
    let start = int_field(cx, &base, "start", config.start.as_ref(), 0)?;
    let stop = int_field(cx, &base, "stop", config.stop.as_ref(), -1)?;
    Some(Box::new(RedisStep {
        operation: op,
        url,
        account: config.account,
        key,
        keys,
        value,
        values,
        field,
        fields,
        ttl_ms,
        if_not_exists: config.if_not_exists.unwrap_or(false),
        by,
        count,
        start,
        stop,
        channel,
        parse: config.parse.unwrap_or_default(),
        connect_timeout: config
            .connect_timeout
            .map_or(Duration::from_secs(10), |d| d.0),
        connections: tokio::sync::Mutex::new(Connections::default()),
    }))
}

/// Records a problem for every field the operation needs and lacks, and
/// for every field it does not use; false when there was one.
fn check_fields(cx: &mut StepCx<'_, '_>, config: &RedisConfig, base: &FieldPath) -> bool {
    let present: [(&str, bool); 14] = [
        ("key", config.key.is_some()),
        ("keys", config.keys.is_some()),
        ("value", config.value.is_some()),
        ("values", config.values.is_some()),
        ("field", config.field.is_some()),
        ("fields", config.fields.is_some()),
        ("ttl", config.ttl.is_some()),
        ("ifNotExists", config.if_not_exists.is_some()),
        ("by", config.by.is_some()),
        ("count", config.count.is_some()),
        ("start", config.start.is_some()),
        ("stop", config.stop.is_some()),
        ("channel", config.channel.is_some()),
        ("parse", config.parse.is_some()),
    ];
    let has = |name: &str| present.iter().any(|(n, p)| *n == name && *p);
    let op = config.operation;
    let mut ok = true;
    for choice in op.needs() {
        let given: Vec<&str> = choice.iter().copied().filter(|f| has(f)).collect();
        match given.as_slice() {
            [_] => {}
            [] => {
                let wanted = choice
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(" or ");
                cx.problem(
                    base.key(choice[0]),
                    format!("operation `{}` needs {wanted}", op.name()),
                );
                ok = false;
            }
            [_, second, ..] => {
                cx.problem(
                    base.key(second),
                    format!(
                        "give `{}` or `{second}`, not both",
                        given.first().copied().unwrap_or_default()
                    ),
                );
                ok = false;
            }
        }
    }
    for (name, given) in present {
        if !given || op.needs().iter().any(|c| c.contains(&name)) || op.takes().contains(&name) {
            continue;
        }
        cx.problem(
            base.key(name),
            format!("`{name}` does not apply to operation `{}`", op.name()),
        );
        ok = false;
    }
    ok
}

/// A list field: a literal array (items may hold expressions) or one
/// expression giving an array.
fn list_template(
    cx: &mut StepCx<'_, '_>,
    base: &FieldPath,
    name: &str,
    value: &Value,
) -> Option<ValueTemplate> {
    if !(value.is_array() || value.is_string()) {
        cx.problem(
            base.key(name),
            format!("`{name}` must be a list, or an expression giving an array"),
        );
        return None;
    }
    cx.value_template(name, value)
}

fn int_field(
    cx: &mut StepCx<'_, '_>,
    base: &FieldPath,
    name: &'static str,
    value: Option<&Value>,
    default: i64,
) -> Option<Int> {
    match value {
        None => Some(Int::Fixed(default)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Some(Int::Fixed(i)),
            None => {
                cx.problem(base.key(name), format!("`{name}` must be an integer"));
                None
            }
        },
        Some(v @ Value::String(_)) => Some(Int::Expr(cx.value_template(name, v)?, name)),
        Some(_) => {
            cx.problem(
                base.key(name),
                format!("`{name}` must be an integer or an expression giving one"),
            );
            None
        }
    }
}

/// A server to talk to: how to connect, and its name among the step's connections.
struct Server {
    info: ConnectionInfo,
    id: String,
}

/// The command to send, or nothing to send (an empty list of keys,
/// fields or values).
enum Request {
    Send(redis::Cmd),
    Nothing,
}

fn redis_error_status(e: &RedisError) -> FlowError {
    match reply_text(e) {
        Some((code, text)) => FlowError::new("redis", 400, format!("the server answered: {text}"))
            .with_details(json!({"reply": code})),
        None if broken(e) => FlowError::new("redis", 502, format!("Redis cannot be reached: {e}")),
        None => FlowError::new("redis", 500, format!("Redis error: {e}")),
    }
}

/// An error reply of the server: its code and its whole text.
fn reply_text(e: &RedisError) -> Option<(String, String)> {
    let server = matches!(
        e.kind(),
        ErrorKind::ResponseError
            | ErrorKind::ExtensionError
            | ErrorKind::ExecAbortError
            | ErrorKind::BusyLoadingError
            | ErrorKind::NoScriptError
            | ErrorKind::Moved
            | ErrorKind::Ask
            | ErrorKind::TryAgain
            | ErrorKind::ClusterDown
            | ErrorKind::CrossSlot
            | ErrorKind::MasterDown
            | ErrorKind::ReadOnly
            | ErrorKind::NotBusy
            | ErrorKind::NoSub
    );
    if !server {
        return None;
    }
    let code = e.code().unwrap_or("ERR").to_owned();
    let text = match e.detail() {
        Some(detail) => format!("{code} {detail}"),
        None => code.clone(),
    };
    Some((code, text))
}

/// Whether the connection itself failed (it is then made again).
fn broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// Text read from Redis as JSON, by `parse`.
fn decode(bytes: Vec<u8>, parse: Parse) -> Value {
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    let looks_like = |t: &str| {
        let t = t.trim_start();
        t.starts_with('{') || t.starts_with('[')
    };
    let try_parse = match parse {
        Parse::Auto => looks_like(&text),
        Parse::Json => true,
        Parse::Text => false,
    };
    if try_parse && let Ok(value) = serde_json::from_str::<Value>(&text) {
        return value;
    }
    Value::String(text)
}

/// A reply as JSON; bulk strings by `parse`.
fn to_json(reply: redis::Value, parse: Parse) -> Value {
    match reply {
        redis::Value::Nil => Value::Null,
        redis::Value::Int(i) => json!(i),
        redis::Value::BulkString(bytes) => decode(bytes, parse),
        redis::Value::SimpleString(s) => Value::String(s),
        redis::Value::Okay => Value::String("OK".into()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            Value::Array(items.into_iter().map(|item| to_json(item, parse)).collect())
        }
        redis::Value::Map(pairs) => Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (as_text(to_json(k, Parse::Text)), to_json(v, parse)))
                .collect(),
        ),
        redis::Value::Double(f) => {
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        redis::Value::Boolean(b) => Value::Bool(b),
        redis::Value::VerbatimString { text, .. } => Value::String(text),
        redis::Value::Attribute { data, .. } => to_json(*data, parse),
        other => Value::String(format!("{other:?}")),
    }
}

fn integer(reply: &redis::Value) -> i64 {
    match reply {
        redis::Value::Int(i) => *i,
        redis::Value::Boolean(b) => i64::from(*b),
        _ => 0,
    }
}

/// Strings as they are, anything else as its JSON text.
fn encode(value: Value) -> String {
    as_text(value)
}

/// The connection settings of a `redis://` URL.
fn connection_info(url: &str) -> Result<ConnectionInfo, FlowError> {
    if url.starts_with("rediss://") || url.starts_with("valkeys://") {
        return Err(bad_input(
            "redis",
            "TLS (rediss://) is not supported yet: use redis:// on a trusted network",
        ));
    }
    url.into_connection_info()
        .map_err(|e| bad_input("redis", format!("the Redis URL is not usable: {e}")))
}

/// Key names and hash field names: text (a non-string as its JSON text).
fn names(value: Value, what: &str) -> Result<Vec<String>, FlowError> {
    match value {
        Value::Array(items) => Ok(items.into_iter().map(as_text).collect()),
        Value::String(s) => Ok(vec![s]),
        other => Err(bad_input(
            "redis",
            format!("`{what}` must give an array of names, not {other}"),
        )),
    }
}

impl RedisStep {
    fn server(&self, cx: &Context, message: &Value) -> Result<Server, FlowError> {
        if let Some(t) = &self.url {
            let url = cx.render(t, message)?.trim().to_owned();
            let info = connection_info(&url)?;
            return Ok(Server { info, id: url });
        }
        let name = self.account.as_deref().unwrap_or_default();
        let account = input::account("redis", cx, name)?;
        let url = input::account_field("redis", name, account, "url")?;
        let mut info = connection_info(url)?;
        let username = input::account_text(account, "username");
        let password = input::account_text(account, "password");
        if let Some(user) = username {
            info.redis.username = Some(user.to_owned());
        }
        if let Some(password) = password {
            info.redis.password = Some(password.to_owned());
        }
        let id = format!(
            "{url}\u{0}{}\u{0}{}",
            username.unwrap_or_default(),
            password.unwrap_or_default()
        );
        Ok(Server { info, id })
    }

    /// The connection to `server`: the step's own, or a new one.
    async fn connection(&self, server: &Server) -> Result<(u64, MultiplexedConnection), FlowError> {
        let mut connections = self.connections.lock().await;
        if let Some((made, connection)) = connections.by_server.get(&server.id) {
            return Ok((*made, connection.clone()));
        }
        let failed = |e: RedisError| {
            let why = match reply_text(&e) {
                Some((_, text)) => text,
                None => e.to_string(),
            };
            FlowError::new(
                "redis",
                502,
                format!("Redis at {} cannot be reached: {why}", server.info.addr),
            )
        };
        let client = redis::Client::open(server.info.clone())
            .map_err(|e| bad_input("redis", format!("the Redis URL is not usable: {e}")))?;
        let config =
            redis::AsyncConnectionConfig::new().set_connection_timeout(self.connect_timeout);
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(failed)?;
        connections.made += 1;
        let made = connections.made;
        connections
            .by_server
            .insert(server.id.clone(), (made, connection.clone()));
        Ok((made, connection))
    }

    /// Forgets the connection made under `made` (unless it was replaced already).
    async fn forget(&self, server: &Server, made: u64) {
        let mut connections = self.connections.lock().await;
        if connections
            .by_server
            .get(&server.id)
            .is_some_and(|(m, _)| *m == made)
        {
            connections.by_server.remove(&server.id);
        }
    }

    /// Sends `cmd`; when the connection fails, once more on a new one.
    async fn send(&self, server: &Server, cmd: &redis::Cmd) -> Result<redis::Value, FlowError> {
        let (made, mut connection) = self.connection(server).await?;
        match cmd.query_async::<redis::Value>(&mut connection).await {
            Ok(reply) => return Ok(reply),
            Err(e) if broken(&e) => self.forget(server, made).await,
            Err(e) => return Err(redis_error_status(&e)),
        }
        let (made, mut connection) = self.connection(server).await?;
        match cmd.query_async::<redis::Value>(&mut connection).await {
            Ok(reply) => Ok(reply),
            Err(e) => {
                if broken(&e) {
                    self.forget(server, made).await;
                }
                Err(redis_error_status(&e))
            }
        }
    }

    fn int(&self, int: &Int, cx: &Context, message: &Value) -> Result<i64, FlowError> {
        match int {
            Int::Fixed(n) => Ok(*n),
            Int::Expr(t, name) => match cx.eval_value(t, message)? {
                Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
                Value::String(s) if s.trim().parse::<i64>().is_ok() => {
                    Ok(s.trim().parse::<i64>().unwrap_or_default())
                }
                other => Err(bad_input(
                    "redis",
                    format!("`{name}` must give an integer, not {other}"),
                )),
            },
        }
    }

    fn text(
        &self,
        t: Option<&Template>,
        name: &str,
        cx: &Context,
        message: &Value,
    ) -> Result<String, FlowError> {
        let Some(t) = t else {
            return Err(bad_input("redis", format!("`{name}` is missing")));
        };
        let text = cx.render(t, message)?.into_owned();
        if text.is_empty() {
            return Err(bad_input("redis", format!("`{name}` is empty")));
        }
        Ok(text)
    }

    fn list(
        &self,
        t: Option<&ValueTemplate>,
        name: &str,
        cx: &Context,
        message: &Value,
    ) -> Result<Vec<Value>, FlowError> {
        let Some(t) = t else {
            return Ok(Vec::new());
        };
        match cx.eval_value(t, message)? {
            Value::Array(items) => Ok(items),
            other => Err(bad_input(
                "redis",
                format!("`{name}` must give an array, not {other}"),
            )),
        }
    }

    /// The command for this message.
    fn request(&self, cx: &Context, message: &Value) -> Result<Request, FlowError> {
        let key = || self.text(self.key.as_ref(), "key", cx, message);
        let mut cmd;
        match self.operation {
            Operation::Get => {
                cmd = redis::cmd("GET");
                cmd.arg(key()?);
            }
            Operation::Set => {
                cmd = redis::cmd("SET");
                cmd.arg(key()?).arg(encode(self.value.value(cx, message)?));
                if self.if_not_exists {
                    cmd.arg("NX");
                }
                if let Some(ms) = self.ttl_ms {
                    cmd.arg("PX").arg(ms);
                }
            }
            Operation::Del | Operation::Exists => {
                let keys = match &self.keys {
                    Some(t) => names(cx.eval_value(t, message)?, "keys")?,
                    None => vec![key()?],
                };
                if keys.is_empty() {
                    return Ok(Request::Nothing);
                }
                cmd = redis::cmd(if self.operation == Operation::Del {
                    "DEL"
                } else {
                    "EXISTS"
                });
                cmd.arg(keys);
            }
            Operation::Incr => {
                cmd = redis::cmd("INCRBY");
                cmd.arg(key()?).arg(self.int(&self.by, cx, message)?);
            }
            Operation::Expire => {
                cmd = redis::cmd("PEXPIRE");
                cmd.arg(key()?).arg(self.ttl_ms.unwrap_or(1));
            }
            Operation::Hget => {
                cmd = redis::cmd("HGET");
                cmd.arg(key()?)
                    .arg(self.text(self.field.as_ref(), "field", cx, message)?);
            }
            Operation::Hset => {
                let key = key()?;
                let fields = match &self.fields {
                    Some(t) => cx.eval_value(t, message)?,
                    None => Value::Null,
                };
                let Value::Object(fields) = fields else {
                    return Err(bad_input(
                        "redis",
                        format!("`fields` must give an object, not {fields}"),
                    ));
                };
                if fields.is_empty() {
                    return Ok(Request::Nothing);
                }
                cmd = redis::cmd("HSET");
                cmd.arg(key);
                for (name, value) in fields {
                    cmd.arg(name).arg(encode(value));
                }
            }
            Operation::Hgetall => {
                cmd = redis::cmd("HGETALL");
                cmd.arg(key()?);
            }
            Operation::Hdel => {
                let key = key()?;
                let fields = match &self.fields {
                    Some(t) => names(cx.eval_value(t, message)?, "fields")?,
                    None => vec![self.text(self.field.as_ref(), "field", cx, message)?],
                };
                if fields.is_empty() {
                    return Ok(Request::Nothing);
                }
                cmd = redis::cmd("HDEL");
                cmd.arg(key).arg(fields);
            }
            Operation::Lpush | Operation::Rpush => {
                let key = key()?;
                let values = self.list(self.values.as_ref(), "values", cx, message)?;
                if values.is_empty() {
                    // Nothing to add: the length as it is.
                    cmd = redis::cmd("LLEN");
                    cmd.arg(key);
                } else {
                    cmd = redis::cmd(if self.operation == Operation::Lpush {
                        "LPUSH"
                    } else {
                        "RPUSH"
                    });
                    cmd.arg(key);
                    for value in values {
                        cmd.arg(encode(value));
                    }
                }
            }
            Operation::Lpop | Operation::Rpop => {
                cmd = redis::cmd(if self.operation == Operation::Lpop {
                    "LPOP"
                } else {
                    "RPOP"
                });
                cmd.arg(key()?);
                if let Some(count) = &self.count {
                    let n = self.int(count, cx, message)?;
                    if n < 1 {
                        return Err(bad_input(
                            "redis",
                            format!("`count` must be at least 1, not {n}"),
                        ));
                    }
                    cmd.arg(n);
                }
            }
            Operation::Lrange => {
                cmd = redis::cmd("LRANGE");
                cmd.arg(key()?)
                    .arg(self.int(&self.start, cx, message)?)
                    .arg(self.int(&self.stop, cx, message)?);
            }
            Operation::Publish => {
                cmd = redis::cmd("PUBLISH");
                cmd.arg(self.text(self.channel.as_ref(), "channel", cx, message)?)
                    .arg(encode(self.value.value(cx, message)?));
            }
        }
        Ok(Request::Send(cmd))
    }

    /// The step's output from the server's reply.
    fn output(&self, reply: redis::Value) -> Value {
        let parse = self.parse;
        match self.operation {
            Operation::Get | Operation::Hget | Operation::Lrange => to_json(reply, parse),
            Operation::Lpop | Operation::Rpop => match (reply, &self.count) {
                // With a count, a missing list is an empty array.
                (redis::Value::Nil, Some(_)) => Value::Array(Vec::new()),
                (reply, _) => to_json(reply, parse),
            },
            Operation::Set => json!({"set": !matches!(reply, redis::Value::Nil)}),
            Operation::Del | Operation::Hdel => json!({"deleted": integer(&reply)}),
            Operation::Incr | Operation::Lpush | Operation::Rpush => json!(integer(&reply)),
            Operation::Expire => json!({"expired": integer(&reply) > 0}),
            Operation::Exists if self.keys.is_some() => json!(integer(&reply)),
            Operation::Exists => json!(integer(&reply) > 0),
            Operation::Hset => json!({"added": integer(&reply)}),
            Operation::Hgetall => hash(reply, parse),
            Operation::Publish => json!({"receivers": integer(&reply)}),
        }
    }

    /// The output when there was nothing to send (an empty list of keys,
    /// fields or values).
    fn nothing(&self) -> Value {
        match self.operation {
            Operation::Del | Operation::Hdel => json!({"deleted": 0}),
            Operation::Hset => json!({"added": 0}),
            _ => json!(0),
        }
    }
}

/// HGETALL's reply (pairs in RESP2, a map in RESP3) as an object; null
/// when there is no hash.
fn hash(reply: redis::Value, parse: Parse) -> Value {
    let mut out = Map::new();
    match reply {
        redis::Value::Array(items) => {
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                out.insert(as_text(to_json(k, Parse::Text)), to_json(v, parse));
            }
        }
        redis::Value::Map(pairs) => {
            for (k, v) in pairs {
                out.insert(as_text(to_json(k, Parse::Text)), to_json(v, parse));
            }
        }
        _ => {}
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

impl Step for RedisStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let request = self.request(cx, &message)?;
            let server = self.server(cx, &message)?;
            let cmd = match request {
                Request::Send(cmd) => cmd,
                Request::Nothing => return Ok(Arc::new(self.nothing())),
            };
            let reply = self.send(&server, &cmd).await?;
            Ok(Arc::new(self.output(reply)))
        })
    }
}
