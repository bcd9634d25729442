//! `MetricsApi` over the official SDK: all queries of a cycle in as few
//! `GetMetricData` calls as the API allows (500 queries a call), following `NextToken`.
//!
//! A datapoint no Lambda metric can have (not a number, infinite, negative, or above
//! [`MAX_VALUE`]) is refused here, at the read, and its series is marked partial: it
//! never reaches a decision or a bill, and a series with one left out never counts as
//! idle.
//!
//! What it must not do: read anything but the queries it is given, or retry beyond the
//! SDK's standard retry.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime as SdkDateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode,
};
use chrono::{DateTime, Utc};

use super::errors::from_sdk;
use super::{AwsError, MetricQuery, MetricsApi, MetricsBatch, Series, SeriesStatus};
use crate::policy::Datapoint;

/// `GetMetricData` accepts at most this many queries per request.
pub const MAX_QUERIES_PER_REQUEST: usize = 500;
/// The largest datapoint taken: far above any account's concurrency or any count a
/// minute of invocations, and small enough that sums and prices of it stay exact.
pub const MAX_VALUE: f64 = 1e9;

#[derive(Clone)]
pub struct SdkMetrics {
    client: Client,
}

impl SdkMetrics {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn sdk_time(time: DateTime<Utc>) -> SdkDateTime {
    SdkDateTime::from_secs(time.timestamp())
}

fn sdk_query(query: &MetricQuery) -> MetricDataQuery {
    let dimensions = query
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect();
    let metric = Metric::builder()
        .namespace(&query.namespace)
        .metric_name(&query.name)
        .set_dimensions(Some(dimensions))
        .build();
    let stat = MetricStat::builder()
        .metric(metric)
        .period(query.period)
        .stat(&query.stat)
        .build();
    MetricDataQuery::builder()
        .id(&query.id)
        .metric_stat(stat)
        .return_data(true)
        .build()
}

impl MetricsApi for SdkMetrics {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<MetricsBatch, AwsError> {
        let mut batch = MetricsBatch::default();
        let mut collected: BTreeMap<String, (Vec<Datapoint>, SeriesStatus)> = BTreeMap::new();
        let mut refused = std::collections::BTreeSet::new();
        for chunk in queries.chunks(MAX_QUERIES_PER_REQUEST) {
            let sdk_queries: Vec<MetricDataQuery> = chunk.iter().map(sdk_query).collect();
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                let output = self
                    .client
                    .get_metric_data()
                    .set_metric_data_queries(Some(sdk_queries.clone()))
                    .start_time(sdk_time(start))
                    .end_time(sdk_time(end))
                    .scan_by(ScanBy::TimestampAscending)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(from_sdk)?;
                batch.metrics_requested += chunk.len() as u64;
                for result in output.metric_data_results() {
                    if collect(&mut collected, result) > 0 {
                        refused.extend(result.id().map(str::to_owned));
                    }
                }
                token = output.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
                pages += 1;
                if pages >= super::MAX_METRIC_PAGES {
                    // Cut short: whatever was read is marked partial, so it holds.
                    for query in chunk {
                        if let Some(entry) = collected.get_mut(&query.id)
                            && entry.1 == SeriesStatus::Complete
                        {
                            entry.1 = SeriesStatus::Partial;
                        }
                    }
                    break;
                }
            }
        }
        for query in queries {
            // A query the answer does not mention at all was not read: not "no data".
            let (mut points, mut status) = collected
                .remove(&query.id)
                .unwrap_or((Vec::new(), SeriesStatus::Failed));
            if refused.contains(&query.id) && status == SeriesStatus::Complete {
                tracing::warn!(query = %query.id, "datapoints no Lambda metric can have were refused; the series counts as partial");
                status = SeriesStatus::Partial;
            }
            points.sort_by_key(|point| point.timestamp);
            batch
                .series
                .insert(query.id.clone(), Series { points, status });
        }
        Ok(batch)
    }
}

/// Adds one query's page of datapoints to what was collected for it; returns how many
/// it refused.
fn collect(
    collected: &mut BTreeMap<String, (Vec<Datapoint>, SeriesStatus)>,
    result: &aws_sdk_cloudwatch::types::MetricDataResult,
) -> usize {
    let Some(id) = result.id() else { return 0 };
    let mut refused = 0;
    let entry = collected
        .entry(id.to_owned())
        .or_insert_with(|| (Vec::new(), SeriesStatus::Complete));
    // Kept until the next read (or, for a history, folded at once): exactly as long
    // as it needs to be, where pushing one by one would leave up to half of it spare.
    entry.0.reserve_exact(result.timestamps().len());
    for (timestamp, value) in result.timestamps().iter().zip(result.values()) {
        if !(value.is_finite() && (0.0..=MAX_VALUE).contains(value)) {
            refused += 1;
            continue;
        }
        if let Some(timestamp) =
            DateTime::from_timestamp(timestamp.secs(), timestamp.subsec_nanos())
        {
            entry.0.push(Datapoint {
                timestamp,
                value: *value,
            });
        }
    }
    // The last page's status stands, except that a failure sticks.
    entry.1 = match (entry.1, result.status_code()) {
        (SeriesStatus::Failed, _) => SeriesStatus::Failed,
        (_, Some(StatusCode::Complete) | None) => SeriesStatus::Complete,
        (_, Some(StatusCode::PartialData)) => SeriesStatus::Partial,
        (_, Some(_)) => SeriesStatus::Failed,
    };
    refused
}
