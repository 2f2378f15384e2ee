//! `redis` against a real server, from `SLUICE_TEST_REDIS_URL` (e.g.
//! `redis://127.0.0.1:6379`); the tests that need one are skipped when it
//! is not set. Keys start with a prefix of this process, and are removed.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use sluice_engine::{FlowError, Plan, RunOptions, load_str};
use sluice_spec::Format;

fn server() -> Option<String> {
    match std::env::var("SLUICE_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            eprintln!("skipped: set SLUICE_TEST_REDIS_URL");
            None
        }
    }
}

/// Keys of one test of this run.
fn prefix(tag: &str) -> String {
    format!("sluice-test:{}:{tag}:", std::process::id())
}

fn plan(yaml: &str) -> Plan {
    load_str(
        "t.yaml",
        yaml,
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

async fn exec(plan: &Plan, input: Value, accounts: Value) -> Result<Value, FlowError> {
    let options = RunOptions {
        accounts: Arc::new(accounts),
        ..RunOptions::default()
    };
    plan.execute(input, options).await.into_result()
}

fn step(url: &str, body: &str) -> String {
    format!("name: t\nsteps:\n  - type: redis\n    url: \"{url}\"\n{body}")
}

/// Runs one step on `input`; it must succeed.
async fn ok(url: &str, body: &str, input: Value) -> Value {
    let yaml = step(url, body);
    exec(&plan(&yaml), input, json!({}))
        .await
        .unwrap_or_else(|e| panic!("{}\n{yaml}", e.to_value()))
}

/// Runs one step on `input`; it must fail.
async fn fails(url: &str, body: &str, input: Value) -> FlowError {
    let yaml = step(url, body);
    match exec(&plan(&yaml), input, json!({})).await {
        Ok(v) => panic!("succeeded with {v}\n{yaml}"),
        Err(e) => e,
    }
}

/// A connection of the test's own, to look and to clean up.
async fn admin(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn raw(c: &mut MultiplexedConnection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await
}

async fn text(c: &mut MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query_async(c).await.unwrap()
}

async fn clean(c: &mut MultiplexedConnection, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(c)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(keys).query_async(c).await.unwrap();
    }
}

#[tokio::test]
async fn strings_counters_existence_and_json_round_trips() {
    let Some(url) = server() else { return };
    let p = prefix("strings");
    let mut admin = admin(&url).await;
    clean(&mut admin, &p).await;

    // A string is stored as it is; the key may hold expressions.
    let set = format!(
        "    operation: set\n    key: \"{p}order:{{{{ message.id }}}}\"\n    value: \"{{{{ message.note }}}}\"\n"
    );
    let out = ok(&url, &set, json!({"id": 7, "note": "hello \"world\""})).await;
    assert_eq!(out, json!({"set": true}));
    assert_eq!(
        text(&mut admin, &format!("{p}order:7")).await.as_deref(),
        Some("hello \"world\"")
    );
    let get = format!("    operation: get\n    key: \"{p}order:{{{{ message.id }}}}\"\n");
    assert_eq!(
        ok(&url, &get, json!({"id": 7})).await,
        json!("hello \"world\"")
    );
    // A missing key gives null.
    assert_eq!(ok(&url, &get, json!({"id": 8})).await, Value::Null);

    // Without `value`, the message is stored, as JSON text; it reads back parsed.
    let doc = json!({"id": 9, "lines": [{"sku": "A", "qty": 2}], "paid": true, "note": null});
    let set_doc = format!("    operation: set\n    key: \"{p}doc\"\n");
    assert_eq!(ok(&url, &set_doc, doc.clone()).await, json!({"set": true}));
    let stored = text(&mut admin, &format!("{p}doc")).await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), doc);
    let get_doc = format!("    operation: get\n    key: \"{p}doc\"\n");
    assert_eq!(ok(&url, &get_doc, json!({})).await, doc);
    let as_text = format!("{get_doc}    parse: text\n");
    assert_eq!(ok(&url, &as_text, json!({})).await, json!(stored));

    // Numbers and booleans are stored as their JSON text and read back as
    // strings, unless `parse: json`.
    let set_n = format!("    operation: set\n    key: \"{p}n\"\n    value: 42\n");
    ok(&url, &set_n, json!({})).await;
    assert_eq!(
        text(&mut admin, &format!("{p}n")).await.as_deref(),
        Some("42")
    );
    let get_n = format!("    operation: get\n    key: \"{p}n\"\n");
    assert_eq!(ok(&url, &get_n, json!({})).await, json!("42"));
    assert_eq!(
        ok(&url, &format!("{get_n}    parse: json\n"), json!({})).await,
        json!(42)
    );
    let set_list = format!(
        "    operation: set\n    key: \"{p}list\"\n    value: [1, \"{{{{ message.x }}}}\", {{ a: true }}]\n"
    );
    ok(&url, &set_list, json!({"x": 2.5})).await;
    let get_list = format!("    operation: get\n    key: \"{p}list\"\n");
    assert_eq!(
        ok(&url, &get_list, json!({})).await,
        json!([1, 2.5, {"a": true}]),
        "types inside are kept"
    );
    // Text that is not JSON stays text even with parse: json.
    assert_eq!(
        ok(&url, &format!("{get}    parse: json\n"), json!({"id": 7})).await,
        json!("hello \"world\"")
    );

    // ifNotExists: only the first write wins.
    let once = format!(
        "    operation: set\n    key: \"{p}lock\"\n    value: \"{{{{ message.owner }}}}\"\n    ifNotExists: true\n"
    );
    assert_eq!(
        ok(&url, &once, json!({"owner": "a"})).await,
        json!({"set": true})
    );
    assert_eq!(
        ok(&url, &once, json!({"owner": "b"})).await,
        json!({"set": false})
    );
    assert_eq!(
        text(&mut admin, &format!("{p}lock")).await.as_deref(),
        Some("a")
    );

    // Counters.
    let incr = format!("    operation: incr\n    key: \"{p}count\"\n");
    assert_eq!(ok(&url, &incr, json!({})).await, json!(1));
    assert_eq!(
        ok(&url, &format!("{incr}    by: 5\n"), json!({})).await,
        json!(6)
    );
    assert_eq!(
        ok(
            &url,
            &format!("{incr}    by: \"{{{{ message.n }}}}\"\n"),
            json!({"n": -10})
        )
        .await,
        json!(-4)
    );
    let e = fails(
        &url,
        &format!("{incr}    by: \"{{{{ message.n }}}}\"\n"),
        json!({"n": "lots"}),
    )
    .await;
    assert_eq!((e.code.as_ref(), e.status), ("redis", 400), "{}", e.message);
    // A Redis error reply is a 400 with the server's words.
    let e = fails(
        &url,
        &format!("    operation: incr\n    key: \"{p}order:7\"\n"),
        json!({}),
    )
    .await;
    assert_eq!((e.code.as_ref(), e.status), ("redis", 400), "{}", e.message);
    assert!(
        e.message
            .starts_with("the server answered: ERR value is not an integer"),
        "{}",
        e.message
    );
    let e = fails(
        &url,
        &format!("    operation: hget\n    key: \"{p}order:7\"\n    field: f\n"),
        json!({}),
    )
    .await;
    assert_eq!(e.status, 400);
    assert!(e.message.contains("WRONGTYPE"), "{}", e.message);
    assert_eq!(e.to_value()["details"]["reply"], "WRONGTYPE");
    // An empty key is bad input.
    let bare = "    operation: get\n    key: \"{{ message.key }}\"\n";
    let e = fails(&url, bare, json!({"key": ""})).await;
    assert_eq!((e.status, e.message.as_str()), (400, "`key` is empty"));

    // exists: one key (a boolean) or several (how many exist).
    let exists = format!("    operation: exists\n    key: \"{p}count\"\n");
    assert_eq!(ok(&url, &exists, json!({})).await, json!(true));
    let exists_not = format!("    operation: exists\n    key: \"{p}nothing\"\n");
    assert_eq!(ok(&url, &exists_not, json!({})).await, json!(false));
    let exists_many =
        format!("    operation: exists\n    keys: [\"{p}count\", \"{p}n\", \"{p}nothing\"]\n");
    assert_eq!(ok(&url, &exists_many, json!({})).await, json!(2));

    // del: one key, a list, or an expression giving a list.
    let del = format!("    operation: del\n    key: \"{p}count\"\n");
    assert_eq!(ok(&url, &del, json!({})).await, json!({"deleted": 1}));
    assert_eq!(ok(&url, &del, json!({})).await, json!({"deleted": 0}));
    let del_many = format!("    operation: del\n    keys: [\"{p}n\", \"{p}list\", \"{p}none\"]\n");
    assert_eq!(ok(&url, &del_many, json!({})).await, json!({"deleted": 2}));
    let del_expr = "    operation: del\n    keys: \"{{ message.keys }}\"\n";
    let keys = json!({"keys": [format!("{p}lock"), format!("{p}doc")]});
    assert_eq!(ok(&url, del_expr, keys).await, json!({"deleted": 2}));
    assert_eq!(
        ok(&url, del_expr, json!({"keys": []})).await,
        json!({"deleted": 0})
    );

    clean(&mut admin, &p).await;
}

#[tokio::test]
async fn ttl_and_expire_make_keys_go_away() {
    let Some(url) = server() else { return };
    let p = prefix("ttl");
    let mut admin = admin(&url).await;
    clean(&mut admin, &p).await;

    let set = format!("    operation: set\n    key: \"{p}short\"\n    value: x\n    ttl: 300ms\n");
    assert_eq!(ok(&url, &set, json!({})).await, json!({"set": true}));
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{p}short"))
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!((1..=300).contains(&pttl), "{pttl}");
    let get = format!("    operation: get\n    key: \"{p}short\"\n");
    assert_eq!(ok(&url, &get, json!({})).await, json!("x"));

    // expire on a key without a ttl.
    let keep = format!("    operation: set\n    key: \"{p}later\"\n    value: y\n");
    ok(&url, &keep, json!({})).await;
    let expire = format!("    operation: expire\n    key: \"{p}later\"\n    ttl: 300ms\n");
    assert_eq!(ok(&url, &expire, json!({})).await, json!({"expired": true}));
    let missing = format!("    operation: expire\n    key: \"{p}nothing\"\n    ttl: 10s\n");
    assert_eq!(
        ok(&url, &missing, json!({})).await,
        json!({"expired": false})
    );
    // A long ttl stays.
    let long = format!("    operation: set\n    key: \"{p}long\"\n    value: z\n    ttl: 1h\n");
    ok(&url, &long, json!({})).await;

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(ok(&url, &get, json!({})).await, Value::Null);
    let get_later = format!("    operation: get\n    key: \"{p}later\"\n");
    assert_eq!(ok(&url, &get_later, json!({})).await, Value::Null);
    let get_long = format!("    operation: get\n    key: \"{p}long\"\n");
    assert_eq!(ok(&url, &get_long, json!({})).await, json!("z"));
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{p}long"))
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!((3500..=3600).contains(&ttl), "{ttl}");

    clean(&mut admin, &p).await;
}

#[tokio::test]
async fn hashes() {
    let Some(url) = server() else { return };
    let p = prefix("hash");
    let mut admin = admin(&url).await;
    clean(&mut admin, &p).await;
    let key = format!("{p}customer:{{{{ message.id }}}}");

    let hset = format!(
        "    operation: hset\n    key: \"{key}\"\n    fields:\n      name: \"{{{{ message.name }}}}\"\n      tags: \"{{{{ message.tags }}}}\"\n      visits: 5\n      vip: false\n"
    );
    let input = json!({"id": 1, "name": "Ada", "tags": ["a", "b"]});
    assert_eq!(ok(&url, &hset, input).await, json!({"added": 4}));
    let stored: Option<String> = redis::cmd("HGET")
        .arg(format!("{p}customer:1"))
        .arg("tags")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(r#"["a","b"]"#));
    // Overwriting fields adds none; a new one adds one.
    let input = json!({"id": 1, "name": "Ada L.", "tags": []});
    assert_eq!(ok(&url, &hset, input).await, json!({"added": 0}));
    let hset_expr = format!(
        "    operation: hset\n    key: \"{key}\"\n    fields: \"{{{{ message.more }}}}\"\n"
    );
    let more = json!({"id": 1, "more": {"city": "London", "since": 1843}});
    assert_eq!(ok(&url, &hset_expr, more).await, json!({"added": 2}));
    let none = json!({"id": 1, "more": {}});
    assert_eq!(ok(&url, &hset_expr, none).await, json!({"added": 0}));
    let e = fails(&url, &hset_expr, json!({"id": 1, "more": [1]})).await;
    assert_eq!(e.status, 400, "{}", e.message);

    let hget = format!(
        "    operation: hget\n    key: \"{key}\"\n    field: \"{{{{ message.field }}}}\"\n"
    );
    assert_eq!(
        ok(&url, &hget, json!({"id": 1, "field": "name"})).await,
        json!("Ada L.")
    );
    assert_eq!(
        ok(&url, &hget, json!({"id": 1, "field": "tags"})).await,
        json!([])
    );
    assert_eq!(
        ok(&url, &hget, json!({"id": 1, "field": "visits"})).await,
        json!("5")
    );
    assert_eq!(
        ok(&url, &hget, json!({"id": 1, "field": "nope"})).await,
        Value::Null
    );
    assert_eq!(
        ok(&url, &hget, json!({"id": 2, "field": "name"})).await,
        Value::Null
    );

    let hgetall = format!("    operation: hgetall\n    key: \"{key}\"\n");
    assert_eq!(
        ok(&url, &hgetall, json!({"id": 1})).await,
        json!({"name": "Ada L.", "tags": [], "visits": "5", "vip": "false", "city": "London", "since": "1843"})
    );
    assert_eq!(
        ok(
            &url,
            &format!("{hgetall}    parse: json\n"),
            json!({"id": 1})
        )
        .await,
        json!({"name": "Ada L.", "tags": [], "visits": 5, "vip": false, "city": "London", "since": 1843})
    );
    assert_eq!(ok(&url, &hgetall, json!({"id": 2})).await, Value::Null);

    let hdel = format!("    operation: hdel\n    key: \"{key}\"\n    field: vip\n");
    assert_eq!(
        ok(&url, &hdel, json!({"id": 1})).await,
        json!({"deleted": 1})
    );
    let hdel_many =
        format!("    operation: hdel\n    key: \"{key}\"\n    fields: [city, since, gone]\n");
    assert_eq!(
        ok(&url, &hdel_many, json!({"id": 1})).await,
        json!({"deleted": 2})
    );
    assert_eq!(
        ok(&url, &hgetall, json!({"id": 1})).await,
        json!({"name": "Ada L.", "tags": [], "visits": "5"})
    );

    clean(&mut admin, &p).await;
}

#[tokio::test]
async fn lists() {
    let Some(url) = server() else { return };
    let p = prefix("list");
    let mut admin = admin(&url).await;
    clean(&mut admin, &p).await;
    let key = format!("{p}queue");

    let rpush =
        format!("    operation: rpush\n    key: \"{key}\"\n    values: [1, two, {{ three: 3 }}]\n");
    assert_eq!(ok(&url, &rpush, json!({})).await, json!(3));
    let lpush = format!(
        "    operation: lpush\n    key: \"{key}\"\n    values: \"{{{{ message.items }}}}\"\n"
    );
    assert_eq!(
        ok(&url, &lpush, json!({"items": ["b", "a"]})).await,
        json!(5),
        "lpush puts each at the head in turn"
    );
    assert_eq!(
        ok(&url, &lpush, json!({"items": []})).await,
        json!(5),
        "nothing to add: the length"
    );
    let e = fails(&url, &lpush, json!({"items": "x"})).await;
    assert_eq!(e.status, 400, "{}", e.message);

    let lrange = format!("    operation: lrange\n    key: \"{key}\"\n");
    assert_eq!(
        ok(&url, &lrange, json!({})).await,
        json!(["a", "b", "1", "two", {"three": 3}])
    );
    assert_eq!(
        ok(
            &url,
            &format!("{lrange}    start: 1\n    stop: 2\n"),
            json!({})
        )
        .await,
        json!(["b", "1"])
    );
    assert_eq!(
        ok(
            &url,
            &format!("{lrange}    start: -2\n    parse: json\n"),
            json!({})
        )
        .await,
        json!(["two", {"three": 3}])
    );
    let lrange_none = format!("    operation: lrange\n    key: \"{p}none\"\n");
    assert_eq!(ok(&url, &lrange_none, json!({})).await, json!([]));

    let lpop = format!("    operation: lpop\n    key: \"{key}\"\n");
    let rpop = format!("    operation: rpop\n    key: \"{key}\"\n");
    assert_eq!(ok(&url, &lpop, json!({})).await, json!("a"));
    assert_eq!(ok(&url, &rpop, json!({})).await, json!({"three": 3}));
    assert_eq!(
        ok(
            &url,
            &format!("{lpop}    count: 2\n    parse: json\n"),
            json!({})
        )
        .await,
        json!(["b", 1])
    );
    assert_eq!(
        ok(&url, &format!("{rpop}    count: 5\n"), json!({})).await,
        json!(["two"])
    );
    assert_eq!(ok(&url, &lpop, json!({})).await, Value::Null);
    assert_eq!(
        ok(&url, &format!("{rpop}    count: 2\n"), json!({})).await,
        json!([])
    );

    clean(&mut admin, &p).await;
}

/// A subscriber over a plain socket: the test reads what was published.
fn subscribe(url: &str, channel: &str) -> std::net::TcpStream {
    let info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(url).unwrap();
    let redis::ConnectionAddr::Tcp(host, port) = &info.addr else {
        panic!("the test server must be on TCP");
    };
    let mut s = std::net::TcpStream::connect((host.as_str(), *port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let resp = |parts: &[&str]| {
        let mut out = format!("*{}\r\n", parts.len());
        for p in parts {
            out.push_str(&format!("${}\r\n{p}\r\n", p.len()));
        }
        out
    };
    if let Some(password) = &info.redis.password {
        let user = info
            .redis
            .username
            .clone()
            .unwrap_or_else(|| "default".into());
        s.write_all(resp(&["AUTH", &user, password]).as_bytes())
            .unwrap();
        read_until(&mut s, "OK");
    }
    s.write_all(resp(&["SUBSCRIBE", channel]).as_bytes())
        .unwrap();
    read_until(&mut s, channel);
    s
}

fn read_until(s: &mut std::net::TcpStream, wanted: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(wanted) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the subscriber was closed");
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn publish_sends_text_or_json() {
    let Some(url) = server() else { return };
    let channel = prefix("events");
    let publish = format!(
        "    operation: publish\n    channel: \"{channel}{{{{ message.kind }}}}\"\n    value: {{ id: \"{{{{ message.id }}}}\", kind: \"{{{{ message.kind }}}}\" }}\n"
    );
    // Nobody listening.
    assert_eq!(
        ok(&url, &publish, json!({"id": 1, "kind": "paid"})).await,
        json!({"receivers": 0})
    );
    let mut subscriber = subscribe(&url, &format!("{channel}paid"));
    assert_eq!(
        ok(&url, &publish, json!({"id": 2, "kind": "paid"})).await,
        json!({"receivers": 1})
    );
    let got = read_until(&mut subscriber, "}");
    assert!(got.contains(r#"{"id":2,"kind":"paid"}"#), "{got}");
    // Without `value`, the message; a string is sent as it is.
    let plain = format!("    operation: publish\n    channel: \"{channel}paid\"\n");
    assert_eq!(
        ok(&url, &plain, json!("just text")).await,
        json!({"receivers": 1})
    );
    let got = read_until(&mut subscriber, "just text");
    assert!(!got.contains("\"just text\""), "{got}");
}

fn users(list: &str, user: &str) -> usize {
    list.lines()
        .filter(|l| l.split(' ').any(|f| f == format!("user={user}")))
        .count()
}

async fn client_list(admin: &mut MultiplexedConnection) -> String {
    redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .unwrap()
}

/// The account form of the connection, with a user of this test's own:
/// `CLIENT LIST` then shows every connection the step made.
#[tokio::test]
async fn one_connection_per_step_from_an_account_and_made_again_when_lost() {
    let Some(url) = server() else { return };
    let p = prefix("conn");
    let mut admin = admin(&url).await;
    clean(&mut admin, &p).await;
    let user = format!("sluice_test_{}", std::process::id());
    let password = format!("pw-{}", std::process::id());
    let made = raw(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            &user,
            "reset",
            "on",
            &format!(">{password}"),
            "~*",
            "&*",
            "+@all",
        ],
    )
    .await;
    let yaml = format!(
        "name: t\nsteps:\n  - type: redis\n    account: cache\n    operation: incr\n    key: \"{p}hits\"\n"
    );
    let counter = plan(&yaml);
    if let Err(e) = made {
        // No ACLs on this server (before Redis 6, or not allowed): the
        // account form with the URL alone, and a timing check instead.
        eprintln!("no ACL user ({e}): checking the connection by time");
        let accounts = json!({"cache": {"type": "generic", "url": url}});
        let started = Instant::now();
        for i in 1..=200 {
            assert_eq!(
                exec(&counter, json!({}), accounts.clone()).await.unwrap(),
                json!(i)
            );
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        clean(&mut admin, &p).await;
        return;
    }
    // The URL's own credentials (if any) give way to the account's.
    let accounts =
        json!({"cache": {"type": "generic", "url": url, "username": user, "password": password}});
    let started = Instant::now();
    for i in 1..=200 {
        let out = exec(&counter, json!({}), accounts.clone()).await;
        assert_eq!(out.unwrap(), json!(i));
    }
    let took = started.elapsed();
    let list = client_list(&mut admin).await;
    assert_eq!(
        users(&list, &user),
        1,
        "one connection for 200 runs:\n{list}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");

    // The server drops it: the next run makes a new one and succeeds.
    let killed = raw(&mut admin, &["CLIENT", "KILL", "USER", &user]).await;
    assert!(killed.is_ok(), "{killed:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = exec(&counter, json!({}), accounts.clone()).await;
    assert_eq!(out.unwrap(), json!(201));
    let out = exec(&counter, json!({}), accounts.clone()).await;
    assert_eq!(out.unwrap(), json!(202));
    let list = client_list(&mut admin).await;
    assert_eq!(users(&list, &user), 1, "made again, once:\n{list}");

    // Another compiled step has a connection of its own.
    let other = plan(&yaml);
    exec(&other, json!({}), accounts.clone()).await.unwrap();
    let list = client_list(&mut admin).await;
    assert_eq!(users(&list, &user), 2, "{list}");
    drop(other);

    // A wrong password cannot connect: 502.
    let wrong =
        json!({"cache": {"type": "generic", "url": url, "username": user, "password": "nope"}});
    let e = exec(&plan(&yaml), json!({}), wrong).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("redis", 502), "{}", e.message);
    assert!(!e.message.contains("nope"), "{}", e.message);

    let _ = raw(&mut admin, &["ACL", "DELUSER", &user]).await;
    clean(&mut admin, &p).await;
}

#[tokio::test]
async fn accounts_and_urls_that_cannot_be_used() {
    let yaml =
        "name: t\nsteps:\n  - type: redis\n    account: cache\n    operation: get\n    key: k\n";
    let e = exec(&plan(yaml), json!({}), json!({})).await.unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("redis", 400));
    assert!(e.message.contains("no account 'cache'"), "{}", e.message);
    let e = exec(
        &plan(yaml),
        json!({}),
        json!({"cache": {"type": "generic", "host": "x"}}),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("no 'url' field"), "{}", e.message);
    for bad in ["http://example.com", "not a url", "rediss://127.0.0.1:6380"] {
        let e = fails(bad, "    operation: get\n    key: k\n", json!({})).await;
        assert_eq!(
            (e.code.as_ref(), e.status),
            ("redis", 400),
            "{bad}: {}",
            e.message
        );
    }
    // Nothing listens on port 9: the server cannot be reached.
    let started = Instant::now();
    let e = fails(
        "redis://127.0.0.1:9",
        "    operation: get\n    key: k\n    connectTimeout: 2s\n",
        json!({}),
    )
    .await;
    assert_eq!((e.code.as_ref(), e.status), ("redis", 502), "{}", e.message);
    assert!(e.message.contains("cannot be reached"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(3));
    // The URL may come from a global.
    let yaml = "name: t\nsteps:\n  - type: redis\n    url: \"{{ global.cache-url }}\"\n    operation: get\n    key: k\n";
    let options = RunOptions {
        globals: Arc::new(json!({"cache-url": "redis://127.0.0.1:9/0"})),
        ..RunOptions::default()
    };
    let e = plan(yaml)
        .execute(json!({}), options)
        .await
        .into_result()
        .unwrap_err();
    assert_eq!(e.status, 502, "{}", e.message);
}

#[test]
fn bad_configs_are_refused_at_load() {
    let catalog = sluice_connectors::catalog();
    for (body, path) in [
        ("    operation: get\n    key: k\n", "steps[0]"),
        (
            "    url: redis://x\n    account: y\n    operation: get\n    key: k\n",
            "steps[0]",
        ),
        ("    url: redis://x\n    key: k\n", "operation"),
        (
            "    url: redis://x\n    operation: flush\n    key: k\n",
            "operation",
        ),
        ("    url: redis://x\n    operation: get\n", "steps[0].key"),
        ("    url: redis://x\n    operation: set\n", "steps[0].key"),
        (
            "    url: redis://x\n    operation: expire\n    key: k\n",
            "steps[0].ttl",
        ),
        (
            "    url: redis://x\n    operation: hget\n    key: k\n",
            "steps[0].field",
        ),
        (
            "    url: redis://x\n    operation: hset\n    key: k\n",
            "steps[0].fields",
        ),
        (
            "    url: redis://x\n    operation: hset\n    key: k\n    fields: [a]\n",
            "steps[0].fields",
        ),
        (
            "    url: redis://x\n    operation: hdel\n    key: k\n",
            "steps[0].field",
        ),
        (
            "    url: redis://x\n    operation: rpush\n    key: k\n",
            "steps[0].values",
        ),
        (
            "    url: redis://x\n    operation: rpush\n    key: k\n    values: { a: 1 }\n",
            "steps[0].values",
        ),
        (
            "    url: redis://x\n    operation: publish\n",
            "steps[0].channel",
        ),
        ("    url: redis://x\n    operation: del\n", "steps[0].key"),
        (
            "    url: redis://x\n    operation: del\n    key: a\n    keys: [b]\n",
            "steps[0].keys",
        ),
        (
            "    url: redis://x\n    operation: get\n    key: k\n    ttl: 5s\n",
            "steps[0].ttl",
        ),
        (
            "    url: redis://x\n    operation: publish\n    channel: c\n    key: k\n",
            "steps[0].key",
        ),
        (
            "    url: redis://x\n    operation: set\n    key: k\n    ttl: 0s\n",
            "steps[0].ttl",
        ),
        (
            "    url: redis://x\n    operation: set\n    key: k\n    ttl: soon\n",
            "steps[0].ttl",
        ),
        (
            "    url: redis://x\n    operation: incr\n    key: k\n    by: 1.5\n",
            "steps[0].by",
        ),
        (
            "    url: redis://x\n    operation: lpop\n    key: k\n    count: 0\n",
            "steps[0].count",
        ),
        (
            "    url: redis://x\n    operation: get\n    key: \"{{ message. }}\"\n",
            "steps[0].key",
        ),
        (
            "    url: redis://x\n    operation: get\n    key: k\n    parse: yes-please\n",
            "steps[0].parse",
        ),
        (
            "    url: redis://x\n    operation: get\n    key: k\n    colour: red\n",
            "colour",
        ),
    ] {
        let yaml = format!("name: t\nsteps:\n  - type: redis\n{body}");
        let e = load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap_err();
        assert!(e.to_string().contains(path), "{path}: {e}\n{yaml}");
    }
}
