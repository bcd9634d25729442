//! The decision core: given a target's configuration, what was observed, the
//! previous state and `now`, how much provisioned concurrency the target should have
//! and why.
//!
//! **Invariant:** this module is pure and deterministic. It imports no tokio, no AWS
//! types, and never reads the clock or the environment: time comes in as `now`. The
//! daemon, `plan`, `run --once` and `simulate` all call [`decide`], so what is proven
//! here in virtual time is what runs in production.
//!
//! The order of a decision, each step able to set the reason:
//! 1. allocation in progress → hold (a write now would be refused as a conflict);
//! 2. the schedule's bounds in force (`schedule`);
//! 3. target tracking: a recommendation per datapoint, the highest in the scale-in
//!    window is the target (`tracking`), with cooldowns, step limit and a 5 % tolerance;
//! 4. clamp to the bounds, then to the caps (reserved concurrency, account headroom);
//! 5. operators' overrides in force (`overrides`), within the target's `max` and the
//!    caps, which no override passes.
//!
//! What it must not do: read the clock, the environment, files or sockets, or import
//! tokio or AWS types.

pub mod cadence;
mod decision;
pub mod forecast;
pub mod overrides;
pub mod schedule;
mod tracking;
pub mod tuning;

use overrides::Override;
use tracking::{Aim, Tracked};

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::{
    ForecastMode, MetricKind, MissingData, StepLimit, TargetConfig, TrackingConfig,
};
pub use decision::{Decision, MetricData, Reason, TRIGGERS};
pub use schedule::Bounds;

/// Changes smaller than this fraction of the current capacity are not worth a write.
pub const TOLERANCE: f64 = 0.05;

/// One metric datapoint: the statistic for the minute starting at `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    pub timestamp: DateTime<Utc>,
    pub value: f64,
}

/// The state of the target's provisioned concurrency config, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AllocationStatus {
    /// No provisioned concurrency config exists.
    #[default]
    None,
    InProgress,
    Ready,
    Failed,
}

impl AllocationStatus {
    /// As the API spells it (`NONE`: no config).
    pub fn label(self) -> &'static str {
        match self {
            AllocationStatus::None => "NONE",
            AllocationStatus::InProgress => "IN_PROGRESS",
            AllocationStatus::Ready => "READY",
            AllocationStatus::Failed => "FAILED",
        }
    }
}

/// Limits outside the target's own configuration. `None` means unknown (the read
/// failed or was not made): an unknown cap limits nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    /// The function's reserved concurrency minus what its other qualifiers hold.
    pub reserved_available: Option<u32>,
    /// How much more than it requests now this target may take from the account's
    /// unreserved concurrency, after `daemon.account_reserve`.
    pub account_headroom: Option<u32>,
}

/// Whether the tracking metric could be read in full this evaluation. "No datapoints
/// because nobody called the function" and "we could not read" are different facts:
/// only a complete read lets an empty window mean idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsRead {
    /// The read succeeded and the series is complete.
    #[default]
    Complete,
    /// The read failed, was throttled or timed out, or the series came back partial
    /// or cut short: whatever datapoints arrived may be missing the newest ones.
    Unreadable,
}

/// What was observed about one target in this evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// Requested provisioned concurrency (0: no config).
    pub requested: u32,
    /// Allocated, usable provisioned concurrency.
    pub allocated: u32,
    pub status: AllocationStatus,
    /// When the config was last changed (from `LastModified`); drives cooldowns, so a
    /// restarted daemon honours them too.
    pub last_modified: Option<DateTime<Utc>>,
    /// Recent datapoints of the tracking metric; may overlap earlier ones.
    pub datapoints: Vec<Datapoint>,
    /// Whether those datapoints are all there is.
    pub metrics: MetricsRead,
    pub caps: Caps,
    /// Operators' overrides of this target, in force or not: the decision uses those in
    /// force at its `now`.
    pub overrides: Vec<Override>,
}

impl Observation {
    /// What the target has, for every question of "how much is there": a `FAILED`
    /// config serves only what it allocated (usually nothing), whatever it requested.
    /// An allocation in progress is never changed (the decision holds), so there the
    /// question does not arise; what serves meanwhile is its allocated part.
    pub fn usable(&self) -> u32 {
        match self.status {
            AllocationStatus::Failed => self.allocated,
            _ => self.requested,
        }
    }
}

/// What a target remembers between decisions: the datapoints of the scale-in window,
/// keyed by minute. It is rebuilt from metric history after a restart, which is why
/// it holds raw datapoints rather than anything derived from earlier decisions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyState {
    /// Sorted by timestamp, one per minute: a window is a few dozen datapoints, and a
    /// vector is copied in one go where a map would be rebuilt node by node.
    history: Vec<Datapoint>,
    /// Peak demand per 5-minute bucket over 8 days, kept only when the forecast or the
    /// window choice is on or observed.
    demand: forecast::DemandHistory,
    /// The window chosen from the demand history (`tuning`), and the last bucket
    /// replayed to choose it: a boundary every [`tuning::RETUNE_BUCKETS`].
    tuned: Option<(i64, Option<tuning::Tuned>)>,
}

impl PolicyState {
    /// The state a target would carry after seeing `datapoints` (its metric history,
    /// read back after a start): the same as if it had seen them one by one.
    pub fn rebuilt(target: &TargetConfig, datapoints: &[Datapoint], now: DateTime<Utc>) -> Self {
        remember(target, &PolicyState::default(), datapoints, now)
    }

    /// The part worth keeping between the daemon's passes: the forecast's demand
    /// history and the window chosen from it. The window's datapoints are not, since
    /// every pass reads its whole window again.
    pub fn demand_only(self) -> Self {
        PolicyState {
            history: Vec::new(),
            ..self
        }
    }

    /// The forecast's peaks a bucket, for tests that compare histories.
    #[cfg(test)]
    pub fn demand(&self) -> &forecast::DemandHistory {
        &self.demand
    }

    pub fn datapoints(&self) -> impl Iterator<Item = Datapoint> + '_ {
        self.history.iter().copied()
    }
}

/// Decides the capacity of `target` at `now`.
pub fn decide(
    target: &TargetConfig,
    observation: &Observation,
    previous: &PolicyState,
    now: DateTime<Utc>,
) -> Decision {
    decide_within(
        target,
        schedule::bounds_at(target, now),
        observation,
        previous,
        now,
    )
}

/// [`decide`] with the schedule's bounds already computed (`simulate` computes them
/// once per minute for all policies it compares).
pub fn decide_within(
    target: &TargetConfig,
    bounds: Bounds,
    observation: &Observation,
    previous: &PolicyState,
    now: DateTime<Utc>,
) -> Decision {
    let mut state = remember(target, previous, &observation.datapoints, now);
    let tuned = retune(target, &mut state);
    if observation.status == AllocationStatus::InProgress {
        return Decision {
            desired: observation.requested,
            reason: Reason::AllocationInProgress,
            bounds,
            recommendation: None,
            metric_value: None,
            metric_data: MetricData::NotTracked,
            state,
            forecast: None,
            tuned,
        };
    }
    let reactive = reactive(target, &bounds, observation, (&state, tuned), now);
    let forecast = forecast_of(target, &state, now);
    let (unclamped, reason) = with_forecast(target, &reactive, forecast.as_ref());
    let (desired, reason) = clamp(unclamped, reason, &bounds, observation);
    let (desired, reason) = overridden(target, &bounds, (desired, reason), observation, now);
    Decision {
        desired,
        reason,
        bounds,
        recommendation: reactive.recommendation,
        metric_value: reactive.metric_value,
        metric_data: reactive.metric_data,
        state,
        forecast,
        tuned,
    }
}

/// What the schedule and tracking alone want, before the forecast and the bounds.
struct Reactive {
    unclamped: u32,
    reason: Reason,
    /// What tracking recommended (the window peak), when it ran on fresh data.
    recommendation: Option<u32>,
    metric_value: Option<f64>,
    metric_data: MetricData,
}

fn reactive(
    target: &TargetConfig,
    bounds: &Bounds,
    observation: &Observation,
    (state, tuned): (&PolicyState, Option<tuning::Tuned>),
    now: DateTime<Utc>,
) -> Reactive {
    let held = |metric_data, reason| Reactive {
        unclamped: observation.requested,
        reason,
        recommendation: None,
        metric_value: None,
        metric_data,
    };
    let Some(tracking) = &target.tracking else {
        return Reactive {
            unclamped: bounds.min,
            reason: floor_reason(bounds),
            recommendation: None,
            metric_value: None,
            metric_data: MetricData::NotTracked,
        };
    };
    if observation.metrics == MetricsRead::Unreadable {
        return held(MetricData::Unreadable, Reason::HeldForUnreadableMetrics);
    }
    match tracking::recommend(tracking, aim(tracking, tuned), state, now) {
        Tracked::Stale { newest } => {
            held(MetricData::Stale, Reason::HeldForStaleMetrics { newest })
        }
        Tracked::Idle if tracking.missing_data == MissingData::Hold => {
            held(MetricData::Idle, Reason::HeldForMissingData)
        }
        Tracked::Idle => Reactive {
            unclamped: 0,
            ..held(MetricData::Idle, Reason::Idle)
        },
        Tracked::Fresh(found) => {
            let (unclamped, reason) = tracked(tracking, &found, observation, now);
            Reactive {
                unclamped,
                reason,
                recommendation: Some(found.window_peak),
                metric_value: Some(found.newest_value),
                metric_data: MetricData::Fresh,
            }
        }
    }
}

/// Tracking on fresh data: the window's peak, within the tolerance, the cooldowns,
/// the scale-in limits.
fn tracked(
    tracking: &TrackingConfig,
    found: &tracking::Recommendation,
    observation: &Observation,
    now: DateTime<Utc>,
) -> (u32, Reason) {
    // What the target has: a FAILED config counts as what it allocated, so a
    // recommendation is compared with the capacity that serves.
    let have = observation.usable();
    let hold = |reason: Reason| (observation.requested, reason);
    let peak = found.window_peak;
    let tracking_reason = Reason::Tracking {
        metric: tracking.metric.label(),
        value: found.newest_value,
    };
    let since_change = |cooldown: TimeDelta| {
        observation
            .last_modified
            .map(|changed| changed + cooldown)
            .filter(|until| now < *until)
    };
    if within_tolerance(peak, have) {
        hold(Reason::WithinTolerance { recommended: peak })
    } else if peak > have {
        match since_change(tracking.scale_out_cooldown) {
            Some(until) => hold(Reason::ScaleOutCooldown { until }),
            None => (peak, tracking_reason),
        }
    } else if tracking.disable_scale_in {
        hold(Reason::ScaleInDisabled { recommended: peak })
    } else if let Some(until) = since_change(tracking.scale_in_cooldown) {
        hold(Reason::ScaleInCooldown { until })
    } else {
        let floor = step_floor(tracking.max_scale_in_step, have);
        if peak < floor {
            (floor, Reason::ScaleInStepLimited { recommended: peak })
        } else if found.newest_recommendation < peak {
            (peak, Reason::ScaleInStabilizing { window_peak: peak })
        } else {
            (peak, tracking_reason)
        }
    }
}

/// The forecast, when it is on or observed: the prediction and the capacity it needs.
type Forecast = Result<(forecast::Prediction, u32), forecast::NoForecast>;

fn forecast_of(target: &TargetConfig, state: &PolicyState, now: DateTime<Utc>) -> Option<Forecast> {
    let tracking = target.tracking.as_ref()?;
    forecast_within(target, state, now, tracking.forecast_horizon)
}

/// The capacity the forecast (when on) expects `target` to need within `horizon` of
/// `now`: what the read cadence looks ahead with, past the decision's own horizon, so
/// that a target read every few minutes is read before its forecast rise.
pub fn forecast_needs(
    target: &TargetConfig,
    state: &PolicyState,
    now: DateTime<Utc>,
    horizon: TimeDelta,
) -> Option<u32> {
    let tracking = target.tracking.as_ref()?;
    if tracking.forecast != ForecastMode::On {
        return None;
    }
    match forecast_within(target, state, now, horizon)? {
        Ok((_, needed)) => Some(needed),
        Err(_) => None,
    }
}

fn forecast_within(
    target: &TargetConfig,
    state: &PolicyState,
    now: DateTime<Utc>,
    horizon: TimeDelta,
) -> Option<Forecast> {
    let tracking = target.tracking.as_ref()?;
    (tracking.forecast != ForecastMode::Off).then(|| {
        let horizon = u32::try_from(horizon.num_minutes()).unwrap_or(0);
        forecast::predict(&state.demand, now, horizon).map(|prediction| {
            let needed = (prediction.expected / tracking.target - 1e-9)
                .ceil()
                .max(0.0);
            (prediction, needed.min(f64::from(u32::MAX)) as u32)
        })
    })
}

/// The forecast only raises: it never scales in by itself, and bounds and caps apply
/// to it as to anything else. It is also the reason when the reactive part holds at
/// exactly what the forecast needs while recommending less: without the forecast,
/// the hold would end in a scale-in.
fn with_forecast(
    target: &TargetConfig,
    reactive: &Reactive,
    forecast: Option<&Forecast>,
) -> (u32, Reason) {
    let unclamped = reactive.unclamped;
    match (&target.tracking, forecast) {
        (Some(tracking), Some(Ok((prediction, needed))))
            if tracking.forecast == ForecastMode::On
                && (*needed > unclamped
                    || (*needed == unclamped
                        && reactive.recommendation.is_some_and(|peak| peak < *needed))) =>
        {
            (
                *needed,
                Reason::Forecast {
                    period: prediction.period.label(),
                    horizon_minutes: prediction.horizon_minutes,
                    expected: prediction.expected,
                },
            )
        }
        _ => (unclamped, reactive.reason.clone()),
    }
}

/// The window and target tracking aims with: the chosen ones with `choose_window = "on"`.
fn aim(tracking: &TrackingConfig, tuned: Option<tuning::Tuned>) -> Aim {
    match tuned {
        Some(tuned) if tracking.choose_window == ForecastMode::On => Aim {
            window: TimeDelta::minutes(i64::from(tuned.window_minutes)),
            target: tuned.target,
        },
        _ => Aim::configured(tracking),
    }
}

/// Chooses the window again when the demand history has passed another
/// [`tuning::RETUNE_BUCKETS`] boundary, from the history up to it, and returns the
/// choice in force. The boundary, not the newest bucket, ends what is replayed, so a
/// history rebuilt between two boundaries gives the choice the watched one made.
fn retune(target: &TargetConfig, state: &mut PolicyState) -> Option<tuning::Tuned> {
    let tracking = target.tracking.as_ref()?;
    if tracking.choose_window == ForecastMode::Off {
        return None;
    }
    let through = state.demand.merged_through()?;
    let boundary = through - through.rem_euclid(tuning::RETUNE_BUCKETS);
    match state.tuned {
        Some((chosen_at, tuned)) if chosen_at == boundary => tuned,
        _ => {
            let minutes = u32::try_from(tracking.scale_in_window.num_minutes()).unwrap_or(u32::MAX);
            let tuned = tuning::choose(
                &state
                    .demand
                    .merged_peaks(tuning::REPLAYED_BUCKETS, boundary),
                minutes,
                tracking.target,
                !matches!(tracking.metric, MetricKind::Custom(_)),
            );
            state.tuned = Some((boundary, tuned));
            tuned
        }
    }
}

/// The previous window's datapoints plus the new ones, older ones dropped.
fn remember(
    target: &TargetConfig,
    previous: &PolicyState,
    datapoints: &[Datapoint],
    now: DateTime<Utc>,
) -> PolicyState {
    let Some(tracking) = &target.tracking else {
        return PolicyState::default();
    };
    let oldest = tracking::window_start(tracking, now);
    let kept = previous
        .history
        .partition_point(|point| point.timestamp < oldest);
    let mut history = previous.history[kept..].to_vec();
    for point in datapoints {
        if point.timestamp < oldest || point.timestamp > now || !point.value.is_finite() {
            continue;
        }
        // New datapoints come after the known ones; a re-read one replaces its minute.
        match history.last() {
            Some(last) if last.timestamp >= point.timestamp => {
                match history.binary_search_by(|known| known.timestamp.cmp(&point.timestamp)) {
                    Ok(index) => history[index].value = point.value,
                    Err(index) => history.insert(index, *point),
                }
            }
            _ => history.push(*point),
        }
    }
    let mut demand = forecast::DemandHistory::default();
    let mut tuned = None;
    if tracking.keeps_history() {
        demand = previous.demand.clone();
        demand.record_all(datapoints.iter().filter(|point| point.timestamp <= now));
        tuned = previous.tuned;
    }
    PolicyState {
        history,
        demand,
        tuned,
    }
}

/// Whether the two are close enough to leave capacity alone. The band is measured
/// from the smaller of the two, so that it is the same going up and coming down: a
/// scale-out just past the band can always be undone when demand falls back, and no
/// short spike leaves capacity ratcheted above what demand justifies.
fn within_tolerance(recommended: u32, requested: u32) -> bool {
    requested > 0
        && recommended > 0
        && f64::from(recommended.abs_diff(requested))
            <= TOLERANCE * f64::from(recommended.min(requested))
}

/// The lowest capacity one scale-in step may reach from `requested`.
fn step_floor(limit: Option<StepLimit>, requested: u32) -> u32 {
    match limit {
        None => 0,
        Some(StepLimit::Count(count)) => requested.saturating_sub(count),
        Some(StepLimit::Fraction(fraction)) => {
            let step = (f64::from(requested) * fraction).ceil() as u32;
            requested.saturating_sub(step.max(1))
        }
    }
}

fn floor_reason(bounds: &Bounds) -> Reason {
    match (&bounds.rule, bounds.min_from_rule) {
        (Some(rule), true) => Reason::ScheduleFloor(rule.clone()),
        _ => Reason::TargetFloor,
    }
}

fn ceiling_reason(bounds: &Bounds) -> Reason {
    match (&bounds.rule, bounds.max_from_rule) {
        (Some(rule), true) => Reason::ScheduleCeiling(rule.clone()),
        _ => Reason::TargetCeiling,
    }
}

/// Bounds first, then caps: a cap is a physical limit that AWS would enforce anyway,
/// so it wins over a schedule floor.
fn clamp(
    desired: u32,
    reason: Reason,
    bounds: &Bounds,
    observation: &Observation,
) -> (u32, Reason) {
    let (desired, reason) = if desired < bounds.min {
        (bounds.min, floor_reason(bounds))
    } else if desired > bounds.max {
        (bounds.max, ceiling_reason(bounds))
    } else {
        (desired, reason)
    };
    capped(desired, reason, observation)
}

/// The override in force that decides, if any, within the config's `max` (the
/// target's, or a schedule rule's in force when it is higher) and the caps. A pause
/// holds what is requested now (a `FAILED` config's retry is no change of direction).
fn overridden(
    target: &TargetConfig,
    bounds: &Bounds,
    decided: (u32, Reason),
    observation: &Observation,
    now: DateTime<Utc>,
) -> (u32, Reason) {
    let Some((one, wanted)) = overrides::winning(
        &observation.overrides,
        decided.0,
        observation.requested,
        now,
    ) else {
        return decided;
    };
    let reason = Reason::Override {
        kind: one.kind,
        until: one.until,
        by: one.by.clone(),
        reason: one.reason.clone(),
    };
    if wanted > target.max.max(bounds.max) {
        return if target.max >= bounds.max {
            capped(target.max, Reason::TargetCeiling, observation)
        } else {
            capped(bounds.max, ceiling_reason(bounds), observation)
        };
    }
    capped(wanted, reason, observation)
}

/// Lambda's limits: reserved concurrency and the account's headroom.
fn capped(mut desired: u32, mut reason: Reason, observation: &Observation) -> (u32, Reason) {
    if let Some(cap) = observation.caps.reserved_available
        && desired > cap
    {
        desired = cap;
        reason = Reason::CappedByReservedConcurrency { cap };
    }
    if let Some(headroom) = observation.caps.account_headroom {
        let cap = observation.requested.saturating_add(headroom);
        if desired > cap {
            desired = cap;
            reason = Reason::CappedByAccountHeadroom { cap };
        }
    }
    (desired, reason)
}

#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
