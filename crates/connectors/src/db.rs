//! `db`: Postgres, MySQL/MariaDB and SQLite through one step. Parameters
//! are always bound (never spliced into SQL); rows come back as JSON
//! objects with their types; statements of one step run in one
//! transaction; each compiled step keeps a pool per database URL, so a
//! deployment reuses its connections.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, schema_of,
};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::StepKind;
use sqlx::{Column, Row, TypeInfo, ValueRef};

use crate::input::{self, bad_input};

#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Operation {
    /// Rows as an array of objects (default).
    #[default]
    Query,
    /// `{rowsAffected, lastInsertId}`.
    Execute,
    /// The statement once per element of `items`, in one transaction:
    /// `{rowsAffected}`.
    Batch,
    /// Every statement of `statements` in one transaction: their results.
    Transaction,
}

/// One statement of a `transaction`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StatementConfig {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
    /// query (rows) or execute (default).
    #[serde(default)]
    operation: Option<Operation>,
}

/// Fields of the `db` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DbConfig {
    /// query (default), execute, batch or transaction.
    #[serde(default)]
    operation: Operation,
    /// The database: `postgres://…`, `mysql://…` (MariaDB too) or
    /// `sqlite:path`; may hold expressions (`{{ global.orders-db }}`).
    #[serde(default)]
    url: Option<String>,
    /// An account whose `url` field is the database URL (with the
    /// password in it), and optional `username`/`password` fields put into it.
    #[serde(default)]
    account: Option<String>,
    /// The statement, with the database's placeholders: `$1, $2` for
    /// Postgres, `?` for MySQL and SQLite.
    #[serde(default)]
    sql: Option<String>,
    /// The bound parameters, in order; values may hold expressions. In a
    /// batch they are evaluated per element (`{{ item.sku }}`).
    #[serde(default)]
    params: Vec<Value>,
    /// batch: the elements (an expression giving an array).
    #[serde(default)]
    items: Option<String>,
    /// transaction: the statements, in order.
    #[serde(default)]
    statements: Vec<StatementConfig>,
    /// query: only the first row (or null) instead of an array.
    #[serde(default)]
    single: bool,
    /// Columns whose text holds JSON, returned parsed (Postgres `json`,
    /// `jsonb` and MySQL `JSON` are parsed without it).
    #[serde(default)]
    json_columns: Vec<String>,
    /// How long to wait for a connection (default 10s).
    #[serde(default)]
    connect_timeout: Option<sluice_spec::HumanDuration>,
    /// Connections kept per database (default 5).
    #[serde(default = "default_pool")]
    pool_size: u32,
}

fn default_pool() -> u32 {
    5
}

pub(crate) const DB: StepFactory = StepFactory {
    kind: StepKind {
        name: "db",
        summary: "Query or change a Postgres, MySQL/MariaDB or SQLite database with bound parameters.",
        schema: schema_of::<DbConfig>,
    },
    compile,
};

struct Statement {
    sql: String,
    params: Vec<ValueTemplate>,
    operation: Operation,
}

struct DbStep {
    operation: Operation,
    url: Option<Template>,
    account: Option<String>,
    statements: Vec<Statement>,
    items: Option<Template>,
    single: bool,
    pool_size: u32,
    connect_timeout: Duration,
    json_columns: Arc<[String]>,
    pools: Mutex<HashMap<String, Pool>>,
}

#[derive(Clone)]
enum Pool {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: DbConfig = cx.config()?;
    let base = cx.path().clone();
    input::url_or_account(
        cx,
        "the database",
        config.url.as_ref(),
        config.account.as_ref(),
    )?;
    let url = match &config.url {
        Some(u) => Some(cx.template("url", u)?),
        None => None,
    };
    let params = |cx: &mut StepCx<'_, '_>, list: &[Value], at: sluice_spec::FieldPath| {
        list.iter()
            .enumerate()
            .map(|(i, p)| cx.value_template_at(at.index(i), p))
            .collect::<Option<Vec<_>>>()
    };
    let mut statements = Vec::new();
    match config.operation {
        Operation::Transaction => {
            if config.statements.is_empty() || config.sql.is_some() {
                cx.problem(
                    base.key("statements"),
                    "a transaction takes `statements` (and no `sql`)",
                );
                return None;
            }
            for (i, s) in config.statements.iter().enumerate() {
                let at = base.key("statements").index(i);
                statements.push(Statement {
                    sql: s.sql.clone(),
                    params: params(cx, &s.params, at.key("params"))?,
                    operation: s.operation.unwrap_or(Operation::Execute),
                });
            }
        }
        op => {
            let Some(sql) = &config.sql else {
                cx.problem(base.key("sql"), "the statement is missing");
                return None;
            };
            if sql.trim().is_empty() {
                cx.problem(base.key("sql"), "the statement is empty");
                return None;
            }
            statements.push(Statement {
                sql: sql.clone(),
                params: params(cx, &config.params, base.key("params"))?,
                operation: op,
            });
        }
    }
    let items = match (&config.items, config.operation) {
        (Some(text), Operation::Batch) => Some(cx.template("items", text)?),
        (None, Operation::Batch) => {
            cx.problem(
                base.key("items"),
                "a batch needs `items`: the array to run the statement for",
            );
            return None;
        }
        (Some(_), _) => {
            cx.problem(base.key("items"), "`items` is for `operation: batch`");
            return None;
        }
        (None, _) => None,
    };
    if !(1..=100).contains(&config.pool_size) {
        cx.problem(base.key("poolSize"), "poolSize must be between 1 and 100");
        return None;
    }
    Some(Box::new(DbStep {
        operation: config.operation,
        url,
        account: config.account,
        statements,
        items,
        single: config.single,
        pool_size: config.pool_size,
        connect_timeout: config
            .connect_timeout
            .map_or(Duration::from_secs(10), |d| d.0),
        json_columns: config.json_columns.into(),
        pools: Mutex::new(HashMap::new()),
    }))
}

fn db_error(e: &sqlx::Error) -> FlowError {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned());
            let status = match d.kind() {
                sqlx::error::ErrorKind::UniqueViolation => 409,
                sqlx::error::ErrorKind::ForeignKeyViolation
                | sqlx::error::ErrorKind::NotNullViolation
                | sqlx::error::ErrorKind::CheckViolation => 422,
                _ => 400,
            };
            FlowError::new(
                "db",
                status,
                format!("the database refused the statement: {}", d.message()),
            )
            .with_details(json!({"sqlState": code}))
        }
        sqlx::Error::PoolTimedOut => FlowError::new(
            "db",
            503,
            "no database connection within connectTimeout: the database is unreachable, or every connection is busy",
        ),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolClosed => {
            FlowError::new("db", 502, format!("the database cannot be reached: {e}"))
        }
        other => FlowError::new("db", 500, format!("database error: {other}")),
    }
}

impl DbStep {
    fn url(&self, cx: &Context, message: &Value) -> Result<String, FlowError> {
        if let Some(t) = &self.url {
            return Ok(cx.render(t, message)?.trim().to_owned());
        }
        let name = self.account.as_deref().unwrap_or_default();
        let account = input::account("db", cx, name)?;
        let mut url = input::account_field("db", name, account, "url")?.to_owned();
        if let Ok(mut parsed) = url_parts(&url) {
            if let Some(user) = input::account_text(account, "username") {
                parsed.0 = Some(user.to_owned());
            }
            if let Some(password) = input::account_text(account, "password") {
                parsed.1 = Some(password.to_owned());
            }
            url = parsed.rebuild();
        }
        Ok(url)
    }

    fn pool(&self, url: &str) -> Result<Pool, FlowError> {
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pool) = pools.get(url) {
            return Ok(pool.clone());
        }
        let bad = |e: sqlx::Error| bad_input("db", format!("the database URL is not usable: {e}"));
        let acquire = self.connect_timeout;
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = sqlx::postgres::PgConnectOptions::from_str(url).map_err(bad)?;
            Pool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(self.pool_size)
                    .acquire_timeout(acquire)
                    .connect_lazy_with(options),
            )
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let options = sqlx::mysql::MySqlConnectOptions::from_str(&url).map_err(bad)?;
            Pool::MySql(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(self.pool_size)
                    .acquire_timeout(acquire)
                    .connect_lazy_with(options),
            )
        } else if url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .map_err(bad)?
                .busy_timeout(Duration::from_secs(5));
            Pool::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(self.pool_size)
                    .acquire_timeout(acquire)
                    .connect_lazy_with(options),
            )
        } else {
            return Err(bad_input(
                "db",
                "the database URL must start with postgres://, mysql://, mariadb:// or sqlite:",
            ));
        };
        pools.insert(url.to_owned(), pool.clone());
        Ok(pool)
    }

    fn params(
        &self,
        statement: &Statement,
        cx: &Context,
        message: &Value,
    ) -> Result<Vec<Value>, FlowError> {
        statement
            .params
            .iter()
            .map(|p| cx.eval_value(p, message))
            .collect()
    }
}

/// The user and password of a URL, to put an account's credentials in.
struct UrlParts(Option<String>, Option<String>, String, String);

impl UrlParts {
    fn rebuild(&self) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let auth = match (&self.0, &self.1) {
            (Some(u), Some(p)) => format!("{}:{}@", enc(u), enc(p)),
            (Some(u), None) => format!("{}@", enc(u)),
            _ => String::new(),
        };
        format!("{}://{auth}{}", self.2, self.3)
    }
}

fn url_parts(url: &str) -> Result<UrlParts, ()> {
    let (scheme, rest) = url.split_once("://").ok_or(())?;
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) if !a.contains('/') => (Some(a), h),
        _ => (None, rest),
    };
    let (user, password) = match auth {
        Some(a) => match a.split_once(':') {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (Some(a.to_owned()), None),
        },
        None => (None, None),
    };
    Ok(UrlParts(user, password, scheme.to_owned(), host.to_owned()))
}

/// Binds JSON parameters: booleans, integers, floats and strings as
/// themselves, null as `$null`, objects and arrays as `$other => $json` says.
macro_rules! bind_all {
    ($query:expr, $params:expr, $null:expr, $other:ident => $json:expr) => {{
        let mut q = $query;
        for p in $params {
            q = match p {
                Value::Null => q.bind($null),
                Value::Bool(b) => q.bind(*b),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => q.bind(i),
                    None => q.bind(n.as_f64().unwrap_or(0.0)),
                },
                Value::String(s) => q.bind(s.clone()),
                $other => q.bind($json),
            };
        }
        q
    }};
}

/// A Postgres NULL of type `unknown`: the server takes the type from where
/// the parameter is used, as for a NULL literal (a typed NULL would not fit
/// every column, nor every cast).
struct PgNull;

impl sqlx::Type<sqlx::Postgres> for PgNull {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(705))
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for PgNull {
    fn encode_by_ref(
        &self,
        _: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

/// What one statement gave.
enum Outcome {
    Rows(Vec<Value>),
    Done {
        rows_affected: u64,
        last_insert_id: Option<i64>,
    },
}

impl Outcome {
    fn into_value(self, single: bool) -> Value {
        match self {
            Outcome::Rows(rows) if single => rows.into_iter().next().unwrap_or(Value::Null),
            Outcome::Rows(rows) => Value::Array(rows),
            Outcome::Done {
                rows_affected,
                last_insert_id,
            } => {
                let mut out = json!({"rowsAffected": rows_affected});
                if let Some(id) = last_insert_id {
                    out["lastInsertId"] = json!(id);
                }
                out
            }
        }
    }
}

async fn run_pg<'c, E>(
    executor: E,
    sql: &str,
    params: &[Value],
    rows: bool,
) -> Result<Outcome, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    // Unnamed statements: parameter types come from each call (a cached
    // statement would read an integer as the float an earlier call sent).
    let query = bind_all!(sqlx::query(sql).persistent(false), params, PgNull, other => sqlx::types::Json(other.clone()));
    if rows {
        let found = query.fetch_all(executor).await?;
        Ok(Outcome::Rows(found.iter().map(pg_row).collect()))
    } else {
        let done = query.execute(executor).await?;
        Ok(Outcome::Done {
            rows_affected: done.rows_affected(),
            last_insert_id: None,
        })
    }
}

async fn run_my<'c, E>(
    executor: E,
    sql: &str,
    params: &[Value],
    rows: bool,
) -> Result<Outcome, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::MySql>,
{
    let query =
        bind_all!(sqlx::query(sql), params, None::<i64>, other => sqlx::types::Json(other.clone()));
    if rows {
        let found = query.fetch_all(executor).await?;
        Ok(Outcome::Rows(found.iter().map(my_row).collect()))
    } else {
        let done = query.execute(executor).await?;
        Ok(Outcome::Done {
            rows_affected: done.rows_affected(),
            last_insert_id: i64::try_from(done.last_insert_id())
                .ok()
                .filter(|id| *id > 0),
        })
    }
}

async fn run_lite<'c, E>(
    executor: E,
    sql: &str,
    params: &[Value],
    rows: bool,
) -> Result<Outcome, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let query = bind_all!(sqlx::query(sql), params, None::<i64>, other => other.to_string());
    if rows {
        let found = query.fetch_all(executor).await?;
        Ok(Outcome::Rows(found.iter().map(lite_row).collect()))
    } else {
        let done = query.execute(executor).await?;
        Ok(Outcome::Done {
            rows_affected: done.rows_affected(),
            last_insert_id: Some(done.last_insert_rowid()).filter(|id| *id > 0),
        })
    }
}

/// Runs `work` (statements and their parameters) on `pool`: one
/// statement alone, several in one transaction.
async fn run_all(
    pool: &Pool,
    work: &[(String, Vec<Value>, bool)],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut out = Vec::with_capacity(work.len());
    macro_rules! all_in {
        ($pool:expr, $run:ident) => {{
            if work.len() == 1 {
                let (sql, params, rows) = &work[0];
                out.push($run($pool, sql, params, *rows).await?);
            } else {
                let mut tx = $pool.begin().await?;
                for (sql, params, rows) in work {
                    out.push($run(&mut *tx, sql, params, *rows).await?);
                }
                tx.commit().await?;
            }
        }};
    }
    match pool {
        Pool::Postgres(p) => all_in!(p, run_pg),
        Pool::MySql(p) => all_in!(p, run_my),
        Pool::Sqlite(p) => all_in!(p, run_lite),
    }
    Ok(out)
}

fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn decimal(d: sqlx::types::Decimal) -> Value {
    let text = d.normalize().to_string();
    serde_json::from_str::<serde_json::Number>(&text).map_or(Value::String(text), Value::Number)
}

fn pg_row(row: &sqlx::postgres::PgRow) -> Value {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
    let mut map = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let is_null = row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true);
        let name = column.type_info().name().to_owned();
        let value = if is_null {
            Value::Null
        } else {
            let got = match name.as_str() {
                "BOOL" => row.try_get::<bool, _>(i).map(Value::Bool),
                "INT2" => row.try_get::<i16, _>(i).map(|v| json!(v)),
                "INT4" => row.try_get::<i32, _>(i).map(|v| json!(v)),
                "INT8" => row.try_get::<i64, _>(i).map(|v| json!(v)),
                "FLOAT4" => row.try_get::<f32, _>(i).map(|v| number(f64::from(v))),
                "FLOAT8" => row.try_get::<f64, _>(i).map(number),
                "NUMERIC" => row.try_get::<sqlx::types::Decimal, _>(i).map(decimal),
                "JSON" | "JSONB" => row.try_get::<sqlx::types::Json<Value>, _>(i).map(|j| j.0),
                "TIMESTAMPTZ" => row
                    .try_get::<DateTime<Utc>, _>(i)
                    .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
                "TIMESTAMP" => row
                    .try_get::<NaiveDateTime, _>(i)
                    .map(|t| json!(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string())),
                "DATE" => row.try_get::<NaiveDate, _>(i).map(|d| json!(d.to_string())),
                "TIME" => row.try_get::<NaiveTime, _>(i).map(|t| json!(t.to_string())),
                "UUID" => row
                    .try_get::<sqlx::types::Uuid, _>(i)
                    .map(|u| json!(u.to_string())),
                "BYTEA" => row
                    .try_get::<Vec<u8>, _>(i)
                    .map(|b| json!(STANDARD.encode(b))),
                "INT2[]" | "INT4[]" | "INT8[]" => row
                    .try_get::<Vec<i64>, _>(i)
                    .map(|v| json!(v))
                    .or_else(|_| row.try_get::<Vec<i32>, _>(i).map(|v| json!(v))),
                "TEXT[]" | "VARCHAR[]" => row.try_get::<Vec<String>, _>(i).map(|v| json!(v)),
                _ => row.try_get::<String, _>(i).map(Value::String),
            };
            got.unwrap_or_else(|_| {
                json!(format!("<{name} not shown: cast it to text in the query>"))
            })
        };
        map.insert(column.name().to_owned(), value);
    }
    Value::Object(map)
}

fn my_row(row: &sqlx::mysql::MySqlRow) -> Value {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
    let mut map = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let is_null = row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true);
        let name = column.type_info().name().to_owned();
        let value = if is_null {
            Value::Null
        } else {
            let got = match name.as_str() {
                "BOOLEAN" => row.try_get::<bool, _>(i).map(Value::Bool),
                "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => {
                    row.try_get::<i64, _>(i).map(|v| json!(v))
                }
                "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED"
                | "INT UNSIGNED" | "BIGINT UNSIGNED" => row.try_get::<u64, _>(i).map(|v| json!(v)),
                "FLOAT" => row.try_get::<f32, _>(i).map(|v| number(f64::from(v))),
                "DOUBLE" => row.try_get::<f64, _>(i).map(number),
                "DECIMAL" => row.try_get::<sqlx::types::Decimal, _>(i).map(decimal),
                "JSON" => row.try_get::<sqlx::types::Json<Value>, _>(i).map(|j| j.0),
                "TIMESTAMP" => row
                    .try_get::<DateTime<Utc>, _>(i)
                    .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
                "DATETIME" => row
                    .try_get::<NaiveDateTime, _>(i)
                    .map(|t| json!(t.format("%Y-%m-%dT%H:%M:%S%.f").to_string())),
                "DATE" => row.try_get::<NaiveDate, _>(i).map(|d| json!(d.to_string())),
                "TIME" => row.try_get::<NaiveTime, _>(i).map(|t| json!(t.to_string())),
                // MariaDB reports its JSON (and `_bin` collated text) as
                // BLOB: UTF-8 comes back as text, other bytes as base64.
                "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BINARY" | "VARBINARY" => row
                    .try_get::<Vec<u8>, _>(i)
                    .map(|b| match String::from_utf8(b) {
                        Ok(text) => Value::String(text),
                        Err(e) => json!(STANDARD.encode(e.into_bytes())),
                    }),
                _ => row.try_get::<String, _>(i).map(Value::String),
            };
            got.unwrap_or_else(|_| {
                json!(format!("<{name} not shown: cast it to text in the query>"))
            })
        };
        map.insert(column.name().to_owned(), value);
    }
    Value::Object(map)
}

fn lite_row(row: &sqlx::sqlite::SqliteRow) -> Value {
    let mut map = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        // SQLite types values, not columns: look at this cell.
        let raw = row.try_get_raw(i);
        let kind = raw
            .as_ref()
            .map(|v| {
                if v.is_null() {
                    "NULL".to_owned()
                } else {
                    v.type_info().name().to_owned()
                }
            })
            .unwrap_or_else(|_| "NULL".to_owned());
        let declared = column.type_info().name().to_ascii_uppercase();
        let value = match kind.as_str() {
            "NULL" => Value::Null,
            "INTEGER" if declared == "BOOLEAN" => {
                row.try_get::<bool, _>(i).map_or(Value::Null, Value::Bool)
            }
            "INTEGER" => row.try_get::<i64, _>(i).map_or(Value::Null, |v| json!(v)),
            "REAL" => row.try_get::<f64, _>(i).map_or(Value::Null, number),
            "BLOB" => row
                .try_get::<Vec<u8>, _>(i)
                .map_or(Value::Null, |b| json!(STANDARD.encode(b))),
            _ => {
                let text = row.try_get::<String, _>(i).unwrap_or_default();
                if declared == "JSON" {
                    serde_json::from_str(&text).unwrap_or(Value::String(text))
                } else {
                    Value::String(text)
                }
            }
        };
        map.insert(column.name().to_owned(), value);
    }
    Value::Object(map)
}

/// Parses the text of the listed columns as JSON (text that is not JSON stays).
fn parse_json_columns(row: &mut Value, columns: &[String]) {
    let Value::Object(map) = row else { return };
    for column in columns {
        if let Some(cell) = map.get_mut(column)
            && let Value::String(text) = cell
            && let Ok(parsed) = serde_json::from_str::<Value>(text)
        {
            *cell = parsed;
        }
    }
}

impl Step for DbStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let url = self.url(cx, &message)?;
            let pool = self.pool(&url)?;
            let mut work = Vec::new();
            match self.operation {
                Operation::Batch => {
                    let statement = &self.statements[0];
                    let Some(items) = &self.items else {
                        return Err(bad_input("db", "a batch needs `items`"));
                    };
                    let items = cx.eval(items, &message)?.into_owned();
                    let Value::Array(items) = items else {
                        return Err(bad_input("db", "`items` must give an array"));
                    };
                    for (index, item) in items.iter().enumerate() {
                        let index = Value::from(index);
                        let params = statement
                            .params
                            .iter()
                            .map(|p| cx.eval_value_for(p, &message, item, &index))
                            .collect::<Result<Vec<_>, _>>()?;
                        work.push((statement.sql.clone(), params, false));
                    }
                    if work.is_empty() {
                        return Ok(Arc::new(json!({"rowsAffected": 0})));
                    }
                }
                _ => {
                    for statement in &self.statements {
                        let params = self.params(statement, cx, &message)?;
                        work.push((
                            statement.sql.clone(),
                            params,
                            statement.operation == Operation::Query,
                        ));
                    }
                }
            }
            let mut outcomes = run_all(&pool, &work).await.map_err(|e| db_error(&e))?;
            if !self.json_columns.is_empty() {
                for outcome in &mut outcomes {
                    if let Outcome::Rows(rows) = outcome {
                        rows.iter_mut()
                            .for_each(|row| parse_json_columns(row, &self.json_columns));
                    }
                }
            }
            let out = match self.operation {
                Operation::Batch => {
                    let total: u64 = outcomes
                        .iter()
                        .map(|o| match o {
                            Outcome::Done { rows_affected, .. } => *rows_affected,
                            Outcome::Rows(r) => r.len() as u64,
                        })
                        .sum();
                    json!({"rowsAffected": total})
                }
                Operation::Transaction => {
                    Value::Array(outcomes.into_iter().map(|o| o.into_value(false)).collect())
                }
                _ => outcomes
                    .into_iter()
                    .next()
                    .map_or(Value::Null, |o| o.into_value(self.single)),
            };
            Ok(Arc::new(out))
        })
    }
}
