//! The `sluice` command: a thin shell over the Sluice crates — argument
//! parsing, reading files, printing results and exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod inputs;

/// Sluice: integration pipelines — run, validate and test them.
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
