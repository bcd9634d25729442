//! Reads the metric series of many targets in one batched `GetMetricData` (CloudWatch
//! has its own limits; none of Lambda's budget is spent here).
//!
//! It must not decide: a failed read is logged and returned as `None`, and the
//! targets then hold (see `evaluate`).

use chrono::{DateTime, Utc};

use super::evaluate::{SeriesByTarget, metric_query, read_window};
use super::{HISTORY_DAYS, Reach};
use crate::aws::{MetricQuery, MetricsApi, Series};
use crate::config::TargetConfig;

/// What a pass's read brought back.
#[derive(Debug, Default)]
pub struct PassSeries {
    /// By target name; `None` when the read failed.
    pub targets: Option<SeriesByTarget>,
    /// The account's concurrency, when asked for and read.
    pub account: Option<Series>,
    /// Metrics CloudWatch billed for it.
    pub metrics_requested: u64,
}

/// The id of the account's series in a pass's read.
const ACCOUNT_QUERY: &str = "account";

/// The series of every tracked target among `targets`, by target name, over the
/// longest window any of them needs (and back to `reach.since`).
pub async fn fetch<'a, M: MetricsApi>(
    metrics: &M,
    targets: impl IntoIterator<Item = &'a TargetConfig>,
    now: DateTime<Utc>,
    reach: Reach,
) -> PassSeries {
    let mut names = Vec::new();
    let mut queries = Vec::new();
    let mut window = chrono::TimeDelta::zero();
    for target in targets {
        if let Some(query) = metric_query(target, format!("m{}", queries.len())) {
            window = window.max(read_window(target));
            names.push(target.name.clone());
            queries.push(query);
        }
    }
    if reach.account {
        queries.push(MetricQuery::account_concurrency(ACCOUNT_QUERY));
    }
    if queries.is_empty() {
        return PassSeries {
            targets: Some(SeriesByTarget::new()),
            ..PassSeries::default()
        };
    }
    let start = reach
        .since
        .map_or(now - window, |since| since.min(now - window));
    match metrics.fetch(&queries, start, now).await {
        Ok(mut batch) => PassSeries {
            account: batch.series.remove(ACCOUNT_QUERY),
            targets: Some(
                names
                    .into_iter()
                    .enumerate()
                    .filter_map(|(index, name)| {
                        batch
                            .series
                            .remove(&format!("m{index}"))
                            .map(|series| (name, series))
                    })
                    .collect(),
            ),
            metrics_requested: batch.metrics_requested,
        },
        Err(error) => {
            tracing::warn!(error = %error, outcome = error.label(), "metric read failed; tracked targets hold their capacity");
            PassSeries::default()
        }
    }
}

/// A history read: the state of each target it read, rebuilt, and what it asked for.
#[derive(Debug, Default)]
pub struct HistoryBatch {
    pub states: Vec<(crate::config::TargetName, crate::policy::PolicyState)>,
    pub datapoints: usize,
    /// CloudWatch throttled the call: read the batch again after a backoff.
    pub throttled: bool,
}

/// The state of each of `targets` rebuilt from its metric history: one call's worth
/// ([`super::history_calls`]), 5-minute peaks where the metric allows. Targets whose
/// read failed are left out; they build their history as they run.
pub async fn history<'a, M: MetricsApi>(
    metrics: &M,
    targets: impl IntoIterator<Item = &'a TargetConfig>,
    now: DateTime<Utc>,
) -> HistoryBatch {
    let mut names = Vec::new();
    let mut queries = Vec::new();
    let mut datapoints = 0;
    for target in targets {
        if let Some(mut query) = metric_query(target, format!("h{}", queries.len())) {
            query.period = super::history_period(target);
            datapoints += super::history_datapoints(target);
            names.push(target);
            queries.push(query);
        }
    }
    if queries.is_empty() {
        return HistoryBatch::default();
    }
    // On a period boundary, so that each datapoint is one bucket of the forecast's.
    let period = i64::from(super::HISTORY_PEAK_PERIOD);
    let start = now - chrono::TimeDelta::days(HISTORY_DAYS);
    let start =
        DateTime::from_timestamp(start.timestamp().div_euclid(period) * period, 0).unwrap_or(start);
    match metrics.fetch(&queries, start, now).await {
        Ok(mut batch) => HistoryBatch {
            states: names
                .into_iter()
                .enumerate()
                .filter_map(|(index, target)| {
                    let series = batch.series.remove(&format!("h{index}"))?;
                    let state = crate::policy::PolicyState::rebuilt(target, &series.points, now);
                    Some((target.name.clone(), state))
                })
                .collect(),
            datapoints,
            throttled: false,
        },
        Err(error) => {
            let throttled = matches!(error, crate::aws::AwsError::Throttled { .. });
            tracing::warn!(error = %error, outcome = error.label(), throttled, "metric history read failed; the forecast builds its history as it runs");
            HistoryBatch {
                states: Vec::new(),
                datapoints,
                throttled,
            }
        }
    }
}
