//! `kafka` against librdkafka's in-process mock cluster, started by each
//! test: what the step produced is read back with a consumer.

#![cfg(feature = "kafka")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};
use sluice_engine::{Execution, Plan, RunOptions, TraceStatus, load_str};
use sluice_spec::Format;

fn cluster(topic: &str, partitions: i32) -> MockCluster<'static, DefaultProducerContext> {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(topic, partitions, 1).unwrap();
    cluster
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

fn plan(brokers: &str, body: &str) -> Plan {
    load(&format!(
        "name: t\nsteps:\n  - id: send\n    type: kafka\n    brokers: \"{brokers}\"\n{body}"
    ))
}

async fn run(plan: &Plan, input: Value, accounts: Value) -> Execution {
    let options = RunOptions {
        accounts: Arc::new(accounts),
        ..RunOptions::default()
    };
    plan.execute(input, options).await
}

/// The record at `offset` of `topic`/`partition`.
fn read(brokers: &str, topic: &str, partition: i32, offset: i64) -> Record {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    for _ in 0..100 {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => return Record::of(&m),
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
    panic!("no record at {topic}/{partition}@{offset}");
}

struct Record {
    key: Option<String>,
    value: String,
    headers: Vec<(String, String)>,
}

impl Record {
    fn of(m: &BorrowedMessage<'_>) -> Record {
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), text(h.value.unwrap_or_default())))
                    .collect()
            })
            .unwrap_or_default();
        Record {
            key: m.key().map(text),
            value: text(m.payload().unwrap_or_default()),
            headers,
        }
    }
}

#[tokio::test]
async fn produces_key_value_and_headers_that_a_consumer_reads_back() {
    let cluster = cluster("orders", 3);
    let brokers = cluster.bootstrap_servers();
    let p = plan(
        &brokers,
        "    topic: orders\n    key: \"{{ message.id }}\"\n    headers: { X-Order: \"{{ message.id }}\", attempt: 2, none: null }\n",
    );
    let input = json!({"id": "o-1", "total": 5});
    let out = run(&p, input.clone(), json!({}))
        .await
        .into_result()
        .unwrap();
    assert_eq!(out["topic"], "orders", "{out}");
    assert_eq!(out["offset"], 0, "{out}");
    let partition = i32::try_from(out["partition"].as_i64().unwrap()).unwrap();
    let got = read(&brokers, "orders", partition, 0);
    assert_eq!(got.key.as_deref(), Some("o-1"));
    assert_eq!(serde_json::from_str::<Value>(&got.value).unwrap(), input);
    assert_eq!(
        got.headers,
        vec![
            ("X-Order".to_owned(), "o-1".to_owned()),
            ("attempt".to_owned(), "2".to_owned()),
        ]
    );
    // The same key goes to the same partition, one offset further, over
    // the same producer.
    let again = run(&p, json!({"id": "o-1", "total": 6}), json!({}))
        .await
        .into_result()
        .unwrap();
    assert_eq!(again["partition"], out["partition"]);
    assert_eq!(again["offset"], 1);
}

#[tokio::test]
async fn a_text_value_goes_as_it_is_to_the_partition_asked_for() {
    let cluster = cluster("notes", 2);
    let brokers = cluster.bootstrap_servers();
    let p = plan(
        &brokers,
        "    topic: notes\n    partition: 1\n    value: \"plain {{ message.word }}\"\n",
    );
    let out = run(&p, json!({"word": "words"}), json!({}))
        .await
        .into_result()
        .unwrap();
    assert_eq!(out, json!({"topic": "notes", "partition": 1, "offset": 0}));
    let got = read(&brokers, "notes", 1, 0);
    assert_eq!(got.value, "plain words");
    assert_eq!(got.key, None);
    // A partition the topic does not have is the caller's mistake.
    let p = plan(&brokers, "    topic: notes\n    partition: 7\n");
    let e = run(&p, json!({}), json!({}))
        .await
        .into_result()
        .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("kafka", 400), "{}", e.message);
}

#[tokio::test]
async fn brokers_come_from_an_account() {
    let cluster = cluster("events", 1);
    let brokers = cluster.bootstrap_servers();
    let p = load(
        "name: t\nsteps:\n  - type: kafka\n    account: events\n    topic: events\n    acks: leader\n    idempotent: false\n",
    );
    let out = run(&p, json!({"a": 1}), json!({"events": {"brokers": brokers}}))
        .await
        .into_result()
        .unwrap();
    assert_eq!(out["offset"], 0);
    // Without acks the cluster never says where the record went.
    let fire_and_forget = load(
        "name: t\nsteps:\n  - type: kafka\n    account: events\n    topic: events\n    acks: none\n",
    );
    let out = run(
        &fire_and_forget,
        json!({"a": 2}),
        json!({"events": {"brokers": brokers}}),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(out["offset"], Value::Null, "{out}");
    let e = run(&p, json!({}), json!({"events": {"url": "x"}}))
        .await
        .into_result()
        .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("kafka", 400));
    assert!(e.message.contains("'brokers'"), "{}", e.message);
    let e = run(
        &p,
        json!({}),
        json!({"events": {"brokers": brokers, "mechanism": "SCRAM-SHA-256", "username": "u", "password": "p"}}),
    )
    .await
    .into_result()
    .unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("SCRAM-SHA-256"), "{}", e.message);
}

/// The failed step's entry in the trace: its status and error object.
fn traced_error(execution: &Execution) -> Value {
    let trace = execution.trace();
    let entry = trace
        .iter()
        .find(|t| &*t.step == "send")
        .expect("the step is traced");
    assert_eq!(entry.status, TraceStatus::Error);
    entry.error.clone().expect("an error object")
}

#[tokio::test]
async fn an_unknown_topic_is_a_404_in_the_trace() {
    let cluster = cluster("orders", 1);
    let p = plan(&cluster.bootstrap_servers(), "    topic: no-such-topic\n");
    let execution = run(&p, json!({}), json!({})).await;
    let e = execution.result.as_ref().unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("kafka", 404), "{}", e.message);
    assert!(e.message.contains("no-such-topic"), "{}", e.message);
    let traced = traced_error(&execution);
    assert_eq!(
        (&traced["code"], &traced["status"]),
        (&json!("kafka"), &json!(404))
    );
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_502_in_the_trace() {
    let p = plan(
        "127.0.0.1:9",
        "    topic: orders\n    deliveryTimeout: 1s\n",
    );
    let started = std::time::Instant::now();
    let execution = run(&p, json!({}), json!({})).await;
    let e = execution.result.as_ref().unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("kafka", 502), "{}", e.message);
    assert!(e.message.contains("127.0.0.1:9"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(10));
    let traced = traced_error(&execution);
    assert_eq!(
        (&traced["code"], &traced["status"]),
        (&json!("kafka"), &json!(502))
    );
}

#[test]
fn bad_config_names_the_field() {
    let catalog = sluice_connectors::catalog();
    for (body, path, says) in [
        ("    topic: x\n", "steps[0]", "`brokers` or `account`"),
        (
            "    brokers: a:9092\n    account: k\n    topic: x\n",
            "steps[0]",
            "`brokers` or `account`",
        ),
        (
            "    brokers: \"ssl://a:9093\"\n    topic: x\n",
            "steps[0].brokers",
            "TLS",
        ),
        (
            "    brokers: \" , \"\n    topic: x\n",
            "steps[0].brokers",
            "empty",
        ),
        (
            "    brokers: a:9092\n    topic: x\n    acks: leader\n    idempotent: true\n",
            "steps[0].idempotent",
            "acks: all",
        ),
        (
            "    brokers: a:9092\n    topic: x\n    acks: some\n",
            "steps[0].acks",
            "",
        ),
        (
            "    brokers: a:9092\n    topic: x\n    partition: -1\n",
            "steps[0].partition",
            "",
        ),
        (
            "    brokers: a:9092\n    topic: x\n    headers: [a]\n",
            "steps[0].headers",
            "object",
        ),
        (
            "    brokers: a:9092\n    topic: x\n    deliveryTimeout: soon\n",
            "steps[0].deliveryTimeout",
            "duration",
        ),
        ("    brokers: a:9092\n    topik: x\n", "steps[0]", "topik"),
    ] {
        let yaml = format!("name: t\nsteps:\n  - type: kafka\n{body}");
        let e = load_str("t.yaml", &yaml, Format::Yaml, None, &catalog)
            .unwrap_err()
            .to_string();
        assert!(e.contains(path) && e.contains(says), "{path} / {says}: {e}");
    }
}
