//! Triggers in the process: scheduler, events with retries and dead
//! letters, manual runs, `call` between deployments, sessions and objects
//! kept per realm.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Harness, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_fires_every_second_once_per_tick() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save(
        "acme",
        "name: tick\ntrigger:\n  type: scheduler\n  cron: \"* * * * * *\"\n  timezone: Europe/Berlin\nsteps:\n  - type: log\n    message: tick\n",
    )
    .await;
    h.deploy("acme", "test", "tick", json!({})).await;
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let items = h.executions("acme", "pipeline=tick").await;
    assert!(
        (3..=4).contains(&items.len()),
        "{} firings in 3.3s",
        items.len()
    );
    let mut seconds: Vec<&str> = items
        .iter()
        .map(|e| &e["startedAt"].as_str().unwrap()[..19])
        .collect();
    let firings = seconds.len();
    seconds.dedup();
    assert_eq!(seconds.len(), firings, "one firing per second: {seconds:?}");
    assert!(items.iter().all(|e| e["trigger"] == "scheduler"));
    // Each firing runs near its second.
    for e in &items {
        let time = |field: &str| {
            chrono::DateTime::parse_from_rfc3339(e["input"][field].as_str().unwrap()).unwrap()
        };
        let late = time("firedAt") - time("scheduledAt");
        assert!(late.num_milliseconds() < 200, "late firing: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_that_is_not_concurrent_skips_while_running() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save(
        "acme",
        "name: long\ntrigger:\n  type: scheduler\n  cron: \"* * * * * *\"\n  concurrent: false\nsteps:\n  - type: delay\n    duration: 2500ms\n",
    )
    .await;
    h.deploy("acme", "test", "long", json!({"timeout": "10s"}))
        .await;
    tokio::time::sleep(Duration::from_millis(4000)).await;
    h.state.runtime.writer.flush().await;
    // Started at most twice in 4s (the first runs 2.5s, the ticks in between are skipped).
    let running = h
        .state
        .runtime
        .find("acme", "test", "long", 1)
        .unwrap()
        .running();
    let done = h.executions("acme", "pipeline=long").await.len();
    assert!(done + running <= 2, "done {done}, running {running}");
    assert!(done + running >= 1);
}

#[tokio::test]
async fn a_missed_firing_is_made_up_once_after_downtime() {
    let h = Harness::new().await;
    let store = h.state.store.clone();
    // The last tick was an hour ago: several were missed.
    let key = "acme/test/hourly/v1";
    let an_hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000 - 5_000;
    assert!(store.claim_tick(key, an_hour_ago).await.unwrap());
    h.realm("acme").await;
    h.save(
        "acme",
        "name: hourly\ntrigger:\n  type: scheduler\n  cron: \"0 * * * * *\"\nsteps:\n  - type: set\n    values: {missed: \"{{ message.missed }}\"}\n",
    )
    .await;
    h.deploy("acme", "test", "hourly", json!({})).await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            !h.executions("acme", "pipeline=hourly").await.is_empty()
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let items = h.executions("acme", "pipeline=hourly").await;
    assert_eq!(items.len(), 1, "one made-up firing, not sixty: {items:?}");
    assert_eq!(items[0]["input"]["missed"], true, "{items:?}");
    // Deploying again does not make it up a second time.
    h.save(
        "acme",
        "name: hourly\ntrigger:\n  type: scheduler\n  cron: \"0 * * * * *\"\nsteps:\n  - type: set\n    values: {again: true}\n",
    )
    .await;
    h.deploy("acme", "test", "hourly", json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = chrono::Utc::now();
    let items = h.executions("acme", "pipeline=hourly").await;
    use chrono::Timelike;
    // A new minute may have begun: that firing is a real one, not a make-up.
    let made_up = items
        .iter()
        .filter(|e| e["input"]["missed"] == true)
        .count();
    assert_eq!(made_up, 1, "at {}s: {items:?}", now.second());
}

const PUBLISHER: &str = r#"
name: orders-in
trigger:
  type: http
  auth: none
steps:
  - type: publish
    event: order.created
    payload:
      id: "{{ message.body.id }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_fans_out_to_every_subscriber_of_the_realm_and_environment() {
    let h = Harness::new().await;
    for realm in ["acme", "other"] {
        h.realm(realm).await;
        h.save(realm, PUBLISHER).await;
        h.deploy(realm, "test", "orders-in", json!({})).await;
        for sub in ["billing", "shipping"] {
            h.save(
                realm,
                &format!(
                    "name: {sub}\ntrigger:\n  type: event\n  name: order.created\nsteps:\n  - type: log\n    message: \"{sub} {{{{ message.id }}}}\"\n"
                ),
            )
            .await;
            h.deploy(realm, "test", sub, json!({})).await;
        }
    }
    // A prod subscriber gets nothing from test.
    h.deploy("acme", "prod", "billing", json!({})).await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/orders-in",
            None,
            Some(json!({"id": "o-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.executions("acme", "q=o-1&environment=test").await.len() >= 3
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let billing = h.executions("acme", "pipeline=billing").await;
    let shipping = h.executions("acme", "pipeline=shipping").await;
    assert_eq!(billing.len(), 1, "{billing:?}");
    assert_eq!(shipping.len(), 1, "{shipping:?}");
    assert_eq!(billing[0]["environment"], "test");
    assert_eq!(h.executions("other", "pipeline=billing").await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_deliveries_are_retried_then_dead_lettered_and_can_be_redriven() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save("acme", PUBLISHER).await;
    h.deploy("acme", "test", "orders-in", json!({})).await;
    // Fails unless the global `open` is true.
    h.save(
        "acme",
        r#"
name: picky
trigger:
  type: event
  name: order.created
  maxDeliveries: 2
steps:
  - type: choice
    when:
      - condition: "{{ global.open != true }}"
        steps:
          - type: throw-error
            message: "closed for {{ message.id }}"
            status: 503
"#,
    )
    .await;
    h.deploy("acme", "test", "picky", json!({})).await;
    h.call(
        Method::POST,
        "/test/pipeline/acme/v1/orders-in",
        None,
        Some(json!({"id": "o-9"})),
    )
    .await;
    let dead = || async {
        h.admin(Method::GET, "/realms/acme/dead-letters", None)
            .await
            .body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(6), || async {
            !dead().await.is_empty()
        })
        .await
    );
    let letters = dead().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["attempts"], 2, "{letters:?}");
    assert_eq!(letters[0]["pipeline"], "picky");
    assert!(
        letters[0]["lastError"]
            .to_string()
            .contains("closed for o-9"),
        "{letters:?}"
    );
    h.flush().await;
    let failures = h.executions("acme", "pipeline=picky&status=error").await;
    assert_eq!(failures.len(), 2, "two deliveries: {failures:?}");
    // Open up and re-drive: it is delivered and leaves the dead letters.
    h.admin(
        Method::PUT,
        "/realms/acme/environments/test/globals/open",
        Some(json!({"value": true})),
    )
    .await;
    let id = letters[0]["id"].as_i64().unwrap();
    let r = h
        .admin(
            Method::POST,
            &format!("/realms/acme/dead-letters/{id}/redrive"),
            None,
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
    assert!(
        eventually(Duration::from_secs(5), || async {
            !h.executions("acme", "pipeline=picky&status=ok")
                .await
                .is_empty()
        })
        .await
    );
    assert!(dead().await.is_empty());
}

#[tokio::test]
async fn manual_runs_call_between_deployments_and_realm_scoped_state() {
    let h = Harness::new().await;
    for realm in ["acme", "other"] {
        h.realm(realm).await;
        h.save(
            realm,
            r#"
name: counter
trigger:
  type: manual
steps:
  - type: session
    operation: get
    scope: global
    key: visits
    into: before
  - type: set
    values:
      visits: "{{ (message.before ?? 0) + 1 }}"
  - type: session
    operation: put
    scope: global
    key: visits
    value: "{{ message.visits }}"
  - type: object-store
    operation: upsert
    collection: people
    documentId: "{{ message.who }}"
    document: { name: "{{ message.who }}" }
    into: saved
  - type: object-store
    operation: find
    collection: people
    into: people
"#,
        )
        .await;
        h.deploy(realm, "test", "counter", json!({})).await;
        h.save(
            realm,
            "name: front\ntrigger:\n  type: manual\nsteps:\n  - type: call\n    pipeline: counter\n    input: { who: \"{{ message.who }}\" }\n    into: result\n",
        )
        .await;
        h.deploy(realm, "test", "front", json!({})).await;
    }
    let run = |realm: &'static str, who: &'static str| {
        let h = &h;
        async move {
            let r = h
                .admin(
                    Method::POST,
                    &format!("/realms/{realm}/environments/test/deployments/front/run"),
                    Some(json!({"input": {"who": who}})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{r:?}");
            r.body
        }
    };
    run("acme", "ann").await;
    let out = run("acme", "bob").await;
    let result = &out["output"]["result"];
    assert_eq!(result["visits"], 2, "{out:?}");
    assert_eq!(result["people"].as_array().unwrap().len(), 2, "{out:?}");
    // The other realm starts from nothing.
    let out = run("other", "cy").await;
    assert_eq!(out["output"]["result"]["visits"], 1, "{out:?}");
    assert_eq!(
        out["output"]["result"]["people"].as_array().unwrap().len(),
        1,
        "{out:?}"
    );
    let items = h.executions("acme", "pipeline=counter").await;
    assert_eq!(items.len(), 2);
}

/// A harness with `sink` (on `thing.done`, running `step`) deployed.
async fn with_sink(step: &str) -> Harness {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save(
        "acme",
        &format!("name: sink\ntrigger:\n  type: event\n  name: thing.done\nsteps:\n  - {step}\n"),
    )
    .await;
    h.deploy("acme", "test", "sink", json!({})).await;
    h
}

/// `with_sink`, with the server's jobs stopped as after a crash:
/// deliveries queued in the store stay there until `restart`.
async fn stopped_with_sink(step: &str) -> Harness {
    let mut h = with_sink(step).await;
    if let Some(server) = h._server.take() {
        server.shutdown().await;
    }
    h
}

fn sink_target() -> sluice_store::EventTarget {
    sluice_store::EventTarget {
        pipeline: "sink".into(),
        major: 1,
        max_deliveries: 5,
    }
}

/// A delivery claimed by a server that then died is handed out again by
/// the next start: at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_claimed_before_a_crash_is_delivered_after_the_restart() {
    let h = stopped_with_sink(r#"{ type: log, message: "got {{ message.id }}" }"#).await;
    let store = h.state.store.clone();
    let now = chrono::Utc::now().timestamp_millis();
    store
        .enqueue_event(
            "acme",
            "test",
            "thing.done",
            &json!({"id": "t-1"}),
            &[sink_target()],
            now,
        )
        .await
        .unwrap();
    let claimed = store
        .claim_events(10, now, Duration::from_secs(930))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "the crashed server had claimed it");
    let h = h.restart().await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            !h.executions("acme", "pipeline=sink&q=t-1").await.is_empty()
        })
        .await,
        "the delivery was lost with the crash"
    );
}

/// A delivery handed to the dispatcher long after its claim renews its
/// lease before it runs; one whose lease ran out and was claimed again
/// meanwhile does not run a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_lost_its_claim_while_it_waited_does_not_run_twice() {
    let h = with_sink(r#"{ type: log, message: "got {{ message.id }}" }"#).await;
    let store = h.state.store.clone();
    // An hour ahead: the server's own dispatcher never finds these due.
    let later = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let lease = Duration::from_secs(930);
    for id in ["held", "lost"] {
        store
            .enqueue_event(
                "acme",
                "test",
                "thing.done",
                &json!({ "id": id }),
                &[sink_target()],
                later,
            )
            .await
            .unwrap();
    }
    let claimed = store.claim_events(10, later, lease).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // "held" keeps its claim; "lost" is claimed again once its lease ran out.
    assert!(
        store
            .renew_event_lease(claimed[0].id, 1, later + 10_000_000)
            .await
            .unwrap()
    );
    let again = store
        .claim_events(10, later + 940_000, lease)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, claimed[1].id);
    let a_minute_ago = std::time::Instant::now()
        .checked_sub(Duration::from_secs(60))
        .expect("a machine up for a minute");
    h.state.runtime.events.hand_over(claimed, a_minute_ago);
    assert!(
        eventually(Duration::from_secs(5), || async {
            !h.executions("acme", "pipeline=sink&q=held")
                .await
                .is_empty()
        })
        .await,
        "the delivery that kept its claim did not run"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        h.executions("acme", "pipeline=sink&q=lost")
            .await
            .is_empty()
    );
    assert_eq!(h.state.runtime.metrics.events_delivered.get(), 1);
}

/// A backlog larger than one claim (events published while the server was
/// down) is taken from the store batch after batch: every delivery runs
/// once and is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_in_the_store_is_delivered_in_full_once() {
    const BACKLOG: usize = 2_500;
    let h = stopped_with_sink("{ type: set, values: { seen: true } }").await;
    let store = h.state.store.clone();
    let events: Vec<_> = (0..BACKLOG)
        .map(|i| sluice_store::NewEvent {
            realm: "acme".into(),
            environment: "test".into(),
            name: "thing.done".into(),
            payload: json!({ "i": i }),
            targets: vec![sink_target()],
        })
        .collect();
    let now = chrono::Utc::now().timestamp_millis();
    store.enqueue_events(&events, now, None).await.unwrap();
    let h = h.restart().await;
    let delivered = || h.state.runtime.metrics.events_delivered.get();
    assert!(
        eventually(Duration::from_secs(60), || async {
            delivered() >= BACKLOG as u64
        })
        .await,
        "{} of {BACKLOG} delivered",
        delivered()
    );
    h.flush().await;
    // Nothing is left to deliver, however late: every delivery was acknowledged.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = now + 3_600_000;
    let left = store
        .claim_events(10_000, later, Duration::from_secs(930))
        .await
        .unwrap();
    assert!(left.is_empty(), "{} deliveries left", left.len());
    assert_eq!(delivered(), BACKLOG as u64, "a delivery ran twice");
}

#[tokio::test]
async fn a_restart_serves_every_deployment_again() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save("acme", crate::harness::ECHO).await;
    h.deploy("acme", "test", "echo", json!({"concurrency": 3}))
        .await;
    let key = h.consumer("acme", "test", "c", &["echo"]).await;
    let h = h.restart().await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/acme/v1/echo",
            Some(&key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let d = h
        .admin(
            Method::GET,
            "/realms/acme/environments/test/deployments/echo",
            None,
        )
        .await;
    assert_eq!(d.body["status"]["state"], "serving");
    assert_eq!(d.body["status"]["capacity"], 3);
}
