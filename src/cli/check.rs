//! The `check` report: for a valid config, each target's bounds now and the next
//! schedule changes, in the rule's own zone and in UTC.
//!
//! Renders text only; the caller loads the config and passes `now`.
//!
//! What it must not do: reach AWS or read the clock: the caller loads the config and
//! passes `now`.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::aws::dynamodb;
use crate::config::keys::{self, Key, show_duration};
use crate::config::{Config, LeaderSettings, LogFormat, TargetConfig};
use crate::escape::Printable;
use crate::policy::schedule::{self, Bounds};

/// Said of each tracking target that writes neither `forecast` nor `choose_window`.
pub const HISTORY_DEFAULT_NOTE: &str = "note: forecast and choose_window are \"on\" by default since 0.2 (they were \"off\"): this target reads 14 days of history at start and pre-warms from it; write forecast = \"off\" and choose_window = \"off\" for the reactive policy";

/// How many upcoming changes `check` shows per target.
pub const PREVIEW_CHANGES: usize = 3;

pub fn render(config: &Config, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: valid, {} target{}",
        Printable(&config.source.display().to_string()),
        config.targets.len(),
        if config.targets.len() == 1 { "" } else { "s" }
    );
    render_settings(&mut out, config);
    let _ = writeln!(out, "{}", budget_line(config));
    if let Some(line) = selector_load_line(config) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(warning) = budget_warning(config) {
        let _ = writeln!(out, "warning: {warning}");
    }
    for line in cloudwatch_lines(config) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(leader) = &config.leader {
        render_leader(&mut out, leader, &config.shards());
    }
    render_state(&mut out, config);
    render_fleet(&mut out, config);
    if let Some(events) = &config.events {
        let _ = writeln!(
            out,
            "\nevents: every activity also goes to EventBridge bus `{}` (source `{}`), at most {} waiting\n  IAM: {} on the bus (config/iam-policy-events.json)",
            Printable(&events.bus),
            crate::aws::eventbridge::SOURCE,
            events.queue,
            crate::aws::eventbridge::ACTIONS.join(", "),
        );
    }
    for target in &config.targets {
        render_target(&mut out, target, now);
    }
    out
}

/// What the daemon's reads of Lambda cost, from the config alone: one
/// `ListProvisionedConcurrencyConfigs` per function per `drift_scan_period`, one
/// `ListAliases` per function with an alias target per `refresh_period`, the account
/// settings every 5 minutes at least (`GetFunction` has a limit of its own).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadLoad {
    pub functions: usize,
    /// Requests a second the reads take in steady state, on Lambda's shared limit.
    pub steady: f64,
    /// Seconds one pass of drift scans over every function takes at the budget:
    /// also how long a cold start takes until every target is known.
    pub scan_pass: f64,
}

impl ReadLoad {
    pub fn of(config: &Config) -> Self {
        let daemon = &config.daemon;
        let mut functions = std::collections::BTreeSet::new();
        let mut aliased = std::collections::BTreeSet::new();
        for target in &config.targets {
            functions.insert(&target.function);
            if target.is_alias() {
                aliased.insert(&target.function);
            }
        }
        let account_period = daemon
            .refresh_period
            .min(std::time::Duration::from_secs(300));
        let steady = functions.len() as f64 / daemon.drift_scan_period.as_secs_f64()
            + aliased.len() as f64 / daemon.refresh_period.as_secs_f64()
            + 1.0 / account_period.as_secs_f64();
        ReadLoad {
            functions: functions.len(),
            steady,
            scan_pass: functions.len() as f64 / daemon.control_plane_budget,
        }
    }
}

/// What reading the targets' metrics costs a month at CloudWatch's published price,
/// per shard and in total: at most (every target near its target, read every
/// interval) and when every target is quiet (read every `quiet_read_period`, with the
/// account's sentinel every interval); and how long the start's history read takes.
pub fn cloudwatch_lines(config: &Config) -> Vec<String> {
    use crate::policy::cadence::monthly_cost;
    let cadence = crate::policy::cadence::Cadence::of(&config.daemon);
    let every = monthly_cost(cadence.interval);
    let (quiet, sentinel) = if cadence.adaptive() {
        (monthly_cost(cadence.quiet_read_period), every)
    } else {
        (every, 0.0)
    };
    let mut lines = Vec::new();
    let (mut most, mut least) = (0.0, 0.0);
    for shard in config.shards() {
        let tracked = config
            .targets
            .iter()
            .filter(|target| target.shard == shard && target.tracking.is_some())
            .count();
        if tracked == 0 {
            continue;
        }
        let busy = tracked as f64 * every;
        let calm = tracked as f64 * quiet + sentinel;
        most += busy;
        least += calm;
        lines.push(format!(
            "cloudwatch: {shard}: {tracked} tracked target{}: ${busy:.2} a month if each is read every {}, ${calm:.2} if all are quiet (each every {}{})",
            if tracked == 1 { "" } else { "s" },
            show_duration(config.daemon.interval),
            show_duration(config.daemon.quiet_read_period.max(config.daemon.interval)),
            if sentinel > 0.0 { ", the account's concurrency every interval" } else { "" },
        ));
    }
    if lines.len() > 1 {
        lines.push(format!("cloudwatch: in all: ${most:.2} a month if every target is read every interval, ${least:.2} if all are quiet"));
    }
    if !config.selectors.is_empty() {
        lines.push(format!(
            "cloudwatch: each target a selector finds adds ${every:.3} a month at most, ${quiet:.3} while quiet"
        ));
    }
    let keeping: Vec<&TargetConfig> = config
        .targets
        .iter()
        .filter(|target| target.keeps_history())
        .collect();
    if !keeping.is_empty() {
        let history = crate::runtime::knowing::HistoryRead::of(keeping.iter().copied());
        let keeping = keeping.len();
        lines.push(format!(
            "cloudwatch: a start reads the history of {keeping} target{}: {} GetMetricData call{} (5-minute peaks where the metric allows), {} datapoints, at least {:.1} s at CloudWatch's {} a second",
            if keeping == 1 { "" } else { "s" },
            history.calls,
            if history.calls == 1 { "" } else { "s" },
            history.datapoints,
            history.seconds(),
            crate::runtime::knowing::HISTORY_DATAPOINTS_PER_SECOND,
        ));
    }
    lines
}

/// Lambda allows this many control-plane requests a second per account and Region,
/// for every caller together.
pub const LAMBDA_SHARED_LIMIT: f64 = 15.0;

/// One line: what the budget allows for this many functions.
pub fn budget_line(config: &Config) -> String {
    let load = ReadLoad::of(config);
    let daemon = &config.daemon;
    let period = show_duration(daemon.drift_scan_period);
    let met = if load.steady <= daemon.control_plane_budget {
        "met"
    } else {
        "NOT met"
    };
    format!(
        "control-plane budget: {} function{} at {}/s: one drift scan of every function takes {:.0} s, as does a cold start until every target is known; drift_scan_period {period} is {met} (the reads need {:.2}/s of the {}/s)",
        load.functions,
        if load.functions == 1 { "" } else { "s" },
        daemon.control_plane_budget,
        load.scan_pass,
        load.steady,
        daemon.control_plane_budget
    )
}

/// What the selectors' functions will cost, which `check` cannot count before they
/// are found: per 1,000 functions found, their drift scans; and for a shard with a
/// name-glob selector, one walk of `ListFunctions` (50 functions a page) over every
/// function of its account and Region each discovery, which serves all of them.
pub fn selector_load_line(config: &Config) -> Option<String> {
    if config.selectors.is_empty() {
        return None;
    }
    let daemon = &config.daemon;
    let scans = 1000.0 / daemon.drift_scan_period.as_secs_f64();
    let listing = config.shards().iter().any(|key| {
        config
            .selectors_of(key)
            .any(|selector| selector.tags.is_empty())
    });
    let pages = 1000.0 / 50.0 / daemon.discovery_period.as_secs_f64();
    Some(format!(
        "selectors: each 1,000 functions they find need {scans:.2}/s of drift scans{}",
        if listing {
            format!(
                "; name-glob selectors list every function of their account and Region each discovery ({}): {pages:.3}/s for each 1,000 functions there",
                show_duration(daemon.discovery_period)
            )
        } else {
            String::new()
        }
    ))
}

/// When the drift scan period cannot be met at the budget: what would meet it.
pub fn budget_warning(config: &Config) -> Option<String> {
    let load = ReadLoad::of(config);
    let daemon = &config.daemon;
    if load.steady <= daemon.control_plane_budget {
        return None;
    }
    let period = show_duration(daemon.drift_scan_period);
    // A tenth more than the reads alone, for the writes; rounded up to a tenth.
    let needed = (load.steady * 1.1 * 10.0).ceil() / 10.0;
    let remedy = if needed <= LAMBDA_SHARED_LIMIT {
        format!("control_plane_budget = {needed} would meet it")
    } else {
        let others = load.steady - load.functions as f64 / daemon.drift_scan_period.as_secs_f64();
        let room = (LAMBDA_SHARED_LIMIT / 1.1 - others).max(0.1);
        let longest = std::time::Duration::from_secs((load.functions as f64 / room).ceil() as u64);
        format!(
            "no budget within Lambda's {LAMBDA_SHARED_LIMIT}/s per account and Region meets it; drift_scan_period = \"{}\" would fit 15/s",
            show_duration(longest)
        )
    };
    Some(format!(
        "drift_scan_period {period} cannot be met: {} functions need {:.2} read requests a second, above control_plane_budget {}/s; {remedy}",
        load.functions, load.steady, daemon.control_plane_budget
    ))
}

/// The process-wide settings that differ from their defaults (`config::keys`).
fn render_settings(out: &mut String, config: &Config) {
    let daemon = &config.daemon;
    let rate = |rate: f64| format!("{rate}/s");
    let settings: [(&Key, String); 11] = [
        (
            &keys::AWS_TIMEOUT,
            show_duration(config.aws.timeout.unwrap_or(keys::AWS_TIMEOUT.duration())),
        ),
        (&keys::DAEMON_INTERVAL, show_duration(daemon.interval)),
        (&keys::DAEMON_DRY_RUN, daemon.dry_run.to_string()),
        (
            &keys::DAEMON_LOG_FORMAT,
            match daemon.log_format {
                LogFormat::Text => "`text`".into(),
                LogFormat::Json => "`json`".into(),
            },
        ),
        (
            &keys::DAEMON_CONTROL_PLANE_BUDGET,
            rate(daemon.control_plane_budget),
        ),
        (&keys::DAEMON_MAX_WRITE_RATE, rate(daemon.max_write_rate)),
        (&keys::DAEMON_MAX_READ_RATE, rate(daemon.max_read_rate)),
        (
            &keys::DAEMON_DRIFT_SCAN_PERIOD,
            show_duration(daemon.drift_scan_period),
        ),
        (
            &keys::DAEMON_REFRESH_PERIOD,
            show_duration(daemon.refresh_period),
        ),
        (
            &keys::DAEMON_ACCOUNT_RESERVE,
            daemon.account_reserve.to_string(),
        ),
        (
            &keys::DAEMON_SHUTDOWN_GRACE,
            show_duration(daemon.shutdown_grace),
        ),
    ];
    let changed: Vec<String> = settings
        .iter()
        .filter(|(key, value)| *value != key.default_text())
        .map(|(key, value)| format!("{} = {}", key.path, value.trim_matches('`')))
        .collect();
    if changed.is_empty() {
        let _ = writeln!(out, "settings: every [aws] and [daemon] key at its default");
    } else {
        let _ = writeln!(
            out,
            "settings: {}; every other [aws] and [daemon] key at its default",
            changed.join(", ")
        );
    }
}

/// What each `[[account]]` role needs, beside `ListFunctions` and `GetResources`
/// for selectors.
pub const MEMBER_ACTIONS: &[&str] = &[
    "lambda:GetFunction",
    "lambda:GetProvisionedConcurrencyConfig",
    "lambda:ListAliases",
    "lambda:ListProvisionedConcurrencyConfigs",
    "lambda:PutProvisionedConcurrencyConfig",
    "lambda:DeleteProvisionedConcurrencyConfig",
    "lambda:GetAccountSettings",
    "lambda:ListFunctions",
    "tag:GetResources",
    "cloudwatch:GetMetricData",
];

/// The accounts, their shards and selectors, and the IAM each side needs.
fn render_fleet(out: &mut String, config: &Config) {
    if config.accounts.is_empty() && config.selectors.is_empty() {
        return;
    }
    let shards = config.shards();
    let _ = writeln!(
        out,
        "
fleet: {} shard{} (an account and Region each, with its own budget)",
        shards.len(),
        if shards.len() == 1 { "" } else { "s" }
    );
    for account in &config.accounts {
        let _ = writeln!(
            out,
            "  account {} ({}) through {}{}, regions {}",
            account.name,
            account.account_id,
            Printable(&account.role_arn),
            if account.external_id.is_some() {
                " with an external id"
            } else {
                ""
            },
            account.regions.join(", ")
        );
    }
    for selector in &config.selectors {
        let tags: Vec<String> = selector
            .tags
            .iter()
            .map(|(key, value)| format!("{key}={}", value.as_deref().unwrap_or("*")))
            .collect();
        let _ = writeln!(
            out,
            "  selector {}: {}{}{} alias `{}` in {}{}",
            selector.name,
            if tags.is_empty() {
                String::new()
            } else {
                format!("tags {} ", tags.join(" "))
            },
            if selector.functions.is_empty() {
                String::new()
            } else {
                format!("names {} ", selector.functions.join(" "))
            },
            if selector.tag_overrides {
                "(tag overrides on),"
            } else {
                ","
            },
            selector.template.qualifier,
            selector.account.as_deref().unwrap_or("every account"),
            selector
                .region
                .as_deref()
                .map(|region| format!(" {region}"))
                .unwrap_or_default(),
        );
    }
    if !config.accounts.is_empty() {
        let roles: Vec<&str> = config
            .accounts
            .iter()
            .map(|account| account.role_arn.as_str())
            .collect();
        let _ = writeln!(
            out,
            "  IAM of the base credentials: sts:AssumeRole on {} (config/iam-policy-fleet-base.json)",
            Printable(&roles.join(", "))
        );
    }
    let _ = writeln!(
        out,
        "  IAM of each role: {} (config/iam-policy-fleet-member.json)",
        MEMBER_ACTIONS.join(", ")
    );
}

/// The lease, and the IAM actions it needs beside those of `config/iam-policy.json`.
fn render_leader(out: &mut String, leader: &LeaderSettings, shards: &[crate::config::ShardKey]) {
    let timing = format!(
        "lease {}, renewed every {}, writes only within {} of a renew",
        humantime::format_duration(leader.lease),
        humantime::format_duration(leader.renew_every),
        humantime::format_duration(leader.write_window()),
    );
    if leader.spread {
        let names: Vec<String> = shards
            .iter()
            .map(|shard| crate::leader::spread::lease_name(&leader.name, shard))
            .collect();
        let _ = writeln!(
            out,
            "\nleader election, spread: a lease per shard in DynamoDB table `{}` (hash key `id`, a string), {} item(s) `{}`; {timing}",
            leader.table,
            shards.len(),
            Printable(&names.join("`, `")),
        );
        let _ = writeln!(
            out,
            "  each copy acts only on the shards it holds; with N copies alive each holds {} shard(s) over N, rounded up or down; a copy that joins is handed one shard a balancing cycle ({}) until it has its share; a copy stopped with SIGTERM hands its shards over at once",
            shards.len(),
            humantime::format_duration(leader.lease),
        );
    } else {
        let _ = writeln!(
            out,
            "\nleader election: DynamoDB table `{}` (hash key `id`, a string), lease item `{}`; {timing}",
            leader.table,
            Printable(&leader.name),
        );
    }
    let mut actions: Vec<&str> = dynamodb::LEASE_ACTIONS.to_vec();
    if leader.create_table {
        actions.extend(dynamodb::CREATE_TABLE_ACTIONS);
    }
    let _ = writeln!(
        out,
        "  IAM: {} on arn:aws:dynamodb:REGION:ACCOUNT_ID:table/{} (config/iam-policy-leader.json)",
        actions.join(", "),
        leader.table
    );
}

/// Where the snapshot and operators' overrides are kept, and what that needs.
fn render_state(out: &mut String, config: &Config) {
    let place = match (&config.leader, &config.daemon.state_directory) {
        (Some(leader), _) => format!(
            "items `{0}#snapshot*` and `{0}#overrides` of the lease table (dynamodb:GetItem and PutItem, as above)",
            Printable(&leader.name)
        ),
        (None, Some(directory)) => format!(
            "{} (snapshot.json, overrides.json; written atomically)",
            Printable(&directory.display().to_string())
        ),
        (None, None) => {
            let _ = writeln!(
                out,
                "state: none kept (no [leader], no daemon.state_directory): restarts start cold and `override` has nowhere to write"
            );
            return;
        }
    };
    let _ = writeln!(
        out,
        "state: the snapshot and operators' overrides are kept in {place}"
    );
}

fn render_target(out: &mut String, target: &TargetConfig, now: DateTime<Utc>) {
    let bounds = schedule::bounds_at(target, now);
    let tracking = target.tracking.as_ref().map_or_else(
        || "no tracking (capacity = min)".to_owned(),
        |tracking| {
            format!(
                "tracking {} at {}",
                tracking.metric.label(),
                tracking.target
            )
        },
    );
    let _ = writeln!(
        out,
        "\ntarget {} ({}:{}), {tracking}",
        target.name, target.function.reference, target.qualifier
    );
    if target
        .tracking
        .as_ref()
        .is_some_and(|tracking| tracking.history_by_default)
    {
        let _ = writeln!(out, "  {HISTORY_DEFAULT_NOTE}");
    }
    let _ = writeln!(out, "  now        {}", describe(&bounds));
    let changes = schedule::upcoming_changes(target, now, PREVIEW_CHANGES);
    if changes.is_empty() {
        let _ = writeln!(out, "  no schedule changes ahead");
    }
    let mut previous_rule = bounds.rule.clone();
    for change in changes {
        // Show the time in the zone of the rule that starts, or of the one that ends.
        let rule_name = change.bounds.rule.clone().or(previous_rule.clone());
        let zone = rule_name
            .as_deref()
            .and_then(|name| target.schedules.iter().find(|rule| rule.name == name))
            .map_or(Tz::UTC, |rule| rule.timezone);
        let local = change.at.with_timezone(&zone);
        let _ = writeln!(
            out,
            "  {} ({})  {}  → {}",
            local.format("%a %Y-%m-%d %H:%M:%S %Z"),
            zone.name(),
            change.at.format("%Y-%m-%d %H:%M:%S UTC"),
            describe(&change.bounds)
        );
        previous_rule = change.bounds.rule.clone();
    }
}

fn describe(bounds: &Bounds) -> String {
    let source = bounds.rule.as_ref().map_or_else(
        || "target defaults".to_owned(),
        |rule| format!("rule `{rule}`"),
    );
    format!("min {} max {} ({source})", bounds.min, bounds.max)
}
