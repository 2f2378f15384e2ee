//! `db` against real databases: the machine's Postgres and MariaDB (from
//! `SLUICE_TEST_POSTGRES_URL` and `SLUICE_TEST_MYSQL_URL`) and a
//! temporary SQLite file.

#![cfg(feature = "db")]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::sync::Arc;

use serde_json::{Value, json};
use sluice_engine::{FlowError, Plan, RunOptions, load_str};
use sluice_spec::Format;

/// How one database spells what the tests need.
struct Dialect {
    url: String,
    /// The n-th placeholder (1-based).
    placeholder: fn(usize) -> String,
    /// Column types: id, money, flag, text, time, document.
    ddl: &'static str,
    /// A time literal that fits the time column, and how it reads back.
    time_in: &'static str,
    time_out: &'static str,
}

fn dollar(n: usize) -> String {
    format!("${n}")
}

fn question(_: usize) -> String {
    "?".into()
}

fn plan(yaml: &str) -> Plan {
    load_str(
        "t.yaml",
        yaml,
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn exec(plan: &Plan, input: Value, accounts: Value) -> Result<Value, FlowError> {
    let options = RunOptions {
        accounts: Arc::new(accounts),
        ..RunOptions::default()
    };
    plan.execute(input, options).await.into_result()
}

fn step(url: &str, body: &str) -> String {
    format!("name: t\nsteps:\n  - type: db\n    url: \"{url}\"\n{body}")
}

async fn exercise(d: &Dialect, table: &str) {
    let p = d.placeholder;
    let ok = |yaml: String, input: Value| async move {
        exec(&plan(&yaml), input, json!({}))
            .await
            .unwrap_or_else(|e| panic!("{}", e.to_value()))
    };
    let _ = exec(
        &plan(&step(
            &d.url,
            &format!("    operation: execute\n    sql: DROP TABLE IF EXISTS {table}\n"),
        )),
        json!({}),
        json!({}),
    )
    .await;
    let created = ok(
        step(
            &d.url,
            &format!(
                "    operation: execute\n    sql: CREATE TABLE {table} ({})\n",
                d.ddl
            ),
        ),
        json!({}),
    )
    .await;
    assert!(created["rowsAffected"].is_number(), "{created}");

    // A batch insert from an array, parameters bound per element.
    let insert = step(
        &d.url,
        &format!(
            "    operation: batch\n    items: \"{{{{ message.orders }}}}\"\n    sql: INSERT INTO {table} (id, total, paid, note, at, doc) VALUES ({}, {}, {}, {}, {}, {})\n    params: [\"{{{{ item.id }}}}\", \"{{{{ item.total }}}}\", \"{{{{ item.paid }}}}\", \"{{{{ item.note }}}}\", \"{{{{ item.at }}}}\", \"{{{{ item.doc }}}}\"]\n",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6)
        ),
    );
    let orders = json!({"orders": [
        {"id": 1, "total": 19.5, "paid": true, "note": "first", "at": d.time_in, "doc": {"tags": ["a"]}},
        {"id": 2, "total": 250, "paid": false, "note": "it's \"quoted\"; DROP TABLE x; --", "at": d.time_in, "doc": null},
        {"id": 3, "total": 0.1, "paid": true, "note": null, "at": d.time_in, "doc": {"n": 1}},
    ]});
    let inserted = ok(insert.clone(), orders).await;
    assert_eq!(inserted, json!({"rowsAffected": 3}));

    // A query with bound parameters gives typed rows.
    let query = step(
        &d.url,
        &format!(
            "    sql: SELECT id, total, paid, note, at, doc FROM {table} WHERE total > {} ORDER BY id\n    params: [\"{{{{ message.min }}}}\"]\n    jsonColumns: [doc]\n",
            p(1)
        ),
    );
    let rows = ok(query.clone(), json!({"min": 1})).await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[0]["total"], 19.5);
    assert_eq!(rows[0]["paid"], true);
    assert_eq!(rows[0]["note"], "first");
    assert_eq!(rows[0]["at"], d.time_out, "{:?}", rows[0]);
    assert_eq!(rows[0]["doc"], json!({"tags": ["a"]}));
    assert_eq!(rows[1]["paid"], false);
    assert_eq!(
        rows[1]["note"], "it's \"quoted\"; DROP TABLE x; --",
        "bound, not spliced"
    );
    assert_eq!(rows[1]["doc"], Value::Null);

    let single = step(
        &d.url,
        &format!(
            "    sql: SELECT note FROM {table} WHERE id = {}\n    params: [3]\n    single: true\n",
            p(1)
        ),
    );
    assert_eq!(ok(single.clone(), json!({})).await, json!({"note": null}));
    let none = single.replace("params: [3]", "params: [99]");
    assert_eq!(ok(none, json!({})).await, Value::Null);

    // A transaction: every statement or none.
    let transaction = |second: &str| {
        format!(
            "name: t\nsteps:\n  - type: db\n    url: \"{}\"\n    operation: transaction\n    statements:\n      - sql: UPDATE {table} SET note = {} WHERE id = {}\n        params: [moved, 1]\n      - sql: \"{second}\"\n        params: [1]\n      - sql: SELECT note FROM {table} WHERE id = {}\n        params: [1]\n        operation: query\n",
            d.url,
            p(1),
            p(2),
            p(1)
        )
    };
    let good = transaction(&format!(
        "UPDATE {table} SET paid = false WHERE id = {}",
        p(1)
    ));
    let results = ok(good, json!({})).await;
    assert_eq!(results[0], json!({"rowsAffected": 1}), "{results}");
    assert_eq!(results[2], json!([{"note": "moved"}]), "{results}");
    let bad = transaction(&format!("INSERT INTO {table} (id) VALUES ({})", p(1)));
    let e = exec(&plan(&bad), json!({}), json!({})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("db", 409), "{}", e.message);
    assert!(
        e.to_value()["details"]["sqlState"].is_string(),
        "{}",
        e.to_value()
    );
    let after = ok(single.replace("params: [3]", "params: [1]"), json!({})).await;
    assert_eq!(
        after,
        json!({"note": "moved"}),
        "the first update stayed (it committed before)"
    );
    let rolled = transaction(&format!("INSERT INTO {table} (id) VALUES ({})", p(1)))
        .replace("[moved, 1]", "[again, 1]");
    assert!(exec(&plan(&rolled), json!({}), json!({})).await.is_err());
    let after = ok(single.replace("params: [3]", "params: [1]"), json!({})).await;
    assert_eq!(
        after,
        json!({"note": "moved"}),
        "the failed transaction left nothing"
    );

    // execute reports the rows it changed.
    let delete = step(
        &d.url,
        &format!(
            "    operation: execute\n    sql: DELETE FROM {table} WHERE paid = {}\n    params: [false]\n",
            p(1)
        ),
    );
    assert_eq!(ok(delete, json!({})).await["rowsAffected"], 2);
    // A refused statement is an error with the database's words.
    let wrong = step(&d.url, "    sql: SELECT nothing_here FROM nowhere_at_all\n");
    let e = exec(&plan(&wrong), json!({}), json!({})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("db", 400));
    assert!(e.message.contains("nowhere_at_all"), "{}", e.message);
    let _ = exec(
        &plan(&step(
            &d.url,
            &format!("    operation: execute\n    sql: DROP TABLE {table}\n"),
        )),
        json!({}),
        json!({}),
    )
    .await;
}

fn table(tag: &str) -> String {
    format!("sluice_db_{tag}_{}", std::process::id())
}

#[tokio::test]
async fn postgres() {
    let Ok(url) = std::env::var("SLUICE_TEST_POSTGRES_URL") else {
        eprintln!("skipped: set SLUICE_TEST_POSTGRES_URL");
        return;
    };
    let d = Dialect {
        url,
        placeholder: dollar,
        ddl: "id integer PRIMARY KEY, total numeric(10,2), paid boolean, note text, at timestamptz, doc jsonb",
        time_in: "2026-03-01T10:30:00Z",
        time_out: "2026-03-01T10:30:00Z",
    };
    // Postgres binds numbers and texts strictly: the insert casts.
    exercise_pg(&d).await;
}

/// Postgres wants typed parameters where the column type is not the
/// parameter's (`$2::numeric`, `$5::timestamptz`): the page says so.
async fn exercise_pg(d: &Dialect) {
    let t = table("pg");
    let dialect = Dialect {
        url: d.url.clone(),
        placeholder: |n| match n {
            2 => "$2".into(),
            5 => "$5::timestamptz".into(),
            6 => "$6::jsonb".into(),
            n => format!("${n}"),
        },
        ddl: d.ddl,
        time_in: d.time_in,
        time_out: d.time_out,
    };
    exercise(&dialect, &t).await;
}

#[tokio::test]
async fn mariadb() {
    let Ok(url) = std::env::var("SLUICE_TEST_MYSQL_URL") else {
        eprintln!("skipped: set SLUICE_TEST_MYSQL_URL");
        return;
    };
    let d = Dialect {
        url,
        placeholder: question,
        ddl: "id int PRIMARY KEY, total decimal(10,2), paid boolean, note text, at datetime, doc json",
        time_in: "2026-03-01 10:30:00",
        time_out: "2026-03-01T10:30:00",
    };
    exercise(&d, &table("my")).await;
}

#[tokio::test]
async fn sqlite() {
    let dir = std::env::temp_dir().join(format!("sluice-db-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = Dialect {
        url: format!("sqlite:{}?mode=rwc", dir.join("t.db").display()),
        placeholder: question,
        ddl: "id INTEGER PRIMARY KEY, total REAL, paid BOOLEAN, note TEXT, at TEXT, doc JSON",
        time_in: "2026-03-01T10:30:00Z",
        time_out: "2026-03-01T10:30:00Z",
    };
    exercise(&d, &table("lite")).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_url_can_come_from_an_account_and_bad_ones_are_clear() {
    let dir = std::env::temp_dir().join(format!("sluice-db-acc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}?mode=rwc", dir.join("a.db").display());
    let yaml = "name: t\nsteps:\n  - type: db\n    account: store\n    sql: SELECT 1 + 1 AS two\n    single: true\n";
    let out = exec(
        &plan(yaml),
        json!({}),
        json!({"store": {"type": "generic", "url": url}}),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({"two": 2}));
    let e = exec(&plan(yaml), json!({}), json!({})).await.unwrap_err();
    assert!(e.message.contains("no account 'store'"), "{}", e.message);
    let e = exec(
        &plan(&step("redis://x", "    sql: SELECT 1\n")),
        json!({}),
        json!({}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.status, 400);
    // Nothing listens on port 9: the database cannot be reached.
    let e = exec(
        &plan(&step(
            "postgres://u:p@127.0.0.1:9/db",
            "    sql: SELECT 1\n    connectTimeout: 500ms\n",
        )),
        json!({}),
        json!({}),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("db", 503), "{}", e.message);
    assert!(e.message.contains("unreachable"), "{}", e.message);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_configs_are_refused_at_load() {
    let catalog = sluice_connectors::catalog();
    for (body, path) in [
        ("    sql: SELECT 1\n", "steps[0]"),
        (
            "    url: x\n    account: y\n    sql: SELECT 1\n",
            "steps[0]",
        ),
        ("    url: x\n", "steps[0].sql"),
        (
            "    url: x\n    operation: batch\n    sql: INSERT\n",
            "steps[0].items",
        ),
        (
            "    url: x\n    operation: transaction\n",
            "steps[0].statements",
        ),
        (
            "    url: x\n    sql: SELECT 1\n    poolSize: 0\n",
            "steps[0].poolSize",
        ),
    ] {
        let yaml = format!("name: t\nsteps:\n  - type: db\n{body}");
        let e = load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap_err();
        assert!(e.to_string().contains(path), "{path}: {e}");
    }
}
