//! The AWS-facing commands: `plan` (one evaluation, no writes) and `run --once` (one
//! evaluation, carried out). They connect, call `runtime::once` and render with `plan`.

use std::time::Duration;

use crate::config::Config;
use crate::runtime::course::ReadBacks;
use crate::runtime::evaluate::nothing_read;
use crate::runtime::once::{self, ApplyOptions, Context};
use crate::{aws, plan};

async fn context(
    config: Config,
    read_rate: Option<f64>,
) -> Context<aws::SdkLambda, aws::SdkMetrics> {
    let (lambda, metrics) = aws::connect(&config.aws).await;
    let rate = read_rate.unwrap_or(config.daemon.max_read_rate);
    Context::new(config, lambda, metrics, rate)
}

/// One evaluation against AWS, no writes: a table, or JSON with `json`. The flag is
/// true when nothing could be read: every target blocked or its metrics unreadable.
/// `read_rate` overrides `daemon.max_read_rate`.
pub async fn plan(config: Config, json: bool, read_rate: Option<f64>) -> (String, bool) {
    let context = context(config, read_rate).await;
    let evaluations = once::evaluate(&context).await;
    let nothing_read = nothing_read(&evaluations);
    let rows = plan::rows(&evaluations);
    let output = if json {
        serde_json::to_string_pretty(&rows).expect("plan rows serialize: plain strings and numbers")
            + "\n"
    } else {
        let mut table = plan::render(&rows);
        table.push_str(&crate::check::budget_line(&context.config));
        table.push('\n');
        if let Some(warning) = crate::check::budget_warning(&context.config) {
            table.push_str(&format!("warning: {warning}\n"));
        }
        table
    };
    (output, nothing_read)
}

/// Options of `run --once`.
#[derive(Debug, Clone)]
pub struct OnceOptions {
    /// Decide and report, never write (also set by `daemon.dry_run`).
    pub dry_run: bool,
    /// How long one target may take: writes, retries and waiting for READY; `None`:
    /// `ApplyOptions`'s default.
    pub wait: Option<Duration>,
    /// The first wait before an allocation's status is read back (each later one
    /// waits twice as long, up to 30 s); `None`: 2 s, as the daemon.
    pub poll_interval: Option<Duration>,
    /// Lambda requests per second; `None`: `daemon.max_read_rate`.
    pub read_rate: Option<f64>,
}

/// One evaluation, carried out. Returns the report and whether any target failed.
pub async fn run_once(config: Config, options: &OnceOptions) -> (String, bool) {
    let dry_run = options.dry_run || config.daemon.dry_run;
    if config.leader.is_some() && !dry_run {
        // A one-shot run is an operator's deliberate act; it does not contend for the
        // lease, so it must say that its writes go beside the leader's.
        tracing::warn!(
            "`run --once` does not take the leader lease: its writes go beside those of the copy that leads; use --dry-run while copies run"
        );
    }
    let context = context(config, options.read_rate).await;
    let evaluations = once::evaluate(&context).await;
    let nothing_read = nothing_read(&evaluations);
    let defaults = ApplyOptions::default();
    let apply_options = ApplyOptions {
        dry_run,
        deadline: options.wait.unwrap_or(defaults.deadline),
        read_backs: ReadBacks {
            first: options.poll_interval.unwrap_or(defaults.read_backs.first),
            ..defaults.read_backs
        },
        ..defaults
    };
    let results = once::apply(&context, evaluations, &apply_options).await;
    let failed = nothing_read || results.iter().any(|(_, applied)| applied.is_failure());
    (plan::render_applied(&results), failed)
}
