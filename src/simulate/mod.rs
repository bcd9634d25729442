//! `simulate`: replays a load trace through pc-autoscaler's policy core, Application
//! Auto Scaling's documented behaviour (at the same target value, and at the target
//! value that costs the same), and an oracle, all on the same modelled Lambda.
//!
//! Virtual time only: no clock, no AWS, no threads. Every run of the same inputs gives
//! the same report.
//!
//! What it must not do: read a clock, use threads or randomness, or reach AWS.

mod chart;
pub mod model;
pub mod policies;
pub mod split;
pub mod trace;

use std::fmt::Write as _;
use std::path::Path;

use chrono::TimeDelta;
use serde::Serialize;

use crate::config::{ForecastMode, TargetConfig};
use crate::policy::cadence::{self, Cadence};
use crate::policy::{Bounds, schedule};
use model::{Lambda, PRICE_PER_GB_SECOND, PutOutcome};
use policies::{ApplicationAutoScaling, Oracle, PcAutoscaler, Replayed, World};
pub use trace::{Demand, TraceKind};

/// How closely `aas-equal-cost` must match pc-autoscaler's provisioned unit-hours.
pub const EQUAL_COST_TOLERANCE: f64 = 0.01;
/// Bisection steps for `aas-equal-cost`; each halves the interval of target values.
const EQUAL_COST_STEPS: usize = 30;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub metric_lag: usize,
    pub memory_mb: f64,
    /// When pc-autoscaler reads a target's metric; replayed a minute at a time, so
    /// its interval is a minute.
    pub cadence: Cadence,
    /// Lambda's one allocation at a time, or the reactive bound's unrefused puts.
    pub allocations: model::Allocations,
}

impl Options {
    /// The cadence of `daemon`'s `quiet_read_period`, a pass a minute.
    pub fn cadence_of(daemon: &crate::config::DaemonSettings) -> Cadence {
        Cadence {
            interval: TimeDelta::minutes(1),
            ..Cadence::of(daemon)
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            metric_lag: model::DEFAULT_METRIC_LAG_MINUTES,
            memory_mb: 1024.0,
            cadence: Self::cadence_of(&crate::config::DaemonSettings::default()),
            allocations: model::Allocations::OneAtATime,
        }
    }
}

/// The row of the config as written, read every minute, beside the adaptive cadence.
pub const EVERY_INTERVAL: &str = "pc-autoscaler-every-interval";
/// A standard CloudWatch alarm a month; Application Auto Scaling's target tracking
/// keeps two a target.
pub const ALARM_PER_MONTH_USD: f64 = 0.10;

/// One policy's outcome, as written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    pub name: String,
    /// For pc-autoscaler's rows: the forecast and the window choice it ran with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<PolicyRun>,
    pub target_value: Option<f64>,
    pub spillover_unit_hours: f64,
    pub spillover_pct: f64,
    pub provisioned_unit_hours: f64,
    pub cost_usd: f64,
    /// What reading its metrics costs a month at CloudWatch's published prices: the
    /// metrics pc-autoscaler requests (the account's sentinel, shared by every target
    /// of an account and Region, not included), or Application Auto Scaling's alarms.
    pub cloudwatch_usd_per_month: f64,
    pub puts: u64,
    pub conflicts: u64,
    /// Minutes from the first spilling minute of an episode until capacity caught up.
    pub scale_out_reaction_minutes_p50: f64,
    pub scale_out_reaction_minutes_p95: f64,
}

/// What a pc-autoscaler row of a simulation ran: its forecast and whether it chose its
/// scale-in window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PolicyRun {
    /// `"on"`, `"observe"` (computed, not acted on) or `"off"`.
    pub forecast: &'static str,
    /// `"chosen"` from the history, or `"fixed"` as configured.
    pub window: &'static str,
}

impl PolicyRun {
    fn of(target: &TargetConfig) -> Option<Self> {
        let tracking = target.tracking.as_ref()?;
        let mode = |mode: ForecastMode| match mode {
            ForecastMode::On => "on",
            ForecastMode::Observe => "observe",
            ForecastMode::Off => "off",
        };
        Some(PolicyRun {
            forecast: mode(tracking.forecast),
            window: if tracking.choose_window == ForecastMode::On {
                "chosen"
            } else {
                "fixed"
            },
        })
    }
}

/// The row that replays the config as written, defaults included.
pub const AS_WRITTEN: &str = "pc-autoscaler";

/// The other pc-autoscaler row of a simulation: the reactive policy when the config
/// keeps history (the default), the forecasting one when it does not.
pub fn other_variant(target: &TargetConfig) -> (&'static str, TargetConfig) {
    if target.keeps_history() {
        (
            "pc-autoscaler-reactive",
            target.with_history(ForecastMode::Off),
        )
    } else {
        (
            "pc-autoscaler-forecast",
            target.with_history(ForecastMode::On),
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub trace: String,
    pub minutes: usize,
    pub demand_unit_hours: f64,
    pub policies: Vec<PolicyResult>,
    /// Anything the reader should know about this run (e.g. an equal-cost match missed).
    pub notes: Vec<String>,
    /// With `--sweep`: spillover against cost over a range of target values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frontier: Option<Frontier>,
    /// With `--split`: the gap to the reactive bound, cause by cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<split::Split>,
}

/// The trade-off each policy offers: one point per target value, and the oracle's.
#[derive(Debug, Clone, Serialize)]
pub struct Frontier {
    pub curves: Vec<Curve>,
    pub oracle: FrontierPoint,
    /// The config as written at each of `SWEEP_QUIET_READ_MINUTES`.
    pub cadence: Vec<CadencePoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub policy: String,
    pub points: Vec<FrontierPoint>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct FrontierPoint {
    pub target_value: Option<f64>,
    pub cost_usd: f64,
    pub provisioned_unit_hours: f64,
    pub spillover_pct: f64,
}

impl FrontierPoint {
    fn of(result: &PolicyResult) -> Self {
        Self {
            target_value: result.target_value,
            cost_usd: result.cost_usd,
            provisioned_unit_hours: result.provisioned_unit_hours,
            spillover_pct: result.spillover_pct,
        }
    }
}

/// The target values `--sweep` replays each policy at.
pub const SWEEP_TARGETS: [f64; 8] = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

/// Replays the reactive policy, the forecasting one and Application Auto Scaling at
/// each of `SWEEP_TARGETS`, and the oracle once.
pub fn sweep(
    target: &TargetConfig,
    demand: &Demand,
    options: &Options,
    progress: &mut dyn FnMut(),
) -> Frontier {
    let timeline = BoundsTimeline::new(target, demand);
    let mut point = |policy: &mut dyn Replayed, value: Option<f64>| {
        let replayed = replay(policy, demand, &timeline, options);
        progress();
        FrontierPoint::of(&summarize(policy.name(), value, demand, &replayed, options))
    };
    let at = |variant: &TargetConfig, value: f64| {
        let mut swept = variant.clone();
        if let Some(tracking) = &mut swept.tracking {
            tracking.target = value;
        }
        swept
    };
    let mut curves = Vec::new();
    let (other, other_target) = other_variant(target);
    for (name, variant) in [(AS_WRITTEN, target), (other, &other_target)] {
        let points = SWEEP_TARGETS
            .iter()
            .map(|value| {
                point(
                    &mut PcAutoscaler::new(name, at(variant, *value), options.cadence),
                    Some(*value),
                )
            })
            .collect();
        curves.push(Curve {
            policy: name.to_owned(),
            points,
        });
    }
    let points = SWEEP_TARGETS
        .iter()
        .map(|value| {
            point(
                &mut ApplicationAutoScaling::new("aas-target-tracking", *value),
                Some(*value),
            )
        })
        .collect();
    curves.push(Curve {
        policy: "aas-target-tracking".to_owned(),
        points,
    });
    let oracle = point(&mut Oracle::new(&demand.concurrency), None);
    let cadence = SWEEP_QUIET_READ_MINUTES
        .iter()
        .map(|minutes| {
            let cadence = Cadence {
                quiet_read_period: TimeDelta::minutes(*minutes),
                ..options.cadence
            };
            let mut policy = PcAutoscaler::new(AS_WRITTEN, target.clone(), cadence);
            let replayed = replay(&mut policy, demand, &timeline, options);
            progress();
            let result = summarize(AS_WRITTEN, None, demand, &replayed, options);
            CadencePoint {
                quiet_read_minutes: *minutes,
                cloudwatch_usd_per_month: result.cloudwatch_usd_per_month,
                spillover_pct: result.spillover_pct,
                cost_usd: result.cost_usd,
            }
        })
        .collect();
    Frontier {
        curves,
        oracle,
        cadence,
    }
}

/// The `quiet_read_period`s `--sweep` replays the config as written at (1: every
/// minute).
pub const SWEEP_QUIET_READ_MINUTES: [i64; 7] = [1, 2, 5, 10, 15, 30, 60];

/// What reading quiet targets less often saves and costs: the config as written at
/// one `quiet_read_period`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CadencePoint {
    pub quiet_read_minutes: i64,
    pub cloudwatch_usd_per_month: f64,
    pub spillover_pct: f64,
    pub cost_usd: f64,
}

/// One replay: usable capacity per minute and the counts.
pub struct Replay {
    pub usable: Vec<u32>,
    pub requested: Vec<u32>,
    pub puts: u64,
    pub conflicts: u64,
    /// What reading its metrics took, as CloudWatch bills it.
    pub reading: policies::Reading,
}

/// The bounds in force at each minute, computed once from the schedule.
pub struct BoundsTimeline {
    segments: Vec<(usize, Bounds)>,
}

impl BoundsTimeline {
    pub fn new(target: &TargetConfig, demand: &Demand) -> Self {
        let end = demand.start + TimeDelta::minutes(demand.concurrency.len() as i64);
        let mut segments = vec![(0, schedule::bounds_at(target, demand.start))];
        let mut cursor = demand.start;
        while let Some(boundary) = schedule::next_boundary(target, cursor) {
            if boundary >= end {
                break;
            }
            // A boundary inside a minute applies from the next whole minute.
            let minute = (boundary - demand.start).num_seconds().div_euclid(60) as usize
                + usize::from((boundary - demand.start).num_seconds() % 60 != 0);
            let bounds =
                schedule::bounds_at(target, demand.start + TimeDelta::minutes(minute as i64));
            if segments.last().is_some_and(|(_, last)| *last != bounds) {
                segments.push((minute, bounds));
            }
            cursor = boundary;
        }
        Self { segments }
    }

    fn first(&self) -> &Bounds {
        &self.segments[0].1
    }

    /// The bounds in force at each of the first `minutes` minutes.
    fn per_minute(&self, minutes: usize) -> impl Iterator<Item = &Bounds> {
        let mut segment = 0;
        (0..minutes).map(move |minute| {
            while segment + 1 < self.segments.len() && self.segments[segment + 1].0 <= minute {
                segment += 1;
            }
            &self.segments[segment].1
        })
    }
}

/// Replays `policy` over `demand`.
pub fn replay(
    policy: &mut dyn Replayed,
    demand: &Demand,
    timeline: &BoundsTimeline,
    options: &Options,
) -> Replay {
    let minutes = demand.concurrency.len();
    let mut lambda = Lambda::with(
        policy.initial_capacity(&demand.concurrency, timeline.first()),
        options.allocations,
    );
    let mut usable = Vec::with_capacity(minutes);
    let mut requested = Vec::with_capacity(minutes);
    let (mut puts, mut conflicts) = (0, 0);
    for (minute, bounds) in timeline.per_minute(minutes).enumerate() {
        lambda.advance(minute);
        let world = World {
            minute,
            now: demand.start + TimeDelta::minutes(minute as i64),
            start: demand.start,
            lambda: &lambda,
            demand: &demand.concurrency,
            usable_history: &usable,
            metric_lag: options.metric_lag,
            bounds,
        };
        if let Some(value) = policy.act(&world) {
            match lambda.put(minute, value) {
                PutOutcome::Accepted => puts += 1,
                PutOutcome::Conflict => conflicts += 1,
            }
        }
        usable.push(lambda.usable);
        requested.push(lambda.requested);
    }
    Replay {
        usable,
        requested,
        puts,
        conflicts,
        reading: policy.reading(),
    }
}

fn summarize(
    name: &str,
    target_value: Option<f64>,
    demand: &Demand,
    replay: &Replay,
    options: &Options,
) -> PolicyResult {
    let minutes = demand.concurrency.len().max(1) as f64;
    let cloudwatch_usd_per_month = replay.reading.metrics_requested as f64 / minutes
        * cadence::monthly_cost(TimeDelta::minutes(1))
        + f64::from(replay.reading.alarms) * ALARM_PER_MONTH_USD;
    let demand_total: f64 = demand.concurrency.iter().sum();
    let spill: Vec<f64> = demand
        .concurrency
        .iter()
        .zip(&replay.usable)
        .map(|(demand, usable)| (demand - f64::from(*usable)).max(0.0))
        .collect();
    let spill_total: f64 = spill.iter().sum();
    let provisioned_unit_hours = replay
        .requested
        .iter()
        .map(|value| f64::from(*value))
        .sum::<f64>()
        / 60.0;
    // Episodes: runs of minutes with spillover above half a unit (noise below that is
    // rounding, not a missed scale-out); each run's length is the reaction time.
    let mut episodes = Vec::new();
    let mut run = 0usize;
    for value in &spill {
        if *value > 0.5 {
            run += 1;
        } else if run > 0 {
            episodes.push(run as f64);
            run = 0;
        }
    }
    if run > 0 {
        episodes.push(run as f64);
    }
    episodes.sort_by(f64::total_cmp);
    PolicyResult {
        name: name.to_owned(),
        runs: None,
        target_value,
        spillover_unit_hours: spill_total / 60.0,
        spillover_pct: if demand_total > 0.0 {
            100.0 * spill_total / demand_total
        } else {
            0.0
        },
        provisioned_unit_hours,
        cost_usd: provisioned_unit_hours * 3600.0 * options.memory_mb / 1024.0
            * PRICE_PER_GB_SECOND,
        cloudwatch_usd_per_month,
        puts: replay.puts,
        conflicts: replay.conflicts,
        scale_out_reaction_minutes_p50: percentile(&episodes, 0.50),
        scale_out_reaction_minutes_p95: percentile(&episodes, 0.95),
    }
}

/// Nearest-rank percentile of sorted values; 0 when there are none.
fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Everything one `simulate` run produces.
pub struct Simulation {
    pub report: Report,
    pub demand: Demand,
    /// Usable capacity per minute, per policy, in report order.
    pub usable: Vec<Vec<u32>>,
}

/// Replays all four policies. `progress` is called after each replay (there are
/// about 35, most of them the equal-cost search).
pub fn run(
    target: &TargetConfig,
    demand: Demand,
    options: &Options,
    progress: &mut dyn FnMut(),
) -> Result<Simulation, SimulateError> {
    let tracking = target
        .tracking
        .as_ref()
        .ok_or_else(|| SimulateError::NoTracking(target.name.to_string()))?;
    let timeline = BoundsTimeline::new(target, &demand);
    let mut notes = Vec::new();

    // The config as written, the other variant (reactive, or forecasting), and
    // Application Auto Scaling at the configured target.
    let mut replayed = |name: &str, policy: &mut dyn policies::Replayed, target_value| {
        let played = replay(policy, &demand, &timeline, options);
        progress();
        let result = summarize(name, target_value, &demand, &played, options);
        (result, played)
    };
    let target_value = Some(tracking.target);
    let mut ours = |name: &'static str, config: &TargetConfig, cadence: Cadence| {
        let mut policy = PcAutoscaler::new(name, config.clone(), cadence);
        let (mut result, played) = replayed(name, &mut policy, target_value);
        result.runs = PolicyRun::of(config);
        (result, played)
    };
    let (ours_result, ours_replay) = ours(AS_WRITTEN, target, options.cadence);
    // The same, read every minute: what the adaptive cadence saves and what it costs.
    let every_interval = options
        .cadence
        .adaptive()
        .then(|| ours(EVERY_INTERVAL, target, every_minute(options)));
    let (other, other_target) = other_variant(target);
    let (variant_result, variant_replay) = ours(other, &other_target, options.cadence);
    let mut aas = ApplicationAutoScaling::new("aas-target-tracking", tracking.target);
    let (aas_result, aas_replay) = replayed("aas-target-tracking", &mut aas, target_value);

    let (equal_result, equal_replay) = equal_cost(
        "aas-equal-cost",
        ours_result.provisioned_unit_hours,
        AS_WRITTEN,
        (&demand, &timeline, options),
        &mut notes,
        progress,
    );
    // The other variant's own baseline, when it costs what the config as written does not.
    let (ours_cost, variant_cost) = (
        ours_result.provisioned_unit_hours,
        variant_result.provisioned_unit_hours,
    );
    let variant_baseline = ((variant_cost - ours_cost).abs() > ours_cost * EQUAL_COST_TOLERANCE)
        .then(|| {
            let suffix = other.trim_start_matches("pc-autoscaler");
            equal_cost(
                &format!("aas-equal-cost{suffix}"),
                variant_cost,
                other,
                (&demand, &timeline, options),
                &mut notes,
                progress,
            )
        });

    let (oracle_result, oracle_replay) = oracle(&demand, &timeline, options);
    progress();

    let mut played = vec![(ours_result, ours_replay)];
    played.extend(every_interval);
    played.extend([
        (variant_result, variant_replay),
        (aas_result, aas_replay),
        (equal_result, equal_replay),
    ]);
    played.extend(variant_baseline);
    // The oracle last: the chart keeps it so.
    played.push((oracle_result, oracle_replay));
    Ok(outcome(demand, played, notes))
}

/// The oracle's replay and its row.
fn oracle(demand: &Demand, timeline: &BoundsTimeline, options: &Options) -> (PolicyResult, Replay) {
    let played = replay(
        &mut Oracle::new(&demand.concurrency),
        demand,
        timeline,
        options,
    );
    (summarize("oracle", None, demand, &played, options), played)
}

/// `options`' cadence with every target read every minute.
fn every_minute(options: &Options) -> Cadence {
    Cadence {
        quiet_read_period: options.cadence.interval,
        ..options.cadence
    }
}

/// The report of the policies replayed, in the order given.
fn outcome(demand: Demand, played: Vec<(PolicyResult, Replay)>, notes: Vec<String>) -> Simulation {
    let (policies, usable) = played
        .into_iter()
        .map(|(result, replay)| (result, replay.usable))
        .unzip();
    Simulation {
        report: Report {
            trace: demand.name.clone(),
            minutes: demand.concurrency.len(),
            demand_unit_hours: demand.concurrency.iter().sum::<f64>() / 60.0,
            policies,
            notes,
            frontier: None,
            split: None,
        },
        demand,
        usable,
    }
}

/// Application Auto Scaling at the target value whose provisioned unit-hours match
/// `goal` (those of `matched`): unit-hours fall as the target value rises, so bisect.
fn equal_cost(
    name: &str,
    goal: f64,
    matched: &str,
    (demand, timeline, options): (&Demand, &BoundsTimeline, &Options),
    notes: &mut Vec<String>,
    progress: &mut dyn FnMut(),
) -> (PolicyResult, Replay) {
    let (mut low, mut high) = (0.01_f64, 1.0_f64);
    let mut best: Option<(f64, PolicyResult, Replay)> = None;
    for _ in 0..EQUAL_COST_STEPS {
        let value = (low + high) / 2.0;
        let candidate = replay(
            &mut ApplicationAutoScaling::new(name, value),
            demand,
            timeline,
            options,
        );
        progress();
        let result = summarize(name, Some(value), demand, &candidate, options);
        let error = (result.provisioned_unit_hours - goal).abs() / goal.max(f64::MIN_POSITIVE);
        if result.provisioned_unit_hours > goal {
            low = value;
        } else {
            high = value;
        }
        if best
            .as_ref()
            .is_none_or(|(best_error, _, _)| error < *best_error)
        {
            best = Some((error, result, candidate));
        }
        if error <= EQUAL_COST_TOLERANCE / 4.0 {
            break;
        }
    }
    let (error, result, replay) = best.expect("the search runs at least once");
    if error > EQUAL_COST_TOLERANCE {
        notes.push(format!(
            "{name} matched {matched}'s unit-hours only within {:.1} % (no target value in 0.01..1 comes closer)",
            error * 100.0
        ));
    }
    (result, replay)
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(
        "target `{0}` has no [target.tracking]: there is nothing to compare with target tracking"
    )]
    NoTracking(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot draw the chart: {0}")]
    Chart(String),
    #[error(transparent)]
    Split(#[from] split::NotConcurrency),
}

/// The report as a table for the terminal.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {}: {} minutes, demand {:.1} unit-hours",
        report.trace, report.minutes, report.demand_unit_hours
    );
    let _ = writeln!(
        out,
        "{:<28} {:>7} {:>12} {:>9} {:>12} {:>10} {:>9} {:>6} {:>9} {:>13}",
        "policy",
        "target",
        "spill u-h",
        "spill %",
        "provis. u-h",
        "cost $",
        "cw $/mo",
        "puts",
        "conflicts",
        "react p50/p95"
    );
    for policy in &report.policies {
        let target = policy
            .target_value
            .map_or_else(|| "-".to_owned(), |value| format!("{value:.3}"));
        let _ = writeln!(
            out,
            "{:<28} {:>7} {:>12.2} {:>9.3} {:>12.1} {:>10.2} {:>9.3} {:>6} {:>9} {:>7.0}/{:<5.0}",
            policy.name,
            target,
            policy.spillover_unit_hours,
            policy.spillover_pct,
            policy.provisioned_unit_hours,
            policy.cost_usd,
            policy.cloudwatch_usd_per_month,
            policy.puts,
            policy.conflicts,
            policy.scale_out_reaction_minutes_p50,
            policy.scale_out_reaction_minutes_p95
        );
    }
    if let Some(frontier) = &report.frontier {
        let _ = writeln!(
            out,
            "\ncadence ({AS_WRITTEN} as written, quiet targets read every ...): quiet_read_period, CloudWatch $ a target-month, spill %, cost $"
        );
        for point in &frontier.cadence {
            let _ = writeln!(
                out,
                "  {:>3} min  {:>7.3}  {:>7.3}  {:>10.2}",
                point.quiet_read_minutes,
                point.cloudwatch_usd_per_month,
                point.spillover_pct,
                point.cost_usd
            );
        }
    }
    if let Some(split) = &report.split {
        render_split(&mut out, split);
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

fn render_split(out: &mut String, split: &split::Split) {
    let _ = writeln!(
        out,
        "\nwhere {AS_WRITTEN}'s spillover above the reactive bound goes, each step at {:.1} unit-hours:",
        split.provisioned_unit_hours
    );
    let _ = writeln!(
        out,
        "{:<44} {:>7} {:>12} {:>18}",
        "step", "target", "spill u-h", "of the gap u-h"
    );
    let gap = split.gap();
    // Shares of a gap within a tenth of the spillover itself say nothing.
    let share = |part: f64| {
        if gap > 0.1 * split.steps[0].spillover_unit_hours {
            format!("{part:>10.2} ({:>4.0} %)", 100.0 * part / gap)
        } else {
            format!("{part:>10.2}")
        }
    };
    let first = &split.steps[0];
    let _ = writeln!(
        out,
        "{:<44} {:>7.3} {:>12.2}",
        first.cause, first.target_value, first.spillover_unit_hours
    );
    let (shares, rest) = split.shares();
    for (step, (_, part)) in split.steps[1..].iter().zip(shares) {
        let _ = writeln!(
            out,
            "{:<44} {:>7.3} {:>12.2} {}",
            format!("- {}", step.cause),
            step.target_value,
            step.spillover_unit_hours,
            share(part)
        );
    }
    let _ = writeln!(
        out,
        "{:<44} {:>7} {:>12} {}",
        "- the rest",
        "",
        "",
        share(rest)
    );
    for (name, bound) in [
        ("reactive bound", &split.bound),
        ("refused as Lambda refuses", &split.refused_bound),
    ] {
        let _ = writeln!(
            out,
            "{:<44} {:>7.3} {:>12.2}",
            format!("{name}, window {} min", bound.window_minutes),
            bound.target_value,
            bound.spillover_unit_hours
        );
    }
    for note in &split.unmatched {
        let _ = writeln!(out, "note: {note}");
    }
}

/// Writes `report.json` and `chart.svg` into `dir`.
pub fn write_outputs(outcome: &Simulation, dir: &Path) -> Result<(), SimulateError> {
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| SimulateError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    let json_path = dir.join("report.json");
    let json = serde_json::to_string_pretty(&outcome.report)
        .expect("the report serializes: plain numbers and strings");
    std::fs::write(&json_path, json + "\n").map_err(write_error(&json_path))?;
    if let Some(frontier) = &outcome.report.frontier {
        chart::draw_frontier(frontier, &outcome.report.trace, &dir.join("frontier.svg"))
            .map_err(SimulateError::Chart)?;
    }
    chart::draw(outcome, &dir.join("chart.svg")).map_err(SimulateError::Chart)
}

#[cfg(test)]
mod tests;

/// A `simulate` invocation, as the command line gives it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which target's policy to replay; default the first.
    pub target: Option<String>,
    pub trace: Option<std::path::PathBuf>,
    pub trace_kind: TraceKind,
    pub duration_ms: f64,
    pub mean_concurrency: Option<f64>,
    /// Where the trace starts in time (schedules apply at the shifted timestamps).
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    pub options: Options,
    /// Also replay each policy over `SWEEP_TARGETS`: the frontier.
    pub sweep: bool,
    /// Also split the gap to the reactive bound into its causes.
    pub split: bool,
}

/// Where the synthetic week starts unless `--start` says otherwise: a Monday.
pub const SYNTHETIC_START: &str = "2026-01-05T00:00:00Z";

/// Limits on `simulate`'s flags. Each is wide enough for any real use and narrow
/// enough that arithmetic on it can neither overflow nor allocate without bound.
pub mod limits {
    /// Lambda's longest timeout: 15 minutes.
    pub const MAX_DURATION_MS: f64 = 900_000.0;
    /// Far above any account's concurrency quota.
    pub const MAX_MEAN_CONCURRENCY: f64 = 1_000_000.0;
    /// Lambda's memory sizes: 128 MB to 10,240 MB.
    pub const MEMORY_MB: std::ops::RangeInclusive<f64> = 128.0..=10_240.0;
    /// CloudWatch publishes within minutes; an hour is already a broken pipeline.
    pub const MAX_METRIC_LAG_MINUTES: usize = 60;
    /// `--start` years: late enough for Unix time, early enough that the longest
    /// trace still ends inside the calendar.
    pub const START_YEARS: std::ops::RangeInclusive<i32> = 1970..=9000;
}

/// Every problem with `request`'s flags, all at once; empty when it is usable.
pub fn check_flags(request: &Request) -> Vec<String> {
    use chrono::Datelike as _;
    let mut problems = Vec::new();
    let mut positive = |flag: &str, value: f64, max: f64| {
        if !(value.is_finite() && value > 0.0 && value <= max) {
            problems.push(format!(
                "--{flag} {value}: must be a number above 0 and at most {max}"
            ));
        }
    };
    positive("duration-ms", request.duration_ms, limits::MAX_DURATION_MS);
    if let Some(mean) = request.mean_concurrency {
        positive("mean-concurrency", mean, limits::MAX_MEAN_CONCURRENCY);
    }
    if !limits::MEMORY_MB.contains(&request.options.memory_mb) {
        problems.push(format!(
            "--memory-mb {}: Lambda's memory is {} to {} MB",
            request.options.memory_mb,
            limits::MEMORY_MB.start(),
            limits::MEMORY_MB.end()
        ));
    }
    if request.options.metric_lag > limits::MAX_METRIC_LAG_MINUTES {
        problems.push(format!(
            "--metric-lag {}: at most {} minutes",
            request.options.metric_lag,
            limits::MAX_METRIC_LAG_MINUTES
        ));
    }
    if let Some(start) = request.start
        && !limits::START_YEARS.contains(&start.year())
    {
        problems.push(format!(
            "--start {start}: the year must be from {} to {}",
            limits::START_YEARS.start(),
            limits::START_YEARS.end()
        ));
    }
    problems
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{}", .0.join("\nerror: "))]
    Flags(Vec<String>),
    #[error("no target named `{0}` in the config (targets: {1})")]
    UnknownTarget(String, String),
    #[error(transparent)]
    Trace(#[from] trace::TraceError),
    #[error(transparent)]
    Simulate(#[from] SimulateError),
}

impl RequestError {
    /// Whether the input was wrong (flags, trace, target), as opposed to a failure
    /// while writing the results.
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            RequestError::Simulate(SimulateError::Write { .. } | SimulateError::Chart(_))
        )
    }
}

/// Loads the trace and replays the requested target of `config`. Shows a progress bar
/// on a terminal.
pub fn execute(
    config: &crate::config::Config,
    request: &Request,
) -> Result<Simulation, RequestError> {
    let problems = check_flags(request);
    if !problems.is_empty() {
        return Err(RequestError::Flags(problems));
    }
    let target = match &request.target {
        None => &config.targets[0],
        Some(name) => config
            .targets
            .iter()
            .find(|target| target.name.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = config
                    .targets
                    .iter()
                    .map(|target| target.name.as_str())
                    .collect();
                RequestError::UnknownTarget(name.clone(), names.join(", "))
            })?,
    };
    let mut demand = match &request.trace {
        Some(path) => trace::load(path, request.trace_kind, request.duration_ms)?,
        None => trace::synthetic_week(SYNTHETIC_START.parse().expect("the constant is RFC 3339")),
    };
    if let Some(start) = request.start {
        demand.start = start;
    }
    if let Some(mean) = request.mean_concurrency {
        demand.rescale_to_mean(mean);
    }
    let bar = (std::io::IsTerminal::is_terminal(&std::io::stderr())
        && demand.concurrency.len() > 50_000)
        .then(|| {
            let sweeps = if request.sweep {
                3 * SWEEP_TARGETS.len() + 1 + SWEEP_QUIET_READ_MINUTES.len()
            } else {
                0
            };
            indicatif::ProgressBar::new((2 * EQUAL_COST_STEPS + 5 + sweeps) as u64)
                .with_message("replaying")
        });
    let mut tick = || {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    };
    let options = Options {
        cadence: Options::cadence_of(&config.daemon),
        ..request.options
    };
    let mut outcome = run(target, demand, &options, &mut tick)?;
    if request.sweep {
        outcome.report.frontier = Some(sweep(target, &outcome.demand, &options, &mut tick));
    }
    if request.split {
        outcome.report.split =
            Some(split::split(target, &outcome.demand, &options).map_err(SimulateError::from)?);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(outcome)
}
