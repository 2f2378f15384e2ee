//! `nats`: a core NATS subscription in a queue group (at-most-once, as
//! core NATS is), or a JetStream durable pull consumer when `stream` is
//! set (at-least-once). JetStream messages are acked after their
//! execution ended well; a failure is handed back with a delayed NAK (the
//! server redelivers after the backoff and counts the deliveries); while
//! an execution runs, progress is reported so the server does not hand
//! the message to another worker; a message that used up its deliveries
//! is kept in Sluice's dead-letter list and then acked.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::message::{AckKind, Acker};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use sluice_spec::NatsTrigger;

use crate::{Delivery, Names, Settings, Settle, Source, Subscription, TriggerError};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The JetStream ack wait when the trigger gives none.
const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

pub(crate) fn source(
    trigger: &NatsTrigger,
    settings: &Settings,
    names: &Names,
) -> Result<Arc<dyn Source>, TriggerError> {
    let url = settings.required(trigger.url.as_deref(), "url")?.trim();
    if !url.split(',').all(|u| {
        let u = u.trim();
        u.starts_with("nats://") || u.starts_with("tls://") || !u.contains("://")
    }) {
        return Err(TriggerError::Config(format!(
            "trigger.url: '{url}' is not a NATS URL (nats://host:4222)"
        )));
    }
    if url.contains('@') {
        return Err(TriggerError::Config(
            "trigger.url must not hold credentials: put username/password or token in the account"
                .into(),
        ));
    }
    let subject = trigger.subject.trim();
    if subject.is_empty() || subject.contains(char::is_whitespace) {
        return Err(TriggerError::Config(format!(
            "trigger.subject: '{}' is not a NATS subject",
            trigger.subject
        )));
    }
    let login = match (
        settings.text("token")?,
        settings.text("username")?,
        settings.text("password")?,
    ) {
        (Some(token), _, _) => Login::Token(token.to_owned()),
        (None, Some(user), Some(password)) => Login::User(user.to_owned(), password.to_owned()),
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(TriggerError::Config(
                "the account needs both 'username' and 'password'".into(),
            ));
        }
        (None, None, None) => Login::None,
    };
    let ack_wait = trigger.ack_wait.map_or(DEFAULT_ACK_WAIT, |d| d.0);
    if ack_wait < Duration::from_millis(300) {
        return Err(TriggerError::Config(
            "trigger.ackWait must be at least 300ms".into(),
        ));
    }
    Ok(Arc::new(NatsSource {
        url: url.to_owned(),
        login,
        subject: subject.to_owned(),
        queue: trigger
            .queue
            .clone()
            .unwrap_or_else(|| names.deployment.clone()),
        stream: trigger.stream.clone(),
        durable: trigger
            .durable
            .clone()
            .unwrap_or_else(|| names.deployment.clone()),
        ack_wait,
    }))
}

enum Login {
    None,
    Token(String),
    User(String, String),
}

struct NatsSource {
    url: String,
    login: Login,
    subject: String,
    queue: String,
    stream: Option<String>,
    durable: String,
    ack_wait: Duration,
}

impl NatsSource {
    async fn connect(&self) -> Result<async_nats::Client, TriggerError> {
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .name(&self.durable);
        let options = match &self.login {
            Login::None => options,
            Login::Token(token) => options.token(token.clone()),
            Login::User(user, password) => {
                options.user_and_password(user.clone(), password.clone())
            }
        };
        options
            .connect(self.url.as_str())
            .await
            .map_err(|e| TriggerError::Connection(format!("cannot connect: {e}")))
    }
}

#[async_trait]
impl Source for NatsSource {
    fn describe(&self) -> String {
        match &self.stream {
            Some(stream) => format!(
                "nats stream '{stream}' subject '{}' (consumer '{}') at {}",
                self.subject, self.durable, self.url
            ),
            None => format!(
                "nats subject '{}' (queue group '{}') at {}",
                self.subject, self.queue, self.url
            ),
        }
    }

    async fn subscribe(&self, prefetch: usize) -> Result<Box<dyn Subscription>, TriggerError> {
        let client = self.connect().await?;
        let Some(stream_name) = &self.stream else {
            let subscriber = client
                .queue_subscribe(self.subject.clone(), self.queue.clone())
                .await
                .map_err(|e| TriggerError::Connection(format!("cannot subscribe: {e}")))?;
            return Ok(Box::new(CoreSubscription {
                _client: client,
                subscriber,
            }));
        };
        let jetstream = async_nats::jetstream::new(client.clone());
        let stream = jetstream.get_stream(stream_name).await.map_err(|e| {
            TriggerError::Connection(format!("cannot open the stream '{stream_name}': {e}"))
        })?;
        let config = pull::Config {
            durable_name: Some(self.durable.clone()),
            filter_subject: self.subject.clone(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            // Deliveries are counted here, against the trigger's maxDeliveries.
            max_deliver: -1,
            max_ack_pending: i64::try_from(prefetch).unwrap_or(i64::MAX).max(1),
            ..pull::Config::default()
        };
        let consumer = stream
            .get_or_create_consumer(&self.durable, config)
            .await
            .map_err(|e| {
                TriggerError::Connection(format!(
                    "cannot open the consumer '{}' on '{stream_name}': {e}",
                    self.durable
                ))
            })?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(prefetch.max(1))
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| TriggerError::Connection(format!("cannot pull messages: {e}")))?;
        Ok(Box::new(JetStreamSubscription {
            _client: client,
            messages,
            keepalive: self.ack_wait / 3,
        }))
    }
}

/// The message fields both kinds share.
fn message_fields(message: &async_nats::Message) -> Map<String, Value> {
    let mut out = Map::new();
    crate::put_body(&mut out, &message.payload);
    let mut headers = Map::new();
    if let Some(h) = &message.headers {
        for (name, values) in h.iter() {
            let joined: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
            headers.insert(name.to_string(), Value::String(joined.join(", ")));
        }
    }
    out.insert("headers".into(), Value::Object(headers));
    out.insert("subject".into(), json!(message.subject.as_str()));
    out
}

struct CoreSubscription {
    _client: async_nats::Client,
    subscriber: async_nats::Subscriber,
}

#[async_trait]
impl Subscription for CoreSubscription {
    async fn next(&mut self) -> Result<Delivery, TriggerError> {
        let Some(message) = self.subscriber.next().await else {
            return Err(TriggerError::Connection(
                "the subscription was closed".into(),
            ));
        };
        let mut fields = message_fields(&message);
        if let Some(reply) = &message.reply {
            fields.insert("replyTo".into(), json!(reply.as_str()));
        }
        Ok(Delivery {
            message: Value::Object(fields),
            attempt: 1,
            redelivered: false,
            settle: Box::new(CoreSettle),
        })
    }
}

/// Core NATS has no acknowledgements.
struct CoreSettle;

#[async_trait]
impl Settle for CoreSettle {
    async fn ack(self: Box<Self>) -> Result<(), TriggerError> {
        Ok(())
    }
}

struct JetStreamSubscription {
    _client: async_nats::Client,
    messages: pull::Stream,
    keepalive: Duration,
}

#[async_trait]
impl Subscription for JetStreamSubscription {
    async fn next(&mut self) -> Result<Delivery, TriggerError> {
        let message = match self.messages.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(TriggerError::Connection(e.to_string())),
            None => {
                return Err(TriggerError::Connection(
                    "the consumer's message stream ended".into(),
                ));
            }
        };
        let (attempt, info) = match message.info() {
            Ok(info) => (
                u32::try_from(info.delivered.max(1)).unwrap_or(u32::MAX),
                Some((
                    info.stream.to_owned(),
                    info.stream_sequence,
                    info.published.to_string(),
                )),
            ),
            Err(_) => (1, None),
        };
        let (message, acker) = message.split();
        let mut fields = message_fields(&message);
        if let Some((stream, sequence, published)) = info {
            fields.insert("stream".into(), json!(stream));
            fields.insert("sequence".into(), json!(sequence));
            fields.insert("published".into(), json!(published));
        }
        Ok(Delivery {
            message: Value::Object(fields),
            attempt,
            redelivered: attempt > 1,
            settle: Box::new(JetStreamSettle {
                acker,
                keepalive: self.keepalive,
            }),
        })
    }
}

struct JetStreamSettle {
    acker: Acker,
    keepalive: Duration,
}

fn failed(e: impl std::fmt::Display) -> TriggerError {
    TriggerError::Connection(e.to_string())
}

#[async_trait]
impl Settle for JetStreamSettle {
    async fn ack(self: Box<Self>) -> Result<(), TriggerError> {
        self.acker.ack().await.map_err(failed)
    }

    async fn release(self: Box<Self>) -> Result<(), TriggerError> {
        self.acker
            .ack_with(AckKind::Nak(None))
            .await
            .map_err(failed)
    }

    fn redelivers(&self) -> bool {
        true
    }

    async fn retry(self: Box<Self>, delay: Duration) -> Result<(), TriggerError> {
        self.acker
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(failed)
    }

    fn keepalive(&self) -> Option<Duration> {
        Some(self.keepalive)
    }

    async fn touch(&mut self) {
        if let Err(e) = self.acker.ack_with(AckKind::Progress).await {
            tracing::debug!(error = %e, "a progress report did not reach NATS");
        }
    }
}
