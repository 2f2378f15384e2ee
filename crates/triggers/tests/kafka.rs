//! The `kafka` trigger against librdkafka's in-process mock cluster,
//! started by each test (no broker or environment variable needed).

#![cfg(feature = "kafka")]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use serde_json::{Map, Value, json};
use sluice_spec::Trigger;
use sluice_triggers::{Names, Source, TriggerError};
use support::{Act, Recorder, Worker, eventually, unique};

type Cluster = MockCluster<'static, DefaultProducerContext>;

/// How long a group may take to form (the mock cluster waits 3s before
/// the first assignment of a group).
const GROUP: Duration = Duration::from_secs(30);

fn cluster(topic: &str, partitions: i32) -> Cluster {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(topic, partitions, 1).unwrap();
    cluster
}

fn trigger(fields: Value) -> Trigger {
    let mut all = Map::new();
    all.insert("type".into(), json!("kafka"));
    if let Value::Object(fields) = fields {
        all.extend(fields);
    }
    serde_json::from_value(Value::Object(all)).unwrap()
}

fn names() -> Names {
    Names::new("acme", "test", &unique("orders"), 1)
}

fn source(brokers: &str, topic: &str, group: &str) -> Arc<dyn Source> {
    let t = trigger(json!({"brokers": brokers, "topics": [topic], "group": group}));
    sluice_triggers::source(&t, None, &names()).unwrap()
}

fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap()
}

/// Produces `bodies` in order, keyed `k-<body>`, with a header.
async fn produce(producer: &FutureProducer, topic: &str, bodies: &[&str]) {
    for body in bodies {
        let key = format!("k-{body}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "x-source",
            value: Some("test"),
        });
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&key)
                    .payload(*body)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
}

fn body(message: &Value) -> &str {
    message["body"].as_str().unwrap_or_default()
}

/// Runs a new worker in `group` until it took a fresh record, and says
/// what else it got: what the group had committed decides.
async fn leftovers(brokers: &str, topic: &str, group: &str) -> Vec<String> {
    let recorder = Recorder::succeeding();
    let worker = Worker::start(source(brokers, topic, group), recorder.clone(), 4, 5);
    produce(&producer(brokers), topic, &["sentinel"]).await;
    eventually(GROUP, "the sentinel", || {
        let seen = recorder.seen();
        async move { seen.iter().any(|s| body(&s.message) == "sentinel") }
    })
    .await;
    worker.stop();
    recorder
        .seen()
        .iter()
        .map(|s| body(&s.message).to_owned())
        .filter(|b| b != "sentinel")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_runs_once_and_is_committed() {
    let topic = unique("orders");
    let cluster = cluster(&topic, 2);
    let brokers = cluster.bootstrap_servers();
    let bodies: Vec<String> = (0..10).map(|i| format!("{{\"n\":{i}}}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    produce(&producer(&brokers), &topic, &refs).await;
    let group = unique("group");
    let recorder = Recorder::succeeding();
    let worker = Worker::start(source(&brokers, &topic, &group), recorder.clone(), 4, 5);
    eventually(GROUP, "10 records", || {
        let done = recorder.done_bodies();
        async move { done.len() == 10 }
    })
    .await;
    worker.stop();
    let done = recorder.done_bodies();
    assert!(done.values().all(|n| *n == 1), "{done:?}");
    let seen = recorder.seen();
    let first = seen
        .iter()
        .find(|s| s.message["body"] == json!({"n": 0}))
        .unwrap();
    let m = &first.message;
    assert_eq!(m["key"], json!("k-{\"n\":0}"));
    assert_eq!(m["headers"], json!({"x-source": "test"}));
    assert_eq!(m["topic"], json!(topic));
    assert!(m["partition"].is_i64() && m["offset"].is_i64(), "{m}");
    assert!(m["timestamp"].as_i64().unwrap() > 1_600_000_000_000, "{m}");
    assert_eq!((first.attempt, first.redelivered), (1, false));
    // Everything was committed: the group's next worker gets nothing old.
    assert_eq!(
        leftovers(&brokers, &topic, &group).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_record_is_retried_then_dead_lettered_and_not_seen_again() {
    let topic = unique("orders");
    let cluster = cluster(&topic, 1);
    let brokers = cluster.bootstrap_servers();
    produce(&producer(&brokers), &topic, &["ok-1", "bad", "ok-2"]).await;
    let group = unique("group");
    let recorder = Recorder::new(|m| {
        if body(m) == "bad" {
            Act::Fail
        } else {
            Act::Succeed
        }
    });
    let worker = Worker::start(source(&brokers, &topic, &group), recorder.clone(), 2, 3);
    eventually(GROUP, "the dead letter and both good records", || {
        let (dead, done) = (recorder.dead(), recorder.done_bodies());
        async move { dead.len() == 1 && done.len() == 2 }
    })
    .await;
    worker.stop();
    let attempts: Vec<u32> = recorder
        .seen()
        .iter()
        .filter(|s| body(&s.message) == "bad")
        .map(|s| s.attempt)
        .collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    let (message, error, tries) = recorder.dead().remove(0);
    assert_eq!((body(&message), tries), ("bad", 3));
    assert_eq!(error["code"], "thrown");
    assert_eq!(
        leftovers(&brokers, &topic, &group).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_leaves_every_unsettled_record_to_the_group() {
    let topic = unique("orders");
    let cluster = cluster(&topic, 1);
    let brokers = cluster.bootstrap_servers();
    let bodies: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    produce(&producer(&brokers), &topic, &refs).await;
    let group = unique("group");
    let first = Recorder::new(|m| {
        if body(m) == "r3" {
            Act::Hang
        } else {
            Act::Succeed
        }
    });
    let worker = Worker::start(source(&brokers, &topic, &group), first.clone(), 4, 5);
    // The records after the hung one run on the other slots.
    eventually(GROUP, "every record but r3", || {
        let done = first.done_bodies();
        async move { done.len() == 9 }
    })
    .await;
    assert!(first.seen().iter().any(|s| body(&s.message) == "r3"));
    // Let the commits up to r3 reach the cluster.
    tokio::time::sleep(Duration::from_millis(500)).await;
    worker.kill();
    let mut again = leftovers(&brokers, &topic, &group).await;
    again.sort();
    // r0..r2 were committed; r3 held the commit, so r3 and everything
    // after it comes again: nothing is lost.
    let expected: Vec<String> = bodies[3..].to_vec();
    assert_eq!(again, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuming_resumes_after_a_broker_outage() {
    let topic = unique("orders");
    let cluster = cluster(&topic, 1);
    let brokers = cluster.bootstrap_servers();
    let producing = producer(&brokers);
    produce(&producing, &topic, &["before-1", "before-2"]).await;
    let recorder = Recorder::succeeding();
    // No group given: one per deployment.
    let t = trigger(json!({"brokers": brokers, "topics": [topic]}));
    let source = sluice_triggers::source(&t, None, &names()).unwrap();
    let worker = Worker::start(source, recorder.clone(), 2, 5);
    eventually(GROUP, "the records before the outage", || {
        let done = recorder.done_bodies();
        async move { done.len() == 2 }
    })
    .await;
    cluster.broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Records produced during the outage wait in the producer.
    let sending = tokio::spawn(async move {
        produce(&producing, &topic, &["during-1", "during-2"]).await;
        producing
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.broker_up(1).unwrap();
    let producing = sending.await.unwrap();
    drop(producing);
    eventually(
        Duration::from_secs(60),
        "the records after the outage",
        || {
            let done = recorder.done_bodies();
            async move { done.len() == 4 }
        },
    )
    .await;
    worker.stop();
}

fn config_error(fields: Value, account: Option<Value>) -> String {
    let t = trigger(fields);
    let account = account.map(|a| a.as_object().unwrap().clone());
    match sluice_triggers::source(&t, account.as_ref(), &names()) {
        Err(TriggerError::Config(e)) => e,
        Err(e) => panic!("not a config error: {e}"),
        Ok(_) => panic!("accepted {t:?}"),
    }
}

#[tokio::test]
async fn bad_settings_are_clear() {
    let e = config_error(json!({"topics": ["a"]}), None);
    assert!(e.contains("trigger.brokers"), "{e}");
    let e = config_error(json!({"brokers": "k:9092", "topics": []}), None);
    assert!(e.contains("trigger.topics"), "{e}");
    let e = config_error(json!({"brokers": "k:9092", "topics": ["has space"]}), None);
    assert!(e.contains("trigger.topics"), "{e}");
    let e = config_error(json!({"brokers": "ssl://k:9093", "topics": ["a"]}), None);
    assert!(e.contains("TLS"), "{e}");
    let e = config_error(
        json!({"brokers": "k:9092", "topics": ["a"], "group": " "}),
        None,
    );
    assert!(e.contains("trigger.group"), "{e}");
    let e = config_error(
        json!({"account": "events", "topics": ["a"]}),
        Some(json!({"brokers": 9092})),
    );
    assert!(e.contains("'brokers'"), "{e}");
    let e = config_error(
        json!({"account": "events", "topics": ["a"]}),
        Some(
            json!({"brokers": "k:9092", "mechanism": "SCRAM-SHA-512", "username": "u", "password": "p"}),
        ),
    );
    assert!(e.contains("SCRAM-SHA-512"), "{e}");
    let e = config_error(
        json!({"account": "events", "topics": ["a"]}),
        Some(json!({"brokers": "k:9092", "username": "u"})),
    );
    assert!(e.contains("password"), "{e}");
    // The account's brokers and SASL/PLAIN login make a source.
    let t = trigger(json!({"account": "events", "topics": ["a"]}));
    let account = json!({"brokers": "k:9092", "username": "u", "password": "p"});
    assert!(sluice_triggers::source(&t, account.as_object(), &names()).is_ok());
    // A cluster that cannot be reached is a connection error at subscribe.
    let t = trigger(json!({"brokers": "127.0.0.1:9", "topics": ["a"]}));
    let source = sluice_triggers::source(&t, None, &names()).unwrap();
    match source.subscribe(1).await {
        Err(TriggerError::Connection(e)) => assert!(e.contains("reach"), "{e}"),
        Err(e) => panic!("not a connection error: {e}"),
        Ok(_) => panic!("subscribed to nothing"),
    }
}
