//! `file` against a real directory: every operation and option, the
//! refusals of paths that leave the directory of the realm and
//! environment (`..`, absolute, NUL, links), isolation between realms and
//! environments, and the errors.
//!
//! The step reads `SLUICE_FILE_ROOT` once per process, and setting a
//! variable needs `unsafe` (forbidden in this workspace), so each test runs
//! itself again in a child process of this test binary, started with the
//! variable set to a fresh temporary directory: the parent only checks
//! that the child passed.

#![cfg(feature = "file")]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sluice_engine::{FlowError, LoadError, Plan, RunOptions, load_str};
use sluice_spec::Format;

const ROOT_VARIABLE: &str = "SLUICE_FILE_ROOT";
/// Set in the child processes, which run the test for real.
const CHILD_VARIABLE: &str = "SLUICE_FILE_TEST_CHILD";

/// A new empty directory under the system's temporary directory.
fn fresh_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir =
        std::env::temp_dir().join(format!("sluice-file-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// In a child process: the root its steps use (set before any step ran).
/// In the test process: runs `test` again in a child with a fresh root,
/// checks that it passed, and gives `None` (the caller returns).
fn root(test: &str) -> Option<PathBuf> {
    if std::env::var_os(CHILD_VARIABLE).is_some() {
        return std::env::var_os(ROOT_VARIABLE).map(PathBuf::from);
    }
    let root = fresh_dir(test).join("root");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(ROOT_VARIABLE, &root)
        .env(CHILD_VARIABLE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(root.parent().unwrap());
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} failed in its child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    None
}

/// A pipeline of one `file` step with `fields`.
fn plan(fields: Value) -> Plan {
    load(fields).unwrap_or_else(|e| panic!("{e}"))
}

async fn exec_in(
    realm: &str,
    environment: &str,
    fields: Value,
    input: Value,
) -> Result<Value, FlowError> {
    let options = RunOptions {
        realm: realm.into(),
        environment: environment.into(),
        ..RunOptions::default()
    };
    plan(fields).execute(input, options).await.into_result()
}

/// Runs the step as realm `acme`, environment `test`.
async fn exec(fields: Value) -> Result<Value, FlowError> {
    exec_in("acme", "test", fields, json!({})).await
}

async fn ok(fields: Value) -> Value {
    exec(fields)
        .await
        .unwrap_or_else(|e| panic!("{}", e.to_value()))
}

async fn err(fields: Value) -> FlowError {
    match exec(fields.clone()).await {
        Ok(out) => panic!("{fields} should fail, gave {out}"),
        Err(e) => e,
    }
}

/// Checks an error's code and status, that its message names `names`,
/// and that it does not show where the root is.
fn check(e: &FlowError, status: u16, names: &str, root: &Path) {
    assert_eq!(
        (e.code.as_ref(), e.status),
        ("file", status),
        "{}",
        e.message
    );
    assert!(e.message.contains(names), "{names}: {}", e.message);
    let shown = root.to_string_lossy();
    assert!(!e.message.contains(shown.as_ref()), "{}", e.message);
}

/// The paths of a `list` output.
fn paths(listed: &Value) -> Vec<&str> {
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn write_and_read_text_base64_and_json() {
    let Some(root) = root("write_and_read_text_base64_and_json") else {
        return;
    };
    let area = root.join("acme").join("test");
    assert!(!area.exists(), "the directory is made on the first write");
    let out = ok(json!({"operation": "write", "path": "notes/a.txt", "content": "héllo"})).await;
    assert_eq!(out, json!({"path": "notes/a.txt", "size": 6}));
    assert_eq!(
        std::fs::read_to_string(area.join("notes/a.txt")).unwrap(),
        "héllo"
    );
    // Text by default: the content itself.
    let out = ok(json!({"operation": "read", "path": "notes/a.txt"})).await;
    assert_eq!(out, json!("héllo"));
    let out =
        ok(json!({"operation": "read", "path": "./notes/../notes/a.txt", "encoding": "text"}))
            .await;
    assert_eq!(out, json!("héllo"));

    // JSON that is not a string is written as JSON text.
    let doc = json!({"id": 7, "lines": [{"sku": "A"}], "note": null});
    let out = ok(json!({"operation": "write", "path": "doc.json", "content": doc})).await;
    assert_eq!(out["path"], "doc.json");
    let text = std::fs::read_to_string(area.join("doc.json")).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), doc);
    let out = ok(json!({"operation": "read", "path": "doc.json", "encoding": "json"})).await;
    assert_eq!(out, doc);
    let out = ok(json!({"operation": "read", "path": "doc.json"})).await;
    assert_eq!(out, json!(text));
    // encoding json on write: a string too is JSON (quoted).
    ok(json!({"operation": "write", "path": "s.json", "content": "hi", "encoding": "json"})).await;
    assert_eq!(
        std::fs::read_to_string(area.join("s.json")).unwrap(),
        "\"hi\""
    );
    let out = ok(json!({"operation": "read", "path": "s.json", "encoding": "json"})).await;
    assert_eq!(out, json!("hi"));
    let e = err(json!({"operation": "read", "path": "notes/a.txt", "encoding": "json"})).await;
    check(&e, 422, "'notes/a.txt' is not JSON", &root);

    // Bytes through base64.
    let out = ok(json!({"operation": "write", "path": "bin/b.dat", "content": "AAEC/w==", "encoding": "base64"})).await;
    assert_eq!(out, json!({"path": "bin/b.dat", "size": 4}));
    assert_eq!(
        std::fs::read(area.join("bin/b.dat")).unwrap(),
        vec![0u8, 1, 2, 255]
    );
    let out = ok(json!({"operation": "read", "path": "bin/b.dat", "encoding": "base64"})).await;
    assert_eq!(out, json!("AAEC/w=="));
    let e = err(json!({"operation": "read", "path": "bin/b.dat"})).await;
    check(&e, 422, "'bin/b.dat' is not UTF-8", &root);
    let e = err(json!({"operation": "write", "path": "x.dat", "content": "not base64!", "encoding": "base64"})).await;
    check(&e, 400, "not base64", &root);
    let e = err(json!({"operation": "write", "path": "x.dat", "content": "{{ message }}", "encoding": "base64"})).await;
    check(&e, 400, "must be a string of base64", &root);

    // Writing replaces; reading a directory is refused.
    ok(json!({"operation": "write", "path": "notes/a.txt", "content": "x"})).await;
    assert_eq!(
        ok(json!({"operation": "read", "path": "notes/a.txt"})).await,
        json!("x")
    );
    let e = err(json!({"operation": "read", "path": "notes"})).await;
    check(&e, 400, "'notes' is a directory", &root);
    let e = err(json!({"operation": "write", "path": "notes", "content": "x"})).await;
    check(&e, 400, "'notes' is a directory", &root);
}

#[tokio::test]
async fn expressions_in_path_and_content() {
    let Some(root) = root("expressions_in_path_and_content") else {
        return;
    };
    let fields = json!({
        "operation": "write",
        "path": "orders/{{ message.id }}.json",
        "content": {"order": "{{ message.id }}", "lines": "{{ message.lines }}", "at": "{{ metadata.environment }}"}
    });
    let out = exec_in("acme", "test", fields, json!({"id": 42, "lines": [1, 2]}))
        .await
        .unwrap();
    assert_eq!(out, json!({"path": "orders/42.json", "size": out["size"]}));
    let read = exec_in(
        "acme",
        "test",
        json!({"operation": "read", "path": "{{ message.p }}", "encoding": "json"}),
        json!({"p": "orders/42.json"}),
    )
    .await
    .unwrap();
    assert_eq!(read, json!({"order": 42, "lines": [1, 2], "at": "test"}));
    assert!(root.join("acme/test/orders/42.json").is_file());
}

#[tokio::test]
async fn append_and_create_dirs() {
    let Some(root) = root("append_and_create_dirs") else {
        return;
    };
    let write = |content: &str, append: bool| json!({"operation": "write", "path": "log/day.txt", "content": content, "append": append});
    assert_eq!(ok(write("one\n", true)).await["size"], 4);
    assert_eq!(ok(write("two\n", true)).await["size"], 8);
    assert_eq!(
        ok(json!({"operation": "read", "path": "log/day.txt"})).await,
        json!("one\ntwo\n")
    );
    assert_eq!(ok(write("three\n", false)).await["size"], 6);
    assert_eq!(
        ok(json!({"operation": "read", "path": "log/day.txt"})).await,
        json!("three\n")
    );
    // createDirs is true by default; false needs the directory there.
    let e = err(
        json!({"operation": "write", "path": "new/dir/x.txt", "content": "x", "createDirs": false}),
    )
    .await;
    check(&e, 404, "'new/dir/x.txt'", &root);
    assert!(!root.join("acme/test/new").exists());
    ok(json!({"operation": "write", "path": "log/y.txt", "content": "y", "createDirs": false}))
        .await;
    ok(json!({"operation": "write", "path": "new/dir/x.txt", "content": "x", "createDirs": true}))
        .await;
    assert!(root.join("acme/test/new/dir/x.txt").is_file());
}

#[tokio::test]
async fn list_with_pattern_and_recursive() {
    let Some(root) = root("list_with_pattern_and_recursive") else {
        return;
    };
    // Nothing written yet: the directory is empty, a subdirectory missing.
    assert_eq!(ok(json!({"operation": "list"})).await, json!([]));
    let e = err(json!({"operation": "list", "path": "in"})).await;
    check(&e, 404, "'in' does not exist", &root);
    for (path, content) in [
        ("in/b.csv", "bb"),
        ("in/a.csv", "a"),
        ("in/c.txt", "ccc"),
        ("in/sub/d.csv", "dddd"),
        ("in/sub/deeper/e.csv", "e"),
        ("in/sub/f1.txt", "f"),
        ("in/sub/f22.txt", "f"),
    ] {
        ok(json!({"operation": "write", "path": path, "content": content})).await;
    }
    let all = ok(json!({"operation": "list", "path": "in"})).await;
    assert_eq!(paths(&all), ["in/a.csv", "in/b.csv", "in/c.txt", "in/sub"]);
    let a = &all[0];
    assert_eq!(
        (a["size"].clone(), a["dir"].clone()),
        (json!(1), json!(false))
    );
    assert_eq!(
        (all[3]["size"].clone(), all[3]["dir"].clone()),
        (json!(0), json!(true))
    );
    // RFC 3339 in UTC, to the second.
    let modified = a["modified"].as_str().unwrap();
    assert_eq!(modified.len(), 20, "{modified}");
    assert!(
        modified.ends_with('Z') && modified.as_bytes()[10] == b'T',
        "{modified}"
    );
    assert!(is_rfc3339(modified), "{modified}");

    let csv = ok(json!({"operation": "list", "path": "in", "pattern": "*.csv"})).await;
    assert_eq!(paths(&csv), ["in/a.csv", "in/b.csv"]);
    let deep =
        ok(json!({"operation": "list", "path": "in", "pattern": "*.csv", "recursive": true})).await;
    assert_eq!(
        paths(&deep),
        [
            "in/a.csv",
            "in/b.csv",
            "in/sub/d.csv",
            "in/sub/deeper/e.csv"
        ]
    );
    let everything = ok(json!({"operation": "list", "recursive": true})).await;
    assert_eq!(
        paths(&everything),
        [
            "in",
            "in/a.csv",
            "in/b.csv",
            "in/c.txt",
            "in/sub",
            "in/sub/d.csv",
            "in/sub/deeper",
            "in/sub/deeper/e.csv",
            "in/sub/f1.txt",
            "in/sub/f22.txt"
        ]
    );
    let one_char = ok(json!({"operation": "list", "path": "in/sub", "pattern": "f?.txt"})).await;
    assert_eq!(paths(&one_char), ["in/sub/f1.txt"]);
    let from_message = exec_in(
        "acme",
        "test",
        json!({"operation": "list", "path": "in/sub", "pattern": "{{ message.glob }}"}),
        json!({"glob": "f*"}),
    )
    .await
    .unwrap();
    assert_eq!(paths(&from_message), ["in/sub/f1.txt", "in/sub/f22.txt"]);
    let e = err(json!({"operation": "list", "path": "in/a.csv"})).await;
    check(&e, 400, "'in/a.csv' is not a directory", &root);
}

/// `2026-03-01T10:30:00Z`: digits where digits belong.
fn is_rfc3339(text: &str) -> bool {
    text.len() == 20
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

#[tokio::test]
async fn delete_exists_and_directories() {
    let Some(root) = root("delete_exists_and_directories") else {
        return;
    };
    let exists = |path: &str| json!({"operation": "exists", "path": path});
    assert_eq!(ok(exists("a.txt")).await, json!({"exists": false}));
    assert_eq!(ok(exists(".")).await, json!({"exists": false}));
    ok(json!({"operation": "write", "path": "a.txt", "content": "a"})).await;
    ok(json!({"operation": "write", "path": "dir/inner/b.txt", "content": "b"})).await;
    assert_eq!(ok(exists("a.txt")).await, json!({"exists": true}));
    assert_eq!(ok(exists("dir/inner")).await, json!({"exists": true}));
    assert_eq!(ok(exists(".")).await, json!({"exists": true}));

    let delete = |path: &str| json!({"operation": "delete", "path": path});
    assert_eq!(ok(delete("a.txt")).await, json!({"deleted": true}));
    assert_eq!(ok(delete("a.txt")).await, json!({"deleted": false}));
    assert_eq!(ok(exists("a.txt")).await, json!({"exists": false}));
    assert_eq!(
        ok(delete("nothing/here.txt")).await,
        json!({"deleted": false})
    );
    // A directory only with recursive.
    let e = err(delete("dir")).await;
    check(&e, 400, "'dir' is a directory", &root);
    let e = err(json!({"operation": "delete", "path": "dir", "recursive": false})).await;
    check(&e, 400, "recursive", &root);
    assert!(root.join("acme/test/dir/inner/b.txt").is_file());
    let out = ok(json!({"operation": "delete", "path": "dir", "recursive": true})).await;
    assert_eq!(out, json!({"deleted": true}));
    assert!(!root.join("acme/test/dir").exists());
    // Never the directory of the realm and environment itself.
    let e = exec_in(
        "acme",
        "test",
        json!({"operation": "delete", "path": "{{ message.p }}", "recursive": true}),
        json!({"p": "sub/.."}),
    )
    .await
    .unwrap_err();
    check(
        &e,
        400,
        "the directory of the realm and environment itself",
        &root,
    );
    assert!(root.join("acme/test").is_dir());
}

#[tokio::test]
async fn move_files_and_directories() {
    let Some(root) = root("move_files_and_directories") else {
        return;
    };
    let area = root.join("acme/test");
    ok(json!({"operation": "write", "path": "in/a.txt", "content": "a"})).await;
    ok(json!({"operation": "write", "path": "in/b.txt", "content": "b"})).await;
    let out = ok(json!({"operation": "move", "path": "in/a.txt", "to": "done/2026/a.txt"})).await;
    assert_eq!(out, json!({"from": "in/a.txt", "to": "done/2026/a.txt"}));
    assert!(!area.join("in/a.txt").exists());
    assert_eq!(
        std::fs::read_to_string(area.join("done/2026/a.txt")).unwrap(),
        "a"
    );
    // Something at `to`: 409 unless overwrite.
    let e = err(json!({"operation": "move", "path": "in/b.txt", "to": "done/2026/a.txt"})).await;
    check(&e, 409, "'done/2026/a.txt' exists already", &root);
    assert!(area.join("in/b.txt").exists());
    ok(json!({"operation": "move", "path": "in/b.txt", "to": "done/2026/a.txt", "overwrite": true})).await;
    assert_eq!(
        std::fs::read_to_string(area.join("done/2026/a.txt")).unwrap(),
        "b"
    );
    // Missing source, missing directory without createDirs.
    let e = err(json!({"operation": "move", "path": "in/b.txt", "to": "x.txt"})).await;
    check(&e, 404, "'in/b.txt' does not exist", &root);
    let e = err(json!({"operation": "move", "path": "done/2026/a.txt", "to": "nope/x.txt", "createDirs": false})).await;
    check(&e, 404, "'nope/x.txt'", &root);
    // Directories move too, with expressions in both paths.
    let out = exec_in(
        "acme",
        "test",
        json!({"operation": "move", "path": "{{ message.from }}", "to": "archive/{{ message.year }}"}),
        json!({"from": "done/2026", "year": 2026}),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({"from": "done/2026", "to": "archive/2026"}));
    assert!(area.join("archive/2026/a.txt").is_file());
    // `to` may not leave the directory either.
    let e = exec_in(
        "acme",
        "test",
        json!({"operation": "move", "path": "archive/2026/a.txt", "to": "{{ message.to }}"}),
        json!({"to": "../../stolen.txt"}),
    )
    .await
    .unwrap_err();
    check(&e, 400, "'../../stolen.txt' leaves the directory", &root);
    assert!(area.join("archive/2026/a.txt").is_file());
    assert!(!root.join("stolen.txt").exists());
}

#[tokio::test]
async fn paths_that_leave_the_directory_are_refused() {
    let Some(root) = root("paths_that_leave_the_directory_are_refused") else {
        return;
    };
    // A file beside the realm's directory, where `..` would lead.
    std::fs::create_dir_all(root.join("acme")).unwrap();
    std::fs::write(root.join("acme/x"), "other environment").unwrap();
    for (path, says) in [
        ("../x", "'../x' leaves the directory"),
        ("a/../../x", "'a/../../x' leaves the directory"),
        ("/etc/passwd", "'/etc/passwd' is absolute"),
        ("a\0b", "contains a NUL character"),
        ("", "the path is empty"),
    ] {
        let input = json!({"p": path});
        for fields in [
            json!({"operation": "read", "path": "{{ message.p }}"}),
            json!({"operation": "write", "path": "{{ message.p }}", "content": "owned"}),
            json!({"operation": "list", "path": "{{ message.p }}"}),
            json!({"operation": "exists", "path": "{{ message.p }}"}),
            json!({"operation": "delete", "path": "{{ message.p }}"}),
            json!({"operation": "move", "path": "{{ message.p }}", "to": "y"}),
        ] {
            let e = exec_in("acme", "test", fields.clone(), input.clone())
                .await
                .unwrap_err();
            check(&e, 400, says, &root);
        }
    }
    assert_eq!(
        std::fs::read_to_string(root.join("acme/x")).unwrap(),
        "other environment"
    );
    // Written without expressions, they are refused when the pipeline loads.
    for path in ["../x", "a/../../x", "/etc/passwd"] {
        let e = load(json!({"operation": "read", "path": path})).unwrap_err();
        assert_eq!(problems(&e), ["steps[0].path"], "{e}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn links_leading_outside_are_refused() {
    use std::os::unix::fs::symlink;
    let Some(root) = root("links_leading_outside_are_refused") else {
        return;
    };
    let outside = root.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    let area = root.join("acme/test");
    std::fs::create_dir_all(area.join("docs")).unwrap();
    std::fs::write(area.join("docs/x.txt"), "inside").unwrap();
    symlink(&outside, area.join("out")).unwrap();
    symlink(outside.join("secret.txt"), area.join("leak.txt")).unwrap();
    symlink(outside.join("new.txt"), area.join("dangling.txt")).unwrap();
    std::fs::create_dir_all(root.join("globex/test")).unwrap();
    std::fs::write(root.join("globex/test/a.txt"), "globex").unwrap();
    symlink("../../globex", area.join("neighbour")).unwrap();
    // Links that stay inside work.
    symlink(area.join("docs"), area.join("alias")).unwrap();
    symlink("docs/x.txt", area.join("x-link.txt")).unwrap();

    for path in ["out/secret.txt", "leak.txt", "neighbour/test/a.txt"] {
        let e = err(json!({"operation": "read", "path": path})).await;
        check(&e, 400, &format!("'{path}' goes through a link"), &root);
        let e = err(json!({"operation": "exists", "path": path})).await;
        check(&e, 400, "leads outside", &root);
    }
    for path in [
        "out/new.txt",
        "dangling.txt",
        "leak.txt",
        "out/deeper/new.txt",
    ] {
        let e = err(json!({"operation": "write", "path": path, "content": "owned"})).await;
        check(&e, 400, &format!("'{path}' goes through a link"), &root);
    }
    assert!(!outside.join("new.txt").exists());
    assert!(!outside.join("deeper").exists());
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret"
    );
    let e = err(json!({"operation": "list", "path": "out"})).await;
    check(&e, 400, "leads outside", &root);
    let e = err(json!({"operation": "delete", "path": "out", "recursive": true})).await;
    check(&e, 400, "leads outside", &root);
    let e = err(json!({"operation": "move", "path": "docs/x.txt", "to": "out/x.txt"})).await;
    check(&e, 400, "leads outside", &root);
    let e = err(json!({"operation": "move", "path": "leak.txt", "to": "mine.txt"})).await;
    check(&e, 400, "leads outside", &root);
    assert!(outside.join("secret.txt").exists());
    assert!(area.join("docs/x.txt").exists());

    // A listing leaves out links that lead outside.
    let listed = ok(json!({"operation": "list"})).await;
    assert_eq!(paths(&listed), ["alias", "docs", "x-link.txt"]);
    assert_eq!(listed[0]["dir"], true);

    assert_eq!(
        ok(json!({"operation": "read", "path": "alias/x.txt"})).await,
        json!("inside")
    );
    assert_eq!(
        ok(json!({"operation": "read", "path": "x-link.txt"})).await,
        json!("inside")
    );
    ok(json!({"operation": "write", "path": "alias/y.txt", "content": "via alias"})).await;
    assert_eq!(
        std::fs::read_to_string(area.join("docs/y.txt")).unwrap(),
        "via alias"
    );
    // Deleting a link deletes the link, not what it leads to.
    assert_eq!(
        ok(json!({"operation": "delete", "path": "x-link.txt"})).await,
        json!({"deleted": true})
    );
    assert!(area.join("docs/x.txt").is_file());
}

#[tokio::test]
async fn realms_and_environments_do_not_see_each_other() {
    let Some(root) = root("realms_and_environments_do_not_see_each_other") else {
        return;
    };
    let write =
        json!({"operation": "write", "path": "shared/data.txt", "content": "{{ message.who }}"});
    let read = json!({"operation": "read", "path": "shared/data.txt"});
    let exists = json!({"operation": "exists", "path": "shared/data.txt"});
    exec_in("globex", "test", write.clone(), json!({"who": "globex"}))
        .await
        .unwrap();
    let e = exec_in("acme", "test", read.clone(), json!({}))
        .await
        .unwrap_err();
    check(&e, 404, "'shared/data.txt' does not exist", &root);
    let out = exec_in("acme", "test", exists.clone(), json!({}))
        .await
        .unwrap();
    assert_eq!(out, json!({"exists": false}));

    exec_in("acme", "prod", write.clone(), json!({"who": "acme prod"}))
        .await
        .unwrap();
    let e = exec_in("acme", "test", read.clone(), json!({}))
        .await
        .unwrap_err();
    check(&e, 404, "'shared/data.txt'", &root);
    exec_in("acme", "test", write, json!({"who": "acme test"}))
        .await
        .unwrap();
    for (realm, environment, who) in [
        ("globex", "test", "globex"),
        ("acme", "prod", "acme prod"),
        ("acme", "test", "acme test"),
    ] {
        let out = exec_in(realm, environment, read.clone(), json!({}))
            .await
            .unwrap();
        assert_eq!(out, json!(who));
        let on_disk = root.join(realm).join(environment).join("shared/data.txt");
        assert_eq!(std::fs::read_to_string(on_disk).unwrap(), who);
    }
    let e = exec_in("globex", "prod", read, json!({}))
        .await
        .unwrap_err();
    check(&e, 404, "'shared/data.txt'", &root);

    // Outside a server the realm and environment are both `local`.
    let out = plan(json!({"operation": "write", "path": "cli.txt", "content": "from sluice run"}))
        .execute(json!({}), RunOptions::default())
        .await
        .into_result()
        .unwrap();
    assert_eq!(out["path"], "cli.txt");
    assert!(root.join("local/local/cli.txt").is_file());
}

#[tokio::test]
async fn missing_files_and_max_size() {
    let Some(root) = root("missing_files_and_max_size") else {
        return;
    };
    let e = err(json!({"operation": "read", "path": "reports/missing.csv"})).await;
    check(&e, 404, "'reports/missing.csv' does not exist", &root);
    ok(json!({"operation": "write", "path": "reports/x.csv", "content": "x"})).await;
    let e = err(json!({"operation": "read", "path": "reports/./missing.csv"})).await;
    check(&e, 404, "'reports/missing.csv' does not exist", &root);
    let e = err(json!({"operation": "read", "path": "reports/x.csv/inner"})).await;
    assert_eq!(e.code, "file");
    assert!(e.message.contains("reports/x.csv/inner"), "{}", e.message);

    let hundred = "x".repeat(100);
    ok(json!({"operation": "write", "path": "big.txt", "content": hundred})).await;
    let e = err(json!({"operation": "read", "path": "big.txt", "maxSize": 50})).await;
    check(
        &e,
        413,
        "'big.txt' is 100 bytes, more than maxSize (50B)",
        &root,
    );
    let e = err(json!({"operation": "read", "path": "big.txt", "maxSize": "99B"})).await;
    check(&e, 413, "maxSize", &root);
    let out = ok(json!({"operation": "read", "path": "big.txt", "maxSize": "1KB"})).await;
    assert_eq!(out, json!(hundred));
    let out = ok(json!({"operation": "read", "path": "big.txt", "maxSize": 100})).await;
    assert_eq!(out, json!(hundred));
    // The default (16MB) is not reached by small files, and is reached by larger ones.
    assert_eq!(
        ok(json!({"operation": "read", "path": "big.txt"})).await,
        json!(hundred)
    );
    let file = std::fs::File::create(root.join("acme/test/huge.bin")).unwrap();
    file.set_len(16_000_001).unwrap();
    let e = err(json!({"operation": "read", "path": "huge.bin", "encoding": "base64"})).await;
    check(&e, 413, "more than maxSize (16MB)", &root);
}

/// Loads a pipeline of one `file` step with `fields` (JSON is YAML too).
fn load(fields: Value) -> Result<Plan, LoadError> {
    let mut step = json!({"type": "file"});
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

/// The field paths of a load error's problems.
fn problems(e: &LoadError) -> Vec<String> {
    match e {
        LoadError::Invalid(p) => p.items.iter().map(|i| i.path.to_string()).collect(),
        other => panic!("{other}"),
    }
}

#[test]
fn bad_configs_are_refused_at_load() {
    // Loading runs no step: no child process needed.
    for (fields, at) in [
        (json!({"path": "a.txt"}), vec!["steps[0]"]),
        (
            json!({"operation": "copy", "path": "a"}),
            vec!["steps[0].operation"],
        ),
        (json!({"operation": "read"}), vec!["steps[0].path"]),
        (
            json!({"operation": "write", "path": "a"}),
            vec!["steps[0].content"],
        ),
        (
            json!({"operation": "move", "path": "a"}),
            vec!["steps[0].to"],
        ),
        (
            json!({"operation": "read", "path": "a", "content": "x", "append": true}),
            vec!["steps[0].content", "steps[0].append"],
        ),
        (
            json!({"operation": "write", "path": "a", "content": "x", "maxSize": 10}),
            vec!["steps[0].maxSize"],
        ),
        (
            json!({"operation": "read", "path": "a", "maxSize": "lots"}),
            vec!["steps[0].maxSize"],
        ),
        (
            json!({"operation": "read", "path": "a", "pattern": "*.csv"}),
            vec!["steps[0].pattern"],
        ),
        (
            json!({"operation": "read", "path": "a", "recursive": true}),
            vec!["steps[0].recursive"],
        ),
        (
            json!({"operation": "list", "encoding": "text"}),
            vec!["steps[0].encoding"],
        ),
        (
            json!({"operation": "delete", "path": "a", "overwrite": true}),
            vec!["steps[0].overwrite"],
        ),
        (
            json!({"operation": "read", "path": "a", "createDirs": true}),
            vec!["steps[0].createDirs"],
        ),
        (
            json!({"operation": "read", "path": "a", "to": "b"}),
            vec!["steps[0].to"],
        ),
        (
            json!({"operation": "read", "path": "a", "encoding": "utf16"}),
            vec!["steps[0].encoding"],
        ),
        (
            json!({"operation": "read", "path": "a", "colour": "red"}),
            vec!["steps[0]"],
        ),
        (
            json!({"operation": "list", "pattern": "in/*.csv"}),
            vec!["steps[0].pattern"],
        ),
        (
            json!({"operation": "list", "pattern": "{{ message."}),
            vec!["steps[0].pattern"],
        ),
        (
            json!({"operation": "read", "path": "{{ message.p"}),
            vec!["steps[0].path"],
        ),
        (
            json!({"operation": "move", "path": "a", "to": "../b"}),
            vec!["steps[0].to"],
        ),
        (
            json!({"operation": "delete", "path": "."}),
            vec!["steps[0].path"],
        ),
        (
            json!({"operation": "write", "path": "a", "content": {"x": 1}, "encoding": "base64"}),
            vec!["steps[0].content"],
        ),
        (
            json!({"operation": "write", "path": "a", "content": "{{ message. }}"}),
            vec!["steps[0].content"],
        ),
    ] {
        let e = load(fields.clone()).unwrap_err();
        assert_eq!(problems(&e), at, "{fields}: {e}");
    }
    for fine in [
        json!({"operation": "list"}),
        json!({"operation": "exists", "path": "."}),
        json!({"operation": "read", "path": "a/../b.txt", "encoding": "json", "maxSize": "2MB"}),
        json!({"operation": "write", "path": "{{ message.p }}", "content": "{{ message }}", "append": true, "createDirs": false, "encoding": "text"}),
        json!({"operation": "list", "path": "in", "pattern": "*.csv", "recursive": true}),
        json!({"operation": "delete", "path": "in", "recursive": true}),
        json!({"operation": "move", "path": "a", "to": "b", "overwrite": true, "createDirs": true}),
    ] {
        load(fine.clone()).unwrap_or_else(|e| panic!("{fine}: {e}"));
    }
}
