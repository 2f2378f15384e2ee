//! Where the platform keeps its state: realms, pipelines and versions,
//! deployments, globals, sealed accounts, consumers and keys, users and
//! tokens, the audit trail, execution records, session data, object
//! collections and the event queue.
//!
//! Callers see only the [`Store`] trait; [`SqliteStore`] is the embedded
//! implementation. The store never encrypts, hashes or interprets pipeline
//! definitions — it keeps what it is given, scoped by realm in every query.

mod error;
mod model;
mod objects;
mod sqlite;

#[cfg(feature = "contract")]
pub mod contract;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sluice_engine::services::ObjectOp;

pub use error::{Error, Result};
pub use model::*;
pub use sqlite::SqliteStore;

/// The platform's state. Every method that reads or writes realm data
/// takes the realm and touches nothing outside it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Realms and environments.

    /// Creates a realm with the environments `test` and `prod`.
    async fn create_realm(&self, name: &str) -> Result<Realm>;
    async fn get_realm(&self, name: &str) -> Result<Option<Realm>>;
    async fn list_realms(&self, page: Page) -> Result<Vec<Realm>>;
    async fn create_environment(&self, realm: &str, name: &str) -> Result<Environment>;
    async fn list_environments(&self, realm: &str) -> Result<Vec<Environment>>;

    // Pipelines and versions.

    /// Saves a definition as a version; an unchanged definition (equal to
    /// the newest version of the major it would go to) makes none.
    async fn save_version(
        &self,
        realm: &str,
        name: &str,
        definition: &Value,
        mode: SaveMode,
        actor: &str,
    ) -> Result<Saved>;
    async fn list_pipelines(&self, realm: &str, page: Page) -> Result<Vec<PipelineSummary>>;
    async fn list_versions(&self, realm: &str, name: &str) -> Result<Vec<PipelineVersion>>;
    async fn get_version(
        &self,
        realm: &str,
        name: &str,
        major: u32,
        minor: u32,
    ) -> Result<Option<PipelineVersion>>;
    /// The newest version (of `major` when given).
    async fn latest_version(
        &self,
        realm: &str,
        name: &str,
        major: Option<u32>,
    ) -> Result<Option<PipelineVersion>>;
    async fn set_archived(
        &self,
        realm: &str,
        name: &str,
        major: u32,
        minor: u32,
        archived: bool,
    ) -> Result<PipelineVersion>;

    // Deployments.

    /// Creates or replaces the deployment of (realm, environment, pipeline,
    /// major) and records `action` in its history.
    async fn put_deployment(&self, deployment: &Deployment, action: &str) -> Result<i64>;
    async fn get_deployment(
        &self,
        realm: &str,
        environment: &str,
        pipeline: &str,
        major: u32,
    ) -> Result<Option<Deployment>>;
    async fn list_deployments(
        &self,
        realm: &str,
        environment: Option<&str>,
        page: Page,
    ) -> Result<Vec<Deployment>>;
    /// Every deployment of every realm (to start serving them).
    async fn all_deployments(&self) -> Result<Vec<Deployment>>;
    async fn delete_deployment(
        &self,
        realm: &str,
        environment: &str,
        pipeline: &str,
        major: u32,
        actor: &str,
    ) -> Result<Deployment>;
    /// Newest first.
    async fn deployment_history(
        &self,
        realm: &str,
        environment: &str,
        pipeline: &str,
        page: Page,
    ) -> Result<Vec<DeploymentEvent>>;

    // Globals and accounts.

    async fn set_global(
        &self,
        realm: &str,
        environment: &str,
        name: &str,
        value: &Value,
    ) -> Result<Global>;
    async fn list_globals(&self, realm: &str, environment: &str) -> Result<Vec<Global>>;
    async fn delete_global(&self, realm: &str, environment: &str, name: &str) -> Result<()>;
    async fn put_account(&self, account: &AccountRecord) -> Result<()>;
    async fn list_accounts(&self, realm: &str, environment: &str) -> Result<Vec<AccountRecord>>;
    async fn delete_account(&self, realm: &str, environment: &str, name: &str) -> Result<()>;

    // Consumers and keys.

    async fn create_consumer(&self, consumer: &Consumer) -> Result<()>;
    async fn update_consumer(&self, consumer: &Consumer) -> Result<()>;
    async fn get_consumer(
        &self,
        realm: &str,
        environment: &str,
        name: &str,
    ) -> Result<Option<Consumer>>;
    async fn list_consumers(
        &self,
        realm: &str,
        environment: Option<&str>,
        page: Page,
    ) -> Result<Vec<Consumer>>;
    /// Deletes the consumer and its keys.
    async fn delete_consumer(&self, realm: &str, environment: &str, name: &str) -> Result<()>;
    async fn add_api_key(&self, key: &ApiKey) -> Result<()>;
    async fn list_api_keys(
        &self,
        realm: &str,
        environment: &str,
        consumer: &str,
    ) -> Result<Vec<ApiKey>>;
    async fn delete_api_key(&self, realm: &str, id: &str) -> Result<()>;
    /// The key with this hash and its consumer.
    async fn find_api_key(&self, hash: &str) -> Result<Option<(ApiKey, Consumer)>>;

    // Users, tokens, audit.

    async fn create_user(&self, user: &User) -> Result<()>;
    async fn update_user(&self, user: &User) -> Result<()>;
    async fn get_user(&self, name: &str) -> Result<Option<User>>;
    async fn list_users(&self, page: Page) -> Result<Vec<User>>;
    async fn delete_user(&self, name: &str) -> Result<()>;
    async fn add_token(&self, token: &Token) -> Result<()>;
    async fn delete_token(&self, user: &str, id: &str) -> Result<()>;
    /// The token with this hash and its user.
    async fn find_token(&self, hash: &str) -> Result<Option<(Token, User)>>;
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// Newest first; `realm: None` lists platform-wide entries too.
    async fn list_audit(&self, realm: Option<&str>, page: Page) -> Result<Vec<AuditEntry>>;

    // Executions.

    /// Writes records (with their log lines) in one transaction; a key
    /// written already keeps its first record (writing a batch again
    /// writes nothing twice).
    async fn insert_executions(&self, records: &[ExecutionRecord]) -> Result<()>;
    /// Newest first, without traces and log lines.
    async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionRecord>>;
    async fn get_execution(&self, realm: &str, key: &str) -> Result<Option<ExecutionRecord>>;
    /// Deletes executions of `environment` (every realm) started before `before`; how many.
    async fn delete_executions_before(&self, environment: &str, before: i64) -> Result<u64>;

    // Sessions and objects, per realm and environment.

    async fn session_get(&self, scope: &Scope, key: &str, now: i64) -> Result<Option<Value>>;
    async fn session_put(
        &self,
        scope: &Scope,
        key: &str,
        value: &Value,
        ttl: Option<Duration>,
        now: i64,
    ) -> Result<()>;
    async fn session_delete(&self, scope: &Scope, key: &str) -> Result<bool>;
    async fn session_lock(
        &self,
        scope: &Scope,
        key: &str,
        owner: &str,
        ttl: Duration,
        now: i64,
    ) -> Result<bool>;
    async fn session_unlock(&self, scope: &Scope, key: &str, owner: &str) -> Result<bool>;
    /// Runs an `object-store` operation; results as the step documents them.
    async fn object_execute(&self, scope: &Scope, collection: &str, op: ObjectOp) -> Result<Value>;

    // The event queue.

    /// Queues one delivery of `payload` per target; the ids.
    async fn enqueue_event(
        &self,
        realm: &str,
        environment: &str,
        name: &str,
        payload: &Value,
        targets: &[EventTarget],
        now: i64,
    ) -> Result<Vec<i64>>;
    /// Queues many events in one transaction: a delivery per event and
    /// target. With `claim`, the deliveries are stored already claimed for
    /// that lease (their first attempt counted) and come back for the
    /// caller to deliver itself; without, they wait for `claim_events` and
    /// none come back.
    async fn enqueue_events(
        &self,
        events: &[NewEvent],
        now: i64,
        claim: Option<Duration>,
    ) -> Result<Vec<QueuedEvent>>;
    /// Takes up to `limit` deliveries due at `now`, hiding each for `lease`
    /// (a crashed worker's deliveries come back after it) and counting the attempt.
    async fn claim_events(&self, limit: u32, now: i64, lease: Duration)
    -> Result<Vec<QueuedEvent>>;
    /// The delivery succeeded: forget it.
    async fn ack_event(&self, id: i64) -> Result<()>;
    /// These deliveries succeeded: forget them, in one transaction.
    async fn ack_events(&self, ids: &[i64]) -> Result<()>;
    /// Queues `batch.events` (as `enqueue_events`), acknowledges
    /// `batch.acks` (as `ack_events`) and writes `batch.executions` (as
    /// `insert_executions`) in one transaction: all of it or none. The
    /// deliveries claimed, when `batch.claim` is set.
    async fn write(&self, batch: &WriteBatch<'_>) -> Result<Vec<QueuedEvent>>;
    /// Extends to `until` the lease of a delivery claimed for its
    /// `attempts`-th attempt; `false` when it is no longer held so (its
    /// lease ran out and it was claimed again, or it is gone).
    async fn renew_event_lease(&self, id: i64, attempts: u32, until: i64) -> Result<bool>;
    /// The delivery failed: try again at `retry_at`, or move it to the
    /// dead letters when `retry_at` is `None`.
    async fn fail_event(&self, id: i64, error: &Value, retry_at: Option<i64>) -> Result<()>;
    async fn list_dead_events(
        &self,
        realm: &str,
        environment: Option<&str>,
        page: Page,
    ) -> Result<Vec<QueuedEvent>>;
    /// Makes every claimed delivery due at `now` (their worker is gone).
    /// Only for a process that is the queue's one consumer, at its start.
    async fn release_event_leases(&self, now: i64) -> Result<u64>;
    /// Keeps a message that used up its deliveries elsewhere (a broker
    /// trigger's) as a dead letter of `target`; a redrive runs it through
    /// the queue like an event. The id.
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<i64>;
    /// Puts a dead letter back in the queue with its attempts reset.
    async fn redrive_event(&self, realm: &str, id: i64, now: i64) -> Result<()>;

    // Scheduler bookkeeping.

    /// Records a firing of `schedule` at `tick` unless that tick (or a
    /// later one) is recorded already; true when this caller claimed it.
    async fn claim_tick(&self, schedule: &str, tick: i64) -> Result<bool>;
    async fn last_tick(&self, schedule: &str) -> Result<Option<i64>>;

    /// Whether the store answers.
    async fn ping(&self) -> Result<()>;
}
