//! Reads the metric series of many targets in one batched `GetMetricData` (CloudWatch
//! has its own limits; none of Lambda's budget is spent here).
//!
//! It must not decide: a failed read is logged and returned as `None`, and the
//! targets then hold (see `evaluate`).

use chrono::{DateTime, Utc};

use super::HISTORY_DAYS;
use super::evaluate::{SeriesByTarget, metric_query, read_window};
use crate::aws::MetricsApi;
use crate::config::TargetConfig;

/// The series of every tracked target among `targets`, by target name, over the
/// longest window any of them needs. `None` when the read failed.
pub async fn fetch<'a, M: MetricsApi>(
    metrics: &M,
    targets: impl IntoIterator<Item = &'a TargetConfig>,
    now: DateTime<Utc>,
) -> Option<SeriesByTarget> {
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
    if queries.is_empty() {
        return Some(SeriesByTarget::new());
    }
    match metrics.fetch(&queries, now - window, now).await {
        Ok(mut batch) => Some(
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
        Err(error) => {
            tracing::warn!(error = %error, outcome = error.label(), "metric read failed; tracked targets hold their capacity");
            None
        }
    }
}

/// The state of each of `targets` rebuilt from its metric history (at most
/// `HISTORY_TARGETS_PER_CALL` of them: one call). Targets whose read failed are left
/// out; they build their history as they run.
pub async fn history<'a, M: MetricsApi>(
    metrics: &M,
    targets: impl IntoIterator<Item = &'a TargetConfig>,
    now: DateTime<Utc>,
) -> Vec<(crate::config::TargetName, crate::policy::PolicyState)> {
    let mut names = Vec::new();
    let mut queries = Vec::new();
    for target in targets {
        if let Some(query) = metric_query(target, format!("h{}", queries.len())) {
            names.push(target);
            queries.push(query);
        }
    }
    if queries.is_empty() {
        return Vec::new();
    }
    let start = now - chrono::TimeDelta::days(HISTORY_DAYS);
    match metrics.fetch(&queries, start, now).await {
        Ok(mut batch) => names
            .into_iter()
            .enumerate()
            .filter_map(|(index, target)| {
                let series = batch.series.remove(&format!("h{index}"))?;
                let state = crate::policy::PolicyState::rebuilt(target, &series.points, now);
                Some((target.name.clone(), state))
            })
            .collect(),
        Err(error) => {
            tracing::warn!(error = %error, outcome = error.label(), "metric history read failed; the forecast builds its history as it runs");
            Vec::new()
        }
    }
}
