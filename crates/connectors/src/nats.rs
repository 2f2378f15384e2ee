//! `nats`: publish to a NATS subject, make a request and take the reply,
//! or publish to a JetStream stream and get its acknowledgement. One
//! client per server URL and compiled step (so per deployment); the client
//! reconnects on its own when the server comes back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, schema_of,
};
use sluice_expr::{Template, ValueTemplate};
use sluice_spec::{HumanDuration, StepKind};
use tokio::sync::Mutex;

use crate::input::{self, as_text, bad_input};

#[derive(Deserialize, JsonSchema, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Operation {
    /// Core NATS publish, fire and forget (default).
    #[default]
    Publish,
    /// Publish and wait for one reply.
    Request,
    /// Publish to a JetStream stream and wait for its acknowledgement.
    JetstreamPublish,
}

/// Fields of the `nats` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NatsConfig {
    /// publish (default), request or jetstream-publish.
    #[serde(default)]
    operation: Operation,
    /// The server: `nats://host:4222`; may hold expressions.
    #[serde(default)]
    url: Option<String>,
    /// Instead of `url`: an account with a `url` field and, optionally,
    /// `token`, or `username` and `password`.
    #[serde(default)]
    account: Option<String>,
    /// The subject; may hold expressions (`orders.{{ message.region }}`).
    subject: String,
    /// What to send (default: the message); strings as they are, anything
    /// else as JSON text.
    #[serde(default)]
    payload: Option<Value>,
    /// Message headers; values may hold expressions.
    #[serde(default)]
    headers: Option<Value>,
    /// jetstream-publish: a message id; the stream drops a second message
    /// with the same id within its duplicate window (`Nats-Msg-Id`).
    #[serde(default)]
    message_id: Option<String>,
    /// request and jetstream-publish: how long to wait (default 5s).
    #[serde(default)]
    reply_timeout: Option<HumanDuration>,
}

pub(crate) const NATS: StepFactory = StepFactory {
    kind: StepKind {
        name: "nats",
        summary: "Publish to NATS, make a request and take the reply, or publish to JetStream.",
        schema: schema_of::<NatsConfig>,
    },
    compile,
};

struct NatsStep {
    operation: Operation,
    url: Option<Template>,
    account: Option<String>,
    subject: Template,
    payload: Option<ValueTemplate>,
    headers: Option<ValueTemplate>,
    message_id: Option<Template>,
    reply_timeout: Duration,
    clients: Mutex<HashMap<String, async_nats::Client>>,
}

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: NatsConfig = cx.config()?;
    input::url_or_account(
        cx,
        "the server",
        config.url.as_ref(),
        config.account.as_ref(),
    )?;
    if config.message_id.is_some() && config.operation != Operation::JetstreamPublish {
        let path = cx.path().key("messageId");
        cx.problem(path, "messageId is for `operation: jetstream-publish`");
        return None;
    }
    let url = match &config.url {
        Some(u) => Some(cx.template("url", u)?),
        None => None,
    };
    let subject = cx.template("subject", &config.subject)?;
    let payload = match &config.payload {
        Some(v) => Some(cx.value_template("payload", v)?),
        None => None,
    };
    let headers = match &config.headers {
        Some(v) => Some(cx.value_template("headers", v)?),
        None => None,
    };
    let message_id = match &config.message_id {
        Some(t) => Some(cx.template("messageId", t)?),
        None => None,
    };
    Some(Box::new(NatsStep {
        operation: config.operation,
        url,
        account: config.account,
        subject,
        payload,
        headers,
        message_id,
        reply_timeout: config.reply_timeout.map_or(Duration::from_secs(5), |d| d.0),
        clients: Mutex::new(HashMap::new()),
    }))
}

fn nats_error(status: u16, message: impl Into<String>) -> FlowError {
    FlowError::new("nats", status, message)
}

/// A received payload: JSON when it parses, else text, else base64.
fn payload_value(bytes: &[u8]) -> Value {
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        return value;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => {
            use base64::Engine as _;
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

fn headers_value(headers: Option<&async_nats::HeaderMap>) -> Value {
    let mut out = Map::new();
    if let Some(h) = headers {
        for (name, values) in h.iter() {
            let joined: Vec<&str> = values.iter().map(|v| v.as_str()).collect();
            out.insert(name.to_string(), Value::String(joined.join(", ")));
        }
    }
    Value::Object(out)
}

impl NatsStep {
    /// The server URL and how to log in.
    fn server(
        &self,
        cx: &Context,
        message: &Value,
    ) -> Result<(String, async_nats::ConnectOptions), FlowError> {
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(self.reply_timeout));
        if let Some(t) = &self.url {
            return Ok((cx.render(t, message)?.trim().to_owned(), options));
        }
        let name = self.account.as_deref().unwrap_or_default();
        let account = input::account("nats", cx, name)?;
        let url = input::account_field("nats", name, account, "url")?.to_owned();
        let field = |f: &str| input::account_text(account, f).map(str::to_owned);
        let options = match (field("token"), field("username"), field("password")) {
            (Some(token), _, _) => options.token(token),
            (None, Some(user), Some(password)) => options.user_and_password(user, password),
            _ => options,
        };
        Ok((url, options))
    }

    async fn client(
        &self,
        url: &str,
        options: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client, FlowError> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(url) {
            return Ok(c.clone());
        }
        let client = options
            .connect(url)
            .await
            .map_err(|e| nats_error(502, format!("cannot connect to NATS at {url}: {e}")))?;
        clients.insert(url.to_owned(), client.clone());
        Ok(client)
    }

    fn headers(
        &self,
        cx: &Context,
        message: &Value,
    ) -> Result<Option<async_nats::HeaderMap>, FlowError> {
        let Some(t) = &self.headers else {
            return Ok(None);
        };
        let Value::Object(map) = cx.eval_value(t, message)? else {
            return Err(bad_input("nats", "headers must be an object"));
        };
        let mut headers = async_nats::HeaderMap::new();
        for (k, v) in map {
            if v.is_null() {
                continue;
            }
            if k.is_empty() || k.contains([':', ' ', '\r', '\n']) {
                return Err(bad_input("nats", format!("'{k}' is not a header name")));
            }
            headers.insert(k.as_str(), as_text(v).as_str());
        }
        Ok(Some(headers))
    }
}

impl Step for NatsStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let (url, options) = self.server(cx, &message)?;
            let subject = cx.render(&self.subject, &message)?.trim().to_owned();
            if subject.is_empty() || subject.contains(char::is_whitespace) {
                return Err(bad_input("nats", format!("'{subject}' is not a subject")));
            }
            let payload = match &self.payload {
                Some(t) => cx.eval_value(t, &message)?,
                None => (*message).clone(),
            };
            let payload = bytes::Bytes::from(as_text(payload));
            let mut headers = self.headers(cx, &message)?;
            let client = self.client(&url, options).await?;
            let out = match self.operation {
                Operation::Publish => {
                    let sent = match headers {
                        Some(h) => {
                            client
                                .publish_with_headers(subject.clone(), h, payload)
                                .await
                        }
                        None => client.publish(subject.clone(), payload).await,
                    };
                    sent.map_err(|e| nats_error(502, format!("publishing failed: {e}")))?;
                    client
                        .flush()
                        .await
                        .map_err(|e| nats_error(502, format!("publishing failed: {e}")))?;
                    json!({"published": true, "subject": subject})
                }
                Operation::Request => {
                    let reply = match headers {
                        Some(h) => {
                            client
                                .request_with_headers(subject.clone(), h, payload)
                                .await
                        }
                        None => client.request(subject.clone(), payload).await,
                    };
                    let reply = reply.map_err(|e| {
                        use async_nats::RequestErrorKind as K;
                        match e.kind() {
                            K::NoResponders => {
                                nats_error(503, format!("nothing answers on '{subject}'"))
                            }
                            K::TimedOut => nats_error(
                                504,
                                format!("no reply on '{subject}' within {:?}", self.reply_timeout),
                            ),
                            _ => nats_error(502, format!("the request failed: {e}")),
                        }
                    })?;
                    json!({
                        "subject": reply.subject.to_string(),
                        "headers": headers_value(reply.headers.as_ref()),
                        "payload": payload_value(&reply.payload),
                    })
                }
                Operation::JetstreamPublish => {
                    if let Some(t) = &self.message_id {
                        let id = cx.render(t, &message)?.into_owned();
                        headers
                            .get_or_insert_with(async_nats::HeaderMap::new)
                            .insert("Nats-Msg-Id", id.as_str());
                    }
                    let mut js = async_nats::jetstream::new(client);
                    js.set_timeout(self.reply_timeout);
                    let sent = match headers {
                        Some(h) => js.publish_with_headers(subject.clone(), h, payload).await,
                        None => js.publish(subject.clone(), payload).await,
                    };
                    let publish_error = |e: async_nats::jetstream::context::PublishError| {
                        use async_nats::jetstream::context::PublishErrorKind as K;
                        match e.kind() {
                            K::StreamNotFound => {
                                nats_error(404, format!("no JetStream stream takes '{subject}'"))
                            }
                            K::TimedOut => nats_error(
                                504,
                                format!("JetStream did not acknowledge '{subject}' in time"),
                            ),
                            _ => nats_error(502, format!("publishing to JetStream failed: {e}")),
                        }
                    };
                    let ack = sent.map_err(publish_error)?.await.map_err(publish_error)?;
                    json!({"stream": ack.stream, "sequence": ack.sequence, "duplicate": ack.duplicate})
                }
            };
            Ok(Arc::new(out))
        })
    }
}
