//! `audit`'s judgement of an account's provisioned concurrency, from what was read of
//! it ([`Observed`]: each config, its function, aliases, reserved concurrency, any
//! Application Auto Scaling target, and its CloudWatch history): what it costs a month
//! now, how it is used, what is wrong with it ([`Flag`]), and what `simulate`'s model
//! says it would cost and spill managed by pc-autoscaler, beside AAS at equal cost and
//! the oracle. Also the starter config and the commands that would delete unused
//! configs (printed, never run).
//!
//! What it must not do: read anything (the runtime's `audit` reads), or write anything
//! but the files it is asked for ([`write_outputs`]).

mod chart;
pub mod price;
pub mod read;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::{Aliases, FunctionSummary, ProvisionedConfig, ScalableTarget};
use crate::config::{ForecastMode, Qualifier};
use crate::escape::printable;
use crate::policy::AllocationStatus;
use price::Price;

/// A day of minutes: less history than this is not replayed.
pub const MIN_REPLAY_MINUTES: usize = 24 * 60;
/// The target utilization of the recommended config.
pub const RECOMMENDED_TARGET: f64 = 0.7;

/// One config's CloudWatch history over the window, one slot a minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub start: DateTime<Utc>,
    /// `ConcurrentExecutions` (Maximum) a minute; `None` where CloudWatch has none.
    pub concurrency: Vec<Option<f64>>,
    /// `ProvisionedConcurrencyUtilization` (Maximum) of the minutes that have it.
    pub utilization: Vec<f64>,
    /// `ProvisionedConcurrencyInvocations` and `...SpilloverInvocations` (Sum).
    pub provisioned_invocations: f64,
    pub spillover_invocations: f64,
}

/// What was read of one provisioned-concurrency config.
#[derive(Debug, Clone)]
pub struct Observed {
    pub function: FunctionSummary,
    pub qualifier: String,
    pub config: ProvisionedConfig,
    /// What every config of the function requests together.
    pub function_requested: u32,
    pub reserved: Option<u32>,
    pub aliases: Aliases,
    pub scalable_target: Option<ScalableTarget>,
    pub history: History,
}

/// What is wrong with a config, or worth knowing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "flag")]
pub enum Flag {
    /// No provisioned invocations in the window: it serves nothing.
    Unused,
    /// A version that no alias routes to: callers cannot reach it through an alias.
    UnroutedVersion,
    /// An alias with routing weights: Lambda refuses provisioned concurrency there.
    WeightedAlias,
    /// The allocation FAILED.
    Failed { reason: Option<String> },
    /// The function's configs together request more than its reserved concurrency.
    AboveReserved { reserved: u32 },
    /// An Application Auto Scaling target manages it: pc-autoscaler would fight it.
    ManagedByAas,
    /// Below `break_even` utilization, on-demand would cost less.
    CheaperOnDemand { utilization: f64, break_even: f64 },
}

impl Flag {
    pub fn label(&self) -> String {
        match self {
            Flag::Unused => "unused".into(),
            Flag::UnroutedVersion => "version no alias routes to".into(),
            Flag::WeightedAlias => "weighted alias".into(),
            Flag::Failed { .. } => "FAILED".into(),
            Flag::AboveReserved { reserved } => format!("above reserved ({reserved})"),
            Flag::ManagedByAas => "managed by AAS".into(),
            Flag::CheaperOnDemand { break_even, .. } => {
                format!("cheaper on-demand (break-even {:.0} %)", break_even * 100.0)
            }
        }
    }
}

/// One policy replayed over a config's history, at a month's scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayedPolicy {
    pub policy: String,
    /// The provisioned-concurrency charge alone.
    pub provisioned_dollars_a_month: f64,
    /// Reading its metrics: CloudWatch `GetMetricData` for pc-autoscaler (the
    /// account's sentinel, shared by all its targets, aside), alarms for AAS.
    pub cloudwatch_dollars_a_month: f64,
    /// The whole bill: provisioned charge, duration on provisioned and on demand,
    /// requests, and reading the metrics.
    pub bill_dollars_a_month: f64,
    pub spillover_pct: f64,
}

/// One config's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub function: String,
    pub qualifier: String,
    pub memory_mb: u32,
    pub arm64: bool,
    pub requested: u32,
    pub allocated: u32,
    pub status: String,
    pub dollars_a_month: f64,
    pub utilization_mean: Option<f64>,
    pub utilization_p99: Option<f64>,
    pub spillover_pct: Option<f64>,
    pub flags: Vec<Flag>,
    /// Static today, pc-autoscaler recommended, AAS at equal cost, the oracle; empty
    /// with less than a day of history.
    pub replayed: Vec<ReplayedPolicy>,
    /// The highest concurrency in the window, for the recommended `max`.
    pub peak_concurrency: Option<f64>,
    /// The concurrency-minutes of demand in the window: what the totals weigh
    /// spillover by.
    #[serde(skip)]
    pub demand: f64,
}

impl ConfigReport {
    fn has(&self, wanted: impl Fn(&Flag) -> bool) -> bool {
        self.flags.iter().any(wanted)
    }

    /// Worth managing: used, reachable, not cheaper on-demand, not someone else's.
    pub fn worth_managing(&self) -> bool {
        !self.has(|flag| {
            matches!(
                flag,
                Flag::Unused
                    | Flag::UnroutedVersion
                    | Flag::WeightedAlias
                    | Flag::ManagedByAas
                    | Flag::CheaperOnDemand { .. }
            )
        })
    }

    fn managed(&self) -> Option<&ReplayedPolicy> {
        self.replayed
            .iter()
            .find(|replayed| replayed.policy == "pc-autoscaler")
    }

    /// The whole bill a month as it is: replayed, or without a day of history its
    /// provisioned charge alone.
    pub fn bill_now(&self) -> f64 {
        self.replayed
            .first()
            .map_or(self.dollars_a_month, |now| now.bill_dollars_a_month)
    }

    /// The whole bill a month managed: an unused config is deleted; one without a day
    /// of history stays as it is.
    pub fn bill_managed(&self) -> f64 {
        if self.has(|flag| *flag == Flag::Unused) {
            return 0.0;
        }
        self.managed()
            .map_or(self.dollars_a_month, |managed| managed.bill_dollars_a_month)
    }
}

/// The whole report: each config, and the account's totals.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub region: String,
    pub days: u32,
    pub prices: Price,
    pub configs: Vec<ConfigReport>,
    /// The whole bill a month of every config as it is, and managed.
    pub static_bill_dollars_a_month: f64,
    pub static_spillover_pct: f64,
    pub managed_bill_dollars_a_month: f64,
    pub managed_spillover_pct: f64,
    /// What `audit.toml` holds; `None` when no config is worth managing.
    pub starter_config: Option<String>,
    /// The commands that would delete the unused configs: printed, never run.
    pub delete_commands: Vec<String>,
}

/// The account's report from each config's judgement ([`judge`]); `region` names where
/// it was read, for the commands it prints.
pub fn assess(
    mut configs: Vec<ConfigReport>,
    region: &str,
    days: u32,
    prices: &Price,
) -> AuditReport {
    configs.sort_by(|left, right| {
        (&left.function, &left.qualifier).cmp(&(&right.function, &right.qualifier))
    });
    // Totals over the demand the histories saw: spillover weighted by demand.
    let mut totals = [0.0_f64; 4];
    for config in &configs {
        let managed = config.managed();
        let statics = config.replayed.first();
        totals[0] += config.bill_now();
        totals[1] += statics.map_or(0.0, |s| s.spillover_pct * config.demand);
        totals[2] += config.bill_managed();
        totals[3] += managed
            .or(statics)
            .map_or(0.0, |m| m.spillover_pct * config.demand);
    }
    let demand: f64 = configs.iter().map(|config| config.demand).sum();
    let share = |weighted: f64| if demand > 0.0 { weighted / demand } else { 0.0 };
    let delete_commands = configs
        .iter()
        .filter(|config| config.has(|flag| *flag == Flag::Unused))
        .filter_map(|config| delete_command(config, region))
        .collect();
    let starter_config = starter(&configs, region);
    AuditReport {
        region: region.to_owned(),
        days,
        prices: prices.clone(),
        static_bill_dollars_a_month: totals[0],
        static_spillover_pct: share(totals[1]),
        managed_bill_dollars_a_month: totals[2],
        managed_spillover_pct: share(totals[3]),
        configs,
        starter_config,
        delete_commands,
    }
}

/// The command that would delete `config`, quoted for a shell; `None` for a name no
/// Lambda function has, which no command should carry.
fn delete_command(config: &ConfigReport, region: &str) -> Option<String> {
    let names = [&config.function, &config.qualifier];
    if names
        .iter()
        .any(|name| name.is_empty() || name.chars().any(char::is_control))
    {
        return None;
    }
    let mut command = format!(
        "aws lambda delete-provisioned-concurrency-config --function-name {} --qualifier {}",
        shell_word(&config.function),
        shell_word(&config.qualifier)
    );
    if !region.is_empty() {
        command.push_str(&format!(" --region {}", shell_word(region)));
    }
    Some(command)
}

/// `text` as one word for a POSIX shell: as it is when it holds only characters no
/// shell treats specially, else in single quotes (a `'` closed, escaped and reopened).
fn shell_word(text: &str) -> String {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:/@=+,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Judges one config from what was read of it: its line of the report, replays
/// included. Its history is needed no longer.
pub fn judge(one: &Observed, prices: &Price) -> ConfigReport {
    let rates = prices.of(one.function.arm64);
    let gigabytes = f64::from(one.function.memory_mb) / 1024.0;
    let dollars_a_month =
        f64::from(one.config.requested) * gigabytes * price::SECONDS_A_MONTH * rates.provisioned;
    let mut utilization = one.history.utilization.clone();
    utilization.sort_by(f64::total_cmp);
    let utilization_mean = (!utilization.is_empty())
        .then(|| utilization.iter().sum::<f64>() / utilization.len() as f64);
    let utilization_p99 = (!utilization.is_empty()).then(|| {
        let rank = ((0.99 * utilization.len() as f64).ceil() as usize).clamp(1, utilization.len());
        utilization[rank - 1]
    });
    let invocations = one.history.provisioned_invocations + one.history.spillover_invocations;
    let spillover_pct =
        (invocations > 0.0).then(|| 100.0 * one.history.spillover_invocations / invocations);
    let flags = flags(one, utilization_mean, prices);
    // An unused config is to be deleted, not managed: nothing to replay.
    let replayed = if flags.contains(&Flag::Unused) {
        Vec::new()
    } else {
        replay(one, peak_concurrency_of(one), prices)
    };
    let peak_concurrency = peak_concurrency_of(one);
    ConfigReport {
        function: one.function.name.clone(),
        qualifier: one.qualifier.clone(),
        memory_mb: one.function.memory_mb,
        arm64: one.function.arm64,
        requested: one.config.requested,
        allocated: one.config.allocated,
        status: one.config.status.label().to_owned(),
        dollars_a_month,
        utilization_mean,
        utilization_p99,
        spillover_pct,
        flags,
        replayed,
        peak_concurrency,
        demand: one.history.concurrency.iter().flatten().sum(),
    }
}

fn peak_concurrency_of(one: &Observed) -> Option<f64> {
    one.history
        .concurrency
        .iter()
        .flatten()
        .copied()
        .reduce(f64::max)
}

fn flags(one: &Observed, utilization_mean: Option<f64>, prices: &Price) -> Vec<Flag> {
    let mut flags = Vec::new();
    let unused = one.history.provisioned_invocations <= 0.0;
    if unused {
        flags.push(Flag::Unused);
    }
    match Qualifier::classify(&one.qualifier) {
        Qualifier::Version(version) => {
            let routed = one
                .aliases
                .values()
                .any(|alias| alias.version == version || alias.weighted_to.contains(&version));
            if !routed {
                flags.push(Flag::UnroutedVersion);
            }
        }
        Qualifier::Alias(name) => {
            if one
                .aliases
                .get(&name)
                .is_some_and(|alias| alias.is_weighted())
            {
                flags.push(Flag::WeightedAlias);
            }
        }
    }
    if one.config.status == AllocationStatus::Failed {
        flags.push(Flag::Failed {
            reason: one.config.status_reason.clone(),
        });
    }
    if let Some(reserved) = one.reserved
        && one.function_requested > reserved
    {
        flags.push(Flag::AboveReserved { reserved });
    }
    if one.scalable_target.is_some() {
        flags.push(Flag::ManagedByAas);
    }
    let break_even = prices.of(one.function.arm64).break_even_utilization();
    if let Some(utilization) = utilization_mean
        && !unused
        && utilization < break_even
    {
        flags.push(Flag::CheaperOnDemand {
            utilization,
            break_even,
        });
    }
    flags
}

/// The highest `max` recommended: Lambda's count of concurrent executions fits an `i32`.
const MAX_RECOMMENDED: f64 = 1e9;

/// The recommended `max` for a config: twice the peak seen, and at least what it has.
fn recommended_max(peak: f64, requested: u32) -> u32 {
    ((peak * 2.0).ceil().clamp(1.0, MAX_RECOMMENDED) as u32).max(requested)
}

/// The recommended target for a config: tracking utilization at 0.7 with the forecast
/// and the window choice on, bounded by twice the peak seen (and what it has now). The
/// replay needs no name: its function and qualifier are stand-ins, whatever Lambda
/// answered.
fn recommended(one: &Observed, peak: f64) -> crate::config::TargetConfig {
    let max = recommended_max(peak, one.config.requested);
    let text = format!(
        "[[target]]\nfunction = \"audited\"\nqualifier = \"live\"\nmin = 1\nmax = {max}\n\
         tracking = {{ metric = \"utilization\", target = {RECOMMENDED_TARGET} }}\n"
    );
    let config = crate::config::parse(&text, Path::new("audit.toml"))
        .expect("the recommended target's text is fixed but for a bounded max");
    let target = config
        .targets
        .into_iter()
        .next()
        .expect("the text has one target");
    target.with_history(ForecastMode::On)
}

/// Static today, pc-autoscaler recommended, AAS at equal cost and the oracle over the
/// history, when there is a day of it, each billed in full ([`Bill`]).
fn replay(one: &Observed, peak: Option<f64>, prices: &Price) -> Vec<ReplayedPolicy> {
    let (Some(peak), Some(demand)) = (peak, demand_of(one)) else {
        return Vec::new();
    };
    let bill = Bill::of_config(one, prices, &demand.concurrency);
    // Today: billed for what is requested, serving what is allocated (none while
    // the allocation is FAILED).
    let serving = vec![one.config.allocated; demand.concurrency.len()];
    let unit_hours = f64::from(one.config.requested) * demand.concurrency.len() as f64 / 60.0;
    let mut replayed = vec![bill.of("static today", (unit_hours, 0.0), &serving)];
    let target = recommended(one, peak);
    let Some(outcome) = simulated(&target, one, &demand) else {
        return replayed;
    };
    // The recommended config forecasts: it is the row of the config as written.
    for (label, found) in [
        (
            "pc-autoscaler",
            played(&outcome, crate::simulate::AS_WRITTEN),
        ),
        ("aas-equal-cost", played(&outcome, "aas-equal-cost")),
        ("oracle", played(&outcome, "oracle")),
    ] {
        if let Some((result, usable)) = found {
            let reads = (
                result.provisioned_unit_hours,
                result.cloudwatch_usd_per_month,
            );
            replayed.push(bill.of(label, reads, usable));
        }
    }
    replayed
}

/// What Application Auto Scaling as configured (target tracking at `target`'s tracking
/// value, within its bounds and rules) and `target` as written would each have billed
/// and spilled over `one`'s history; `None` without a day of it, or without tracking.
pub fn against_aas(
    target: &crate::config::TargetConfig,
    one: &Observed,
    prices: &Price,
) -> Option<(ReplayedPolicy, ReplayedPolicy)> {
    let demand = demand_of(one)?;
    let outcome = simulated(target, one, &demand)?;
    let bill = Bill::of_config(one, prices, &demand.concurrency);
    let (aas, aas_usable) = played(&outcome, "aas-target-tracking")?;
    let (ours, ours_usable) = played(&outcome, crate::simulate::AS_WRITTEN)?;
    Some((
        bill.of(
            "aas",
            (aas.provisioned_unit_hours, aas.cloudwatch_usd_per_month),
            aas_usable,
        ),
        bill.of(
            "pc-autoscaler",
            (ours.provisioned_unit_hours, ours.cloudwatch_usd_per_month),
            ours_usable,
        ),
    ))
}

/// The config's demand a minute, when there is a day of it.
fn demand_of(one: &Observed) -> Option<crate::simulate::Demand> {
    let present = one.history.concurrency.iter().flatten().count();
    (present >= MIN_REPLAY_MINUTES).then(|| crate::simulate::Demand {
        name: format!("{}:{}", one.function.name, one.qualifier),
        start: one.history.start,
        concurrency: one
            .history
            .concurrency
            .iter()
            .map(|value| value.unwrap_or(0.0))
            .collect(),
    })
}

/// `simulate`'s replay of `target` over `demand`, at `one`'s memory size.
fn simulated(
    target: &crate::config::TargetConfig,
    one: &Observed,
    demand: &crate::simulate::Demand,
) -> Option<crate::simulate::Simulation> {
    let options = crate::simulate::Options {
        memory_mb: f64::from(one.function.memory_mb),
        ..Default::default()
    };
    crate::simulate::run(target, demand.clone(), &options, &mut || {}).ok()
}

/// One policy's row of a replay and the capacity it served a minute.
fn played<'a>(
    outcome: &'a crate::simulate::Simulation,
    name: &str,
) -> Option<(&'a crate::simulate::PolicyResult, &'a Vec<u32>)> {
    let policies = &outcome.report.policies;
    let index = policies.iter().position(|policy| policy.name == name)?;
    Some((&policies[index], &outcome.usable[index]))
}

/// The whole bill of one config under one policy, scaled to a month: provisioned
/// GB-seconds configured, duration on provisioned capacity for what it served and on
/// demand for what spilled (a unit of concurrency for a minute is 60 s of execution),
/// and requests (the same under every policy).
struct Bill<'a> {
    rates: price::Rates,
    gigabytes: f64,
    /// Invocations in the window.
    requests: f64,
    demand: &'a [f64],
}

impl<'a> Bill<'a> {
    /// The bill of `one`'s function at `prices`, over `demand`.
    fn of_config(one: &Observed, prices: &Price, demand: &'a [f64]) -> Self {
        Bill {
            rates: *prices.of(one.function.arm64),
            gigabytes: f64::from(one.function.memory_mb) / 1024.0,
            requests: one.history.provisioned_invocations + one.history.spillover_invocations,
            demand,
        }
    }

    /// The bill of a policy that provisioned these unit-hours and spends this much a
    /// month reading its metrics.
    fn of(
        &self,
        policy: &str,
        (provisioned_unit_hours, cloudwatch): (f64, f64),
        usable: &[u32],
    ) -> ReplayedPolicy {
        let (mut served, mut spilled) = (0.0, 0.0);
        for (demand, usable) in self.demand.iter().zip(usable) {
            served += demand.min(f64::from(*usable));
            spilled += (demand - f64::from(*usable)).max(0.0);
        }
        let gb_seconds = |unit_minutes: f64| unit_minutes * 60.0 * self.gigabytes;
        let provisioned = gb_seconds(provisioned_unit_hours * 60.0) * self.rates.provisioned;
        let duration = gb_seconds(served) * self.rates.duration_provisioned
            + gb_seconds(spilled) * self.rates.duration_on_demand;
        let requests = self.requests / 1e6 * self.rates.requests_per_million;
        let month = price::SECONDS_A_MONTH / (self.demand.len() as f64 * 60.0);
        let total = served + spilled;
        ReplayedPolicy {
            policy: policy.into(),
            provisioned_dollars_a_month: provisioned * month,
            cloudwatch_dollars_a_month: cloudwatch,
            bill_dollars_a_month: (provisioned + duration + requests) * month + cloudwatch,
            spillover_pct: if total > 0.0 {
                100.0 * spilled / total
            } else {
                0.0
            },
        }
    }
}

/// `audit.toml`: a target for each config worth managing, bounds from its history; the
/// others named in comments with why. `None` when no config is worth managing: a file
/// without targets is one `check` refuses. Every name is written as a TOML string and
/// escaped in comments, whatever Lambda answered; a config whose name `check` would
/// refuse is left out, with why.
fn starter(configs: &[ConfigReport], region: &str) -> Option<String> {
    let mut targets = String::new();
    let mut left = String::new();
    for config in configs {
        let name = printable(&format!("{}:{}", config.function, config.qualifier)).into_owned();
        if !config.worth_managing() {
            let why: Vec<String> = config.flags.iter().map(Flag::label).collect();
            let _ = writeln!(
                left,
                "# left alone: {name} ({})",
                printable(&why.join(", "))
            );
            continue;
        }
        let max = recommended_max(config.peak_concurrency.unwrap_or(0.0), config.requested);
        let target = format!(
            "\n[[target]]\nfunction = {}\nqualifier = {}\nmin = 1\nmax = {max}\n",
            toml_string(&config.function),
            toml_string(&config.qualifier)
        );
        match crate::config::parse(&target, Path::new("audit.toml")) {
            Ok(_) => targets.push_str(&target),
            Err(_) => {
                let _ = writeln!(left, "# left out: {name} (a name `check` refuses)");
            }
        }
    }
    if targets.is_empty() {
        return None;
    }
    let aws = if region.is_empty() {
        String::new()
    } else {
        format!("[aws]\nregion = {}\n\n", toml_string(region))
    };
    if !left.is_empty() {
        left.insert(0, '\n');
    }
    Some(format!(
        "# Written by `pc-autoscaler audit`: a starting point, checked by `pc-autoscaler check`.\n\
         {aws}[defaults]\n\
         tracking = {{ metric = \"utilization\", target = {RECOMMENDED_TARGET}, forecast = \"on\", choose_window = \"on\" }}\n\
         {targets}{left}"
    ))
}

/// `text` as a TOML string, escaped as TOML requires.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn money(value: f64) -> String {
    format!("${value:.2}")
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |value| format!("{value:.1} %"))
}

/// The table people read.
pub fn render(report: &AuditReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32} {:>5} {:>10} {:>7} {:>8} {:>7} {:>10} {:>10}  flags",
        "config", "req", "PC/month", "util", "util p99", "spill", "bill now", "managed"
    );
    for config in &report.configs {
        let flags: Vec<String> = config.flags.iter().map(Flag::label).collect();
        let _ = writeln!(
            out,
            "{:<32} {:>5} {:>10} {:>7} {:>8} {:>7} {:>10} {:>10}  {}",
            printable(&format!("{}:{}", config.function, config.qualifier)),
            config.requested,
            money(config.dollars_a_month),
            percent(config.utilization_mean.map(|value| value * 100.0)),
            percent(config.utilization_p99.map(|value| value * 100.0)),
            percent(config.spillover_pct),
            money(config.bill_now()),
            money(config.bill_managed()),
            printable(&flags.join(", "))
        );
    }
    let _ = writeln!(
        out,
        "\nstatic today {} a month at {:.1} % spill; managed {} at {:.1} % (whole bills, the managed one with its CloudWatch reads; replayed over {} days; prices: {})",
        money(report.static_bill_dollars_a_month),
        report.static_spillover_pct,
        money(report.managed_bill_dollars_a_month),
        report.managed_spillover_pct,
        report.days,
        report.prices.source
    );
    for command in &report.delete_commands {
        let _ = writeln!(out, "unused, to delete (not run): {}", printable(command));
    }
    if report.starter_config.is_none() {
        let _ = writeln!(out, "no config is worth managing: no audit.toml is written");
    }
    out
}

/// `report.json`, `audit.svg` and `audit.toml` in `dir`.
pub fn write_outputs(report: &AuditReport, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(report).expect("a report is plain data");
    std::fs::write(dir.join("report.json"), json)?;
    if let Some(starter) = &report.starter_config {
        std::fs::write(dir.join("audit.toml"), starter)?;
    }
    chart::write(report, &dir.join("audit.svg"))
}

#[cfg(test)]
mod tests;

/// Configs by function, for the chart.
fn by_function(report: &AuditReport) -> BTreeMap<&str, (f64, f64, bool)> {
    let mut functions: BTreeMap<&str, (f64, f64, bool)> = BTreeMap::new();
    for config in &report.configs {
        let entry = functions.entry(&config.function).or_default();
        entry.0 += config.bill_now();
        entry.1 += config.bill_managed();
        entry.2 |= config.has(|flag| *flag == Flag::Unused);
    }
    functions
}
