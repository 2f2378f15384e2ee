//! The records the platform keeps. Times are Unix milliseconds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Realm {
    pub name: String,
    pub created_at: i64,
}

/// A stage inside a realm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub realm: String,
    pub name: String,
    pub created_at: i64,
}

/// One immutable saved definition of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineVersion {
    pub realm: String,
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// The parsed, normalised definition.
    pub definition: Value,
    pub archived: bool,
    pub created_at: i64,
    pub created_by: String,
}

/// A pipeline as listed: its newest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSummary {
    pub name: String,
    pub description: Option<String>,
    pub latest_major: u32,
    pub latest_minor: u32,
    pub versions: u32,
    pub updated_at: i64,
}

/// Where a saved definition goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// The next minor of the newest major (1.0 for a new pipeline).
    NextMinor,
    /// `major + 1` of the newest major, minor 0.
    NewMajor,
}

/// The result of saving a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub version: PipelineVersion,
    /// False when the definition equals the newest version of its major.
    pub created: bool,
}

/// A version running in an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub realm: String,
    pub environment: String,
    pub pipeline: String,
    pub major: u32,
    pub minor: u32,
    pub replicas: u32,
    pub concurrency: u32,
    /// Execution time limit in milliseconds (none: the trigger's).
    pub timeout_ms: Option<u64>,
    pub cluster: String,
    pub deployed_at: i64,
    pub deployed_by: String,
}

/// One entry of a deployment's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentEvent {
    pub id: i64,
    /// `deploy`, `rollback`, `promote` or `delete`.
    pub action: String,
    pub deployment: Deployment,
}

/// A named value per realm and environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Global {
    pub realm: String,
    pub environment: String,
    pub name: String,
    pub value: Value,
    pub updated_at: i64,
}

/// A credential; its fields are sealed (encrypted) by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    pub realm: String,
    pub environment: String,
    pub name: String,
    pub kind: String,
    pub sealed: Vec<u8>,
    pub updated_at: i64,
}

/// How many requests a consumer may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub per_ms: u64,
}

/// A caller of the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consumer {
    pub realm: String,
    pub environment: String,
    pub name: String,
    /// The pipelines it may call (`*`: all).
    pub pipelines: Vec<String>,
    pub rate_limit: Option<RateLimit>,
    pub created_at: i64,
}

/// A consumer's API key; only its hash is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// A short public identifier (the key's first characters).
    pub id: String,
    pub realm: String,
    pub environment: String,
    pub consumer: String,
    #[serde(skip)]
    pub hash: String,
    pub created_at: i64,
}

/// A built-in role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Developer,
    Deployer,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Deployer => "deployer",
            Role::Viewer => "viewer",
        }
    }
}

/// A role granted in a realm (`*`: every realm), optionally in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Grant {
    pub realm: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// A person or a machine using the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub name: String,
    pub grants: Vec<Grant>,
    pub created_at: i64,
}

/// An API token; only its hash is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub id: String,
    pub user: String,
    #[serde(skip)]
    pub hash: String,
    pub description: String,
    pub created_at: i64,
}

/// One change made through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub realm: Option<String>,
    /// `create`, `update`, `delete`, `deploy`, …
    pub action: String,
    /// What was changed, as a path (`pipelines/order-intake`).
    pub resource: String,
    pub details: Value,
}

/// One line written by a `log` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    pub at: i64,
    pub level: String,
    pub step: String,
    pub message: String,
}

/// One execution as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    pub key: String,
    pub realm: String,
    pub environment: String,
    pub pipeline: String,
    pub major: u32,
    pub minor: u32,
    /// `ok`, `error`, `timeout` or `rejected`.
    pub status: String,
    /// What started it: `http`, `scheduler`, `event`, `manual`, `call`.
    pub trigger: String,
    pub started_at: i64,
    pub duration_us: u64,
    /// The input message as JSON text, cut past the configured size.
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<Value>,
    /// The per-step trace (kept for failures and sampled successes).
    /// As JSON text: it is written and shown whole, never queried.
    pub trace: Option<String>,
    #[serde(default)]
    pub logs: Vec<LogRecord>,
}

/// A slice of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 50,
            offset: 0,
        }
    }
}

/// Which executions to list; every field narrows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionFilter {
    pub realm: String,
    pub environment: Option<String>,
    pub pipeline: Option<String>,
    pub status: Option<String>,
    pub key: Option<String>,
    /// Text inside the input, the output, the error or a log line.
    pub text: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub page: Page,
}

/// Which deployment an event goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTarget {
    pub pipeline: String,
    pub major: u32,
    pub max_deliveries: u32,
}

/// An event to queue: one delivery per target.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub realm: String,
    pub environment: String,
    pub name: String,
    pub payload: Value,
    pub targets: Vec<EventTarget>,
}

/// Writes that go into the store together, in one transaction
/// (`Store::write`): the server's writer gathers them from every execution.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteBatch<'a> {
    /// When the events are queued.
    pub now: i64,
    pub events: &'a [NewEvent],
    /// Store the events' deliveries claimed for this lease and return them.
    pub claim: Option<std::time::Duration>,
    /// Deliveries that succeeded.
    pub acks: &'a [i64],
    pub executions: &'a [ExecutionRecord],
}

/// One delivery of an event to one subscribed deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedEvent {
    pub id: i64,
    pub realm: String,
    pub environment: String,
    pub name: String,
    pub pipeline: String,
    pub major: u32,
    pub payload: Value,
    /// Deliveries made so far (including the one being made).
    pub attempts: u32,
    pub max_deliveries: u32,
    pub last_error: Option<Value>,
    pub created_at: i64,
    pub dead: bool,
}

/// Where session data and object collections live: one realm and environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub realm: String,
    pub environment: String,
}
