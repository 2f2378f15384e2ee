//! `sluice serve` as a process: the client commands against it, the
//! gateway over real sockets, a redeploy under load, draining on SIGTERM,
//! and a restart that finds everything again.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

mod support;

use support::{Served, ok, sluice};

const VAULT: &str = r#"
name: vault
trigger:
  type: http
  methods: [POST]
steps:
  - type: log
    message: "checking {{ account.crm.username }} with {{ account.crm.password }}"
  - type: response
    body:
      opened: "{{ account.crm.password == 's3cret-password' }}"
      user: "{{ account.crm.username }}"
      version: 1
"#;

const SLOW: &str = r#"
name: slow
trigger:
  type: http
  timeout: 10s
steps:
  - type: delay
    duration: 800ms
  - type: response
    body: { done: true }
"#;

async fn post(client: &reqwest::Client, url: &str, key: &str) -> (u16, Option<String>, Value) {
    let r = client
        .post(url)
        .header("apikey", key)
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let exec = r
        .headers()
        .get("x-execution-key")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, exec, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_apply_deploy_call_redeploy_drain_and_restart() {
    sluice_connectors::install_tls_provider();
    let dir = std::env::temp_dir().join(format!("sluice-serve-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vault.yaml"), VAULT).unwrap();
    std::fs::write(dir.join("slow.yaml"), SLOW).unwrap();

    // First start: a token is printed once and kept, readable only by us.
    let served = Served::start(&dir, "1");
    let token = std::fs::read_to_string(dir.join("data/admin-token")).unwrap();
    let token = token.trim().to_owned();
    assert!(token.starts_with("slt_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("data/admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        std::fs::read_to_string(&served.log)
            .unwrap()
            .contains(&token)
    );

    let run = |args: &[&str]| ok(sluice(&served, &token, args, &dir));
    run(&["realm", "create", "acme"]);
    let applied = run(&[
        "apply",
        "-f",
        "vault.yaml",
        "-f",
        "slow.yaml",
        "--realm",
        "acme",
    ]);
    assert_eq!(applied, "vault 1.0\nslow 1.0\n");
    run(&[
        "account",
        "set",
        "crm",
        "--type",
        "basic",
        "--field",
        "username=sync",
        "--field",
        "password=s3cret-password",
        "--realm",
        "acme",
        "--env",
        "test",
    ]);
    run(&[
        "deploy",
        "vault",
        "--realm",
        "acme",
        "--env",
        "test",
        "--concurrency",
        "4",
    ]);
    run(&["deploy", "slow", "--realm", "acme", "--env", "test"]);
    let key = run(&[
        "consumer",
        "create",
        "shop",
        "--realm",
        "acme",
        "--env",
        "test",
        "--pipelines",
        "vault,slow",
        "--quiet",
    ]);
    let key = key.trim().to_owned();

    // A call through the gateway, its record, logs and trace.
    let client = reqwest::Client::new();
    let vault_url = format!("{}/test/pipeline/acme/v1/vault", served.url());
    let (status, exec, body) = post(&client, &vault_url, &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"opened": true, "user": "sync", "version": 1}));
    let exec = exec.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = run(&["logs", &exec, "--realm", "acme", "-o", "json"]);
    let record: Value = serde_json::from_str(&logs).unwrap();
    assert_eq!(record["status"], "ok");
    assert_eq!(
        record["logs"][0]["message"], "checking *** with ***",
        "{record}"
    );
    assert!(record["trace"].as_array().unwrap().len() == 2, "{record}");
    assert!(
        !logs.contains("s3cret-password"),
        "a secret reached the record"
    );
    let table = run(&["logs", &exec, "--realm", "acme"]);
    assert!(table.contains("checking *** with ***"), "{table}");
    let (status, ..) = post(&client, &vault_url, "slk_wrong").await;
    assert_eq!(status, 401);

    // Redeploys under steady load: no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, url, key, stop, answered) = (
            client.clone(),
            vault_url.clone(),
            key.clone(),
            stop.clone(),
            answered.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, _, body) = post(&client, &url, &key).await;
                if status == 200 {
                    answered.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.push((status, body));
                }
            }
            failures
        }));
    }
    for version in 2..=3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(
            dir.join("vault.yaml"),
            VAULT.replace("version: 1", &format!("version: {version}")),
        )
        .unwrap();
        let out = tokio::task::spawn_blocking({
            let (url, token, dir) = (served.url(), token.clone(), dir.clone());
            move || {
                for args in [
                    vec!["apply", "-f", "vault.yaml", "--realm", "acme"],
                    vec!["deploy", "vault", "--realm", "acme", "--env", "test"],
                ] {
                    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
                        .args(&args)
                        .current_dir(&dir)
                        .env("SLUICE_URL", &url)
                        .env("SLUICE_TOKEN", &token)
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        })
        .await;
        out.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let failures = task.await.unwrap();
        assert!(failures.is_empty(), "failed during redeploy: {failures:?}");
    }
    assert!(answered.load(Ordering::Relaxed) > 20);
    let (_, _, body) = post(&client, &vault_url, &key).await;
    assert_eq!(body["version"], 3);

    // SIGTERM while a call runs: it is answered, then the server exits 0.
    let slow_url = format!("{}/test/pipeline/acme/v1/slow", served.url());
    let in_flight = tokio::spawn({
        let (client, key) = (client.clone(), key.clone());
        async move { post(&client, &slow_url, &key).await }
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    let status = tokio::task::spawn_blocking(move || served.stop())
        .await
        .unwrap();
    let (code, _, body) = in_flight.await.unwrap();
    assert_eq!(code, 200, "the in-flight call was cut: {body}");
    assert_eq!(body, json!({"done": true}));
    assert!(status.success(), "exit {status}");

    // Restart: no new token; pipelines, deployments, executions, consumers
    // and accounts are all there.
    let served = Served::start(&dir, "2");
    assert!(
        !std::fs::read_to_string(&served.log)
            .unwrap()
            .contains("admin token")
    );
    let run = |args: &[&str]| ok(sluice(&served, &token, args, &dir));
    let pipelines = run(&["get", "pipelines", "--realm", "acme", "--quiet"]);
    assert_eq!(pipelines, "slow\nvault\n");
    let deployments: Value = serde_json::from_str(&run(&[
        "get",
        "deployments",
        "--realm",
        "acme",
        "-o",
        "json",
    ]))
    .unwrap();
    for d in deployments["items"].as_array().unwrap() {
        assert_eq!(d["status"]["state"], "serving", "{d}");
    }
    let vault_url = format!("{}/test/pipeline/acme/v1/vault", served.url());
    let (status, _, body) = post(&client, &vault_url, &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"opened": true, "user": "sync", "version": 3}));
    let executions: Value = serde_json::from_str(&run(&[
        "get",
        "executions",
        "--realm",
        "acme",
        "--pipeline",
        "slow",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        executions["items"].as_array().unwrap().len(),
        1,
        "the drained call was recorded"
    );
    let earlier = run(&["logs", &exec, "--realm", "acme"]);
    assert!(earlier.contains("vault 1.0"), "{earlier}");
    let status = served.stop();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn client_errors_are_clear_and_exit_non_zero() {
    let dir = std::env::temp_dir().join(format!("sluice-serve-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let served = Served::start_with(&dir, "1", &["--log-format", "json"]);
    let token = std::fs::read_to_string(dir.join("data/admin-token")).unwrap();
    let token = token.trim();
    std::fs::write(
        dir.join("bad.yaml"),
        "name: bad\nsteps:\n  - type: set\n    valuez: 1\n",
    )
    .unwrap();
    let out = sluice(&served, token, &["realm", "create", "acme"], &dir);
    assert!(out.status.success());
    let out = sluice(
        &served,
        token,
        &["apply", "-f", "bad.yaml", "--realm", "acme"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:3:5: steps[0]"), "{err}");
    let out = sluice(
        &served,
        token,
        &["deploy", "nothing", "--realm", "acme", "--env", "test"],
        &dir,
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'nothing'"),
        "{out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(404)"),
        "{out:?}"
    );
    let out = sluice(&served, "slt_wrong", &["get", "realms"], &dir);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["get", "realms"])
        .env("SLUICE_URL", "http://127.0.0.1:9")
        .env("SLUICE_TOKEN", "x")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the server"),
        "{out:?}"
    );
    assert!(served.stop().success());
    // The server's own logs are JSON lines.
    let logs = std::fs::read_to_string(dir.join("serve-1.err")).unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert!(lines.len() >= 2, "{logs}");
    for line in lines {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            entry["level"].is_string() && entry["fields"].is_object(),
            "{line}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
