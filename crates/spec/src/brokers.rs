//! The triggers that consume from a broker or a mailbox. Each one runs the
//! pipeline for every message, acknowledges only after the execution ended
//! well, retries failures with backoff and dead-letters a message after
//! `maxDeliveries`. Connection settings come from an account (url,
//! username, password, …); a `url` without credentials may be written in
//! the pipeline itself.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::HumanDuration;

/// The `rabbitmq` trigger: consumes a queue.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RabbitmqTrigger {
    /// `amqp://host:5672/vhost` (or `amqps://`); credentials belong in the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An account with `url` (and optionally `username`, `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The queue to consume.
    pub queue: String,
    /// Declare the queue (durable) when it does not exist (default true).
    #[serde(default = "yes")]
    pub declare: bool,
    /// Bind the queue to this exchange (with `routingKey`) after declaring it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    /// The binding key for `exchange` (default `#`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// The queue's dead-letter exchange: messages that used up their
    /// deliveries are rejected to it (broker-native). Without it they go
    /// to Sluice's dead-letter list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_exchange: Option<String>,
    /// Deliveries before a message is dead-lettered (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// Execution timeout (default 30s, at most 900s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// The `nats` trigger: a core NATS subscription in a queue group, or a
/// JetStream durable consumer when `stream` is set.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NatsTrigger {
    /// `nats://host:4222`; credentials belong in the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An account with `url` and optionally `username`/`password` or `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The subject (wildcards allowed).
    pub subject: String,
    /// Core NATS queue group (default: one per deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// JetStream stream to consume (at-least-once); without it, core NATS (at-most-once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Durable consumer name (default: one per deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable: Option<String>,
    /// JetStream: how long a delivered message may go unacknowledged before
    /// it is handed out again (default 30s; Sluice reports progress while
    /// it runs, so only a dead worker's messages wait this long).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_wait: Option<HumanDuration>,
    /// Deliveries before a message is dead-lettered (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// Execution timeout (default 30s, at most 900s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// The `mqtt` trigger: a persistent-session subscription.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MqttTrigger {
    /// `mqtt://host:1883`; credentials belong in the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An account with `url` and optionally `username`, `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The topic filter (`+` and `#` allowed).
    pub topic: String,
    /// 1 (default: at-least-once) or 0 (at-most-once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<u8>,
    /// The client id of the persistent session (default: one per deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Deliveries before a message is dead-lettered (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// Execution timeout (default 30s, at most 900s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// The `kafka` trigger: a consumer group on one or more topics.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KafkaTrigger {
    /// Bootstrap servers, `host:port[,host:port…]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    /// An account with `brokers` and optionally `username`, `password`, `mechanism` (SASL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The topics to consume.
    pub topics: Vec<String>,
    /// The consumer group (default: one per deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Where a new group starts: `earliest` (default) or `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_from: Option<KafkaStart>,
    /// Deliveries before a message is dead-lettered (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// Execution timeout (default 30s, at most 900s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// Where a new Kafka consumer group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KafkaStart {
    Earliest,
    Latest,
}

/// The `email` trigger: polls an IMAP mailbox for unseen messages.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmailTrigger {
    /// `imaps://host:993` (TLS) or `imap://host:143`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An account with `url`, `username` and `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The mailbox to read (default `INBOX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// Time between polls (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<HumanDuration>,
    /// What happens to a message once its execution ended well: marked read (default) or moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<EmailAfter>,
    /// The mailbox messages are moved to with `after: move`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<String>,
    /// Deliveries before a message is dead-lettered (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// Execution timeout (default 30s, at most 900s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// What the email trigger does with a handled message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EmailAfter {
    MarkRead,
    Move,
}

fn yes() -> bool {
    true
}
