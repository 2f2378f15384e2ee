//! The typed envelope of a pipeline file. Step bodies stay raw JSON here;
//! the engine reads each one with the config type its step kind declares.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{
    ByteSize, EmailTrigger, HumanDuration, KafkaTrigger, MqttTrigger, NatsTrigger, RabbitmqTrigger,
};

/// A pipeline: a trigger and the steps that run for each of its events.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "Sluice pipeline")]
pub struct PipelineDef {
    /// The pipeline's name, unique in its realm.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,62}$"))]
    pub name: String,
    /// What the pipeline is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What starts an execution (default: `manual`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// Dotted field paths whose values are masked as `***` in logs, traces and stored payloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_fields: Vec<String>,
    /// The steps, run in order on the message.
    pub steps: Vec<StepDef>,
    /// Steps run when an error reaches the pipeline; `{{ error }}` holds it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_exception: Vec<StepDef>,
    /// Test cases run by `sluice test`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestCase>,
}

/// What starts an execution.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Trigger {
    /// An HTTP call through the gateway.
    Http(HttpTrigger),
    /// A cron schedule.
    Scheduler(SchedulerTrigger),
    /// An event published by a `publish` step.
    Event(EventTrigger),
    /// Started by hand (CLI or API).
    Manual(ManualTrigger),
    /// Messages of a RabbitMQ queue.
    Rabbitmq(RabbitmqTrigger),
    /// Messages of a NATS subject or JetStream stream.
    Nats(NatsTrigger),
    /// Messages of an MQTT topic filter.
    Mqtt(MqttTrigger),
    /// Records of Kafka topics.
    Kafka(KafkaTrigger),
    /// Unseen mail of an IMAP mailbox.
    Email(EmailTrigger),
}

impl Trigger {
    /// The trigger's type as pipeline files spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Http(_) => "http",
            Trigger::Scheduler(_) => "scheduler",
            Trigger::Event(_) => "event",
            Trigger::Manual(_) => "manual",
            Trigger::Rabbitmq(_) => "rabbitmq",
            Trigger::Nats(_) => "nats",
            Trigger::Mqtt(_) => "mqtt",
            Trigger::Kafka(_) => "kafka",
            Trigger::Email(_) => "email",
        }
    }

    /// The execution timeout the trigger sets, if any.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        let t = match self {
            Trigger::Http(t) => t.timeout,
            Trigger::Rabbitmq(t) => t.timeout,
            Trigger::Nats(t) => t.timeout,
            Trigger::Mqtt(t) => t.timeout,
            Trigger::Kafka(t) => t.timeout,
            Trigger::Email(t) => t.timeout,
            Trigger::Scheduler(_) | Trigger::Event(_) | Trigger::Manual(_) => None,
        };
        t.map(|t| t.0)
    }

    /// Deliveries before a message is dead-lettered, for the triggers
    /// that retry (default 5).
    pub fn max_deliveries(&self) -> u32 {
        let n = match self {
            Trigger::Event(t) => t.max_deliveries,
            Trigger::Rabbitmq(t) => t.max_deliveries,
            Trigger::Nats(t) => t.max_deliveries,
            Trigger::Mqtt(t) => t.max_deliveries,
            Trigger::Kafka(t) => t.max_deliveries,
            Trigger::Email(t) => t.max_deliveries,
            Trigger::Http(_) | Trigger::Scheduler(_) | Trigger::Manual(_) => None,
        };
        n.unwrap_or(5).max(1)
    }
}

/// How HTTP callers are authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HttpAuth {
    None,
    #[default]
    Apikey,
    Basic,
}

/// The `http` trigger.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpTrigger {
    /// Accepted methods (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<HttpMethod>,
    /// Extra routes under the pipeline URL; `:name` segments go to `message.params`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// Execution timeout (default 30s, at most 900s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Largest accepted request body (413 above it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<ByteSize>,
    /// Consumer authentication (default apikey).
    #[serde(default)]
    pub auth: HttpAuth,
    /// How a non-JSON, non-text body reaches `message.body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_encoding: Option<BodyEncoding>,
    /// Allowed CORS origins (`*` for any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cors: Vec<String>,
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl HttpMethod {
    /// The method as HTTP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
        }
    }
}

/// How a binary request body is handed to the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    Text,
    Base64,
}

/// The `scheduler` trigger.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SchedulerTrigger {
    /// Cron expression with seconds: `sec min hour day-of-month month day-of-week`.
    pub cron: String,
    /// IANA time zone of the schedule (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// When false, a firing is skipped while the previous one still runs.
    #[serde(default = "yes")]
    pub concurrent: bool,
}

fn yes() -> bool {
    true
}

/// The `event` trigger.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventTrigger {
    /// The event name this pipeline subscribes to.
    pub name: String,
    /// Deliveries before a message goes to the dead-letter list (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
}

/// The `manual` trigger.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualTrigger {}

/// A test case: an input, mocked step outputs and the expected result.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestCase {
    /// What the case shows.
    pub name: String,
    /// The trigger message (default `{}`).
    #[serde(default)]
    pub input: Value,
    /// Step id → its output instead of running it. `{"$error": {...}}` makes the step fail;
    /// `{"$sequence": [...]}` gives successive calls successive entries (the last repeats).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub mocks: Map<String, Value>,
    /// Globals for this case.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub globals: Map<String, Value>,
    /// Accounts for this case (test credentials: name → fields).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub accounts: Map<String, Value>,
    /// Subset of the output (or of `{status, headers, body}` when a `response` step ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Value>,
    /// Subset of the error object the execution must end with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_error: Option<Value>,
    /// Log lines (substrings) that must have been written, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_logs: Vec<String>,
}

/// The fields every step accepts; the engine applies them around every step.
pub const COMMON_STEP_FIELDS: &[&str] = &[
    "type",
    "id",
    "name",
    "description",
    "if",
    "into",
    "timeout",
    "failOnError",
];

/// The common fields of a step, typed.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StepCommon {
    /// Unique id: names the step in traces and mocks and makes its output `{{ steps.<id> }}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_-]*$"))]
    pub id: Option<String>,
    /// A label for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the step is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Run the step only when this expression is true.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Write the step's output at this dotted path of the message instead of replacing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
    /// Fail the step with a `timeout` error past this duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// When false, an error becomes the output `{"success": false, "error": {...}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on_error: Option<bool>,
}

/// One step as written: its `type` and its other fields, still raw.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDef {
    pub fields: Map<String, Value>,
}

impl StepDef {
    /// The step type, when the `type` field is a string.
    pub fn kind(&self) -> Option<&str> {
        self.fields.get("type").and_then(Value::as_str)
    }

    /// The common fields as a JSON object.
    pub fn common_fields(&self) -> Map<String, Value> {
        self.fields
            .iter()
            .filter(|(k, _)| COMMON_STEP_FIELDS.contains(&k.as_str()) && *k != "type")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The step's own fields (everything but the common ones) as a JSON object.
    pub fn config_fields(&self) -> Map<String, Value> {
        self.fields
            .iter()
            .filter(|(k, _)| !COMMON_STEP_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl<'de> Deserialize<'de> for StepDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = Map::deserialize(deserializer)?;
        Ok(StepDef { fields })
    }
}

impl Serialize for StepDef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(serializer)
    }
}

impl JsonSchema for StepDef {
    fn schema_name() -> Cow<'static, str> {
        "Step".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // The real definition is assembled from the step kinds by `pipeline_schema`.
        json_schema!({"$ref": "#/$defs/Step"})
    }

    fn inline_schema() -> bool {
        true
    }
}
