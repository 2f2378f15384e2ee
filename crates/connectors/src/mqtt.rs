//! `mqtt`: publish to an MQTT broker (MQTT 3.1.1, plain TCP) with QoS 0
//! or 1. One client and one event-loop task per broker URL and compiled
//! step (so per deployment).
//!
//! # How a publish learns its outcome
//!
//! rumqttc splits a connection in two: an `AsyncClient`, which only puts
//! requests on a channel, and an `EventLoop`, which must be polled (here
//! by a spawned task) to connect, write those requests and read what the
//! broker sends. The client's `publish` says nothing about the packet id
//! the publish will get, or whether it was ever written or acknowledged,
//! so the task and the publishes share a small dispatcher ([`Dispatch`]):
//!
//! 1. A publish, under the dispatcher's lock, hands its request to the
//!    client (`try_publish`, never waiting) and appends a waiter (a
//!    oneshot sender) to `unsent`. Doing both under one lock makes the
//!    order of `unsent` the order of the requests on the channel.
//! 2. The event loop takes requests off the channel one at a time, in
//!    that order, and reports each one it writes as
//!    `Outgoing::Publish(pkid)` (packet id 0 for QoS 0). It reports them
//!    in request order even when a packet id collides (it holds the
//!    colliding publish back and takes no further request until the
//!    broker frees the id). So the task pops the *front* waiter of
//!    `unsent` for every `Outgoing::Publish`: a QoS 0 publish is done
//!    there; a QoS 1 publish moves to `unacked` under its packet id.
//! 3. An incoming `PubAck(pkid)` completes the waiter in `unacked` under
//!    that id. rumqttc reuses an id only once the broker has acknowledged
//!    it, so an id names one publish at a time.
//!
//! When polling fails (cannot connect, connection lost), every waiting
//! publish fails with 502, and what rumqttc still holds for them (requests
//! on the channel, publishes kept to be sent again on the next connection,
//! buffered events, its packet-id state) is thrown away with them, so that
//! nothing reported later can be taken for one of them and `unsent` stays
//! aligned with the channel (each session is a clean one anyway). The
//! publisher gets the 502 and decides whether to retry (a publish that
//! was written may have reached the broker: at least once, as QoS 1 is).
//! The task then rests until the next publish arrives, and polling again
//! reconnects: a broker that is down costs one connection attempt per
//! burst of publishes, not a busy loop.
//!
//! Every wait of a publish — for room on the channel, for the connection,
//! for the write, for the PUBACK — is bounded by `ackTimeout` (504). A
//! publish that gives up leaves its waiter in place (its receiver is
//! gone), since the request it stands for is still on its way.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, MqttState, Outgoing, Packet, QoS};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, schema_of,
};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::{HumanDuration, StepKind};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::AbortHandle;

use crate::input::{self, as_text, bad_input};

/// Fields of the `mqtt` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MqttConfig {
    /// The broker: `mqtt://host:1883` (plain TCP; TLS is not supported
    /// yet); may hold expressions.
    #[serde(default)]
    url: Option<String>,
    /// Instead of `url`: an account with a `url` field and, when the
    /// broker wants them, `username` and `password`.
    #[serde(default)]
    account: Option<String>,
    /// The topic to publish to, without wildcards; may hold expressions
    /// (`orders/{{ message.region }}`).
    topic: String,
    /// What to send (default: the message); strings as they are, anything
    /// else as JSON text.
    #[serde(default)]
    payload: Option<Value>,
    /// 0 (at most once: done when the packet is written) or 1 (at least
    /// once: done when the broker acknowledges it; default).
    #[serde(default)]
    qos: Option<u8>,
    /// Ask the broker to keep the message as the topic's retained message
    /// (default false).
    #[serde(default)]
    retain: bool,
    /// The MQTT client id (default `sluice-` and random characters).
    #[serde(default)]
    client_id: Option<String>,
    /// How long a publish may take, from connecting to the broker's
    /// acknowledgement (default 5s).
    #[serde(default)]
    ack_timeout: Option<HumanDuration>,
}

pub(crate) const MQTT: StepFactory = StepFactory {
    kind: StepKind {
        name: "mqtt",
        summary: "Publish to an MQTT broker with QoS 0 or 1.",
        schema: schema_of::<MqttConfig>,
    },
    compile,
};

/// Requests the client may hold that the event loop has not taken yet
/// (the rumqttc channel's capacity, and the publishes that may wait).
const CHANNEL: usize = 1024;
/// The largest MQTT packet (the limit of the remaining length, plus the
/// fixed header).
const MAX_PACKET: usize = 268_435_455 + 5;

struct MqttStep {
    url: Option<Template>,
    account: Option<String>,
    topic: Template,
    payload: Option<ValueTemplate>,
    qos: QoS,
    retain: bool,
    client_id: Option<String>,
    ack_timeout: Duration,
    connections: std::sync::Mutex<HashMap<String, Arc<Connection>>>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: MqttConfig = cx.config()?;
    input::url_or_account(
        cx,
        "the broker",
        config.url.as_ref(),
        config.account.as_ref(),
    )?;
    let qos = match config.qos.unwrap_or(1) {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => {
            let path = cx.path().key("qos");
            cx.problem(
                path,
                "QoS 2 (exactly once) is not supported; use 0 or 1 (at least once)",
            );
            return None;
        }
        other => {
            let path = cx.path().key("qos");
            cx.problem(path, format!("qos is 0 or 1, not {other}"));
            return None;
        }
    };
    if config.client_id.as_deref().is_some_and(str::is_empty) {
        let path = cx.path().key("clientId");
        cx.problem(path, "clientId is empty; leave it out for a random one");
        return None;
    }
    let ack_timeout = config.ack_timeout.map_or(Duration::from_secs(5), |d| d.0);
    if ack_timeout.is_zero() {
        let path = cx.path().key("ackTimeout");
        cx.problem(path, "ackTimeout must be more than 0");
        return None;
    }
    let url = match &config.url {
        Some(u) => Some(cx.template("url", u)?),
        None => None,
    };
    let topic = cx.template("topic", &config.topic)?;
    let payload = match &config.payload {
        Some(v) => Some(cx.value_template("payload", v)?),
        None => None,
    };
    Some(Box::new(MqttStep {
        url,
        account: config.account,
        topic,
        payload,
        qos,
        retain: config.retain,
        client_id: config.client_id,
        ack_timeout,
        connections: std::sync::Mutex::new(HashMap::new()),
    }))
}

fn mqtt_error(status: u16, message: impl Into<String>) -> FlowError {
    FlowError::new("mqtt", status, message)
}

/// Where to connect and how to log in.
#[derive(Clone, PartialEq, Eq)]
struct Server {
    url: String,
    host: String,
    port: u16,
    login: Option<(String, String)>,
}

/// Reads `mqtt://host:port` (or `tcp://`; port 1883 when left out).
pub fn parse_url(url: &str) -> Result<(String, u16), FlowError> {
    let what = || format!("'{url}' is not an MQTT URL (mqtt://host:1883)");
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad_input("mqtt", what()));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "mqtt" | "tcp" => {}
        "mqtts" | "ssl" | "tls" | "wss" => {
            return Err(bad_input(
                "mqtt",
                format!(
                    "'{url}': TLS is not supported yet by the mqtt step; use mqtt:// (plain TCP)"
                ),
            ));
        }
        "ws" => {
            return Err(bad_input(
                "mqtt",
                format!("'{url}': MQTT over WebSocket is not supported; use mqtt://"),
            ));
        }
        _ => return Err(bad_input("mqtt", what())),
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err(bad_input(
            "mqtt",
            format!("'{url}': give the username and password through an account, not in the URL"),
        ));
    }
    if rest.contains(['/', '?', '#']) {
        return Err(bad_input("mqtt", what()));
    }
    // `[::1]:1883` keeps its brackets: rumqttc joins host and port.
    let (host, port) = if rest.starts_with('[') {
        match rest.split_once(']') {
            Some((h, "")) => (format!("{h}]"), None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (format!("{h}]"), Some(p)),
                None => return Err(bad_input("mqtt", what())),
            },
            None => return Err(bad_input("mqtt", what())),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (rest.to_owned(), None),
        }
    };
    let port = match port {
        None => 1883,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad_input("mqtt", what())),
        },
    };
    if host.is_empty() || host == "[]" {
        return Err(bad_input("mqtt", what()));
    }
    Ok((host, port))
}

/// A topic a publish can go to: not empty, no wildcards.
fn check_topic(topic: &str) -> Result<(), FlowError> {
    if topic.is_empty() {
        return Err(bad_input("mqtt", "the topic is empty"));
    }
    if topic.contains(['+', '#']) {
        return Err(bad_input(
            "mqtt",
            format!("'{topic}' has a wildcard (+ or #); publish to a plain topic"),
        ));
    }
    if topic.contains('\0') {
        return Err(bad_input("mqtt", "the topic holds a NUL character"));
    }
    if topic.len() > usize::from(u16::MAX) {
        return Err(bad_input("mqtt", "the topic is longer than 65535 bytes"));
    }
    Ok(())
}

/// `sluice-` and 16 random hex digits (23 characters, the most every
/// MQTT 3.1.1 broker must accept).
fn random_client_id() -> String {
    // Each RandomState has fresh keys (random per thread, then counted),
    // and the clock separates processes.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    format!("sluice-{:016x}", hasher.finish())
}

/// How a waiting publish ends.
type Done = oneshot::Sender<Result<(), FlowError>>;

/// A publish handed to the client whose packet is not written yet.
struct Unsent {
    qos: QoS,
    done: Done,
    /// Its place on the client's channel, given back once the event loop
    /// has taken the request (so `try_publish` never finds it full).
    _room: OwnedSemaphorePermit,
}

/// What the publishes and the event-loop task share (see the module
/// comment).
#[derive(Default)]
struct Dispatch {
    /// Publishes in the order they were handed to the client, until the
    /// event loop writes them.
    unsent: VecDeque<Unsent>,
    /// QoS 1 publishes written and waiting for their PUBACK, by packet id.
    unacked: HashMap<u16, Done>,
    /// Whether the event loop has a connection (for timeout messages).
    connected: bool,
    /// The task is resting after an error until a publish wakes it.
    idle: bool,
}

struct Shared {
    dispatch: std::sync::Mutex<Dispatch>,
    wake: Notify,
    room: Arc<Semaphore>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Dispatch> {
        self.dispatch.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One broker connection: the client, the dispatcher and the task that
/// polls the event loop (stopped when the connection is dropped).
struct Connection {
    server: Server,
    client_id: String,
    client: AsyncClient,
    shared: Arc<Shared>,
    task: AbortHandle,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Connection {
    fn open(server: Server, client_id: String, ack_timeout: Duration) -> Connection {
        let mut options = MqttOptions::new(client_id.clone(), server.host.clone(), server.port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            // Only acks come in (nothing is subscribed); the size of
            // what goes out is checked before a publish is handed over,
            // as rumqttc drops the whole connection on a packet too large.
            .set_max_packet_size(64 * 1024, MAX_PACKET);
        if let Some((user, password)) = &server.login {
            options.set_credentials(user.clone(), password.clone());
        }
        let (client, mut eventloop) = AsyncClient::new(options, CHANNEL);
        let connect_secs = ack_timeout.as_secs_f64().ceil().clamp(1.0, 60.0) as u64;
        eventloop
            .network_options
            .set_connection_timeout(connect_secs);
        let shared = Arc::new(Shared {
            dispatch: std::sync::Mutex::new(Dispatch::default()),
            wake: Notify::new(),
            room: Arc::new(Semaphore::new(CHANNEL)),
        });
        let task = tokio::spawn(drive(eventloop, shared.clone(), server.url.clone()));
        Connection {
            server,
            client_id,
            client,
            shared,
            task: task.abort_handle(),
        }
    }

    /// Publishes and waits for the outcome (bounded by `within`).
    async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
        within: Duration,
    ) -> Result<(), FlowError> {
        let work = async {
            let room = self
                .shared
                .room
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| mqtt_error(502, "the MQTT connection is closed"))?;
            let (done, outcome) = oneshot::channel();
            {
                let mut dispatch = self.shared.lock();
                self.client
                    .try_publish(topic, qos, retain, payload)
                    .map_err(|e| mqtt_error(502, format!("the MQTT client refused: {e}")))?;
                dispatch.unsent.push_back(Unsent {
                    qos,
                    done,
                    _room: room,
                });
                if dispatch.idle {
                    dispatch.idle = false;
                    self.shared.wake.notify_one();
                }
            }
            outcome
                .await
                .unwrap_or_else(|_| Err(mqtt_error(502, "the MQTT connection is closed")))
        };
        match tokio::time::timeout(within, work).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let after = HumanDuration(within);
                let url = &self.server.url;
                Err(mqtt_error(
                    504,
                    if !self.shared.lock().connected {
                        format!("could not connect to the MQTT broker at {url} within {after}")
                    } else if qos == QoS::AtMostOnce {
                        format!("the publish to '{topic}' was not sent within {after}")
                    } else {
                        format!(
                            "the broker did not acknowledge the publish to '{topic}' within {after}"
                        )
                    },
                ))
            }
        }
    }
}

/// Polls the event loop for as long as the connection lives, handing
/// write confirmations and PUBACKs to the waiting publishes.
async fn drive(mut eventloop: EventLoop, shared: Arc<Shared>, url: String) {
    loop {
        let event = eventloop.poll().await;
        let rest = {
            let mut dispatch = shared.lock();
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    dispatch.connected = true;
                    false
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    // The event loop writes requests in the order they
                    // were put on the channel, which is `unsent`'s order.
                    if let Some(unsent) = dispatch.unsent.pop_front() {
                        if unsent.qos == QoS::AtMostOnce {
                            let _ = unsent.done.send(Ok(()));
                        } else {
                            dispatch.unacked.insert(pkid, unsent.done);
                        }
                    }
                    false
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(done) = dispatch.unacked.remove(&ack.pkid) {
                        let _ = done.send(Ok(()));
                    }
                    false
                }
                Ok(_) => false,
                Err(e) => {
                    let error = if dispatch.connected {
                        mqtt_error(
                            502,
                            format!("lost the connection to the MQTT broker at {url}: {e}"),
                        )
                    } else {
                        mqtt_error(
                            502,
                            format!("cannot connect to the MQTT broker at {url}: {e}"),
                        )
                    };
                    dispatch.connected = false;
                    // Move what is still on the channel to `pending` (with
                    // anything kept to be sent again), and drop it all:
                    // its publishers get the error below. Under the lock,
                    // so no publish slips in between.
                    eventloop.clean();
                    eventloop.pending.clear();
                    // And start from a fresh state: events rumqttc buffered
                    // before the error (an `Outgoing::Publish` for a packet
                    // whose write failed, acks read with it) and a held-back
                    // colliding publish belong to the old connection, and
                    // would otherwise be taken for new publishes (a kept
                    // collision would even stop all new requests).
                    eventloop.state = MqttState::new(eventloop.mqtt_options.inflight(), false);
                    for unsent in dispatch.unsent.drain(..) {
                        let _ = unsent.done.send(Err(error.clone()));
                    }
                    for (_, done) in dispatch.unacked.drain() {
                        let _ = done.send(Err(error.clone()));
                    }
                    dispatch.idle = true;
                    true
                }
            }
        };
        if rest {
            // Reconnect (by polling again) when the next publish comes.
            shared.wake.notified().await;
        }
    }
}

impl MqttStep {
    /// The broker, from `url` or the account.
    fn server(&self, cx: &Context, message: &Value) -> Result<Server, FlowError> {
        let (url, login) = if let Some(t) = &self.url {
            (cx.render(t, message)?.trim().to_owned(), None)
        } else {
            let name = self.account.as_deref().unwrap_or_default();
            let account = input::account("mqtt", cx, name)?;
            let url = input::account_field("mqtt", name, account, "url")?.to_owned();
            let field = |f: &str| input::account_text(account, f).map(str::to_owned);
            let login = match (field("username"), field("password")) {
                (Some(user), password) => Some((user, password.unwrap_or_default())),
                (None, Some(_)) => {
                    return Err(bad_input(
                        "mqtt",
                        format!("account '{name}' has a password but no username"),
                    ));
                }
                (None, None) => None,
            };
            (url.trim().to_owned(), login)
        };
        let (host, port) = parse_url(&url)?;
        Ok(Server {
            url,
            host,
            port,
            login,
        })
    }

    /// The connection to `server`, opened on first use (or again when the
    /// login changed or its task is gone).
    fn connection(&self, server: Server) -> Arc<Connection> {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = connections.get(&server.url)
            && c.server == server
            && !c.task.is_finished()
        {
            return c.clone();
        }
        // A new login keeps the connection's client id.
        let client_id = match (&self.client_id, connections.get(&server.url)) {
            (Some(id), _) => id.clone(),
            (None, Some(old)) => old.client_id.clone(),
            (None, None) => random_client_id(),
        };
        let url = server.url.clone();
        // The old connection (if any) closes when its last publish ends.
        let connection = Arc::new(Connection::open(server, client_id, self.ack_timeout));
        connections.insert(url, connection.clone());
        connection
    }
}

impl Step for MqttStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let server = self.server(cx, &message)?;
            let topic = cx.render(&self.topic, &message)?.into_owned();
            check_topic(&topic)?;
            let payload = match &self.payload {
                Some(t) => cx.eval_value(t, &message)?,
                None => (*message).clone(),
            };
            let payload = as_text(payload).into_bytes();
            // Fixed header (5 at most), topic length, packet id.
            if 5 + 2 + topic.len() + 2 + payload.len() > MAX_PACKET {
                return Err(mqtt_error(
                    413,
                    "the payload is larger than an MQTT packet can carry (256 MB)",
                ));
            }
            let connection = self.connection(server);
            connection
                .publish(&topic, self.qos, self.retain, payload, self.ack_timeout)
                .await?;
            let qos = if self.qos == QoS::AtMostOnce { 0 } else { 1 };
            Ok(Arc::new(
                json!({"published": true, "topic": topic, "qos": qos}),
            ))
        })
    }
}
