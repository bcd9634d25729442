//! `LambdaApi` over the official SDK. Two clients: one for reads with the SDK's
//! standard retry, one for writes with SDK retries off (the write course retries writes).
//!
//! What it must not do: retry a write, or return part of a list as if it were whole.

use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::ProvisionedConcurrencyStatusEnum;
use chrono::{DateTime, Utc};

use super::errors::from_sdk;

use super::{AwsError, FunctionConfigs, LambdaApi, ProvisionedConfig};
use crate::policy::AllocationStatus;

#[derive(Clone)]
pub struct SdkLambda {
    reads: Client,
    writes: Client,
}

impl SdkLambda {
    pub fn new(reads: Client, writes: Client) -> Self {
        Self { reads, writes }
    }
}

fn count(value: Option<i32>) -> u32 {
    value
        .and_then(|value| u32::try_from(value).ok())
        .unwrap_or(0)
}

/// `Allocated…` as reported; when the field is missing, a READY config holds what it
/// requested (that is what READY means) and anything else is taken as nothing yet.
fn allocated(value: Option<i32>, requested: u32, status: AllocationStatus) -> u32 {
    match value.and_then(|value| u32::try_from(value).ok()) {
        Some(allocated) => allocated,
        None if status == AllocationStatus::Ready => requested,
        None => 0,
    }
}

fn status(value: Option<&ProvisionedConcurrencyStatusEnum>) -> AllocationStatus {
    match value {
        Some(ProvisionedConcurrencyStatusEnum::InProgress) => AllocationStatus::InProgress,
        Some(ProvisionedConcurrencyStatusEnum::Failed) => AllocationStatus::Failed,
        Some(ProvisionedConcurrencyStatusEnum::Ready) => AllocationStatus::Ready,
        // An unknown future status: treat it as busy, never as room to write.
        Some(_) => AllocationStatus::InProgress,
        None => AllocationStatus::Ready,
    }
}

/// One config from the fields that Get and Put both return.
fn provisioned(
    requested: Option<i32>,
    allocated_field: Option<i32>,
    status_field: Option<&ProvisionedConcurrencyStatusEnum>,
    status_reason: Option<&str>,
    last_modified: Option<&str>,
) -> ProvisionedConfig {
    let requested = count(requested);
    let status = status(status_field);
    ProvisionedConfig {
        requested,
        allocated: allocated(allocated_field, requested, status),
        status,
        status_reason: status_reason.map(str::to_owned),
        last_modified: last_modified.and_then(parse_last_modified),
    }
}

/// Lambda writes `LastModified` as `2026-11-22T05:30:00.000+0000` (ISO 8601).
pub fn parse_last_modified(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

fn i32_value(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl LambdaApi for SdkLambda {
    async fn provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<ProvisionedConfig>, AwsError> {
        let result = self
            .reads
            .get_provisioned_concurrency_config()
            .function_name(function)
            .qualifier(qualifier)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(provisioned(
                output.requested_provisioned_concurrent_executions(),
                output.allocated_provisioned_concurrent_executions(),
                output.status(),
                output.status_reason(),
                output.last_modified(),
            ))),
            Err(error)
                if error.as_service_error().is_some_and(|error| {
                    error.is_provisioned_concurrency_config_not_found_exception()
                }) =>
            {
                Ok(None)
            }
            Err(error) => Err(from_sdk(error)),
        }
    }

    async fn put_provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
        value: u32,
    ) -> Result<ProvisionedConfig, AwsError> {
        let output = self
            .writes
            .put_provisioned_concurrency_config()
            .function_name(function)
            .qualifier(qualifier)
            .provisioned_concurrent_executions(i32_value(value))
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(provisioned(
            output.requested_provisioned_concurrent_executions(),
            output.allocated_provisioned_concurrent_executions(),
            output.status(),
            output.status_reason(),
            output.last_modified(),
        ))
    }

    async fn delete_provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<(), AwsError> {
        self.writes
            .delete_provisioned_concurrency_config()
            .function_name(function)
            .qualifier(qualifier)
            .send()
            .await
            .map(|_| ())
            .map_err(from_sdk)
    }

    async fn reserved_concurrency(&self, function: &str) -> Result<Option<u32>, AwsError> {
        let output = self
            .reads
            .get_function()
            .function_name(function)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(output
            .concurrency()
            .and_then(|concurrency| concurrency.reserved_concurrent_executions())
            .and_then(|value| u32::try_from(value).ok()))
    }

    async fn snap_start(&self, function: &str, qualifier: &str) -> Result<bool, AwsError> {
        let output = self
            .reads
            .get_function()
            .function_name(function)
            .qualifier(qualifier)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(output
            .configuration()
            .and_then(|configuration| configuration.snap_start())
            .and_then(|snap_start| snap_start.optimization_status())
            == Some(&aws_sdk_lambda::types::SnapStartOptimizationStatus::On))
    }

    async fn provisioned_configs(&self, function: &str) -> Result<FunctionConfigs, AwsError> {
        let mut configs = FunctionConfigs::new();
        let mut marker: Option<String> = None;
        // An incomplete list would understate what other qualifiers hold and so
        // overstate the reserved cap: it is read whole or is a failed read.
        let mut walk = super::Walk::new("ListProvisionedConcurrencyConfigs", super::FUNCTION_WALK);
        loop {
            let output = self
                .reads
                .list_provisioned_concurrency_configs()
                .function_name(function)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(from_sdk)?;
            for config in output.provisioned_concurrency_configs() {
                // The ARN ends in `:qualifier`.
                let qualifier = config
                    .function_arn()
                    .and_then(|arn| arn.rsplit(':').next())
                    .unwrap_or_default()
                    .to_owned();
                configs.insert(
                    qualifier,
                    provisioned(
                        config.requested_provisioned_concurrent_executions(),
                        config.allocated_provisioned_concurrent_executions(),
                        config.status(),
                        config.status_reason(),
                        config.last_modified(),
                    ),
                );
            }
            marker = walk.next(output.next_marker().map(str::to_owned))?;
            if marker.is_none() {
                return Ok(configs);
            }
        }
    }

    async fn unreserved_concurrency(&self) -> Result<Option<u32>, AwsError> {
        let output = self
            .reads
            .get_account_settings()
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(output
            .account_limit()
            .and_then(|limit| limit.unreserved_concurrent_executions())
            .and_then(|value| u32::try_from(value).ok()))
    }

    async fn functions(
        &self,
        marker: Option<String>,
    ) -> Result<(Vec<super::FunctionSummary>, Option<String>), AwsError> {
        let output = self
            .reads
            .list_functions()
            .set_marker(marker)
            .send()
            .await
            .map_err(from_sdk)?;
        let functions = output
            .functions()
            .iter()
            .filter_map(|function| {
                Some(super::FunctionSummary {
                    name: function.function_name()?.to_owned(),
                    // Lambda's default, for an answer that leaves it out.
                    memory_mb: function
                        .memory_size()
                        .and_then(|memory| u32::try_from(memory).ok())
                        .unwrap_or(128),
                    arm64: function.architectures().iter().any(|architecture| {
                        *architecture == aws_sdk_lambda::types::Architecture::Arm64
                    }),
                })
            })
            .collect();
        Ok((functions, output.next_marker().map(str::to_owned)))
    }

    async fn aliases(&self, function: &str) -> Result<super::Aliases, AwsError> {
        let mut aliases = super::Aliases::new();
        let mut marker: Option<String> = None;
        let mut walk = super::Walk::new("ListAliases", super::FUNCTION_WALK);
        loop {
            let output = self
                .reads
                .list_aliases()
                .function_name(function)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(from_sdk)?;
            for alias in output.aliases() {
                let weighted_to = alias
                    .routing_config()
                    .and_then(|routing| routing.additional_version_weights())
                    .map(|weights| weights.keys().cloned().collect())
                    .unwrap_or_default();
                if let Some(name) = alias.name() {
                    let version = alias.function_version().unwrap_or_default().to_owned();
                    aliases.insert(
                        name.to_owned(),
                        super::Alias {
                            version,
                            weighted_to,
                        },
                    );
                }
            }
            marker = walk.next(output.next_marker().map(str::to_owned))?;
            if marker.is_none() {
                return Ok(aliases);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_in_lambdas_format_parses() {
        let parsed = parse_last_modified("2026-11-22T05:30:00.000+0000").expect("Lambda's format");
        assert_eq!(parsed.to_rfc3339(), "2026-11-22T05:30:00+00:00");
    }
}
