//! A broker trigger through the whole platform: `sluice serve` consumes a
//! RabbitMQ queue for a deployed pipeline, is killed (SIGKILL) in the
//! middle of a message and started again, and the message runs to its
//! end on the second life (at least once, flagged as a redelivery). A
//! failing message is retried, lands in the realm's dead letters, and a
//! redrive runs it again. The account's password never shows in the
//! execution records, logs or traces.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::path::PathBuf;

use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{Value, json};

const PASSWORD: &str = "guest";

mod support;

use support::{Served, ok, sluice};

async fn channel(url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

async fn publish(channel: &Channel, queue: &str, body: Value) {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.to_string().as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn ready_in(channel: &Channel, queue: &str) -> u32 {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
}

async fn api(client: &reqwest::Client, served: &Served, token: &str, path: &str) -> Value {
    client
        .get(format!("{}/api/v1{path}", served.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_runs_the_message_after_restart_and_dead_letters_failures() {
    let Ok(amqp) = std::env::var("SLUICE_TEST_RABBITMQ_URL") else {
        eprintln!("skipped: set SLUICE_TEST_RABBITMQ_URL");
        return;
    };
    sluice_connectors::install_tls_provider();
    let dir: PathBuf =
        std::env::temp_dir().join(format!("sluice-brokers-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let queue = format!("sluice-e2e-{}", std::process::id());
    let pipeline = format!(
        r#"
name: orders
trigger:
  type: rabbitmq
  account: mq
  queue: {queue}
  maxDeliveries: 2
steps:
  - type: assert
    condition: "{{{{ message.body.fail != true }}}}"
    message: "order {{{{ message.body.n }}}} refused"
  - type: log
    message: "order {{{{ message.body.n }}}} redelivery={{{{ metadata.execution.redelivery }}}} via {{{{ account.mq.password }}}}"
  - type: choice
    when:
      - condition: "{{{{ message.body.slow == true }}}}"
        steps:
          - type: delay
            duration: 3s
"#
    );
    std::fs::write(dir.join("orders.yaml"), pipeline).unwrap();

    let served = Served::start(&dir, "1");
    let token = std::fs::read_to_string(dir.join("data/admin-token")).unwrap();
    let token = token.trim().to_owned();
    let run = |served: &Served, args: &[&str]| ok(sluice(served, &token, args, &dir));
    run(&served, &["realm", "create", "acme"]);
    run(&served, &["apply", "-f", "orders.yaml", "--realm", "acme"]);
    let set_account = |served: &Served, url: &str| {
        run(
            served,
            &[
                "account",
                "set",
                "mq",
                "--type",
                "generic",
                "--field",
                &format!("url={url}"),
                "--field",
                "username=guest",
                "--field",
                &format!("password={PASSWORD}"),
                "--realm",
                "acme",
                "--env",
                "test",
            ],
        )
    };
    // First with a broker address where nothing listens: the deployment
    // keeps trying, and takes the corrected account without a redeploy.
    set_account(&served, "amqp://127.0.0.1:1/%2f");
    run(
        &served,
        &["deploy", "orders", "--realm", "acme", "--env", "test"],
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    set_account(&served, &amqp);

    let (_c, ch) = channel(&amqp).await;
    // The deployment declares its queue when it starts consuming.
    wait_for("the queue", || async {
        let (_c2, probe) = channel(&amqp).await;
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

    // A slow message is taken, and the server dies in its middle.
    publish(&ch, &queue, json!({"n": 1, "slow": true})).await;
    wait_for("the message taken", || async {
        ready_in(&ch, &queue).await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    served.kill();
    wait_for("the message back in the queue", || async {
        ready_in(&ch, &queue).await == 1
    })
    .await;

    // The second life runs it to its end.
    let served = Served::start(&dir, "2");
    let client = reqwest::Client::new();
    let done = loop {
        let list = api(
            &client,
            &served,
            &token,
            "/realms/acme/executions?environment=test&status=ok",
        )
        .await;
        if let Some(items) = list["items"].as_array()
            && !items.is_empty()
        {
            break items.clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done.len(), 1, "one execution ended well: {done:?}");
    assert_eq!(done[0]["trigger"], json!("rabbitmq"));
    assert_eq!(done[0]["input"]["body"], json!({"n": 1, "slow": true}));
    let key = done[0]["key"].as_str().unwrap();
    let record = api(
        &client,
        &served,
        &token,
        &format!("/realms/acme/executions/{key}"),
    )
    .await;
    let logs = record["logs"].to_string();
    assert!(logs.contains("order 1 redelivery=true via ***"), "{logs}");
    wait_for("the ack", || async { ready_in(&ch, &queue).await == 0 }).await;

    // A failing message: two deliveries, then the dead letters.
    publish(&ch, &queue, json!({"n": 2, "fail": true})).await;
    let dead = loop {
        let list = api(
            &client,
            &served,
            &token,
            "/realms/acme/dead-letters?environment=test",
        )
        .await;
        if let Some(items) = list["items"].as_array()
            && !items.is_empty()
        {
            break items[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead["name"], json!(format!("rabbitmq:{queue}")));
    assert_eq!(dead["pipeline"], json!("orders"));
    assert_eq!(dead["attempts"], json!(2));
    assert_eq!(dead["payload"]["body"], json!({"n": 2, "fail": true}));
    assert_eq!(dead["lastError"]["code"], json!("assertion"));
    let failed = api(
        &client,
        &served,
        &token,
        "/realms/acme/executions?environment=test&status=error",
    )
    .await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 2);
    assert_eq!(ready_in(&ch, &queue).await, 0, "acked once kept");

    // A redrive runs it again (and it fails again, through the queue).
    let id = dead["id"].as_i64().unwrap();
    let status = client
        .post(format!(
            "{}/api/v1/realms/acme/dead-letters/{id}/redrive",
            served.url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 202);
    wait_for("the redriven run", || async {
        let failed = api(
            &client,
            &served,
            &token,
            "/realms/acme/executions?environment=test&status=error",
        )
        .await;
        failed["items"].as_array().is_some_and(|i| i.len() >= 3)
    })
    .await;

    // The account's password shows nowhere.
    let all = api(
        &client,
        &served,
        &token,
        "/realms/acme/executions?environment=test&limit=100",
    )
    .await;
    for item in all["items"].as_array().unwrap() {
        let key = item["key"].as_str().unwrap();
        let record = api(
            &client,
            &served,
            &token,
            &format!("/realms/acme/executions/{key}"),
        )
        .await;
        let text = record.to_string();
        assert!(!text.contains("via guest"), "a secret leaked: {text}");
    }
    served.kill();
    let _ = ch
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = std::fs::remove_dir_all(&dir);
}
