//! The `sluice` command: a thin shell over the Sluice crates — argument
//! parsing, reading files, printing results and exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod client;
mod commands;
mod inputs;

/// mimalloc: the gateway path allocates and frees many small JSON values
/// across two threads, where glibc's malloc spends a quarter of the time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sluice: integration pipelines — run, validate and test them, serve the
/// platform, and drive a server.
#[derive(Parser)]
#[command(name = "sluice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline once on an input and print the output as JSON.
    Run(commands::run::RunArgs),
    /// Check pipeline files and report every problem with its place.
    Validate(commands::validate::ValidateArgs),
    /// Run the `tests:` cases of pipeline files (files or directories).
    Test(commands::test::TestArgs),
    /// Print the JSON Schema of the pipeline format (for editors).
    Schema,
    /// Run the platform: API, gateway, runtime and triggers in one process.
    Serve(commands::serve::ServeArgs),
    /// Manage realms on a server.
    Realm(commands::remote::RealmArgs),
    /// Save pipeline files as versions on a server (unchanged files make none).
    Apply(commands::remote::ApplyArgs),
    /// Deploy a pipeline version to an environment and wait until it serves.
    Deploy(commands::remote::DeployArgs),
    /// Deploy to one environment the version serving in another.
    Promote(commands::remote::PromoteArgs),
    /// Deploy again the version served before the current one.
    Rollback(commands::remote::RollbackArgs),
    /// Set globals of an environment.
    Global(commands::remote::GlobalArgs),
    /// Set accounts (credentials) of an environment.
    Account(commands::remote::AccountArgs),
    /// Manage API consumers and their keys.
    Consumer(commands::remote::ConsumerArgs),
    /// List realms, pipelines, deployments, executions or consumers.
    Get(commands::remote::GetArgs),
    /// Show an execution with its log lines and trace.
    Logs(commands::remote::LogsArgs),
}

/// Exit codes scripts can trust.
pub(crate) mod exit {
    /// The execution failed, a test failed, or a file has problems.
    pub const FAILED: u8 = 1;
    /// The command could not do its work (bad arguments, unreadable file).
    pub const USAGE: u8 = 2;
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sluice_connectors::install_tls_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run::run(args).await,
            Command::Validate(args) => commands::validate::run(&args),
            Command::Test(args) => commands::test::run(args).await,
            Command::Schema => commands::schema(),
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Realm(args) => commands::remote::realm(args).await,
            Command::Apply(args) => commands::remote::apply(args).await,
            Command::Deploy(args) => commands::remote::deploy(args).await,
            Command::Promote(args) => commands::remote::promote(args).await,
            Command::Rollback(args) => commands::remote::rollback(args).await,
            Command::Global(args) => commands::remote::global(args).await,
            Command::Account(args) => commands::remote::account(args).await,
            Command::Consumer(args) => commands::remote::consumer(args).await,
            Command::Get(args) => commands::remote::get(args).await,
            Command::Logs(args) => commands::remote::logs(args).await,
        }
    });
    match code {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}
