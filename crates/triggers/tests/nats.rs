//! The `nats` trigger against the machine's NATS server
//! (`SLUICE_TEST_NATS_URL`): JetStream messages run and acked once,
//! retried with the server's delivery count then dead-lettered, a killed
//! worker's message delivered again, consumption resuming after the
//! server was restarted (a private `nats-server` the test starts), and
//! core NATS subscriptions in a queue group.

#![cfg(feature = "nats")]

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use serde_json::{Value, json};
use sluice_spec::Trigger;
use sluice_triggers::{Names, Source, TriggerError, source};
use support::{Act, Recorder, Worker, eventually, service_url, unique};

const LIMIT: Duration = Duration::from_secs(20);

fn trigger(extra: Value) -> Trigger {
    let mut fields = json!({"type": "nats"});
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

/// A stream of its own for one test; its name and subject.
async fn new_stream(js: &jetstream::Context) -> (String, String) {
    let name = unique("SLUICE").replace('-', "_");
    let subject = format!("{}.in", name.to_lowercase());
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        ..stream::Config::default()
    })
    .await
    .expect("stream");
    (name, subject)
}

async fn publish(js: &jetstream::Context, subject: &str, body: String) {
    js.publish(subject.to_owned(), body.into())
        .await
        .expect("publish")
        .await
        .expect("stored");
}

/// Messages of the consumer not acknowledged yet (pending or in hand).
async fn unsettled(js: &jetstream::Context, stream: &str, durable: &str) -> u64 {
    let mut consumer: jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream(durable, stream)
        .await
        .expect("consumer");
    let info = consumer.info().await.expect("info");
    info.num_pending + info.num_ack_pending as u64
}

#[tokio::test]
async fn jetstream_messages_run_once_and_are_acked() {
    let Some(url) = service_url("SLUICE_TEST_NATS_URL") else {
        return;
    };
    let client = async_nats::connect(&url).await.expect("connect");
    let js = jetstream::new(client);
    let (stream, subject) = new_stream(&js).await;
    for i in 0..40 {
        publish(&js, &subject, format!(r#"{{"n":{i}}}"#)).await;
    }
    let t = trigger(json!({"subject": subject, "stream": stream, "durable": "orders"}));
    let recorder = Recorder::succeeding();
    let worker = Worker::start(build(&url, &t), recorder.clone(), 8, 5);
    eventually(LIMIT, "40 runs", || async { recorder.seen().len() >= 40 }).await;
    eventually(LIMIT, "every ack", || async {
        unsettled(&js, &stream, "orders").await == 0
    })
    .await;
    worker.stop();
    assert_eq!(recorder.seen().len(), 40);
    let done = recorder.done_bodies();
    assert!((0..40).all(|i| done.get(&json!({"n": i}).to_string()) == Some(&1)));
    let first = &recorder.seen()[0];
    assert_eq!(first.attempt, 1);
    assert!(!first.redelivered);
    assert_eq!(first.message["subject"], json!(subject));
    assert_eq!(first.message["stream"], json!(stream));
    assert!(first.message["sequence"].as_u64().is_some());
    let _ = js.delete_stream(&stream).await;
}

#[tokio::test]
async fn jetstream_failures_are_retried_by_the_server_then_dead_lettered() {
    let Some(url) = service_url("SLUICE_TEST_NATS_URL") else {
        return;
    };
    let client = async_nats::connect(&url).await.expect("connect");
    let js = jetstream::new(client);
    let (stream, subject) = new_stream(&js).await;
    publish(&js, &subject, r#"{"bad":true}"#.into()).await;
    let t = trigger(json!({"subject": subject, "stream": stream, "durable": "retry"}));
    let recorder = Recorder::new(|_| Act::Fail);
    let worker = Worker::start(build(&url, &t), recorder.clone(), 2, 3);
    eventually(LIMIT, "a dead letter", || async {
        !recorder.dead().is_empty()
    })
    .await;
    eventually(LIMIT, "the dead letter acked", || async {
        unsettled(&js, &stream, "retry").await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.stop();
    let attempts: Vec<(u32, bool)> = recorder
        .seen()
        .iter()
        .map(|s| (s.attempt, s.redelivered))
        .collect();
    assert_eq!(attempts, vec![(1, false), (2, true), (3, true)]);
    assert_eq!(recorder.dead()[0].2, 3);
    let _ = js.delete_stream(&stream).await;
}

#[tokio::test]
async fn a_killed_jetstream_worker_loses_nothing() {
    let Some(url) = service_url("SLUICE_TEST_NATS_URL") else {
        return;
    };
    let client = async_nats::connect(&url).await.expect("connect");
    let js = jetstream::new(client);
    let (stream, subject) = new_stream(&js).await;
    for i in 0..20 {
        publish(&js, &subject, format!(r#"{{"n":{i}}}"#)).await;
    }
    let t = trigger(json!({
        "subject": subject, "stream": stream, "durable": "kill", "ackWait": "1s"
    }));
    let first = Recorder::new(|m| {
        if m["body"]["n"] == json!(5) {
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
            .any(|s| s.message["body"]["n"] == json!(5))
    })
    .await;
    // Progress reports keep it from going elsewhere while the worker lives.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = first.seen().len();
    worker.kill();
    assert!(before >= 20, "every message but the hung one ran, once");
    let second = Recorder::succeeding();
    let worker = Worker::start(build(&url, &t), second.clone(), 4, 5);
    eventually(LIMIT, "the killed worker's message", || async {
        second
            .seen()
            .iter()
            .any(|s| s.message["body"]["n"] == json!(5))
    })
    .await;
    eventually(LIMIT, "every ack", || async {
        unsettled(&js, &stream, "kill").await == 0
    })
    .await;
    worker.stop();
    let again = &second.seen()[0];
    assert_eq!(again.message["body"], json!({"n": 5}));
    assert!(again.redelivered);
    assert_eq!(again.attempt, 2);
    assert_eq!(second.seen().len(), 1, "nothing else came twice");
    let _ = js.delete_stream(&stream).await;
}

/// A private NATS server with JetStream, killed and started again by the test.
struct Server {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(port: u16, dir: std::path::PathBuf) -> Option<Server> {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .or_else(|_| {
                Command::new("/usr/sbin/nats-server")
                    .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
                    .arg(&dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
            })
            .ok()?;
        Some(Server {
            port,
            dir,
            child: Some(child),
        })
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        let mut again = Server::start(self.port, self.dir.clone()).expect("restart");
        self.child = again.child.take();
        // `again` must not remove the data directory the server now uses.
        again.dir = std::path::PathBuf::new();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn connect_eventually(url: &str) -> async_nats::Client {
    for _ in 0..100 {
        if let Ok(c) = async_nats::connect(url).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the private NATS server did not start");
}

#[tokio::test]
async fn consumption_resumes_after_the_server_restarts() {
    if service_url("SLUICE_TEST_NATS_URL").is_none() {
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let dir = std::env::temp_dir().join(unique("sluice-nats"));
    let Some(mut server) = Server::start(port, dir) else {
        eprintln!("skipped: no nats-server binary to restart");
        return;
    };
    let url = format!("nats://127.0.0.1:{port}");
    let js = jetstream::new(connect_eventually(&url).await);
    let (stream, subject) = new_stream(&js).await;
    let t = trigger(json!({"subject": subject, "stream": stream, "durable": "restart"}));
    let recorder = Recorder::succeeding();
    let worker = Worker::start(build(&url, &t), recorder.clone(), 2, 5);
    publish(&js, &subject, r#"{"before":1}"#.into()).await;
    eventually(LIMIT, "the first message", || async {
        recorder.seen().len() == 1
    })
    .await;
    server.restart();
    let js = jetstream::new(connect_eventually(&url).await);
    for i in 0..5 {
        publish(&js, &subject, format!(r#"{{"after":{i}}}"#)).await;
    }
    eventually(LIMIT, "the messages after the restart", || async {
        let done = recorder.done_bodies();
        (0..5).all(|i| done.contains_key(&json!({"after": i}).to_string()))
    })
    .await;
    worker.stop();
}

#[tokio::test]
async fn core_subscriptions_share_a_queue_group() {
    let Some(url) = service_url("SLUICE_TEST_NATS_URL") else {
        return;
    };
    let subject = unique("sluice.core").replace('-', "_");
    let t = trigger(json!({"subject": subject}));
    let a = Recorder::succeeding();
    let b = Recorder::succeeding();
    let wa = Worker::start(build(&url, &t), a.clone(), 2, 3);
    let wb = Worker::start(build(&url, &t), b.clone(), 2, 3);
    let client = async_nats::connect(&url).await.expect("connect");
    // Both subscriptions are up once a probe reaches one of them.
    eventually(LIMIT, "the subscriptions", || async {
        let _ = client.publish(subject.clone(), "\"probe\"".into()).await;
        let _ = client.flush().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.seen().len() + b.seen().len() > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let probes = a.seen().len() + b.seen().len();
    for i in 0..20 {
        client
            .publish(subject.clone(), format!(r#"{{"n":{i}}}"#).into())
            .await
            .expect("publish");
    }
    client.flush().await.expect("flush");
    eventually(LIMIT, "20 runs", || async {
        a.seen().len() + b.seen().len() >= probes + 20
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    wa.stop();
    wb.stop();
    assert_eq!(
        a.seen().len() + b.seen().len(),
        probes + 20,
        "each message went to one member of the group"
    );
    let seen = a.seen();
    let one = seen
        .iter()
        .chain(b.seen().iter())
        .find(|s| s.message["body"]["n"].is_number())
        .cloned()
        .expect("a message");
    assert_eq!(one.message["subject"], json!(subject));
    assert_eq!(one.attempt, 1);
}

#[test]
fn bad_settings_name_the_field() {
    let names = Names::new("acme", "test", "orders", 1);
    let err = |t: Trigger, account: Value| match source(&t, account.as_object(), &names) {
        Err(TriggerError::Config(e)) => e,
        Err(other) => panic!("not a config error: {other}"),
        Ok(_) => panic!("accepted"),
    };
    let e = err(trigger(json!({"subject": "a"})), json!({}));
    assert!(e.contains("trigger.url"), "{e}");
    let e = err(
        trigger(json!({"subject": "a", "url": "http://x"})),
        json!({}),
    );
    assert!(e.contains("trigger.url"), "{e}");
    let e = err(
        trigger(json!({"subject": "a", "url": "nats://u:p@h:4222"})),
        json!({}),
    );
    assert!(e.contains("credentials") && !e.contains("u:p"), "{e}");
    let e = err(
        trigger(json!({"subject": "a b", "url": "nats://h"})),
        json!({}),
    );
    assert!(e.contains("trigger.subject"), "{e}");
    let e = err(
        trigger(json!({"subject": "a", "url": "nats://h"})),
        json!({"username": "u"}),
    );
    assert!(e.contains("password"), "{e}");
    let e = err(
        trigger(json!({"subject": "a", "url": "nats://h", "stream": "S", "ackWait": "10ms"})),
        json!({}),
    );
    assert!(e.contains("trigger.ackWait"), "{e}");
}
