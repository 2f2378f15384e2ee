//! The `sluice-bench` command: argument parsing and wiring over the
//! `sluice_bench` library.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use reqwest::header::{HeaderName, HeaderValue};
use sluice_bench::{ceiling, load};
use sluice_spec::HumanDuration;

/// Benchmark tools: a reference server and a fixed-rate load generator.
#[derive(Parser)]
#[command(name = "sluice-bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the benchmark pipeline's work (`POST /echo`) hand-written on
    /// axum: the ceiling a platform can only approach.
    Ceiling(CeilingArgs),
    /// Send POST requests at a fixed rate and print latency percentiles as
    /// JSON, measured from each request's scheduled send time.
    Load(LoadArgs),
}

#[derive(Args)]
struct CeilingArgs {
    /// Address to listen on, e.g. 127.0.0.1:8090 (port 0 picks a free one).
    #[arg(long)]
    listen: String,
    /// Require this value in the `apikey` header (401 otherwise).
    #[arg(long)]
    key: Option<String>,
}

#[derive(Args)]
struct LoadArgs {
    /// URL to POST to.
    #[arg(long)]
    url: String,
    /// Requests per second.
    #[arg(long)]
    rate: f64,
    /// How long to measure, e.g. 10s or 500ms.
    #[arg(long, value_parser = parse_duration)]
    duration: Duration,
    /// Most connections (and requests in flight); a request waiting for one
    /// counts the wait in its latency.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Extra request header `name: value` (repeatable).
    #[arg(long = "header", value_parser = load::parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body.
    #[arg(long, default_value = load::DEFAULT_BODY)]
    body: String,
    /// Time at the same rate sent first and not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Time after which a request counts as an error.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Worker threads of the generator (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    HumanDuration::parse(text).map(|d| d.0)
}

fn main() -> Result<()> {
    sluice_bench::install_tls_provider();
    match Cli::parse().command {
        Command::Ceiling(args) => run_ceiling(args),
        Command::Load(args) => run_load(args),
    }
}

#[allow(clippy::print_stdout)]
fn run_ceiling(args: CeilingArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        println!("listening on {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        ceiling::serve(listener, args.key, shutdown_signal()).await?;
        Ok(())
    })
}

#[allow(clippy::print_stdout)]
fn run_load(args: LoadArgs) -> Result<()> {
    anyhow::ensure!(args.threads >= 1, "--threads must be at least 1");
    let config = load::LoadConfig {
        url: args.url,
        rate: args.rate,
        duration: args.duration,
        warmup: args.warmup,
        connections: args.connections,
        headers: args.headers,
        body: args.body.into(),
        timeout: args.timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = runtime.block_on(load::run(&config))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                eprintln!("cannot watch SIGTERM ({e}); only Ctrl-C stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
