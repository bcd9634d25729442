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
    /// One evaluation against AWS without writing: what would change, and why.
    Plan {
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Lambda requests per second while reading every function once (default:
        /// `daemon.max_read_rate`, 10).
        #[arg(long, value_parser = read_rate)]
        read_rate: Option<f64>,
    },
    /// Read-only: what provisioned concurrency costs one account and Region now, what
    /// is wrong with it, and what it would cost and spill managed, replayed from its
    /// own CloudWatch history.
    Audit {
        /// A config for `[aws]` and `[[account]]`s (optional).
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: Option<PathBuf>,
        /// The Region; default the account's only one, or `[aws] region`.
        #[arg(long)]
        region: Option<String>,
        /// An `[[account]]` of the config; default the base credentials' account.
        #[arg(long)]
        account: Option<String>,
        /// Days of history read (CloudWatch keeps one-minute data for 15).
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=15))]
        days: u32,
        /// Write report.json, audit.svg and audit.toml (a starter config) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Lambda requests per second (default: `daemon.max_read_rate`, 10).
        #[arg(long, value_parser = read_rate)]
        read_rate: Option<f64>,
    },
    /// The daemon: evaluate and apply every interval, at schedule boundaries and after
    /// allocations; SIGHUP reloads, SIGTERM stops. `--once`: a single pass that waits
    /// for the outcomes.
    Run(RunArgs),
    /// Replay a load trace through this policy, Application Auto Scaling and an oracle.
    Simulate(SimulateArgs),
    /// Operators' overrides: pin, floor, cap or pause targets for a while, with a reason.
    /// Kept where every copy of the daemon reads them (the lease table with
    /// `[leader]`, else `daemon.state_directory`); the daemon applies them within an
    /// interval.
    Override {
        #[command(subcommand)]
        action: OverrideAction,
    },
    /// Ask a running daemon what each target has, wants and why, and what it changed.
    Status {
        /// The daemon's HTTP address (`daemon.listen`).
        #[arg(long, default_value = "http://127.0.0.1:9464")]
        url: String,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// How many recent changes to show (the daemon keeps 100 per target).
        #[arg(long, default_value_t = 100)]
        last: usize,
    },
}

#[derive(Subcommand)]
enum OverrideAction {
    /// `set TARGET KIND` or `set --all KIND` or `set --glob G KIND`, where KIND is
    /// `pin N`, `floor N`, `ceiling N`, `pause scale-in`, `pause scale-out` or
    /// `pause all`; with `--for` or `--until` (at most 30 days) and `--reason`.
    Set {
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: PathBuf,
        /// Every target of the config.
        #[arg(long, conflicts_with = "glob")]
        all: bool,
        /// The targets whose names match (`*` any run, `?` one character).
        #[arg(long)]
        glob: Option<String>,
        /// How long it lasts, e.g. `2h`.
        #[arg(long = "for", value_parser = humantime::parse_duration, conflicts_with = "until", required_unless_present = "until")]
        lasting: Option<std::time::Duration>,
        /// When it ends (RFC 3339, e.g. `2026-12-05T02:00:00+01:00`).
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// Why: kept with it and shown wherever it is.
        #[arg(long)]
        reason: String,
        /// TARGET (without `--all` or `--glob`) and KIND.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
    },
    /// The overrides in force, with time left, who and why.
    List {
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: PathBuf,
    },
    /// Ends an override now: by its id, or every one set on a target by name.
    Clear {
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: PathBuf,
        id_or_target: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
    config: PathBuf,
    /// One evaluation, applied; exit non-zero if any target failed.
    #[arg(long)]
    once: bool,
    /// Decide and report, never write.
    #[arg(long)]
    dry_run: bool,
    /// Serve /metrics, /healthz and /readyz here instead of `daemon.listen`.
    #[arg(long, env = "PC_AUTOSCALER_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// How long one target may take (writes, retries, waiting for READY) [default: 5m].
    #[arg(long, value_parser = humantime::parse_duration)]
    wait: Option<std::time::Duration>,
    /// The first wait before an allocation's status is read back; each later one waits
    /// twice as long, up to 30 s [default: 2s].
    #[arg(long, value_parser = humantime::parse_duration)]
    poll_interval: Option<std::time::Duration>,
    /// `--once`: Lambda requests per second (default: `daemon.max_read_rate`, 10).
    /// The daemon spends `daemon.control_plane_budget` instead.
    #[arg(long, value_parser = read_rate)]
    read_rate: Option<f64>,
    /// For failure tests: the daemon's wall clock runs this far ahead of the
    /// system's (leader election must not care).
    #[arg(long, hide = true, value_parser = humantime::parse_duration)]
    clock_ahead: Option<std::time::Duration>,
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
    /// Also replay each policy over a range of target values and draw spillover
    /// against cost (`frontier.svg`, and `frontier` in report.json).
    #[arg(long)]
    sweep: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TraceKindArg {
    Requests,
    Concurrency,
}

/// Exit status for an invalid configuration or flag (distinct from 1, a runtime failure).
const EXIT_INVALID_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Simulate(args) => simulate(args),
        Command::Audit {
            config,
            region,
            account,
            days,
            out,
            read_rate,
        } => {
            let options = pc_autoscaler::cli::commands::AuditOptions {
                region,
                account,
                days,
                out,
                read_rate,
            };
            match config {
                Some(path) => with_config(&path, |config| audit(config, &options)),
                None => {
                    init_logging(config::LogFormat::Text);
                    audit(config::Config::without_targets(), &options)
                }
            }
        }
        Command::Plan {
            config,
            json,
            read_rate,
        } => with_config(&config, |config| {
            let (output, nothing_read) =
                runtime().block_on(pc_autoscaler::cli::commands::plan(config, json, read_rate));
            emit(&output);
            if nothing_read {
                eprintln!("error: nothing could be read from AWS; see the reasons above");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }),
        Command::Override { action } => override_command(action),
        Command::Status { url, target, last } => {
            match pc_autoscaler::cli::status::report(&url, target.as_deref(), last) {
                Ok(report) => {
                    emit(&report);
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => run(args),
    }
}

/// `run`: the daemon, or with `--once` a single pass carried out.
fn run(args: RunArgs) -> ExitCode {
    let RunArgs {
        config,
        once,
        dry_run,
        listen,
        wait,
        poll_interval,
        read_rate,
        clock_ahead,
    } = args;
    if !once {
        pc_autoscaler::trim::tune_allocator();
        let clock = clock_ahead.map_or(pc_autoscaler::clock::Clock::System, |ahead| {
            pc_autoscaler::clock::Clock::Ahead(ahead)
        });
        return with_config(&config.clone(), |loaded| {
            match runtime().block_on(pc_autoscaler::runtime::drivers::daemon::run_from_file(
                config,
                loaded,
                pc_autoscaler::runtime::drivers::daemon::Overrides { dry_run, listen },
                clock,
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        });
    }
    with_config(&config, |config| {
        let options = pc_autoscaler::cli::commands::OnceOptions {
            dry_run,
            wait,
            poll_interval,
            read_rate,
        };
        let (output, failed) =
            runtime().block_on(pc_autoscaler::cli::commands::run_once(config, &options));
        emit(&output);
        if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// A request rate within the bounds `daemon.max_read_rate` has.
fn read_rate(text: &str) -> Result<f64, String> {
    let (low, high) = config::RATE_RANGE;
    match text.parse::<f64>() {
        Ok(rate) if (low..=high).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "must be a number of requests per second from {low} to {high}"
        )),
    }
}

fn audit(config: config::Config, options: &pc_autoscaler::cli::commands::AuditOptions) -> ExitCode {
    use std::io::IsTerminal as _;
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |step: String| {
        if terminal {
            eprintln!("{step}");
        }
    };
    match runtime().block_on(pc_autoscaler::cli::commands::audit(
        config,
        options,
        &mut progress,
    )) {
        Ok(report) => {
            emit(&report);
            ExitCode::SUCCESS
        }
        Err(pc_autoscaler::cli::commands::AuditFailure::Invalid(why)) => {
            eprintln!("error: {why}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts: this only fails when the OS refuses threads")
}

/// Writes a command's output to stdout; a reader that went away (`| head`) is not an
/// error worth a panic.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Loads the config, sets up logging from it, and runs `body`; exit 2 when invalid.
fn with_config(path: &std::path::Path, body: impl FnOnce(config::Config) -> ExitCode) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            init_logging(config.daemon.log_format);
            body(config)
        }
        Err(LoadError::Invalid(errors)) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}

/// Logs go to stderr; `RUST_LOG` filters them (default `info`). The text format has no
/// colour and escapes whatever a field held (`escape::EscapingWriter`), so one event is
/// one line, whatever a file, a tag or an AWS answer put in it; JSON escapes by itself.
fn init_logging(format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    match format {
        config::LogFormat::Text => builder
            .with_writer(|| pc_autoscaler::escape::EscapingWriter(std::io::stderr()))
            .init(),
        config::LogFormat::Json => builder.with_writer(std::io::stderr).json().init(),
    }
}

fn simulate(args: SimulateArgs) -> ExitCode {
    let request = simulate::Request {
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
        sweep: args.sweep,
    };
    with_config(&args.config, |config| {
        let outcome = match simulate::execute(&config, &request) {
            Ok(outcome) => outcome,
            Err(error) => {
                eprintln!("error: {error}");
                return if error.is_bad_input() {
                    ExitCode::from(EXIT_INVALID_CONFIG)
                } else {
                    ExitCode::FAILURE
                };
            }
        };
        emit(&simulate::render_table(&outcome.report));
        if let Some(dir) = &args.out {
            if let Err(error) = simulate::write_outputs(&outcome, dir) {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
            let frontier = if args.sweep {
                format!(" and {}/frontier.svg", dir.display())
            } else {
                String::new()
            };
            emit(&format!(
                "wrote {0}/report.json and {0}/chart.svg{frontier}\n",
                dir.display()
            ));
        }
        ExitCode::SUCCESS
    })
}

fn override_command(action: OverrideAction) -> ExitCode {
    use pc_autoscaler::cli::commands::{OverrideCommand, OverrideFailure};
    use pc_autoscaler::runtime::state::overrides::{Scope, SetRequest};
    let now = pc_autoscaler::clock::Clock::System.now();
    let (path, command) = match action {
        OverrideAction::List { config } => (config, OverrideCommand::List),
        OverrideAction::Clear {
            config,
            id_or_target,
        } => (config, OverrideCommand::Clear(id_or_target)),
        OverrideAction::Set {
            config,
            all,
            glob,
            lasting,
            until,
            reason,
            mut words,
        } => {
            let scope = match (all, glob) {
                (true, _) => Scope::All,
                (false, Some(pattern)) => Scope::Glob(pattern),
                (false, None) => Scope::Target(words.remove(0)),
            };
            let until = match (lasting, until) {
                (Some(lasting), _) => chrono::TimeDelta::from_std(lasting)
                    .ok()
                    .and_then(|lasting| now.checked_add_signed(lasting))
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
                (None, Some(until)) => until.with_timezone(&chrono::Utc),
                // clap requires one of them; none would be refused as not ahead.
                (None, None) => now,
            };
            // Who set it: the local user (the AWS identity is not read yet).
            let by = std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into());
            let request = SetRequest {
                scope,
                kind: words.join(" "),
                until,
                reason,
                by,
            };
            (config, OverrideCommand::Set(request))
        }
    };
    with_config(&path, |config| {
        let id = format!("{:08x}", fastrand::u32(..));
        match runtime().block_on(pc_autoscaler::cli::commands::overrides(
            &config, command, now, id,
        )) {
            Ok(text) => {
                emit(&text);
                ExitCode::SUCCESS
            }
            Err(OverrideFailure::Invalid(why)) => {
                eprintln!("error: {}", pc_autoscaler::escape::Printable(&why));
                ExitCode::from(EXIT_INVALID_CONFIG)
            }
            Err(OverrideFailure::Store(why)) => {
                eprintln!("error: {}", pc_autoscaler::escape::Printable(&why));
                ExitCode::FAILURE
            }
        }
    })
}

fn check(path: &std::path::Path) -> ExitCode {
    with_config(path, |config| {
        // What the file system must give the daemon, checked where it will run.
        let places = [
            (
                "daemon.activity_log",
                config
                    .daemon
                    .activity_log
                    .as_deref()
                    .map(pc_autoscaler::runtime::state::activity::check_path),
            ),
            (
                "daemon.state_directory",
                config
                    .daemon
                    .state_directory
                    .as_deref()
                    .map(pc_autoscaler::runtime::drivers::daemon::check_state_directory),
            ),
        ];
        for (key, checked) in places {
            if let Some(Err(why)) = checked {
                eprintln!(
                    "error: {}: {key}: {}",
                    pc_autoscaler::escape::Printable(&path.display().to_string()),
                    pc_autoscaler::escape::Printable(&why)
                );
                return ExitCode::from(EXIT_INVALID_CONFIG);
            }
        }
        emit(&pc_autoscaler::cli::check::render(
            &config,
            pc_autoscaler::clock::Clock::System.now(),
        ));
        ExitCode::SUCCESS
    })
}
