//! Target tracking: from metric datapoints to a recommended capacity.
//!
//! Each datapoint in the scale-in window yields a recommendation; the target is the
//! highest of them, which makes scale-out immediate and scale-in wait until the
//! whole window has been quiet. Pure arithmetic, no I/O.
//!
//! Every metric kind is an *absolute* demand (`ConcurrentExecutions` of the alias or
//! version, or a custom metric), never a ratio of the capacity in force: a
//! recommendation from a datapoint of ten minutes ago then means what it meant ten
//! minutes ago, whatever has been allocated since. (A utilization datapoint multiplied
//! by the capacity allocated *now* compounds: one spike ratchets capacity up until it
//! leaves the window.) It also keeps decisions restart-safe: the series is CloudWatch's
//! own history, with nothing derived from earlier decisions.
//!
//! What it must not do: multiply a datapoint by the capacity in force now: a
//! recommendation depends on the datapoint alone.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Datapoint, PolicyState};
use crate::config::TrackingConfig;

pub struct Recommendation {
    /// The highest recommendation in the scale-in window.
    pub window_peak: u32,
    /// The recommendation of the newest datapoint.
    pub newest_recommendation: u32,
    pub newest_value: f64,
}

/// What the window's datapoints say.
pub enum Tracked {
    /// The newest datapoint is fresh (within `stale_after`).
    Fresh(Recommendation),
    /// The window holds datapoints, but the newest is older than `stale_after`.
    Stale { newest: DateTime<Utc> },
    /// No datapoint in the whole window.
    Idle,
}

/// The oldest datapoint timestamp that still counts at `now`.
pub fn window_start(tracking: &TrackingConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    // Datapoints arrive late, so the window reaches back past `now - window` by the
    // staleness allowance; otherwise a full window would never hold a full window.
    now - tracking.scale_in_window - tracking.stale_after
}

/// The window and target tracking aims with: the configured ones, or those the
/// history chose (`tuning`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aim {
    pub window: TimeDelta,
    pub target: f64,
}

impl Aim {
    pub fn configured(tracking: &TrackingConfig) -> Self {
        Aim {
            window: tracking.scale_in_window,
            target: tracking.target,
        }
    }
}

pub fn recommend(
    tracking: &TrackingConfig,
    aim: Aim,
    state: &PolicyState,
    now: DateTime<Utc>,
) -> Tracked {
    let seen = &state.history[..state
        .history
        .partition_point(|point| point.timestamp <= now)];
    let Some(&Datapoint {
        timestamp: newest_time,
        value: newest_value,
    }) = seen.last()
    else {
        return Tracked::Idle;
    };
    if now - newest_time > tracking.stale_after {
        return Tracked::Stale {
            newest: newest_time,
        };
    }
    // The window proper: the newest datapoint's age is allowed for, as in `window_start`.
    let since = newest_time - aim.window + TimeDelta::minutes(1);
    let in_window = &seen[seen.partition_point(|point| point.timestamp < since)..];
    // A recommendation only grows with its value: the window's peak value gives its peak.
    let mut peak_value = in_window
        .iter()
        .map(|point| point.value)
        .fold(newest_value, f64::max);
    // The datapoints kept cover the configured window only; a longer chosen one reads
    // the rest from the demand history.
    if aim.window > tracking.scale_in_window
        && let Some(older) = state.demand.peak_since(since)
    {
        peak_value = peak_value.max(older);
    }
    let newest_recommendation = recommend_one(aim.target, newest_value);
    let window_peak = recommend_one(aim.target, peak_value);
    Tracked::Fresh(Recommendation {
        window_peak,
        newest_recommendation,
        newest_value,
    })
}

/// The capacity one datapoint of absolute demand asks for: `value / target`, rounded up.
pub fn recommend_one(target: f64, value: f64) -> u32 {
    let units = value.max(0.0) / target;
    // Float noise such as 0.7 / 0.7 = 1.0000000000000002 must not add a unit.
    let rounded = (units - 1e-9).ceil();
    if rounded <= 0.0 {
        0
    } else if rounded >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        rounded as u32
    }
}
