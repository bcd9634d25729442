//! What a decision says: the capacity it wants ([`Decision`]) and why ([`Reason`]),
//! with the words every reader shares: the reason's label and trigger for metrics and
//! events, its sentence for `plan`, the journal and the log, and what the metric data
//! were ([`MetricData`]). What it must not do: decide; `decide` in `mod.rs` does.

use std::fmt;

use chrono::{DateTime, Utc};

use super::overrides::OverrideKind;
use super::{AllocationStatus, Bounds, Observation, PolicyState, TOLERANCE, forecast, tuning};

/// Why the desired capacity is what it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Tracking recommended this capacity from `value` of `metric`.
    Tracking {
        metric: &'static str,
        value: f64,
    },
    /// Scale-in held at the highest recommendation of the scale-in window.
    ScaleInStabilizing {
        window_peak: u32,
    },
    /// The change tracking wanted is within the tolerance; capacity stays.
    WithinTolerance {
        recommended: u32,
    },
    ScaleOutCooldown {
        until: DateTime<Utc>,
    },
    ScaleInCooldown {
        until: DateTime<Utc>,
    },
    ScaleInStepLimited {
        recommended: u32,
    },
    ScaleInDisabled {
        recommended: u32,
    },
    /// The metric read failed or was incomplete: capacity stays, whatever
    /// `missing_data` says (a failed read is not an idle function).
    HeldForUnreadableMetrics,
    /// The window has datapoints, but none newer than `stale_after`: capacity stays
    /// until the window has passed without any.
    HeldForStaleMetrics {
        newest: DateTime<Utc>,
    },
    /// No datapoint in the whole window and `missing_data = "hold"`: capacity stays.
    HeldForMissingData,
    /// No datapoint in the whole window of a complete read, and `missing_data = "zero"`:
    /// the function was idle, so it needs nothing.
    Idle,
    /// Raised to the floor of the named schedule rule.
    ScheduleFloor(String),
    /// Lowered to the ceiling of the named schedule rule.
    ScheduleCeiling(String),
    /// Raised to the target's own `min` (also: no tracking configured).
    TargetFloor,
    /// Lowered to the target's own `max`.
    TargetCeiling,
    CappedByReservedConcurrency {
        cap: u32,
    },
    CappedByAccountHeadroom {
        cap: u32,
    },
    /// An allocation is still in progress; nothing may be written until it settles.
    AllocationInProgress,
    /// Raised to what the demand expected within `horizon_minutes` needs, foreseen
    /// from the same phase of earlier periods.
    Forecast {
        period: &'static str,
        horizon_minutes: u32,
        expected: f64,
    },
    /// An operator's override decided it, until `until`.
    Override {
        kind: OverrideKind,
        until: DateTime<Utc>,
        by: String,
        reason: String,
    },
}

/// What the tracking metric's datapoints were, as the decision saw them: one bounded
/// word each for `plan`, logs and the `pc_autoscaler_target_metric_data` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricData {
    /// The target does not track a metric.
    NotTracked,
    /// A fresh datapoint (within `stale_after`).
    Fresh,
    /// Datapoints in the window, none fresh: held.
    Stale,
    /// No datapoint in the window of a complete read: the function was idle.
    Idle,
    /// The read failed or was incomplete: held.
    Unreadable,
}

impl MetricData {
    pub const ALL: [MetricData; 5] = [
        MetricData::NotTracked,
        MetricData::Fresh,
        MetricData::Stale,
        MetricData::Idle,
        MetricData::Unreadable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            MetricData::NotTracked => "not_tracked",
            MetricData::Fresh => "fresh",
            MetricData::Stale => "stale",
            MetricData::Idle => "idle",
            MetricData::Unreadable => "unreadable",
        }
    }
}

/// The coarse cause of a capacity change, for the `trigger` label of
/// `pc_autoscaler_scaling_actions_total`: a small, fixed set.
pub const TRIGGERS: [&str; 7] = [
    "tracking",
    "schedule",
    "target_bounds",
    "caps",
    "idle",
    "forecast",
    "override",
];

impl Reason {
    /// Which of [`TRIGGERS`] a change with this reason counts under.
    pub fn trigger(&self) -> &'static str {
        match self {
            Reason::ScheduleFloor(_) | Reason::ScheduleCeiling(_) => "schedule",
            Reason::TargetFloor | Reason::TargetCeiling => "target_bounds",
            Reason::CappedByReservedConcurrency { .. } | Reason::CappedByAccountHeadroom { .. } => {
                "caps"
            }
            Reason::Idle => "idle",
            Reason::Forecast { .. } => "forecast",
            Reason::Override { .. } => "override",
            _ => "tracking",
        }
    }

    /// Whether capacity is held because the metrics could not be used.
    pub fn is_hold(&self) -> bool {
        matches!(
            self,
            Reason::HeldForUnreadableMetrics
                | Reason::HeldForStaleMetrics { .. }
                | Reason::HeldForMissingData
        )
    }

    /// A short, bounded label for logs and tables.
    pub fn label(&self) -> &'static str {
        match self {
            Reason::Tracking { .. } => "tracking",
            Reason::ScaleInStabilizing { .. } => "scale_in_stabilizing",
            Reason::WithinTolerance { .. } => "within_tolerance",
            Reason::ScaleOutCooldown { .. } => "scale_out_cooldown",
            Reason::ScaleInCooldown { .. } => "scale_in_cooldown",
            Reason::ScaleInStepLimited { .. } => "scale_in_step_limited",
            Reason::ScaleInDisabled { .. } => "scale_in_disabled",
            Reason::HeldForUnreadableMetrics => "held_metrics_unreadable",
            Reason::HeldForStaleMetrics { .. } => "held_metrics_stale",
            Reason::HeldForMissingData => "held_for_missing_data",
            Reason::Idle => "idle",
            Reason::ScheduleFloor(_) => "schedule_floor",
            Reason::ScheduleCeiling(_) => "schedule_ceiling",
            Reason::TargetFloor => "target_floor",
            Reason::TargetCeiling => "target_ceiling",
            Reason::CappedByReservedConcurrency { .. } => "capped_by_reserved_concurrency",
            Reason::CappedByAccountHeadroom { .. } => "capped_by_account_headroom",
            Reason::AllocationInProgress => "allocation_in_progress",
            Reason::Forecast { .. } => "forecast",
            Reason::Override { .. } => "override",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Tracking { metric, value } => write!(f, "tracking {metric} = {value:.3}"),
            Reason::ScaleInStabilizing { window_peak } => {
                write!(
                    f,
                    "scale-in held at the window's peak recommendation {window_peak}"
                )
            }
            Reason::WithinTolerance { recommended } => {
                write!(
                    f,
                    "recommended {recommended} is within {:.0}% of current",
                    TOLERANCE * 100.0
                )
            }
            Reason::ScaleOutCooldown { until } => write!(f, "scale-out cooldown until {until}"),
            Reason::ScaleInCooldown { until } => write!(f, "scale-in cooldown until {until}"),
            Reason::ScaleInStepLimited { recommended } => {
                write!(f, "scale-in step limited (recommended {recommended})")
            }
            Reason::ScaleInDisabled { recommended } => {
                write!(f, "scale-in disabled (recommended {recommended})")
            }
            Reason::HeldForUnreadableMetrics => {
                f.write_str("held: the metric read failed or came back incomplete")
            }
            Reason::HeldForStaleMetrics { newest } => {
                write!(f, "held: the newest datapoint ({newest}) is stale")
            }
            Reason::HeldForMissingData => {
                f.write_str("held: no datapoint in the window (missing_data = \"hold\")")
            }
            Reason::Idle => {
                f.write_str("idle: no datapoint in the window (missing_data = \"zero\")")
            }
            Reason::ScheduleFloor(rule) => write!(f, "floor of schedule rule `{rule}`"),
            Reason::ScheduleCeiling(rule) => write!(f, "ceiling of schedule rule `{rule}`"),
            Reason::TargetFloor => f.write_str("target min"),
            Reason::TargetCeiling => f.write_str("target max"),
            Reason::CappedByReservedConcurrency { cap } => {
                write!(f, "capped by reserved concurrency at {cap}")
            }
            Reason::CappedByAccountHeadroom { cap } => {
                write!(f, "capped by account headroom at {cap}")
            }
            Reason::AllocationInProgress => f.write_str("allocation in progress"),
            Reason::Forecast {
                period,
                horizon_minutes,
                expected,
            } => write!(
                f,
                "forecast: {expected:.1} expected within {horizon_minutes} min, as {period} ago"
            ),
            Reason::Override {
                kind,
                until,
                by,
                reason,
            } => write!(f, "override: {kind} until {until} by {by}: {reason}"),
        }
    }
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Provisioned concurrency to request; 0 means "no provisioned concurrency".
    pub desired: u32,
    pub reason: Reason,
    pub bounds: Bounds,
    /// What tracking alone recommended (the window peak), if it ran.
    pub recommendation: Option<u32>,
    /// The newest metric value used, if any.
    pub metric_value: Option<f64>,
    /// What the datapoints were.
    pub metric_data: MetricData,
    /// State to hand to the next decision for this target.
    pub state: PolicyState,
    /// The forecast, when it is on or observed: the prediction and the capacity it
    /// needs, or why there is none.
    pub forecast: Option<Result<(forecast::Prediction, u32), forecast::NoForecast>>,
    /// The window and target the history chose, with `choose_window` on (used) or
    /// observed (shown only); `None` when the configured pair is kept.
    pub tuned: Option<tuning::Tuned>,
}

impl Decision {
    /// Whether carrying out this decision means a write: another value, or the same
    /// value again on a `FAILED` config that lacks it (Lambda allocates anew).
    pub fn changes(&self, observation: &Observation) -> bool {
        self.desired != observation.requested
            || (observation.status == AllocationStatus::Failed
                && self.desired > observation.allocated)
    }
}
