//! Every pipeline shown in docs/connectors must load with the connector
//! catalog and pass its `tests:`, and every connector step has a page.
//! (The pages show every family, so this needs them all built.)

#![cfg(all(
    feature = "formats",
    feature = "security",
    feature = "http",
    feature = "db",
    feature = "redis",
    feature = "nats",
    feature = "rabbitmq",
    feature = "mqtt",
    feature = "email",
    feature = "file",
    feature = "object-storage"
))]

use std::path::Path;

use sluice_engine::testing::{markdown_files, pipeline_blocks, run_cases};
use sluice_engine::{RunOptions, load_str};
use sluice_spec::Format;

fn docs() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/connectors")
}

#[tokio::test]
async fn connector_docs_pipelines_load_and_pass_their_tests() {
    let mut files = Vec::new();
    markdown_files(&docs(), &mut files);
    let catalog = sluice_connectors::catalog();
    let mut failures = Vec::new();
    let mut count = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (line, yaml) in pipeline_blocks(&text) {
            count += 1;
            let name = format!("{}:{line}", file.display());
            let plan = match load_str(&name, &yaml, Format::Yaml, None, &catalog) {
                Ok(plan) => plan,
                Err(e) => {
                    failures.push(format!("{name}: does not load:\n{e}"));
                    continue;
                }
            };
            for outcome in run_cases(&plan, &RunOptions::default()).await {
                if let Some(why) = outcome.failure {
                    failures.push(format!("{name} › {}: {why}", outcome.name));
                }
            }
        }
    }
    assert!(count > 0, "no `yaml pipeline` block under docs/connectors");
    assert!(
        failures.is_empty(),
        "{} doc example(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_connector_step_has_a_page_with_a_runnable_example() {
    for factory in sluice_connectors::factories() {
        let name = factory.kind.name;
        let page = docs().join(format!("{name}.md"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("missing {}", page.display()));
        let blocks = pipeline_blocks(&text);
        assert!(
            blocks
                .iter()
                .any(|(_, y)| y.contains(&format!("type: {name}")) && y.contains("tests:")),
            "{} has no `yaml pipeline` example with tests using the step",
            page.display()
        );
    }
}
