//! The command line's arguments, as clap derives them. The binary parses them; the
//! man pages, the shell completions and the CLI reference are generated from the same
//! definitions, so they cannot drift. What it must not do: act on the arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The version `--version` prints: the crate's, and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PC_AUTOSCALER_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "pc-autoscaler",
    version = VERSION,
    about = "Autoscales AWS Lambda provisioned concurrency"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate a configuration; print every error, or the bounds now and the next schedule changes.
    Check {
        /// The configuration file.
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: PathBuf,
        /// Also read each target's function with the configured credentials, read
        /// only: what Lambda would refuse (SnapStart, a weighted alias, a function
        /// that is not there) and who else manages it (Application Auto Scaling).
        #[arg(long)]
        aws: bool,
    },
    /// One evaluation against AWS without writing: what would change, and why.
    Plan {
        /// The configuration file.
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
    /// From Application Auto Scaling to pc-autoscaler and back. Without a flag, read
    /// only: read AAS's scalable targets, policies and scheduled actions for Lambda in
    /// one account and Region, write a config that carries them over (`--out`), and
    /// replay what AAS and that config would each have cost and spilled. `--rollback`
    /// resumes AAS exactly as it was for every target taken over; the daemon then
    /// leaves them alone.
    Migrate(MigrateArgs),
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
    /// Read the lease table once: who holds each lease (each shard's with `[leader]
    /// spread`), at which epoch, and how long ago it was renewed.
    Leases {
        /// The configuration file.
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: PathBuf,
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
    /// Print the completion script for a shell, from this build's own arguments.
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page, or with `--out DIR` write one for the command and one for
    /// each subcommand there.
    Man {
        /// The directory the pages are written to.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `migrate`'s arguments.
#[derive(clap::Args)]
pub struct MigrateArgs {
    /// A config for `[aws]` and `[[account]]`s; with `--rollback`, the config whose
    /// daemon took the targets over (it says where the records are kept).
    #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
    pub config: Option<PathBuf>,
    /// The Region; default the account's only one, or `[aws] region`.
    #[arg(long)]
    pub region: Option<String>,
    /// An `[[account]]` of the config; default the base credentials' account.
    #[arg(long)]
    pub account: Option<String>,
    /// Where the config is written (an existing file is refused).
    #[arg(long, required_unless_present_any = ["rollback", "forget_handed_back"])]
    pub out: Option<PathBuf>,
    /// Days of history replayed (0: none; CloudWatch keeps one-minute data for 15).
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(0..=15))]
    pub days: u32,
    /// Lambda requests per second (default: `daemon.max_read_rate`, 10).
    #[arg(long, value_parser = read_rate)]
    pub read_rate: Option<f64>,
    /// Restore the suspended state recorded for every target taken over, and mark
    /// it handed back.
    #[arg(long, requires = "config", conflicts_with_all = ["out", "forget_handed_back"])]
    pub rollback: bool,
    /// Forget the targets handed back, so that `take_over_aas` takes them over again.
    #[arg(long, requires = "config", conflicts_with = "out")]
    pub forget_handed_back: bool,
}

/// A shell that `completions` writes for.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand)]
pub enum OverrideAction {
    /// `set TARGET KIND` or `set --all KIND` or `set --glob G KIND`, where KIND is
    /// `pin N`, `floor N`, `ceiling N`, `pause scale-in`, `pause scale-out` or
    /// `pause all`; with `--for` or `--until` (at most 30 days) and `--reason`.
    Set {
        /// The configuration file.
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
        /// The configuration file.
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: PathBuf,
    },
    /// Ends an override now: by its id, every one set on a target by name, or with
    /// `--all` every one (without reading them: it also empties a store that no longer
    /// reads).
    Clear {
        /// The configuration file.
        #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
        config: PathBuf,
        /// Every override.
        #[arg(long, conflicts_with = "id_or_target")]
        all: bool,
        /// An override's id, or a target: every override set on that target by name.
        #[arg(required_unless_present = "all")]
        id_or_target: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
    pub config: PathBuf,
    /// One evaluation, applied; exit non-zero if any target failed.
    #[arg(long)]
    pub once: bool,
    /// Decide and report, never write.
    #[arg(long)]
    pub dry_run: bool,
    /// Serve /metrics, /healthz and /readyz here instead of `daemon.listen`.
    #[arg(long, env = "PC_AUTOSCALER_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// How long one target may take (writes, retries, waiting for READY) [default: 5m].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,
    /// The first wait before an allocation's status is read back; each later one waits
    /// twice as long, up to 30 s [default: 2s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub poll_interval: Option<std::time::Duration>,
    /// `--once`: Lambda requests per second (default: `daemon.max_read_rate`, 10).
    /// The daemon spends `daemon.control_plane_budget` instead.
    #[arg(long, value_parser = read_rate)]
    pub read_rate: Option<f64>,
    /// For failure tests: the daemon's wall clock runs this far ahead of the
    /// system's (leader election must not care).
    #[arg(long, hide = true, value_parser = humantime::parse_duration)]
    pub clock_ahead: Option<std::time::Duration>,
}

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// The configuration file.
    #[arg(long, env = "PC_AUTOSCALER_CONFIG")]
    pub config: PathBuf,
    /// Target whose policy to replay (its name); default the first.
    #[arg(long)]
    pub target: Option<String>,
    /// CSV with header `timestamp,value`; default a built-in synthetic week.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// What the trace's values count: requests per step (turned into concurrency with
    /// `--duration-ms`) or concurrency.
    #[arg(long, value_enum, default_value = "requests")]
    pub trace_kind: TraceKindArg,
    /// Mean request duration, to turn requests per step into concurrency.
    #[arg(long, default_value_t = 1000.0)]
    pub duration_ms: f64,
    /// Rescale demand so its mean concurrency is this.
    #[arg(long)]
    pub mean_concurrency: Option<f64>,
    /// Move the trace to start at this time (RFC 3339), so schedules apply there.
    #[arg(long)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// Minutes until a CloudWatch datapoint can be read.
    #[arg(long, default_value_t = crate::simulate::model::DEFAULT_METRIC_LAG_MINUTES)]
    pub metric_lag: usize,
    /// Function memory, for the cost of provisioned concurrency.
    #[arg(long, default_value_t = 1024.0)]
    pub memory_mb: f64,
    /// Write report.json and chart.svg here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also replay each policy over a range of target values and draw spillover
    /// against cost (`frontier.svg`, and `frontier` in report.json).
    #[arg(long)]
    pub sweep: bool,
    /// Also split the config's spillover above the reactive bound into its causes, each
    /// replayed at the same cost (`split` in report.json).
    #[arg(long)]
    pub split: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TraceKindArg {
    Requests,
    Concurrency,
}

/// A request rate within the bounds `daemon.max_read_rate` has.
pub fn read_rate(text: &str) -> Result<f64, String> {
    let (low, high) = crate::config::RATE_RANGE;
    match text.parse::<f64>() {
        Ok(rate) if (low..=high).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "must be a number of requests per second from {low} to {high}"
        )),
    }
}
