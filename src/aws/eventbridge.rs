//! Amazon EventBridge: activities sent as events to one bus (`PutEvents`, source
//! `pc-autoscaler`). SDK retries are off: the sender's queue retries, so that a
//! throttled call never holds the entries behind it longer than its own backoff.
//! What it must not do: decide what is sent or when.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{AwsError, EventEntry};
use crate::config::{AwsSettings, EventsSettings};

/// The `source` of every event.
pub const SOURCE: &str = "pc-autoscaler";
/// The IAM action sending needs.
pub const ACTIONS: [&str; 1] = ["events:PutEvents"];

pub struct SdkEvents {
    client: Client,
    bus: String,
}

impl SdkEvents {
    /// A client with `[aws]`'s region and profile and `[events]`'s endpoint; the
    /// Region and account the events name come from the same chain.
    pub async fn connect(aws: &AwsSettings, events: &EventsSettings) -> (Self, Option<String>) {
        use aws_config::retry::RetryConfig;
        let loader = super::loader(aws, events.endpoint_url.as_deref())
            .retry_config(RetryConfig::disabled());
        let shared = loader.load().await;
        let region = shared.region().map(ToString::to_string);
        (
            Self {
                client: Client::from_conf(
                    aws_sdk_eventbridge::config::Builder::from(&shared)
                        .interceptor(super::AnswerLimit(super::answers::MAX_ANSWER_BYTES))
                        .build(),
                ),
                bus: events.bus.clone(),
            },
            region,
        )
    }
}

impl super::EventsApi for SdkEvents {
    async fn put(&self, entries: &[EventEntry]) -> Result<Vec<usize>, AwsError> {
        let entries = entries
            .iter()
            .map(|entry| {
                PutEventsRequestEntry::builder()
                    .source(SOURCE)
                    .detail_type(entry.detail_type)
                    .detail(&entry.detail)
                    .event_bus_name(&self.bus)
                    .time(aws_smithy_types::DateTime::from_millis(
                        entry.time.timestamp_millis(),
                    ))
                    .build()
            })
            .collect();
        let answer = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(super::errors::from_sdk)?;
        Ok(answer
            .entries()
            .iter()
            .enumerate()
            .filter(|(_, result)| result.error_code().is_some())
            .map(|(index, _)| index)
            .collect())
    }
}
