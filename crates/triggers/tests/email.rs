//! The `email` trigger against a real IMAP server (SLUICE_TEST_IMAP_URL,
//! e.g. `imap://sluice:sluice-secret@127.0.0.1:10143` from
//! tests/imap/start-dovecot). Each test reads its own mailbox, so they
//! run in parallel; mail is put there with APPEND.

#![cfg(feature = "email")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use serde_json::{Map, Value, json};
use sluice_spec::Trigger;
use sluice_triggers::{Names, Source, TriggerError};
use support::{Act, Proxy, Recorder, Worker, eventually, service_url, unique};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(20);

/// The test server: where it listens and the login (from the URL, for
/// tests only: pipelines keep credentials in an account).
struct Server {
    addr: String,
    username: String,
    password: String,
}

fn server() -> Option<Server> {
    let url = service_url("SLUICE_TEST_IMAP_URL")?;
    let rest = url
        .strip_prefix("imap://")
        .expect("SLUICE_TEST_IMAP_URL is imap://user:pass@host:port");
    let (login, addr) = rest
        .rsplit_once('@')
        .expect("SLUICE_TEST_IMAP_URL holds user:pass@");
    let (username, password) = login
        .split_once(':')
        .expect("SLUICE_TEST_IMAP_URL holds user:pass@");
    Some(Server {
        addr: addr.trim_end_matches('/').to_owned(),
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

type Session = async_imap::Session<TcpStream>;

impl Server {
    fn account(&self) -> Map<String, Value> {
        let account =
            json!({"type": "basic", "username": self.username, "password": self.password});
        account.as_object().cloned().expect("object")
    }

    /// The email trigger on `mailbox` (plus `extra` fields), through `addr`.
    fn source_at(&self, addr: &str, mailbox: &str, extra: Value) -> Arc<dyn Source> {
        let mut trigger = json!({
            "type": "email",
            "url": format!("imap://{addr}"),
            "account": "mail",
            "mailbox": mailbox,
            "pollInterval": "200ms",
        });
        if let (Some(t), Some(extra)) = (trigger.as_object_mut(), extra.as_object()) {
            t.extend(extra.clone());
        }
        let trigger: Trigger = serde_json::from_value(trigger).expect("trigger");
        sluice_triggers::source(&trigger, Some(&self.account()), &names()).expect("source")
    }

    fn source(&self, mailbox: &str, extra: Value) -> Arc<dyn Source> {
        self.source_at(&self.addr, mailbox, extra)
    }

    /// A session of the test's own, to put and inspect mail.
    async fn session(&self) -> Session {
        let tcp = TcpStream::connect(&self.addr)
            .await
            .expect("connect to the IMAP server");
        let mut client = async_imap::Client::new(tcp);
        client
            .read_response()
            .await
            .expect("greeting")
            .expect("greeting");
        client
            .login(&self.username, &self.password)
            .await
            .map_err(|(e, _)| e)
            .expect("login")
    }

    /// A new, empty mailbox for one test.
    async fn mailbox(&self, prefix: &str) -> String {
        let name = unique(prefix);
        self.session()
            .await
            .create(&name)
            .await
            .expect("create mailbox");
        name
    }

    async fn put(&self, mailbox: &str, mail: &str) {
        let mut session = self.session().await;
        session
            .append(mailbox, None, None, mail.replace('\n', "\r\n"))
            .await
            .expect("append");
    }

    /// `(messages, unseen)` in a mailbox.
    async fn counts(&self, mailbox: &str) -> (u32, u32) {
        let mut session = self.session().await;
        let status = session
            .status(mailbox, "(MESSAGES UNSEEN)")
            .await
            .expect("status");
        (status.exists, status.unseen.unwrap_or(0))
    }

    /// The subjects of the mails in a mailbox and whether each was seen.
    async fn subjects(&self, mailbox: &str) -> Vec<(String, bool)> {
        let mut session = self.session().await;
        session.select(mailbox).await.expect("select");
        let fetches: Vec<_> = session
            .fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            .await
            .expect("fetch")
            .try_collect()
            .await
            .unwrap_or_default();
        fetches
            .iter()
            .map(|f| {
                let header = f.header().map(String::from_utf8_lossy).unwrap_or_default();
                let subject = header
                    .trim()
                    .trim_start_matches("Subject:")
                    .trim()
                    .to_owned();
                let seen = f
                    .flags()
                    .any(|flag| matches!(flag, async_imap::types::Flag::Seen));
                (subject, seen)
            })
            .collect()
    }
}

fn names() -> Names {
    Names::new("acme", "test", "mail-in", 1)
}

fn mail(subject: &str) -> String {
    format!(
        "From: Ann <ann@example.com>\nTo: orders@example.com\nSubject: {subject}\nMessage-ID: <{subject}@example.com>\n\nHello from {subject}\n"
    )
}

fn subject(message: &Value) -> String {
    message["subject"].as_str().unwrap_or_default().to_owned()
}

/// How many runs saw each subject.
fn runs(recorder: &Recorder, of: &str) -> usize {
    recorder
        .seen()
        .iter()
        .filter(|s| subject(&s.message) == of)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_run_once_then_marked_read() {
    let Some(server) = server() else { return };
    let mailbox = server.mailbox("read").await;
    for s in ["m1", "m2", "m3"] {
        server.put(&mailbox, &mail(s)).await;
    }
    let recorder = Recorder::succeeding();
    let worker = Worker::start(server.source(&mailbox, json!({})), recorder.clone(), 2, 3);
    eventually(LIMIT, "three mails run and marked read", || async {
        recorder.seen().len() >= 3 && server.counts(&mailbox).await == (3, 0)
    })
    .await;
    // New mail is still picked up by later polls.
    server.put(&mailbox, &mail("m4")).await;
    eventually(LIMIT, "the fourth mail run and read", || async {
        runs(&recorder, "m4") == 1 && server.counts(&mailbox).await == (4, 0)
    })
    .await;
    // Several more polls: nothing runs twice.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for s in ["m1", "m2", "m3", "m4"] {
        assert_eq!(runs(&recorder, s), 1, "{s} ran once");
    }
    for seen in recorder.seen() {
        assert_eq!((seen.attempt, seen.redelivered), (1, false));
        assert_eq!(seen.message["mailbox"], json!(mailbox));
        assert!(seen.message["uid"].as_u64().is_some_and(|u| u > 0));
    }
    worker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_move_moves_handled_and_dead_lettered_mail() {
    let Some(server) = server() else { return };
    let inbox = server.mailbox("move-in").await;
    // A non-ASCII name: IMAP spells "erledigt-ü" as "erledigt-&APw-".
    let name = unique("erledigt");
    let done = format!("{name}-&APw-");
    server
        .session()
        .await
        .create(&done)
        .await
        .expect("create mailbox");
    server.put(&inbox, &mail("good")).await;
    server.put(&inbox, &mail("bad")).await;
    let recorder = Recorder::new(|m| {
        if subject(m) == "bad" {
            Act::Fail
        } else {
            Act::Succeed
        }
    });
    let source = server.source(
        &inbox,
        json!({"after": "move", "moveTo": format!("{name}-ü")}),
    );
    let worker = Worker::start(source, recorder.clone(), 2, 2);
    eventually(LIMIT, "both mails moved", || async {
        server.counts(&inbox).await.0 == 0 && server.counts(&done).await.0 == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(runs(&recorder, "good"), 1);
    assert_eq!(runs(&recorder, "bad"), 2, "ran maxDeliveries times");
    let dead = recorder.dead();
    assert_eq!(dead.len(), 1);
    assert_eq!((subject(&dead[0].0), dead[0].2), ("bad".to_owned(), 2));
    let mut moved: Vec<String> = server
        .subjects(&done)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    moved.sort();
    assert_eq!(moved, ["bad", "good"]);
    worker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_html_and_attachments_are_parsed() {
    let Some(server) = server() else { return };
    let mailbox = server.mailbox("parse").await;
    let raw = "From: \"Doe, Jane\" <jane@example.com>
To: Orders <orders@example.com>, ops@example.com
Cc: Boss <boss@example.com>
Subject: =?UTF-8?Q?Bestellung_f=C3=BCr_Ann?=
Date: Tue, 1 Jul 2025 10:00:00 +0200
Message-ID: <order-7@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"outer\"

--outer
Content-Type: multipart/alternative; boundary=\"inner\"

--inner
Content-Type: text/plain; charset=utf-8

Order 7: 2 x A-1
--inner
Content-Type: text/html; charset=utf-8

<p>Order <b>7</b>: 2 x A-1</p>
--inner--
--outer
Content-Type: text/csv; name=\"order-7.csv\"
Content-Disposition: attachment; filename=\"order-7.csv\"
Content-Transfer-Encoding: base64

c2t1LHF0eQpBLTEsMgo=
--outer--
";
    server.put(&mailbox, raw).await;
    let recorder = Recorder::succeeding();
    let worker = Worker::start(server.source(&mailbox, json!({})), recorder.clone(), 1, 3);
    eventually(LIMIT, "the mail run", || async {
        !recorder.seen().is_empty()
    })
    .await;
    let m = recorder.seen()[0].message.clone();
    assert_eq!(m["from"], json!("\"Doe, Jane\" <jane@example.com>"));
    assert_eq!(
        m["to"],
        json!(["Orders <orders@example.com>", "ops@example.com"])
    );
    assert_eq!(m["cc"], json!(["Boss <boss@example.com>"]));
    assert_eq!(m["subject"], json!("Bestellung für Ann"));
    assert_eq!(m["date"], json!("2025-07-01T10:00:00+02:00"));
    assert_eq!(m["messageId"], json!("<order-7@example.com>"));
    assert_eq!(
        m["text"].as_str().map(str::trim_end),
        Some("Order 7: 2 x A-1")
    );
    assert_eq!(
        m["html"].as_str().map(str::trim_end),
        Some("<p>Order <b>7</b>: 2 x A-1</p>")
    );
    assert_eq!(
        m["attachments"],
        json!([{
            "filename": "order-7.csv",
            "contentType": "text/csv",
            "size": 14,
            "content": "c2t1LHF0eQpBLTEsMgo=",
        }])
    );
    assert_eq!(m["mailbox"], json!(mailbox));
    assert_eq!(m["uid"], json!(1));
    worker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_mail_is_retried_dead_lettered_then_marked_read() {
    let Some(server) = server() else { return };
    let mailbox = server.mailbox("fail").await;
    server.put(&mailbox, &mail("broken")).await;
    let recorder = Recorder::new(|_| Act::Fail);
    let worker = Worker::start(server.source(&mailbox, json!({})), recorder.clone(), 2, 3);
    eventually(LIMIT, "the mail dead-lettered and marked read", || async {
        recorder.dead().len() == 1 && server.counts(&mailbox).await == (1, 0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let attempts: Vec<u32> = recorder.seen().iter().map(|s| s.attempt).collect();
    assert_eq!(
        attempts,
        [1, 2, 3],
        "retried in process, never fetched again"
    );
    let (message, error, count) = recorder.dead()[0].clone();
    assert_eq!((subject(&message), count), ("broken".to_owned(), 3));
    assert_eq!(error["code"], json!("thrown"));
    worker.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_of_a_killed_worker_runs_on_the_next_one() {
    let Some(server) = server() else { return };
    let mailbox = server.mailbox("kill").await;
    server.put(&mailbox, &mail("order")).await;
    let hanging = Recorder::new(|_| Act::Hang);
    let first = Worker::start(server.source(&mailbox, json!({})), hanging.clone(), 1, 3);
    eventually(LIMIT, "the first worker holds the mail", || async {
        !hanging.seen().is_empty()
    })
    .await;
    first.kill();
    assert_eq!(
        server.counts(&mailbox).await,
        (1, 1),
        "still unseen after the worker died"
    );
    let recorder = Recorder::succeeding();
    let second = Worker::start(server.source(&mailbox, json!({})), recorder.clone(), 1, 3);
    eventually(
        LIMIT,
        "the next worker ran the mail and marked it read",
        || async { runs(&recorder, "order") == 1 && server.counts(&mailbox).await == (1, 0) },
    )
    .await;
    second.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_in_hand_is_not_handed_out_again() {
    let Some(server) = server() else { return };
    let mailbox = server.mailbox("held").await;
    server.put(&mailbox, &mail("slow")).await;
    let recorder = Recorder::new(|m| {
        if subject(m) == "slow" {
            Act::Hang
        } else {
            Act::Succeed
        }
    });
    let worker = Worker::start(server.source(&mailbox, json!({})), recorder.clone(), 3, 3);
    eventually(LIMIT, "the slow mail started", || async {
        runs(&recorder, "slow") == 1
    })
    .await;
    server.put(&mailbox, &mail("quick")).await;
    eventually(LIMIT, "the quick mail run and read", || async {
        runs(&recorder, "quick") == 1 && server.counts(&mailbox).await == (2, 1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(runs(&recorder, "slow"), 1, "polls skip the mail in hand");
    worker.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuming_goes_on_after_the_connection_is_lost() {
    let Some(server) = server() else { return };
    let mailbox = server.mailbox("lost").await;
    let proxy = Proxy::start(&server.addr).await;
    let recorder = Recorder::succeeding();
    let source = server.source_at(&proxy.addr.to_string(), &mailbox, json!({}));
    let worker = Worker::start(source, recorder.clone(), 2, 3);
    server.put(&mailbox, &mail("before")).await;
    eventually(LIMIT, "the first mail run", || async {
        runs(&recorder, "before") == 1 && server.counts(&mailbox).await == (1, 0)
    })
    .await;
    proxy.block();
    server.put(&mailbox, &mail("during")).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(runs(&recorder, "during"), 0, "the server is out of reach");
    proxy.open();
    server.put(&mailbox, &mail("after")).await;
    eventually(LIMIT, "the mails sent meanwhile run and read", || async {
        runs(&recorder, "during") == 1
            && runs(&recorder, "after") == 1
            && server.counts(&mailbox).await == (3, 0)
    })
    .await;
    assert_eq!(runs(&recorder, "before"), 1);
    worker.stop();
}

#[tokio::test]
async fn subscribing_says_what_is_wrong() {
    let Some(server) = server() else { return };
    let missing = server.source("no-such-mailbox-here", json!({}));
    let Err(TriggerError::Connection(e)) = missing.subscribe(1).await else {
        panic!("a missing mailbox must fail");
    };
    assert!(e.contains("no-such-mailbox-here"), "{e}");
    let mailbox = server.mailbox("errors").await;
    let moving = server.source(
        &mailbox,
        json!({"after": "move", "moveTo": "no-such-target"}),
    );
    let Err(TriggerError::Connection(e)) = moving.subscribe(1).await else {
        panic!("a missing moveTo mailbox must fail");
    };
    assert!(e.contains("moveTo") && e.contains("no-such-target"), "{e}");

    let trigger: Trigger = serde_json::from_value(json!({
        "type": "email", "url": format!("imap://{}", server.addr), "account": "mail", "mailbox": mailbox,
    }))
    .expect("trigger");
    let wrong = json!({"username": server.username, "password": "not-the-password"});
    let source = sluice_triggers::source(&trigger, wrong.as_object(), &names()).expect("source");
    let Err(TriggerError::Connection(e)) = source.subscribe(1).await else {
        panic!("a wrong password must fail");
    };
    assert!(e.contains("refused the login"), "{e}");
    assert!(!e.contains("not-the-password"), "{e}");
}

#[tokio::test]
async fn the_url_may_come_from_the_account() {
    let Some(server) = server() else { return };
    let mailbox = server.mailbox("account-url").await;
    let trigger: Trigger =
        serde_json::from_value(json!({"type": "email", "account": "mail", "mailbox": mailbox}))
            .expect("trigger");
    let mut account = server.account();
    account.insert("url".into(), json!(format!("imap://{}", server.addr)));
    let source = sluice_triggers::source(&trigger, Some(&account), &names()).expect("source");
    assert_eq!(
        source.describe(),
        format!("imap://{}/{mailbox}", server.addr)
    );
    assert!(source.subscribe(1).await.is_ok());
}

#[test]
fn bad_settings_name_the_field() {
    let account = json!({"username": "u", "password": "secret-pw"});
    let config_error = |trigger: Value, account: Option<&Value>| -> String {
        let trigger: Trigger = serde_json::from_value(trigger).expect("trigger");
        match sluice_triggers::source(&trigger, account.and_then(Value::as_object), &names()) {
            Err(TriggerError::Config(e)) => e,
            Err(other) => panic!("not a config error: {other}"),
            Ok(_) => panic!("accepted"),
        }
    };
    let url = "imap://127.0.0.1:10143";
    let cases = [
        (
            json!({"type": "email", "account": "mail"}),
            Some(&account),
            "trigger.url",
        ),
        (
            json!({"type": "email", "url": "pop3://h", "account": "mail"}),
            Some(&account),
            "trigger.url",
        ),
        (
            json!({"type": "email", "url": "imap://u:pw@h", "account": "mail"}),
            Some(&account),
            "credentials belong in the account",
        ),
        (json!({"type": "email", "url": url}), None, "username"),
        (
            json!({"type": "email", "url": url, "account": "mail"}),
            Some(&json!({"username": "u"})),
            "password",
        ),
        (
            json!({"type": "email", "url": url, "account": "mail", "after": "move"}),
            Some(&account),
            "trigger.moveTo is missing",
        ),
        (
            json!({"type": "email", "url": url, "account": "mail", "moveTo": "Done"}),
            Some(&account),
            "trigger.moveTo is only used with `after: move`",
        ),
        (
            json!({"type": "email", "url": url, "account": "mail", "after": "move", "moveTo": "INBOX"}),
            Some(&account),
            "trigger.moveTo",
        ),
        (
            json!({"type": "email", "url": url, "account": "mail", "mailbox": ""}),
            Some(&account),
            "trigger.mailbox",
        ),
        (
            json!({"type": "email", "url": url, "account": "mail", "pollInterval": "0s"}),
            Some(&account),
            "trigger.pollInterval",
        ),
        (
            json!({"type": "email", "url": url, "account": "mail"}),
            Some(&json!({"username": "u", "password": 5})),
            "password",
        ),
    ];
    for (trigger, account, expected) in cases {
        let e = config_error(trigger.clone(), account);
        assert!(
            e.contains(expected),
            "{trigger}: '{e}' should mention '{expected}'"
        );
        assert!(!e.contains("secret-pw"), "{e}");
    }
    // describe() names the server and mailbox, never the login.
    let trigger: Trigger = serde_json::from_value(
        json!({"type": "email", "url": "imaps://mail.example.com", "account": "mail"}),
    )
    .expect("trigger");
    let source = sluice_triggers::source(&trigger, account.as_object(), &names()).expect("source");
    assert_eq!(source.describe(), "imaps://mail.example.com:993/INBOX");
}
