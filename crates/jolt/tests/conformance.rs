//! The JOLT conformance set: every `tests/cases/<operation>/<name>.json`
//! holds a chain, an input and the expected output (or, under `errors/`, the
//! spec path and message of the compile error).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_jolt::Chain;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).expect("cases directory") {
        let dir = dir.expect("entry").path();
        for file in std::fs::read_dir(&dir).expect("case directory") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|e| e == "json") {
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn conformance_cases() {
    let files = cases();
    assert!(
        files.len() >= 20,
        "expected the whole conformance set, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable case");
        let case: Value = serde_json::from_str(&text).expect("case is JSON");
        let name = file.display();
        let compiled = Chain::compile(&case["chain"]);
        if let Some(path) = case.get("error").and_then(Value::as_str) {
            match compiled {
                Ok(_) => failures.push(format!("{name}: compiled, expected an error at {path}")),
                Err(err) => {
                    let message = case["message"].as_str().unwrap_or_default();
                    if err.path() != path || !err.to_string().contains(message) {
                        failures.push(format!(
                            "{name}: got error `{err}` at `{}`, expected `{message}` at `{path}`",
                            err.path()
                        ));
                    }
                }
            }
            continue;
        }
        let chain = match compiled {
            Ok(chain) => chain,
            Err(err) => {
                failures.push(format!("{name}: {err}"));
                continue;
            }
        };
        match chain.apply(case["input"].clone()) {
            Ok(output) if output == case["expected"] => {}
            Ok(output) => failures.push(format!(
                "{name}: got {output}, expected {}",
                case["expected"]
            )),
            Err(err) => failures.push(format!("{name}: {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
