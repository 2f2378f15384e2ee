//! The triggers that consume from a broker or a mailbox: RabbitMQ, NATS
//! (core and JetStream), MQTT, Kafka and IMAP. Each family is a cargo
//! feature and implements [`Source`]: it connects, subscribes and hands
//! out [`Delivery`]s that it knows how to settle. [`consume`] is the one
//! loop every family shares: it runs up to `concurrency` messages at once,
//! acknowledges a message only after its execution ended well, retries
//! failures with backoff, dead-letters a message after `maxDeliveries`
//! (at the broker when it has a dead-letter target, else through the
//! [`Handler`]), and reconnects with backoff when the connection is lost.
//!
//! At-least-once holds because nothing is acknowledged early: a worker
//! that dies mid-message leaves it unacknowledged, and the broker hands
//! it out again (`redelivered`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Map, Value};
use sluice_spec::Trigger;

mod consume;

#[cfg(feature = "email")]
mod email;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "mqtt")]
mod mqtt;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "rabbitmq")]
mod rabbitmq;

pub use consume::{Consumer, Handler, Outcome, consume, reconnect_delay, retry_delay};

/// Why a source could not connect, subscribe or go on.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The trigger's settings cannot work (missing url, unknown account field…).
    #[error("{0}")]
    Config(String),
    /// The broker could not be reached, or the connection was lost.
    #[error("{0}")]
    Connection(String),
}

/// One message, ready to run, and how to settle it with its broker.
pub struct Delivery {
    /// What the pipeline receives: `{body, headers, …broker fields}`.
    pub message: Value,
    /// The delivery count the broker knows of (1 for a first delivery).
    pub attempt: u32,
    /// The broker delivered this message before (to this or another worker).
    pub redelivered: bool,
    pub settle: Box<dyn Settle>,
}

/// How one delivery is acknowledged, handed back or dead-lettered.
#[async_trait]
pub trait Settle: Send {
    /// The execution ended well: the broker forgets the message.
    async fn ack(self: Box<Self>) -> Result<(), TriggerError>;

    /// Gives the message back unprocessed (the deployment stops). The
    /// default does nothing: the broker redelivers what was never acked
    /// once the connection closes.
    async fn release(self: Box<Self>) -> Result<(), TriggerError> {
        Ok(())
    }

    /// Whether [`Settle::retry`] makes the broker redeliver after a delay.
    /// When false, the consumer keeps the message and retries in process.
    fn redelivers(&self) -> bool {
        false
    }

    /// Hands a failed message back, to be delivered again after `delay`.
    async fn retry(self: Box<Self>, delay: Duration) -> Result<(), TriggerError> {
        let _ = delay;
        self.release().await
    }

    /// Whether the broker has a dead-letter target for this message.
    fn dead_letters(&self) -> bool {
        false
    }

    /// Rejects the message to the broker's dead-letter target.
    async fn reject(self: Box<Self>) -> Result<(), TriggerError> {
        self.release().await
    }

    /// How often [`Settle::touch`] must be called while the message is
    /// held, so the broker does not hand it to someone else.
    fn keepalive(&self) -> Option<Duration> {
        None
    }

    /// Tells the broker the message is still being worked on.
    async fn touch(&mut self) {}
}

/// A connected subscription.
#[async_trait]
pub trait Subscription: Send {
    /// The next message. An error means the connection is gone; the
    /// consumer then subscribes again.
    async fn next(&mut self) -> Result<Delivery, TriggerError>;
}

/// Where messages come from.
#[async_trait]
pub trait Source: Send + Sync {
    /// Names the source in logs (never with credentials).
    fn describe(&self) -> String;

    /// Connects and subscribes, letting the broker hand out up to
    /// `prefetch` messages that are not settled yet.
    async fn subscribe(&self, prefetch: usize) -> Result<Box<dyn Subscription>, TriggerError>;
}

/// Names a source uses when the trigger does not give its own: the
/// queue group, durable consumer, client id or consumer group of one
/// deployment.
#[derive(Debug, Clone)]
pub struct Names {
    /// `sluice-<realm>-<environment>-<pipeline>-v<major>`.
    pub deployment: String,
}

impl Names {
    pub fn new(realm: &str, environment: &str, pipeline: &str, major: u32) -> Self {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        Names {
            deployment: format!(
                "sluice-{}-{}-{}-v{major}",
                clean(realm),
                clean(environment),
                clean(pipeline)
            ),
        }
    }
}

/// Whether a trigger consumes from a broker or mailbox (and so needs a
/// [`Source`]).
pub fn is_consumer(trigger: &Trigger) -> bool {
    matches!(
        trigger,
        Trigger::Rabbitmq(_)
            | Trigger::Nats(_)
            | Trigger::Mqtt(_)
            | Trigger::Kafka(_)
            | Trigger::Email(_)
    )
}

/// The account a trigger names, if any.
pub fn account_name(trigger: &Trigger) -> Option<&str> {
    match trigger {
        Trigger::Rabbitmq(t) => t.account.as_deref(),
        Trigger::Nats(t) => t.account.as_deref(),
        Trigger::Mqtt(t) => t.account.as_deref(),
        Trigger::Kafka(t) => t.account.as_deref(),
        Trigger::Email(t) => t.account.as_deref(),
        _ => None,
    }
}

/// The source of a consuming trigger, with its account's fields (already
/// opened) when it names one.
pub fn source(
    trigger: &Trigger,
    account: Option<&Map<String, Value>>,
    names: &Names,
) -> Result<Arc<dyn Source>, TriggerError> {
    let settings = Settings { account };
    match trigger {
        #[cfg(feature = "rabbitmq")]
        Trigger::Rabbitmq(t) => rabbitmq::source(t, &settings, names),
        #[cfg(feature = "nats")]
        Trigger::Nats(t) => nats::source(t, &settings, names),
        #[cfg(feature = "mqtt")]
        Trigger::Mqtt(t) => mqtt::source(t, &settings, names),
        #[cfg(feature = "kafka")]
        Trigger::Kafka(t) => kafka::source(t, &settings, names),
        #[cfg(feature = "email")]
        Trigger::Email(t) => email::source(t, &settings, names),
        other => {
            let _ = (settings, names);
            Err(TriggerError::Config(format!(
                "the '{}' trigger is not built into this binary",
                other.kind()
            )))
        }
    }
}

/// A trigger's account fields, read with errors that name the field.
#[derive(Clone, Copy)]
pub(crate) struct Settings<'a> {
    account: Option<&'a Map<String, Value>>,
}

#[allow(dead_code)]
impl<'a> Settings<'a> {
    /// A text field of the account.
    pub(crate) fn text(&self, field: &str) -> Result<Option<&'a str>, TriggerError> {
        match self.account.and_then(|a| a.get(field)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(TriggerError::Config(format!(
                "the account field '{field}' must be text"
            ))),
        }
    }

    /// The trigger's own value, else the account's field; one of them is needed.
    pub(crate) fn required(
        &self,
        own: Option<&'a str>,
        field: &str,
    ) -> Result<&'a str, TriggerError> {
        match own {
            Some(v) => Ok(v),
            None => self.text(field)?.ok_or_else(|| {
                TriggerError::Config(format!(
                    "trigger.{field} is missing: give it in the pipeline or in the account's '{field}' field"
                ))
            }),
        }
    }
}

/// A message body as the pipeline sees it: JSON when it parses as JSON,
/// text when it is UTF-8, else base64 (and `true`).
pub fn decode_body(bytes: &[u8]) -> (Value, bool) {
    let looks_json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| {
            matches!(
                b,
                b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
            )
        });
    if looks_json && let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        return (value, false);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            true,
        ),
    }
}

/// Puts a decoded body into a message: `body`, and `bodyEncoding:
/// "base64"` when it had to be encoded.
pub fn put_body(message: &mut Map<String, Value>, bytes: &[u8]) {
    let (body, base64) = decode_body(bytes);
    message.insert("body".into(), body);
    if base64 {
        message.insert("bodyEncoding".into(), Value::String("base64".into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_decode_as_json_text_or_base64() {
        assert_eq!(decode_body(br#"{"a":1}"#), (json!({"a": 1}), false));
        assert_eq!(decode_body(b"42"), (json!(42), false));
        assert_eq!(decode_body(b"true story"), (json!("true story"), false));
        assert_eq!(decode_body(b"hello"), (json!("hello"), false));
        assert_eq!(decode_body(&[0xff, 0x00]), (json!("/wA="), true));
    }

    #[test]
    fn names_are_safe_for_every_broker() {
        assert_eq!(
            Names::new("acme", "prod", "orders.in", 2).deployment,
            "sluice-acme-prod-orders_in-v2"
        );
    }
}
