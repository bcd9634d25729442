//! `ScalingApi` over the official SDK: Application Auto Scaling's scalable targets and
//! scheduled actions for Lambda provisioned concurrency, read only. `audit` uses it to
//! flag the configs another autoscaler already manages (two would fight).
//!
//! What it must not do: write: it only reads Application Auto Scaling.

use std::collections::BTreeMap;

use aws_sdk_applicationautoscaling::Client;
use aws_sdk_applicationautoscaling::types::ServiceNamespace;

use super::errors::from_sdk;
use super::{AwsError, ScalableTarget, ScalingApi};

#[derive(Clone)]
pub struct SdkScaling {
    client: Client,
}

impl SdkScaling {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The function and qualifier of a Lambda resource id (`function:NAME:QUALIFIER`).
fn function_and_qualifier(resource: &str) -> Option<(String, String)> {
    let mut parts = resource.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("function"), Some(name), Some(qualifier), None) => {
            Some((name.to_owned(), qualifier.to_owned()))
        }
        _ => None,
    }
}

impl ScalingApi for SdkScaling {
    async fn lambda_targets(&self) -> Result<Vec<ScalableTarget>, AwsError> {
        let mut scheduled: BTreeMap<String, usize> = BTreeMap::new();
        let mut token = None;
        let mut walk = super::Walk::new("DescribeScheduledActions", super::ACCOUNT_WALK);
        loop {
            let output = self
                .client
                .describe_scheduled_actions()
                .service_namespace(ServiceNamespace::Lambda)
                .set_next_token(token)
                .send()
                .await
                .map_err(from_sdk)?;
            for action in output.scheduled_actions() {
                *scheduled
                    .entry(action.resource_id().to_owned())
                    .or_default() += 1;
            }
            token = walk.next(output.next_token().map(str::to_owned))?;
            if token.is_none() {
                break;
            }
        }
        let mut targets = Vec::new();
        let mut token = None;
        let mut walk = super::Walk::new("DescribeScalableTargets", super::ACCOUNT_WALK);
        loop {
            let output = self
                .client
                .describe_scalable_targets()
                .service_namespace(ServiceNamespace::Lambda)
                .set_next_token(token)
                .send()
                .await
                .map_err(from_sdk)?;
            for target in output.scalable_targets() {
                let Some((function, qualifier)) = function_and_qualifier(target.resource_id())
                else {
                    continue;
                };
                targets.push(ScalableTarget {
                    function,
                    qualifier,
                    min: u32::try_from(target.min_capacity()).unwrap_or(0),
                    max: u32::try_from(target.max_capacity()).unwrap_or(0),
                    scheduled_actions: scheduled.get(target.resource_id()).copied().unwrap_or(0),
                });
            }
            token = walk.next(output.next_token().map(str::to_owned))?;
            if token.is_none() {
                return Ok(targets);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_name_a_function_and_a_qualifier() {
        assert_eq!(
            function_and_qualifier("function:orders:live"),
            Some(("orders".into(), "live".into()))
        );
        assert_eq!(function_and_qualifier("function:orders"), None);
        assert_eq!(function_and_qualifier("table/orders"), None);
    }
}
