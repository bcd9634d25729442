//! The daemon's own Prometheus metrics: one registry, every family defined here with
//! its help text, names in base units with `_total` and `_seconds` suffixes, and labels
//! bounded to target names, rule names, API names and fixed outcome words.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::aws::{
    AwsError, LambdaApi, MetricQuery, MetricsApi, MetricsBatch, ProvisionedConfig, QualifierHolding,
};
use crate::policy::Decision;
use crate::reconcile::Evaluation;

/// Every metric the daemon exports.
pub struct Metrics {
    pub registry: Registry,
    pub desired: IntGaugeVec,
    pub requested: IntGaugeVec,
    pub allocated: IntGaugeVec,
    pub metric_value: GaugeVec,
    pub bound: IntGaugeVec,
    pub schedule_active: IntGaugeVec,
    pub allocation_failed: IntGaugeVec,
    pub scaling_actions: IntCounterVec,
    pub aws_requests: IntCounterVec,
    pub aws_duration: HistogramVec,
    pub evaluation_duration: Histogram,
    pub last_evaluation: Gauge,
    pub config_reloads: IntCounterVec,
}

fn int_gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let gauge = IntGaugeVec::new(Opts::new(name, help), labels)
        .expect("metric names and labels are valid constants");
    registry
        .register(Box::new(gauge.clone()))
        .expect("each metric is registered once");
    gauge
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new(
                "pc_autoscaler_build_info",
                "Build information; the value is always 1.",
            ),
            &["version"],
        )
        .expect("a valid constant metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry
            .register(Box::new(build_info))
            .expect("registered once");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");

        let scaling_actions = IntCounterVec::new(
            Opts::new(
                "pc_autoscaler_scaling_actions_total",
                "Accepted capacity changes, by direction and the reason that triggered them.",
            ),
            &["target", "direction", "trigger"],
        )
        .expect("a valid constant metric");
        registry
            .register(Box::new(scaling_actions.clone()))
            .expect("registered once");
        let aws_requests = IntCounterVec::new(
            Opts::new("pc_autoscaler_aws_requests_total", "AWS API requests by API and outcome (ok, throttled, conflict, client_error, server_error, timeout)."),
            &["api", "outcome"],
        )
        .expect("a valid constant metric");
        registry
            .register(Box::new(aws_requests.clone()))
            .expect("registered once");
        let aws_duration = HistogramVec::new(
            HistogramOpts::new(
                "pc_autoscaler_aws_request_duration_seconds",
                "Duration of AWS API requests, retries by the SDK included.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["api"],
        )
        .expect("a valid constant metric");
        registry
            .register(Box::new(aws_duration.clone()))
            .expect("registered once");
        let evaluation_duration = Histogram::with_opts(
            HistogramOpts::new(
                "pc_autoscaler_evaluation_duration_seconds",
                "Duration of one evaluation of all targets (reads and decisions).",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
        )
        .expect("a valid constant metric");
        registry
            .register(Box::new(evaluation_duration.clone()))
            .expect("registered once");
        let last_evaluation = Gauge::new(
            "pc_autoscaler_last_evaluation_timestamp_seconds",
            "Unix time at which the last evaluation of all targets completed.",
        )
        .expect("a valid constant metric");
        registry
            .register(Box::new(last_evaluation.clone()))
            .expect("registered once");
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "pc_autoscaler_config_reloads_total",
                "Configuration reloads by outcome (success, failure).",
            ),
            &["outcome"],
        )
        .expect("a valid constant metric");
        registry
            .register(Box::new(config_reloads.clone()))
            .expect("registered once");

        Self {
            desired: int_gauge(
                &registry,
                "pc_autoscaler_target_desired_capacity",
                "Provisioned concurrency the policy wants for the target.",
                &["target"],
            ),
            requested: int_gauge(
                &registry,
                "pc_autoscaler_target_requested_capacity",
                "Provisioned concurrency requested from Lambda.",
                &["target"],
            ),
            allocated: int_gauge(
                &registry,
                "pc_autoscaler_target_allocated_capacity",
                "Provisioned concurrency allocated and usable.",
                &["target"],
            ),
            metric_value: {
                let gauge = GaugeVec::new(
                    Opts::new(
                        "pc_autoscaler_target_metric_value",
                        "Newest value of the target's tracking metric.",
                    ),
                    &["target", "metric"],
                )
                .expect("a valid constant metric");
                registry
                    .register(Box::new(gauge.clone()))
                    .expect("registered once");
                gauge
            },
            bound: int_gauge(
                &registry,
                "pc_autoscaler_target_bound",
                "Capacity bound in force (bound is min or max).",
                &["target", "bound"],
            ),
            schedule_active: int_gauge(
                &registry,
                "pc_autoscaler_target_schedule_active",
                "1 for the schedule rule in force, 0 for the target's other rules.",
                &["target", "rule"],
            ),
            allocation_failed: int_gauge(
                &registry,
                "pc_autoscaler_target_allocation_failed",
                "1 while the target's provisioned concurrency config is FAILED.",
                &["target"],
            ),
            scaling_actions,
            aws_requests,
            aws_duration,
            evaluation_duration,
            last_evaluation,
            config_reloads,
            registry,
        }
    }

    /// Records what one evaluation saw and decided.
    pub fn record_evaluation(&self, evaluation: &Evaluation) {
        let target = evaluation.target.name.as_str();
        let Ok(evaluated) = &evaluation.outcome else {
            return;
        };
        let observation = &evaluated.observation;
        let decision: &Decision = &evaluated.decision;
        self.desired
            .with_label_values(&[target])
            .set(i64::from(decision.desired));
        self.requested
            .with_label_values(&[target])
            .set(i64::from(observation.requested));
        self.allocated
            .with_label_values(&[target])
            .set(i64::from(observation.allocated));
        self.bound
            .with_label_values(&[target, "min"])
            .set(i64::from(decision.bounds.min));
        self.bound
            .with_label_values(&[target, "max"])
            .set(i64::from(decision.bounds.max));
        if let (Some(tracking), Some(value)) = (&evaluation.target.tracking, decision.metric_value)
        {
            self.metric_value
                .with_label_values(&[target, tracking.metric.label()])
                .set(value);
        }
        for rule in &evaluation.target.schedules {
            let active = decision.bounds.rule.as_deref() == Some(rule.name.as_str());
            self.schedule_active
                .with_label_values(&[target, &rule.name])
                .set(i64::from(active));
        }
        let failed = observation.status == crate::policy::AllocationStatus::Failed;
        self.allocation_failed
            .with_label_values(&[target])
            .set(i64::from(failed));
    }

    /// Forgets the series of targets that are no longer configured (after a reload).
    pub fn forget_target(&self, target: &str) {
        for gauge in [
            &self.desired,
            &self.requested,
            &self.allocated,
            &self.allocation_failed,
        ] {
            let _ = gauge.remove_label_values(&[target]);
        }
        for bound in ["min", "max"] {
            let _ = self.bound.remove_label_values(&[target, bound]);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding into memory cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A `LambdaApi`/`MetricsApi` wrapper that counts every request by API and outcome and
/// times it, so the adapters themselves stay free of metrics.
pub struct Instrumented<T> {
    pub inner: T,
    pub metrics: Arc<Metrics>,
}

impl<T> Instrumented<T> {
    async fn observe<R>(
        &self,
        api: &'static str,
        call: impl Future<Output = Result<R, AwsError>>,
    ) -> Result<R, AwsError> {
        let started = std::time::Instant::now();
        let result = call.await;
        let outcome = result.as_ref().map_or_else(AwsError::label, |_| "ok");
        self.metrics
            .aws_requests
            .with_label_values(&[api, outcome])
            .inc();
        self.metrics
            .aws_duration
            .with_label_values(&[api])
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

impl<L: LambdaApi> LambdaApi for Instrumented<L> {
    async fn provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<ProvisionedConfig>, AwsError> {
        self.observe(
            "GetProvisionedConcurrencyConfig",
            self.inner.provisioned_config(function, qualifier),
        )
        .await
    }
    async fn put_provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
        value: u32,
    ) -> Result<ProvisionedConfig, AwsError> {
        self.observe(
            "PutProvisionedConcurrencyConfig",
            self.inner
                .put_provisioned_config(function, qualifier, value),
        )
        .await
    }
    async fn delete_provisioned_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<(), AwsError> {
        self.observe(
            "DeleteProvisionedConcurrencyConfig",
            self.inner.delete_provisioned_config(function, qualifier),
        )
        .await
    }
    async fn reserved_concurrency(&self, function: &str) -> Result<Option<u32>, AwsError> {
        self.observe(
            "GetFunctionConcurrency",
            self.inner.reserved_concurrency(function),
        )
        .await
    }
    async fn provisioned_configs(&self, function: &str) -> Result<Vec<QualifierHolding>, AwsError> {
        self.observe(
            "ListProvisionedConcurrencyConfigs",
            self.inner.provisioned_configs(function),
        )
        .await
    }
    async fn unreserved_concurrency(&self) -> Result<u32, AwsError> {
        self.observe("GetAccountSettings", self.inner.unreserved_concurrency())
            .await
    }
    async fn alias_is_weighted(&self, function: &str, alias: &str) -> Result<bool, AwsError> {
        self.observe("GetAlias", self.inner.alias_is_weighted(function, alias))
            .await
    }
}

impl<M: MetricsApi> MetricsApi for Instrumented<M> {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<MetricsBatch, AwsError> {
        self.observe("GetMetricData", self.inner.fetch(queries, start, end))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exported_with_help() {
        let metrics = Metrics::new();
        metrics.config_reloads.with_label_values(&["success"]).inc();
        metrics
            .aws_requests
            .with_label_values(&["GetAlias", "ok"])
            .inc();
        let text = metrics.render();
        for name in [
            "pc_autoscaler_build_info",
            "pc_autoscaler_config_reloads_total",
            "pc_autoscaler_aws_requests_total",
        ] {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} missing in:\n{text}"
            );
        }
    }
}
