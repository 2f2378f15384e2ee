//! `rabbitmq` against the machine's RabbitMQ (`SLUICE_TEST_RABBITMQ_URL`,
//! e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`). Each test declares its
//! own exchange and queue (named per process and at random) with lapin,
//! reads what the step published with `basic_get`, and deletes them.

#![cfg(feature = "rabbitmq")]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};
use sluice_engine::{FlowError, Plan, RunOptions, load_str};
use sluice_spec::Format;

fn server() -> Option<String> {
    let url = std::env::var("SLUICE_TEST_RABBITMQ_URL").ok();
    if url.is_none() {
        eprintln!("skipped: set SLUICE_TEST_RABBITMQ_URL");
    }
    url
}

fn load(yaml: &str) -> Plan {
    load_str(
        "t.yaml",
        yaml,
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn plan(url: &str, body: &str) -> Plan {
    load(&format!(
        "name: t\nsteps:\n  - type: rabbitmq\n    url: \"{url}\"\n{body}"
    ))
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

fn prefix() -> String {
    format!("sluice_test_{}_{}", std::process::id(), fastrand::u32(..))
}

/// A direct exchange and a queue bound to it with routing key `orders`,
/// both named after `name`.
struct Fixture {
    _connection: Connection,
    channel: Channel,
    exchange: String,
    queue: String,
}

impl Fixture {
    async fn new(url: &str) -> Fixture {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let name = prefix();
        let exchange = format!("{name}_x");
        let queue = format!("{name}_q");
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "orders".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        Fixture {
            _connection: connection,
            channel,
            exchange,
            queue,
        }
    }

    /// The next message of the queue (waiting a little for it).
    async fn next(&self) -> lapin::message::Delivery {
        for _ in 0..50 {
            let got = self
                .channel
                .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap();
            if let Some(message) = got {
                return message.delivery;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("nothing arrived on {}", self.queue);
    }

    async fn is_empty(&self) -> bool {
        let got = self
            .channel
            .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap();
        got.is_none()
    }

    async fn delete(self) {
        self.channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
        self.channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .unwrap();
    }
}

fn header<'a>(delivery: &'a lapin::message::Delivery, name: &str) -> &'a AMQPValue {
    let headers = delivery.properties.headers().as_ref().unwrap();
    headers
        .inner()
        .get(name)
        .unwrap_or_else(|| panic!("no header {name}: {headers:?}"))
}

#[tokio::test]
async fn publish_sends_the_payload_headers_and_properties() {
    let Some(url) = server() else { return };
    let f = Fixture::new(&url).await;
    let p = plan(
        &url,
        &format!(
            "    exchange: \"{}\"\n    routingKey: \"{{{{ message.kind }}}}\"\n    headers: {{ X-Order: \"{{{{ message.id }}}}\", X-Count: 3, X-Ratio: 0.5, X-Flag: true, X-None: null }}\n    messageId: \"{{{{ message.id }}}}\"\n    correlationId: c-9\n    replyTo: answers\n    expiration: 1m\n    priority: 5\n",
            f.exchange
        ),
    );
    let out = exec(&p, json!({"id": "o-1", "kind": "orders", "total": 5}))
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(
        out,
        json!({"published": true, "exchange": f.exchange, "routingKey": "orders"})
    );
    let got = f.next().await;
    let body: Value = serde_json::from_slice(&got.data).unwrap();
    assert_eq!(body, json!({"id": "o-1", "kind": "orders", "total": 5}));
    let props = &got.properties;
    assert_eq!(*props.delivery_mode(), Some(2));
    assert_eq!(
        props.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(props.message_id().as_ref().unwrap().as_str(), "o-1");
    assert_eq!(props.correlation_id().as_ref().unwrap().as_str(), "c-9");
    assert_eq!(props.reply_to().as_ref().unwrap().as_str(), "answers");
    assert_eq!(props.expiration().as_ref().unwrap().as_str(), "60000");
    assert_eq!(*props.priority(), Some(5));
    match header(&got, "X-Order") {
        AMQPValue::LongString(s) => assert_eq!(s.as_bytes(), b"o-1"),
        other => panic!("X-Order: {other:?}"),
    }
    assert!(matches!(header(&got, "X-Count"), AMQPValue::LongLongInt(3)));
    assert!(matches!(header(&got, "X-Ratio"), AMQPValue::Double(r) if *r == 0.5));
    assert!(matches!(header(&got, "X-Flag"), AMQPValue::Boolean(true)));
    assert!(!props.headers().as_ref().unwrap().contains_key("X-None"));

    // A text payload goes as it is, as text/plain; not persistent on ask.
    let p = plan(
        &url,
        &format!(
            "    exchange: \"{}\"\n    routingKey: orders\n    payload: plain words\n    persistent: false\n",
            f.exchange
        ),
    );
    exec(&p, json!({})).await.unwrap();
    let got = f.next().await;
    assert_eq!(&got.data[..], b"plain words");
    assert_eq!(*got.properties.delivery_mode(), Some(1));
    assert_eq!(
        got.properties.content_type().as_ref().unwrap().as_str(),
        "text/plain"
    );
    // A payload template and an explicit content type.
    let p = plan(
        &url,
        &format!(
            "    exchange: \"{}\"\n    routingKey: orders\n    payload: {{ order: \"{{{{ message.id }}}}\" }}\n    contentType: application/vnd.order+json\n",
            f.exchange
        ),
    );
    exec(&p, json!({"id": "o-2"})).await.unwrap();
    let got = f.next().await;
    let body: Value = serde_json::from_slice(&got.data).unwrap();
    assert_eq!(body, json!({"order": "o-2"}));
    assert_eq!(
        got.properties.content_type().as_ref().unwrap().as_str(),
        "application/vnd.order+json"
    );
    f.delete().await;
}

#[tokio::test]
async fn the_default_exchange_routes_by_queue_name_and_mandatory_needs_a_queue() {
    let Some(url) = server() else { return };
    let f = Fixture::new(&url).await;
    let p = plan(
        &url,
        "    routingKey: \"{{ message.queue }}\"\n    mandatory: true\n",
    );
    let out = exec(&p, json!({"queue": f.queue, "n": 1})).await.unwrap();
    assert_eq!(
        out,
        json!({"published": true, "exchange": "", "routingKey": f.queue})
    );
    let got = f.next().await;
    assert_eq!(got.routing_key.as_str(), f.queue);
    assert_eq!(
        serde_json::from_slice::<Value>(&got.data).unwrap(),
        json!({"queue": f.queue, "n": 1})
    );
    // No queue takes it: the broker returns it, and that is a 404.
    let nowhere = format!("{}_nobody", f.queue);
    let e = exec(&p, json!({"queue": nowhere})).await.unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.status),
        ("rabbitmq", 404),
        "{}",
        e.message
    );
    assert!(e.message.contains("no queue is bound for"), "{}", e.message);
    // The same compiled step goes on working.
    exec(&p, json!({"queue": f.queue, "n": 2})).await.unwrap();
    let got = f.next().await;
    assert_eq!(
        serde_json::from_slice::<Value>(&got.data).unwrap()["n"],
        json!(2)
    );
    // Without mandatory, an unroutable message is dropped by the broker.
    let dropped = plan(
        &url,
        &format!(
            "    exchange: \"{}\"\n    routingKey: elsewhere\n",
            f.exchange
        ),
    );
    exec(&dropped, json!({})).await.unwrap();
    assert!(f.is_empty().await);
    f.delete().await;
}

#[tokio::test]
async fn a_missing_exchange_is_404_and_the_next_publish_works() {
    let Some(url) = server() else { return };
    let f = Fixture::new(&url).await;
    let p = plan(
        &url,
        "    exchange: \"{{ message.exchange }}\"\n    routingKey: orders\n",
    );
    let missing = format!("{}_missing", f.exchange);
    let e = exec(&p, json!({"exchange": missing})).await.unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.status),
        ("rabbitmq", 404),
        "{}",
        e.message
    );
    assert!(e.message.contains(&missing), "{}", e.message);
    // The broker closed the channel; the step opens another.
    for n in 0..2 {
        let out = exec(&p, json!({"exchange": f.exchange, "n": n}))
            .await
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(out["exchange"], json!(f.exchange));
        let got = f.next().await;
        assert_eq!(
            serde_json::from_slice::<Value>(&got.data).unwrap()["n"],
            json!(n)
        );
    }
    f.delete().await;
}

#[tokio::test]
async fn an_account_gives_the_broker_and_its_credentials() {
    let Some(url) = server() else { return };
    let f = Fixture::new(&url).await;
    let real: lapin::uri::AMQPUri = url.parse().unwrap();
    let vhost = real.vhost.replace('%', "%25").replace('/', "%2f");
    let wrong = format!(
        "{}://wrong:wrong@{}:{}/{vhost}",
        real.scheme, real.authority.host, real.authority.port
    );
    let accounts = json!({"mq": {
        "type": "generic",
        "url": wrong,
        "username": real.authority.userinfo.username,
        "password": real.authority.userinfo.password,
    }});
    let p = load(&format!(
        "name: t\nsteps:\n  - type: rabbitmq\n    account: mq\n    exchange: \"{}\"\n    routingKey: orders\n",
        f.exchange
    ));
    let out = exec_with(&p, json!({"via": "account"}), accounts)
        .await
        .unwrap_or_else(|e| panic!("{}", e.message));
    assert_eq!(out["published"], true);
    let got = f.next().await;
    assert_eq!(
        serde_json::from_slice::<Value>(&got.data).unwrap(),
        json!({"via": "account"})
    );
    // Without the account's credentials the broker refuses the login.
    let e = exec_with(
        &p,
        json!({}),
        json!({"mq": {"type": "generic", "url": wrong}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.status),
        ("rabbitmq", 502),
        "{}",
        e.message
    );
    assert!(!e.message.contains("wrong:wrong"), "{}", e.message);
    // No such account.
    let e = exec(&p, json!({})).await.unwrap_err();
    assert_eq!(e.status, 400, "{}", e.message);
    f.delete().await;
}

#[tokio::test]
async fn an_unreachable_broker_bad_input_and_bad_config_are_clear() {
    let p = plan("amqp://guest:secret@127.0.0.1:9/%2f", "    routingKey: q\n");
    let e = exec(&p, json!({})).await.unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.status),
        ("rabbitmq", 502),
        "{}",
        e.message
    );
    assert!(!e.message.contains("secret"), "{}", e.message);
    // Bad input is a 400, before any connection.
    let p = plan(
        "amqp://127.0.0.1:9/%2f",
        "    routingKey: \"{{ message.key }}\"\n    headers: \"{{ message.headers }}\"\n",
    );
    for input in [
        json!({"key": "k".repeat(300), "headers": {}}),
        json!({"key": "", "headers": {}}),
        json!({"key": "k", "headers": [1]}),
    ] {
        let e = exec(&p, input).await.unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.status),
            ("rabbitmq", 400),
            "{}",
            e.message
        );
    }
    let p = plan("{{ message.url }}", "    routingKey: q\n");
    let e = exec(&p, json!({"url": "http://example.com"}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 400, "{}", e.message);

    let catalog = sluice_connectors::catalog();
    for (body, path) in [
        ("    routingKey: q\n", "steps[0]"),
        (
            "    url: amqp://a\n    account: b\n    routingKey: q\n",
            "steps[0]",
        ),
        ("    url: http://host\n    routingKey: q\n", "steps[0].url"),
        ("    url: amqp://host\n", "steps[0].routingKey"),
        (
            "    url: amqp://host\n    routingKey: q\n    headers: [1]\n",
            "steps[0].headers",
        ),
        (
            "    url: amqp://host\n    routingKey: q\n    priority: 300\n",
            "steps[0].priority",
        ),
        (
            "    url: amqp://host\n    routingKey: q\n    expiration: soon\n",
            "steps[0].expiration",
        ),
        (
            "    url: amqp://host\n    routingKey: q\n    confirmTimeout: 0s\n",
            "steps[0].confirmTimeout",
        ),
        (
            "    url: amqp://host\n    routingKey: \"{{ message.\"\n",
            "steps[0].routingKey",
        ),
        (
            "    url: amqp://host\n    routingKey: q\n    queue: q\n",
            "steps[0]",
        ),
    ] {
        let yaml = format!("name: t\nsteps:\n  - type: rabbitmq\n{body}");
        let e = load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap_err();
        assert!(e.to_string().contains(path), "{path}: {e}");
    }
    // A fanout exchange needs no routing key.
    let yaml = "name: t\nsteps:\n  - type: rabbitmq\n    url: amqp://host\n    exchange: events\n";
    load_str("t.yaml", yaml, Format::Yaml, None, &catalog).unwrap();
}

/// Closes the step's connections from the broker side (`rabbitmqctl`), so
/// run it alone: `cargo test … --test rabbitmq -- --ignored --test-threads=1`.
#[tokio::test]
#[ignore = "needs rabbitmqctl on this machine and closes every `sluice` connection"]
async fn a_closed_connection_is_made_again() {
    let Some(url) = server() else { return };
    let f = Fixture::new(&url).await;
    let p = plan(
        &url,
        &format!("    exchange: \"{}\"\n    routingKey: orders\n", f.exchange),
    );
    exec(&p, json!({"n": 1})).await.unwrap();
    f.next().await;
    let listed = std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "--silent", "pid", "client_properties"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let ours: Vec<&str> = listed
        .lines()
        .filter(|l| l.contains("\"sluice\""))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(!ours.is_empty(), "no `sluice` connection in:\n{listed}");
    for pid in ours {
        let closed = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "test"])
            .status()
            .unwrap();
        assert!(closed.success());
    }
    for n in 2..4 {
        exec(&p, json!({"n": n}))
            .await
            .unwrap_or_else(|e| panic!("{}", e.message));
        let got = f.next().await;
        assert_eq!(
            serde_json::from_slice::<Value>(&got.data).unwrap()["n"],
            json!(n)
        );
    }
    f.delete().await;
}
