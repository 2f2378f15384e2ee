//! The control-plane API: tokens, roles, realms kept apart, pipelines and
//! versions, deployments, settings, consumers, the OpenAPI route table.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN, ECHO, Harness};

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_and_the_admin_token_works() {
    let h = Harness::new().await;
    let r = h.api(Method::GET, "/realms", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["code"], "unauthorized");
    assert!(r.body["message"].as_str().unwrap().contains("token"));
    let r = h.api(Method::GET, "/realms", Some("slt_nope"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h.admin(Method::GET, "/whoami", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], "admin");
}

#[tokio::test]
async fn errors_are_json_with_code_message_details() {
    let h = Harness::new().await;
    let r = h.admin(Method::GET, "/realms/nowhere", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "not_found");
    assert!(r.body.get("details").is_some());
    let r = h
        .admin(
            Method::POST,
            "/realms",
            Some(json!({"name": "ok", "extra": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert!(
        r.body["message"].as_str().unwrap().contains("extra"),
        "{r:?}"
    );
    let r = h.admin(Method::GET, "/no/such/route", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "not_found");
    let r = h.admin(Method::PATCH, "/realms", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["code"], "method_not_allowed", "{r:?}");
    let r = h.admin(Method::GET, "/realms?limit=x", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "bad_request", "{r:?}");
    h.realm("acme").await;
    let r = h
        .admin(Method::POST, "/realms", Some(json!({"name": "acme"})))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
}

#[tokio::test]
async fn a_realm_has_test_and_prod() {
    let h = Harness::new().await;
    h.realm("acme").await;
    let r = h
        .admin(Method::GET, "/realms/acme/environments", None)
        .await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod", "test"]);
}

#[tokio::test]
async fn a_changed_definition_makes_the_next_minor_and_major_new_starts_one() {
    let h = Harness::new().await;
    h.realm("acme").await;
    let first = h.save("acme", ECHO).await;
    assert_eq!(first["version"], "1.0");
    assert_eq!(first["created"], true);
    let same = h.save("acme", ECHO).await;
    assert_eq!(same["version"], "1.0");
    assert_eq!(same["created"], false);
    let changed = ECHO.replace("greeting: hello", "greeting: hi");
    assert_eq!(h.save("acme", &changed).await["version"], "1.1");
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/realms/acme/pipelines?major=new")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/yaml")
        .body(axum::body::Body::from(changed.replace("hi", "hey")))
        .unwrap();
    let r = h.send(request).await;
    assert_eq!(r.body["version"], "2.0", "{r:?}");
    let r = h
        .admin(Method::GET, "/realms/acme/pipelines/echo", None)
        .await;
    assert_eq!(r.body["latest"], "2.0");
    assert_eq!(r.body["versions"].as_array().unwrap().len(), 3);
    let r = h
        .admin(
            Method::GET,
            "/realms/acme/pipelines/echo/versions/1.1",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["definition"]["steps"][0]["values"]["greeting"], "hi");
    // Archive, refuse to deploy, restore.
    let r = h
        .admin(
            Method::POST,
            "/realms/acme/pipelines/echo/versions/1.0/archive",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = h
        .admin(
            Method::POST,
            "/realms/acme/environments/test/deployments",
            Some(json!({"pipeline": "echo", "version": "1.0"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    let r = h
        .admin(
            Method::POST,
            "/realms/acme/pipelines/echo/versions/1.0/restore",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    h.deploy("acme", "test", "echo", json!({"version": "1.0"}))
        .await;
}

#[tokio::test]
async fn a_malformed_pipeline_is_400_with_the_field_path_and_line() {
    let h = Harness::new().await;
    h.realm("acme").await;
    let bad = "name: bad\ntrigger:\n  type: http\nsteps:\n  - type: set\n    valuez: {a: 1}\n";
    let r = h.save_as(ADMIN, "acme", bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert_eq!(r.body["code"], "invalid");
    let problem = &r.body["details"]["problems"][0];
    assert_eq!(problem["path"], "steps[0]", "{r:?}");
    assert!(
        problem["message"].as_str().unwrap().contains("valuez"),
        "{r:?}"
    );
    assert_eq!(problem["line"], 5, "{r:?}");
    let r = h.save_as(ADMIN, "acme", "name: [unclosed").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    let cron = "name: tick\ntrigger:\n  type: scheduler\n  cron: \"every day\"\nsteps: []\n";
    let r = h.save_as(ADMIN, "acme", cron).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    assert_eq!(
        r.body["details"]["problems"][0]["path"], "trigger.cron",
        "{r:?}"
    );
    let zone = "name: tick\ntrigger:\n  type: scheduler\n  cron: \"0 * * * * *\"\n  timezone: Mars/Olympus\nsteps: []\n";
    let r = h.save_as(ADMIN, "acme", zone).await;
    assert_eq!(
        r.body["details"]["problems"][0]["path"], "trigger.timezone",
        "{r:?}"
    );
    // Broker triggers without an account are checked when saved.
    let cases = [
        ("type: rabbitmq\n  queue: orders", "trigger.url"),
        ("type: nats\n  url: http://x\n  subject: a", "trigger.url"),
        (
            "type: mqtt\n  url: mqtt://h\n  topic: a/#/b",
            "trigger.topic",
        ),
        ("type: email\n  url: imap://h\n  after: move", "trigger"),
    ];
    for (trigger, path) in cases {
        let text = format!("name: consume\ntrigger:\n  {trigger}\nsteps: []\n");
        let r = h.save_as(ADMIN, "acme", &text).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{trigger}: {r:?}");
        let problem = &r.body["details"]["problems"][0];
        assert!(
            problem["path"].as_str().unwrap().starts_with(path),
            "{trigger}: {r:?}"
        );
    }
    // Nothing was saved.
    let r = h.admin(Method::GET, "/realms/acme/pipelines", None).await;
    assert_eq!(r.body["items"], json!([]));
}

#[tokio::test]
async fn deployments_redeploy_keep_settings_roll_back_promote_and_delete() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save("acme", ECHO).await;
    let d = h
        .deploy(
            "acme",
            "test",
            "echo",
            json!({"replicas": 2, "concurrency": 3, "timeout": "5s"}),
        )
        .await;
    assert_eq!(d["status"]["state"], "serving");
    assert_eq!(d["status"]["capacity"], 6);
    h.save("acme", &ECHO.replace("hello", "hi")).await;
    let d = h.deploy("acme", "test", "echo", json!({})).await;
    assert_eq!(d["version"], "1.1");
    assert_eq!(d["replicas"], 2, "settings are kept on redeploy");
    assert_eq!(d["timeoutMs"], 5000);
    let r = h
        .admin(
            Method::GET,
            "/realms/acme/environments/test/deployments/echo/history",
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{r:?}");
    let r = h
        .admin(
            Method::POST,
            "/realms/acme/environments/test/deployments/echo/rollback",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["version"], "1.0");
    let r = h
        .admin(
            Method::POST,
            "/realms/acme/promote",
            Some(json!({"pipeline": "echo", "from": "test", "to": "prod"})),
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
    assert_eq!(r.body["environment"], "prod");
    assert_eq!(r.body["version"], "1.0");
    let r = h
        .admin(
            Method::GET,
            "/realms/acme/environments/prod/deployments/echo",
            None,
        )
        .await;
    assert_eq!(r.body["status"]["state"], "serving", "{r:?}");
    let r = h
        .admin(
            Method::DELETE,
            "/realms/acme/environments/prod/deployments/echo",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    let key = h.consumer("acme", "prod", "c", &["echo"]).await;
    let r = h
        .call(
            Method::POST,
            "/prod/pipeline/acme/v1/echo",
            Some(&key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");
    // Bad settings name the field.
    let r = h
        .admin(
            Method::POST,
            "/realms/acme/environments/test/deployments",
            Some(json!({"pipeline": "echo", "replicas": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["details"]["path"], "replicas");
    let r = h
        .admin(
            Method::POST,
            "/realms/acme/environments/staging/deployments",
            Some(json!({"pipeline": "echo"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");
}

#[tokio::test]
async fn a_viewer_cannot_deploy_nor_change_anything() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save("acme", ECHO).await;
    let viewer = h
        .user("vera", json!([{"realm": "acme", "role": "viewer"}]))
        .await;
    let r = h
        .api(
            Method::POST,
            "/realms/acme/environments/test/deployments",
            Some(&viewer),
            Some(json!({"pipeline": "echo"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert_eq!(r.body["code"], "forbidden");
    let r = h.save_as(&viewer, "acme", ECHO).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .api(
            Method::PUT,
            "/realms/acme/environments/test/globals/x",
            Some(&viewer),
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .api(
            Method::POST,
            "/realms",
            Some(&viewer),
            Some(json!({"name": "b"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .api(Method::GET, "/realms/acme/pipelines", Some(&viewer), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "a viewer reads");
    // A deployer may deploy; a developer may save but not deploy.
    let deployer = h
        .user("dan", json!([{"realm": "acme", "role": "deployer"}]))
        .await;
    let r = h
        .api(
            Method::POST,
            "/realms/acme/environments/test/deployments",
            Some(&deployer),
            Some(json!({"pipeline": "echo"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let developer = h
        .user("dora", json!([{"realm": "acme", "role": "developer"}]))
        .await;
    assert_eq!(
        h.save_as(&developer, "acme", &ECHO.replace("hello", "hi"))
            .await
            .status,
        StatusCode::CREATED
    );
    let r = h
        .api(
            Method::POST,
            "/realms/acme/environments/test/deployments",
            Some(&developer),
            Some(json!({"pipeline": "echo"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A deployer limited to test cannot deploy to prod.
    let tester = h
        .user(
            "tess",
            json!([{"realm": "acme", "role": "deployer", "environment": "test"}]),
        )
        .await;
    let r = h
        .api(
            Method::POST,
            "/realms/acme/environments/prod/deployments",
            Some(&tester),
            Some(json!({"pipeline": "echo"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
}

/// Every kind of resource of realm B, from a user of realm A: never seen.
#[tokio::test]
async fn realm_a_reaches_nothing_of_realm_b() {
    let h = Harness::new().await;
    h.realm("a").await;
    h.realm("b").await;
    h.save("b", ECHO).await;
    h.deploy("b", "test", "echo", json!({})).await;
    let b_key = h.consumer("b", "test", "bc", &["echo"]).await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/b/v1/echo",
            Some(&b_key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let b_exec = r.header("x-execution-key").unwrap().to_owned();
    h.flush().await;
    h.admin(
        Method::PUT,
        "/realms/b/environments/test/globals/g",
        Some(json!({"value": "secret-ish"})),
    )
    .await;
    h.admin(
        Method::PUT,
        "/realms/b/environments/test/accounts/acc",
        Some(json!({"type": "bearer", "fields": {"token": "tok-b"}})),
    )
    .await;
    let a_admin = h
        .user("alice", json!([{"realm": "a", "role": "admin"}]))
        .await;
    let reads = [
        "/realms/b",
        "/realms/b/environments",
        "/realms/b/pipelines",
        "/realms/b/pipelines/echo",
        "/realms/b/pipelines/echo/versions/1.0",
        "/realms/b/deployments",
        "/realms/b/environments/test/deployments",
        "/realms/b/environments/test/deployments/echo",
        "/realms/b/environments/test/deployments/echo/history",
        "/realms/b/environments/test/globals",
        "/realms/b/environments/test/accounts",
        "/realms/b/environments/test/consumers",
        "/realms/b/environments/test/consumers/bc",
        "/realms/b/consumers",
        "/realms/b/executions",
        &format!("/realms/b/executions/{b_exec}"),
        "/realms/b/dead-letters",
        "/realms/b/audit",
    ];
    for path in reads {
        let r = h.api(Method::GET, path, Some(&a_admin), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "GET {path}: {r:?}");
        assert!(!r.body.to_string().contains("tok-b"));
    }
    let writes: [(Method, &str, Option<Value>); 9] = [
        (Method::POST, "/realms/b/pipelines", None),
        (
            Method::POST,
            "/realms/b/environments/test/deployments",
            Some(json!({"pipeline": "echo"})),
        ),
        (
            Method::DELETE,
            "/realms/b/environments/test/deployments/echo",
            None,
        ),
        (
            Method::PUT,
            "/realms/b/environments/test/globals/g",
            Some(json!({"value": 1})),
        ),
        (
            Method::PUT,
            "/realms/b/environments/test/accounts/acc",
            Some(json!({"type": "bearer", "fields": {"token": "x"}})),
        ),
        (
            Method::POST,
            "/realms/b/environments/test/consumers",
            Some(json!({"name": "x", "pipelines": ["echo"]})),
        ),
        (
            Method::POST,
            "/realms/b/environments/test/consumers/bc/keys",
            None,
        ),
        (
            Method::POST,
            "/realms/b/environments/test/deployments/echo/run",
            Some(json!({"input": {}})),
        ),
        (
            Method::POST,
            &format!("/realms/b/executions/{b_exec}/rerun"),
            None,
        ),
    ];
    for (method, path, body) in writes {
        let r = h.api(method.clone(), path, Some(&a_admin), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}: {r:?}");
    }
    let r = h.api(Method::GET, "/realms", Some(&a_admin), None).await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    // Realm A's consumer key does not open realm B's pipelines.
    h.save("a", ECHO).await;
    h.deploy("a", "test", "echo", json!({})).await;
    let a_key = h.consumer("a", "test", "ac", &["echo"]).await;
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/b/v1/echo",
            Some(&a_key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    let r = h
        .call(
            Method::POST,
            "/test/pipeline/a/v1/echo",
            Some(&b_key),
            Some(json!({"n": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    // Realm A's executions hold nothing of B.
    let r = h
        .api(Method::GET, "/realms/a/executions", Some(&a_admin), None)
        .await;
    assert!(!r.body.to_string().contains(&b_exec));
}

#[tokio::test]
async fn account_values_are_write_only_and_sealed_at_rest() {
    let h = Harness::new().await;
    h.realm("acme").await;
    let r = h
        .admin(
            Method::PUT,
            "/realms/acme/environments/test/accounts/crm",
            Some(json!({"type": "basic", "fields": {"username": "u", "password": "p4ssw0rd-very-secret"}})),
        )
        .await;
    assert!(r.status.is_success(), "{r:?}");
    assert!(!r.body.to_string().contains("p4ssw0rd"));
    let r = h
        .admin(Method::GET, "/realms/acme/environments/test/accounts", None)
        .await;
    assert_eq!(r.body["items"][0]["name"], "crm", "{r:?}");
    assert_eq!(r.body["items"][0]["type"], "basic");
    assert!(!r.body.to_string().contains("p4ssw0rd"));
    let sealed = h
        .state
        .store
        .list_accounts("acme", "test")
        .await
        .unwrap()
        .remove(0);
    let raw = String::from_utf8_lossy(&sealed.sealed);
    assert!(!raw.contains("p4ssw0rd"), "stored in clear");
    let opened = h
        .state
        .runtime
        .open_account("basic", &sealed.sealed)
        .unwrap();
    assert_eq!(opened["password"], "p4ssw0rd-very-secret");
    // A missing field is named.
    let r = h
        .admin(
            Method::PUT,
            "/realms/acme/environments/test/accounts/crm",
            Some(json!({"type": "basic", "fields": {"username": "u"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["message"].as_str().unwrap().contains("password"),
        "{r:?}"
    );
}

#[tokio::test]
async fn every_change_is_audited() {
    let h = Harness::new().await;
    h.realm("acme").await;
    h.save("acme", ECHO).await;
    h.deploy("acme", "test", "echo", json!({})).await;
    h.consumer("acme", "test", "c", &["echo"]).await;
    h.admin(
        Method::PUT,
        "/realms/acme/environments/test/globals/g",
        Some(json!({"value": 1})),
    )
    .await;
    let r = h
        .admin(Method::GET, "/realms/acme/audit?limit=100", None)
        .await;
    let entries = r.body["items"].as_array().unwrap();
    let seen: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["resource"].as_str().unwrap()
            )
        })
        .collect();
    for wanted in [
        "pipelines/echo",
        "deployments/echo",
        "consumers/c",
        "globals/g",
    ] {
        assert!(
            seen.iter().any(|a| a.contains(wanted)),
            "{wanted} missing in {seen:?}"
        );
    }
    assert!(entries.iter().all(|e| e["actor"] == "admin"));
    // The realm's creation is in the platform trail.
    let r = h.admin(Method::GET, "/audit?limit=100", None).await;
    assert!(r.body.to_string().contains("acme"), "{r:?}");
}

#[tokio::test]
async fn lists_are_paginated() {
    let h = Harness::new().await;
    for i in 0..5 {
        h.realm(&format!("r{i}")).await;
    }
    let r = h.admin(Method::GET, "/realms?limit=2", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["next"], 2);
    let r = h.admin(Method::GET, "/realms?limit=2&offset=4", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["next"], Value::Null);
    let r = h.admin(Method::GET, "/realms?limit=0", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
}

/// Every route the OpenAPI document lists is routed (answers something
/// other than "no such route" or "method not allowed").
#[tokio::test]
async fn every_documented_route_answers() {
    let h = Harness::new().await;
    let r = h.api(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.body["paths"].as_object().unwrap();
    assert_eq!(
        paths
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum::<usize>(),
        sluice_server::API_ROUTES.len()
    );
    for (method, path, ..) in sluice_server::API_ROUTES {
        let concrete = path
            .replace("{realm}", "zz")
            .replace("{env}", "test")
            .replace("{name}", "n")
            .replace("{version}", "1.0")
            .replace("{pipeline}", "p")
            .replace("{key}", "k")
            .replace("{id}", "1");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = h.admin(method.clone(), &concrete, Some(json!({}))).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if r.status == StatusCode::NOT_FOUND {
            assert!(
                !r.body["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("no such API route"),
                "{method} {path} is not routed"
            );
        }
    }
}
