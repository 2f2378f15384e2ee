//! `mqtt`: subscribes to a topic filter (MQTT 3.1.1, plain TCP).
//!
//! With QoS 1 (the default) the session is persistent (`clean_session`
//! false, one client id per deployment) and acknowledgements are manual:
//! a PUBACK is sent only from [`Settle::ack`], after the execution ended
//! well. A message that is not acknowledged when the connection goes (a
//! worker that dies, a broker that restarts) stays in the session, and
//! the broker sends it again, flagged DUP, when the client id reconnects.
//! With QoS 0 the session is a clean one and nothing is acknowledged:
//! at most once.
//!
//! rumqttc's `EventLoop` must be polled for anything to move (PUBACKs and
//! pings included), so one task per subscription polls it without ever
//! waiting on the consumer and forwards each PUBLISH to
//! [`Subscription::next`]. The task ends on the first connection error
//! (`next` then fails and the shared loop subscribes again, with backoff:
//! a new connection, a new SUBSCRIBE) or when the subscription is dropped.
//!
//! MQTT has no dead-letter target: the shared loop keeps messages that
//! used up their deliveries in Sluice's dead-letter list, then acks them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS, SubscribeReasonCode,
};
use serde_json::{Map, Value};
use sluice_connectors::mqtt_url::parse_url;
use sluice_spec::MqttTrigger;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::{Delivery, Names, Settings, Settle, Source, Subscription, TriggerError, put_body};

/// How long connecting and subscribing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an acknowledgement may wait to be written to the connection.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Pings keep the session's connection alive; a broker that stops
/// answering is noticed within about two of these.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// The largest MQTT packet (the limit of the remaining length, plus the
/// fixed header). Anything smaller would make a larger message break the
/// connection at every redelivery.
const MAX_PACKET: usize = 268_435_455 + 5;

pub(crate) fn source(
    trigger: &MqttTrigger,
    settings: &Settings,
    names: &Names,
) -> Result<Arc<dyn Source>, TriggerError> {
    let url = settings.required(trigger.url.as_deref(), "url")?.trim();
    let field = if trigger.url.is_some() {
        "trigger.url"
    } else {
        "the account field 'url'"
    };
    let (host, port) = server(url, field)?;
    let login = match (settings.text("username")?, settings.text("password")?) {
        (Some(user), password) => Some((user.to_owned(), password.unwrap_or_default().to_owned())),
        (None, Some(_)) => {
            return Err(TriggerError::Config(
                "the account has a password but no username".into(),
            ));
        }
        (None, None) => None,
    };
    let qos = match trigger.qos.unwrap_or(1) {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => {
            return Err(TriggerError::Config(
                "trigger.qos: QoS 2 (exactly once) is not supported; use 1 (at least once) or 0 (at most once)".into(),
            ));
        }
        other => {
            return Err(TriggerError::Config(format!(
                "trigger.qos is 0 or 1, not {other}"
            )));
        }
    };
    check_filter(&trigger.topic)?;
    let client_id = match trigger.client_id.as_deref() {
        Some("") => {
            return Err(TriggerError::Config(
                "trigger.clientId is empty; leave it out to use one per deployment".into(),
            ));
        }
        Some(id) if id.len() > usize::from(u16::MAX) => {
            return Err(TriggerError::Config(
                "trigger.clientId is longer than 65535 bytes".into(),
            ));
        }
        Some(id) => id.to_owned(),
        None => names.deployment.clone(),
    };
    Ok(Arc::new(MqttSource {
        url: url.to_owned(),
        host,
        port,
        login,
        topic: trigger.topic.clone(),
        qos,
        client_id,
    }))
}

/// Host and port of `mqtt://host:port`, with errors that name `field`
/// and never show credentials.
fn server(url: &str, field: &str) -> Result<(String, u16), TriggerError> {
    let config = |why: String| TriggerError::Config(format!("{field}: {why}"));
    if let Some((scheme, rest)) = url.split_once("://") {
        if matches!(
            scheme.to_ascii_lowercase().as_str(),
            "mqtts" | "ssl" | "tls" | "wss"
        ) {
            return Err(config(
                "TLS is not supported yet by the mqtt trigger; use mqtt:// (plain TCP)".into(),
            ));
        }
        if rest.contains('@') {
            return Err(config(
                "the URL holds credentials; give the username and password through an account"
                    .into(),
            ));
        }
    }
    parse_url(url).map_err(|e| config(e.message))
}

/// A topic filter the broker can accept: `+` and `#` only as whole
/// levels, `#` only last.
fn check_filter(topic: &str) -> Result<(), TriggerError> {
    let bad = |why: &str| Err(TriggerError::Config(format!("trigger.topic {why}")));
    if topic.is_empty() {
        return bad("is empty");
    }
    if topic.contains('\0') {
        return bad("holds a NUL character");
    }
    if topic.len() > usize::from(u16::MAX) {
        return bad("is longer than 65535 bytes");
    }
    let levels: Vec<&str> = topic.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return bad(&format!(
                "'{topic}': '#' must be a whole level and the last one (sensors/#)"
            ));
        }
        if level.contains('+') && *level != "+" {
            return bad(&format!(
                "'{topic}': '+' must be a whole level (sensors/+/temperature)"
            ));
        }
    }
    Ok(())
}

fn qos_number(qos: QoS) -> u8 {
    qos as u8
}

struct MqttSource {
    /// As written, for messages (it holds no credentials).
    url: String,
    host: String,
    port: u16,
    login: Option<(String, String)>,
    topic: String,
    qos: QoS,
    client_id: String,
}

impl MqttSource {
    fn options(&self) -> MqttOptions {
        let mut options = MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        options
            .set_keep_alive(KEEP_ALIVE)
            // The client id is never empty (checked in `source`), which a
            // persistent session needs.
            .set_clean_session(self.qos == QoS::AtMostOnce)
            .set_manual_acks(true)
            // Only PUBACKs, pings and the SUBSCRIBE go out.
            .set_max_packet_size(MAX_PACKET, 64 * 1024);
        if let Some((user, password)) = &self.login {
            options.set_credentials(user.clone(), password.clone());
        }
        options
    }

    /// Polls until the broker granted the subscription, keeping the
    /// messages it sends meanwhile (a resumed session's unacknowledged
    /// ones come right after the CONNACK).
    async fn handshake(&self, eventloop: &mut EventLoop) -> Result<Vec<Publish>, TriggerError> {
        let mut early = Vec::new();
        loop {
            let event = eventloop.poll().await.map_err(|e| {
                TriggerError::Connection(format!(
                    "cannot connect to the MQTT broker at {}: {e}",
                    self.url
                ))
            })?;
            match event {
                Event::Incoming(Packet::Publish(publish)) => early.push(publish),
                Event::Incoming(Packet::SubAck(ack)) => {
                    return match ack.return_codes.first() {
                        Some(SubscribeReasonCode::Success(granted)) => {
                            if *granted < self.qos {
                                tracing::warn!(source = %self.describe(), granted = qos_number(*granted), "the broker granted QoS 0 only: messages are delivered at most once");
                            }
                            Ok(early)
                        }
                        _ => Err(TriggerError::Connection(format!(
                            "the MQTT broker at {} refused the subscription to '{}' (is the account allowed to read it?)",
                            self.url, self.topic
                        ))),
                    };
                }
                _ => {}
            }
        }
    }
}

#[async_trait]
impl Source for MqttSource {
    fn describe(&self) -> String {
        format!(
            "mqtt topic '{}' at {} (client id '{}', QoS {})",
            self.topic,
            self.url,
            self.client_id,
            qos_number(self.qos)
        )
    }

    async fn subscribe(&self, prefetch: usize) -> Result<Box<dyn Subscription>, TriggerError> {
        // MQTT 3.1.1 has no way for a subscriber to cap what the broker
        // sends (the broker's own window does, Mosquitto's
        // `max_inflight_messages`); what `prefetch` sizes is the request
        // channel, so that every message in hand can queue its PUBACK at
        // once, next to the SUBSCRIBE.
        let (client, mut eventloop) = AsyncClient::new(self.options(), prefetch.max(1) + 4);
        eventloop
            .network_options
            .set_connection_timeout(CONNECT_TIMEOUT.as_secs());
        // Sent once connected; every connection subscribes again, so a
        // session the broker lost (restarted without saving it) comes back.
        client
            .try_subscribe(self.topic.clone(), self.qos)
            .map_err(|e| TriggerError::Connection(format!("cannot subscribe: {e}")))?;
        let early =
            match tokio::time::timeout(CONNECT_TIMEOUT, self.handshake(&mut eventloop)).await {
                Ok(early) => early?,
                Err(_) => {
                    return Err(TriggerError::Connection(format!(
                        "the MQTT broker at {} did not grant the subscription within {}s",
                        self.url,
                        CONNECT_TIMEOUT.as_secs()
                    )));
                }
            };
        let (forward, incoming) = mpsc::unbounded_channel();
        let acks = Arc::new(Acks::default());
        let task = tokio::spawn(drive(
            eventloop,
            early,
            forward,
            acks.clone(),
            self.url.clone(),
        ));
        Ok(Box::new(MqttSubscription {
            client,
            incoming,
            acks,
            task: task.abort_handle(),
        }))
    }
}

/// What the polling task hands to [`Subscription::next`].
type Incoming = Result<Publish, TriggerError>;

/// Polls the event loop until the connection fails or the subscription
/// is dropped. It never waits on the consumer (the channel is unbounded;
/// the broker's inflight window bounds it), so pings and PUBACKs keep
/// going out while every message in hand is still running.
async fn drive(
    mut eventloop: EventLoop,
    early: Vec<Publish>,
    forward: mpsc::UnboundedSender<Incoming>,
    acks: Arc<Acks>,
    url: String,
) {
    let _closing = CloseOnDrop(acks.clone());
    for publish in early {
        if forward.send(Ok(publish)).is_err() {
            return;
        }
    }
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if forward.send(Ok(publish)).is_err() {
                    return;
                }
            }
            Ok(Event::Outgoing(Outgoing::PubAck(pkid))) => acks.written(pkid),
            Ok(_) => {}
            Err(e) => {
                // Polling again would reconnect inside this subscription;
                // the shared loop does it instead, with backoff and a new
                // SUBSCRIBE.
                let _ = forward.send(Err(TriggerError::Connection(format!(
                    "lost the connection to the MQTT broker at {url}: {e}"
                ))));
                return;
            }
        }
    }
}

/// Acknowledgements waiting to be written, by packet id. The broker does
/// not reuse a packet id before it is acknowledged, so an id names one
/// message in hand at a time.
#[derive(Default)]
struct Acks {
    state: Mutex<AckState>,
}

#[derive(Default)]
struct AckState {
    waiting: HashMap<u16, oneshot::Sender<()>>,
    /// The polling task is gone: nothing will be written any more.
    closed: bool,
}

impl Acks {
    fn lock(&self) -> std::sync::MutexGuard<'_, AckState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver told when the PUBACK for `pkid` is written, or `None`
    /// when the connection is gone.
    fn expect(&self, pkid: u16) -> Option<oneshot::Receiver<()>> {
        let mut state = self.lock();
        if state.closed {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        state.waiting.insert(pkid, tx);
        Some(rx)
    }

    fn written(&self, pkid: u16) {
        if let Some(tx) = self.lock().waiting.remove(&pkid) {
            let _ = tx.send(());
        }
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        // Dropping the senders fails every waiting acknowledgement.
        state.waiting.clear();
    }
}

/// Closes the acknowledgements when the polling task ends, aborted
/// included.
struct CloseOnDrop(Arc<Acks>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

struct MqttSubscription {
    client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    acks: Arc<Acks>,
    task: AbortHandle,
}

impl Drop for MqttSubscription {
    fn drop(&mut self) {
        // The connection goes with the task: what is not acknowledged by
        // now is sent again on the next connection.
        self.task.abort();
    }
}

#[async_trait]
impl Subscription for MqttSubscription {
    async fn next(&mut self) -> Result<Delivery, TriggerError> {
        let publish = match self.incoming.recv().await {
            Some(Ok(publish)) => publish,
            Some(Err(e)) => return Err(e),
            None => {
                return Err(TriggerError::Connection(
                    "the MQTT connection closed".into(),
                ));
            }
        };
        let message = message(&publish);
        let redelivered = publish.dup;
        // Keep what the PUBACK needs, not the payload.
        let mut slim = publish;
        slim.payload = Default::default();
        Ok(Delivery {
            message,
            // MQTT does not count deliveries: DUP only says "not the first".
            attempt: if redelivered { 2 } else { 1 },
            redelivered,
            settle: Box::new(MqttSettle {
                client: self.client.clone(),
                publish: slim,
                acks: self.acks.clone(),
            }),
        })
    }
}

/// `{body, headers: {}, topic, qos, retain, dup, messageId?}`. MQTT 3.1.1
/// has no headers; `headers` is there (empty) so pipelines read every
/// broker trigger's messages the same way. `messageId` is the packet id
/// of a QoS 1 message (unique only among the messages not yet acked).
fn message(publish: &Publish) -> Value {
    let mut message = Map::new();
    put_body(&mut message, &publish.payload);
    message.insert("headers".into(), Value::Object(Map::new()));
    message.insert("topic".into(), Value::String(publish.topic.clone()));
    message.insert("qos".into(), Value::from(qos_number(publish.qos)));
    message.insert("retain".into(), Value::Bool(publish.retain));
    message.insert("dup".into(), Value::Bool(publish.dup));
    if publish.qos != QoS::AtMostOnce {
        message.insert("messageId".into(), Value::from(publish.pkid));
    }
    Value::Object(message)
}

struct MqttSettle {
    client: AsyncClient,
    publish: Publish,
    acks: Arc<Acks>,
}

#[async_trait]
impl Settle for MqttSettle {
    /// Sends the PUBACK and waits until it is written, so that a
    /// consumer that stops right after does not lose it.
    async fn ack(self: Box<Self>) -> Result<(), TriggerError> {
        if self.publish.qos == QoS::AtMostOnce {
            return Ok(());
        }
        let lost = || {
            TriggerError::Connection(
                "the connection the message came on is closed; the broker will send it again"
                    .into(),
            )
        };
        let written = self.acks.expect(self.publish.pkid).ok_or_else(lost)?;
        self.client.ack(&self.publish).await.map_err(|_| lost())?;
        match tokio::time::timeout(ACK_TIMEOUT, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(lost()),
            Err(_) => Err(TriggerError::Connection(format!(
                "the acknowledgement was not written within {}s",
                ACK_TIMEOUT.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trigger(value: Value) -> MqttTrigger {
        serde_json::from_value(value).expect("a trigger")
    }

    fn config_error(t: &MqttTrigger, account: Option<&Map<String, Value>>) -> String {
        let names = Names::new("acme", "dev", "p", 1);
        match source(t, &Settings { account }, &names) {
            Err(TriggerError::Config(e)) => e,
            Err(e) => panic!("not a config error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn settings_that_cannot_work_name_their_field() {
        let t = |v| trigger(v);
        let e = config_error(&t(json!({"topic": "a"})), None);
        assert!(e.starts_with("trigger.url is missing"), "{e}");
        let e = config_error(&t(json!({"url": "mqtts://h:8883", "topic": "a"})), None);
        assert!(e.starts_with("trigger.url: TLS"), "{e}");
        let e = config_error(&t(json!({"url": "mqtt://u:secret@h", "topic": "a"})), None);
        assert!(e.starts_with("trigger.url") && !e.contains("secret"), "{e}");
        let e = config_error(&t(json!({"url": "http://h", "topic": "a"})), None);
        assert!(e.starts_with("trigger.url"), "{e}");
        let e = config_error(&t(json!({"url": "mqtt://h", "topic": "a", "qos": 2})), None);
        assert!(e.starts_with("trigger.qos"), "{e}");
        let e = config_error(&t(json!({"url": "mqtt://h", "topic": "a", "qos": 7})), None);
        assert_eq!(e, "trigger.qos is 0 or 1, not 7");
        for bad in ["", "a/#/b", "a/b#", "a+/b", "a/\0"] {
            let e = config_error(&t(json!({"url": "mqtt://h", "topic": bad})), None);
            assert!(e.starts_with("trigger.topic"), "{bad:?}: {e}");
        }
        let e = config_error(
            &t(json!({"url": "mqtt://h", "topic": "a", "clientId": ""})),
            None,
        );
        assert!(e.starts_with("trigger.clientId"), "{e}");
        let account = json!({"url": "ws://h", "password": "p"});
        let e = config_error(&t(json!({"topic": "a"})), account.as_object());
        assert!(e.starts_with("the account field 'url'"), "{e}");
        let account = json!({"url": "mqtt://h", "password": "p"});
        let e = config_error(&t(json!({"topic": "a"})), account.as_object());
        assert!(e.contains("no username"), "{e}");
    }

    #[test]
    fn good_settings_describe_the_source_without_credentials() {
        let account = json!({"url": "mqtt://broker:1884", "username": "u", "password": "secret"});
        let names = Names::new("acme", "dev", "p", 1);
        let settings = Settings {
            account: account.as_object(),
        };
        for topic in ["a", "sensors/+/t", "sensors/#", "#", "+", "$share/g/a/+"] {
            let t = trigger(json!({"topic": topic}));
            let s = source(&t, &settings, &names).expect("a source");
            let shown = s.describe();
            assert!(
                !shown.contains("secret") && !shown.contains("u:"),
                "{shown}"
            );
            assert!(
                shown.contains("sluice-acme-dev-p-v1") && shown.contains("QoS 1"),
                "{shown}"
            );
        }
    }

    #[test]
    fn messages_carry_the_mqtt_fields() {
        let mut publish = Publish::new("a/b", QoS::AtLeastOnce, br#"{"n":1}"#.to_vec());
        publish.pkid = 7;
        publish.dup = true;
        assert_eq!(
            message(&publish),
            json!({"body": {"n": 1}, "headers": {}, "topic": "a/b", "qos": 1, "retain": false, "dup": true, "messageId": 7})
        );
        let mut publish = Publish::new("a", QoS::AtMostOnce, vec![0xff, 0x00]);
        publish.retain = true;
        assert_eq!(
            message(&publish),
            json!({"body": "/wA=", "bodyEncoding": "base64", "headers": {}, "topic": "a", "qos": 0, "retain": true, "dup": false})
        );
    }
}
