//! The commands that drive a running server through its API: realms,
//! apply, deploy, promote, rollback, globals, accounts, consumers, get,
//! logs. Each prints a table by default or the API's JSON with `-o json`,
//! and exits non-zero when the server refuses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::client::{Body, Client, Output, Remote, cell, print_json, print_table, seg, time_cell};

#[derive(Args)]
pub struct RealmArgs {
    #[command(subcommand)]
    command: RealmCommand,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Subcommand)]
enum RealmCommand {
    /// Create a realm (with the environments test and prod).
    Create { name: String },
}

#[derive(Args)]
pub struct ApplyArgs {
    /// Pipeline files, or directories of them (YAML or JSON).
    #[arg(short = 'f', long = "file", required = true)]
    files: Vec<PathBuf>,
    #[arg(long)]
    realm: String,
    /// Save changed pipelines as a new major version.
    #[arg(long)]
    new_major: bool,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct DeployArgs {
    /// The pipeline's name.
    name: String,
    #[arg(long)]
    realm: String,
    #[arg(long = "env")]
    env: String,
    /// `MAJOR.MINOR`; default the newest version.
    #[arg(long)]
    version: Option<String>,
    /// The newest version of this major.
    #[arg(long)]
    major: Option<u32>,
    #[arg(long)]
    replicas: Option<u32>,
    /// Executions in flight per replica.
    #[arg(long)]
    concurrency: Option<u32>,
    /// Execution time limit, e.g. `30s`.
    #[arg(long)]
    timeout: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct PromoteArgs {
    name: String,
    #[arg(long)]
    realm: String,
    #[arg(long)]
    from: String,
    #[arg(long)]
    to: String,
    #[arg(long)]
    major: Option<u32>,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct RollbackArgs {
    name: String,
    #[arg(long)]
    realm: String,
    #[arg(long = "env")]
    env: String,
    #[arg(long)]
    major: Option<u32>,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct GlobalArgs {
    #[command(subcommand)]
    command: GlobalCommand,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Subcommand)]
enum GlobalCommand {
    /// Set a global: VALUE is read as JSON when it is JSON, else as text.
    Set {
        name: String,
        value: String,
        #[arg(long)]
        realm: String,
        #[arg(long = "env")]
        env: String,
    },
}

#[derive(Args)]
pub struct AccountArgs {
    #[command(subcommand)]
    command: AccountCommand,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Set an account's fields (write-only: they are never shown again).
    Set {
        name: String,
        /// basic, api-key, bearer, oauth2-client-credentials, private-key, generic.
        #[arg(long = "type")]
        kind: String,
        /// `key=value`, repeated.
        #[arg(long = "field", required = true)]
        fields: Vec<String>,
        #[arg(long)]
        realm: String,
        #[arg(long = "env")]
        env: String,
    },
}

#[derive(Args)]
pub struct ConsumerArgs {
    #[command(subcommand)]
    command: ConsumerCommand,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Subcommand)]
enum ConsumerCommand {
    /// Create a consumer and print its API key (shown once).
    Create {
        name: String,
        #[arg(long)]
        realm: String,
        #[arg(long = "env")]
        env: String,
        /// The pipelines it may call, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        pipelines: Vec<String>,
        /// A rate limit, `REQUESTS/PERIOD`, e.g. `100/1m`.
        #[arg(long)]
        rate_limit: Option<String>,
        /// Print only the key (for `KEY=$(sluice consumer create …)`).
        #[arg(short, long)]
        quiet: bool,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Realms,
    Pipelines,
    Deployments,
    Executions,
    Consumers,
}

#[derive(Args)]
pub struct GetArgs {
    #[arg(value_enum)]
    kind: Kind,
    /// The realm (all but `realms`).
    #[arg(long)]
    realm: Option<String>,
    /// Only this environment.
    #[arg(long = "env")]
    env: Option<String>,
    /// Executions: only this pipeline.
    #[arg(long)]
    pipeline: Option<String>,
    /// Executions: only this status (ok, failed, timeout…).
    #[arg(long)]
    status: Option<String>,
    /// Executions: text in the payloads, errors or log lines.
    #[arg(long = "search")]
    search: Option<String>,
    /// Most items shown (newest first for executions).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print only the first column (names, or execution keys), one per line.
    #[arg(short, long)]
    quiet: bool,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct LogsArgs {
    /// The execution key (the `X-Execution-Key` of the answer).
    key: String,
    #[arg(long)]
    realm: String,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    remote: Remote,
}

fn realm_path(realm: &str) -> String {
    format!("/realms/{}", seg(realm))
}

fn env_path(realm: &str, env: &str) -> String {
    format!("/realms/{}/environments/{}", seg(realm), seg(env))
}

#[allow(clippy::print_stdout)]
pub async fn realm(args: RealmArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    match args.command {
        RealmCommand::Create { name } => {
            client.post("/realms", json!({"name": name})).await?;
            println!("realm {name} created (environments test, prod)");
        }
    }
    Ok(0)
}

/// The pipeline files under `path`: the file itself, or a directory's
/// `.yaml`, `.yml` and `.json` files, sorted, without descending.
fn pipeline_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?
    {
        let file = entry?.path();
        let wanted = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if wanted && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("{} holds no .yaml, .yml or .json file", path.display());
    }
    Ok(files)
}

#[allow(clippy::print_stdout)]
pub async fn apply(args: ApplyArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    let mut files = Vec::new();
    for path in &args.files {
        files.extend(pipeline_files(path)?);
    }
    let mut results = Vec::new();
    let mut failed = 0;
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let json = file.extension().is_some_and(|e| e == "json");
        let mut path = format!(
            "{}/pipelines?source={}",
            realm_path(&args.realm),
            seg(&file.display().to_string())
        );
        if args.new_major {
            path.push_str("&major=new");
        }
        let body = Body::Text {
            text,
            content_type: if json {
                "application/json"
            } else {
                "application/yaml"
            },
        };
        match client.send(reqwest::Method::POST, &path, Some(body)).await {
            Ok(saved) => {
                if args.output == Output::Table {
                    let note = if saved["created"] == json!(true) {
                        ""
                    } else {
                        " (unchanged)"
                    };
                    println!("{} {}{note}", cell(&saved, "name"), cell(&saved, "version"));
                }
                results.push(saved);
            }
            Err(e) => {
                eprintln!("error: {}: {e:#}", file.display());
                failed += 1;
            }
        }
    }
    if args.output == Output::Json {
        print_json(&Value::Array(results))?;
    }
    Ok(if failed > 0 { crate::exit::FAILED } else { 0 })
}

#[allow(clippy::print_stdout)]
pub async fn deploy(args: DeployArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    let mut body = json!({"pipeline": args.name});
    if let Some(v) = &args.version {
        body["version"] = json!(v);
    }
    if let Some(m) = args.major {
        body["major"] = json!(m);
    }
    if let Some(r) = args.replicas {
        body["replicas"] = json!(r);
    }
    if let Some(c) = args.concurrency {
        body["concurrency"] = json!(c);
    }
    if let Some(t) = &args.timeout {
        body["timeout"] = json!(t);
    }
    let base = env_path(&args.realm, &args.env);
    let deployed = client.post(&format!("{base}/deployments"), body).await?;
    let status = wait_serving(&client, &base, &deployed).await?;
    show_deployment(&status, args.output, "deployed")
}

/// Asks for the deployment's status until it serves the deployed version.
async fn wait_serving(client: &Client, base: &str, deployed: &Value) -> Result<Value> {
    let path = format!(
        "{base}/deployments/{}?major={}",
        seg(&cell(deployed, "pipeline")),
        cell(deployed, "major")
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.get(&path).await?;
        if status["status"]["state"] == json!("serving") && status["minor"] == deployed["minor"] {
            return Ok(status);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{} {} was deployed but is not serving after 30s (state {})",
                cell(deployed, "pipeline"),
                cell(deployed, "version"),
                status["status"]["state"]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[allow(clippy::print_stdout)]
fn show_deployment(d: &Value, output: Output, what: &str) -> Result<u8> {
    if output == Output::Json {
        print_json(d)?;
    } else {
        println!(
            "{} {} {what} to {} ({} x {} slots)",
            cell(d, "pipeline"),
            cell(d, "version"),
            cell(d, "environment"),
            cell(d, "replicas"),
            cell(d, "concurrency"),
        );
    }
    Ok(0)
}

pub async fn promote(args: PromoteArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    let mut body = json!({"pipeline": args.name, "from": args.from, "to": args.to});
    if let Some(m) = args.major {
        body["major"] = json!(m);
    }
    let deployed = client
        .post(&format!("{}/promote", realm_path(&args.realm)), body)
        .await?;
    let status = wait_serving(&client, &env_path(&args.realm, &args.to), &deployed).await?;
    show_deployment(&status, args.output, "promoted")
}

pub async fn rollback(args: RollbackArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    let mut body = json!({});
    if let Some(m) = args.major {
        body["major"] = json!(m);
    }
    let base = env_path(&args.realm, &args.env);
    let deployed = client
        .post(
            &format!("{base}/deployments/{}/rollback", seg(&args.name)),
            body,
        )
        .await?;
    let status = wait_serving(&client, &base, &deployed).await?;
    show_deployment(&status, args.output, "rolled back")
}

#[allow(clippy::print_stdout)]
pub async fn global(args: GlobalArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    match args.command {
        GlobalCommand::Set {
            name,
            value,
            realm,
            env,
        } => {
            let parsed = serde_json::from_str::<Value>(&value).unwrap_or(Value::String(value));
            client
                .put(
                    &format!("{}/globals/{}", env_path(&realm, &env), seg(&name)),
                    json!({"value": parsed}),
                )
                .await?;
            println!("global {name} set in {realm}/{env}");
        }
    }
    Ok(0)
}

#[allow(clippy::print_stdout)]
pub async fn account(args: AccountArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    match args.command {
        AccountCommand::Set {
            name,
            kind,
            fields,
            realm,
            env,
        } => {
            let mut map = serde_json::Map::new();
            for field in &fields {
                let Some((k, v)) = field.split_once('=') else {
                    bail!("--field {field}: write it as key=value");
                };
                if k.is_empty() {
                    bail!("--field {field}: the key is empty");
                }
                map.insert(k.to_owned(), Value::String(v.to_owned()));
            }
            client
                .put(
                    &format!("{}/accounts/{}", env_path(&realm, &env), seg(&name)),
                    json!({"type": kind, "fields": map}),
                )
                .await?;
            println!("account {name} ({kind}) set in {realm}/{env}");
        }
    }
    Ok(0)
}

/// `100/1m` → `{requests: 100, per: "1m"}`.
fn rate_limit(text: &str) -> Result<Value> {
    let Some((n, per)) = text.split_once('/') else {
        bail!("--rate-limit {text}: write it as REQUESTS/PERIOD, e.g. 100/1m");
    };
    let requests: u32 = n
        .trim()
        .parse()
        .with_context(|| format!("--rate-limit {text}: '{n}' is not a whole number"))?;
    Ok(json!({"requests": requests, "per": per.trim()}))
}

#[allow(clippy::print_stdout)]
pub async fn consumer(args: ConsumerArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    match args.command {
        ConsumerCommand::Create {
            name,
            realm,
            env,
            pipelines,
            rate_limit: limit,
            quiet,
            output,
        } => {
            let mut body = json!({"name": name, "pipelines": pipelines});
            if let Some(text) = &limit {
                body["rateLimit"] = rate_limit(text)?;
            }
            let created = client
                .post(&format!("{}/consumers", env_path(&realm, &env)), body)
                .await?;
            if quiet {
                println!("{}", cell(&created, "key"));
            } else if output == Output::Json {
                print_json(&created)?;
            } else {
                println!("consumer {name} created in {realm}/{env}");
                println!("api key (shown once): {}", cell(&created, "key"));
            }
        }
    }
    Ok(0)
}

fn need_realm(args: &GetArgs) -> Result<&str> {
    args.realm
        .as_deref()
        .context("--realm is needed for this kind")
}

pub async fn get(args: GetArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    let page = format!("limit={}", args.limit);
    let (path, headers, columns): (String, &[&str], &[&str]) = match args.kind {
        Kind::Realms => (
            format!("/realms?{page}"),
            &["NAME", "CREATED"],
            &["name", "@createdAt"],
        ),
        Kind::Pipelines => (
            format!("{}/pipelines?{page}", realm_path(need_realm(&args)?)),
            &["NAME", "LATEST", "VERSIONS", "UPDATED", "DESCRIPTION"],
            &["name", "latest", "versions", "@updatedAt", "description"],
        ),
        Kind::Deployments => {
            let realm = need_realm(&args)?;
            let path = match &args.env {
                Some(env) => format!("{}/deployments?{page}", env_path(realm, env)),
                None => format!("{}/deployments?{page}", realm_path(realm)),
            };
            (
                path,
                &[
                    "PIPELINE",
                    "VERSION",
                    "ENV",
                    "STATE",
                    "REPLICAS",
                    "CONCURRENCY",
                    "DEPLOYED",
                ],
                &[
                    "pipeline",
                    "version",
                    "environment",
                    "state",
                    "replicas",
                    "concurrency",
                    "@deployedAt",
                ],
            )
        }
        Kind::Executions => {
            let realm = need_realm(&args)?;
            let mut path = format!("{}/executions?{page}", realm_path(realm));
            for (name, value) in [
                ("environment", &args.env),
                ("pipeline", &args.pipeline),
                ("status", &args.status),
                ("q", &args.search),
            ] {
                if let Some(v) = value {
                    path.push_str(&format!("&{name}={}", seg(v)));
                }
            }
            (
                path,
                &[
                    "KEY", "PIPELINE", "VERSION", "ENV", "STATUS", "STARTED", "MS", "ERROR",
                ],
                &[
                    "key",
                    "pipeline",
                    "version",
                    "environment",
                    "status",
                    "startedAt",
                    "durationMs",
                    "error",
                ],
            )
        }
        Kind::Consumers => {
            let realm = need_realm(&args)?;
            let path = match &args.env {
                Some(env) => format!("{}/consumers?{page}", env_path(realm, env)),
                None => format!("{}/consumers?{page}", realm_path(realm)),
            };
            (
                path,
                &["NAME", "ENV", "PIPELINES", "RATE LIMIT", "CREATED"],
                &[
                    "name",
                    "environment",
                    "pipelines",
                    "rateLimit",
                    "@createdAt",
                ],
            )
        }
    };
    let listing = client.get(&path).await?;
    if args.output == Output::Json {
        print_json(&listing)?;
        return Ok(0);
    }
    let items = listing["items"].as_array().cloned().unwrap_or_default();
    if args.quiet {
        let mut text = String::new();
        for item in &items {
            text.push_str(&cell(item, columns[0]));
            text.push('\n');
        }
        crate::client::emit(&text);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            let item = flatten_for_table(item);
            columns
                .iter()
                .map(|c| match c.strip_prefix('@') {
                    Some(field) => time_cell(&item, field),
                    None => cell(&item, c),
                })
                .collect()
        })
        .collect();
    print_table(headers, &rows);
    Ok(0)
}

/// Table-friendly fields: a deployment's state, a pipeline's latest
/// version, pipelines and keys as short lists.
fn flatten_for_table(item: &Value) -> Value {
    let mut item = item.clone();
    if let Some(state) = item.pointer("/status/state").cloned() {
        item["state"] = state;
    }
    if let (Some(major), Some(minor)) = (item.get("latestMajor"), item.get("latestMinor")) {
        item["latest"] = json!(format!("{major}.{minor}"));
    }
    if let Some(list) = item.get("pipelines").and_then(Value::as_array) {
        let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
        item["pipelines"] = json!(names.join(","));
    }
    if let Some(limit) = item.get("rateLimit").filter(|l| !l.is_null()) {
        item["rateLimit"] = json!(format!("{}/{}ms", limit["requests"], limit["perMs"]));
    }
    item
}

#[allow(clippy::print_stdout)]
pub async fn logs(args: LogsArgs) -> Result<u8> {
    let client = Client::new(&args.remote)?;
    let record = client
        .get(&format!(
            "{}/executions/{}",
            realm_path(&args.realm),
            seg(&args.key)
        ))
        .await?;
    if args.output == Output::Json {
        print_json(&record)?;
        return Ok(0);
    }
    println!(
        "{} {} {} in {} {} ({} ms)",
        cell(&record, "key"),
        cell(&record, "pipeline"),
        cell(&record, "version"),
        cell(&record, "environment"),
        cell(&record, "status"),
        cell(&record, "durationMs"),
    );
    if let Some(error) = record.get("error").and_then(Value::as_str) {
        println!("error: {error}");
    }
    let lines = record["logs"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                time_cell(l, "at"),
                cell(l, "level"),
                cell(l, "step"),
                cell(l, "message"),
            ]
        })
        .collect();
    print_table(&["TIME", "LEVEL", "STEP", "MESSAGE"], &rows);
    if let Some(steps) = record.get("trace").and_then(Value::as_array) {
        println!();
        let rows: Vec<Vec<String>> = steps
            .iter()
            .map(|s| {
                vec![
                    cell(s, "step"),
                    cell(s, "type"),
                    cell(s, "status"),
                    cell(s, "durationUs"),
                ]
            })
            .collect();
        print_table(&["STEP", "TYPE", "STATUS", "US"], &rows);
    }
    Ok(0)
}
