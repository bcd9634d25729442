//! What is known, up to the decision: each function's configs, reserved concurrency
//! and weighted aliases, and the account's headroom ([`known`]); the metric series of
//! a pass and the history of a forecast ([`series`]); and the `Observation` built
//! from both for `policy::decide` ([`evaluate`]); and which targets Application Auto
//! Scaling manages, and so who may write them ([`aas`]).
//!
//! What it must not do: decide capacity (the policy does) or write anything; a read
//! that failed is carried as such, so that it never becomes a scale-in.

pub mod aas;
pub mod evaluate;
pub mod known;
pub mod series;

use chrono::{DateTime, Utc};

use crate::config::TargetConfig;

/// What a pass reads beyond each target's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    /// Read back to here too: the oldest last read of a target read less often than
    /// every interval, so that no minute since goes unseen.
    pub since: Option<DateTime<Utc>>,
    /// Read the account's `ConcurrentExecutions` too: the sentinel.
    pub account: bool,
}

/// How far back the forecast's history is read: its whole span.
pub const HISTORY_DAYS: i64 = 14;
/// One `GetMetricData` call answers at most this many datapoints.
pub const DATAPOINTS_PER_CALL: usize = 100_800;
/// CloudWatch's quota of `GetMetricData` datapoints a second for data older than
/// three hours; history reads are paced to stay under it.
pub const HISTORY_DATAPOINTS_PER_SECOND: usize = 396_000;
/// A history read of peaks: the 5-minute buckets the forecast keeps.
pub const HISTORY_PEAK_PERIOD: i32 = 300;

/// The period a target's history is read at: 5-minute peaks when its metric is a
/// `Maximum` (all the forecast keeps, a fifth of the datapoints); a minute otherwise,
/// since a 5-minute `Sum` or `Average` is not the peak of its minutes.
pub fn history_period(target: &TargetConfig) -> i32 {
    match evaluate::metric_query(target, String::new()) {
        Some(query) if query.stat == "Maximum" => HISTORY_PEAK_PERIOD,
        _ => crate::aws::MetricQuery::MINUTE,
    }
}

/// Datapoints of one target's history read.
pub fn history_datapoints(target: &TargetConfig) -> usize {
    (HISTORY_DAYS * 86_400 / i64::from(history_period(target))) as usize
}

/// Packs history reads into calls: as many targets as one call's datapoints allow.
pub fn history_calls<'a>(
    targets: impl IntoIterator<Item = &'a TargetConfig>,
) -> Vec<Vec<&'a TargetConfig>> {
    let mut calls: Vec<Vec<&TargetConfig>> = Vec::new();
    let mut filled = DATAPOINTS_PER_CALL;
    for target in targets {
        let datapoints = history_datapoints(target);
        if filled + datapoints > DATAPOINTS_PER_CALL {
            calls.push(Vec::new());
            filled = 0;
        }
        filled += datapoints;
        if let Some(call) = calls.last_mut() {
            call.push(target);
        }
    }
    calls
}

/// What reading the history of some targets takes: calls and datapoints, and so
/// the least time CloudWatch's quota allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRead {
    pub calls: usize,
    pub datapoints: usize,
}

impl HistoryRead {
    pub fn of<'a>(targets: impl IntoIterator<Item = &'a TargetConfig> + Clone) -> Self {
        Self {
            calls: history_calls(targets.clone()).len(),
            datapoints: targets.into_iter().map(history_datapoints).sum(),
        }
    }

    pub fn seconds(&self) -> f64 {
        self.datapoints as f64 / HISTORY_DATAPOINTS_PER_SECOND as f64
    }
}
