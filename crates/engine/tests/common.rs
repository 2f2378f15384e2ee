//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use serde_json::Value;
use sluice_engine::{Catalog, Execution, LoadError, Plan, RunOptions, load_str};
use sluice_spec::Format;

/// Compiles a YAML pipeline or panics with its problems.
pub fn plan(yaml: &str) -> Plan {
    match load_str("test.yaml", yaml, Format::Yaml, None, &Catalog::core()) {
        Ok(plan) => plan,
        Err(e) => panic!("pipeline should compile:\n{e}"),
    }
}

/// The problems of a YAML pipeline that must not compile, one per line.
pub fn problems(yaml: &str) -> String {
    match load_str("test.yaml", yaml, Format::Yaml, None, &Catalog::core()) {
        Ok(_) => panic!("pipeline should not compile"),
        Err(LoadError::Invalid(problems)) => problems.to_string(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Runs a YAML pipeline once.
pub async fn run(yaml: &str, input: Value) -> Execution {
    plan(yaml).execute(input, RunOptions::default()).await
}

/// Runs a YAML pipeline once and returns its output, panicking on error.
pub async fn output(yaml: &str, input: Value) -> Value {
    match run(yaml, input).await.into_result() {
        Ok(v) => v,
        Err(e) => panic!("execution failed: {}", e.to_value()),
    }
}

/// Runs a YAML pipeline once and returns its error object.
pub async fn error(yaml: &str, input: Value) -> Value {
    match run(yaml, input).await.into_result() {
        Ok(v) => panic!("execution should fail, got {v}"),
        Err(e) => e.to_value(),
    }
}
