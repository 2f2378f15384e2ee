//! `rabbitmq`: publish one message to a RabbitMQ exchange with publisher
//! confirms, so the step succeeds only once the broker has taken the
//! message. One connection and one confirm-mode channel per broker URL and
//! compiled step (so per deployment). A channel the broker closed (an
//! exchange that does not exist) is opened again on the next message; a
//! broken connection is made again, and the publish tried once more.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, schema_of,
};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::{HumanDuration, StepKind};
use tokio::sync::Mutex;

use crate::input::{self, as_text, bad_input};

/// How long making a connection and opening its channel may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Fields of the `rabbitmq` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RabbitmqConfig {
    /// The broker: `amqp://user:pass@host:5672/%2f` (the vhost
    /// URL-encoded; `%2f` is `/`) or `amqps://…`; may hold expressions.
    #[serde(default)]
    url: Option<String>,
    /// Instead of `url`: an account with a `url` field and, optionally,
    /// `username` and `password` (which replace those of the URL).
    #[serde(default)]
    account: Option<String>,
    /// The exchange to publish to (default: "", the default exchange,
    /// which routes to the queue named by the routing key); may hold
    /// expressions.
    #[serde(default)]
    exchange: Option<String>,
    /// The routing key; may hold expressions (`orders.{{ message.region }}`).
    /// With the default exchange, the name of the queue.
    #[serde(default)]
    routing_key: Option<String>,
    /// What to send (default: the message); strings as they are, anything
    /// else as JSON text.
    #[serde(default)]
    payload: Option<Value>,
    /// Message headers (an object); values may hold expressions. Strings,
    /// numbers and booleans go as themselves, objects and arrays as JSON
    /// text; null values are left out.
    #[serde(default)]
    headers: Option<Value>,
    /// Whether the broker writes the message to disk (delivery mode 2,
    /// default true) or keeps it in memory only (delivery mode 1).
    #[serde(default)]
    persistent: Option<bool>,
    /// The content type (default: `application/json`, or `text/plain` when
    /// the payload is a string); may hold expressions.
    #[serde(default)]
    content_type: Option<String>,
    /// The message id property; may hold expressions.
    #[serde(default)]
    message_id: Option<String>,
    /// The correlation id property; may hold expressions.
    #[serde(default)]
    correlation_id: Option<String>,
    /// The reply-to property (a queue name); may hold expressions.
    #[serde(default)]
    reply_to: Option<String>,
    /// How long the message may wait in a queue before the broker drops it
    /// (`30s`, `5m`).
    #[serde(default)]
    expiration: Option<HumanDuration>,
    /// The message priority, 0 to 255 (queues declared with
    /// `x-max-priority` use it).
    #[serde(default)]
    priority: Option<u8>,
    /// When true, a message that no queue takes is an error (404) instead
    /// of being dropped by the broker (default false).
    #[serde(default)]
    mandatory: bool,
    /// How long to wait for the broker to confirm the message (default 5s).
    #[serde(default)]
    confirm_timeout: Option<HumanDuration>,
}

pub(crate) const RABBITMQ: StepFactory = StepFactory {
    kind: StepKind {
        name: "rabbitmq",
        summary: "Publish a message to a RabbitMQ exchange and wait for the broker's confirm.",
        schema: schema_of::<RabbitmqConfig>,
    },
    compile,
};

struct RabbitmqStep {
    url: Option<Template>,
    account: Option<String>,
    exchange: Option<Template>,
    routing_key: Option<Template>,
    payload: Option<ValueTemplate>,
    headers: Option<ValueTemplate>,
    persistent: bool,
    content_type: Option<Template>,
    message_id: Option<Template>,
    correlation_id: Option<Template>,
    reply_to: Option<Template>,
    expiration: Option<Duration>,
    priority: Option<u8>,
    mandatory: bool,
    confirm_timeout: Duration,
    /// One link per broker (URL and credentials).
    links: SyncMutex<HashMap<String, Arc<Mutex<Link>>>>,
}

fn optional_template(
    cx: &mut StepCx<'_, '_>,
    field: &str,
    src: Option<&String>,
) -> Option<Option<Template>> {
    match src {
        Some(s) => cx.template(field, s).map(Some),
        None => Some(None),
    }
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: RabbitmqConfig = cx.config()?;
    input::url_or_account(
        cx,
        "the broker",
        config.url.as_ref(),
        config.account.as_ref(),
    )?;
    if let Some(url) = config.url.as_deref().filter(|u| !u.contains("{{"))
        && let Err(e) = parse_url(url.trim())
    {
        let path = cx.path().key("url");
        cx.problem(path, e);
        return None;
    }
    let default_exchange = config.exchange.as_deref().is_none_or(str::is_empty);
    let no_key = config
        .routing_key
        .as_deref()
        .is_none_or(|k| k.trim().is_empty());
    if default_exchange && no_key {
        let path = cx.path().key("routingKey");
        cx.problem(
            path,
            "the default exchange routes by queue name: give the queue as `routingKey`, or an `exchange`",
        );
        return None;
    }
    if !crate::input::check_headers(cx, config.headers.as_ref()) {
        return None;
    }
    if config.confirm_timeout.is_some_and(|d| d.0.is_zero()) {
        let path = cx.path().key("confirmTimeout");
        cx.problem(path, "confirmTimeout must be more than 0");
        return None;
    }
    let url = optional_template(cx, "url", config.url.as_ref())?;
    let exchange = optional_template(cx, "exchange", config.exchange.as_ref())?;
    let routing_key = optional_template(cx, "routingKey", config.routing_key.as_ref())?;
    let content_type = optional_template(cx, "contentType", config.content_type.as_ref())?;
    let message_id = optional_template(cx, "messageId", config.message_id.as_ref())?;
    let correlation_id = optional_template(cx, "correlationId", config.correlation_id.as_ref())?;
    let reply_to = optional_template(cx, "replyTo", config.reply_to.as_ref())?;
    let payload = match &config.payload {
        Some(v) => Some(cx.value_template("payload", v)?),
        None => None,
    };
    let headers = match &config.headers {
        Some(v) => Some(cx.value_template("headers", v)?),
        None => None,
    };
    Some(Box::new(RabbitmqStep {
        url,
        account: config.account,
        exchange,
        routing_key,
        payload,
        headers,
        persistent: config.persistent.unwrap_or(true),
        content_type,
        message_id,
        correlation_id,
        reply_to,
        expiration: config.expiration.map(|d| d.0),
        priority: config.priority,
        mandatory: config.mandatory,
        confirm_timeout: config
            .confirm_timeout
            .map_or(Duration::from_secs(5), |d| d.0),
        links: SyncMutex::new(HashMap::new()),
    }))
}

fn rabbitmq_error(status: u16, message: impl Into<String>) -> FlowError {
    FlowError::new("rabbitmq", status, message)
}

/// Parses an AMQP URL. (The parser lapin uses reads an IP address host as
/// `localhost`, so such a host is put back as written.)
pub fn parse_url(url: &str) -> Result<AMQPUri, String> {
    let bad = |why: &str| format!("'{}' is not an AMQP URL ({why})", hide_password(url));
    if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
        return Err(bad("it must start with amqp:// or amqps://"));
    }
    let mut uri: AMQPUri = url.parse().map_err(|e: String| bad(&e))?;
    match written_host(url) {
        Some(host) if is_ip(host) => uri.authority.host = host.to_owned(),
        Some(host)
            if !host.is_empty()
                && uri.authority.host == "localhost"
                && !host.eq_ignore_ascii_case("localhost") =>
        {
            return Err(bad("write the host as a name or a plain IP address"));
        }
        _ => {}
    }
    Ok(uri)
}

/// The host as written in `url`, without brackets around an IPv6 address.
fn written_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    host_port.split(':').next()
}

fn is_ip(host: &str) -> bool {
    host.parse::<Ipv4Addr>().is_ok() || host.parse::<Ipv6Addr>().is_ok()
}

/// `url` with the password (if any) replaced by `***`, for messages.
fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Where a connection goes, for messages (no credentials).
pub fn shown(uri: &AMQPUri) -> String {
    let host = &uri.authority.host;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    format!(
        "{}://{host}:{} (vhost '{}')",
        uri.scheme, uri.authority.port, uri.vhost
    )
}

/// An AMQP short string (at most 255 bytes), or a 400 naming `what`.
fn short(what: &str, text: String) -> Result<ShortString, FlowError> {
    let len = text.len();
    ShortString::try_new(text).map_err(|_| {
        bad_input(
            "rabbitmq",
            format!("{what} is {len} bytes long; AMQP allows at most 255"),
        )
    })
}

/// A header value as AMQP: strings, numbers and booleans as themselves,
/// anything else as JSON text.
fn header_value(value: Value) -> AMQPValue {
    match value {
        Value::Bool(b) => AMQPValue::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        other => AMQPValue::LongString(LongString::from(as_text(other))),
    }
}

/// The connection to one broker and its confirm-mode channel.
#[derive(Default)]
struct Link {
    connection: Option<Connection>,
    channel: Option<Channel>,
}

impl Link {
    /// The open channel, opening it (and connecting) when needed.
    async fn channel(&mut self, uri: &AMQPUri) -> Result<Channel, Failure> {
        if let Some(channel) = &self.channel {
            if channel.status().connected() {
                return Ok(channel.clone());
            }
            self.channel = None;
        }
        let connection = match self.connection.take() {
            Some(c) if c.status().connected() => c,
            _ => {
                let properties = ConnectionProperties::default()
                    .with_connection_name(LongString::from("sluice"));
                let connecting = Connection::connect_uri(uri.clone(), properties);
                match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        return Err(Failure::Fatal(rabbitmq_error(
                            502,
                            format!("cannot connect to RabbitMQ at {}: {e}", shown(uri)),
                        )));
                    }
                    Err(_) => {
                        return Err(Failure::Fatal(rabbitmq_error(
                            502,
                            format!(
                                "cannot connect to RabbitMQ at {}: no answer within {}",
                                shown(uri),
                                HumanDuration(CONNECT_TIMEOUT)
                            ),
                        )));
                    }
                }
            }
        };
        let opening = async {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Ok::<_, lapin::Error>(channel)
        };
        let channel = match tokio::time::timeout(CONNECT_TIMEOUT, opening).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(e)) => return Err(Failure::Broken(e)),
            Err(_) => {
                return Err(Failure::Fatal(rabbitmq_error(
                    502,
                    format!(
                        "RabbitMQ at {} did not open a channel within {}",
                        shown(uri),
                        HumanDuration(CONNECT_TIMEOUT)
                    ),
                )));
            }
        };
        self.connection = Some(connection);
        self.channel = Some(channel.clone());
        Ok(channel)
    }
}

/// Why one attempt at publishing failed.
enum Failure {
    /// The connection (or the channel with it) broke: worth one more try
    /// on a new connection.
    Broken(lapin::Error),
    /// Final.
    Fatal(FlowError),
}

/// Whether `e` says the connection, rather than this message, failed.
fn broken(e: &lapin::Error) -> bool {
    match e.kind() {
        ErrorKind::IOError(_)
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::MissingHeartbeatError => true,
        ErrorKind::ProtocolError(p) => matches!(p.kind(), AMQPErrorKind::Hard(_)),
        _ => false,
    }
}

/// The error of a publish the broker refused.
fn publish_error(e: &lapin::Error, exchange: &str) -> FlowError {
    if let ErrorKind::ProtocolError(p) = e.kind()
        && let AMQPErrorKind::Soft(soft) = p.kind()
    {
        let said = p.get_message();
        return match soft {
            AMQPSoftError::NOTFOUND => rabbitmq_error(
                404,
                format!("there is no exchange '{exchange}' on the broker ({said})"),
            ),
            AMQPSoftError::ACCESSREFUSED => rabbitmq_error(
                403,
                format!("the broker refused publishing to exchange '{exchange}' ({said})"),
            ),
            _ => rabbitmq_error(502, format!("the broker refused the message ({said})")),
        };
    }
    rabbitmq_error(502, format!("publishing to RabbitMQ failed: {e}"))
}

/// One message, ready to go.
struct Outgoing {
    exchange: String,
    routing_key: String,
    payload: Vec<u8>,
    properties: BasicProperties,
}

impl RabbitmqStep {
    /// The broker to connect to, and the key of its link.
    fn server(&self, cx: &Context, message: &Value) -> Result<(AMQPUri, String), FlowError> {
        if let Some(t) = &self.url {
            let url = cx.render(t, message)?.trim().to_owned();
            let uri = parse_url(&url).map_err(|e| bad_input("rabbitmq", e))?;
            return Ok((uri, url));
        }
        let name = self.account.as_deref().unwrap_or_default();
        let account = input::account("rabbitmq", cx, name)?;
        let url = input::account_field("rabbitmq", name, account, "url")?;
        let mut uri = parse_url(url.trim())
            .map_err(|e| bad_input("rabbitmq", format!("account '{name}': {e}")))?;
        let username = input::account_text(account, "username");
        let password = input::account_text(account, "password");
        if let Some(user) = username {
            uri.authority.userinfo.username = user.to_owned();
        }
        if let Some(password) = password {
            uri.authority.userinfo.password = password.to_owned();
        }
        let key = format!(
            "{}\u{0}{}\u{0}{}",
            url.trim(),
            username.unwrap_or_default(),
            password.unwrap_or_default()
        );
        Ok((uri, key))
    }

    fn link(&self, key: &str) -> Arc<Mutex<Link>> {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        links.entry(key.to_owned()).or_default().clone()
    }

    fn rendered(
        &self,
        cx: &Context,
        message: &Value,
        template: Option<&Template>,
    ) -> Result<Option<String>, FlowError> {
        match template {
            Some(t) => {
                let text = cx.render(t, message)?;
                Ok(Some(text.trim().to_owned()).filter(|s| !s.is_empty()))
            }
            None => Ok(None),
        }
    }

    fn headers(&self, cx: &Context, message: &Value) -> Result<Option<FieldTable>, FlowError> {
        let Some(t) = &self.headers else {
            return Ok(None);
        };
        let mut table = FieldTable::default();
        for (name, value) in crate::input::header_pairs("rabbitmq", cx, t, message)? {
            let name = short(&format!("header name '{name}'"), name)?;
            table.insert(name, header_value(value));
        }
        Ok(Some(table))
    }

    /// The message for this input: where it goes, its bytes, its properties.
    fn outgoing(&self, cx: &Context, message: &Value) -> Result<Outgoing, FlowError> {
        let exchange = self
            .rendered(cx, message, self.exchange.as_ref())?
            .unwrap_or_default();
        let routing_key = self
            .rendered(cx, message, self.routing_key.as_ref())?
            .unwrap_or_default();
        if exchange.is_empty() && routing_key.is_empty() {
            return Err(bad_input(
                "rabbitmq",
                "the routing key is empty: the default exchange needs the queue name",
            ));
        }
        let payload = match &self.payload {
            Some(t) => cx.eval_value(t, message)?,
            None => message.clone(),
        };
        let default_type = if payload.is_string() {
            "text/plain"
        } else {
            "application/json"
        };
        let content_type = self
            .rendered(cx, message, self.content_type.as_ref())?
            .unwrap_or_else(|| default_type.to_owned());
        let mut properties = BasicProperties::default()
            .with_delivery_mode(if self.persistent { 2 } else { 1 })
            .with_content_type(short("contentType", content_type)?);
        if let Some(headers) = self.headers(cx, message)? {
            properties = properties.with_headers(headers);
        }
        if let Some(id) = self.rendered(cx, message, self.message_id.as_ref())? {
            properties = properties.with_message_id(short("messageId", id)?);
        }
        if let Some(id) = self.rendered(cx, message, self.correlation_id.as_ref())? {
            properties = properties.with_correlation_id(short("correlationId", id)?);
        }
        if let Some(queue) = self.rendered(cx, message, self.reply_to.as_ref())? {
            properties = properties.with_reply_to(short("replyTo", queue)?);
        }
        if let Some(after) = self.expiration {
            let ms = after.as_millis().to_string();
            properties = properties.with_expiration(short("expiration", ms)?);
        }
        if let Some(priority) = self.priority {
            properties = properties.with_priority(priority);
        }
        // Checked here so a long name is a 400, not a panic in lapin.
        short("exchange", exchange.clone())?;
        short("routingKey", routing_key.clone())?;
        Ok(Outgoing {
            exchange,
            routing_key,
            payload: as_text(payload).into_bytes(),
            properties,
        })
    }

    /// Publishes on `channel` and waits for the broker's confirm.
    async fn publish_once(&self, channel: &Channel, out: &Outgoing) -> Result<(), Failure> {
        let options = BasicPublishOptions {
            mandatory: self.mandatory,
            ..BasicPublishOptions::default()
        };
        let sent = channel
            .basic_publish(
                ShortString::from(out.exchange.as_str()),
                ShortString::from(out.routing_key.as_str()),
                options,
                &out.payload,
                out.properties.clone(),
            )
            .await;
        let confirm = match sent {
            Ok(confirm) => confirm,
            Err(e) if broken(&e) => return Err(Failure::Broken(e)),
            Err(e) => return Err(Failure::Fatal(publish_error(&e, &out.exchange))),
        };
        let confirmation = match tokio::time::timeout(self.confirm_timeout, confirm).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) if broken(&e) => return Err(Failure::Broken(e)),
            Ok(Err(e)) => return Err(Failure::Fatal(publish_error(&e, &out.exchange))),
            Err(_) => {
                return Err(Failure::Fatal(rabbitmq_error(
                    504,
                    format!(
                        "the broker did not confirm the message within {}",
                        HumanDuration(self.confirm_timeout)
                    ),
                )));
            }
        };
        let where_to = || {
            if out.exchange.is_empty() {
                format!("routing key '{}' on the default exchange", out.routing_key)
            } else {
                format!(
                    "routing key '{}' on exchange '{}'",
                    out.routing_key, out.exchange
                )
            }
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(Failure::Fatal(rabbitmq_error(
                404,
                format!(
                    "no queue is bound for {}: the broker returned the message ({})",
                    where_to(),
                    returned.reply_text
                ),
            ))),
            Confirmation::Nack(_) => Err(Failure::Fatal(rabbitmq_error(
                502,
                format!("the broker did not take the message for {}", where_to()),
            ))),
            Confirmation::NotRequested => Err(Failure::Fatal(rabbitmq_error(
                502,
                "the channel is not in confirm mode",
            ))),
        }
    }
}

impl Step for RabbitmqStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let (uri, key) = self.server(cx, &message)?;
            let out = self.outgoing(cx, &message)?;
            // One message at a time per broker, so each confirm, return
            // and channel error belongs to the message that caused it.
            let link = self.link(&key);
            let mut link = link.lock().await;
            let mut retried = false;
            loop {
                let attempt = match link.channel(&uri).await {
                    Ok(channel) => self.publish_once(&channel, &out).await,
                    Err(f) => Err(f),
                };
                match attempt {
                    Ok(()) => break,
                    Err(Failure::Broken(_)) if !retried => {
                        retried = true;
                        *link = Link::default();
                    }
                    Err(Failure::Broken(e)) => {
                        *link = Link::default();
                        return Err(rabbitmq_error(
                            502,
                            format!("RabbitMQ at {} cannot be reached: {e}", shown(&uri)),
                        ));
                    }
                    Err(Failure::Fatal(e)) => {
                        // A channel the broker closed (404 for a missing
                        // exchange) is opened again by `Link::channel`; one
                        // with a confirm still due is dropped here, so a
                        // late confirm is not taken for the next message's.
                        if e.status == 504 {
                            link.channel = None;
                        }
                        return Err(e);
                    }
                }
            }
            Ok(Arc::new(json!({
                "published": true,
                "exchange": out.exchange,
                "routingKey": out.routing_key,
            })))
        })
    }
}
