//! The `mqtt` trigger against a Mosquitto broker (SLUICE_TEST_MQTT_URL,
//! e.g. mqtt://127.0.0.1:1883): every message runs and is acknowledged
//! once, failures are retried then dead-lettered, a killed worker's
//! message comes again, and consumption survives a broker restart (on a
//! broker the test starts itself, when the `mosquitto` binary is there).

#![cfg(feature = "mqtt")]

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use sluice_spec::{MqttTrigger, Trigger};
use sluice_triggers::{Names, Source, TriggerError};
use support::{Act, Recorder, Worker, eventually, service_url, unique};

const LIMIT: Duration = Duration::from_secs(20);

fn trigger(url: &str, topic: &str, client_id: &str) -> MqttTrigger {
    MqttTrigger {
        url: Some(url.to_owned()),
        account: None,
        topic: topic.to_owned(),
        qos: None,
        client_id: Some(client_id.to_owned()),
        max_deliveries: None,
        timeout: None,
    }
}

fn source_of(t: MqttTrigger) -> Arc<dyn Source> {
    let names = Names::new("test", "dev", "mqtt", 1);
    match sluice_triggers::source(&Trigger::Mqtt(t), None, &names) {
        Ok(source) => source,
        Err(e) => panic!("the trigger is refused: {e}"),
    }
}

/// Subscribes once and goes: the broker now keeps the session and queues
/// what is published to the topic until the client id comes back.
async fn open_session(source: &Arc<dyn Source>) {
    match source.subscribe(4).await {
        Ok(subscription) => drop(subscription),
        Err(e) => panic!("cannot subscribe: {e}"),
    }
}

/// Publishes every body with QoS 1 and waits for the broker's PUBACKs.
async fn publish(url: &str, topic: &str, bodies: &[Vec<u8>]) {
    let rest = url.trim_start_matches("mqtt://");
    let (host, port) = rest.rsplit_once(':').expect("mqtt://host:port");
    let port: u16 = port.trim_end_matches('/').parse().expect("a port");
    let mut options = MqttOptions::new(unique("pub"), host, port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, bodies.len() + 4);
    for body in bodies {
        client
            .publish(topic, QoS::AtLeastOnce, false, body.clone())
            .await
            .expect("queued");
    }
    let acked = async {
        let mut acked = 0;
        while acked < bodies.len() {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("the test publisher lost the broker: {e}"),
            }
        }
    };
    tokio::time::timeout(LIMIT, acked)
        .await
        .expect("the broker acknowledged every publish");
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
}

fn numbered(prefix: &str, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| json!({"batch": prefix, "n": n}).to_string().into_bytes())
        .collect()
}

/// Publishes a marker and waits until `recorder` ran it: everything the
/// broker had queued for the session before it has been handed out.
async fn drain_with_marker(url: &str, topic: &str, recorder: &Recorder) {
    publish(url, topic, &[b"\"marker\"".to_vec()]).await;
    eventually(LIMIT, "the marker", || async {
        recorder
            .seen()
            .iter()
            .any(|s| s.message["body"] == "marker")
    })
    .await;
}

#[tokio::test]
async fn every_message_runs_once_and_is_acknowledged() {
    let Some(url) = service_url("SLUICE_TEST_MQTT_URL") else {
        return;
    };
    let topic = unique("sluice/batch");
    let client_id = unique("sluice-batch");
    let source = source_of(trigger(&url, &topic, &client_id));
    open_session(&source).await;
    let mut bodies = numbered("a", 20);
    bodies.push(b"plain text".to_vec());
    bodies.push(vec![0xff, 0x00, 0x01]);
    publish(&url, &topic, &bodies).await;

    let recorder = Recorder::succeeding();
    let worker = Worker::start(source.clone(), recorder.clone(), 4, 5);
    eventually(LIMIT, "all 22 messages", || async {
        recorder.done_bodies().len() == 22
    })
    .await;
    worker.stop();

    let seen = recorder.seen();
    assert_eq!(seen.len(), 22, "each message runs once: {seen:?}");
    assert!(seen.iter().all(|s| s.attempt == 1 && !s.redelivered));
    let first = seen
        .iter()
        .find(|s| s.message["body"] == json!({"batch": "a", "n": 0}))
        .expect("the first message");
    let id = first.message["messageId"].clone();
    assert!(id.as_u64().is_some_and(|id| id > 0), "{id}");
    assert_eq!(
        first.message,
        json!({
            "body": {"batch": "a", "n": 0},
            "headers": {},
            "topic": topic,
            "qos": 1,
            "retain": false,
            "dup": false,
            "messageId": id,
        })
    );
    let text = seen
        .iter()
        .find(|s| s.message["body"] == "plain text")
        .expect("the text message");
    assert!(text.message.get("bodyEncoding").is_none());
    let binary = seen
        .iter()
        .find(|s| s.message["bodyEncoding"] == "base64")
        .expect("the binary message");
    assert_eq!(binary.message["body"], "/wAB");

    // A new worker on the same session gets nothing it already acked.
    let again = Recorder::succeeding();
    let worker = Worker::start(source, again.clone(), 4, 5);
    drain_with_marker(&url, &topic, &again).await;
    worker.stop();
    let bodies: Vec<Value> = again
        .seen()
        .into_iter()
        .map(|s| s.message["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("marker")]);
}

#[tokio::test]
async fn a_failing_message_is_retried_then_dead_lettered_once() {
    let Some(url) = service_url("SLUICE_TEST_MQTT_URL") else {
        return;
    };
    let topic = unique("sluice/failing");
    let client_id = unique("sluice-failing");
    let source = source_of(trigger(&url, &topic, &client_id));
    open_session(&source).await;
    publish(&url, &topic, &[b"\"bad\"".to_vec(), b"\"good\"".to_vec()]).await;

    let recorder = Recorder::new(|m| {
        if m["body"] == "bad" {
            Act::Fail
        } else {
            Act::Succeed
        }
    });
    let worker = Worker::start(source.clone(), recorder.clone(), 2, 3);
    eventually(LIMIT, "the dead letter", || async {
        !recorder.dead().is_empty()
    })
    .await;
    worker.stop();

    let attempts: Vec<(u32, bool)> = recorder
        .seen()
        .iter()
        .filter(|s| s.message["body"] == "bad")
        .map(|s| (s.attempt, s.redelivered))
        .collect();
    assert_eq!(attempts, vec![(1, false), (2, true), (3, true)]);
    let dead = recorder.dead();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0["body"], "bad");
    assert_eq!(dead[0].0["topic"], json!(topic));
    assert_eq!(dead[0].1["code"], "thrown");
    assert_eq!(dead[0].2, 3);
    assert_eq!(recorder.done_bodies().get("\"good\""), Some(&1));

    // Dead-lettered means acknowledged: the broker does not send it again.
    let again = Recorder::succeeding();
    let worker = Worker::start(source, again.clone(), 2, 3);
    drain_with_marker(&url, &topic, &again).await;
    worker.stop();
    assert_eq!(again.seen().len(), 1, "{:?}", again.seen());
}

#[tokio::test]
async fn a_killed_workers_message_is_delivered_again() {
    let Some(url) = service_url("SLUICE_TEST_MQTT_URL") else {
        return;
    };
    let topic = unique("sluice/killed");
    let client_id = unique("sluice-killed");
    let source = source_of(trigger(&url, &topic, &client_id));
    open_session(&source).await;
    let bodies = numbered("k", 10);
    publish(&url, &topic, &bodies).await;

    let stuck = json!({"batch": "k", "n": 3});
    let hang = stuck.clone();
    let first = Recorder::new(move |m| {
        if m["body"] == hang {
            Act::Hang
        } else {
            Act::Succeed
        }
    });
    let worker = Worker::start(source.clone(), first.clone(), 2, 5);
    eventually(LIMIT, "the stuck message and the rest", || async {
        let seen = first.seen();
        seen.iter().any(|s| s.message["body"] == stuck) && first.done_bodies().len() == 9
    })
    .await;
    worker.kill();

    let second = Recorder::succeeding();
    let worker = Worker::start(source, second.clone(), 2, 5);
    eventually(LIMIT, "the stuck message again", || async {
        second.seen().iter().any(|s| s.message["body"] == stuck)
    })
    .await;
    drain_with_marker(&url, &topic, &second).await;
    worker.stop();

    let again = second
        .seen()
        .into_iter()
        .find(|s| s.message["body"] == stuck)
        .expect("redelivered");
    assert!(
        again.redelivered && again.message["dup"] == true,
        "{again:?}"
    );
    assert_eq!(again.attempt, 2);
    let done: HashSet<String> = first
        .done_bodies()
        .into_keys()
        .chain(second.done_bodies().into_keys())
        .collect();
    for n in 0..10 {
        let body = json!({"batch": "k", "n": n}).to_string();
        assert!(done.contains(&body), "message {n} was lost: {done:?}");
    }
}

/// A Mosquitto the test starts, stops (kill -9) and starts again on the
/// same port and persistence directory.
struct Broker {
    binary: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn binary() -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
            .map(|dir: PathBuf| dir.join("mosquitto"))
            .find(|bin| bin.is_file())
    }

    fn new(binary: PathBuf) -> Broker {
        use std::os::unix::fs::PermissionsExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(unique("sluice-mosquitto"));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        // Mosquitto started as root runs as the `mosquitto` user.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let config = dir.join("mosquitto.conf");
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nlog_dest none\n",
            dir.display()
        );
        std::fs::write(&config, text).expect("the config");
        Broker {
            binary,
            config,
            dir,
            port,
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        eventually(LIMIT, "mosquitto listening", || async {
            tokio::net::TcpStream::connect(&addr).await.is_ok()
        })
        .await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(Path::new(&self.dir));
    }
}

#[tokio::test]
async fn consuming_resumes_after_the_broker_restarts() {
    let Some(binary) = Broker::binary() else {
        eprintln!("skipped: the `mosquitto` binary is not installed");
        return;
    };
    let mut broker = Broker::new(binary);
    broker.start().await;
    let url = broker.url();
    let topic = unique("sluice/restart");
    let client_id = unique("sluice-restart");
    let source = source_of(trigger(&url, &topic, &client_id));
    open_session(&source).await;
    publish(&url, &topic, &numbered("before", 5)).await;

    let recorder = Recorder::succeeding();
    let worker = Worker::start(source, recorder.clone(), 2, 5);
    eventually(LIMIT, "the messages before the restart", || async {
        recorder.done_bodies().len() == 5
    })
    .await;

    broker.kill();
    broker.start().await;
    // The consumer reconnects (with backoff) and subscribes again; probe
    // until it does, since a broker killed before saving its state no
    // longer knows the subscription.
    let mut probes = 0;
    eventually(LIMIT, "the consumer back on the restarted broker", || {
        probes += 1;
        let body = format!("\"probe {probes}\"").into_bytes();
        let (url, topic, recorder) = (url.clone(), topic.clone(), recorder.clone());
        async move {
            publish(&url, &topic, &[body]).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            recorder.seen().iter().any(|s| {
                s.message["body"]
                    .as_str()
                    .is_some_and(|b| b.starts_with("probe"))
            })
        }
    })
    .await;

    publish(&url, &topic, &numbered("after", 5)).await;
    eventually(LIMIT, "the messages after the restart", || async {
        let done = recorder.done_bodies();
        (0..5).all(|n| done.contains_key(&json!({"batch": "after", "n": n}).to_string()))
    })
    .await;
    worker.stop();
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused() {
    let names = Names::new("test", "dev", "mqtt", 1);
    let refused = |t: MqttTrigger, account: Option<Value>| -> String {
        let account = account.as_ref().and_then(Value::as_object);
        match sluice_triggers::source(&Trigger::Mqtt(t), account, &names) {
            Err(TriggerError::Config(e)) => e,
            Err(e) => panic!("not a config error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    };
    let ok = trigger("mqtt://127.0.0.1:1883", "a/b", "id");

    let e = refused(
        MqttTrigger {
            url: None,
            ..ok.clone()
        },
        None,
    );
    assert!(e.starts_with("trigger.url is missing"), "{e}");
    let e = refused(
        MqttTrigger {
            url: Some("mqtts://broker:8883".into()),
            ..ok.clone()
        },
        None,
    );
    assert!(e.starts_with("trigger.url") && e.contains("TLS"), "{e}");
    let e = refused(
        MqttTrigger {
            qos: Some(2),
            ..ok.clone()
        },
        None,
    );
    assert!(e.starts_with("trigger.qos"), "{e}");
    let e = refused(
        MqttTrigger {
            topic: "a/#/b".into(),
            ..ok.clone()
        },
        None,
    );
    assert!(e.starts_with("trigger.topic"), "{e}");
    let e = refused(
        MqttTrigger {
            client_id: Some(String::new()),
            ..ok.clone()
        },
        None,
    );
    assert!(e.starts_with("trigger.clientId"), "{e}");
    let e = refused(
        MqttTrigger {
            url: None,
            ..ok.clone()
        },
        Some(json!({"url": "mqtt://broker", "username": 7})),
    );
    assert!(e.contains("'username' must be text"), "{e}");

    // Credentials come from the account and are never shown.
    let account = json!({"url": "mqtt://127.0.0.1:1", "username": "reader", "password": "s3cret"});
    let source = sluice_triggers::source(
        &Trigger::Mqtt(MqttTrigger { url: None, ..ok }),
        account.as_object(),
        &names,
    )
    .unwrap_or_else(|e| panic!("refused: {e}"));
    assert!(
        !source.describe().contains("s3cret"),
        "{}",
        source.describe()
    );
    // Nothing listens there: subscribing fails as a connection error.
    match source.subscribe(1).await {
        Err(TriggerError::Connection(e)) => assert!(!e.contains("s3cret"), "{e}"),
        Err(e) => panic!("not a connection error: {e}"),
        Ok(_) => panic!("subscribed to nothing"),
    }
}
