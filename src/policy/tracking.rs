//! Target tracking: from metric datapoints to a recommended capacity.
//!
//! Each datapoint in the scale-in window yields a recommendation; the target is the
//! highest of them, which makes scale-out immediate and scale-in wait until the
//! whole window has been quiet. Pure arithmetic, no I/O.

use chrono::{DateTime, TimeDelta, Utc};

use super::PolicyState;
use crate::config::{MetricKind, MissingData, TrackingConfig};

/// `ProvisionedConcurrencyUtilization` cannot show demand above 100 %; at or above
/// this value the function is treated as saturated.
pub const SATURATED_UTILIZATION: f64 = 0.99;

pub struct Recommendation {
    /// The highest recommendation in the scale-in window.
    pub window_peak: u32,
    /// The recommendation of the newest datapoint (0 for a missing one with `zero`).
    pub newest_recommendation: u32,
    pub newest_value: Option<f64>,
}

/// The oldest datapoint timestamp that still counts at `now`.
pub fn window_start(tracking: &TrackingConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    // Datapoints arrive late, so the window reaches back past `now - window` by the
    // staleness allowance; otherwise a full window would never hold a full window.
    now - tracking.scale_in_window - tracking.stale_after
}

/// `None` when there is no fresh datapoint and missing data means "hold"; with
/// `zero`, a missing newest datapoint recommends 0.
pub fn recommend(
    tracking: &TrackingConfig,
    allocated: u32,
    state: &PolicyState,
    now: DateTime<Utc>,
) -> Option<Recommendation> {
    let newest = state
        .history
        .last_key_value()
        .filter(|(timestamp, _)| now - **timestamp <= tracking.stale_after)
        .map(|(_, value)| *value);
    if newest.is_none() && tracking.missing_data == MissingData::Hold {
        return None;
    }
    // The window proper: the newest datapoint's age is allowed for, as in `window_start`.
    let newest_time = state
        .history
        .last_key_value()
        .map_or(now, |(timestamp, _)| *timestamp);
    let since = newest_time.min(now) - tracking.scale_in_window + TimeDelta::minutes(1);
    let per_point = |value: f64| recommend_one(tracking, allocated, value);
    let newest_recommendation = newest.map_or(0, per_point);
    let window_peak = state
        .history
        .range(since..)
        .map(|(_, value)| per_point(*value))
        .max()
        .unwrap_or(0)
        .max(newest_recommendation);
    Some(Recommendation {
        window_peak,
        newest_recommendation,
        newest_value: newest,
    })
}

/// The capacity one datapoint asks for.
pub fn recommend_one(tracking: &TrackingConfig, allocated: u32, value: f64) -> u32 {
    let value = value.max(0.0);
    let units = match tracking.metric {
        MetricKind::Concurrency | MetricKind::Custom(_) => value / tracking.target,
        MetricKind::Utilization => {
            let proportional = f64::from(allocated) * value / tracking.target;
            if value >= SATURATED_UTILIZATION {
                // Real demand may be anything above what is allocated: grow by at least
                // the factor 1 / target, and by at least one unit.
                proportional
                    .max(f64::from(allocated) / tracking.target)
                    .max(f64::from(allocated) + 1.0)
            } else {
                proportional
            }
        }
    };
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
