//! The behaviour every [`Store`] implementation must show. An
//! implementation's tests call [`check`] with a fresh, empty store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use sluice_engine::services::ObjectOp;

use crate::*;

/// Runs every check; panics with the failing expectation.
pub async fn check(store: &dyn Store) {
    realms(store).await;
    versions(store).await;
    deployments(store).await;
    globals_and_accounts(store).await;
    consumers(store).await;
    users(store).await;
    executions(store).await;
    sessions(store).await;
    objects(store).await;
    events(store).await;
    ticks(store).await;
}

async fn realms(store: &dyn Store) {
    let realm = store.create_realm("acme").await.unwrap();
    assert_eq!(realm.name, "acme");
    assert!(matches!(
        store.create_realm("acme").await,
        Err(Error::Conflict(_))
    ));
    store.create_realm("globex").await.unwrap();
    let names: Vec<_> = store
        .list_realms(Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["acme", "globex"]);
    let mut envs: Vec<_> = store
        .list_environments("acme")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    envs.sort();
    assert_eq!(envs, ["prod", "test"]);
    store.create_environment("acme", "staging").await.unwrap();
    assert!(matches!(
        store.create_environment("acme", "staging").await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.create_environment("nobody", "x").await,
        Err(Error::NotFound(_))
    ));
    let page = store
        .list_realms(Page {
            limit: 1,
            offset: 1,
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].name, "globex");
}

async fn versions(store: &dyn Store) {
    let def = json!({"name": "echo", "steps": []});
    let first = store
        .save_version("acme", "echo", &def, SaveMode::NextMinor, "ada")
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!((first.version.major, first.version.minor), (1, 0));
    let same = store
        .save_version("acme", "echo", &def, SaveMode::NextMinor, "ada")
        .await
        .unwrap();
    assert!(!same.created, "an unchanged definition makes no version");
    assert_eq!((same.version.major, same.version.minor), (1, 0));
    let changed = json!({"name": "echo", "description": "v", "steps": []});
    let second = store
        .save_version("acme", "echo", &changed, SaveMode::NextMinor, "ada")
        .await
        .unwrap();
    assert_eq!((second.version.major, second.version.minor), (1, 1));
    let major = store
        .save_version("acme", "echo", &changed, SaveMode::NewMajor, "ada")
        .await
        .unwrap();
    assert_eq!((major.version.major, major.version.minor), (2, 0));
    // Same name in another realm is another pipeline.
    let other = store
        .save_version("globex", "echo", &def, SaveMode::NextMinor, "bob")
        .await
        .unwrap();
    assert_eq!((other.version.major, other.version.minor), (1, 0));

    let listed = store.list_pipelines("acme", Page::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].latest_major, listed[0].latest_minor), (2, 0));
    assert_eq!(listed[0].versions, 3);
    assert_eq!(listed[0].description.as_deref(), Some("v"));
    assert_eq!(store.list_versions("acme", "echo").await.unwrap().len(), 3);
    let v11 = store
        .get_version("acme", "echo", 1, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v11.definition, changed);
    assert_eq!(v11.created_by, "ada");
    let latest1 = store
        .latest_version("acme", "echo", Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest1.minor, 1);
    let latest = store
        .latest_version("acme", "echo", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.major, 2);
    assert!(
        store
            .get_version("globex", "echo", 1, 1)
            .await
            .unwrap()
            .is_none()
    );
    let archived = store
        .set_archived("acme", "echo", 1, 0, true)
        .await
        .unwrap();
    assert!(archived.archived);
    assert!(
        !store
            .set_archived("acme", "echo", 1, 0, false)
            .await
            .unwrap()
            .archived
    );
    assert!(matches!(
        store.set_archived("acme", "echo", 9, 0, true).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store
            .save_version("nobody", "echo", &def, SaveMode::NextMinor, "x")
            .await,
        Err(Error::NotFound(_))
    ));
}

fn deployment(realm: &str, env: &str, minor: u32) -> Deployment {
    Deployment {
        realm: realm.into(),
        environment: env.into(),
        pipeline: "echo".into(),
        major: 1,
        minor,
        replicas: 2,
        concurrency: 4,
        timeout_ms: Some(5000),
        cluster: "default".into(),
        deployed_at: 1,
        deployed_by: "ada".into(),
    }
}

async fn deployments(store: &dyn Store) {
    store
        .put_deployment(&deployment("acme", "test", 0), "deploy")
        .await
        .unwrap();
    store
        .put_deployment(&deployment("acme", "test", 1), "deploy")
        .await
        .unwrap();
    store
        .put_deployment(&deployment("acme", "prod", 1), "promote")
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_deployment(&deployment("acme", "nowhere", 1), "deploy")
            .await,
        Err(Error::NotFound(_))
    ));
    let got = store
        .get_deployment("acme", "test", "echo", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.minor, 1, "one deployment per major: the newer replaces");
    assert_eq!(
        store
            .list_deployments("acme", Some("test"), Page::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_deployments("acme", None, Page::default())
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .list_deployments("globex", None, Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    let history = store
        .deployment_history("acme", "test", "echo", Page::default())
        .await
        .unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| h.deployment.minor)
            .collect::<Vec<_>>(),
        [1, 0]
    );
    assert_eq!(store.all_deployments().await.unwrap().len(), 2);
    let removed = store
        .delete_deployment("acme", "prod", "echo", 1, "bob")
        .await
        .unwrap();
    assert_eq!(removed.deployed_by, "bob");
    assert!(
        store
            .get_deployment("acme", "prod", "echo", 1)
            .await
            .unwrap()
            .is_none()
    );
    let history = store
        .deployment_history("acme", "prod", "echo", Page::default())
        .await
        .unwrap();
    assert_eq!(history[0].action, "delete");
    assert!(matches!(
        store
            .delete_deployment("acme", "prod", "echo", 1, "bob")
            .await,
        Err(Error::NotFound(_))
    ));
}

async fn globals_and_accounts(store: &dyn Store) {
    store
        .set_global("acme", "test", "crm-url", &json!("http://crm"))
        .await
        .unwrap();
    store
        .set_global("acme", "test", "crm-url", &json!("http://crm2"))
        .await
        .unwrap();
    store
        .set_global("acme", "prod", "limit", &json!(5))
        .await
        .unwrap();
    let test = store.list_globals("acme", "test").await.unwrap();
    assert_eq!(test.len(), 1);
    assert_eq!(test[0].value, json!("http://crm2"));
    assert!(
        store
            .list_globals("globex", "test")
            .await
            .unwrap()
            .is_empty()
    );
    store
        .delete_global("acme", "test", "crm-url")
        .await
        .unwrap();
    assert!(matches!(
        store.delete_global("acme", "test", "crm-url").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.set_global("acme", "nowhere", "x", &json!(1)).await,
        Err(Error::NotFound(_))
    ));

    let account = AccountRecord {
        realm: "acme".into(),
        environment: "test".into(),
        name: "crm".into(),
        kind: "basic".into(),
        sealed: vec![1, 2, 3],
        updated_at: 5,
    };
    store.put_account(&account).await.unwrap();
    store
        .put_account(&AccountRecord {
            sealed: vec![9],
            ..account.clone()
        })
        .await
        .unwrap();
    let listed = store.list_accounts("acme", "test").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].sealed, vec![9]);
    assert!(
        store
            .list_accounts("globex", "test")
            .await
            .unwrap()
            .is_empty()
    );
    store.delete_account("acme", "test", "crm").await.unwrap();
    assert!(
        store
            .list_accounts("acme", "test")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn consumers(store: &dyn Store) {
    let consumer = Consumer {
        realm: "acme".into(),
        environment: "test".into(),
        name: "shop".into(),
        pipelines: vec!["echo".into()],
        rate_limit: Some(RateLimit {
            requests: 10,
            per_ms: 1000,
        }),
        created_at: 1,
    };
    store.create_consumer(&consumer).await.unwrap();
    assert!(matches!(
        store.create_consumer(&consumer).await,
        Err(Error::Conflict(_))
    ));
    let key = ApiKey {
        id: "k1".into(),
        realm: "acme".into(),
        environment: "test".into(),
        consumer: "shop".into(),
        hash: "h1".into(),
        created_at: 2,
    };
    store.add_api_key(&key).await.unwrap();
    assert!(matches!(
        store
            .add_api_key(&ApiKey {
                id: "k2".into(),
                consumer: "ghost".into(),
                hash: "h2".into(),
                ..key.clone()
            })
            .await,
        Err(Error::NotFound(_))
    ));
    let (found, owner) = store.find_api_key("h1").await.unwrap().unwrap();
    assert_eq!(found.id, "k1");
    assert_eq!(owner, consumer);
    assert!(store.find_api_key("nope").await.unwrap().is_none());
    assert_eq!(
        store
            .list_api_keys("acme", "test", "shop")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        store.delete_api_key("globex", "k1").await,
        Err(Error::NotFound(_))
    ));
    let updated = Consumer {
        pipelines: vec!["*".into()],
        ..consumer.clone()
    };
    store.update_consumer(&updated).await.unwrap();
    assert_eq!(
        store
            .get_consumer("acme", "test", "shop")
            .await
            .unwrap()
            .unwrap()
            .pipelines,
        ["*"]
    );
    assert!(
        store
            .list_consumers("globex", None, Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    store.delete_consumer("acme", "test", "shop").await.unwrap();
    assert!(
        store.find_api_key("h1").await.unwrap().is_none(),
        "keys go with their consumer"
    );
}

async fn users(store: &dyn Store) {
    let user = User {
        name: "ada".into(),
        grants: vec![Grant {
            realm: "acme".into(),
            role: Role::Developer,
            environment: None,
        }],
        created_at: 1,
    };
    store.create_user(&user).await.unwrap();
    assert!(matches!(
        store.create_user(&user).await,
        Err(Error::Conflict(_))
    ));
    let token = Token {
        id: "t1".into(),
        user: "ada".into(),
        hash: "th".into(),
        description: "laptop".into(),
        created_at: 1,
    };
    store.add_token(&token).await.unwrap();
    let (found, owner) = store.find_token("th").await.unwrap().unwrap();
    assert_eq!(found.id, "t1");
    assert_eq!(owner.grants[0].role, Role::Developer);
    let promoted = User {
        grants: vec![Grant {
            realm: "*".into(),
            role: Role::Admin,
            environment: None,
        }],
        ..user.clone()
    };
    store.update_user(&promoted).await.unwrap();
    assert_eq!(
        store.find_token("th").await.unwrap().unwrap().1.grants[0].role,
        Role::Admin
    );
    store.delete_token("ada", "t1").await.unwrap();
    assert!(store.find_token("th").await.unwrap().is_none());
    assert_eq!(store.list_users(Page::default()).await.unwrap().len(), 1);
    store.delete_user("ada").await.unwrap();
    assert!(store.get_user("ada").await.unwrap().is_none());

    for (i, realm) in [Some("acme"), Some("globex"), None].into_iter().enumerate() {
        store
            .append_audit(&AuditEntry {
                id: 0,
                at: i64::try_from(i).unwrap(),
                actor: "ada".into(),
                realm: realm.map(String::from),
                action: "create".into(),
                resource: "pipelines/echo".into(),
                details: json!({"i": i}),
            })
            .await
            .unwrap();
    }
    let acme = store
        .list_audit(Some("acme"), Page::default())
        .await
        .unwrap();
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0].details, json!({"i": 0}));
    let all = store.list_audit(None, Page::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[0].id > all[1].id, "newest first");
}

fn record(key: &str, realm: &str, env: &str, status: &str, started_at: i64) -> ExecutionRecord {
    ExecutionRecord {
        key: key.into(),
        realm: realm.into(),
        environment: env.into(),
        pipeline: "echo".into(),
        major: 1,
        minor: 0,
        status: status.into(),
        trigger: "http".into(),
        started_at,
        duration_us: 120,
        input: Some(format!(r#"{{"order":"{key}-in"}}"#)),
        output: Some("{}".into()),
        error: (status != "ok").then(|| json!({"message": "boom", "status": 500})),
        trace: Some(r#"[{"step":"a"}]"#.to_owned()),
        logs: vec![LogRecord {
            at: started_at,
            level: "info".into(),
            step: "log".into(),
            message: format!("hello from {key} 100%"),
        }],
    }
}

async fn executions(store: &dyn Store) {
    store
        .insert_executions(&[
            record("e1", "acme", "test", "ok", 1000),
            record("e2", "acme", "test", "error", 2000),
            record("e3", "acme", "prod", "ok", 3000),
            record("e4", "globex", "test", "ok", 4000),
        ])
        .await
        .unwrap();
    let keys = |list: Vec<ExecutionRecord>| list.into_iter().map(|r| r.key).collect::<Vec<_>>();
    let filter = |f: fn(&mut ExecutionFilter)| {
        let mut filter = ExecutionFilter {
            realm: "acme".into(),
            ..ExecutionFilter::default()
        };
        f(&mut filter);
        filter
    };
    assert_eq!(
        keys(store.list_executions(&filter(|_| {})).await.unwrap()),
        ["e3", "e2", "e1"]
    );
    assert_eq!(
        keys(
            store
                .list_executions(&filter(|f| f.status = Some("error".into())))
                .await
                .unwrap()
        ),
        ["e2"]
    );
    assert_eq!(
        keys(
            store
                .list_executions(&filter(|f| f.environment = Some("prod".into())))
                .await
                .unwrap()
        ),
        ["e3"]
    );
    assert_eq!(
        keys(
            store
                .list_executions(&filter(|f| {
                    f.from = Some(1500);
                    f.to = Some(3000);
                }))
                .await
                .unwrap()
        ),
        ["e2"]
    );
    assert_eq!(
        keys(
            store
                .list_executions(&filter(|f| f.text = Some("e1-in".into())))
                .await
                .unwrap()
        ),
        ["e1"],
        "text in the payload"
    );
    assert_eq!(
        keys(
            store
                .list_executions(&filter(|f| f.text = Some("from e3 100%".into())))
                .await
                .unwrap()
        ),
        ["e3"],
        "text in a log line, % taken literally"
    );
    assert!(
        store
            .list_executions(&filter(|f| f.key = Some("e4".into())))
            .await
            .unwrap()
            .is_empty(),
        "another realm's execution is not found"
    );
    let page = store
        .list_executions(&filter(|f| {
            f.page = Page {
                limit: 1,
                offset: 1,
            };
        }))
        .await
        .unwrap();
    assert_eq!(keys(page), ["e2"]);
    let listed = store.list_executions(&filter(|_| {})).await.unwrap();
    assert!(listed[0].trace.is_none(), "lists carry no traces");

    let full = store.get_execution("acme", "e2").await.unwrap().unwrap();
    assert_eq!(full.logs.len(), 1);
    assert_eq!(full.trace.as_deref(), Some(r#"[{"step":"a"}]"#));
    assert_eq!(full.error.unwrap()["message"], "boom");
    assert!(store.get_execution("globex", "e2").await.unwrap().is_none());

    // A key written again (a batch written twice) keeps its first record
    // and its log lines; the rest of the batch is written.
    store
        .insert_executions(&[
            record("e3", "acme", "prod", "error", 3500),
            record("e5", "acme", "prod", "ok", 5000),
        ])
        .await
        .unwrap();
    let kept = store.get_execution("acme", "e3").await.unwrap().unwrap();
    assert_eq!((kept.status.as_str(), kept.started_at), ("ok", 3000));
    assert_eq!(kept.logs.len(), 1);
    assert_eq!(kept.logs[0].at, 3000, "the first record's log line");
    assert!(store.get_execution("acme", "e5").await.unwrap().is_some());

    assert_eq!(
        store.delete_executions_before("test", 2500).await.unwrap(),
        2
    );
    assert!(store.get_execution("acme", "e1").await.unwrap().is_none());
    assert!(store.get_execution("acme", "e3").await.unwrap().is_some());
    assert!(store.get_execution("globex", "e4").await.unwrap().is_some());
}

async fn sessions(store: &dyn Store) {
    let acme = Scope {
        realm: "acme".into(),
        environment: "test".into(),
    };
    let globex = Scope {
        realm: "globex".into(),
        environment: "test".into(),
    };
    store
        .session_put(
            &acme,
            "k",
            &json!({"a": 1}),
            Some(Duration::from_secs(10)),
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        store.session_get(&acme, "k", 5_000).await.unwrap(),
        Some(json!({"a": 1}))
    );
    assert_eq!(store.session_get(&acme, "k", 10_000).await.unwrap(), None);
    assert_eq!(store.session_get(&globex, "k", 0).await.unwrap(), None);
    store
        .session_put(&acme, "k", &json!(2), None, 0)
        .await
        .unwrap();
    assert!(store.session_delete(&acme, "k").await.unwrap());
    assert!(!store.session_delete(&acme, "k").await.unwrap());

    let ttl = Duration::from_secs(1);
    assert!(store.session_lock(&acme, "l", "x", ttl, 0).await.unwrap());
    assert!(!store.session_lock(&acme, "l", "y", ttl, 500).await.unwrap());
    assert!(
        store
            .session_lock(&globex, "l", "y", ttl, 500)
            .await
            .unwrap()
    );
    assert!(
        store
            .session_lock(&acme, "l", "y", ttl, 1000)
            .await
            .unwrap()
    );
    assert!(!store.session_unlock(&acme, "l", "x").await.unwrap());
    assert!(store.session_unlock(&acme, "l", "y").await.unwrap());
}

async fn objects(store: &dyn Store) {
    let acme = Scope {
        realm: "acme".into(),
        environment: "test".into(),
    };
    let globex = Scope {
        realm: "globex".into(),
        environment: "test".into(),
    };
    let run = |scope: &Scope, op: ObjectOp| {
        let scope = scope.clone();
        async move { store.object_execute(&scope, "people", op).await }
    };
    run(
        &acme,
        ObjectOp::Insert {
            document: json!({"_id": "1", "name": "ada", "team": "x"}),
        },
    )
    .await
    .unwrap();
    let generated = run(
        &acme,
        ObjectOp::Insert {
            document: json!({"name": "bob", "team": "x"}),
        },
    )
    .await
    .unwrap();
    assert!(generated["_id"].is_string());
    assert!(matches!(
        run(
            &acme,
            ObjectOp::Insert {
                document: json!({"_id": "1"})
            }
        )
        .await,
        Err(Error::Conflict(_))
    ));
    run(
        &acme,
        ObjectOp::Upsert {
            id: "3".into(),
            document: json!({"name": "cy", "team": "y"}),
        },
    )
    .await
    .unwrap();
    let found = run(
        &acme,
        ObjectOp::Find {
            filter: json!({"team": "x"}),
            limit: None,
            skip: 0,
        },
    )
    .await
    .unwrap();
    assert_eq!(found.as_array().unwrap().len(), 2);
    assert_eq!(found[0]["name"], "ada", "insertion order");
    assert_eq!(
        run(&globex, ObjectOp::Count { filter: json!({}) })
            .await
            .unwrap(),
        json!({"count": 0})
    );
    assert_eq!(
        run(
            &acme,
            ObjectOp::Update {
                filter: json!({"team": "x"}),
                set: json!({"team": "z", "_id": "no"}),
                many: true,
            }
        )
        .await
        .unwrap(),
        json!({"matched": 2})
    );
    assert_eq!(
        run(&acme, ObjectOp::Get { id: "1".into() }).await.unwrap(),
        json!({"_id": "1", "name": "ada", "team": "z"})
    );
    assert_eq!(
        run(
            &acme,
            ObjectOp::Delete {
                filter: json!({"team": "z"}),
                many: false,
            }
        )
        .await
        .unwrap(),
        json!({"deleted": 1})
    );
    assert_eq!(
        run(&acme, ObjectOp::Count { filter: json!({}) })
            .await
            .unwrap(),
        json!({"count": 2})
    );
    assert_eq!(
        run(&acme, ObjectOp::Get { id: "1".into() }).await.unwrap(),
        json!(null)
    );
}

async fn events(store: &dyn Store) {
    let targets = [
        EventTarget {
            pipeline: "a".into(),
            major: 1,
            max_deliveries: 2,
        },
        EventTarget {
            pipeline: "b".into(),
            major: 1,
            max_deliveries: 2,
        },
    ];
    let ids = store
        .enqueue_event(
            "acme",
            "test",
            "order.created",
            &json!({"id": 7}),
            &targets,
            1000,
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let lease = Duration::from_secs(30);
    assert!(store.claim_events(10, 999, lease).await.unwrap().is_empty());
    let claimed = store.claim_events(10, 1000, lease).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].payload, json!({"id": 7}));
    assert!(
        store
            .claim_events(10, 2000, lease)
            .await
            .unwrap()
            .is_empty(),
        "claimed deliveries are hidden for the lease"
    );
    // A restarted sole consumer takes back what its dead worker held.
    assert_eq!(store.release_event_leases(1500).await.unwrap(), 2);
    let reclaimed = store.claim_events(10, 1500, lease).await.unwrap();
    assert_eq!(reclaimed.len(), 2);
    assert_eq!(
        reclaimed[0].attempts, 2,
        "a redelivery counts as an attempt"
    );
    let claimed = reclaimed;
    store.ack_event(claimed[0].id).await.unwrap();
    store
        .fail_event(claimed[1].id, &json!({"message": "x"}), Some(5000))
        .await
        .unwrap();
    let again = store.claim_events(10, 5000, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 3);
    assert_eq!(again[0].last_error, Some(json!({"message": "x"})));
    store
        .fail_event(again[0].id, &json!({"message": "y"}), None)
        .await
        .unwrap();
    assert!(
        store
            .claim_events(10, 99_999_999, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = store
        .list_dead_events("acme", Some("test"), Page::default())
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].dead);
    assert!(
        store
            .list_dead_events("globex", None, Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.redrive_event("globex", dead[0].id, 6000).await,
        Err(Error::NotFound(_))
    ));
    store.redrive_event("acme", dead[0].id, 6000).await.unwrap();
    let redriven = store.claim_events(10, 6000, lease).await.unwrap();
    assert_eq!(redriven.len(), 1);
    assert_eq!(redriven[0].attempts, 1);
    store.ack_event(redriven[0].id).await.unwrap();

    // A renewed lease hides the delivery longer; a lease is renewed only
    // for the claim that holds it.
    store
        .enqueue_event("acme", "test", "slow", &json!({}), &targets[..1], 7000)
        .await
        .unwrap();
    let slow = store.claim_events(10, 7000, lease).await.unwrap();
    assert_eq!(slow.len(), 1);
    assert!(
        store
            .renew_event_lease(slow[0].id, 1, 60_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_event_lease(slow[0].id, 2, 60_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_events(10, 50_000, lease)
            .await
            .unwrap()
            .is_empty(),
        "a renewed lease still hides the delivery"
    );
    let claimed_again = store.claim_events(10, 60_000, lease).await.unwrap();
    assert_eq!(claimed_again.len(), 1);
    assert!(
        !store
            .renew_event_lease(slow[0].id, 1, 99_000)
            .await
            .unwrap(),
        "claimed again after its lease ran out: the first claim lost it"
    );
    store.ack_event(slow[0].id).await.unwrap();
    assert!(
        !store
            .renew_event_lease(slow[0].id, 2, 99_000)
            .await
            .unwrap()
    );

    // Many events in one transaction: claimed at once for the caller, or
    // left for `claim_events`; acknowledged together.
    let batch: Vec<NewEvent> = (0..70)
        .map(|i| NewEvent {
            realm: "acme".into(),
            environment: "test".into(),
            name: "order.created".into(),
            payload: json!({"n": i}),
            targets: targets.to_vec(),
        })
        .collect();
    let taken = store
        .enqueue_events(&batch, 7000, Some(lease))
        .await
        .unwrap();
    assert_eq!(taken.len(), 140, "a delivery per event and target");
    assert!(taken.iter().all(|e| e.attempts == 1 && !e.dead));
    assert_eq!(taken.iter().filter(|e| e.pipeline == "b").count(), 70);
    let mut seen: Vec<i64> = taken
        .iter()
        .map(|e| e.payload["n"].as_i64().unwrap())
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..70).collect::<Vec<i64>>());
    assert!(
        store
            .claim_events(200, 8000, lease)
            .await
            .unwrap()
            .is_empty(),
        "deliveries claimed at enqueue are hidden for their lease"
    );
    // Each delivery handed back is the row stored under its id.
    assert_eq!(store.release_event_leases(8000).await.unwrap(), 140);
    let stored = store.claim_events(200, 8000, lease).await.unwrap();
    assert_eq!(stored.len(), 140);
    for row in &stored {
        let handed = taken.iter().find(|e| e.id == row.id).unwrap();
        assert_eq!(
            (&handed.pipeline, &handed.payload, handed.created_at),
            (&row.pipeline, &row.payload, row.created_at)
        );
    }
    let waiting = store.enqueue_events(&batch[..3], 7000, None).await.unwrap();
    assert!(waiting.is_empty(), "unclaimed deliveries wait for a claim");
    let later = store.claim_events(200, 8000, lease).await.unwrap();
    assert_eq!(later.len(), 6);
    let ids: Vec<i64> = taken.iter().chain(&later).map(|e| e.id).collect();
    store.ack_events(&ids).await.unwrap();
    assert_eq!(
        store.release_event_leases(9000).await.unwrap(),
        0,
        "all acknowledged"
    );
    assert!(
        store
            .claim_events(200, 99_999_999, lease)
            .await
            .unwrap()
            .is_empty()
    );

    // One transaction for events, acknowledgements and execution records.
    let claimed = store
        .write(&WriteBatch {
            now: 10_000,
            events: &batch[..2],
            claim: Some(lease),
            acks: &[],
            executions: &[record("w1", "acme", "test", "ok", 10_000)],
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    assert!(
        claimed
            .iter()
            .all(|e| e.attempts == 1 && e.created_at == 10_000)
    );
    let unclaimed = store
        .write(&WriteBatch {
            now: 10_001,
            events: &batch[..1],
            acks: &claimed.iter().map(|e| e.id).collect::<Vec<_>>(),
            executions: &[record("w2", "acme", "test", "error", 10_001)],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert!(unclaimed.is_empty());
    let due = store.claim_events(200, 10_002, lease).await.unwrap();
    assert_eq!(due.len(), 2, "the acknowledged deliveries are gone");
    store
        .write(&WriteBatch {
            acks: &due.iter().map(|e| e.id).collect::<Vec<_>>(),
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(store.release_event_leases(10_003).await.unwrap(), 0);
    for key in ["w1", "w2"] {
        let written = store.get_execution("acme", key).await.unwrap().unwrap();
        assert_eq!(written.logs.len(), 1, "{key} has its log line");
    }

    // A broker message that used up its deliveries joins the dead letters
    // and is redriven through the queue like an event.
    let target = EventTarget {
        pipeline: "orders".into(),
        major: 2,
        max_deliveries: 3,
    };
    let id = store
        .dead_letter_event(
            "acme",
            "test",
            "rabbitmq:orders",
            &json!({"body": {"n": 1}}),
            &target,
            3,
            &json!({"code": "thrown"}),
            7000,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_events(10, 99_999_999, lease)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = store
        .list_dead_events("acme", Some("test"), Page::default())
        .await
        .unwrap();
    let kept = dead.iter().find(|d| d.id == id).expect("the dead letter");
    assert_eq!(
        (
            kept.name.as_str(),
            kept.pipeline.as_str(),
            kept.major,
            kept.attempts
        ),
        ("rabbitmq:orders", "orders", 2, 3)
    );
    assert_eq!(kept.last_error, Some(json!({"code": "thrown"})));
    assert!(
        store
            .list_dead_events("globex", None, Page::default())
            .await
            .unwrap()
            .is_empty()
    );
    store.redrive_event("acme", id, 8000).await.unwrap();
    let redriven = store.claim_events(10, 8000, lease).await.unwrap();
    assert_eq!(redriven.len(), 1);
    assert_eq!(redriven[0].payload, json!({"body": {"n": 1}}));
    store.ack_event(redriven[0].id).await.unwrap();
}

async fn ticks(store: &dyn Store) {
    assert_eq!(store.last_tick("s").await.unwrap(), None);
    assert!(store.claim_tick("s", 100).await.unwrap());
    assert!(
        !store.claim_tick("s", 100).await.unwrap(),
        "a tick fires once"
    );
    assert!(!store.claim_tick("s", 50).await.unwrap());
    assert!(store.claim_tick("s", 200).await.unwrap());
    assert_eq!(store.last_tick("s").await.unwrap(), Some(200));
    store.ping().await.unwrap();
}
