//! The `rabbitmq` trigger against the machine's RabbitMQ
//! (`SLUICE_TEST_RABBITMQ_URL`): every message run and acked once,
//! retries then dead letters (Sluice's list, or the queue's dead-letter
//! exchange), a killed worker's message delivered again, and consumption
//! resuming after the broker was out of reach.

#![cfg(feature = "rabbitmq")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};
use sluice_spec::Trigger;
use sluice_triggers::{Names, Source, TriggerError, source};
use support::{Act, Proxy, Recorder, Worker, eventually, service_url, unique};

const LIMIT: Duration = Duration::from_secs(20);

fn trigger(queue: &str, extra: Value) -> Trigger {
    let mut fields = json!({"type": "rabbitmq", "queue": queue});
    if let (Some(f), Some(e)) = (fields.as_object_mut(), extra.as_object()) {
        f.extend(e.clone());
    }
    serde_json::from_value(fields).expect("trigger")
}

fn build(url: &str, trigger: &Trigger) -> Arc<dyn Source> {
    let account = json!({"url": url});
    source(
        trigger,
        account.as_object(),
        &Names::new("acme", "test", "orders", 1),
    )
    .expect("source")
}

async fn channel(url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

async fn declare(channel: &Channel, queue: &str) {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare");
}

async fn publish(channel: &Channel, queue: &str, body: &[u8]) {
    let mut headers = FieldTable::default();
    headers.insert("tenant".into(), AMQPValue::LongString("acme".into()));
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default()
                .with_content_type("application/json".into())
                .with_message_id("m-1".into())
                .with_headers(headers),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
}

async fn left_in(channel: &Channel, queue: &str) -> u32 {
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("passive declare");
    q.message_count()
}

async fn delete(channel: &Channel, queue: &str) {
    let _ = channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
}

#[tokio::test]
async fn every_message_runs_once_and_is_acked() {
    let Some(url) = service_url("SLUICE_TEST_RABBITMQ_URL") else {
        return;
    };
    let queue = unique("sluice-trigger");
    let (_c, ch) = channel(&url).await;
    declare(&ch, &queue).await;
    for i in 0..50 {
        publish(&ch, &queue, format!(r#"{{"n":{i}}}"#).as_bytes()).await;
    }
    publish(&ch, &queue, b"plain text").await;
    let recorder = Recorder::succeeding();
    let worker = Worker::start(
        build(&url, &trigger(&queue, json!({}))),
        recorder.clone(),
        8,
        5,
    );
    eventually(LIMIT, "51 runs", || async { recorder.seen().len() >= 51 }).await;
    worker.stop();
    assert_eq!(recorder.seen().len(), 51, "each message runs once");
    let done = recorder.done_bodies();
    assert!((0..50).all(|i| done.get(&json!({"n": i}).to_string()) == Some(&1)));
    let first = recorder
        .seen()
        .into_iter()
        .find(|s| s.message["body"] == json!({"n": 0}))
        .expect("first");
    assert_eq!(first.attempt, 1);
    assert!(!first.redelivered);
    let m = &first.message;
    assert_eq!(m["queue"], json!(queue));
    assert_eq!(m["routingKey"], json!(queue));
    assert_eq!(m["exchange"], json!(""));
    assert_eq!(m["headers"]["tenant"], json!("acme"));
    assert_eq!(m["contentType"], json!("application/json"));
    assert_eq!(m["messageId"], json!("m-1"));
    assert!(
        recorder
            .seen()
            .iter()
            .any(|s| s.message["body"] == json!("plain text"))
    );
    assert_eq!(left_in(&ch, &queue).await, 0, "everything was acked");
    delete(&ch, &queue).await;
}

#[tokio::test]
async fn failures_are_retried_then_kept_in_the_dead_letters() {
    let Some(url) = service_url("SLUICE_TEST_RABBITMQ_URL") else {
        return;
    };
    let queue = unique("sluice-trigger-retry");
    let (_c, ch) = channel(&url).await;
    declare(&ch, &queue).await;
    publish(&ch, &queue, br#"{"bad":true}"#).await;
    publish(&ch, &queue, br#"{"bad":false}"#).await;
    let recorder = Recorder::new(|m| {
        if m["body"]["bad"] == json!(true) {
            Act::Fail
        } else {
            Act::Succeed
        }
    });
    let worker = Worker::start(
        build(&url, &trigger(&queue, json!({}))),
        recorder.clone(),
        2,
        3,
    );
    eventually(LIMIT, "a dead letter", || async {
        !recorder.dead().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop();
    let bad: Vec<u32> = recorder
        .seen()
        .iter()
        .filter(|s| s.message["body"]["bad"] == json!(true))
        .map(|s| s.attempt)
        .collect();
    assert_eq!(bad, vec![1, 2, 3], "three deliveries, counted");
    let dead = recorder.dead();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0["body"], json!({"bad": true}));
    assert_eq!(dead[0].1["code"], json!("thrown"));
    assert_eq!(dead[0].2, 3);
    assert_eq!(left_in(&ch, &queue).await, 0, "the dead letter was acked");
    delete(&ch, &queue).await;
}

#[tokio::test]
async fn a_message_is_handed_back_when_it_cannot_be_dead_lettered() {
    let Some(url) = service_url("SLUICE_TEST_RABBITMQ_URL") else {
        return;
    };
    let queue = unique("sluice-trigger-nodlq");
    let (_c, ch) = channel(&url).await;
    declare(&ch, &queue).await;
    publish(&ch, &queue, br#"{"x":1}"#).await;
    let recorder = Recorder::new(|_| Act::Fail);
    recorder
        .dead_letter_fails
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let worker = Worker::start(
        build(&url, &trigger(&queue, json!({}))),
        recorder.clone(),
        1,
        1,
    );
    eventually(LIMIT, "two runs", || async { recorder.seen().len() >= 2 }).await;
    worker.kill();
    // Never acked without a copy: it went back to the queue and came again.
    assert!(recorder.seen()[1].redelivered);
    assert!(recorder.dead().is_empty());
    eventually(LIMIT, "the message back in the queue", || async {
        left_in(&ch, &queue).await == 1
    })
    .await;
    delete(&ch, &queue).await;
}

#[tokio::test]
async fn a_queue_with_a_dead_letter_exchange_gets_it_from_the_broker() {
    let Some(url) = service_url("SLUICE_TEST_RABBITMQ_URL") else {
        return;
    };
    let queue = unique("sluice-trigger-dlx");
    let dlx = format!("{queue}.dlx");
    let parked = format!("{queue}.parked");
    let (_c, ch) = channel(&url).await;
    ch.exchange_declare(
        dlx.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("dlx");
    declare(&ch, &parked).await;
    ch.queue_bind(
        parked.as_str().into(),
        dlx.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    let recorder = Recorder::new(|_| Act::Fail);
    let t = trigger(&queue, json!({"deadLetterExchange": dlx}));
    let worker = Worker::start(build(&url, &t), recorder.clone(), 1, 2);
    // The trigger declares the queue with its dead-letter exchange.
    eventually(LIMIT, "the queue", || async {
        let (_c2, probe) = channel(&url).await;
        probe
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .is_ok()
    })
    .await;
    publish(&ch, &queue, br#"{"poison":1}"#).await;
    eventually(LIMIT, "the parked message", || async {
        left_in(&ch, &parked).await == 1
    })
    .await;
    worker.stop();
    assert_eq!(recorder.seen().len(), 2);
    assert!(recorder.dead().is_empty(), "the broker kept it, not Sluice");
    let got = ch
        .basic_get(parked.as_str().into(), BasicGetOptions::default())
        .await
        .expect("get")
        .expect("a message");
    assert_eq!(got.delivery.data, br#"{"poison":1}"#);
    for q in [&queue, &parked] {
        delete(&ch, q).await;
    }
}

#[tokio::test]
async fn a_killed_worker_loses_nothing() {
    let Some(url) = service_url("SLUICE_TEST_RABBITMQ_URL") else {
        return;
    };
    let queue = unique("sluice-trigger-kill");
    let (_c, ch) = channel(&url).await;
    declare(&ch, &queue).await;
    for i in 0..20 {
        publish(&ch, &queue, format!(r#"{{"n":{i}}}"#).as_bytes()).await;
    }
    let t = trigger(&queue, json!({}));
    let first = Recorder::new(|m| {
        if m["body"]["n"] == json!(3) {
            Act::Hang
        } else {
            Act::Succeed
        }
    });
    let worker = Worker::start(build(&url, &t), first.clone(), 4, 5);
    eventually(LIMIT, "the hanging message", || async {
        first
            .seen()
            .iter()
            .any(|s| s.message["body"]["n"] == json!(3))
    })
    .await;
    worker.kill();
    let second = Recorder::succeeding();
    let worker = Worker::start(build(&url, &t), second.clone(), 4, 5);
    eventually(LIMIT, "every message done", || async {
        let mut done = first.done_bodies();
        for (k, v) in second.done_bodies() {
            *done.entry(k).or_insert(0) += v;
        }
        (0..20).all(|i| done.contains_key(&json!({"n": i}).to_string()))
    })
    .await;
    worker.stop();
    let again = second
        .seen()
        .into_iter()
        .find(|s| s.message["body"]["n"] == json!(3))
        .expect("the killed worker's message came again");
    assert!(again.redelivered);
    assert_eq!(again.attempt, 2);
    assert_eq!(left_in(&ch, &queue).await, 0);
    delete(&ch, &queue).await;
}

#[tokio::test]
async fn consumption_resumes_after_the_broker_was_away() {
    let Some(url) = service_url("SLUICE_TEST_RABBITMQ_URL") else {
        return;
    };
    let (authority, _) = url
        .trim_start_matches("amqp://")
        .split_once('/')
        .unwrap_or((url.trim_start_matches("amqp://"), ""));
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5672")
    };
    let proxy = Proxy::start(&host_port).await;
    let through = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    let queue = unique("sluice-trigger-restart");
    let (_c, ch) = channel(&url).await;
    declare(&ch, &queue).await;
    let recorder = Recorder::succeeding();
    let worker = Worker::start(
        build(&through, &trigger(&queue, json!({}))),
        recorder.clone(),
        2,
        5,
    );
    publish(&ch, &queue, br#"{"before":1}"#).await;
    eventually(LIMIT, "the first message", || async {
        recorder.seen().len() == 1
    })
    .await;
    proxy.block();
    publish(&ch, &queue, br#"{"during":1}"#).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.open();
    publish(&ch, &queue, br#"{"after":1}"#).await;
    eventually(LIMIT, "the messages after the outage", || async {
        let seen = recorder.seen();
        seen.iter()
            .any(|s| s.message["body"] == json!({"during": 1}))
            && seen
                .iter()
                .any(|s| s.message["body"] == json!({"after": 1}))
    })
    .await;
    worker.stop();
    assert_eq!(left_in(&ch, &queue).await, 0);
    delete(&ch, &queue).await;
}

#[test]
fn bad_settings_name_the_field() {
    let names = Names::new("acme", "test", "orders", 1);
    let err = |t: Trigger, account: Value| match source(&t, account.as_object(), &names) {
        Err(TriggerError::Config(e)) => e,
        Err(other) => panic!("not a config error: {other}"),
        Ok(_) => panic!("accepted"),
    };
    let e = err(trigger("q", json!({})), json!({}));
    assert!(e.contains("trigger.url"), "{e}");
    let e = err(trigger("q", json!({"url": "http://x"})), json!({}));
    assert!(e.contains("trigger.url") && e.contains("amqp://"), "{e}");
    let e = err(trigger("", json!({"url": "amqp://h"})), json!({}));
    assert!(e.contains("trigger.queue"), "{e}");
    let e = err(trigger("q", json!({})), json!({"url": 5}));
    assert!(e.contains("'url' must be text"), "{e}");
}

#[test]
fn describe_never_shows_credentials() {
    let t = trigger("orders", json!({}));
    let account =
        json!({"url": "amqp://127.0.0.1:5672/%2f", "username": "u", "password": "s3cret"});
    let s = source(&t, account.as_object(), &Names::new("a", "b", "c", 1)).expect("source");
    let shown = s.describe();
    assert!(
        shown.contains("orders") && !shown.contains("s3cret"),
        "{shown}"
    );
}
