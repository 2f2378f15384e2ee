//! `sluice validate`: every problem of every file, or "ok".

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sluice_engine::{LoadError, load_file};

use crate::exit;

#[derive(Args)]
pub struct ValidateArgs {
    /// Pipeline files (YAML or JSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[allow(clippy::print_stdout)]
pub fn run(args: &ValidateArgs) -> Result<u8> {
    let catalog = super::catalog();
    let mut code = 0;
    for file in &args.files {
        match load_file(file, &catalog) {
            Ok(_) => println!("{}: ok", file.display()),
            Err(LoadError::Invalid(problems)) => {
                println!("{problems}");
                code = exit::FAILED;
            }
            Err(e) => {
                println!("{e}");
                code = exit::FAILED;
            }
        }
    }
    Ok(code)
}
