//! Reading the forecast's history within CloudWatch's quotas: one call at a time,
//! paced to at most `HISTORY_DATAPOINTS_PER_SECOND`, and a throttled call read again
//! after a backoff. Used by the daemon at a start or takeover, and by `plan` and
//! `run --once`.
//!
//! What it must not do: hold up a pass's current read (callers read history beside
//! or after it, never before), or fail anything when it fails: a target whose history
//! is not read builds it as it runs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::aws::MetricsApi;
use crate::config::TargetConfig;
use crate::runtime::knowing::HISTORY_DATAPOINTS_PER_SECOND;
use crate::runtime::knowing::series::{self, HistoryBatch};

/// Attempts of a throttled history call, and the first backoff (doubling).
const THROTTLED_ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// One call's history ([`crate::runtime::knowing::history_calls`]), paced: it returns no
/// sooner than its datapoints allow at CloudWatch's quota.
pub async fn read<M: MetricsApi>(
    metrics: &M,
    targets: &[&TargetConfig],
    now: DateTime<Utc>,
) -> HistoryBatch {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let started = Instant::now();
        let batch = series::history(metrics, targets.iter().copied(), now).await;
        let quota =
            Duration::from_secs_f64(batch.datapoints as f64 / HISTORY_DATAPOINTS_PER_SECOND as f64);
        tokio::time::sleep_until(started + quota).await;
        if !batch.throttled || attempt >= THROTTLED_ATTEMPTS {
            return batch;
        }
        tracing::info!(
            attempt,
            backoff_seconds = backoff.as_secs(),
            "CloudWatch throttled a history read; reading it again"
        );
        tokio::time::sleep(backoff).await;
        backoff *= 2;
        attempt += 1;
    }
}
