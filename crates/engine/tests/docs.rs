//! Every pipeline shown in the docs (fenced blocks marked `yaml pipeline`)
//! must load, and its `tests:` must pass — docs cannot rot.

use std::path::Path;
use std::sync::Arc;

use sluice_engine::services::CollectedEvents;
use sluice_engine::testing::{markdown_files, pipeline_blocks, run_cases};
use sluice_engine::{Catalog, FileCaller, RunOptions, Services, load_str};
use sluice_spec::Format;

#[tokio::test]
async fn docs_pipelines_load_and_pass_their_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    markdown_files(&root.join("docs"), &mut files);
    // Connector steps are checked with their catalog by sluice-connectors,
    // trigger pages with every step and trigger by sluice-server.
    files.retain(|f| {
        !f.starts_with(root.join("docs/connectors")) && !f.starts_with(root.join("docs/triggers"))
    });
    let catalog = Catalog::core();
    let examples = root.join("examples");
    let mut failures = Vec::new();
    let mut count = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable doc");
        for (line, yaml) in pipeline_blocks(&text) {
            count += 1;
            let name = format!(
                "{}:{line}",
                file.strip_prefix(&root).unwrap_or(file).display()
            );
            let plan = match load_str(&name, &yaml, Format::Yaml, Some(&examples), &catalog) {
                Ok(plan) => plan,
                Err(e) => {
                    failures.push(format!("{name}: does not load:\n{e}"));
                    continue;
                }
            };
            let caller = Arc::new(FileCaller::new(examples.clone(), catalog.clone()));
            let mut services = Services::in_memory(Arc::new(CollectedEvents::default()));
            services.pipelines = caller;
            let options = RunOptions {
                services,
                ..RunOptions::default()
            };
            for outcome in run_cases(&plan, &options).await {
                if let Some(why) = outcome.failure {
                    failures.push(format!("{name} › {}: {why}", outcome.name));
                }
            }
        }
    }
    assert!(count > 0, "no `yaml pipeline` block found under docs/");
    assert!(
        failures.is_empty(),
        "{} doc example(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_step_type_has_a_page_with_a_runnable_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/steps");
    let catalog = Catalog::core();
    for kind in catalog.kinds() {
        let page = root.join(format!("{}.md", kind.name));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("missing {}", page.display()));
        let blocks = pipeline_blocks(&text);
        assert!(
            !blocks.is_empty(),
            "{} has no `yaml pipeline` example",
            page.display()
        );
        assert!(
            blocks
                .iter()
                .any(|(_, y)| y.contains(&format!("type: {}", kind.name))),
            "{}'s examples do not use the step",
            page.display()
        );
        assert!(
            blocks.iter().any(|(_, y)| y.contains("tests:")),
            "{}'s examples have no tests",
            page.display()
        );
    }
}
