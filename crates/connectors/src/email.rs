//! `email`: send mail over SMTP, with STARTTLS (default), implicit TLS or
//! a plain connection, and a login when the server wants one. Text, HTML
//! (both as multipart/alternative) and attachments. Each compiled step
//! keeps one pooled transport per server, so a deployment reuses its
//! connections.
//!
//! TLS is rustls through lettre. lettre's `aws-lc-rs` feature makes it use
//! the process's default crypto provider when one is installed
//! ([`crate::install_tls_provider`]) and aws-lc-rs otherwise, so this step
//! needs nothing installed and never brings in another provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice_engine::{
    Context, FlowError, Message, Step, StepCx, StepFactory, StepFuture, schema_of,
};
use sluice_expr::{Scope, Template, ValueTemplate};
use sluice_spec::{FieldPath, StepKind};

use crate::input::{self, as_text, bad_input};

/// Addresses: one, a comma-separated list, or a list.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum Addresses {
    /// One address (`Ann <ann@example.com>` or `ann@example.com`), several
    /// separated by commas, or an expression giving a string or a list.
    One(String),
    /// Several addresses; each may hold expressions.
    Many(Vec<String>),
}

/// Fields of the `email` step.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EmailConfig {
    /// The server: `smtp://user:pass@host:587` (STARTTLS), `smtps://host`
    /// (implicit TLS, port 465), `smtp://host:25?tls=none` (plain); may
    /// hold expressions.
    #[serde(default)]
    url: Option<String>,
    /// Instead of `url`: an account (type generic or basic) with `host`,
    /// `port` (default 587, 465 with `tls: tls`), `username`, `password`
    /// and `tls`: starttls (default), tls or none.
    #[serde(default)]
    account: Option<String>,
    /// Trust any server certificate (self-signed, other name): for test
    /// servers only (default false).
    #[serde(default)]
    accept_invalid_certs: bool,
    /// The sender (`Shop <shop@example.com>`); may hold expressions.
    from: String,
    /// Recipients: an address, a comma-separated list or a list; may hold
    /// expressions.
    #[serde(default)]
    to: Option<Addresses>,
    /// Copy recipients, like `to`.
    #[serde(default)]
    cc: Option<Addresses>,
    /// Blind copy recipients, like `to`: in the envelope, never in the
    /// headers.
    #[serde(default)]
    bcc: Option<Addresses>,
    /// Where replies go, like `to`.
    #[serde(default)]
    reply_to: Option<Addresses>,
    /// The subject; may hold expressions.
    #[serde(default)]
    subject: Option<String>,
    /// The plain text body; may hold expressions.
    #[serde(default)]
    text: Option<String>,
    /// The HTML body; may hold expressions. With `text` too, the mail is
    /// multipart/alternative.
    #[serde(default)]
    html: Option<String>,
    /// A list of `{filename, contentType, content}` (content in base64),
    /// or an expression giving one.
    #[serde(default)]
    attachments: Option<Value>,
    /// Extra headers (`X-Order: "{{ message.id }}"`); values may hold
    /// expressions. `Message-ID` replaces the generated one.
    #[serde(default)]
    headers: Option<Value>,
}

pub(crate) const EMAIL: StepFactory = StepFactory {
    kind: StepKind {
        name: "email",
        summary: "Send mail over SMTP (STARTTLS, TLS or plain; text, HTML, attachments).",
        schema: schema_of::<EmailConfig>,
    },
    compile,
};

/// How the connection is secured.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No TLS at all.
    None,
}

impl TlsMode {
    fn parse(text: &str) -> Option<TlsMode> {
        match text {
            "starttls" => Some(TlsMode::StartTls),
            "tls" => Some(TlsMode::Implicit),
            "none" => Some(TlsMode::None),
            _ => None,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 465,
            _ => 587,
        }
    }
}

/// One server and login: the key of the transport cache.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Server {
    host: String,
    port: u16,
    tls: TlsMode,
    username: Option<String>,
    password: Option<String>,
}

type Transport = AsyncSmtpTransport<Tokio1Executor>;

struct EmailStep {
    url: Option<Template>,
    account: Option<String>,
    accept_invalid_certs: bool,
    from: Template,
    to: Vec<Template>,
    cc: Vec<Template>,
    bcc: Vec<Template>,
    reply_to: Vec<Template>,
    subject: Option<Template>,
    text: Option<Template>,
    html: Option<Template>,
    attachments: Option<ValueTemplate>,
    headers: Option<ValueTemplate>,
    transports: Mutex<HashMap<Server, Transport>>,
}

/// Headers the step's own fields (or lettre) set; `headers` may not.
const RESERVED: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
];

fn compile(cx: &mut StepCx<'_, '_>) -> Option<Box<dyn Step>> {
    let config: EmailConfig = cx.config()?;
    let base = cx.path().clone();
    input::url_or_account(
        cx,
        "the server",
        config.url.as_ref(),
        config.account.as_ref(),
    )?;
    if config.to.is_none() && config.cc.is_none() && config.bcc.is_none() {
        cx.problem(
            base.key("to"),
            "the mail needs recipients: `to`, `cc` or `bcc`",
        );
        return None;
    }
    if config.text.is_none() && config.html.is_none() && config.attachments.is_none() {
        cx.problem(
            base.key("text"),
            "the mail needs a body: `text`, `html` (or both) or `attachments`",
        );
        return None;
    }
    let url = match &config.url {
        Some(u) => {
            let t = cx.template("url", u)?;
            if let Some(Err(e)) = literal_text(&t).map(|text| parse_url(text.trim())) {
                cx.problem(base.key("url"), e);
                return None;
            }
            Some(t)
        }
        None => None,
    };
    let from = cx.template("from", &config.from)?;
    if let Some(Err(e)) = literal_text(&from).map(|text| mailbox("from", &text)) {
        cx.problem(base.key("from"), unprefixed("from", e.message));
        return None;
    }
    let to = addresses(cx, &base, "to", config.to.as_ref())?;
    let cc = addresses(cx, &base, "cc", config.cc.as_ref())?;
    let bcc = addresses(cx, &base, "bcc", config.bcc.as_ref())?;
    let reply_to = addresses(cx, &base, "replyTo", config.reply_to.as_ref())?;
    let optional = |cx: &mut StepCx<'_, '_>, field: &str, text: &Option<String>| match text {
        Some(t) => cx.template(field, t).map(Some),
        None => Some(None),
    };
    let subject = optional(cx, "subject", &config.subject)?;
    let text = optional(cx, "text", &config.text)?;
    let html = optional(cx, "html", &config.html)?;
    let attachments = match &config.attachments {
        Some(v @ (Value::Array(_) | Value::String(_))) => {
            Some(cx.value_template("attachments", v)?)
        }
        Some(_) => {
            cx.problem(
                base.key("attachments"),
                "attachments must be a list of {filename, contentType, content} or an expression giving one",
            );
            return None;
        }
        None => None,
    };
    let headers = match &config.headers {
        Some(Value::Object(map)) => {
            for name in map.keys() {
                if let Err(e) = header_name(name) {
                    cx.problem(base.key("headers").key(name), e.message);
                    return None;
                }
            }
            Some(cx.value_template("headers", &Value::Object(map.clone()))?)
        }
        Some(v @ Value::String(_)) => Some(cx.value_template("headers", v)?),
        Some(_) => {
            cx.problem(
                base.key("headers"),
                "headers must be an object of names and values",
            );
            return None;
        }
        None => None,
    };
    Some(Box::new(EmailStep {
        url,
        account: config.account,
        accept_invalid_certs: config.accept_invalid_certs,
        from,
        to,
        cc,
        bcc,
        reply_to,
        subject,
        text,
        html,
        attachments,
        headers,
        transports: Mutex::new(HashMap::new()),
    }))
}

/// The text of a template without expressions.
fn literal_text(t: &Template) -> Option<String> {
    if !t.is_literal() {
        return None;
    }
    let null = Value::Null;
    t.render(&Scope::new(&null)).ok().map(|s| s.into_owned())
}

/// Compiles an address field; literal addresses are checked here.
fn addresses(
    cx: &mut StepCx<'_, '_>,
    base: &FieldPath,
    field: &str,
    config: Option<&Addresses>,
) -> Option<Vec<Template>> {
    let sources: Vec<(FieldPath, &String)> = match config {
        None => return Some(Vec::new()),
        Some(Addresses::One(s)) => vec![(base.key(field), s)],
        Some(Addresses::Many(list)) => list
            .iter()
            .enumerate()
            .map(|(i, s)| (base.key(field).index(i), s))
            .collect(),
    };
    let mut out = Vec::new();
    for (path, src) in sources {
        let t = cx.template_at(path.clone(), src)?;
        let checked = literal_text(&t)
            .map(|text| push_addresses(field, &Value::String(text), &mut Vec::new()));
        if let Some(Err(e)) = checked {
            cx.problem(path, unprefixed(field, e.message));
            return None;
        }
        out.push(t);
    }
    Some(out)
}

/// A runtime message without its `field: ` (the load error names the path).
fn unprefixed(field: &str, message: String) -> String {
    match message.strip_prefix(&format!("{field}: ")) {
        Some(rest) => rest.to_owned(),
        None => message,
    }
}

fn email_error(status: u16, message: impl Into<String>) -> FlowError {
    FlowError::new("email", status, message)
}

fn mailbox(field: &str, text: &str) -> Result<Mailbox, FlowError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(bad_input("email", format!("{field}: the address is empty")));
    }
    text.parse::<Mailbox>().map_err(|_| {
        bad_input(
            "email",
            format!("{field}: '{text}' is not an email address"),
        )
    })
}

/// Adds the addresses of `value` (a string of one or more, a list, or
/// null for none) to `out`.
fn push_addresses(field: &str, value: &Value, out: &mut Vec<Mailbox>) -> Result<(), FlowError> {
    match value {
        Value::Null => Ok(()),
        Value::String(s) if s.trim().is_empty() => Ok(()),
        Value::String(s) => {
            let list: Mailboxes = s.trim().parse().map_err(|_| {
                bad_input(
                    "email",
                    format!("{field}: '{}' is not an email address", s.trim()),
                )
            })?;
            out.extend(list);
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| push_addresses(field, item, out)),
        other => Err(bad_input(
            "email",
            format!("{field}: {other} is not an email address"),
        )),
    }
}

fn header_name(name: &str) -> Result<HeaderName, FlowError> {
    let lower = name.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) {
        return Err(bad_input(
            "email",
            format!("the '{name}' header is set by the step's own fields, not `headers`"),
        ));
    }
    if name.bytes().any(|b| !(33..=126).contains(&b)) {
        return Err(bad_input("email", format!("'{name}' is not a header name")));
    }
    HeaderName::new_from_ascii(name.to_owned())
        .map_err(|_| bad_input("email", format!("'{name}' is not a header name")))
}

/// Decodes `%XX` escapes (user and password of a URL).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(b) = escaped {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads `smtp://user:pass@host:port?tls=none` or `smtps://…`.
fn parse_url(url: &str) -> Result<Server, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "'{url}' is not an SMTP URL: it must start with smtp:// or smtps://"
        ));
    };
    let mut tls = match scheme.to_ascii_lowercase().as_str() {
        "smtp" => TlsMode::StartTls,
        "smtps" => TlsMode::Implicit,
        other => {
            return Err(format!(
                "'{other}://' is not an SMTP URL scheme: use smtp:// or smtps://"
            ));
        }
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (auth, host_port) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    if host_port.contains('/') {
        return Err("an SMTP URL has no path: smtp://user:pass@host:port".to_owned());
    }
    let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err(format!("'{host_port}' is not a host"));
        };
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("'{host_port}' is not a host")),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("the SMTP URL has no host".to_owned());
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("tls", value)) => {
                    let mode = TlsMode::parse(value).ok_or_else(|| {
                        format!("tls={value}: the URL's tls is starttls, tls or none")
                    })?;
                    if tls == TlsMode::Implicit && mode != TlsMode::Implicit {
                        return Err(
                            "smtps:// is always TLS; use smtp:// for tls=starttls or tls=none"
                                .to_owned(),
                        );
                    }
                    tls = mode;
                }
                _ => {
                    return Err(format!(
                        "'{pair}' is not a parameter of an SMTP URL (only tls=starttls|tls|none)"
                    ));
                }
            }
        }
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("'{p}' is not a port"))?,
        None => tls.default_port(),
    };
    let (username, password) = match auth {
        Some(a) => match a.split_once(':') {
            Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
            None => (Some(percent_decode(a)), None),
        },
        None => (None, None),
    };
    Ok(Server {
        host: host.to_owned(),
        port,
        tls,
        username: username.filter(|u| !u.is_empty()),
        password,
    })
}

/// The server of an account: `host`, `port`, `tls`, `username`,
/// `password` (or a `url` in place of host, port and tls).
fn account_server(name: &str, account: &Value) -> Result<Server, FlowError> {
    let kind = input::account_text(account, "type").unwrap_or("generic");
    if !matches!(kind, "generic" | "basic") {
        return Err(bad_input(
            "email",
            format!("account '{name}' is of type '{kind}'; email takes a generic or basic account"),
        ));
    }
    let text = |field: &str| input::account_text(account, field).map(str::to_owned);
    let mut server = match (text("host"), text("url")) {
        (Some(host), _) => {
            let tls = match text("tls") {
                Some(t) => TlsMode::parse(&t).ok_or_else(|| {
                    bad_input(
                        "email",
                        format!("account '{name}': tls '{t}' is not starttls, tls or none"),
                    )
                })?,
                None => TlsMode::StartTls,
            };
            let port = match account.get("port") {
                None | Some(Value::Null) => tls.default_port(),
                Some(p) => {
                    let n = match p {
                        Value::Number(n) => n.as_u64(),
                        Value::String(s) => s.trim().parse::<u64>().ok(),
                        _ => None,
                    };
                    n.and_then(|n| u16::try_from(n).ok())
                        .filter(|n| *n != 0)
                        .ok_or_else(|| {
                            bad_input("email", format!("account '{name}': {p} is not a port"))
                        })?
                }
            };
            Server {
                host: host.trim().to_owned(),
                port,
                tls,
                username: None,
                password: None,
            }
        }
        (None, Some(url)) => parse_url(url.trim())
            .map_err(|e| bad_input("email", format!("account '{name}': {e}")))?,
        (None, None) => {
            return Err(bad_input(
                "email",
                format!("account '{name}' has no 'host' field"),
            ));
        }
    };
    if let Some(user) = text("username").filter(|u| !u.is_empty()) {
        server.username = Some(user);
    }
    if let Some(password) = text("password") {
        server.password = Some(password);
    }
    Ok(server)
}

/// A lettre error as the step's error.
fn smtp_error(server: &Server, e: &lettre::transport::smtp::Error) -> FlowError {
    let at = format!("{}:{}", server.host, server.port);
    if let Some(code) = e.status() {
        let code = u16::from(code);
        let reply = std::error::Error::source(e)
            .map(ToString::to_string)
            .unwrap_or_default();
        let details = json!({"smtpCode": code, "reply": reply});
        let (status, what) = match code {
            530 | 534 | 535 | 538 => (401, "the SMTP server refused the login"),
            500..=599 => (400, "the SMTP server refused the mail"),
            _ => (503, "the SMTP server cannot take the mail now"),
        };
        return email_error(status, format!("{what}: {code} {reply}")).with_details(details);
    }
    let text = e.to_string();
    if e.is_client() {
        if text.contains("authentication mechanism") {
            return email_error(
                401,
                format!(
                    "cannot log in to the SMTP server at {at}: it offers no PLAIN or LOGIN authentication"
                ),
            );
        }
        if text.contains("non-ascii") {
            return bad_input("email", text);
        }
    }
    if e.is_timeout() {
        return email_error(
            504,
            format!("the SMTP server at {at} did not answer in time"),
        );
    }
    // lettre nests its errors ("Connection error: Connection error: …"):
    // the innermost cause says it best.
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let cause = cause.to_string();
    let hint = if cause.to_ascii_lowercase().contains("certificate") {
        " (the server's certificate is not trusted; `acceptInvalidCerts: true` is for test servers)"
    } else if cause.contains("STARTTLS") {
        " (`tls: none` sends in the clear, for trusted local relays only)"
    } else {
        ""
    };
    email_error(
        502,
        format!("cannot send through the SMTP server at {at}: {cause}{hint}"),
    )
}

/// A MIME part: one body, or several.
enum Part {
    Single(SinglePart),
    Multi(MultiPart),
}

impl EmailStep {
    fn server(&self, cx: &Context, message: &Value) -> Result<Server, FlowError> {
        if let Some(t) = &self.url {
            let url = cx.render(t, message)?;
            return parse_url(url.trim()).map_err(|e| bad_input("email", e));
        }
        let name = self.account.as_deref().unwrap_or_default();
        account_server(name, input::account("email", cx, name)?)
    }

    /// The pooled transport for `server`, made on first use.
    fn transport(&self, server: &Server) -> Result<Transport, FlowError> {
        let mut transports = self
            .transports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = transports.get(server) {
            return Ok(t.clone());
        }
        let parameters = || {
            TlsParameters::builder(server.host.clone())
                .dangerous_accept_invalid_certs(self.accept_invalid_certs)
                .dangerous_accept_invalid_hostnames(self.accept_invalid_certs)
                .build()
                .map_err(|e| email_error(500, format!("cannot set up TLS: {e}")))
        };
        let tls = match server.tls {
            TlsMode::StartTls => Tls::Required(parameters()?),
            TlsMode::Implicit => Tls::Wrapper(parameters()?),
            TlsMode::None => Tls::None,
        };
        let mut builder = Transport::builder_dangerous(server.host.clone())
            .port(server.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)))
            .pool_config(
                PoolConfig::new()
                    .max_size(10)
                    .idle_timeout(Duration::from_secs(60)),
            );
        if let Some(user) = &server.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                server.password.clone().unwrap_or_default(),
            ));
        }
        let transport = builder.build();
        transports.insert(server.clone(), transport.clone());
        Ok(transport)
    }

    fn addresses(
        &self,
        field: &str,
        templates: &[Template],
        cx: &Context,
        message: &Value,
    ) -> Result<Vec<Mailbox>, FlowError> {
        let mut out = Vec::new();
        for t in templates {
            let value = cx.eval(t, message)?;
            push_addresses(field, &value, &mut out)?;
        }
        Ok(out)
    }

    fn attachments(&self, cx: &Context, message: &Value) -> Result<Vec<SinglePart>, FlowError> {
        let Some(t) = &self.attachments else {
            return Ok(Vec::new());
        };
        let items = match cx.eval_value(t, message)? {
            Value::Null => return Ok(Vec::new()),
            Value::Array(items) => items,
            other => {
                return Err(bad_input(
                    "email",
                    format!(
                        "attachments must be a list of {{filename, contentType, content}}, not {other}"
                    ),
                ));
            }
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| attachment(i, item))
            .collect()
    }

    fn headers(&self, cx: &Context, message: &Value) -> Result<Map<String, Value>, FlowError> {
        let Some(t) = &self.headers else {
            return Ok(Map::new());
        };
        match cx.eval_value(t, message)? {
            Value::Object(map) => Ok(map),
            Value::Null => Ok(Map::new()),
            _ => Err(bad_input("email", "headers must be an object")),
        }
    }

    fn build(&self, cx: &Context, message: &Value) -> Result<lettre::Message, FlowError> {
        let from = mailbox("from", &cx.render(&self.from, message)?)?;
        let to = self.addresses("to", &self.to, cx, message)?;
        let cc = self.addresses("cc", &self.cc, cx, message)?;
        let bcc = self.addresses("bcc", &self.bcc, cx, message)?;
        if to.is_empty() && cc.is_empty() && bcc.is_empty() {
            return Err(bad_input(
                "email",
                "the mail has no recipients: to, cc and bcc are all empty",
            ));
        }
        let mut builder = lettre::Message::builder().from(from);
        for m in to {
            builder = builder.to(m);
        }
        for m in cc {
            builder = builder.cc(m);
        }
        for m in bcc {
            builder = builder.bcc(m);
        }
        for m in self.addresses("replyTo", &self.reply_to, cx, message)? {
            builder = builder.reply_to(m);
        }
        if let Some(t) = &self.subject {
            builder = builder.subject(cx.render(t, message)?.into_owned());
        }
        let mut message_id = None;
        for (name, value) in self.headers(cx, message)? {
            if value.is_null() {
                continue;
            }
            if name.eq_ignore_ascii_case("message-id") {
                message_id = Some(as_text(value));
                continue;
            }
            let header = header_name(&name)?;
            builder = builder.raw_header(HeaderValue::new(header, as_text(value)));
        }
        builder = builder.message_id(message_id);

        let render = |t: &Option<Template>| -> Result<Option<String>, FlowError> {
            Ok(match t {
                Some(t) => Some(cx.render(t, message)?.into_owned()),
                None => None,
            })
        };
        let body = match (render(&self.text)?, render(&self.html)?) {
            (Some(text), None) => Some(Part::Single(SinglePart::plain(text))),
            (None, Some(html)) => Some(Part::Single(SinglePart::html(html))),
            (Some(text), Some(html)) => {
                Some(Part::Multi(MultiPart::alternative_plain_html(text, html)))
            }
            (None, None) => None,
        };
        let attachments = self.attachments(cx, message)?;
        let built = if attachments.is_empty() {
            match body {
                Some(Part::Single(p)) => builder.singlepart(p),
                Some(Part::Multi(m)) => builder.multipart(m),
                None => builder.singlepart(SinglePart::plain(String::new())),
            }
        } else {
            let mut parts = attachments.into_iter();
            let mut mixed = match body {
                Some(Part::Single(p)) => MultiPart::mixed().singlepart(p),
                Some(Part::Multi(m)) => MultiPart::mixed().multipart(m),
                None => match parts.next() {
                    Some(p) => MultiPart::mixed().singlepart(p),
                    None => MultiPart::mixed().build(),
                },
            };
            for p in parts {
                mixed = mixed.singlepart(p);
            }
            builder.multipart(mixed)
        };
        built.map_err(|e| bad_input("email", format!("cannot build the mail: {e}")))
    }
}

/// One attachment: `{filename, contentType, content}`, content in base64.
fn attachment(i: usize, item: Value) -> Result<SinglePart, FlowError> {
    let at = format!("attachments[{i}]");
    let Value::Object(fields) = item else {
        return Err(bad_input(
            "email",
            format!("{at} must be an object with filename, contentType and content"),
        ));
    };
    if let Some(k) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "filename" | "contentType" | "content"))
    {
        return Err(bad_input(
            "email",
            format!(
                "{at}: unknown field '{k}' (an attachment has filename, contentType and content)"
            ),
        ));
    }
    let filename = match fields.get("filename") {
        Some(Value::String(f)) if !f.trim().is_empty() && !f.contains(char::is_control) => {
            f.clone()
        }
        _ => {
            return Err(bad_input(
                "email",
                format!("{at}.filename must be a file name"),
            ));
        }
    };
    let content_type = match fields.get("contentType") {
        None | Some(Value::Null) => "application/octet-stream".to_owned(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(other) => {
            return Err(bad_input(
                "email",
                format!("{at}.contentType: {other} is not a media type"),
            ));
        }
    };
    let content_type = ContentType::parse(&content_type).map_err(|_| {
        bad_input(
            "email",
            format!("{at}.contentType: '{content_type}' is not a media type"),
        )
    })?;
    let content = match fields.get("content") {
        Some(Value::String(s)) => {
            let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD.decode(compact.as_bytes())
                })
                .map_err(|_| bad_input("email", format!("{at}.content is not base64")))?
        }
        _ => {
            return Err(bad_input(
                "email",
                format!("{at}.content must be the file's bytes in base64"),
            ));
        }
    };
    // Always base64, so the bytes arrive as they are (no line-end changes).
    let body = match Body::new_with_encoding(content, ContentTransferEncoding::Base64) {
        Ok(body) => body,
        Err(content) => Body::new(content),
    };
    Ok(Attachment::new(filename).body(body, content_type))
}

impl Step for EmailStep {
    fn run<'a>(&'a self, message: Message, cx: &'a mut Context) -> StepFuture<'a> {
        Box::pin(async move {
            let server = self.server(cx, &message)?;
            let mail = self.build(cx, &message)?;
            let accepted: Vec<Value> = mail
                .envelope()
                .to()
                .iter()
                .map(|a| Value::String(a.to_string()))
                .collect();
            let message_id = mail
                .headers()
                .get_raw("Message-ID")
                .map(str::to_owned)
                .unwrap_or_default();
            let transport = self.transport(&server)?;
            transport
                .send(mail)
                .await
                .map_err(|e| smtp_error(&server, &e))?;
            Ok(Arc::new(json!({
                "sent": true,
                "messageId": message_id,
                "accepted": accepted,
            })))
        })
    }
}
