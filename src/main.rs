//! The `pc-autoscaler` command line: parses arguments and calls into the library.
//!
//! What it must not do: hold logic: every command is the library's, and only this file
//! prints.

use std::process::ExitCode;

use clap::Parser as _;

use pc_autoscaler::cli::args::{Cli, Command, OverrideAction, RunArgs, SimulateArgs, TraceKindArg};
use pc_autoscaler::config::{self, LoadError};
use pc_autoscaler::simulate;

/// Exit status for an invalid configuration or flag (distinct from 1, a runtime failure).
const EXIT_INVALID_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config, aws } => check(&config, aws),
        Command::Simulate(args) => simulate(args),
        Command::Audit {
            config,
            region,
            account,
            days,
            out,
            read_rate,
        } => {
            let options = pc_autoscaler::cli::audit::AuditOptions {
                region,
                account,
                days,
                out,
                read_rate,
            };
            match config {
                Some(path) => with_survey_config(&path, |config| audit(config, &options)),
                None => {
                    init_logging(config::LogFormat::Text);
                    audit(config::Config::without_targets(), &options)
                }
            }
        }
        Command::Migrate(args) => migrate_command(args),
        Command::Plan {
            config,
            json,
            read_rate,
        } => with_config(&config, |config| {
            let (output, nothing_read) =
                runtime().block_on(pc_autoscaler::cli::once::plan(config, json, read_rate));
            emit(&output);
            if nothing_read {
                eprintln!("error: nothing could be read from AWS; see the reasons above");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }),
        Command::Override { action } => override_command(action),
        Command::Leases { config } => with_config(&config, |config| {
            let now = pc_autoscaler::clock::Clock::System.now();
            match runtime().block_on(pc_autoscaler::cli::leases::report(&config, now)) {
                Ok(report) => {
                    emit(&report);
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }),
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
        Command::Completions { shell } => {
            emit_bytes(&pc_autoscaler::cli::manual::completions(shell));
            ExitCode::SUCCESS
        }
        Command::Man { out } => man(out.as_deref()),
    }
}

/// `man`: the command's page on stdout, or every page written to `out`.
fn man(out: Option<&std::path::Path>) -> ExitCode {
    let pages = pc_autoscaler::cli::manual::man_pages();
    let Some(dir) = out else {
        emit_bytes(&pages[0].1);
        return ExitCode::SUCCESS;
    };
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        pages
            .iter()
            .try_for_each(|(name, roff)| std::fs::write(dir.join(name), roff))
    });
    match written {
        Ok(()) => {
            emit(&format!(
                "wrote {} man pages to {}\n",
                pages.len(),
                dir.display()
            ));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}: {error}", dir.display());
            ExitCode::FAILURE
        }
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
        let options = pc_autoscaler::cli::once::OnceOptions {
            dry_run,
            wait,
            poll_interval,
            read_rate,
        };
        let (output, failed) =
            runtime().block_on(pc_autoscaler::cli::once::run_once(config, &options));
        emit(&output);
        if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

fn migrate_command(args: pc_autoscaler::cli::args::MigrateArgs) -> ExitCode {
    let run = |config: config::Config| -> ExitCode {
        if args.rollback || args.forget_handed_back {
            return handing_back(&config, args.rollback);
        }
        let Some(out) = args.out.clone() else {
            eprintln!("error: --out is required");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        };
        let options = pc_autoscaler::cli::migrate::MigrateOptions {
            region: args.region.clone(),
            account: args.account.clone(),
            out,
            days: args.days,
            read_rate: args.read_rate,
        };
        migrate(config, &options)
    };
    match &args.config {
        Some(path) => with_survey_config(path, run),
        None => {
            init_logging(config::LogFormat::Text);
            run(config::Config::without_targets())
        }
    }
}

fn migrate(
    config: config::Config,
    options: &pc_autoscaler::cli::migrate::MigrateOptions,
) -> ExitCode {
    let mut progress = progress_on_terminal();
    let now = pc_autoscaler::clock::Clock::System.now();
    let migrated = runtime().block_on(pc_autoscaler::cli::migrate::migrate(
        config,
        options,
        now,
        &mut progress,
    ));
    match migrated {
        Ok(text) => {
            emit(&text);
            ExitCode::SUCCESS
        }
        Err(failure) => command_failure(&failure),
    }
}

/// `migrate --rollback` or `--forget-handed-back`.
fn handing_back(config: &config::Config, rollback: bool) -> ExitCode {
    use pc_autoscaler::cli::migrate;
    let now = pc_autoscaler::clock::Clock::System.now();
    let done = if rollback {
        runtime().block_on(migrate::rollback(config, now))
    } else {
        runtime()
            .block_on(migrate::forget_handed_back(config))
            .map(|text| (text, false))
    };
    match done {
        Ok((text, failed)) => {
            emit(&text);
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(failure) => command_failure(&failure),
    }
}

/// Exit 2 for bad input, 1 for what could not be read or written.
fn command_failure(failure: &pc_autoscaler::cli::Failure) -> ExitCode {
    eprintln!("error: {failure}");
    match failure {
        pc_autoscaler::cli::Failure::Invalid(_) => ExitCode::from(EXIT_INVALID_CONFIG),
        pc_autoscaler::cli::Failure::Unreadable(_) => ExitCode::FAILURE,
    }
}

/// Progress lines on stderr, when it is a terminal.
fn progress_on_terminal() -> impl FnMut(String) {
    use std::io::IsTerminal as _;
    let terminal = std::io::stderr().is_terminal();
    move |step: String| {
        if terminal {
            eprintln!("{step}");
        }
    }
}

fn audit(config: config::Config, options: &pc_autoscaler::cli::audit::AuditOptions) -> ExitCode {
    let mut progress = progress_on_terminal();
    let now = pc_autoscaler::clock::Clock::System.now();
    match runtime().block_on(pc_autoscaler::cli::audit::audit(
        config,
        options,
        now,
        &mut progress,
    )) {
        Ok(audited) => {
            // The table first: a failure to write the files must not lose it.
            emit(&audited.text);
            let Some(dir) = &options.out else {
                return ExitCode::SUCCESS;
            };
            match pc_autoscaler::cli::audit::write_outputs(&audited.report, dir) {
                Ok(wrote) => {
                    emit(&wrote);
                    ExitCode::SUCCESS
                }
                Err(failure) => {
                    eprintln!("error: {failure}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(failure) => command_failure(&failure),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts: this only fails when the OS refuses threads")
}

/// Writes bytes to stdout, as [`emit`] does text.
fn emit_bytes(bytes: &[u8]) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes).and_then(|()| stdout.flush());
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
    with_loaded(config::load(path), body)
}

/// As [`with_config`], for the commands that come before any target.
fn with_survey_config(
    path: &std::path::Path,
    body: impl FnOnce(config::Config) -> ExitCode,
) -> ExitCode {
    with_loaded(config::load_for_survey(path), body)
}

fn with_loaded(
    loaded: Result<config::Config, LoadError>,
    body: impl FnOnce(config::Config) -> ExitCode,
) -> ExitCode {
    match loaded {
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
            // The config's `quiet_read_period` replaces it.
            ..Default::default()
        },
        sweep: args.sweep,
        split: args.split,
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
    use pc_autoscaler::cli::overrides::{OverrideCommand, OverrideFailure};
    use pc_autoscaler::runtime::state::overrides::{Scope, SetRequest};
    let now = pc_autoscaler::clock::Clock::System.now();
    let (path, command) = match action {
        OverrideAction::List { config } => (config, OverrideCommand::List),
        OverrideAction::Clear {
            config,
            all,
            id_or_target,
        } => match (all, id_or_target) {
            (false, Some(named)) => (config, OverrideCommand::Clear(named)),
            // clap requires one of them.
            _ => (config, OverrideCommand::ClearAll),
        },
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
        match runtime().block_on(pc_autoscaler::cli::overrides::overrides(
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

fn check(path: &std::path::Path, aws: bool) -> ExitCode {
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
        if let Some(directory) = &config.daemon.state_directory {
            for place in pc_autoscaler::runtime::state::files::unsafe_modes(directory) {
                eprintln!(
                    "warning: daemon.state_directory: {} may be written by others than its owner: whoever may write the store may set overrides",
                    pc_autoscaler::escape::Printable(&place)
                );
            }
        }
        emit(&pc_autoscaler::cli::check::render(
            &config,
            pc_autoscaler::clock::Clock::System.now(),
        ));
        if !aws {
            return ExitCode::SUCCESS;
        }
        let (report, failed) = runtime().block_on(pc_autoscaler::cli::once::check_aws(config));
        emit(&report);
        if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}
