//! Every pipeline shown in docs/triggers loads with the full catalog,
//! passes its `tests:`, and its trigger settings are accepted by the
//! trigger's source (with a stand-in account); every consuming trigger
//! has a page with such an example.

use std::path::Path;

use serde_json::{Map, Value, json};
use sluice_engine::testing::{markdown_files, pipeline_blocks, run_cases};
use sluice_engine::{RunOptions, load_str};
use sluice_spec::Format;

fn docs() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/triggers")
}

/// An account holding what each trigger reads from one.
fn stand_in_account() -> Map<String, Value> {
    let mut account = Map::new();
    account.insert("type".into(), json!("generic"));
    account.insert("username".into(), json!("u"));
    account.insert("password".into(), json!("p"));
    account
}

#[tokio::test]
async fn trigger_docs_pipelines_load_and_pass_their_tests() {
    let mut files = Vec::new();
    markdown_files(&docs(), &mut files);
    let catalog = sluice_connectors::catalog();
    let names = sluice_triggers::Names::new("acme", "test", "docs", 1);
    let mut failures = Vec::new();
    let mut kinds = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (line, yaml) in pipeline_blocks(&text) {
            let name = format!("{}:{line}", file.display());
            let plan = match load_str(&name, &yaml, Format::Yaml, None, &catalog) {
                Ok(plan) => plan,
                Err(e) => {
                    failures.push(format!("{name}: does not load:\n{e}"));
                    continue;
                }
            };
            if let Some(trigger) = &plan.definition.trigger {
                kinds.push(trigger.kind());
                if sluice_triggers::is_consumer(trigger) {
                    let mut account = stand_in_account();
                    let url = match trigger.kind() {
                        "rabbitmq" => "amqp://broker:5672/%2f",
                        "nats" => "nats://broker:4222",
                        "mqtt" => "mqtt://broker:1883",
                        "email" => "imaps://mail.example.com:993",
                        _ => "",
                    };
                    account.insert("url".into(), json!(url));
                    account.insert("brokers".into(), json!("broker:9092"));
                    if let Err(e) = sluice_triggers::source(trigger, Some(&account), &names) {
                        failures.push(format!("{name}: the trigger is refused: {e}"));
                    }
                }
            }
            for outcome in run_cases(&plan, &RunOptions::default()).await {
                if let Some(why) = outcome.failure {
                    failures.push(format!("{name} › {}: {why}", outcome.name));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} doc example(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for kind in ["rabbitmq", "nats", "mqtt", "kafka", "email"] {
        assert!(
            kinds.contains(&kind),
            "docs/triggers has no runnable example with a '{kind}' trigger"
        );
        assert!(
            docs().join(format!("{kind}.md")).exists(),
            "no page for {kind}"
        );
    }
}
