//! The policies `simulate` compares, each acting once a minute on the same world:
//! pc-autoscaler's own policy core, Application Auto Scaling's target tracking as
//! documented for Lambda, and an oracle that knows the future.
//!
//! What it must not do: see the future, except the oracle.

use chrono::{DateTime, TimeDelta, Utc};

use super::model::{Lambda, allocation_minutes};
use crate::config::TargetConfig;
use crate::policy::cadence::{self, Cadence, ReadSignals};
use crate::policy::{
    self, AllocationStatus, Bounds, Datapoint, Observation, PolicyState, schedule,
};

/// What a policy may see at a minute.
pub struct World<'a> {
    pub minute: usize,
    pub now: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub lambda: &'a Lambda,
    /// Demand per minute: the future is there too, for the oracle alone.
    pub demand: &'a [f64],
    /// Usable capacity of each earlier minute (for utilization datapoints).
    pub usable_history: &'a [u32],
    pub metric_lag: usize,
    pub bounds: &'a Bounds,
}

impl World<'_> {
    /// The newest minute whose datapoint CloudWatch has published.
    fn newest_visible(&self) -> Option<usize> {
        self.minute.checked_sub(self.metric_lag)
    }

    /// `ConcurrentExecutions`, Maximum: the minute's demand.
    fn concurrency(&self, minute: usize) -> f64 {
        self.demand[minute]
    }

    /// `ProvisionedConcurrencyUtilization`: the share of usable capacity in use;
    /// no datapoint when nothing is provisioned.
    fn utilization(&self, minute: usize) -> Option<f64> {
        // With `--metric-lag 0` the current minute is visible too: its capacity is
        // the one in force now, not yet in the history.
        let usable = match self.usable_history.get(minute) {
            Some(usable) => *usable,
            None if minute == self.minute => self.lambda.usable,
            None => return None,
        };
        (usable > 0).then(|| (self.demand[minute] / f64::from(usable)).min(1.0))
    }

    fn timestamp(&self, minute: usize) -> DateTime<Utc> {
        self.start + TimeDelta::minutes(minute as i64)
    }
}

/// A policy under replay: returns the value to put, if any.
pub trait Replayed {
    fn name(&self) -> &str;
    /// The tracking target value this policy runs with, if it has one.
    fn target_value(&self) -> Option<f64>;
    fn initial_capacity(&self, demand: &[f64], bounds: &Bounds) -> u32;
    fn act(&mut self, world: &World<'_>) -> Option<u32>;
    /// What reading its metrics took over the replay, as CloudWatch bills it.
    fn reading(&self) -> Reading {
        Reading::default()
    }
}

/// A policy's CloudWatch usage: `GetMetricData` is billed per metric requested,
/// alarms per alarm a month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    pub metrics_requested: u64,
    pub alarms: u32,
}

fn units(value: f64) -> u32 {
    value.max(0.0).ceil().min(f64::from(u32::MAX)) as u32
}

fn tracking_start(demand: &[f64], target: f64, bounds: &Bounds) -> u32 {
    let first = demand.first().copied().unwrap_or(0.0);
    units(first / target).clamp(bounds.min, bounds.max)
}

/// pc-autoscaler: the real policy core, fed exactly what the daemon would read, when
/// the daemon would read it.
pub struct PcAutoscaler {
    name: &'static str,
    target: TargetConfig,
    state: PolicyState,
    /// The newest datapoint minute already handed over.
    seen: Option<usize>,
    cadence: Cadence,
    reads: Reads,
}

/// What the cadence keeps between minutes (`policy::cadence`).
struct Reads {
    /// The minute of the last read, and how many there were.
    last: Option<usize>,
    count: u32,
    /// The next schedule boundary, computed again once passed.
    next_change: Option<DateTime<Utc>>,
    /// The capacity the forecast wanted at the last decision.
    forecast_needs: Option<u32>,
    /// The target value and scale-in window the last decision used.
    aim: (f64, TimeDelta),
    /// Metrics requested: one per read of the target.
    requested: u64,
}

impl PcAutoscaler {
    /// The policy read at `cadence`; with a `quiet_read_period` no longer than the
    /// interval it reads every minute.
    pub fn new(name: &'static str, target: TargetConfig, cadence: Cadence) -> Self {
        Self {
            name,
            state: PolicyState::default(),
            seen: None,
            reads: Reads {
                last: None,
                count: 0,
                next_change: None,
                forecast_needs: None,
                aim: cadence::aim(&target, None),
                requested: 0,
            },
            target,
            cadence,
        }
    }

    /// Whether the daemon would read this target's metric at this minute: the cadence,
    /// or the account's sentinel seeing a rise since the last read. `simulate` models
    /// the account as this function and a flat rest, so every rise of the function is a
    /// rise of the account.
    fn reads_now(&mut self, world: &World<'_>) -> bool {
        if self
            .reads
            .next_change
            .is_none_or(|change| change < world.now)
        {
            self.reads.next_change = schedule::next_boundary(&self.target, world.now);
        }
        let window: Vec<Datapoint> = self.state.datapoints().collect();
        let signals = ReadSignals {
            last_read: self.reads.last.map(|minute| world.timestamp(minute)),
            reads: self.reads.count,
            datapoints: &window,
            requested: world.lambda.requested,
            floor: world.bounds.min,
            target: self.reads.aim.0,
            scale_in_window: self.reads.aim.1,
            allocating: world.lambda.in_progress(),
            next_change: self.reads.next_change,
            forecast_needs: self.reads.forecast_needs,
            asked: false,
        };
        let due = cadence::read_now(&signals, self.cadence, world.now).is_some()
            || self.sentinel_alarm(world, &signals);
        if due {
            self.reads.last = Some(world.minute);
            self.reads.count = self.reads.count.saturating_add(1);
            self.reads.requested += 1;
        }
        due
    }

    /// What the policy hands on between decisions: the forecast's demand history.
    #[cfg(test)]
    pub fn state(&self) -> &PolicyState {
        &self.state
    }

    fn sentinel_alarm(&self, world: &World<'_>, signals: &ReadSignals<'_>) -> bool {
        let (Some(seen), Some(newest)) = (self.seen, world.newest_visible()) else {
            return false;
        };
        let account: Vec<Datapoint> = (seen..=newest)
            .map(|minute| Datapoint {
                timestamp: world.timestamp(minute),
                value: world.concurrency(minute),
            })
            .collect();
        cadence::sentinel_alarm(
            &account,
            world.timestamp(seen),
            0.0,
            cadence::headroom(signals),
        )
    }
}

impl Replayed for PcAutoscaler {
    fn name(&self) -> &str {
        self.name
    }

    fn target_value(&self) -> Option<f64> {
        self.target
            .tracking
            .as_ref()
            .map(|tracking| tracking.target)
    }

    fn initial_capacity(&self, demand: &[f64], bounds: &Bounds) -> u32 {
        tracking_start(demand, self.target_value().unwrap_or(1.0), bounds)
    }

    fn reading(&self) -> Reading {
        Reading {
            metrics_requested: self.reads.requested,
            alarms: 0,
        }
    }

    fn act(&mut self, world: &World<'_>) -> Option<u32> {
        if !self.reads_now(world) {
            // Not read, so not decided: capacity stays as it is.
            return None;
        }
        // Every metric kind reads the absolute demand (`ConcurrentExecutions`), as the
        // daemon does; see `policy::tracking`.
        let mut datapoints = Vec::new();
        if let Some(newest) = world.newest_visible() {
            let first = self.seen.map_or(0, |seen| seen + 1);
            for minute in first..=newest {
                datapoints.push(Datapoint {
                    timestamp: world.timestamp(minute),
                    value: world.concurrency(minute),
                });
            }
            self.seen = Some(newest);
        }
        let lambda = world.lambda;
        let observation = Observation {
            requested: lambda.requested,
            allocated: lambda.usable,
            status: if lambda.in_progress() {
                AllocationStatus::InProgress
            } else {
                AllocationStatus::Ready
            },
            last_modified: lambda.last_change.map(|minute| world.timestamp(minute)),
            datapoints,
            metrics: policy::MetricsRead::Complete,
            caps: policy::Caps::default(),
            overrides: Vec::new(),
        };
        let decision = policy::decide_within(
            &self.target,
            world.bounds.clone(),
            &observation,
            &self.state,
            world.now,
        );
        self.state = decision.state;
        self.reads.forecast_needs = self.target.tracking.as_ref().and_then(|tracking| {
            let horizon = self.cadence.forecast_horizon(tracking.forecast_horizon);
            policy::forecast_needs(&self.target, &self.state, world.now, horizon)
        });
        self.reads.aim = cadence::aim(&self.target, decision.tuned.as_ref());
        (decision.desired != lambda.requested).then_some(decision.desired)
    }
}

/// Application Auto Scaling target tracking for Lambda, as documented: alarms on
/// `ProvisionedConcurrencyUtilization` (Average); scale out after 3 consecutive
/// one-minute datapoints above the target, scale in after 15 consecutive below 90 %
/// of it; new capacity = ceil(current × utilization / target); no scaling while an
/// allocation is in progress or data is missing. Scheduled actions set min and max.
pub struct ApplicationAutoScaling {
    name: String,
    target: f64,
    above: usize,
    below: usize,
    seen: Option<usize>,
}

/// Consecutive datapoints above the target before a scale-out.
pub const AAS_SCALE_OUT_DATAPOINTS: usize = 3;
/// Consecutive datapoints below `AAS_SCALE_IN_FRACTION` × target before a scale-in.
pub const AAS_SCALE_IN_DATAPOINTS: usize = 15;
pub const AAS_SCALE_IN_FRACTION: f64 = 0.9;

impl ApplicationAutoScaling {
    pub fn new(name: &str, target: f64) -> Self {
        Self {
            name: name.to_owned(),
            target,
            above: 0,
            below: 0,
            seen: None,
        }
    }
}

impl Replayed for ApplicationAutoScaling {
    fn reading(&self) -> Reading {
        // Its target tracking policy keeps a scale-out and a scale-in alarm.
        Reading {
            metrics_requested: 0,
            alarms: 2,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn target_value(&self) -> Option<f64> {
        Some(self.target)
    }

    fn initial_capacity(&self, demand: &[f64], bounds: &Bounds) -> u32 {
        tracking_start(demand, self.target, bounds)
    }

    fn act(&mut self, world: &World<'_>) -> Option<u32> {
        let lambda = world.lambda;
        // Scheduled actions: capacity is moved into the new min and max at once.
        let clamped = lambda.requested.clamp(world.bounds.min, world.bounds.max);
        if clamped != lambda.requested && !lambda.in_progress() {
            return Some(clamped);
        }
        let newest = world.newest_visible()?;
        if self.seen == Some(newest) {
            return None;
        }
        self.seen = Some(newest);
        let Some(utilization) = world.utilization(newest) else {
            // Missing data: the alarms have insufficient data and do nothing.
            self.above = 0;
            self.below = 0;
            return None;
        };
        self.above = if utilization > self.target {
            self.above + 1
        } else {
            0
        };
        self.below = if utilization < AAS_SCALE_IN_FRACTION * self.target {
            self.below + 1
        } else {
            0
        };
        if lambda.in_progress() {
            return None;
        }
        let wanted = units(f64::from(lambda.usable) * utilization / self.target - 1e-9)
            .clamp(world.bounds.min, world.bounds.max);
        if self.above >= AAS_SCALE_OUT_DATAPOINTS && wanted > lambda.requested {
            return Some(wanted);
        }
        if self.below >= AAS_SCALE_IN_DATAPOINTS && wanted < lambda.requested {
            return Some(wanted.max(1));
        }
        None
    }
}

/// Knows the future demand and how long an allocation takes, and keeps exactly enough
/// capacity for the highest demand it could not react to in time: the physical limit.
pub struct Oracle {
    horizon: usize,
}

impl Oracle {
    pub fn new(demand: &[f64]) -> Self {
        let peak = demand.iter().copied().fold(0.0, f64::max);
        // An allocation takes `allocation_minutes`; a second one can start only once the
        // first is done, so the oracle looks two allocations ahead.
        Self {
            horizon: 2 * allocation_minutes(units(peak)),
        }
    }

    fn need(&self, demand: &[f64], minute: usize) -> u32 {
        let end = (minute + self.horizon + 1).min(demand.len());
        units(
            demand[minute.min(end)..end]
                .iter()
                .copied()
                .fold(0.0, f64::max),
        )
    }
}

impl Replayed for Oracle {
    fn name(&self) -> &str {
        "oracle"
    }

    fn target_value(&self) -> Option<f64> {
        None
    }

    fn initial_capacity(&self, demand: &[f64], _bounds: &Bounds) -> u32 {
        self.need(demand, 0)
    }

    fn act(&mut self, world: &World<'_>) -> Option<u32> {
        if world.lambda.in_progress() {
            return None;
        }
        let need = self.need(world.demand, world.minute);
        (need != world.lambda.requested).then_some(need)
    }
}
