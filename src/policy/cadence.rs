//! How often a tracked target's metric is read: every interval while it could need
//! more capacity soon, every `quiet_read_period` otherwise, and at once when the
//! account's own concurrency rises by more than the targets read can explain.
//!
//! CloudWatch bills `GetMetricData` per metric requested, whatever the datapoints, so a
//! read every few minutes that fetches every minute since the last one costs a fraction
//! of a read a minute and misses no datapoint. The daemon and `simulate` both ask
//! [`read_now`] and [`sentinel_alarm`], so what `simulate` replays is what the daemon
//! does.
//!
//! What it must not do: decide capacity, or read the clock. A target that is not read
//! is not decided either, so a quiet read can never shrink anything; a scale-in still
//! needs a fresh read, as every decision does.

use chrono::{DateTime, TimeDelta, Utc};

use super::Datapoint;
use super::tuning::Tuned;
use crate::config::TargetConfig;

/// CloudWatch's price of `GetMetricData`: $0.01 per 1,000 metrics requested, whatever
/// the datapoints (published price).
pub const PRICE_PER_METRIC_REQUESTED: f64 = 0.01 / 1000.0;
/// A month, as bills count it: 730 hours.
pub const SECONDS_PER_MONTH: f64 = 730.0 * 3600.0;

/// What reading one metric every `period` costs a month.
pub fn monthly_cost(period: TimeDelta) -> f64 {
    let seconds = period.num_milliseconds() as f64 / 1000.0;
    if seconds <= 0.0 {
        return 0.0;
    }
    SECONDS_PER_MONTH / seconds * PRICE_PER_METRIC_REQUESTED
}

/// A target whose newest demand needs this share of its capacity at its target value
/// counts as near it, and is read every interval.
pub const NEAR_TARGET: f64 = 0.8;
/// Reads every interval after a start (or after a target is added), before its demand
/// is known well enough to call it quiet.
pub const FIRST_READS: u32 = 3;
/// The smallest rise of the account's concurrency the sentinel acts on, in units: a
/// unit is one execution environment, the least a target can need more of.
pub const SENTINEL_MIN_RISE: f64 = 1.0;

/// What the cadence knows of one tracked target.
#[derive(Debug, Clone, Copy)]
pub struct ReadSignals<'a> {
    /// When its metric was last read, if ever.
    pub last_read: Option<DateTime<Utc>>,
    /// How many times it has been read since it was started or added.
    pub reads: u32,
    /// The datapoints of its last read, oldest first.
    pub datapoints: &'a [Datapoint],
    /// Provisioned concurrency requested now, and the lowest its bounds allowed at the
    /// last decision.
    pub requested: u32,
    pub floor: u32,
    /// Its tracking target (utilization, or a custom metric's value per unit) and
    /// scale-in window, as its last decision used them.
    pub target: f64,
    pub scale_in_window: TimeDelta,
    /// An allocation is in progress.
    pub allocating: bool,
    /// The next time its bounds or overrides change (a schedule boundary, its lead
    /// included, or an override's start or end).
    pub next_change: Option<DateTime<Utc>>,
    /// The capacity the forecast expected it to need, at its last decision, before
    /// the read after next ([`Cadence::forecast_horizon`]).
    pub forecast_needs: Option<u32>,
    /// Something asked for a read at the next pass: the sentinel, a drift, a reload.
    pub asked: bool,
}

/// Why a target is read at this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadWhy {
    /// `quiet_read_period` is no longer than the interval: the cadence is off.
    EveryInterval,
    FirstReads,
    Asked,
    /// Its quiet period is over.
    QuietPeriodOver,
    NearTarget,
    Rising,
    Allocating,
    ChangeAhead,
    ForecastAhead,
    /// The account's sentinel saw a rise the targets read did not explain.
    Sentinel,
    /// The peak that holds its capacity leaves the scale-in window: it may scale in.
    ScaleInDue,
}

impl ReadWhy {
    pub const ALL: [ReadWhy; 11] = [
        ReadWhy::EveryInterval,
        ReadWhy::FirstReads,
        ReadWhy::Asked,
        ReadWhy::QuietPeriodOver,
        ReadWhy::NearTarget,
        ReadWhy::Rising,
        ReadWhy::Allocating,
        ReadWhy::ChangeAhead,
        ReadWhy::ForecastAhead,
        ReadWhy::Sentinel,
        ReadWhy::ScaleInDue,
    ];

    /// A bounded label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            ReadWhy::EveryInterval => "every_interval",
            ReadWhy::FirstReads => "first_reads",
            ReadWhy::Asked => "asked",
            ReadWhy::QuietPeriodOver => "quiet_period_over",
            ReadWhy::NearTarget => "near_target",
            ReadWhy::Rising => "rising",
            ReadWhy::Allocating => "allocating",
            ReadWhy::ChangeAhead => "change_ahead",
            ReadWhy::ForecastAhead => "forecast_ahead",
            ReadWhy::Sentinel => "sentinel",
            ReadWhy::ScaleInDue => "scale_in_due",
        }
    }
}

/// The pass's spacing and the quiet targets' read period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub interval: TimeDelta,
    pub quiet_read_period: TimeDelta,
}

impl Cadence {
    /// The cadence of `daemon`'s `interval` and `quiet_read_period`.
    pub fn of(daemon: &crate::config::DaemonSettings) -> Self {
        let delta =
            |duration: std::time::Duration| TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX);
        Cadence {
            interval: delta(daemon.interval),
            quiet_read_period: delta(daemon.quiet_read_period),
        }
    }

    /// How far ahead the forecast looks for the cadence: past the next quiet read and
    /// the interval it takes to act on it, plus the target's own `forecast_horizon`.
    pub fn forecast_horizon(&self, forecast_horizon: TimeDelta) -> TimeDelta {
        forecast_horizon + self.quiet_read_period + self.interval
    }

    /// Whether targets are read less often than every interval at all.
    pub fn adaptive(&self) -> bool {
        self.quiet_read_period > self.interval
    }
}

/// Whether the target's metric is read at the pass at `now`, and why; `None` when it
/// is quiet and its quiet period is not over.
pub fn read_now(
    signals: &ReadSignals<'_>,
    cadence: Cadence,
    now: DateTime<Utc>,
) -> Option<ReadWhy> {
    if !cadence.adaptive() {
        return Some(ReadWhy::EveryInterval);
    }
    let Some(last_read) = signals.last_read else {
        return Some(ReadWhy::FirstReads);
    };
    if signals.reads < FIRST_READS {
        return Some(ReadWhy::FirstReads);
    }
    if signals.asked {
        return Some(ReadWhy::Asked);
    }
    // Passes do not land on the second: half an interval early is on time.
    if now - last_read + cadence.interval / 2 >= cadence.quiet_read_period {
        return Some(ReadWhy::QuietPeriodOver);
    }
    if signals.allocating {
        return Some(ReadWhy::Allocating);
    }
    let newest = signals.datapoints.last().map_or(0.0, |point| point.value);
    if newest >= NEAR_TARGET * signals.target * f64::from(signals.requested) && newest > 0.0 {
        return Some(ReadWhy::NearTarget);
    }
    if rising(signals.datapoints) {
        return Some(ReadWhy::Rising);
    }
    // Before the next quiet read comes, plus the interval it takes to act on it.
    let horizon = now + cadence.quiet_read_period + cadence.interval;
    if signals.next_change.is_some_and(|change| change <= horizon) {
        return Some(ReadWhy::ChangeAhead);
    }
    if signals
        .forecast_needs
        .is_some_and(|needs| needs > signals.requested)
    {
        return Some(ReadWhy::ForecastAhead);
    }
    if scale_in_due(signals, now + cadence.interval) {
        return Some(ReadWhy::ScaleInDue);
    }
    None
}

/// Whether the target holds more than its newest demand needs, and the peak that
/// holds it leaves the scale-in window by `by`: reading then lets it scale in on time
/// rather than at its next quiet read, which would keep capacity paid for meanwhile.
fn scale_in_due(signals: &ReadSignals<'_>, by: DateTime<Utc>) -> bool {
    let Some(newest) = signals.datapoints.last() else {
        return false;
    };
    let needs = (newest.value / signals.target)
        .ceil()
        .max(f64::from(signals.floor));
    if needs >= f64::from(signals.requested) {
        return false;
    }
    signals
        .datapoints
        .iter()
        .max_by(|a, b| a.value.total_cmp(&b.value))
        .is_some_and(|peak| peak.timestamp + signals.scale_in_window <= by)
}

/// The target value and scale-in window a decision used: the pair the history chose,
/// or the configured one.
pub fn aim(target: &TargetConfig, tuned: Option<&Tuned>) -> (f64, TimeDelta) {
    match (tuned, &target.tracking) {
        (Some(tuned), _) => (
            tuned.target,
            TimeDelta::minutes(i64::from(tuned.window_minutes)),
        ),
        (None, Some(tracking)) => (tracking.target, tracking.scale_in_window),
        (None, None) => (1.0, TimeDelta::zero()),
    }
}

/// The newest datapoint is above every one before it in the read: demand is at a new
/// high for the window, which is when a quiet target starts to need more.
fn rising(datapoints: &[Datapoint]) -> bool {
    let Some((newest, before)) = datapoints.split_last() else {
        return false;
    };
    !before.is_empty() && before.iter().all(|point| newest.value > point.value)
}

/// How much a quiet target's demand may rise before it needs more capacity: what its
/// capacity serves at its target value, less the newest demand read; at least
/// [`SENTINEL_MIN_RISE`].
pub fn headroom(signals: &ReadSignals<'_>) -> f64 {
    let newest = signals.datapoints.last().map_or(0.0, |point| point.value);
    (signals.target * f64::from(signals.requested) - newest).max(SENTINEL_MIN_RISE)
}

/// The rise of a series over the span: its newest value less its lowest since `since`.
pub fn rise_since(datapoints: &[Datapoint], since: DateTime<Utc>) -> f64 {
    let Some(newest) = datapoints.last() else {
        return 0.0;
    };
    let lowest = datapoints
        .iter()
        .filter(|point| point.timestamp >= since)
        .map(|point| point.value)
        .fold(newest.value, f64::min);
    newest.value - lowest
}

/// Whether the account's concurrency rose since `since` by more than the targets read
/// this pass explain (`explained`, the sum of their own rises) plus the smallest
/// headroom among the quiet ones (`threshold`): then some quiet target, or something
/// else in the account, is rising, and the quiet targets are read at once.
pub fn sentinel_alarm(
    account: &[Datapoint],
    since: DateTime<Utc>,
    explained: f64,
    threshold: f64,
) -> bool {
    rise_since(account, since) - explained > threshold.max(SENTINEL_MIN_RISE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_040 + 60 * minute, 0).expect("a time")
    }

    fn points(values: &[f64]) -> Vec<Datapoint> {
        values
            .iter()
            .enumerate()
            .map(|(minute, &value)| Datapoint {
                timestamp: at(minute as i64),
                value,
            })
            .collect()
    }

    const CADENCE: Cadence = Cadence {
        interval: TimeDelta::seconds(60),
        quiet_read_period: TimeDelta::seconds(300),
    };

    fn quiet<'a>(datapoints: &'a [Datapoint]) -> ReadSignals<'a> {
        ReadSignals {
            last_read: Some(at(10)),
            reads: 10,
            datapoints,
            requested: 10,
            floor: 1,
            target: 0.7,
            scale_in_window: TimeDelta::minutes(15),
            allocating: false,
            next_change: None,
            forecast_needs: None,
            asked: false,
        }
    }

    #[test]
    fn a_quiet_target_waits_for_its_period_and_a_busy_one_does_not() {
        let low = points(&[2.0, 3.0, 2.0]);
        assert_eq!(read_now(&quiet(&low), CADENCE, at(11)), None);
        assert_eq!(read_now(&quiet(&low), CADENCE, at(14)), None);
        assert_eq!(
            read_now(&quiet(&low), CADENCE, at(15)),
            Some(ReadWhy::QuietPeriodOver)
        );
        let near = points(&[5.0, 6.0, 5.6]);
        assert_eq!(
            read_now(&quiet(&near), CADENCE, at(11)),
            Some(ReadWhy::NearTarget)
        );
        let rising = points(&[1.0, 2.0, 3.0]);
        assert_eq!(
            read_now(&quiet(&rising), CADENCE, at(11)),
            Some(ReadWhy::Rising)
        );
    }

    #[test]
    fn changes_allocations_forecasts_and_starts_are_read_every_interval() {
        let low = points(&[2.0, 3.0, 2.0]);
        let signals = quiet(&low);
        let ahead = ReadSignals {
            next_change: Some(at(16)),
            ..signals
        };
        assert_eq!(
            read_now(&ahead, CADENCE, at(11)),
            Some(ReadWhy::ChangeAhead)
        );
        let far = ReadSignals {
            next_change: Some(at(30)),
            ..signals
        };
        assert_eq!(read_now(&far, CADENCE, at(11)), None);
        let allocating = ReadSignals {
            allocating: true,
            ..signals
        };
        assert_eq!(
            read_now(&allocating, CADENCE, at(11)),
            Some(ReadWhy::Allocating)
        );
        let forecast = ReadSignals {
            forecast_needs: Some(11),
            ..signals
        };
        assert_eq!(
            read_now(&forecast, CADENCE, at(11)),
            Some(ReadWhy::ForecastAhead)
        );
        let new = ReadSignals {
            reads: 1,
            ..signals
        };
        assert_eq!(read_now(&new, CADENCE, at(11)), Some(ReadWhy::FirstReads));
        let asked = ReadSignals {
            asked: true,
            ..signals
        };
        assert_eq!(read_now(&asked, CADENCE, at(11)), Some(ReadWhy::Asked));
        let off = Cadence {
            quiet_read_period: TimeDelta::seconds(60),
            ..CADENCE
        };
        assert_eq!(
            read_now(&signals, off, at(11)),
            Some(ReadWhy::EveryInterval)
        );
    }

    #[test]
    fn a_target_holding_a_past_peak_is_read_when_the_peak_leaves_its_window() {
        // Capacity 10 for a peak of 3 at minute 1; the newest demand needs 2.
        let after_a_peak = points(&[2.0, 3.0, 1.0]);
        let signals = ReadSignals {
            requested: 10,
            scale_in_window: TimeDelta::minutes(12),
            ..quiet(&after_a_peak)
        };
        assert_eq!(read_now(&signals, CADENCE, at(11)), None);
        assert_eq!(
            read_now(&signals, CADENCE, at(12)),
            Some(ReadWhy::ScaleInDue)
        );
        // Nothing to scale in to when the bounds hold it.
        let held = ReadSignals {
            floor: 10,
            ..signals
        };
        assert_eq!(read_now(&held, CADENCE, at(12)), None);
    }

    #[test]
    fn demand_with_no_capacity_is_near_its_target() {
        let some = points(&[0.0, 0.0, 1.0]);
        let none = ReadSignals {
            requested: 0,
            ..quiet(&some)
        };
        assert_eq!(read_now(&none, CADENCE, at(11)), Some(ReadWhy::NearTarget));
    }

    #[test]
    fn the_sentinel_acts_on_a_rise_the_reads_do_not_explain() {
        let account = points(&[100.0, 101.0, 99.0, 120.0]);
        // 21 up since the low; the targets read explain 15 of it.
        assert!(sentinel_alarm(&account, at(0), 15.0, 4.0));
        assert!(!sentinel_alarm(&account, at(0), 18.0, 4.0));
        // A rise below the smallest headroom among quiet targets changes nothing.
        assert!(!sentinel_alarm(&account, at(0), 0.0, 25.0));
        assert_eq!(rise_since(&account, at(3)), 0.0);
    }

    #[test]
    fn headroom_is_what_the_capacity_serves_at_its_target_less_the_newest_demand() {
        let low = points(&[2.0, 3.0, 2.0]);
        assert!((headroom(&quiet(&low)) - 5.0).abs() < 1e-9);
        let full = points(&[9.0]);
        assert_eq!(headroom(&quiet(&full)), SENTINEL_MIN_RISE);
    }
}
