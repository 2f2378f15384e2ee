//! `object-storage` on both backends: the local one against a real
//! directory (always), the S3 one against a real S3-compatible server from
//! `SLUICE_TEST_S3_URL` (e.g. `http://127.0.0.1:5055` for `moto_server -p
//! 5055`; those tests are skipped when it is not set). Each S3 test makes
//! its own bucket with the step's `create-bucket`.
//!
//! The local backend reads `SLUICE_OBJECT_ROOT` once per process, and
//! setting a variable needs `unsafe` (forbidden in this workspace), so each
//! local test runs itself again in a child process of this test binary,
//! started with the variable set to a fresh temporary directory: the parent
//! only checks that the child passed.

#![cfg(feature = "object-storage")]
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};
use sluice_engine::{Execution, FlowError, LoadError, Plan, RunOptions, load_str};
use sluice_spec::Format;

const ROOT_VARIABLE: &str = "SLUICE_OBJECT_ROOT";
/// Set in the child processes, which run the local tests for real.
const CHILD_VARIABLE: &str = "SLUICE_OBJECT_TEST_CHILD";
/// The secret of the test account: it must never show in a trace or log.
const SECRET: &str = "sluice-test-secret-Zq8xW2";

/// A pipeline of one `object-storage` step with `fields` (JSON is YAML too).
fn load(fields: &Value) -> Result<Plan, LoadError> {
    let mut step = json!({"type": "object-storage", "id": "store"});
    step.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let doc = json!({"name": "t", "steps": [step]});
    load_str(
        "t.yaml",
        &doc.to_string(),
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    )
}

fn plan(fields: &Value) -> Plan {
    load(fields).unwrap_or_else(|e| panic!("{e}\n{fields}"))
}

/// Runs one step as realm `realm`, environment `environment`, with the
/// S3 test account (when `s3` names a server), tracing payloads.
async fn run(
    realm: &str,
    environment: &str,
    s3: Option<&str>,
    fields: &Value,
    input: Value,
) -> Execution {
    let accounts = match s3 {
        Some(url) => json!({"s3": {
            "type": "generic",
            "accessKeyId": "AKIASLUICETEST",
            "secretAccessKey": SECRET,
            "endpoint": url,
        }}),
        None => json!({}),
    };
    let options = RunOptions {
        realm: realm.into(),
        environment: environment.into(),
        accounts: Arc::new(accounts),
        trace_payloads: true,
        ..RunOptions::default()
    };
    plan(fields).execute(input, options).await
}

// ---------------------------------------------------------------- local

/// In a child process: the root its steps use (set before any step ran).
/// In the test process: runs `test` again in a child with a fresh root,
/// checks that it passed, and gives `None` (the caller returns).
fn root(test: &str) -> Option<PathBuf> {
    if std::env::var_os(CHILD_VARIABLE).is_some() {
        return std::env::var_os(ROOT_VARIABLE).map(PathBuf::from);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "sluice-objects-{test}-{}-{nanos}",
        std::process::id()
    ));
    let root = dir.join("root");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(ROOT_VARIABLE, &root)
        .env(CHILD_VARIABLE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} failed in its child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    None
}

/// A local step of realm `acme`, environment `test`, in bucket `media`.
fn local(fields: Value) -> Value {
    let mut all = json!({"backend": "local", "bucket": "media"});
    all.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    all
}

async fn local_exec(fields: Value) -> Result<Value, FlowError> {
    run("acme", "test", None, &local(fields), json!({}))
        .await
        .into_result()
}

async fn ok(fields: Value) -> Value {
    local_exec(fields.clone())
        .await
        .unwrap_or_else(|e| panic!("{fields}: {}", e.to_value()))
}

async fn err(fields: Value) -> FlowError {
    match local_exec(fields.clone()).await {
        Ok(out) => panic!("{fields} should fail, gave {out}"),
        Err(e) => e,
    }
}

/// Checks an error's code and status, that it names `names`, and that it
/// does not show where the root is.
fn check(e: &FlowError, code: &str, status: u16, names: &str, root: &Path) {
    assert_eq!((e.code.as_ref(), e.status), (code, status), "{}", e.message);
    assert!(e.message.contains(names), "{names}: {}", e.message);
    assert!(
        !e.message.contains(root.to_string_lossy().as_ref()),
        "{}",
        e.message
    );
}

fn keys(listed: &Value) -> Vec<&str> {
    listed["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn local_put_and_get_json_text_and_binary() {
    let Some(root) = root("local_put_and_get_json_text_and_binary") else {
        return;
    };
    let bucket = root.join("acme/test/media");
    let doc = json!({"id": 7, "lines": [{"sku": "A"}], "note": null});
    let out = ok(json!({"operation": "put", "key": "orders/7.json", "content": doc})).await;
    assert_eq!(out["key"], "orders/7.json");
    assert_eq!(out["contentType"], "application/json");
    assert_eq!(out["size"], doc.to_string().len());
    // The etag is the MD5 of the content, as S3 gives it for a plain put.
    assert_eq!(out["etag"].as_str().unwrap().len(), 32);
    let on_disk = std::fs::read_to_string(bucket.join("orders/7.json")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&on_disk).unwrap(), doc);

    let got = ok(json!({"operation": "get", "key": "orders/7.json"})).await;
    assert_eq!(got["body"], doc);
    assert_eq!(got["encoding"], "json");
    assert_eq!(got["contentType"], "application/json");
    assert_eq!(got["etag"], out["etag"]);
    assert_eq!(got["size"], out["size"]);
    assert!(got["lastModified"].as_str().unwrap().ends_with('Z'));

    // Text: stored as it is, read back as a string.
    ok(json!({"operation": "put", "key": "notes/a.txt", "content": "héllo"})).await;
    let got = ok(json!({"operation": "get", "key": "notes/a.txt"})).await;
    assert_eq!(
        (&got["body"], &got["encoding"], &got["contentType"]),
        (
            &json!("héllo"),
            &json!("text"),
            &json!("text/plain; charset=utf-8")
        )
    );
    // JSON text under a text type stays text; `encoding: json` parses it.
    ok(json!({"operation": "put", "key": "raw", "content": "{\"a\":1}"})).await;
    assert_eq!(
        ok(json!({"operation": "get", "key": "raw"})).await["body"],
        json!("{\"a\":1}")
    );
    assert_eq!(
        ok(json!({"operation": "get", "key": "raw", "encoding": "json"})).await["body"],
        json!({"a": 1})
    );
    let e = err(json!({"operation": "get", "key": "notes/a.txt", "encoding": "json"})).await;
    check(
        &e,
        "object-storage",
        422,
        "'notes/a.txt' is not JSON",
        &root,
    );

    // Bytes through base64; not UTF-8, so base64 comes back by itself too.
    let out = ok(json!({"operation": "put", "key": "bin/b.dat", "content": "AAEC/w==", "encoding": "base64"})).await;
    assert_eq!(
        (&out["size"], &out["contentType"]),
        (&json!(4), &json!("application/octet-stream"))
    );
    assert_eq!(
        std::fs::read(bucket.join("bin/b.dat")).unwrap(),
        vec![0u8, 1, 2, 255]
    );
    let got = ok(json!({"operation": "get", "key": "bin/b.dat"})).await;
    assert_eq!(
        (&got["body"], &got["encoding"]),
        (&json!("AAEC/w=="), &json!("base64"))
    );
    let got = ok(json!({"operation": "get", "key": "notes/a.txt", "encoding": "base64"})).await;
    assert_eq!(got["body"], "aMOpbGxv");
    let e = err(json!({"operation": "get", "key": "bin/b.dat", "encoding": "text"})).await;
    check(&e, "object-storage", 422, "not UTF-8", &root);
    let e = err(
        json!({"operation": "put", "key": "x", "content": "not base64!", "encoding": "base64"}),
    )
    .await;
    check(&e, "object-storage", 400, "not base64", &root);

    // A content type of one's own, and expressions in key and content.
    let out = run(
        "acme",
        "test",
        None,
        &local(json!({
            "operation": "put",
            "key": "in/{{ message.id }}.csv",
            "content": "{{ message.csv }}",
            "contentType": "text/csv",
        })),
        json!({"id": 9, "csv": "a,b\n1,2\n"}),
    )
    .await
    .into_result()
    .unwrap();
    assert_eq!(out["key"], "in/9.csv");
    let head = ok(json!({"operation": "head", "key": "in/9.csv"})).await;
    assert_eq!(head["exists"], true);
    assert_eq!(head["contentType"], "text/csv");
    assert_eq!(head["size"], 8);
    assert!(head.get("body").is_none());
    assert_eq!(
        ok(json!({"operation": "head", "key": "in/10.csv"})).await,
        json!({"key": "in/10.csv", "exists": false})
    );

    // Putting again replaces.
    ok(json!({"operation": "put", "key": "notes/a.txt", "content": "x"})).await;
    assert_eq!(
        ok(json!({"operation": "get", "key": "notes/a.txt"})).await["body"],
        "x"
    );
    // Only objects were left in the bucket (the temporary files are gone).
    assert_eq!(
        std::fs::read_dir(root.join("acme/test/.object-tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn local_list_with_prefix_delimiter_and_pages() {
    let Some(_root) = root("local_list_with_prefix_delimiter_and_pages") else {
        return;
    };
    // Nothing put yet: an empty list, not an error.
    assert_eq!(
        ok(json!({"operation": "list"})).await,
        json!({"objects": [], "prefixes": [], "nextToken": null})
    );
    for key in [
        "in/b.csv",
        "in/a.csv",
        "in/c.txt",
        "in/sub/d.csv",
        "in/sub/deeper/e.csv",
        "out/x.json",
        "top.txt",
    ] {
        ok(json!({"operation": "put", "key": key, "content": key})).await;
    }
    let all = ok(json!({"operation": "list"})).await;
    assert_eq!(
        keys(&all),
        [
            "in/a.csv",
            "in/b.csv",
            "in/c.txt",
            "in/sub/d.csv",
            "in/sub/deeper/e.csv",
            "out/x.json",
            "top.txt"
        ]
    );
    let first = &all["objects"][0];
    assert_eq!(first["size"], 8);
    assert_eq!(first["etag"].as_str().unwrap().len(), 32);
    assert!(first["lastModified"].as_str().unwrap().ends_with('Z'));
    assert!(first.get("contentType").is_none());

    let prefixed = ok(json!({"operation": "list", "prefix": "in/s"})).await;
    assert_eq!(keys(&prefixed), ["in/sub/d.csv", "in/sub/deeper/e.csv"]);
    let dirs = ok(json!({"operation": "list", "prefix": "in/", "delimiter": "/"})).await;
    assert_eq!(keys(&dirs), ["in/a.csv", "in/b.csv", "in/c.txt"]);
    assert_eq!(dirs["prefixes"], json!(["in/sub/"]));
    let top = ok(json!({"operation": "list", "delimiter": "/"})).await;
    assert_eq!(keys(&top), ["top.txt"]);
    assert_eq!(top["prefixes"], json!(["in/", "out/"]));

    // Pages of two, each going on from the last one's nextToken.
    let mut seen = Vec::new();
    let mut token = Value::Null;
    let mut pages = 0;
    loop {
        let page = run(
            "acme",
            "test",
            None,
            &local(json!({"operation": "list", "prefix": "in/", "maxKeys": 2, "continuationToken": "{{ message.token }}"})),
            json!({"token": token}),
        )
        .await
        .into_result()
        .unwrap();
        pages += 1;
        seen.extend(keys(&page).into_iter().map(str::to_owned));
        token = page["nextToken"].clone();
        if token.is_null() {
            break;
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        [
            "in/a.csv",
            "in/b.csv",
            "in/c.txt",
            "in/sub/d.csv",
            "in/sub/deeper/e.csv"
        ]
    );
    // Prefixes count towards maxKeys like keys.
    let page = ok(json!({"operation": "list", "delimiter": "/", "maxKeys": 1})).await;
    assert_eq!(page["prefixes"], json!(["in/"]));
    assert!(page["nextToken"].is_string());
    let e = err(json!({"operation": "list", "continuationToken": "%%%"})).await;
    assert!(e.message.contains("`continuationToken`"), "{}", e.message);
}

#[tokio::test]
async fn local_delete_missing_objects_and_isolation() {
    let Some(root) = root("local_delete_missing_objects_and_isolation") else {
        return;
    };
    ok(json!({"operation": "put", "key": "a/b/c.txt", "content": "c"})).await;
    ok(json!({"operation": "put", "key": "a/keep.txt", "content": "k"})).await;
    // A missing object: code not_found, status 404.
    let e = err(json!({"operation": "get", "key": "a/b/nothing.txt"})).await;
    check(
        &e,
        "not_found",
        404,
        "there is no object 'a/b/nothing.txt' in bucket 'media'",
        &root,
    );
    // Nor is a "directory" an object.
    let e = err(json!({"operation": "get", "key": "a/b"})).await;
    check(&e, "not_found", 404, "'a/b'", &root);
    // With failOnError: false the pipeline goes on with the error.
    let out = ok(json!({"operation": "get", "key": "gone", "failOnError": false})).await;
    assert_eq!(out["success"], false);
    assert_eq!(
        (&out["error"]["code"], &out["error"]["status"]),
        (&json!("not_found"), &json!(404))
    );

    assert_eq!(
        ok(json!({"operation": "delete", "key": "a/b/c.txt"})).await,
        json!({"deleted": "a/b/c.txt"})
    );
    // Directories left empty go; others stay.
    assert!(!root.join("acme/test/media/a/b").exists());
    assert!(root.join("acme/test/media/a/keep.txt").is_file());
    assert!(!root.join("acme/test/.object-meta/media/a/b").exists());
    // Deleting what is not there is no error (as on S3).
    assert_eq!(
        ok(json!({"operation": "delete", "key": "a/b/c.txt"})).await,
        json!({"deleted": "a/b/c.txt"})
    );
    let e = err(json!({"operation": "get", "key": "a/b/c.txt"})).await;
    assert_eq!(e.code, "not_found");

    // A key cannot be an object and the start of other keys on disk.
    let e = err(json!({"operation": "put", "key": "a/keep.txt/x", "content": "x"})).await;
    check(&e, "object-storage", 409, "'a/keep.txt/x'", &root);
    let e = err(json!({"operation": "put", "key": "a", "content": "x"})).await;
    check(&e, "object-storage", 409, "'a/'", &root);

    // Each realm and environment has its own buckets.
    let put = local(
        json!({"operation": "put", "key": "shared.txt", "content": "{{ metadata.pipeline.realm }}"}),
    );
    for (realm, environment) in [("acme", "test"), ("globex", "test"), ("acme", "prod")] {
        run(realm, environment, None, &put, json!({}))
            .await
            .into_result()
            .unwrap();
    }
    let get = local(json!({"operation": "get", "key": "shared.txt"}));
    let out = run("globex", "test", None, &get, json!({}))
        .await
        .into_result()
        .unwrap();
    assert_eq!(out["body"], "globex");
    assert!(root.join("globex/test/media/shared.txt").is_file());
    let e = run("globex", "prod", None, &get, json!({}))
        .await
        .into_result()
        .unwrap_err();
    assert_eq!(e.code, "not_found");

    // create-bucket makes the directory; again is no error.
    for _ in 0..2 {
        assert_eq!(
            run(
                "acme",
                "test",
                None,
                &json!({"backend": "local", "operation": "create-bucket", "bucket": "fresh"}),
                json!({})
            )
            .await
            .into_result()
            .unwrap(),
            json!({"bucket": "fresh"})
        );
    }
    assert!(root.join("acme/test/fresh").is_dir());
}

#[tokio::test]
async fn local_keys_that_escape_are_refused() {
    let Some(root) = root("local_keys_that_escape_are_refused") else {
        return;
    };
    let outside = root.join("outside.txt");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(&outside, "secret").unwrap();
    for key in [
        "../../../outside.txt",
        "a/../../x",
        "/etc/passwd",
        "a\u{0}b",
        "a//b",
        "a/",
        ".",
        "",
    ] {
        let e = run(
            "acme",
            "test",
            None,
            &local(json!({"operation": "get", "key": "{{ message.key }}"})),
            json!({"key": key}),
        )
        .await
        .into_result()
        .unwrap_err();
        check(&e, "object-storage", 400, "`key`", &root);
        let e = run(
            "acme",
            "test",
            None,
            &local(json!({"operation": "put", "key": "{{ message.key }}", "content": "x"})),
            json!({"key": key}),
        )
        .await
        .into_result()
        .unwrap_err();
        check(&e, "object-storage", 400, "`key`", &root);
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret");
    // A bucket from an expression is checked too.
    let e = run(
        "acme",
        "test",
        None,
        &json!({"backend": "local", "operation": "get", "bucket": "{{ message.b }}", "key": "k"}),
        json!({"b": ".."}),
    )
    .await
    .into_result()
    .unwrap_err();
    check(&e, "object-storage", 400, "`bucket` '..'", &root);

    // A link put in the bucket that leads outside is not followed.
    ok(json!({"operation": "put", "key": "in/x.txt", "content": "x"})).await;
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&root, root.join("acme/test/media/in/link")).unwrap();
        let e = err(json!({"operation": "get", "key": "in/link/outside.txt"})).await;
        check(&e, "object-storage", 400, "link", &root);
        let e = err(json!({"operation": "put", "key": "in/link/new.txt", "content": "x"})).await;
        check(&e, "object-storage", 400, "link", &root);
        let e = err(json!({"operation": "delete", "key": "in/link/outside.txt"})).await;
        check(&e, "object-storage", 400, "link", &root);
        assert!(outside.is_file());
        assert!(!root.join("new.txt").exists());
        assert_eq!(keys(&ok(json!({"operation": "list"})).await), ["in/x.txt"]);
    }
}

#[test]
fn bad_configs_are_refused_at_load() {
    // Loading runs no step: no child process needed.
    let problems = |fields: Value| -> Vec<(String, String)> {
        match load(&fields) {
            Ok(_) => panic!("{fields} should not load"),
            Err(LoadError::Invalid(p)) => p
                .items
                .iter()
                .map(|i| (i.path.to_string(), i.message.clone()))
                .collect(),
            Err(other) => panic!("{other}"),
        }
    };
    for (fields, at, says) in [
        (
            json!({"operation": "get", "bucket": "b1b", "key": "k"}),
            "steps[0].account",
            "needs `account`",
        ),
        (
            json!({"backend": "local", "operation": "get", "bucket": "b1b", "key": "k", "endpoint": "http://x"}),
            "steps[0].endpoint",
            "s3 backend",
        ),
        (
            json!({"backend": "local", "operation": "get", "bucket": "b1b"}),
            "steps[0].key",
            "needs `key`",
        ),
        (
            json!({"backend": "local", "operation": "put", "bucket": "b1b", "key": "k"}),
            "steps[0].content",
            "needs `content`",
        ),
        (
            json!({"backend": "local", "operation": "get", "bucket": "b1b", "key": "k", "prefix": "p"}),
            "steps[0].prefix",
            "for operation list",
        ),
        (
            json!({"backend": "local", "operation": "list", "bucket": "b1b", "maxKeys": 0}),
            "steps[0].maxKeys",
            "1 to 1000",
        ),
        (
            json!({"backend": "local", "operation": "list", "bucket": "Bad_Bucket"}),
            "steps[0].bucket",
            "not a bucket name",
        ),
        (
            json!({"backend": "local", "operation": "get", "bucket": "b1b", "key": "../etc/passwd"}),
            "steps[0].key",
            "'..'",
        ),
        (
            json!({"backend": "local", "operation": "get", "bucket": "b1b", "key": "/abs"}),
            "steps[0].key",
            "absolute",
        ),
        (
            json!({"account": "s3", "operation": "get", "bucket": "b1b", "key": "k", "endpoint": "ftp://x"}),
            "steps[0].endpoint",
            "http or https",
        ),
        (
            json!({"backend": "local", "operation": "put", "bucket": "b1b", "key": "k", "content": {"a": 1}, "encoding": "base64"}),
            "steps[0].content",
            "base64",
        ),
        (
            json!({"backend": "local", "operation": "get", "bucket": "b1b", "key": "k", "secretAccessKey": "x"}),
            "steps[0]",
            "secretAccessKey",
        ),
    ] {
        let found = problems(fields.clone());
        assert!(
            found
                .iter()
                .any(|(path, message)| path == at && message.contains(says)),
            "{fields}: wanted {at}: …{says}…, got {found:?}"
        );
    }
    // Keys with expressions are checked when they run; literal S3 keys may
    // have what a path could not.
    load(
        &json!({"backend": "local", "operation": "get", "bucket": "b1b", "key": "{{ message.k }}"}),
    )
    .unwrap();
    load(&json!({"account": "s3", "operation": "get", "bucket": "b1b", "key": "a//b/"})).unwrap();
}

// ---------------------------------------------------------------- s3

fn server() -> Option<String> {
    match std::env::var("SLUICE_TEST_S3_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_owned()),
        _ => {
            eprintln!("skipped: set SLUICE_TEST_S3_URL");
            None
        }
    }
}

/// A bucket of this test run.
fn bucket(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("sluice-{tag}-{}-{nanos}", std::process::id())
}

fn s3(bucket: &str, fields: Value) -> Value {
    let mut all = json!({"account": "s3", "bucket": bucket});
    all.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    all
}

async fn s3_exec(url: &str, bucket: &str, fields: Value, input: Value) -> Execution {
    run("acme", "test", Some(url), &s3(bucket, fields), input).await
}

async fn s3_ok(url: &str, bucket: &str, fields: Value) -> Value {
    s3_exec(url, bucket, fields.clone(), json!({}))
        .await
        .into_result()
        .unwrap_or_else(|e| panic!("{fields}: {}", e.to_value()))
}

async fn s3_err(url: &str, bucket: &str, fields: Value) -> FlowError {
    match s3_exec(url, bucket, fields.clone(), json!({}))
        .await
        .into_result()
    {
        Ok(out) => panic!("{fields} should fail, gave {out}"),
        Err(e) => e,
    }
}

/// Checks that the secret shows nowhere in what an execution keeps.
fn no_secret(execution: &Execution) {
    let kept = format!(
        "{} {} {:?}",
        execution.masked_trace().to_json(),
        serde_json::to_string(&execution.logs).unwrap(),
        execution.result
    );
    assert!(!kept.contains(SECRET), "{kept}");
}

async fn new_bucket(url: &str, tag: &str) -> String {
    let name = bucket(tag);
    let out = s3_ok(url, &name, json!({"operation": "create-bucket"})).await;
    assert_eq!(out, json!({"bucket": name}));
    name
}

#[tokio::test]
async fn s3_put_and_get_json_text_and_binary() {
    let Some(url) = server() else { return };
    let b = new_bucket(&url, "rt").await;
    // Making it again is no error.
    s3_ok(&url, &b, json!({"operation": "create-bucket"})).await;

    let doc = json!({"id": 7, "lines": [{"sku": "A"}], "note": null});
    let out = s3_ok(
        &url,
        &b,
        json!({"operation": "put", "key": "orders/7.json", "content": doc}),
    )
    .await;
    assert_eq!(out["key"], "orders/7.json");
    assert_eq!(out["contentType"], "application/json");
    assert_eq!(out["size"], doc.to_string().len());
    let etag = out["etag"].as_str().unwrap().to_owned();
    assert!(!etag.contains('"') && !etag.is_empty(), "{etag}");

    let got = s3_ok(
        &url,
        &b,
        json!({"operation": "get", "key": "orders/7.json"}),
    )
    .await;
    assert_eq!(got["body"], doc);
    assert_eq!(got["encoding"], "json");
    assert_eq!(got["etag"], etag.as_str());
    assert_eq!(got["size"], out["size"]);
    assert!(
        got["contentType"]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    let modified = got["lastModified"].as_str().unwrap();
    assert!(
        modified.len() == 20 && modified.ends_with('Z'),
        "{modified}"
    );

    // Text, with characters a URL must escape in the key.
    let key = "notes/día 1 + more&more.txt";
    s3_ok(
        &url,
        &b,
        json!({"operation": "put", "key": key, "content": "héllo"}),
    )
    .await;
    let got = s3_ok(&url, &b, json!({"operation": "get", "key": key})).await;
    assert_eq!(
        (&got["body"], &got["encoding"], &got["key"]),
        (&json!("héllo"), &json!("text"), &json!(key))
    );

    // Binary through base64.
    s3_ok(&url, &b, json!({"operation": "put", "key": "bin/b.dat", "content": "AAEC/w==", "encoding": "base64"})).await;
    let got = s3_ok(&url, &b, json!({"operation": "get", "key": "bin/b.dat"})).await;
    assert_eq!(
        (&got["body"], &got["encoding"], &got["size"]),
        (&json!("AAEC/w=="), &json!("base64"), &json!(4))
    );
    let e = s3_err(
        &url,
        &b,
        json!({"operation": "get", "key": "bin/b.dat", "encoding": "text"}),
    )
    .await;
    assert_eq!((e.code.as_ref(), e.status), ("object-storage", 422));
    let e = s3_err(
        &url,
        &b,
        json!({"operation": "get", "key": "bin/b.dat", "maxSize": 3}),
    )
    .await;
    assert_eq!(e.status, 413, "{}", e.message);

    // head.
    let head = s3_ok(
        &url,
        &b,
        json!({"operation": "head", "key": "orders/7.json"}),
    )
    .await;
    assert_eq!(head["exists"], true);
    assert_eq!(head["etag"], etag.as_str());
    assert_eq!(head["size"], out["size"]);
    assert_eq!(
        s3_ok(
            &url,
            &b,
            json!({"operation": "head", "key": "orders/8.json"})
        )
        .await,
        json!({"key": "orders/8.json", "exists": false})
    );
}

#[tokio::test]
async fn s3_list_with_prefix_delimiter_and_pages() {
    let Some(url) = server() else { return };
    let b = new_bucket(&url, "list").await;
    let empty = s3_ok(&url, &b, json!({"operation": "list"})).await;
    assert_eq!(
        empty,
        json!({"objects": [], "prefixes": [], "nextToken": null})
    );
    for key in [
        "in/b.csv",
        "in/a.csv",
        "in/c.txt",
        "in/sub/d.csv",
        "in/sub/deeper/e.csv",
        "out/x.json",
        "top.txt",
    ] {
        s3_ok(
            &url,
            &b,
            json!({"operation": "put", "key": key, "content": key}),
        )
        .await;
    }
    let prefixed = s3_ok(&url, &b, json!({"operation": "list", "prefix": "in/s"})).await;
    assert_eq!(keys(&prefixed), ["in/sub/d.csv", "in/sub/deeper/e.csv"]);
    let first = &prefixed["objects"][0];
    assert_eq!(first["size"], "in/sub/d.csv".len());
    assert!(first["etag"].is_string());
    assert!(first["lastModified"].as_str().unwrap().ends_with('Z'));
    let dirs = s3_ok(
        &url,
        &b,
        json!({"operation": "list", "prefix": "in/", "delimiter": "/"}),
    )
    .await;
    assert_eq!(keys(&dirs), ["in/a.csv", "in/b.csv", "in/c.txt"]);
    assert_eq!(dirs["prefixes"], json!(["in/sub/"]));

    let mut seen = Vec::new();
    let mut token = Value::Null;
    let mut pages = 0;
    loop {
        let page = s3_exec(
            &url,
            &b,
            json!({"operation": "list", "prefix": "in/", "maxKeys": 2, "continuationToken": "{{ message.token }}"}),
            json!({"token": token}),
        )
        .await
        .into_result()
        .unwrap();
        pages += 1;
        seen.extend(keys(&page).into_iter().map(str::to_owned));
        token = page["nextToken"].clone();
        if token.is_null() {
            break;
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        [
            "in/a.csv",
            "in/b.csv",
            "in/c.txt",
            "in/sub/d.csv",
            "in/sub/deeper/e.csv"
        ]
    );
}

#[tokio::test]
async fn s3_delete_and_missing_objects() {
    let Some(url) = server() else { return };
    let b = new_bucket(&url, "del").await;
    s3_ok(
        &url,
        &b,
        json!({"operation": "put", "key": "a/b.txt", "content": "b"}),
    )
    .await;
    assert_eq!(
        s3_ok(&url, &b, json!({"operation": "delete", "key": "a/b.txt"})).await,
        json!({"deleted": "a/b.txt"})
    );
    assert_eq!(
        s3_ok(&url, &b, json!({"operation": "delete", "key": "a/b.txt"})).await,
        json!({"deleted": "a/b.txt"})
    );
    let e = s3_err(&url, &b, json!({"operation": "get", "key": "a/b.txt"})).await;
    assert_eq!(
        (e.code.as_ref(), e.status),
        ("not_found", 404),
        "{}",
        e.message
    );
    assert!(e.message.contains("'a/b.txt'"), "{}", e.message);
    assert_eq!(e.details.as_ref().unwrap()["s3Code"], "NoSuchKey");
    assert_eq!(
        s3_ok(&url, &b, json!({"operation": "list"})).await["objects"],
        json!([])
    );
}

#[tokio::test]
async fn s3_errors_carry_status_and_code_and_no_secret() {
    let Some(url) = server() else { return };
    let missing = bucket("missing");
    // A bucket that does not exist: S3's status and code, in the error and the trace.
    for fields in [
        json!({"operation": "get", "key": "k"}),
        json!({"operation": "put", "key": "k", "content": "x"}),
        json!({"operation": "list"}),
    ] {
        let execution = s3_exec(&url, &missing, fields.clone(), json!({})).await;
        no_secret(&execution);
        let e = execution.result.clone().unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.status),
            ("object-storage", 404),
            "{fields}: {}",
            e.message
        );
        assert!(e.message.contains("NoSuchBucket"), "{}", e.message);
        assert_eq!(e.details.as_ref().unwrap()["s3Code"], "NoSuchBucket");
        let trace = execution.trace();
        let traced = &trace[0];
        let error = traced.error.as_ref().unwrap();
        assert_eq!(error["status"], 404);
        assert_eq!(error["details"]["s3Code"], "NoSuchBucket");
        assert_eq!(error["step"], "store");
    }

    // A successful run keeps no secret either, with payloads traced.
    let b = new_bucket(&url, "secret").await;
    let execution = s3_exec(
        &url,
        &b,
        json!({"operation": "put", "key": "k", "content": "{{ message }}"}),
        json!({"a": 1}),
    )
    .await;
    assert!(execution.result.is_ok());
    no_secret(&execution);

    // onException sees the missing object as not_found.
    let yaml = format!(
        r#"
name: t
steps:
  - id: fetch
    type: object-storage
    account: s3
    bucket: {b}
    key: nothing-here
    operation: get
onException:
  - type: json
    value: {{ caught: "{{{{ error.code }}}}", status: "{{{{ error.status }}}}" }}
"#
    );
    let handled = load_str(
        "t.yaml",
        &yaml,
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        accounts: Arc::new(
            json!({"s3": {"accessKeyId": "AKIASLUICETEST", "secretAccessKey": SECRET, "endpoint": url}}),
        ),
        ..RunOptions::default()
    };
    let out = handled
        .execute(json!({}), options)
        .await
        .into_result()
        .unwrap();
    assert_eq!(out, json!({"caught": "not_found", "status": 404}));

    // Nothing listening: a 502 naming the cause.
    let e = run(
        "acme",
        "test",
        Some("http://127.0.0.1:9"),
        &s3(&b, json!({"operation": "get", "key": "k"})),
        json!({}),
    )
    .await
    .into_result()
    .unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.status),
        ("object-storage", 502),
        "{}",
        e.message
    );

    // An account without the secret is named.
    let no_secret_account = plan(&s3(&b, json!({"operation": "get", "key": "k"})));
    let options = RunOptions {
        accounts: Arc::new(json!({"s3": {"accessKeyId": "AKIASLUICETEST", "endpoint": url}})),
        ..RunOptions::default()
    };
    let e = no_secret_account
        .execute(json!({}), options)
        .await
        .into_result()
        .unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("'secretAccessKey'"), "{}", e.message);
}
