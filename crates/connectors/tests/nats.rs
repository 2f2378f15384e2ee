//! `nats` against the machine's NATS server (`SLUICE_TEST_NATS_URL`, with
//! JetStream).

#![cfg(feature = "nats")]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use sluice_engine::{FlowError, Plan, RunOptions, load_str};
use sluice_spec::Format;

fn server() -> Option<String> {
    let url = std::env::var("SLUICE_TEST_NATS_URL").ok();
    if url.is_none() {
        eprintln!("skipped: set SLUICE_TEST_NATS_URL");
    }
    url
}

fn plan(url: &str, body: &str) -> Plan {
    let yaml = format!("name: t\nsteps:\n  - type: nats\n    url: \"{url}\"\n{body}");
    load_str(
        "t.yaml",
        &yaml,
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn exec(plan: &Plan, input: Value) -> Result<Value, FlowError> {
    let options = RunOptions {
        accounts: Arc::new(json!({})),
        ..RunOptions::default()
    };
    plan.execute(input, options).await.into_result()
}

fn prefix() -> String {
    format!("sluice_test_{}_{}", std::process::id(), fastrand::u32(..))
}

#[tokio::test]
async fn publish_sends_the_payload_and_headers() {
    let Some(url) = server() else { return };
    let subject = format!("{}.orders", prefix());
    let watcher = async_nats::connect(&url).await.unwrap();
    let mut sub = watcher.subscribe(subject.clone()).await.unwrap();
    watcher.flush().await.unwrap();
    let p = plan(
        &url,
        &format!(
            "    subject: \"{subject}\"\n    headers: {{ X-Order: \"{{{{ message.id }}}}\" }}\n"
        ),
    );
    let out = exec(&p, json!({"id": "o-1", "total": 5})).await.unwrap();
    assert_eq!(out, json!({"published": true, "subject": subject}));
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    let body: Value = serde_json::from_slice(&got.payload).unwrap();
    assert_eq!(body, json!({"id": "o-1", "total": 5}));
    assert_eq!(got.headers.unwrap().get("X-Order").unwrap().as_str(), "o-1");
    // A text payload goes as it is.
    let p = plan(
        &url,
        &format!("    subject: \"{subject}\"\n    payload: plain words\n"),
    );
    exec(&p, json!({})).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got.payload[..], b"plain words");
}

#[tokio::test]
async fn request_takes_the_reply_and_says_when_nobody_answers() {
    let Some(url) = server() else { return };
    let subject = format!("{}.price", prefix());
    let responder = async_nats::connect(&url).await.unwrap();
    let mut sub = responder.subscribe(subject.clone()).await.unwrap();
    responder.flush().await.unwrap();
    let answering = responder.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let asked: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
            let reply = json!({"sku": asked["sku"], "price": 12.5}).to_string();
            if let Some(to) = msg.reply {
                let _ = answering.publish(to, reply.into()).await;
            }
        }
    });
    let p = plan(
        &url,
        &format!(
            "    operation: request\n    subject: \"{subject}\"\n    payload: {{ sku: \"{{{{ message.sku }}}}\" }}\n"
        ),
    );
    let out = exec(&p, json!({"sku": "A-1"})).await.unwrap();
    assert_eq!(
        out["payload"],
        json!({"sku": "A-1", "price": 12.5}),
        "{out}"
    );
    let nobody = plan(
        &url,
        &format!(
            "    operation: request\n    subject: \"{}.nobody\"\n    replyTimeout: 1s\n",
            prefix()
        ),
    );
    let e = exec(&nobody, json!({})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("nats", 503), "{}", e.message);
}

#[tokio::test]
async fn jetstream_publish_is_acknowledged_and_deduplicated() {
    let Some(url) = server() else { return };
    let name = prefix();
    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![format!("{name}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    let p = plan(
        &url,
        &format!(
            "    operation: jetstream-publish\n    subject: \"{name}.orders\"\n    messageId: \"{{{{ message.id }}}}\"\n"
        ),
    );
    let first = exec(&p, json!({"id": "o-1"})).await.unwrap();
    assert_eq!(first["stream"], name.as_str());
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["duplicate"], false);
    let again = exec(&p, json!({"id": "o-1"})).await.unwrap();
    assert_eq!(again["duplicate"], true, "{again}");
    let other = exec(&p, json!({"id": "o-2"})).await.unwrap();
    assert_eq!(other["sequence"], 2);
    let nowhere = plan(
        &url,
        &format!(
            "    operation: jetstream-publish\n    subject: \"{name}_none.x\"\n    replyTimeout: 2s\n"
        ),
    );
    let e = exec(&nowhere, json!({})).await.unwrap_err();
    assert_eq!(e.code, "nats");
    assert!(matches!(e.status, 404 | 503), "{} {}", e.status, e.message);
    js.delete_stream(&name).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_and_bad_config_are_clear() {
    let p = plan("nats://127.0.0.1:9", "    subject: x\n");
    let e = exec(&p, json!({})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("nats", 502), "{}", e.message);
    let p = plan("nats://127.0.0.1:9", "    subject: \"{{ message.s }}\"\n");
    let e = exec(&p, json!({"s": "has space"})).await.unwrap_err();
    assert_eq!(e.status, 400);
    let catalog = sluice_connectors::catalog();
    for (body, path) in [
        ("    subject: x\n", "steps[0]"),
        (
            "    url: x\n    subject: x\n    messageId: a\n",
            "steps[0].messageId",
        ),
        (
            "    url: x\n    subject: x\n    operation: shout\n",
            "steps[0].operation",
        ),
    ] {
        let yaml = format!("name: t\nsteps:\n  - type: nats\n{body}");
        let e = load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap_err();
        assert!(e.to_string().contains(path), "{path}: {e}");
    }
}
