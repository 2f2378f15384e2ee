//! `sluice run`: one execution of a pipeline file.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use serde_json::{Map, Value, json};
use sluice_engine::{LoadError, RunOptions, load_file};

use crate::exit;
use crate::inputs::{global_pair, json_argument, object_file};

#[derive(Args)]
pub struct RunArgs {
    /// The pipeline file (YAML or JSON).
    file: PathBuf,
    /// The trigger message: JSON, `@file.json`, or `@-` for standard input (default `{}`).
    #[arg(long, short)]
    input: Option<String>,
    /// A global as NAME=VALUE (VALUE read as JSON when it is JSON). Repeatable.
    #[arg(long = "global", short = 'g', value_name = "NAME=VALUE")]
    globals: Vec<String>,
    /// A YAML/JSON file of globals (NAME: VALUE); --global wins over it.
    #[arg(long, value_name = "FILE")]
    globals_file: Option<PathBuf>,
    /// A YAML/JSON file of accounts (NAME: {type, field: value...}).
    #[arg(long, value_name = "FILE")]
    accounts: Option<PathBuf>,
    /// Print the step trace (with inputs and outputs) on standard error.
    #[arg(long)]
    trace: bool,
    /// Print compact JSON instead of indented.
    #[arg(long)]
    compact: bool,
}

#[allow(clippy::print_stdout)]
pub async fn run(args: RunArgs) -> Result<u8> {
    let catalog = super::catalog();
    let plan = match load_file(&args.file, &catalog) {
        Ok(plan) => plan,
        Err(LoadError::Invalid(problems)) => {
            eprintln!("{problems}");
            return Ok(exit::USAGE);
        }
        Err(e) => return Err(e.into()),
    };
    let input = match &args.input {
        Some(text) => json_argument(text)?,
        None => json!({}),
    };
    let mut globals = match &args.globals_file {
        Some(path) => object_file(path, "globals")?,
        None => Map::new(),
    };
    for pair in &args.globals {
        let (name, value) = global_pair(pair)?;
        globals.insert(name, value);
    }
    let accounts = match &args.accounts {
        Some(path) => object_file(path, "accounts")?,
        None => Map::new(),
    };
    let dir = args
        .file
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let (services, caller) = super::file_services(&dir, &catalog, Arc::new(super::PrintedEvents));
    let options = RunOptions {
        services,
        globals: Arc::new(Value::Object(globals)),
        accounts: Arc::new(Value::Object(accounts)),
        trace_payloads: args.trace,
        ..RunOptions::default()
    };
    let execution = plan.execute(input, options).await;
    caller.wait_detached().await;

    for line in &execution.logs {
        eprintln!("[{}] {}: {}", line.level, line.step, line.message);
    }
    if args.trace {
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&execution.masked_trace())?
        );
    }
    let print = |v: &Value| -> Result<()> {
        let text = if args.compact {
            serde_json::to_string(v)?
        } else {
            serde_json::to_string_pretty(v)?
        };
        println!("{text}");
        Ok(())
    };
    match (&execution.result, &execution.response) {
        (Ok(_), Some(response)) => {
            print(
                &json!({"status": response.status, "headers": response.headers, "body": response.body}),
            )?;
            Ok(0)
        }
        (Ok(output), None) => {
            print(output)?;
            Ok(0)
        }
        (Err(error), _) => {
            let mut value = error.to_value();
            if let Value::Object(map) = &mut value {
                map.insert("executionKey".into(), Value::String(execution.key.clone()));
            }
            print(&value)?;
            Ok(exit::FAILED)
        }
    }
}
