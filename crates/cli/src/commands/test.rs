//! `sluice test`: run the `tests:` cases of pipeline files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::Value;
use sluice_engine::services::CollectedEvents;
use sluice_engine::testing::run_cases;
use sluice_engine::{LoadError, RunOptions, load_file};

use crate::exit;
use crate::inputs::object_file;

#[derive(Args)]
pub struct TestArgs {
    /// Pipeline files or directories (searched recursively); default: the current directory.
    paths: Vec<PathBuf>,
    /// A YAML/JSON file of accounts for every case.
    #[arg(long, value_name = "FILE")]
    accounts: Option<PathBuf>,
}

/// Pipeline files under `path`: YAML/JSON files whose top level has `steps`.
fn pipeline_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            pipeline_files(&entry, out)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) && looks_like_pipeline(&entry)
        {
            out.push(entry);
        }
    }
    Ok(())
}

/// Whether a file in a directory is a pipeline (and not, say, accounts).
fn looks_like_pipeline(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines()
            .any(|l| l.starts_with("steps:") || l.trim_start().starts_with("\"steps\""))
    })
}

#[allow(clippy::print_stdout)]
pub async fn run(args: TestArgs) -> Result<u8> {
    let catalog = super::catalog();
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths
    };
    let mut files = Vec::new();
    for path in &paths {
        pipeline_files(path, &mut files)?;
    }
    let accounts = match &args.accounts {
        Some(path) => Value::Object(object_file(path, "accounts")?),
        None => Value::Object(serde_json::Map::new()),
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let plan = match load_file(file, &catalog) {
            Ok(plan) => plan,
            Err(LoadError::Invalid(problems)) => {
                println!("FAIL {}: invalid pipeline\n{problems}", file.display());
                failed += 1;
                continue;
            }
            Err(e) => {
                println!("FAIL {e}");
                failed += 1;
                continue;
            }
        };
        if plan.definition.tests.is_empty() {
            println!("---- {}: no tests", file.display());
            continue;
        }
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let (services, caller) =
            super::file_services(&dir, &catalog, Arc::new(CollectedEvents::default()));
        let options = RunOptions {
            services,
            accounts: Arc::new(accounts.clone()),
            ..RunOptions::default()
        };
        for outcome in run_cases(&plan, &options).await {
            let ms = outcome.duration.as_secs_f64() * 1000.0;
            match &outcome.failure {
                None => {
                    passed += 1;
                    println!("PASS {} › {} ({ms:.1} ms)", file.display(), outcome.name);
                }
                Some(why) => {
                    failed += 1;
                    println!("FAIL {} › {}: {why}", file.display(), outcome.name);
                }
            }
        }
        caller.wait_detached().await;
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed > 0 { exit::FAILED } else { 0 })
}
