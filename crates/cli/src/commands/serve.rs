//! `sluice serve`: the whole platform in this process.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use sluice_server::{Server, ServerConfig};

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Where the database, the master key and the admin token live.
    #[arg(long, env = "SLUICE_DATA", default_value = "./sluice-data")]
    data: PathBuf,
    /// Address of the API, the gateway, health and metrics.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// How the server's own logs are written (level from RUST_LOG, default info).
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// How long shutdown waits for in-flight executions, in seconds.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second subscriber (tests calling twice) is not an error worth failing on.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("stop signal received");
}

#[allow(clippy::print_stdout)]
pub async fn run(args: ServeArgs) -> Result<u8> {
    init_logs(args.log_format);
    let config = ServerConfig {
        data_dir: args.data.clone(),
        admin_token: std::env::var("SLUICE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        master_key: std::env::var("SLUICE_MASTER_KEY")
            .ok()
            .filter(|t| !t.is_empty()),
        drain_timeout: std::time::Duration::from_secs(args.drain_seconds),
        ..ServerConfig::default()
    };
    let server = Server::open(config).await?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    if let Some(token) = &server.new_admin_token {
        println!(
            "admin token (shown once, also in {}): {token}",
            args.data.join("admin-token").display()
        );
    }
    println!(
        "sluice serving on http://{addr} (data in {})",
        args.data.display()
    );
    tracing::info!(%addr, data = %args.data.display(), "serving");
    server.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(0)
}
