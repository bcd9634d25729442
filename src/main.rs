//! The `pc-autoscaler` command line: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pc_autoscaler::config::{self, LoadError};
use pc_autoscaler::simulate;

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
    /// Replay a load trace through this policy, Application Auto Scaling and an oracle.
    Simulate(SimulateArgs),
}

#[derive(clap::Args)]
struct SimulateArgs {
    #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
    config: PathBuf,
    /// Target whose policy to replay (its name); default the first.
    #[arg(long)]
    target: Option<String>,
    /// CSV with header `timestamp,value`; default a built-in synthetic week.
    #[arg(long)]
    trace: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "requests")]
    trace_kind: TraceKindArg,
    /// Mean request duration, to turn requests per step into concurrency.
    #[arg(long, default_value_t = 1000.0)]
    duration_ms: f64,
    /// Rescale demand so its mean concurrency is this.
    #[arg(long)]
    mean_concurrency: Option<f64>,
    /// Move the trace to start at this time (RFC 3339), so schedules apply there.
    #[arg(long)]
    start: Option<chrono::DateTime<chrono::Utc>>,
    /// Minutes until a CloudWatch datapoint can be read.
    #[arg(long, default_value_t = pc_autoscaler::simulate::model::DEFAULT_METRIC_LAG_MINUTES)]
    metric_lag: usize,
    /// Function memory, for the cost of provisioned concurrency.
    #[arg(long, default_value_t = 1024.0)]
    memory_mb: f64,
    /// Write report.json and chart.svg here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TraceKindArg {
    Requests,
    Concurrency,
}

/// Exit status for an invalid configuration (distinct from 1, a runtime failure).
const EXIT_INVALID_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Simulate(args) => simulate(args),
    }
}

fn simulate(args: SimulateArgs) -> ExitCode {
    let request = simulate::Request {
        config: args.config,
        target: args.target,
        trace: args.trace,
        trace_kind: match args.trace_kind {
            TraceKindArg::Requests => simulate::TraceKind::Requests,
            TraceKindArg::Concurrency => simulate::TraceKind::Concurrency,
        },
        duration_ms: args.duration_ms,
        mean_concurrency: args.mean_concurrency,
        start: args.start,
        options: simulate::Options {
            metric_lag: args.metric_lag,
            memory_mb: args.memory_mb,
        },
    };
    let outcome = match simulate::execute(&request) {
        Ok(outcome) => outcome,
        Err(simulate::RequestError::Config(LoadError::Invalid(errors))) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", simulate::render_table(&outcome.report));
    if let Some(dir) = &args.out {
        if let Err(error) = simulate::write_outputs(&outcome, dir) {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
        println!("wrote {0}/report.json and {0}/chart.svg", dir.display());
    }
    ExitCode::SUCCESS
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
