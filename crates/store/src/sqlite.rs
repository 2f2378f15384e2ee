//! The embedded store: one SQLite file in WAL mode.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sluice_engine::services::ObjectOp;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Arguments, Row, SqliteConnection, SqlitePool};

use crate::objects;
use crate::{
    AccountRecord, ApiKey, AuditEntry, Consumer, Deployment, DeploymentEvent, Environment, Error,
    EventTarget, ExecutionFilter, ExecutionRecord, Global, LogRecord, NewEvent, Page,
    PipelineSummary, PipelineVersion, QueuedEvent, Realm, Result, SaveMode, Saved, Scope, Store,
    Token, User, WriteBatch,
};

/// The environments every new realm gets.
pub const DEFAULT_ENVIRONMENTS: [&str; 2] = ["test", "prod"];

/// State in a SQLite database.
#[derive(Clone)]
pub struct SqliteStore {
    /// Reads (in WAL mode they never wait for a writer).
    pool: SqlitePool,
    /// Every other write, on one connection: writers queue here, in order,
    /// instead of in SQLite's busy handler, which sleeps for milliseconds
    /// at a time.
    writes: SqlitePool,
    /// The connection of `Store::write` (a file database): the server's
    /// one writer keeps it between batches, so a batch never waits for a
    /// pooled connection to be checked and handed back. Other writes take
    /// turns with it through SQLite's lock.
    batches: Option<Arc<tokio::sync::Mutex<SqliteConnection>>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn json_text(value: &impl serde::Serialize) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    Ok(serde_json::from_str(text)?)
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        Self::connect(options, 4).await
    }

    /// A private in-memory database (tests).
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection: every connection to :memory: is its own database.
        Self::connect(options, 1).await
    }

    /// Every write transaction is `BEGIN IMMEDIATE`: it takes the write
    /// lock at once, so two writers queue on the busy timeout instead of
    /// one failing with "database is locked" when a read upgrades.
    async fn connect(options: SqliteConnectOptions, connections: u32) -> Result<Self> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        if connections == 1 {
            return Ok(SqliteStore {
                writes: pool.clone(),
                pool,
                batches: None,
            });
        }
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        let batches = sqlx::ConnectOptions::connect(&options).await?;
        Ok(SqliteStore {
            pool,
            writes,
            batches: Some(Arc::new(tokio::sync::Mutex::new(batches))),
        })
    }

    /// Deletes `name` from an environment-scoped `table` (a constant of
    /// this file, never user text); NotFound names it as `what`.
    async fn delete_in_environment(
        &self,
        table: &'static str,
        what: &str,
        realm: &str,
        environment: &str,
        name: &str,
    ) -> Result<()> {
        let sql = format!("DELETE FROM {table} WHERE realm = ? AND environment = ? AND name = ?");
        let done = sqlx::query(&sql)
            .bind(realm)
            .bind(environment)
            .bind(name)
            .execute(&self.writes)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!(
                "{what} '{name}' in '{environment}'"
            )));
        }
        Ok(())
    }

    async fn realm_must_exist(&self, realm: &str) -> Result<()> {
        let found = sqlx::query("SELECT 1 FROM realms WHERE name = ?")
            .bind(realm)
            .fetch_optional(&self.pool)
            .await?;
        found
            .map(|_| ())
            .ok_or_else(|| Error::NotFound(format!("realm '{realm}'")))
    }

    async fn environment_must_exist(&self, realm: &str, environment: &str) -> Result<()> {
        let found = sqlx::query("SELECT 1 FROM environments WHERE realm = ? AND name = ?")
            .bind(realm)
            .bind(environment)
            .fetch_optional(&self.pool)
            .await?;
        found.map(|_| ()).ok_or_else(|| {
            Error::NotFound(format!("environment '{environment}' in realm '{realm}'"))
        })
    }
}

fn version_of(row: &sqlx::sqlite::SqliteRow) -> Result<PipelineVersion> {
    Ok(PipelineVersion {
        realm: row.try_get("realm")?,
        name: row.try_get("name")?,
        major: u32_of(row.try_get("major")?),
        minor: u32_of(row.try_get("minor")?),
        definition: parse(row.try_get::<&str, _>("definition")?)?,
        archived: row.try_get::<i64, _>("archived")? != 0,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

fn execution_of(row: &sqlx::sqlite::SqliteRow, with_trace: bool) -> Result<ExecutionRecord> {
    let error: Option<String> = row.try_get("error")?;
    let trace: Option<String> = if with_trace {
        row.try_get("trace")?
    } else {
        None
    };
    Ok(ExecutionRecord {
        key: row.try_get("key")?,
        realm: row.try_get("realm")?,
        environment: row.try_get("environment")?,
        pipeline: row.try_get("pipeline")?,
        major: u32_of(row.try_get("major")?),
        minor: u32_of(row.try_get("minor")?),
        status: row.try_get("status")?,
        trigger: row.try_get("trigger")?,
        started_at: row.try_get("started_at")?,
        duration_us: u64::try_from(row.try_get::<i64, _>("duration_us")?).unwrap_or(0),
        input: row.try_get("input")?,
        output: row.try_get("output")?,
        error: error.as_deref().map(parse).transpose()?,
        trace,
        logs: Vec::new(),
    })
}

fn queued_of(row: &sqlx::sqlite::SqliteRow) -> Result<QueuedEvent> {
    let last_error: Option<String> = row.try_get("last_error")?;
    Ok(QueuedEvent {
        id: row.try_get("id")?,
        realm: row.try_get("realm")?,
        environment: row.try_get("environment")?,
        name: row.try_get("name")?,
        pipeline: row.try_get("pipeline")?,
        major: u32_of(row.try_get("major")?),
        payload: parse(row.try_get::<&str, _>("payload")?)?,
        attempts: u32_of(row.try_get("attempts")?),
        max_deliveries: u32_of(row.try_get("max_deliveries")?),
        last_error: last_error.as_deref().map(parse).transpose()?,
        created_at: row.try_get("created_at")?,
        dead: row.try_get::<i64, _>("dead")? != 0,
    })
}

fn limit(page: Page) -> (i64, i64) {
    (i64::from(page.limit.clamp(1, 1000)), i64::from(page.offset))
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_realm(&self, name: &str) -> Result<Realm> {
        let now = now_ms();
        let mut tx = self.writes.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = sqlx::query("INSERT INTO realms (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(e) if unique_violation(&e) => {
                return Err(Error::Conflict(format!("realm '{name}' already exists")));
            }
            other => other?,
        };
        for env in DEFAULT_ENVIRONMENTS {
            sqlx::query("INSERT INTO environments (realm, name, created_at) VALUES (?, ?, ?)")
                .bind(name)
                .bind(env)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Realm {
            name: name.to_owned(),
            created_at: now,
        })
    }

    async fn get_realm(&self, name: &str) -> Result<Option<Realm>> {
        let row = sqlx::query("SELECT name, created_at FROM realms WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Realm {
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn list_realms(&self, page: Page) -> Result<Vec<Realm>> {
        let (limit, offset) = limit(page);
        let rows =
            sqlx::query("SELECT name, created_at FROM realms ORDER BY name LIMIT ? OFFSET ?")
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Realm {
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn create_environment(&self, realm: &str, name: &str) -> Result<Environment> {
        self.realm_must_exist(realm).await?;
        let now = now_ms();
        let inserted =
            sqlx::query("INSERT INTO environments (realm, name, created_at) VALUES (?, ?, ?)")
                .bind(realm)
                .bind(name)
                .bind(now)
                .execute(&self.writes)
                .await;
        match inserted {
            Err(e) if unique_violation(&e) => Err(Error::Conflict(format!(
                "environment '{name}' already exists in realm '{realm}'"
            ))),
            other => {
                other?;
                Ok(Environment {
                    realm: realm.to_owned(),
                    name: name.to_owned(),
                    created_at: now,
                })
            }
        }
    }

    async fn list_environments(&self, realm: &str) -> Result<Vec<Environment>> {
        self.realm_must_exist(realm).await?;
        let rows = sqlx::query(
            "SELECT realm, name, created_at FROM environments WHERE realm = ? ORDER BY created_at, name",
        )
        .bind(realm)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Environment {
                    realm: r.try_get("realm")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn save_version(
        &self,
        realm: &str,
        name: &str,
        definition: &Value,
        mode: SaveMode,
        actor: &str,
    ) -> Result<Saved> {
        self.realm_must_exist(realm).await?;
        let text = json_text(definition)?;
        let mut tx = self.writes.begin_with("BEGIN IMMEDIATE").await?;
        let newest = sqlx::query(
            "SELECT * FROM versions WHERE realm = ? AND name = ? ORDER BY major DESC, minor DESC LIMIT 1",
        )
        .bind(realm)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| version_of(&r))
        .transpose()?;
        let (major, minor) = match (&newest, mode) {
            (None, _) => (1, 0),
            (Some(v), SaveMode::NextMinor) => {
                if v.definition == *definition {
                    return Ok(Saved {
                        version: v.clone(),
                        created: false,
                    });
                }
                (v.major, v.minor + 1)
            }
            (Some(v), SaveMode::NewMajor) => (v.major + 1, 0),
        };
        let now = now_ms();
        sqlx::query(
            "INSERT INTO versions (realm, name, major, minor, definition, archived, created_at, created_by) \
             VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
        )
        .bind(realm)
        .bind(name)
        .bind(i64::from(major))
        .bind(i64::from(minor))
        .bind(&text)
        .bind(now)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Saved {
            version: PipelineVersion {
                realm: realm.to_owned(),
                name: name.to_owned(),
                major,
                minor,
                definition: definition.clone(),
                archived: false,
                created_at: now,
                created_by: actor.to_owned(),
            },
            created: true,
        })
    }

    async fn list_pipelines(&self, realm: &str, page: Page) -> Result<Vec<PipelineSummary>> {
        let (limit, offset) = limit(page);
        let rows = sqlx::query(
            "SELECT v.name, v.major, v.minor, v.definition, v.created_at, \
                    (SELECT COUNT(*) FROM versions c WHERE c.realm = v.realm AND c.name = v.name) AS versions \
             FROM versions v \
             WHERE v.realm = ? AND NOT EXISTS ( \
                SELECT 1 FROM versions n WHERE n.realm = v.realm AND n.name = v.name \
                AND (n.major > v.major OR (n.major = v.major AND n.minor > v.minor))) \
             ORDER BY v.name LIMIT ? OFFSET ?",
        )
        .bind(realm)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let definition: Value = parse(r.try_get::<&str, _>("definition")?)?;
                Ok(PipelineSummary {
                    name: r.try_get("name")?,
                    description: definition
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    latest_major: u32_of(r.try_get("major")?),
                    latest_minor: u32_of(r.try_get("minor")?),
                    versions: u32_of(r.try_get("versions")?),
                    updated_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn list_versions(&self, realm: &str, name: &str) -> Result<Vec<PipelineVersion>> {
        let rows = sqlx::query(
            "SELECT * FROM versions WHERE realm = ? AND name = ? ORDER BY major DESC, minor DESC",
        )
        .bind(realm)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_of).collect()
    }

    async fn get_version(
        &self,
        realm: &str,
        name: &str,
        major: u32,
        minor: u32,
    ) -> Result<Option<PipelineVersion>> {
        sqlx::query(
            "SELECT * FROM versions WHERE realm = ? AND name = ? AND major = ? AND minor = ?",
        )
        .bind(realm)
        .bind(name)
        .bind(i64::from(major))
        .bind(i64::from(minor))
        .fetch_optional(&self.pool)
        .await?
        .map(|r| version_of(&r))
        .transpose()
    }

    async fn latest_version(
        &self,
        realm: &str,
        name: &str,
        major: Option<u32>,
    ) -> Result<Option<PipelineVersion>> {
        sqlx::query(
            "SELECT * FROM versions WHERE realm = ? AND name = ? AND (? IS NULL OR major = ?) \
             ORDER BY major DESC, minor DESC LIMIT 1",
        )
        .bind(realm)
        .bind(name)
        .bind(major.map(i64::from))
        .bind(major.map(i64::from))
        .fetch_optional(&self.pool)
        .await?
        .map(|r| version_of(&r))
        .transpose()
    }

    async fn set_archived(
        &self,
        realm: &str,
        name: &str,
        major: u32,
        minor: u32,
        archived: bool,
    ) -> Result<PipelineVersion> {
        let done = sqlx::query(
            "UPDATE versions SET archived = ? WHERE realm = ? AND name = ? AND major = ? AND minor = ?",
        )
        .bind(i64::from(archived))
        .bind(realm)
        .bind(name)
        .bind(i64::from(major))
        .bind(i64::from(minor))
        .execute(&self.writes)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!(
                "version {major}.{minor} of pipeline '{name}'"
            )));
        }
        self.get_version(realm, name, major, minor)
            .await?
            .ok_or_else(|| Error::NotFound(format!("version {major}.{minor} of pipeline '{name}'")))
    }

    async fn put_deployment(&self, deployment: &Deployment, action: &str) -> Result<i64> {
        self.environment_must_exist(&deployment.realm, &deployment.environment)
            .await?;
        let body = json_text(deployment)?;
        let mut tx = self.writes.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO deployments (realm, environment, pipeline, major, body) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (realm, environment, pipeline, major) DO UPDATE SET body = excluded.body",
        )
        .bind(&deployment.realm)
        .bind(&deployment.environment)
        .bind(&deployment.pipeline)
        .bind(i64::from(deployment.major))
        .bind(&body)
        .execute(&mut *tx)
        .await?;
        let id = sqlx::query(
            "INSERT INTO deployment_history (realm, environment, pipeline, action, body) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&deployment.realm)
        .bind(&deployment.environment)
        .bind(&deployment.pipeline)
        .bind(action)
        .bind(&body)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        tx.commit().await?;
        Ok(id)
    }

    async fn get_deployment(
        &self,
        realm: &str,
        environment: &str,
        pipeline: &str,
        major: u32,
    ) -> Result<Option<Deployment>> {
        let row = sqlx::query(
            "SELECT body FROM deployments WHERE realm = ? AND environment = ? AND pipeline = ? AND major = ?",
        )
        .bind(realm)
        .bind(environment)
        .bind(pipeline)
        .bind(i64::from(major))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| parse(r.try_get::<&str, _>("body")?))
            .transpose()
    }

    async fn list_deployments(
        &self,
        realm: &str,
        environment: Option<&str>,
        page: Page,
    ) -> Result<Vec<Deployment>> {
        let (limit, offset) = limit(page);
        let rows = sqlx::query(
            "SELECT body FROM deployments WHERE realm = ? AND (? IS NULL OR environment = ?) \
             ORDER BY environment, pipeline, major LIMIT ? OFFSET ?",
        )
        .bind(realm)
        .bind(environment)
        .bind(environment)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| parse(r.try_get::<&str, _>("body")?))
            .collect()
    }

    async fn all_deployments(&self) -> Result<Vec<Deployment>> {
        let rows =
            sqlx::query("SELECT body FROM deployments ORDER BY realm, environment, pipeline")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| parse(r.try_get::<&str, _>("body")?))
            .collect()
    }

    async fn delete_deployment(
        &self,
        realm: &str,
        environment: &str,
        pipeline: &str,
        major: u32,
        actor: &str,
    ) -> Result<Deployment> {
        let Some(mut deployment) = self
            .get_deployment(realm, environment, pipeline, major)
            .await?
        else {
            return Err(Error::NotFound(format!(
                "deployment of '{pipeline}' v{major} in '{environment}'"
            )));
        };
        let mut tx = self.writes.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "DELETE FROM deployments WHERE realm = ? AND environment = ? AND pipeline = ? AND major = ?",
        )
        .bind(realm)
        .bind(environment)
        .bind(pipeline)
        .bind(i64::from(major))
        .execute(&mut *tx)
        .await?;
        deployment.deployed_at = now_ms();
        deployment.deployed_by = actor.to_owned();
        sqlx::query(
            "INSERT INTO deployment_history (realm, environment, pipeline, action, body) VALUES (?, ?, ?, 'delete', ?)",
        )
        .bind(realm)
        .bind(environment)
        .bind(pipeline)
        .bind(json_text(&deployment)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deployment)
    }

    async fn deployment_history(
        &self,
        realm: &str,
        environment: &str,
        pipeline: &str,
        page: Page,
    ) -> Result<Vec<DeploymentEvent>> {
        let (limit, offset) = limit(page);
        let rows = sqlx::query(
            "SELECT id, action, body FROM deployment_history \
             WHERE realm = ? AND environment = ? AND pipeline = ? ORDER BY id DESC LIMIT ? OFFSET ?",
        )
        .bind(realm)
        .bind(environment)
        .bind(pipeline)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeploymentEvent {
                    id: r.try_get("id")?,
                    action: r.try_get("action")?,
                    deployment: parse(r.try_get::<&str, _>("body")?)?,
                })
            })
            .collect()
    }

    async fn set_global(
        &self,
        realm: &str,
        environment: &str,
        name: &str,
        value: &Value,
    ) -> Result<Global> {
        self.environment_must_exist(realm, environment).await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO globals (realm, environment, name, value, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (realm, environment, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(realm)
        .bind(environment)
        .bind(name)
        .bind(json_text(value)?)
        .bind(now)
        .execute(&self.writes)
        .await?;
        Ok(Global {
            realm: realm.to_owned(),
            environment: environment.to_owned(),
            name: name.to_owned(),
            value: value.clone(),
            updated_at: now,
        })
    }

    async fn list_globals(&self, realm: &str, environment: &str) -> Result<Vec<Global>> {
        let rows =
            sqlx::query("SELECT * FROM globals WHERE realm = ? AND environment = ? ORDER BY name")
                .bind(realm)
                .bind(environment)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Global {
                    realm: r.try_get("realm")?,
                    environment: r.try_get("environment")?,
                    name: r.try_get("name")?,
                    value: parse(r.try_get::<&str, _>("value")?)?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn delete_global(&self, realm: &str, environment: &str, name: &str) -> Result<()> {
        self.delete_in_environment("globals", "global", realm, environment, name)
            .await
    }

    async fn put_account(&self, account: &AccountRecord) -> Result<()> {
        self.environment_must_exist(&account.realm, &account.environment)
            .await?;
        sqlx::query(
            "INSERT INTO accounts (realm, environment, name, kind, sealed, updated_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (realm, environment, name) DO UPDATE SET kind = excluded.kind, sealed = excluded.sealed, updated_at = excluded.updated_at",
        )
        .bind(&account.realm)
        .bind(&account.environment)
        .bind(&account.name)
        .bind(&account.kind)
        .bind(&account.sealed)
        .bind(account.updated_at)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    async fn list_accounts(&self, realm: &str, environment: &str) -> Result<Vec<AccountRecord>> {
        let rows =
            sqlx::query("SELECT * FROM accounts WHERE realm = ? AND environment = ? ORDER BY name")
                .bind(realm)
                .bind(environment)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(AccountRecord {
                    realm: r.try_get("realm")?,
                    environment: r.try_get("environment")?,
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    sealed: r.try_get("sealed")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn delete_account(&self, realm: &str, environment: &str, name: &str) -> Result<()> {
        self.delete_in_environment("accounts", "account", realm, environment, name)
            .await
    }

    async fn create_consumer(&self, consumer: &Consumer) -> Result<()> {
        self.environment_must_exist(&consumer.realm, &consumer.environment)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO consumers (realm, environment, name, body) VALUES (?, ?, ?, ?)",
        )
        .bind(&consumer.realm)
        .bind(&consumer.environment)
        .bind(&consumer.name)
        .bind(json_text(consumer)?)
        .execute(&self.writes)
        .await;
        match inserted {
            Err(e) if unique_violation(&e) => Err(Error::Conflict(format!(
                "consumer '{}' already exists in '{}'",
                consumer.name, consumer.environment
            ))),
            other => other.map(|_| ()).map_err(Error::from),
        }
    }

    async fn update_consumer(&self, consumer: &Consumer) -> Result<()> {
        let done = sqlx::query(
            "UPDATE consumers SET body = ? WHERE realm = ? AND environment = ? AND name = ?",
        )
        .bind(json_text(consumer)?)
        .bind(&consumer.realm)
        .bind(&consumer.environment)
        .bind(&consumer.name)
        .execute(&self.writes)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("consumer '{}'", consumer.name)));
        }
        Ok(())
    }

    async fn get_consumer(
        &self,
        realm: &str,
        environment: &str,
        name: &str,
    ) -> Result<Option<Consumer>> {
        let row = sqlx::query(
            "SELECT body FROM consumers WHERE realm = ? AND environment = ? AND name = ?",
        )
        .bind(realm)
        .bind(environment)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| parse(r.try_get::<&str, _>("body")?))
            .transpose()
    }

    async fn list_consumers(
        &self,
        realm: &str,
        environment: Option<&str>,
        page: Page,
    ) -> Result<Vec<Consumer>> {
        let (limit, offset) = limit(page);
        let rows = sqlx::query(
            "SELECT body FROM consumers WHERE realm = ? AND (? IS NULL OR environment = ?) \
             ORDER BY environment, name LIMIT ? OFFSET ?",
        )
        .bind(realm)
        .bind(environment)
        .bind(environment)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| parse(r.try_get::<&str, _>("body")?))
            .collect()
    }

    async fn delete_consumer(&self, realm: &str, environment: &str, name: &str) -> Result<()> {
        self.delete_in_environment("consumers", "consumer", realm, environment, name)
            .await
    }

    async fn add_api_key(&self, key: &ApiKey) -> Result<()> {
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, realm, environment, consumer, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.realm)
        .bind(&key.environment)
        .bind(&key.consumer)
        .bind(&key.hash)
        .bind(key.created_at)
        .execute(&self.writes)
        .await;
        match inserted {
            Err(e) if foreign_key_violation(&e) => {
                Err(Error::NotFound(format!("consumer '{}'", key.consumer)))
            }
            Err(e) if unique_violation(&e) => Err(Error::Conflict("the key exists".into())),
            other => other.map(|_| ()).map_err(Error::from),
        }
    }

    async fn list_api_keys(
        &self,
        realm: &str,
        environment: &str,
        consumer: &str,
    ) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(
            "SELECT * FROM api_keys WHERE realm = ? AND environment = ? AND consumer = ? ORDER BY created_at",
        )
        .bind(realm)
        .bind(environment)
        .bind(consumer)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_key_of).collect()
    }

    async fn delete_api_key(&self, realm: &str, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_keys WHERE realm = ? AND id = ?")
            .bind(realm)
            .bind(id)
            .execute(&self.writes)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("API key '{id}'")));
        }
        Ok(())
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<(ApiKey, Consumer)>> {
        let row = sqlx::query(
            "SELECT k.*, c.body FROM api_keys k JOIN consumers c \
             ON c.realm = k.realm AND c.environment = k.environment AND c.name = k.consumer \
             WHERE k.hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((api_key_of(&r)?, parse(r.try_get::<&str, _>("body")?)?)))
            .transpose()
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        let inserted = sqlx::query("INSERT INTO users (name, body) VALUES (?, ?)")
            .bind(&user.name)
            .bind(json_text(user)?)
            .execute(&self.writes)
            .await;
        match inserted {
            Err(e) if unique_violation(&e) => Err(Error::Conflict(format!(
                "user '{}' already exists",
                user.name
            ))),
            other => other.map(|_| ()).map_err(Error::from),
        }
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        let done = sqlx::query("UPDATE users SET body = ? WHERE name = ?")
            .bind(json_text(user)?)
            .bind(&user.name)
            .execute(&self.writes)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("user '{}'", user.name)));
        }
        Ok(())
    }

    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT body FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| parse(r.try_get::<&str, _>("body")?))
            .transpose()
    }

    async fn list_users(&self, page: Page) -> Result<Vec<User>> {
        let (limit, offset) = limit(page);
        let rows = sqlx::query("SELECT body FROM users ORDER BY name LIMIT ? OFFSET ?")
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| parse(r.try_get::<&str, _>("body")?))
            .collect()
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(name)
            .execute(&self.writes)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("user '{name}'")));
        }
        Ok(())
    }

    async fn add_token(&self, token: &Token) -> Result<()> {
        let inserted = sqlx::query(
            "INSERT INTO tokens (id, user, hash, description, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(&token.user)
        .bind(&token.hash)
        .bind(&token.description)
        .bind(token.created_at)
        .execute(&self.writes)
        .await;
        match inserted {
            Err(e) if foreign_key_violation(&e) => {
                Err(Error::NotFound(format!("user '{}'", token.user)))
            }
            Err(e) if unique_violation(&e) => Err(Error::Conflict("the token exists".into())),
            other => other.map(|_| ()).map_err(Error::from),
        }
    }

    async fn delete_token(&self, user: &str, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM tokens WHERE user = ? AND id = ?")
            .bind(user)
            .bind(id)
            .execute(&self.writes)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("token '{id}' of user '{user}'")));
        }
        Ok(())
    }

    async fn find_token(&self, hash: &str) -> Result<Option<(Token, User)>> {
        let row = sqlx::query(
            "SELECT t.id, t.user, t.hash, t.description, t.created_at, u.body \
             FROM tokens t JOIN users u ON u.name = t.user WHERE t.hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok((
                Token {
                    id: r.try_get("id")?,
                    user: r.try_get("user")?,
                    hash: r.try_get("hash")?,
                    description: r.try_get("description")?,
                    created_at: r.try_get("created_at")?,
                },
                parse(r.try_get::<&str, _>("body")?)?,
            ))
        })
        .transpose()
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at, actor, realm, action, resource, details) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.realm)
        .bind(&entry.action)
        .bind(&entry.resource)
        .bind(json_text(&entry.details)?)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    async fn list_audit(&self, realm: Option<&str>, page: Page) -> Result<Vec<AuditEntry>> {
        let (limit, offset) = limit(page);
        let rows = sqlx::query(
            "SELECT * FROM audit WHERE (? IS NULL OR realm = ?) ORDER BY id DESC LIMIT ? OFFSET ?",
        )
        .bind(realm)
        .bind(realm)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    realm: r.try_get("realm")?,
                    action: r.try_get("action")?,
                    resource: r.try_get("resource")?,
                    details: parse(r.try_get::<&str, _>("details")?)?,
                })
            })
            .collect()
    }

    async fn insert_executions(&self, records: &[ExecutionRecord]) -> Result<()> {
        let batch = WriteBatch {
            executions: records,
            ..WriteBatch::default()
        };
        write_batch(&mut *self.writes.acquire().await?, &batch).await?;
        Ok(())
    }

    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>> {
        let (limit, offset) = limit(filter.page);
        let text = filter
            .text
            .as_ref()
            .map(|t| format!("%{}%", escape_like(t)));
        let rows = sqlx::query(
            "SELECT key, realm, environment, pipeline, major, minor, status, trigger, started_at, duration_us, \
                    input, output, error FROM executions e \
             WHERE realm = ? \
               AND (? IS NULL OR environment = ?) \
               AND (? IS NULL OR pipeline = ?) \
               AND (? IS NULL OR status = ?) \
               AND (? IS NULL OR key = ?) \
               AND (? IS NULL OR started_at >= ?) \
               AND (? IS NULL OR started_at < ?) \
               AND (? IS NULL OR input LIKE ? ESCAPE '\\' OR output LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\' \
                    OR EXISTS (SELECT 1 FROM execution_logs l WHERE l.key = e.key AND l.message LIKE ? ESCAPE '\\')) \
             ORDER BY started_at DESC, key DESC LIMIT ? OFFSET ?",
        )
        .bind(&filter.realm)
        .bind(&filter.environment)
        .bind(&filter.environment)
        .bind(&filter.pipeline)
        .bind(&filter.pipeline)
        .bind(&filter.status)
        .bind(&filter.status)
        .bind(&filter.key)
        .bind(&filter.key)
        .bind(filter.from)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.to)
        .bind(&text)
        .bind(&text)
        .bind(&text)
        .bind(&text)
        .bind(&text)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| execution_of(r, false)).collect()
    }

    async fn get_execution(&self, realm: &str, key: &str) -> Result<Option<ExecutionRecord>> {
        let Some(row) = sqlx::query("SELECT * FROM executions WHERE realm = ? AND key = ?")
            .bind(realm)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut record = execution_of(&row, true)?;
        let lines = sqlx::query(
            "SELECT at, level, step, message FROM execution_logs WHERE key = ? ORDER BY seq",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        record.logs = lines
            .iter()
            .map(|l| {
                Ok(LogRecord {
                    at: l.try_get("at")?,
                    level: l.try_get("level")?,
                    step: l.try_get("step")?,
                    message: l.try_get("message")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some(record))
    }

    async fn delete_executions_before(&self, environment: &str, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM executions WHERE environment = ? AND started_at < ?")
            .bind(environment)
            .bind(before)
            .execute(&self.writes)
            .await?;
        Ok(done.rows_affected())
    }

    async fn session_get(&self, scope: &Scope, key: &str, now: i64) -> Result<Option<Value>> {
        let row = sqlx::query(
            "SELECT value FROM sessions WHERE realm = ? AND environment = ? AND key = ? \
             AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(&scope.realm)
        .bind(&scope.environment)
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| parse(r.try_get::<&str, _>("value")?))
            .transpose()
    }

    async fn session_put(
        &self,
        scope: &Scope,
        key: &str,
        value: &Value,
        ttl: Option<Duration>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (realm, environment, key, value, expires_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (realm, environment, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(&scope.realm)
        .bind(&scope.environment)
        .bind(key)
        .bind(json_text(value)?)
        .bind(ttl.map(|t| now.saturating_add(ms(t))))
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    async fn session_delete(&self, scope: &Scope, key: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM sessions WHERE realm = ? AND environment = ? AND key = ?")
                .bind(&scope.realm)
                .bind(&scope.environment)
                .bind(key)
                .execute(&self.writes)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn session_lock(
        &self,
        scope: &Scope,
        key: &str,
        owner: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<bool> {
        // One statement, so two callers cannot both take the lock.
        let done = sqlx::query(
            "INSERT INTO session_locks (realm, environment, key, owner, expires_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (realm, environment, key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE session_locks.expires_at <= ? OR session_locks.owner = excluded.owner",
        )
        .bind(&scope.realm)
        .bind(&scope.environment)
        .bind(key)
        .bind(owner)
        .bind(now.saturating_add(ms(ttl)))
        .bind(now)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn session_unlock(&self, scope: &Scope, key: &str, owner: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM session_locks WHERE realm = ? AND environment = ? AND key = ? AND owner = ?",
        )
        .bind(&scope.realm)
        .bind(&scope.environment)
        .bind(key)
        .bind(owner)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn object_execute(&self, scope: &Scope, collection: &str, op: ObjectOp) -> Result<Value> {
        let mut tx = self.writes.begin_with("BEGIN IMMEDIATE").await?;
        let result = objects::execute(&mut tx, scope, collection, op).await?;
        tx.commit().await?;
        Ok(result)
    }

    async fn enqueue_event(
        &self,
        realm: &str,
        environment: &str,
        name: &str,
        payload: &Value,
        targets: &[EventTarget],
        now: i64,
    ) -> Result<Vec<i64>> {
        let text = json_text(payload)?;
        let mut tx = self.writes.begin_with("BEGIN IMMEDIATE").await?;
        let mut ids = Vec::with_capacity(targets.len());
        for target in targets {
            let id = sqlx::query(
                "INSERT INTO event_queue (realm, environment, name, pipeline, major, payload, max_deliveries, next_at, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(realm)
            .bind(environment)
            .bind(name)
            .bind(&target.pipeline)
            .bind(i64::from(target.major))
            .bind(&text)
            .bind(i64::from(target.max_deliveries))
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .last_insert_rowid();
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn enqueue_events(
        &self,
        events: &[NewEvent],
        now: i64,
        claim: Option<Duration>,
    ) -> Result<Vec<QueuedEvent>> {
        let batch = WriteBatch {
            now,
            events,
            claim,
            ..WriteBatch::default()
        };
        write_batch(&mut *self.writes.acquire().await?, &batch).await
    }

    async fn claim_events(
        &self,
        limit: u32,
        now: i64,
        lease: Duration,
    ) -> Result<Vec<QueuedEvent>> {
        // A read first: in WAL mode it never waits for a writer, so an idle
        // queue costs no write lock.
        let due = sqlx::query("SELECT 1 FROM event_queue WHERE dead = 0 AND next_at <= ? LIMIT 1")
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let claim = sqlx::query(
            "UPDATE event_queue SET attempts = attempts + 1, next_at = ?, leased = 1 \
             WHERE id IN (SELECT id FROM event_queue WHERE dead = 0 AND next_at <= ? ORDER BY next_at, id LIMIT ?) \
             RETURNING *",
        )
        .bind(now.saturating_add(ms(lease)))
        .bind(now)
        .bind(i64::from(limit));
        // On the writer's connection when there is one: a claim then waits
        // for the batch being written, not in SQLite's busy handler.
        let rows = match &self.batches {
            Some(connection) => claim.fetch_all(&mut *connection.lock().await).await?,
            None => claim.fetch_all(&self.writes).await?,
        };
        let mut events = rows.iter().map(queued_of).collect::<Result<Vec<_>>>()?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    async fn ack_event(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM event_queue WHERE id = ?")
            .bind(id)
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    async fn ack_events(&self, ids: &[i64]) -> Result<()> {
        let batch = WriteBatch {
            acks: ids,
            ..WriteBatch::default()
        };
        write_batch(&mut *self.writes.acquire().await?, &batch).await?;
        Ok(())
    }

    async fn write(&self, batch: &WriteBatch<'_>) -> Result<Vec<QueuedEvent>> {
        match &self.batches {
            Some(connection) => write_batch(&mut *connection.lock().await, batch).await,
            None => write_batch(&mut *self.writes.acquire().await?, batch).await,
        }
    }

    async fn dead_letter_event(
        &self,
        realm: &str,
        environment: &str,
        name: &str,
        payload: &Value,
        target: &EventTarget,
        attempts: u32,
        error: &Value,
        now: i64,
    ) -> Result<i64> {
        let id = sqlx::query(
            "INSERT INTO event_queue (realm, environment, name, pipeline, major, payload, max_deliveries, attempts, last_error, dead, next_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        )
        .bind(realm)
        .bind(environment)
        .bind(name)
        .bind(&target.pipeline)
        .bind(i64::from(target.major))
        .bind(json_text(payload)?)
        .bind(i64::from(target.max_deliveries))
        .bind(i64::from(attempts))
        .bind(json_text(error)?)
        .bind(now)
        .bind(now)
        .execute(&self.writes)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    async fn renew_event_lease(&self, id: i64, attempts: u32, until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE event_queue SET next_at = ? WHERE id = ? AND attempts = ? AND leased = 1 AND dead = 0",
        )
        .bind(until)
        .bind(id)
        .bind(i64::from(attempts))
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail_event(&self, id: i64, error: &Value, retry_at: Option<i64>) -> Result<()> {
        sqlx::query(
            "UPDATE event_queue SET last_error = ?, dead = ?, leased = 0, next_at = COALESCE(?, next_at) WHERE id = ?",
        )
        .bind(json_text(error)?)
        .bind(i64::from(retry_at.is_none()))
        .bind(retry_at)
        .bind(id)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    async fn list_dead_events(
        &self,
        realm: &str,
        environment: Option<&str>,
        page: Page,
    ) -> Result<Vec<QueuedEvent>> {
        let (limit, offset) = limit(page);
        let rows = sqlx::query(
            "SELECT * FROM event_queue WHERE dead = 1 AND realm = ? AND (? IS NULL OR environment = ?) \
             ORDER BY id DESC LIMIT ? OFFSET ?",
        )
        .bind(realm)
        .bind(environment)
        .bind(environment)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(queued_of).collect()
    }

    async fn release_event_leases(&self, now: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE event_queue SET next_at = ?, leased = 0 WHERE leased = 1 AND dead = 0",
        )
        .bind(now)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected())
    }

    async fn redrive_event(&self, realm: &str, id: i64, now: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE event_queue SET dead = 0, attempts = 0, next_at = ? WHERE realm = ? AND id = ? AND dead = 1",
        )
        .bind(now)
        .bind(realm)
        .bind(id)
        .execute(&self.writes)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("dead letter {id}")));
        }
        Ok(())
    }

    async fn claim_tick(&self, schedule: &str, tick: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO schedule_ticks (schedule, tick) VALUES (?, ?) \
             ON CONFLICT (schedule) DO UPDATE SET tick = excluded.tick WHERE schedule_ticks.tick < excluded.tick",
        )
        .bind(schedule)
        .bind(tick)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn last_tick(&self, schedule: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT tick FROM schedule_ticks WHERE schedule = ?")
            .bind(schedule)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("tick").map_err(Error::from))
            .transpose()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.writes).await?;
        Ok(())
    }
}

fn api_key_of(r: &sqlx::sqlite::SqliteRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: r.try_get("id")?,
        realm: r.try_get("realm")?,
        environment: r.try_get("environment")?,
        consumer: r.try_get("consumer")?,
        hash: r.try_get("hash")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Writes execution records and their log lines inside `tx`. Multi-row
/// statements: one statement per slice of records instead of one per
/// record and log line. Slices come in a few fixed sizes, so the cached
/// prepared statements stay few and small.
async fn insert_executions_in(
    tx: &mut SqliteConnection,
    records: &[ExecutionRecord],
) -> Result<()> {
    // OR IGNORE: a key already written keeps its record (a batch written
    // again writes nothing twice). A statement that cannot abort half-way
    // needs no statement journal, which copied every page the statement
    // touched; OR REPLACE could abort (on a NULL) and needed one.
    static INSERT: LazyLock<Shapes> = LazyLock::new(|| {
        Shapes::values(
            "INSERT OR IGNORE INTO executions (key, realm, environment, pipeline, major, minor, status, \
             trigger, started_at, duration_us, input, output, error, trace) VALUES ",
            14,
            "",
        )
    });
    for chunk in fixed_slices(records) {
        let mut args = SqliteArguments::default();
        args.reserve(chunk.len() * 14, 0);
        for record in chunk {
            let error = record.error.as_ref().map(json_text).transpose()?;
            add(&mut args, &record.key)?;
            add(&mut args, &record.realm)?;
            add(&mut args, &record.environment)?;
            add(&mut args, &record.pipeline)?;
            add(&mut args, i64::from(record.major))?;
            add(&mut args, i64::from(record.minor))?;
            add(&mut args, &record.status)?;
            add(&mut args, &record.trigger)?;
            add(&mut args, record.started_at)?;
            add(
                &mut args,
                i64::try_from(record.duration_us).unwrap_or(i64::MAX),
            )?;
            add(&mut args, &record.input)?;
            add(&mut args, &record.output)?;
            add(&mut args, error)?;
            add(&mut args, &record.trace)?;
        }
        sqlx::query_with(INSERT.sql(chunk.len()), args)
            .execute(&mut *tx)
            .await?;
    }
    static INSERT_LOGS: LazyLock<Shapes> = LazyLock::new(|| {
        Shapes::values(
            "INSERT OR IGNORE INTO execution_logs (key, seq, at, level, step, message) VALUES ",
            6,
            "",
        )
    });
    let lines: Vec<(&str, usize, &LogRecord)> = records
        .iter()
        .flat_map(|r| {
            r.logs
                .iter()
                .enumerate()
                .map(|(seq, l)| (r.key.as_str(), seq, l))
        })
        .collect();
    for lines in fixed_slices(&lines) {
        let mut args = SqliteArguments::default();
        args.reserve(lines.len() * 6, 0);
        for (key, seq, line) in lines {
            add(&mut args, *key)?;
            add(&mut args, i64::try_from(*seq).unwrap_or(i64::MAX))?;
            add(&mut args, line.at)?;
            add(&mut args, &line.level)?;
            add(&mut args, &line.step)?;
            add(&mut args, &line.message)?;
        }
        sqlx::query_with(INSERT_LOGS.sql(lines.len()), args)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// A write batch in one transaction on `connection` (the batch forms of
/// the store are batches with one part).
async fn write_batch(
    connection: &mut SqliteConnection,
    batch: &WriteBatch<'_>,
) -> Result<Vec<QueuedEvent>> {
    let mut tx = sqlx::Connection::begin_with(connection, "BEGIN IMMEDIATE").await?;
    let claimed = enqueue_events_in(&mut tx, batch.events, batch.now, batch.claim).await?;
    ack_events_in(&mut tx, batch.acks).await?;
    insert_executions_in(&mut tx, batch.executions).await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Queues a delivery per event and target inside `tx`; with `claim`, the
/// deliveries stored claimed, in the order of `events` and their targets.
async fn enqueue_events_in(
    tx: &mut SqliteConnection,
    events: &[NewEvent],
    now: i64,
    claim: Option<Duration>,
) -> Result<Vec<QueuedEvent>> {
    let texts = events
        .iter()
        .map(|e| json_text(&e.payload))
        .collect::<Result<Vec<_>>>()?;
    let rows: Vec<(&NewEvent, &str, &EventTarget)> = events
        .iter()
        .zip(&texts)
        .flat_map(|(e, text)| e.targets.iter().map(move |t| (e, text.as_str(), t)))
        .collect();
    let (attempts, leased, next_at) = match claim {
        Some(lease) => (1, 1, now.saturating_add(ms(lease))),
        None => (0, 0, now),
    };
    // OR IGNORE: no row can break a constraint (none is unique, none
    // null), and a statement that cannot abort half-way needs no statement
    // journal — a copy of every page it touches. A row skipped all the same
    // shows in the count, checked below.
    static INSERT: LazyLock<[Shapes; 2]> = LazyLock::new(|| {
        let head = "INSERT OR IGNORE INTO event_queue (realm, environment, name, pipeline, major, payload, \
                    max_deliveries, attempts, leased, next_at, created_at) VALUES ";
        [
            Shapes::values(head, 11, ""),
            Shapes::values(head, 11, " RETURNING id"),
        ]
    });
    let mut claimed = Vec::new();
    for chunk in fixed_slices(&rows) {
        let mut args = SqliteArguments::default();
        args.reserve(chunk.len() * 11, 0);
        for (event, text, target) in chunk {
            add(&mut args, event.realm.as_str())?;
            add(&mut args, event.environment.as_str())?;
            add(&mut args, event.name.as_str())?;
            add(&mut args, target.pipeline.as_str())?;
            add(&mut args, i64::from(target.major))?;
            add(&mut args, *text)?;
            add(&mut args, i64::from(target.max_deliveries))?;
            add(&mut args, attempts)?;
            add(&mut args, leased)?;
            add(&mut args, next_at)?;
            add(&mut args, now)?;
        }
        if claim.is_none() {
            let stored = sqlx::query_with(INSERT[0].sql(chunk.len()), args)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if stored != chunk.len() as u64 {
                return Err(Error::Unavailable(format!(
                    "{} events queued but {stored} stored",
                    chunk.len()
                )));
            }
            continue;
        }
        // Only the ids come back: the rest is in memory already. The rows
        // of one statement get increasing ids in the order of its VALUES
        // (the write lock is held), though RETURNING may list them in any
        // order: sorted, they pair with the chunk's rows.
        let mut ids: Vec<i64> = sqlx::query_scalar_with(INSERT[1].sql(chunk.len()), args)
            .fetch_all(&mut *tx)
            .await?;
        if ids.len() != chunk.len() {
            return Err(Error::Unavailable(format!(
                "{} events queued but {} ids came back",
                chunk.len(),
                ids.len()
            )));
        }
        ids.sort_unstable();
        claimed.extend(
            chunk
                .iter()
                .zip(ids)
                .map(|((event, _, target), id)| QueuedEvent {
                    id,
                    realm: event.realm.clone(),
                    environment: event.environment.clone(),
                    name: event.name.clone(),
                    pipeline: target.pipeline.clone(),
                    major: target.major,
                    payload: event.payload.clone(),
                    attempts: 1,
                    max_deliveries: target.max_deliveries,
                    last_error: None,
                    created_at: now,
                    dead: false,
                }),
        );
    }
    Ok(claimed)
}

/// Deletes acknowledged deliveries inside `tx`.
async fn ack_events_in(tx: &mut SqliteConnection, ids: &[i64]) -> Result<()> {
    static DELETE: LazyLock<Shapes> =
        LazyLock::new(|| Shapes::values("DELETE FROM event_queue WHERE id IN (", 1, ")"));
    for chunk in fixed_slices(ids) {
        let mut args = SqliteArguments::default();
        args.reserve(chunk.len(), 0);
        for id in chunk {
            add(&mut args, *id)?;
        }
        sqlx::query_with(DELETE.sql(chunk.len()), args)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Binds `value` as the next argument.
fn add<'q, T>(args: &mut SqliteArguments<'q>, value: T) -> Result<()>
where
    T: 'q + sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    args.add(value).map_err(|e| sqlx::Error::Encode(e).into())
}

/// The slice sizes of [`fixed_slices`], largest first.
const SLICES: [usize; 4] = [64, 16, 4, 1];

/// A multi-row statement's text for each slice size, written once. Built
/// per batch with sqlx's `QueryBuilder`, every placeholder and separator
/// went through `fmt`: about a third of the writer's instructions per
/// record.
struct Shapes([String; 4]);

impl Shapes {
    /// `head`, then per row `columns` placeholders — in parentheses and
    /// separated by commas when a row has more than one —, then `tail`.
    fn values(head: &str, columns: usize, tail: &str) -> Self {
        let row = if columns == 1 {
            "?".to_owned()
        } else {
            format!("({})", vec!["?"; columns].join(", "))
        };
        Shapes(SLICES.map(|rows| format!("{head}{}{tail}", vec![row.as_str(); rows].join(", "))))
    }

    /// The text for a slice of `rows` (one of [`SLICES`]).
    fn sql(&self, rows: usize) -> &str {
        let at = SLICES
            .iter()
            .position(|s| *s == rows)
            .unwrap_or(SLICES.len() - 1);
        &self.0[at]
    }
}

/// `items` cut into slices of 64, 16, 4 and 1 (largest first): a
/// multi-row statement per slice, and only four statement shapes to prepare
/// and cache — a cached statement per batch size would hold megabytes.
fn fixed_slices<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        let size = SLICES.into_iter().find(|s| *s <= rest.len())?;
        let (head, tail) = rest.split_at(size);
        rest = tail;
        Some(head)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_slices_cover_everything_in_four_sizes() {
        let items: Vec<u32> = (0..150).collect();
        let sizes: Vec<usize> = fixed_slices(&items).map(<[u32]>::len).collect();
        assert_eq!(sizes, [64, 64, 16, 4, 1, 1]);
        let joined: Vec<u32> = fixed_slices(&items).flatten().copied().collect();
        assert_eq!(joined, items);
        assert_eq!(fixed_slices::<u32>(&[]).count(), 0);
    }

    #[test]
    fn shapes_hold_a_placeholder_per_value_of_every_row() {
        let rows = Shapes::values("INSERT INTO t (a, b) VALUES ", 2, " RETURNING id");
        assert_eq!(
            rows.sql(1),
            "INSERT INTO t (a, b) VALUES (?, ?) RETURNING id"
        );
        assert_eq!(
            rows.sql(4),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?), (?, ?) RETURNING id"
        );
        assert_eq!(rows.sql(16).matches("(?, ?)").count(), 16);
        assert_eq!(rows.sql(64).matches('?').count(), 128);
        let list = Shapes::values("DELETE FROM t WHERE id IN (", 1, ")");
        assert_eq!(list.sql(4), "DELETE FROM t WHERE id IN (?, ?, ?, ?)");
    }
}
