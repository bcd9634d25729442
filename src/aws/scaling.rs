//! `ScalingApi` over the official SDK: Application Auto Scaling's scalable targets,
//! scaling policies and scheduled actions for Lambda provisioned concurrency, each list
//! read to its end; and a scalable target's suspended state, the one thing written.
//! `audit` flags the configs AAS manages, `migrate` carries its settings over, and the
//! runtime leaves its targets alone or suspends it before taking one over.
//!
//! What it must not do: write anything but a suspended state: nothing is registered
//! anew, deregistered or deleted.

use std::collections::BTreeMap;

use aws_sdk_applicationautoscaling::Client;
use aws_sdk_applicationautoscaling::types::{
    PolicyType, ScalableDimension, ServiceNamespace, TargetTrackingScalingPolicyConfiguration,
};

use super::errors::from_sdk;
use super::{
    ACCOUNT_WALK, AwsError, PolicyKind, ScalableTarget, ScalingApi, ScalingPolicy, ScheduledAction,
    SuspendedState, TargetTrackingPolicy, TrackedMetric, Walk,
};

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

fn count(value: Option<i32>) -> Option<u32> {
    value.and_then(|value| u32::try_from(value).ok())
}

fn instant(time: Option<&aws_smithy_types::DateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    let time = time?;
    chrono::DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

fn tracking(config: &TargetTrackingScalingPolicyConfiguration) -> TargetTrackingPolicy {
    let metric = match (
        config.predefined_metric_specification(),
        config.customized_metric_specification(),
    ) {
        (Some(predefined), _) => {
            TrackedMetric::Predefined(predefined.predefined_metric_type().as_str().to_owned())
        }
        (None, Some(custom)) => TrackedMetric::Customized {
            namespace: custom.namespace().map(str::to_owned),
            name: custom.metric_name().map(str::to_owned),
            dimensions: custom
                .dimensions()
                .iter()
                .map(|dimension| (dimension.name().to_owned(), dimension.value().to_owned()))
                .collect(),
            statistic: custom.statistic().map(|stat| stat.as_str().to_owned()),
            math: !custom.metrics().is_empty(),
        },
        (None, None) => TrackedMetric::Predefined(String::new()),
    };
    TargetTrackingPolicy {
        target_value: config.target_value(),
        metric,
        scale_in_cooldown: count(config.scale_in_cooldown()),
        scale_out_cooldown: count(config.scale_out_cooldown()),
        disable_scale_in: config.disable_scale_in().unwrap_or(false),
    }
}

fn policy_kind(policy: &aws_sdk_applicationautoscaling::types::ScalingPolicy) -> PolicyKind {
    match (
        policy.policy_type(),
        policy.target_tracking_scaling_policy_configuration(),
    ) {
        (PolicyType::TargetTrackingScaling, Some(config)) => {
            PolicyKind::TargetTracking(tracking(config))
        }
        (PolicyType::StepScaling, _) => {
            let steps = policy
                .step_scaling_policy_configuration()
                .map_or(0, |config| config.step_adjustments().len());
            PolicyKind::Step(format!(
                "{steps} step{} on the alarms {}",
                if steps == 1 { "" } else { "s" },
                policy
                    .alarms()
                    .iter()
                    .map(|alarm| alarm.alarm_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
        (other, _) => PolicyKind::Other(other.as_str().to_owned()),
    }
}

impl ScalingApi for SdkScaling {
    async fn lambda_targets(&self) -> Result<Vec<ScalableTarget>, AwsError> {
        let mut targets = Vec::new();
        let mut token = None;
        let mut walk = Walk::new("DescribeScalableTargets", ACCOUNT_WALK);
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
                let suspended =
                    target
                        .suspended_state()
                        .map_or_else(SuspendedState::default, |state| SuspendedState {
                            dynamic_in: state.dynamic_scaling_in_suspended().unwrap_or(false),
                            dynamic_out: state.dynamic_scaling_out_suspended().unwrap_or(false),
                            scheduled: state.scheduled_scaling_suspended().unwrap_or(false),
                        });
                targets.push(ScalableTarget {
                    function,
                    qualifier,
                    min: count(Some(target.min_capacity())).unwrap_or(0),
                    max: count(Some(target.max_capacity())).unwrap_or(0),
                    suspended,
                });
            }
            token = walk.next(output.next_token().map(str::to_owned))?;
            if token.is_none() {
                return Ok(targets);
            }
        }
    }

    async fn lambda_policies(&self) -> Result<Vec<ScalingPolicy>, AwsError> {
        let mut policies = Vec::new();
        let mut token = None;
        let mut walk = Walk::new("DescribeScalingPolicies", ACCOUNT_WALK);
        loop {
            let output = self
                .client
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::Lambda)
                .set_next_token(token)
                .send()
                .await
                .map_err(from_sdk)?;
            for policy in output.scaling_policies() {
                let Some((function, qualifier)) = function_and_qualifier(policy.resource_id())
                else {
                    continue;
                };
                policies.push(ScalingPolicy {
                    function,
                    qualifier,
                    name: policy.policy_name().to_owned(),
                    kind: policy_kind(policy),
                });
            }
            token = walk.next(output.next_token().map(str::to_owned))?;
            if token.is_none() {
                return Ok(policies);
            }
        }
    }

    async fn lambda_scheduled_actions(&self) -> Result<Vec<ScheduledAction>, AwsError> {
        let mut actions = Vec::new();
        let mut token = None;
        let mut walk = Walk::new("DescribeScheduledActions", ACCOUNT_WALK);
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
                let Some((function, qualifier)) = function_and_qualifier(action.resource_id())
                else {
                    continue;
                };
                let bounds = action.scalable_target_action();
                actions.push(ScheduledAction {
                    function,
                    qualifier,
                    name: action.scheduled_action_name().to_owned(),
                    schedule: action.schedule().to_owned(),
                    timezone: action.timezone().map(str::to_owned),
                    start: instant(action.start_time()),
                    end: instant(action.end_time()),
                    min: count(bounds.and_then(|bounds| bounds.min_capacity())),
                    max: count(bounds.and_then(|bounds| bounds.max_capacity())),
                });
            }
            token = walk.next(output.next_token().map(str::to_owned))?;
            if token.is_none() {
                return Ok(actions);
            }
        }
    }

    async fn set_suspended(
        &self,
        function: &str,
        qualifier: &str,
        state: SuspendedState,
    ) -> Result<(), AwsError> {
        let suspended = aws_sdk_applicationautoscaling::types::SuspendedState::builder()
            .dynamic_scaling_in_suspended(state.dynamic_in)
            .dynamic_scaling_out_suspended(state.dynamic_out)
            .scheduled_scaling_suspended(state.scheduled)
            .build();
        self.client
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Lambda)
            .resource_id(format!("function:{function}:{qualifier}"))
            .scalable_dimension(ScalableDimension::LambdaFunctionProvisionedConcurrency)
            .suspended_state(suspended)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(())
    }
}

/// The scalable targets of `targets` by function and qualifier.
pub fn by_function(targets: Vec<ScalableTarget>) -> BTreeMap<(String, String), ScalableTarget> {
    targets
        .into_iter()
        .map(|target| ((target.function.clone(), target.qualifier.clone()), target))
        .collect()
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
