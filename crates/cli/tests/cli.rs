//! The `sluice` binary, as users and scripts call it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("sluice runs")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path
}

#[test]
fn every_example_passes_sluice_test() {
    let out = sluice(&["test", "examples/"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "sluice test examples/ failed:\n{stdout}{}",
        text(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with("passed, 0 failed"), "{stdout}");
    let passed: usize = last
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 24, "only {passed} example cases ran:\n{stdout}");
}

#[test]
fn run_prints_the_response_or_the_output() {
    let out = sluice(&[
        "run",
        "examples/order-routing.yaml",
        "--compact",
        "--input",
        r#"{"body": {"orderId": "A-1", "total": 250, "country": "BR"}}"#,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(answer["status"], 201);
    assert_eq!(answer["body"]["queue"], "accepted");
    assert!(
        text(&out.stderr).contains("order A-1 -> accepted"),
        "log lines go to stderr"
    );

    let file = temp_file(
        "plain.yaml",
        "name: plain\nsteps:\n  - type: set\n    values: { a: \"{{ global.x }}\" }\n",
    );
    let out = sluice(&[
        "run",
        file.to_str().expect("utf-8"),
        "--global",
        "x=5",
        "--compact",
    ]);
    assert_eq!(text(&out.stdout).trim(), r#"{"a":5}"#);
}

#[test]
fn a_failed_execution_prints_the_error_and_exits_1() {
    let out = sluice(&[
        "run",
        "examples/order-routing.yaml",
        "--input",
        r#"{"body": {"orderId": "A-1", "total": -1, "country": "BR"}}"#,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).expect("error JSON");
    assert_eq!(error["code"], "validation");
    assert_eq!(error["status"], 400);
    assert!(error["executionKey"].is_string());
}

#[test]
fn trace_goes_to_stderr() {
    let out = sluice(&[
        "run",
        "examples/tax-rate.yaml",
        "--input",
        r#"{"category":"books"}"#,
        "--trace",
    ]);
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("\"type\": \"json\""), "{stderr}");
    assert!(stderr.contains("\"durationUs\""), "{stderr}");
    assert!(stderr.contains("\"input\""), "{stderr}");
}

#[test]
fn validate_reports_every_problem_and_exits_1() {
    let bad = temp_file(
        "bad.yaml",
        "name: bad\nsteps:\n  - type: sett\n  - type: delay\n    duration: 3x\n  - type: log\n    message: \"{{ 1 + }}\"\n",
    );
    let out = sluice(&[
        "validate",
        "examples/order-routing.yaml",
        bad.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("examples/order-routing.yaml: ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad.yaml:3:5: steps[0].type: unknown step type 'sett'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad.yaml:5:5: steps[1].duration: invalid duration"),
        "{stdout}"
    );
    assert!(
        stdout.contains("steps[2].message: invalid expression"),
        "{stdout}"
    );

    let out = sluice(&["validate", "no/such/file.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("no/such/file.yaml"));
}

#[test]
fn test_reports_failures_and_exits_1() {
    let file = temp_file(
        "failing.yaml",
        "name: failing\nsteps:\n  - type: set\n    values: { a: 1 }\ntests:\n  - name: wrong\n    expect: { a: 2 }\n  - name: right\n    expect: { a: 1 }\n",
    );
    let out = sluice(&["test", file.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("at a: expected 2, got 1"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("1 passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn bad_arguments_are_refused() {
    let out = sluice(&["run", "examples/tax-rate.yaml", "--input", "{not json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--input is not valid JSON"));
    let out = sluice(&["run", "examples/tax-rate.yaml", "--global", "novalue"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn schema_is_json_schema() {
    let out = sluice(&["schema"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(
        schema["$defs"]["Step"]["allOf"]
            .as_array()
            .is_some_and(|a| a.len() > 20)
    );
}
