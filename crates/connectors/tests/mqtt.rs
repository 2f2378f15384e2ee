//! `mqtt` against the machine's Mosquitto (`SLUICE_TEST_MQTT_URL`, e.g.
//! `mqtt://127.0.0.1:1883`), plus a tiny fake broker (a thread speaking
//! just enough MQTT) for acknowledgements that never come and connections
//! that drop.

#![cfg(feature = "mqtt")]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde_json::{Value, json};
use sluice_engine::{FlowError, Plan, RunOptions, load_str};
use sluice_spec::Format;
use tokio::sync::mpsc;

fn server() -> Option<String> {
    let url = std::env::var("SLUICE_TEST_MQTT_URL").ok();
    if url.is_none() {
        eprintln!("skipped: set SLUICE_TEST_MQTT_URL");
    }
    url
}

fn load(yaml: &str) -> Result<Plan, sluice_engine::LoadError> {
    load_str(
        "t.yaml",
        yaml,
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    )
}

fn plan(url: &str, body: &str) -> Plan {
    let yaml = format!("name: t\nsteps:\n  - type: mqtt\n    url: \"{url}\"\n{body}");
    load(&yaml).unwrap_or_else(|e| panic!("{e}"))
}

async fn exec(plan: &Plan, input: Value) -> Result<Value, FlowError> {
    exec_with(plan, input, json!({})).await
}

async fn exec_with(plan: &Plan, input: Value, accounts: Value) -> Result<Value, FlowError> {
    let options = RunOptions {
        accounts: Arc::new(accounts),
        ..RunOptions::default()
    };
    plan.execute(input, options).await.into_result()
}

fn topic(name: &str) -> String {
    format!(
        "sluice/test/{}/{}/{name}",
        std::process::id(),
        fastrand::u32(..)
    )
}

/// A subscriber on its own connection: what arrives on `topic`.
struct Watcher {
    client: AsyncClient,
    got: mpsc::UnboundedReceiver<Publish>,
}

async fn watch(url: &str, topic: &str) -> Watcher {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (host, port) = rest.rsplit_once(':').unwrap();
    let id = format!("sluice-test-{}-{}", std::process::id(), fastrand::u32(..));
    let mut options = MqttOptions::new(id, host, port.parse().unwrap());
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let (tx, got) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = subscribed_tx.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("watcher: {e}");
                    return;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), subscribed)
        .await
        .unwrap()
        .unwrap();
    Watcher { client, got }
}

impl Watcher {
    async fn next(&mut self) -> Publish {
        tokio::time::timeout(Duration::from_secs(5), self.got.recv())
            .await
            .expect("nothing arrived within 5s")
            .unwrap()
    }

    /// Nothing more arrives for a while.
    async fn quiet(&mut self) -> bool {
        tokio::time::timeout(Duration::from_millis(500), self.got.recv())
            .await
            .is_err()
    }

    async fn stop(self) {
        let _ = self.client.disconnect().await;
    }
}

#[tokio::test]
async fn publish_sends_json_and_text_with_qos_1_and_0() {
    let Some(url) = server() else { return };
    let t = topic("orders");
    let mut watcher = watch(&url, &t).await;
    // Default: the message as JSON, QoS 1.
    let p = plan(&url, &format!("    topic: \"{t}\"\n"));
    let out = exec(&p, json!({"id": "o-1", "total": 5})).await.unwrap();
    assert_eq!(out, json!({"published": true, "topic": t, "qos": 1}));
    let got = watcher.next().await;
    assert_eq!(got.topic, t);
    assert_eq!(got.qos, QoS::AtLeastOnce);
    assert!(!got.retain);
    let body: Value = serde_json::from_slice(&got.payload).unwrap();
    assert_eq!(body, json!({"id": "o-1", "total": 5}));
    // A payload template, and a topic from the message.
    let p = plan(
        &url,
        "    topic: \"{{ message.base }}/eu\"\n    payload: { order: \"{{ message.id }}\" }\n",
    );
    let base = t.strip_suffix("/orders").unwrap();
    let mut eu = watch(&url, &format!("{base}/eu")).await;
    let out = exec(&p, json!({"id": "o-2", "base": base})).await.unwrap();
    assert_eq!(out["topic"], format!("{base}/eu"));
    let body: Value = serde_json::from_slice(&eu.next().await.payload).unwrap();
    assert_eq!(body, json!({"order": "o-2"}));
    // Text goes as it is; QoS 0.
    let p = plan(
        &url,
        &format!("    topic: \"{t}\"\n    qos: 0\n    payload: plain words\n"),
    );
    let out = exec(&p, json!({})).await.unwrap();
    assert_eq!(out, json!({"published": true, "topic": t, "qos": 0}));
    let got = watcher.next().await;
    assert_eq!(&got.payload[..], b"plain words");
    assert_eq!(got.qos, QoS::AtMostOnce);
    assert!(watcher.quiet().await);
    watcher.stop().await;
    eu.stop().await;
}

#[tokio::test]
async fn a_retained_message_reaches_later_subscribers_until_cleared() {
    let Some(url) = server() else { return };
    let t = topic("state");
    let p = plan(
        &url,
        &format!(
            "    topic: \"{t}\"\n    retain: true\n    payload: \"{{{{ message.state }}}}\"\n"
        ),
    );
    exec(&p, json!({"state": "open"})).await.unwrap();
    let mut later = watch(&url, &t).await;
    let got = later.next().await;
    assert!(got.retain);
    assert_eq!(&got.payload[..], b"open");
    later.stop().await;
    // An empty retained payload clears it.
    exec(&p, json!({"state": ""})).await.unwrap();
    let mut after = watch(&url, &t).await;
    assert!(after.quiet().await, "the retained message is still there");
    after.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_publishes_on_one_step_are_all_acknowledged_and_delivered() {
    let Some(url) = server() else { return };
    let t = topic("many");
    let mut watcher = watch(&url, &t).await;
    let p = Arc::new(plan(
        &url,
        &format!("    topic: \"{t}\"\n    payload: \"{{{{ message.n }}}}\"\n"),
    ));
    // More than rumqttc's 100 publishes in flight, so packet ids are
    // reused and the client's flow control holds some back.
    let count = 250;
    let runs = (0..count).map(|n| {
        let p = p.clone();
        tokio::spawn(async move { exec(&p, json!({"n": n})).await })
    });
    for run in futures_util::future::join_all(runs).await {
        let out = run.unwrap().unwrap();
        assert_eq!(out["qos"], 1);
    }
    let mut seen = HashSet::new();
    while seen.len() < count {
        let got = watcher.next().await;
        let n: usize = std::str::from_utf8(&got.payload).unwrap().parse().unwrap();
        seen.insert(n);
    }
    assert_eq!(seen, (0..count).collect::<HashSet<_>>());
    // And one after another on the same connection.
    for n in 0..20 {
        exec(&p, json!({"n": n})).await.unwrap();
        let got = watcher.next().await;
        assert_eq!(got.payload, n.to_string().as_bytes());
    }
    watcher.stop().await;
}

#[tokio::test]
async fn an_account_gives_the_broker() {
    let Some(url) = server() else { return };
    let t = topic("account");
    let mut watcher = watch(&url, &t).await;
    let yaml =
        format!("name: t\nsteps:\n  - type: mqtt\n    account: broker\n    topic: \"{t}\"\n");
    let p = load(&yaml).unwrap();
    exec_with(&p, json!({"a": 1}), json!({"broker": {"url": url}}))
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&watcher.next().await.payload).unwrap();
    assert_eq!(body, json!({"a": 1}));
    let e = exec_with(&p, json!({}), json!({})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("mqtt", 400), "{}", e.message);
    watcher.stop().await;
}

#[tokio::test]
async fn an_unreachable_broker_is_a_quick_502_each_time() {
    let p = plan("mqtt://127.0.0.1:9", "    topic: a/b\n");
    for _ in 0..2 {
        let started = Instant::now();
        let e = exec(&p, json!({})).await.unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("mqtt", 502), "{}", e.message);
        assert!(started.elapsed() < Duration::from_secs(3), "{e:?}");
    }
}

#[tokio::test]
async fn bad_urls_and_topics_are_400() {
    for (url, topic, words) in [
        ("mqtts://127.0.0.1:8883", "a/b", "TLS is not supported"),
        ("mqtt://127.0.0.1:9", "a/+/b", "wildcard"),
        ("mqtt://127.0.0.1:9", "a/#", "wildcard"),
        ("mqtt://127.0.0.1:9", "{{ message.none }}", "empty"),
        ("http://127.0.0.1:9", "a/b", "not an MQTT URL"),
        ("mqtt://u:p@127.0.0.1:9", "a/b", "account"),
    ] {
        let p = plan(url, &format!("    topic: \"{topic}\"\n"));
        let e = exec(&p, json!({})).await.unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("mqtt", 400), "{url} {topic}");
        assert!(e.message.contains(words), "{url} {topic}: {}", e.message);
    }
}

#[test]
fn config_problems_are_refused_at_load_with_the_field_path() {
    for (body, path, words) in [
        (
            "    url: x\n    topic: t\n    qos: 2\n",
            "steps[0].qos",
            "QoS 2",
        ),
        ("    url: x\n    topic: t\n    qos: 7\n", "steps[0].qos", ""),
        ("    topic: t\n", "steps[0]", "url"),
        (
            "    url: x\n    account: y\n    topic: t\n",
            "steps[0]",
            "url",
        ),
        ("    url: x\n", "steps[0]", ""),
        ("    url: x\n    topic: t\n    subject: s\n", "steps[0]", ""),
        (
            "    url: x\n    topic: t\n    ackTimeout: 0s\n",
            "steps[0].ackTimeout",
            "",
        ),
        (
            "    url: x\n    topic: t\n    clientId: \"\"\n",
            "steps[0].clientId",
            "",
        ),
    ] {
        let yaml = format!("name: t\nsteps:\n  - type: mqtt\n{body}");
        let e = load(&yaml).unwrap_err().to_string();
        assert!(e.contains(path) && e.contains(words), "{body}: {e}");
    }
}

/// What the fake broker does with a PUBLISH.
#[derive(Clone, Copy)]
enum Broker {
    /// Never acknowledges.
    Silent,
    /// Closes the connection.
    HangUp,
    /// Acknowledges QoS 1.
    Ack,
}

/// A broker on a free port; `mode` says how to treat each connection (by
/// its number, from 0).
fn fake_broker(mode: fn(usize) -> Broker) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || serve(stream, mode(i)));
        }
    });
    format!("mqtt://127.0.0.1:{port}")
}

fn serve(mut stream: TcpStream, mode: Broker) -> Option<()> {
    loop {
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).ok()?;
        let mut len = 0usize;
        for shift in 0..4 {
            let mut b = [0u8; 1];
            stream.read_exact(&mut b).ok()?;
            len |= usize::from(b[0] & 0x7f) << (7 * shift);
            if b[0] & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).ok()?;
        match first[0] >> 4 {
            // CONNECT: accept.
            1 => stream.write_all(&[0x20, 0x02, 0x00, 0x00]).ok()?,
            // PUBLISH
            3 => match mode {
                Broker::Silent => {}
                Broker::HangUp => return None,
                Broker::Ack => {
                    if (first[0] >> 1) & 0x03 == 1 {
                        let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
                        let pkid = &body[2 + topic_len..4 + topic_len];
                        stream.write_all(&[0x40, 0x02, pkid[0], pkid[1]]).ok()?;
                    }
                }
            },
            // PINGREQ
            12 => stream.write_all(&[0xd0, 0x00]).ok()?,
            // DISCONNECT
            14 => return None,
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_missing_puback_is_a_504_after_ack_timeout() {
    let url = fake_broker(|_| Broker::Silent);
    let p = plan(&url, "    topic: a/b\n    ackTimeout: 1s\n");
    let started = Instant::now();
    let e = exec(&p, json!({})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("mqtt", 504), "{}", e.message);
    assert!(e.message.contains("acknowledge"), "{}", e.message);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // QoS 0 waits for the write only.
    let p = plan(&url, "    topic: a/b\n    qos: 0\n    ackTimeout: 1s\n");
    let out = exec(&p, json!({})).await.unwrap();
    assert_eq!(out["qos"], 0);
}

#[tokio::test]
async fn a_dropped_connection_fails_the_publish_with_502_and_the_next_one_reconnects() {
    // The first connection drops at the first publish; later ones ack.
    let url = fake_broker(|i| if i == 0 { Broker::HangUp } else { Broker::Ack });
    let p = plan(&url, "    topic: a/b\n    ackTimeout: 3s\n");
    let started = Instant::now();
    let e = exec(&p, json!({})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("mqtt", 502), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(2));
    for n in 0..5 {
        let out = exec(&p, json!({"n": n})).await.unwrap();
        assert_eq!(out, json!({"published": true, "topic": "a/b", "qos": 1}));
    }
}
