//! The `pc-autoscaler` command line: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pc_autoscaler::config::{self, LoadError};

#[derive(Parser)]
#[command(version, about = "Autoscales AWS Lambda provisioned concurrency")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration; print every error, or the bounds now and the next schedule changes.
    Check {
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: PathBuf,
    },
}

/// Exit status for an invalid configuration (distinct from 1, a runtime failure).
const EXIT_INVALID_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            print!(
                "{}",
                pc_autoscaler::check::render(&config, chrono::Utc::now())
            );
            ExitCode::SUCCESS
        }
        Err(error @ LoadError::Read { .. }) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
        Err(LoadError::Invalid(errors)) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}
