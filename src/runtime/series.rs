//! Reads the metric series of many targets in one batched `GetMetricData` (CloudWatch
//! has its own limits; none of Lambda's budget is spent here).
//!
//! It must not decide: a failed read is logged and returned as `None`, and the
//! targets then hold (see `evaluate`).

use chrono::{DateTime, Utc};

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
