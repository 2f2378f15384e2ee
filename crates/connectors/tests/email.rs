//! `email` against a local SMTP server the test starts (tests/smtp_server):
//! STARTTLS, implicit TLS and plain connections, logins, refusals, MIME
//! bodies and attachments, the envelope.

#![cfg(feature = "email")]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod smtp_server;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sluice_engine::{FlowError, Plan, RunOptions, load_str};
use sluice_spec::Format;
use smtp_server::{Config, DEFERRED, PASSWORD, REJECTED, Security, Server, USER};

fn plan(body: &str) -> Plan {
    let yaml = format!("name: t\nsteps:\n  - type: email\n{body}");
    load_str(
        "t.yaml",
        &yaml,
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn exec_with(plan: &Plan, input: Value, accounts: Value) -> Result<Value, FlowError> {
    let options = RunOptions {
        accounts: Arc::new(accounts),
        ..RunOptions::default()
    };
    plan.execute(input, options).await.into_result()
}

async fn exec(plan: &Plan, input: Value) -> Result<Value, FlowError> {
    exec_with(plan, input, json!({})).await
}

/// The `mail` account: a login on the server at `port`.
fn account(port: u16, tls: &str, password: &str) -> Value {
    json!({"mail": {
        "type": "basic",
        "host": "127.0.0.1",
        "port": port,
        "username": USER,
        "password": password,
        "tls": tls,
    }})
}

/// A STARTTLS server that wants a login.
async fn secure_server() -> Server {
    sluice_connectors::install_tls_provider();
    Server::start(Config::new(Security::StartTls).with_auth()).await
}

/// A plain server (no TLS offered) and the URL of it.
async fn plain_server() -> (Server, String) {
    sluice_connectors::install_tls_provider();
    let server = Server::start(Config::new(Security::Plain)).await;
    let url = format!("smtp://127.0.0.1:{}?tls=none", server.port);
    (server, url)
}

/// The header block of a message or part, unfolded, names lowercased.
fn headers(block: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in block.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    out
}

fn header(block: &str, name: &str) -> Option<String> {
    headers(block)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// The top-level headers and body of a raw message.
fn split(data: &str) -> (&str, &str) {
    data.split_once("\r\n\r\n").unwrap_or((data, ""))
}

/// Every leaf MIME part of `data`: (headers, body), following each
/// `boundary=` it finds.
fn parts(data: &str) -> Vec<(String, String)> {
    let mut boundaries = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.find("boundary=") {
        let after = &rest[at + "boundary=".len()..];
        let value = if let Some(quoted) = after.strip_prefix('"') {
            &quoted[..quoted.find('"').unwrap()]
        } else {
            let end = after.find([';', '\r', '\n', ' ']).unwrap_or(after.len());
            &after[..end]
        };
        boundaries.push(format!("--{value}"));
        rest = after;
    }
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in data.split("\r\n") {
        if boundaries.iter().any(|b| line.starts_with(b.as_str())) {
            if let Some(part) = current.take() {
                out.push(part);
            }
            current = Some(String::new());
        } else if let Some(part) = current.as_mut() {
            part.push_str(line);
            part.push_str("\r\n");
        }
    }
    out.into_iter()
        .map(|p| {
            let (h, b) = split(&p);
            (h.to_owned(), b.trim_end().to_owned())
        })
        .filter(|(h, _)| {
            !header(h, "content-type").is_some_and(|t| t.starts_with("multipart/"))
                && !h.trim().is_empty()
        })
        .collect()
}

/// A part's body with its transfer encoding undone (base64 and 7bit).
fn decoded(headers_block: &str, body: &str) -> Vec<u8> {
    match header(headers_block, "content-transfer-encoding").as_deref() {
        Some("base64") => {
            let compact: String = body.split_whitespace().collect();
            STANDARD.decode(compact).unwrap()
        }
        _ => body.as_bytes().to_vec(),
    }
}

#[tokio::test]
async fn a_text_mail_goes_over_starttls_with_a_login() {
    let server = secure_server().await;
    let p = plan(
        "    account: mail\n    acceptInvalidCerts: true\n    from: \"Shop <shop@example.com>\"\n    to: \"{{ message.email }}\"\n    subject: \"Order {{ message.id }} confirmed\"\n    text: \"Hello {{ message.name }}, thanks for order {{ message.id }}.\"\n",
    );
    let input = json!({"id": "o-1", "name": "Ann", "email": "ann@example.com"});
    let out = exec_with(&p, input, account(server.port, "starttls", PASSWORD))
        .await
        .unwrap();
    assert_eq!(out["sent"], true, "{out}");
    assert_eq!(out["accepted"], json!(["ann@example.com"]));
    let id = out["messageId"].as_str().unwrap();
    assert!(
        id.starts_with('<') && id.ends_with('>') && id.contains('@'),
        "{id}"
    );
    let got = server.received();
    assert_eq!(got.len(), 1);
    let mail = &got[0];
    assert!(mail.tls, "the mail went over STARTTLS");
    assert_eq!(mail.user.as_deref(), Some(USER));
    assert_eq!(mail.mail_from, "shop@example.com");
    assert_eq!(mail.rcpt_to, vec!["ann@example.com"]);
    let (head, body) = split(&mail.data);
    assert_eq!(
        header(head, "subject").as_deref(),
        Some("Order o-1 confirmed")
    );
    assert_eq!(
        header(head, "from").as_deref(),
        Some("Shop <shop@example.com>")
    );
    assert_eq!(header(head, "to").as_deref(), Some("ann@example.com"));
    assert_eq!(header(head, "message-id").as_deref(), Some(id));
    assert!(
        header(head, "content-type")
            .unwrap()
            .starts_with("text/plain"),
        "{head}"
    );
    assert_eq!(body.trim_end(), "Hello Ann, thanks for order o-1.");
}

#[tokio::test]
async fn text_and_html_make_a_multipart_alternative_mail() {
    let (server, url) = plain_server().await;
    let p = plan(&format!(
        "    url: \"{url}\"\n    from: shop@example.com\n    to: ann@example.com\n    subject: Your order\n    text: \"Total: {{{{ message.total }}}}\"\n    html: \"<p>Total: <b>{{{{ message.total }}}}</b></p>\"\n"
    ));
    exec(&p, json!({"total": 12.5})).await.unwrap();
    let mail = &server.received()[0];
    assert!(!mail.tls);
    let (head, _) = split(&mail.data);
    assert!(
        header(head, "content-type")
            .unwrap()
            .starts_with("multipart/alternative"),
        "{head}"
    );
    let parts = parts(&mail.data);
    assert_eq!(parts.len(), 2, "{parts:?}");
    let kind = |i: usize| header(&parts[i].0, "content-type").unwrap();
    assert!(kind(0).starts_with("text/plain"), "{}", kind(0));
    assert!(kind(1).starts_with("text/html"), "{}", kind(1));
    assert_eq!(
        String::from_utf8(decoded(&parts[0].0, &parts[0].1)).unwrap(),
        "Total: 12.5"
    );
    assert_eq!(
        String::from_utf8(decoded(&parts[1].0, &parts[1].1)).unwrap(),
        "<p>Total: <b>12.5</b></p>"
    );
    // html alone is a text/html mail.
    let p = plan(&format!(
        "    url: \"{url}\"\n    from: shop@example.com\n    to: ann@example.com\n    html: \"<p>hi</p>\"\n"
    ));
    exec(&p, json!({})).await.unwrap();
    let second = &server.received()[1];
    let (head, _) = split(&second.data);
    assert!(
        header(head, "content-type")
            .unwrap()
            .starts_with("text/html"),
        "{head}"
    );
}

#[tokio::test]
async fn attachments_are_decoded_from_base64_and_attached() {
    let (server, url) = plain_server().await;
    let binary: Vec<u8> = (0u8..=255).collect();
    let csv = b"sku,qty\nA-1,2\n".to_vec();
    let p = plan(&format!(
        "    url: \"{url}\"\n    from: shop@example.com\n    to: ann@example.com\n    subject: Invoice\n    text: Your invoice is attached.\n    attachments: \"{{{{ message.files }}}}\"\n"
    ));
    let input = json!({"files": [
        {"filename": "invoice.bin", "contentType": "application/octet-stream", "content": STANDARD.encode(&binary)},
        {"filename": "lines.csv", "contentType": "text/csv", "content": STANDARD.encode(&csv)},
    ]});
    exec(&p, input).await.unwrap();
    let mail = &server.received()[0];
    let (head, _) = split(&mail.data);
    assert!(
        header(head, "content-type")
            .unwrap()
            .starts_with("multipart/mixed"),
        "{head}"
    );
    let parts = parts(&mail.data);
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert!(
        header(&parts[0].0, "content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let find = |name: &str| {
        parts
            .iter()
            .find(|(h, _)| {
                header(h, "content-disposition")
                    .is_some_and(|d| d.starts_with("attachment") && d.contains(name))
            })
            .unwrap_or_else(|| panic!("no attachment {name} in {parts:?}"))
    };
    let (h, b) = find("invoice.bin");
    assert_eq!(
        header(h, "content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(decoded(h, b), binary);
    let (h, b) = find("lines.csv");
    assert!(header(h, "content-type").unwrap().starts_with("text/csv"));
    assert_eq!(decoded(h, b), csv);
    // Content that is not base64, or a file without a name, is refused.
    for (files, what) in [
        (
            json!([{"filename": "a.txt", "content": "not base64!"}]),
            "attachments[0].content",
        ),
        (
            json!([{"content": "aGk="}, {"filename": "b"}]),
            "attachments[0].filename",
        ),
        (json!("nope"), "attachments must be a list"),
    ] {
        let e = exec(&p, json!({"files": files})).await.unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("email", 400), "{}", e.message);
        assert!(e.message.contains(what), "{what}: {}", e.message);
    }
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn cc_and_bcc_are_in_the_envelope_but_bcc_is_not_in_the_headers() {
    let (server, url) = plain_server().await;
    let p = plan(&format!(
        "    url: \"{url}\"\n    from: shop@example.com\n    to: [\"Ann <ann@example.com>\", \"{{{{ message.second }}}}\"]\n    cc: \"carl@example.com, Dora <dora@example.com>\"\n    bcc: \"{{{{ message.audit }}}}\"\n    replyTo: support@example.com\n    subject: Hi\n    text: hi\n    headers: {{ X-Order: \"{{{{ message.id }}}}\", Message-ID: \"<o-7@shop.example.com>\" }}\n"
    ));
    let input = json!({"id": "o-7", "second": "bob@example.com", "audit": ["audit@example.com"]});
    let out = exec(&p, input).await.unwrap();
    let all = [
        "ann@example.com",
        "bob@example.com",
        "carl@example.com",
        "dora@example.com",
        "audit@example.com",
    ];
    let mut accepted: Vec<String> = out["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    accepted.sort();
    let mut expected = all.to_vec();
    expected.sort_unstable();
    assert_eq!(accepted, expected);
    assert_eq!(out["messageId"], "<o-7@shop.example.com>");
    let mail = &server.received()[0];
    let mut rcpts = mail.rcpt_to.clone();
    rcpts.sort();
    assert_eq!(rcpts, expected);
    let (head, _) = split(&mail.data);
    assert!(header(head, "bcc").is_none(), "{head}");
    assert!(!head.contains("audit@example.com"), "{head}");
    let to = header(head, "to").unwrap();
    assert!(
        to.contains("ann@example.com") && to.contains("bob@example.com"),
        "{to}"
    );
    let cc = header(head, "cc").unwrap();
    assert!(
        cc.contains("carl@example.com") && cc.contains("dora@example.com"),
        "{cc}"
    );
    assert_eq!(
        header(head, "reply-to").as_deref(),
        Some("support@example.com")
    );
    assert_eq!(header(head, "x-order").as_deref(), Some("o-7"));
    assert_eq!(
        header(head, "message-id").as_deref(),
        Some("<o-7@shop.example.com>")
    );
    // A missing cc (null) is no cc; bcc alone is enough.
    let p = plan(&format!(
        "    url: \"{url}\"\n    from: shop@example.com\n    cc: \"{{{{ message.cc }}}}\"\n    bcc: hidden@example.com\n    text: hi\n"
    ));
    let out = exec(&p, json!({})).await.unwrap();
    assert_eq!(out["accepted"], json!(["hidden@example.com"]));
    let second = &server.received()[1];
    let (head, _) = split(&second.data);
    assert!(!head.contains("hidden@example.com"), "{head}");
}

#[tokio::test]
async fn starttls_needs_a_trusted_certificate_unless_told_otherwise() {
    let server = secure_server().await;
    let body =
        "    account: mail\n    from: shop@example.com\n    to: ann@example.com\n    text: hi\n";
    let strict = plan(body);
    let e = exec_with(
        &strict,
        json!({}),
        account(server.port, "starttls", PASSWORD),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("email", 502), "{}", e.message);
    assert!(e.message.contains("certificate"), "{}", e.message);
    assert!(server.received().is_empty());
    let relaxed = plan(&format!("{body}    acceptInvalidCerts: true\n"));
    exec_with(
        &relaxed,
        json!({}),
        account(server.port, "starttls", PASSWORD),
    )
    .await
    .unwrap();
    assert!(server.received()[0].tls);
    // STARTTLS is required: a server that does not offer it is refused
    // (tls: none is the way to send in the clear).
    let (plain, _) = plain_server().await;
    let e = exec_with(
        &relaxed,
        json!({}),
        account(plain.port, "starttls", PASSWORD),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("email", 502), "{}", e.message);
    assert!(plain.received().is_empty());
}

#[tokio::test]
async fn implicit_tls_works_from_a_url_and_from_an_account() {
    sluice_connectors::install_tls_provider();
    let server = Server::start(Config::new(Security::Implicit).with_auth()).await;
    let p = plan(&format!(
        "    url: \"smtps://{USER}:{PASSWORD}@localhost:{}\"\n    acceptInvalidCerts: true\n    from: shop@example.com\n    to: ann@example.com\n    text: hi\n",
        server.port
    ));
    exec(&p, json!({})).await.unwrap();
    let p = plan(
        "    account: mail\n    acceptInvalidCerts: true\n    from: shop@example.com\n    to: ann@example.com\n    text: hi\n",
    );
    exec_with(&p, json!({}), account(server.port, "tls", PASSWORD))
        .await
        .unwrap();
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| m.tls && m.user.as_deref() == Some(USER)));
}

#[tokio::test]
async fn a_wrong_password_is_401_and_login_works_too() {
    let server = secure_server().await;
    let p = plan(
        "    account: mail\n    acceptInvalidCerts: true\n    from: shop@example.com\n    to: ann@example.com\n    text: hi\n",
    );
    let e = exec_with(&p, json!({}), account(server.port, "starttls", "wrong"))
        .await
        .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("email", 401), "{}", e.message);
    assert!(e.message.contains("535"), "{}", e.message);
    // No login at all where one is needed: 401 too.
    let p2 = plan(&format!(
        "    url: \"smtp://127.0.0.1:{}\"\n    acceptInvalidCerts: true\n    from: shop@example.com\n    to: ann@example.com\n    text: hi\n",
        server.port
    ));
    let e = exec(&p2, json!({})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("email", 401), "{}", e.message);
    assert!(server.received().is_empty());
    // A server offering only LOGIN: the password goes that way.
    let mut config = Config::new(Security::StartTls).with_auth();
    config.mechanisms = "LOGIN";
    let login = Server::start(config).await;
    exec_with(&p, json!({}), account(login.port, "starttls", PASSWORD))
        .await
        .unwrap();
    assert_eq!(login.received()[0].user.as_deref(), Some(USER));
}

#[tokio::test]
async fn refusals_are_400_for_good_and_503_for_now() {
    let (server, url) = plain_server().await;
    let p = plan(&format!(
        "    url: \"{url}\"\n    from: shop@example.com\n    to: \"{{{{ message.to }}}}\"\n    text: hi\n"
    ));
    let e = exec(&p, json!({"to": ["ann@example.com", REJECTED]}))
        .await
        .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("email", 400), "{}", e.message);
    assert!(
        e.message.contains("550") && e.message.contains("no such user"),
        "{}",
        e.message
    );
    assert_eq!(e.details.as_ref().unwrap()["smtpCode"], 550);
    let e = exec(&p, json!({"to": DEFERRED})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("email", 503), "{}", e.message);
    assert!(e.message.contains("451"), "{}", e.message);
    // The transport still works after refusals.
    exec(&p, json!({"to": "ann@example.com"})).await.unwrap();
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_plain_server_takes_mail_and_connections_are_pooled() {
    let (server, url) = plain_server().await;
    let p = plan(&format!(
        "    url: \"{url}\"\n    from: shop@example.com\n    to: ann@example.com\n    subject: \"#{{{{ message.n }}}}\"\n    text: hi\n"
    ));
    for n in 0..3 {
        exec(&p, json!({"n": n})).await.unwrap();
        // lettre hands a used connection back to the pool in a task.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let got = server.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|m| !m.tls && m.user.is_none()));
    assert_eq!(server.connections(), 1, "one pooled connection");
    // A plain account.
    let p = plan(
        "    account: relay\n    from: shop@example.com\n    to: ann@example.com\n    text: hi\n",
    );
    let relay = json!({"relay": {"type": "generic", "host": "127.0.0.1", "port": server.port.to_string(), "tls": "none"}});
    exec_with(&p, json!({}), relay).await.unwrap();
    assert_eq!(server.received().len(), 4);
}

#[tokio::test]
async fn an_unreachable_server_is_502() {
    sluice_connectors::install_tls_provider();
    for url in ["smtp://127.0.0.1:9?tls=none", "smtp://127.0.0.1:9"] {
        let p = plan(&format!(
            "    url: \"{url}\"\n    from: shop@example.com\n    to: ann@example.com\n    text: hi\n"
        ));
        let e = exec(&p, json!({})).await.unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("email", 502), "{}", e.message);
    }
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field() {
    let (server, url) = plain_server().await;
    let p = plan(&format!(
        "    url: \"{url}\"\n    from: \"{{{{ message.from }}}}\"\n    to: \"{{{{ message.to }}}}\"\n    cc: \"{{{{ message.cc }}}}\"\n    text: hi\n    headers: \"{{{{ message.headers }}}}\"\n"
    ));
    let good = json!({"from": "shop@example.com", "to": "ann@example.com"});
    for (change, field) in [
        (json!({"to": "not-an-address"}), "to:"),
        (json!({"to": ["ann@example.com", "x@"]}), "to:"),
        (json!({"to": 42}), "to:"),
        (json!({"cc": "carl at example"}), "cc:"),
        (json!({"from": "nobody"}), "from:"),
        (json!({"from": ""}), "from:"),
        (json!({"headers": {"Bcc": "x@example.com"}}), "Bcc"),
        (json!({"headers": {"Bad Name": "x"}}), "Bad Name"),
        (json!({"to": null}), "no recipients"),
    ] {
        let mut input = good.clone();
        for (k, v) in change.as_object().unwrap() {
            input[k] = v.clone();
        }
        let e = exec(&p, input).await.unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("email", 400), "{}", e.message);
        assert!(e.message.contains(field), "{field}: {}", e.message);
    }
    // Server and account problems.
    let p = plan(
        "    url: \"{{ message.url }}\"\n    from: a@example.com\n    to: b@example.com\n    text: hi\n",
    );
    for url in ["http://host", "smtp://host:notaport", "smtp://host?x=1"] {
        let e = exec(&p, json!({"url": url})).await.unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("email", 400), "{}", e.message);
    }
    let p =
        plan("    account: mail\n    from: a@example.com\n    to: b@example.com\n    text: hi\n");
    for accounts in [
        json!({}),
        json!({"mail": {"type": "bearer", "token": "t"}}),
        json!({"mail": {"type": "generic", "port": 25}}),
        json!({"mail": {"type": "generic", "host": "h", "tls": "maybe"}}),
        json!({"mail": {"type": "generic", "host": "h", "port": 70000}}),
    ] {
        let e = exec_with(&p, json!({}), accounts.clone())
            .await
            .unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.status),
            ("email", 400),
            "{accounts}: {}",
            e.message
        );
        assert!(e.message.contains("'mail'"), "{}", e.message);
    }
    assert!(server.received().is_empty());
}

#[test]
fn config_problems_are_reported_at_load_with_their_paths() {
    let catalog = sluice_connectors::catalog();
    let ok = "    url: smtp://h\n    from: a@example.com\n    to: b@example.com\n    text: hi\n";
    let yaml = format!("name: t\nsteps:\n  - type: email\n{ok}");
    load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap();
    for (body, path) in [
        (
            "    from: a@example.com\n    to: b@example.com\n    text: hi\n",
            "steps[0]",
        ),
        (
            "    url: smtp://h\n    account: a\n    from: a@example.com\n    to: b@example.com\n    text: hi\n",
            "steps[0]",
        ),
        (
            "    url: smtp://h\n    from: a@example.com\n    text: hi\n",
            "steps[0].to",
        ),
        (
            "    url: smtp://h\n    from: a@example.com\n    to: b@example.com\n",
            "steps[0].text",
        ),
        (
            "    url: smtp://h\n    from: not-an-address\n    to: b@example.com\n    text: hi\n",
            "steps[0].from",
        ),
        (
            "    url: smtp://h\n    from: a@example.com\n    to: [b@example.com, nope]\n    text: hi\n",
            "steps[0].to[1]",
        ),
        (
            "    url: smtp://h\n    from: a@example.com\n    to: b@example.com\n    cc: \"x@\"\n    text: hi\n",
            "steps[0].cc",
        ),
        (
            "    url: \"ftp://h\"\n    from: a@example.com\n    to: b@example.com\n    text: hi\n",
            "steps[0].url",
        ),
        (
            "    url: \"smtp://h:99999\"\n    from: a@example.com\n    to: b@example.com\n    text: hi\n",
            "steps[0].url",
        ),
        (
            "    url: smtp://h\n    from: a@example.com\n    to: b@example.com\n    text: \"{{ message.\"\n",
            "steps[0].text",
        ),
        (
            "    url: smtp://h\n    from: a@example.com\n    to: b@example.com\n    text: hi\n    headers: { Subject: x }\n",
            "steps[0].headers.Subject",
        ),
        (
            "    url: smtp://h\n    from: a@example.com\n    to: b@example.com\n    text: hi\n    attachments: 5\n",
            "steps[0].attachments",
        ),
        (
            "    url: smtp://h\n    from: a@example.com\n    to: b@example.com\n    text: hi\n    priority: high\n",
            "steps[0]",
        ),
    ] {
        let yaml = format!("name: t\nsteps:\n  - type: email\n{body}");
        let e = load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap_err();
        assert!(e.to_string().contains(path), "{path}: {e}");
    }
}
