//! `rabbitmq`: consumes a queue with manual acknowledgements. The queue is
//! declared durable (and bound to `exchange` when given) unless `declare:
//! false`; the channel's prefetch is the consumer's concurrency. A message
//! is acked after its execution ended well; one that used up its
//! deliveries is rejected to the queue's dead-letter exchange when the
//! trigger names one (`deadLetterExchange`), else kept in Sluice's
//! dead-letter list and then acked.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::Acker;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::{Map, Value, json};
use sluice_connectors::amqp::{parse_url, shown};
use sluice_spec::RabbitmqTrigger;

use crate::{Delivery, Names, Settings, Settle, Source, Subscription, TriggerError};

/// How long connecting and setting up the channel may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn source(
    trigger: &RabbitmqTrigger,
    settings: &Settings,
    names: &Names,
) -> Result<Arc<dyn Source>, TriggerError> {
    let url = settings.required(trigger.url.as_deref(), "url")?;
    let mut uri = parse_url(url).map_err(|e| TriggerError::Config(format!("trigger.url: {e}")))?;
    if let Some(user) = settings.text("username")? {
        uri.authority.userinfo.username = user.to_owned();
    }
    if let Some(password) = settings.text("password")? {
        uri.authority.userinfo.password = password.to_owned();
    }
    let check = |what: &str, value: &str| {
        if value.is_empty() || value.len() > 255 {
            Err(TriggerError::Config(format!(
                "trigger.{what} must be 1 to 255 bytes long"
            )))
        } else {
            Ok(ShortString::from(value))
        }
    };
    let queue = check("queue", &trigger.queue)?;
    let exchange = trigger
        .exchange
        .as_deref()
        .map(|e| check("exchange", e))
        .transpose()?;
    let routing_key = ShortString::from(trigger.routing_key.as_deref().unwrap_or("#"));
    let dead_letter_exchange = trigger
        .dead_letter_exchange
        .as_deref()
        .map(|e| check("deadLetterExchange", e))
        .transpose()?;
    Ok(Arc::new(RabbitmqSource {
        uri,
        queue,
        declare: trigger.declare,
        exchange,
        routing_key,
        dead_letter_exchange,
        tag: ShortString::from(names.deployment.clone()),
    }))
}

struct RabbitmqSource {
    uri: AMQPUri,
    queue: ShortString,
    declare: bool,
    exchange: Option<ShortString>,
    routing_key: ShortString,
    dead_letter_exchange: Option<ShortString>,
    tag: ShortString,
}

impl RabbitmqSource {
    async fn open(
        &self,
        prefetch: usize,
    ) -> Result<(Connection, Channel, lapin::Consumer), String> {
        let properties =
            ConnectionProperties::default().with_connection_name(self.tag.as_str().into());
        let connection = Connection::connect_uri(self.uri.clone(), properties)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| format!("cannot open a channel: {e}"))?;
        let prefetch = u16::try_from(prefetch).unwrap_or(u16::MAX).max(1);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| format!("cannot set the prefetch: {e}"))?;
        if self.declare {
            let mut arguments = FieldTable::default();
            if let Some(dlx) = &self.dead_letter_exchange {
                arguments.insert(
                    "x-dead-letter-exchange".into(),
                    AMQPValue::LongString(dlx.as_str().into()),
                );
            }
            let options = QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            };
            channel
                .queue_declare(self.queue.clone(), options, arguments)
                .await
                .map_err(|e| format!("cannot declare the queue '{}': {e}", self.queue))?;
            if let Some(exchange) = &self.exchange {
                channel
                    .queue_bind(
                        self.queue.clone(),
                        exchange.clone(),
                        self.routing_key.clone(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| {
                        format!(
                            "cannot bind the queue '{}' to the exchange '{exchange}': {e}",
                            self.queue
                        )
                    })?;
            }
        }
        let consumer = channel
            .basic_consume(
                self.queue.clone(),
                self.tag.clone(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| format!("cannot consume the queue '{}': {e}", self.queue))?;
        Ok((connection, channel, consumer))
    }
}

#[async_trait]
impl Source for RabbitmqSource {
    fn describe(&self) -> String {
        format!("rabbitmq queue '{}' at {}", self.queue, shown(&self.uri))
    }

    async fn subscribe(&self, prefetch: usize) -> Result<Box<dyn Subscription>, TriggerError> {
        let (connection, channel, consumer) =
            match tokio::time::timeout(CONNECT_TIMEOUT, self.open(prefetch)).await {
                Ok(Ok(opened)) => opened,
                Ok(Err(e)) => return Err(TriggerError::Connection(e)),
                Err(_) => {
                    return Err(TriggerError::Connection(format!(
                        "no answer within {}s",
                        CONNECT_TIMEOUT.as_secs()
                    )));
                }
            };
        Ok(Box::new(RabbitmqSubscription {
            _connection: connection,
            _channel: channel,
            consumer,
            queue: self.queue.to_string(),
            dead_letters: self.dead_letter_exchange.is_some(),
        }))
    }
}

struct RabbitmqSubscription {
    // Kept open while messages are settled through their ackers.
    _connection: Connection,
    _channel: Channel,
    consumer: lapin::Consumer,
    queue: String,
    dead_letters: bool,
}

#[async_trait]
impl Subscription for RabbitmqSubscription {
    async fn next(&mut self) -> Result<Delivery, TriggerError> {
        let delivery = match self.consumer.next().await {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(TriggerError::Connection(e.to_string())),
            None => {
                return Err(TriggerError::Connection(
                    "the broker ended the consumer".into(),
                ));
            }
        };
        let properties = &delivery.properties;
        let headers: Map<String, Value> = properties
            .headers()
            .as_ref()
            .map(|table| {
                table
                    .inner()
                    .iter()
                    .map(|(k, v)| (k.to_string(), amqp_json(v)))
                    .collect()
            })
            .unwrap_or_default();
        // Quorum queues count earlier deliveries; classic ones only flag them.
        let earlier = headers
            .get("x-delivery-count")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        let attempt = match earlier {
            Some(n) => n.saturating_add(1),
            None if delivery.redelivered => 2,
            None => 1,
        };
        let mut message = Map::new();
        crate::put_body(&mut message, &delivery.data);
        message.insert("headers".into(), Value::Object(headers));
        message.insert("queue".into(), json!(self.queue));
        message.insert("exchange".into(), json!(delivery.exchange.as_str()));
        message.insert("routingKey".into(), json!(delivery.routing_key.as_str()));
        message.insert("redelivered".into(), json!(delivery.redelivered));
        let mut put = |name: &str, value: Option<&ShortString>| {
            if let Some(v) = value {
                message.insert(name.into(), json!(v.as_str()));
            }
        };
        put("contentType", properties.content_type().as_ref());
        put("messageId", properties.message_id().as_ref());
        put("correlationId", properties.correlation_id().as_ref());
        put("replyTo", properties.reply_to().as_ref());
        put("type", properties.kind().as_ref());
        put("appId", properties.app_id().as_ref());
        if let Some(ts) = properties.timestamp() {
            message.insert("timestamp".into(), json!(ts));
        }
        Ok(Delivery {
            message: Value::Object(message),
            attempt,
            redelivered: delivery.redelivered,
            settle: Box::new(RabbitmqSettle {
                acker: delivery.acker,
                dead_letters: self.dead_letters,
            }),
        })
    }
}

struct RabbitmqSettle {
    acker: Acker,
    dead_letters: bool,
}

fn failed(e: &lapin::Error) -> TriggerError {
    TriggerError::Connection(e.to_string())
}

impl RabbitmqSettle {
    /// Hands the message back: to the queue (`requeue`), or to its
    /// dead-letter exchange.
    async fn nack(&self, requeue: bool) -> Result<(), TriggerError> {
        let options = BasicNackOptions {
            requeue,
            ..BasicNackOptions::default()
        };
        self.acker
            .nack(options)
            .await
            .map(drop)
            .map_err(|e| failed(&e))
    }
}

#[async_trait]
impl Settle for RabbitmqSettle {
    async fn ack(self: Box<Self>) -> Result<(), TriggerError> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .map_err(|e| failed(&e))
    }

    async fn release(self: Box<Self>) -> Result<(), TriggerError> {
        self.nack(true).await
    }

    fn dead_letters(&self) -> bool {
        self.dead_letters
    }

    async fn reject(self: Box<Self>) -> Result<(), TriggerError> {
        self.nack(false).await
    }
}

/// An AMQP header value as JSON.
fn amqp_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::DecimalValue(d) => json!(f64::from(d.value) / 10f64.powi(i32::from(d.scale))),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(amqp_json).collect())
        }
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(table) => Value::Object(
            table
                .inner()
                .iter()
                .map(|(k, v)| (k.to_string(), amqp_json(v)))
                .collect(),
        ),
        AMQPValue::ByteArray(bytes) => json!(String::from_utf8_lossy(bytes.as_slice())),
        AMQPValue::Void => Value::Null,
    }
}
