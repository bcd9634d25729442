//! The daemon's own Prometheus metrics: one registry, every family defined here with
//! its help text, names in base units with `_total` and `_seconds` suffixes, and labels
//! bounded to target names, rule names, API names and fixed outcome words.

mod per_target;

pub use per_target::{Evaluated, TargetSeries};

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::aws::{
    AwsError, FunctionConfigs, LambdaApi, MetricQuery, MetricsApi, MetricsBatch, ProvisionedConfig,
};
use crate::config::TargetConfig;
use crate::policy::Decision;
use crate::runtime::actuator::WriteBlocked;
use crate::runtime::budget::Priority;
use crate::runtime::evaluate::Evaluation;

/// Every metric the daemon exports.
pub struct Metrics {
    pub registry: Registry,
    /// The series that exist once per target, outside the registry (see `per_target`).
    pub targets: TargetSeries,
    pub aws_requests: IntCounterVec,
    pub aws_duration: HistogramVec,
    pub evaluation_duration: Histogram,
    pub last_evaluation: Gauge,
    pub last_successful_evaluation: Gauge,
    pub passes: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub task_failures: IntCounterVec,
    pub budget_spent: IntCounterVec,
    pub budget_queued: IntGaugeVec,
    pub budget_throttled: IntCounterVec,
    pub budget_rate: Gauge,
    pub targets_unknown: prometheus::IntGauge,
    pub forecast_history_pending: prometheus::IntGauge,
    /// The leader metrics exist only with `[leader]`; each carries this copy's identity.
    pub leader: IntGaugeVec,
    pub leader_epoch: IntGaugeVec,
    pub leader_lease_age: GaugeVec,
    pub leader_transitions: IntCounterVec,
}

/// Every API `Instrumented` names, for exporting its counters from the start.
pub const APIS: [&str; 8] = [
    "GetProvisionedConcurrencyConfig",
    "PutProvisionedConcurrencyConfig",
    "DeleteProvisionedConcurrencyConfig",
    "GetFunction",
    "ListProvisionedConcurrencyConfigs",
    "GetAccountSettings",
    "ListAliases",
    "GetMetricData",
];
/// Every `outcome` of an AWS request: `ok` or an `AwsError::label`.
pub const OUTCOMES: [&str; 7] = [
    "ok",
    "throttled",
    "conflict",
    "client_error",
    "credentials",
    "server_error",
    "timeout",
];
/// How a pass over all targets ended.
pub const PASS_OUTCOMES: [&str; 4] = ["informed", "uninformed", "timed_out", "failed"];
/// The daemon's background tasks, for `pc_autoscaler_task_failures_total`.
pub const TASKS: [&str; 5] = ["evaluation", "write", "watch", "reload", "read"];

/// Registers `metric` and returns it; a metric built from constants is valid.
fn registered<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: Result<T, prometheus::Error>,
) -> T {
    let metric = metric.expect("metric names and labels are valid constants");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    registered(registry, Gauge::new(name, help))
}

fn int_gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(registry, IntGaugeVec::new(Opts::new(name, help), labels))
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        int_gauge(
            &registry,
            "pc_autoscaler_build_info",
            "Build information; the value is always 1.",
            &["version"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("registered once");

        let aws_requests = counter(
            &registry,
            "pc_autoscaler_aws_requests_total",
            "AWS API requests by API and outcome (ok, throttled, conflict, client_error, credentials, server_error, timeout).",
            &["api", "outcome"],
        );
        let aws_duration = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "pc_autoscaler_aws_request_duration_seconds",
                    "Duration of AWS API requests, retries by the SDK included.",
                )
                .buckets(vec![
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
                &["api"],
            ),
        );
        let evaluation_duration = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "pc_autoscaler_evaluation_duration_seconds",
                    "Duration of one evaluation of all targets (reads and decisions).",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            ),
        );
        let last_evaluation = gauge(
            &registry,
            "pc_autoscaler_last_evaluation_timestamp_seconds",
            "Unix time at which the last pass over all targets ended, informed or not.",
        );
        let last_successful_evaluation = gauge(
            &registry,
            "pc_autoscaler_last_successful_evaluation_timestamp_seconds",
            "Unix time of the last pass that informed at least one target (its config and metrics read).",
        );
        let passes = counter(
            &registry,
            "pc_autoscaler_passes_total",
            "Passes over all targets by outcome: informed (at least one target read), uninformed (none), timed_out, failed.",
            &["outcome"],
        );
        let config_reloads = counter(
            &registry,
            "pc_autoscaler_config_reloads_total",
            "Configuration reloads by outcome (success, failure).",
            &["outcome"],
        );
        let task_failures = counter(
            &registry,
            "pc_autoscaler_task_failures_total",
            "Background tasks that panicked or were cancelled, by task (evaluation, write, watch, reload).",
            &["task"],
        );
        let budget_spent = counter(
            &registry,
            "pc_autoscaler_control_plane_requests_total",
            "Lambda requests sent within the control-plane budget (Lambda's shared 15/s), by priority (scale_out, read_back, scale_in, drift_scan, refresh).",
            &["priority"],
        );
        let budget_queued = int_gauge(
            &registry,
            "pc_autoscaler_control_plane_queued_requests",
            "Lambda requests waiting for the control-plane budget, by priority.",
            &["priority"],
        );
        let budget_throttled = counter(
            &registry,
            "pc_autoscaler_control_plane_throttled_total",
            "Lambda requests answered with TooManyRequestsException, by priority; each slows the whole budget down.",
            &["priority"],
        );
        for priority in Priority::ALL {
            budget_spent.with_label_values(&[priority.label()]);
            budget_queued.with_label_values(&[priority.label()]);
            budget_throttled.with_label_values(&[priority.label()]);
        }
        for outcome in ["success", "failure"] {
            config_reloads.with_label_values(&[outcome]);
        }
        for api in APIS {
            for outcome in OUTCOMES {
                aws_requests.with_label_values(&[api, outcome]);
            }
        }
        for outcome in PASS_OUTCOMES {
            passes.with_label_values(&[outcome]);
        }
        for task in TASKS {
            task_failures.with_label_values(&[task]);
        }

        Self {
            budget_rate: gauge(
                &registry,
                "pc_autoscaler_control_plane_budget_requests_per_second",
                "The control-plane budget's rate in force: daemon.control_plane_budget, or less for a while after a throttle.",
            ),
            targets_unknown: registered(
                &registry,
                prometheus::IntGauge::new(
                    "pc_autoscaler_targets_unknown",
                    "Targets whose provisioned concurrency has not been read yet (after a start or reload); they are not decided until it is.",
                ),
            ),
            forecast_history_pending: registered(
                &registry,
                prometheus::IntGauge::new(
                    "pc_autoscaler_forecast_history_pending",
                    "Forecasting targets whose 14-day metric history has not been read yet (after a start, reload or takeover); they are decided reactively until it is.",
                ),
            ),
            leader: int_gauge(
                &registry,
                "pc_autoscaler_leader",
                "1 while this copy holds the leader lease and acts, 0 while it stands by (only with [leader]).",
                &["identity"],
            ),
            leader_epoch: int_gauge(
                &registry,
                "pc_autoscaler_leader_epoch",
                "The fencing epoch of the lease this copy holds or last held; every change of leader adds one.",
                &["identity"],
            ),
            leader_lease_age: registered(
                &registry,
                GaugeVec::new(
                    Opts::new(
                        "pc_autoscaler_leader_lease_age_seconds",
                        "On the leader, time since its last successful renew was sent; on a standby, how long the lease has stood unchanged as this copy watched it. Own monotonic clock.",
                    ),
                    &["identity"],
                ),
            ),
            leader_transitions: counter(
                &registry,
                "pc_autoscaler_leader_transitions_total",
                "Changes of this copy's role, by the role it took (leader, standby).",
                &["identity", "role"],
            ),
            budget_spent,
            budget_queued,
            budget_throttled,
            targets: TargetSeries::default(),
            aws_requests,
            aws_duration,
            evaluation_duration,
            last_evaluation,
            last_successful_evaluation,
            passes,
            config_reloads,
            task_failures,
            registry,
        }
    }

    /// Records what one evaluation saw and decided.
    pub fn record_evaluation(&self, evaluation: &Evaluation) {
        let target = &evaluation.target;
        let Ok(evaluated) = &evaluation.outcome else {
            return;
        };
        let observation = &evaluated.observation;
        let decision: &Decision = &evaluated.decision;
        let metric_value = target
            .tracking
            .as_ref()
            .zip(decision.metric_value)
            .map(|(tracking, value)| (tracking.metric.label(), value));
        self.targets.evaluated(
            &target.name,
            Evaluated {
                desired: decision.desired,
                requested: observation.requested,
                allocated: observation.allocated,
                min: decision.bounds.min,
                max: decision.bounds.max,
                allocation_failed: observation.status == crate::policy::AllocationStatus::Failed,
                metric_data: decision.metric_data,
            },
            metric_value,
            decision.bounds.rule.as_deref(),
        );
        // Targets without a forecast never had the series: nothing to do for them.
        if let Some(forecast) = &decision.forecast {
            let capacity = forecast.as_ref().ok().map(|(_, needed)| *needed);
            self.targets.set_forecast(&target.name, capacity);
        }
        if target.chooses_window() {
            let window = decision.tuned.map(|tuned| tuned.window_minutes * 60);
            self.targets.set_chosen_window(&target.name, window);
        }
    }

    /// Exports the series of `target` that alerts watch, at 0, so that `rate()` and
    /// alerts see the first event. Idempotent: existing values stay.
    ///
    /// `pc_autoscaler_scaling_actions_total` is not among them: its 12 combinations
    /// per target would be most of all series at 5,000 targets, and a dashboard's
    /// `increase()` needs no zero before the first action. Each combination appears
    /// with its first change.
    pub fn register_target(&self, target: &TargetConfig) {
        let rules: Vec<&str> = target
            .schedules
            .iter()
            .map(|rule| rule.name.as_str())
            .collect();
        self.targets.register(&target.name, &rules);
    }

    /// Whether a write of `target` is blocked, and why.
    pub fn set_write_blocked(&self, target: &str, blocked: Option<WriteBlocked>) {
        self.targets.set_write_blocked(target, blocked);
    }

    /// After a reload: removes every series of a target that is gone, and the rule
    /// series of rules a kept target no longer has (a renamed rule must not stay at 1).
    pub fn forget_removed(&self, old: &TargetConfig, new: Option<&TargetConfig>) {
        let Some(new) = new else {
            self.targets.forget(&old.name);
            return;
        };
        let rules: Vec<&str> = new
            .schedules
            .iter()
            .map(|rule| rule.name.as_str())
            .collect();
        self.targets.keep(
            &old.name,
            &rules,
            new.tracking
                .as_ref()
                .map(|tracking| tracking.metric.label()),
            new.tracking
                .as_ref()
                .map(|tracking| (tracking.forecast, tracking.choose_window)),
        );
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding into memory cannot fail");
        let mut text = String::from_utf8(buffer).expect("the text format is UTF-8");
        self.targets.render(&mut text);
        // The scrape's text and the gathered copy of the registry are freed by now.
        crate::trim::release_free_memory();
        text
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
        let started = tokio::time::Instant::now();
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
        self.observe("GetFunction", self.inner.reserved_concurrency(function))
            .await
    }
    async fn provisioned_configs(&self, function: &str) -> Result<FunctionConfigs, AwsError> {
        self.observe(
            "ListProvisionedConcurrencyConfigs",
            self.inner.provisioned_configs(function),
        )
        .await
    }
    async fn unreserved_concurrency(&self) -> Result<Option<u32>, AwsError> {
        self.observe("GetAccountSettings", self.inner.unreserved_concurrency())
            .await
    }
    async fn weighted_aliases(
        &self,
        function: &str,
    ) -> Result<std::collections::BTreeSet<String>, AwsError> {
        self.observe("ListAliases", self.inner.weighted_aliases(function))
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

    fn target(text: &str) -> TargetConfig {
        let source = format!(
            "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nname = \"t\"\nmin = 1\nmax = 10\n{text}"
        );
        crate::config::parse(&source, std::path::Path::new("t.toml"))
            .expect("a valid target")
            .targets
            .remove(0)
    }

    #[test]
    fn known_label_values_start_at_zero() {
        let metrics = Metrics::new();
        metrics.register_target(&target(""));
        let text = metrics.render();
        for series in [
            "pc_autoscaler_config_reloads_total{outcome=\"success\"} 0",
            "pc_autoscaler_config_reloads_total{outcome=\"failure\"} 0",
            "pc_autoscaler_passes_total{outcome=\"uninformed\"} 0",
            "pc_autoscaler_aws_requests_total{api=\"PutProvisionedConcurrencyConfig\",outcome=\"throttled\"} 0",
            "pc_autoscaler_target_write_blocked{reason=\"refused\",target=\"t\"} 0",
        ] {
            assert!(text.contains(series), "{series} missing in:\n{text}");
        }
    }

    #[test]
    fn a_reload_removes_the_series_of_removed_targets_rules_and_metrics() {
        let metrics = Metrics::new();
        let old = target(
            "tracking = { metric = \"concurrency\", target = 0.7 }\n\
             [[target.schedule]]\nname = \"day\"\ncron = \"0 8 * * *\"\nmin = 2\n",
        );
        metrics.register_target(&old);
        let evaluated = Evaluated {
            desired: 2,
            requested: 1,
            allocated: 1,
            min: 2,
            max: 10,
            allocation_failed: false,
            metric_data: crate::policy::MetricData::Fresh,
        };
        metrics
            .targets
            .evaluated("t", evaluated, Some(("concurrency", 5.0)), Some("day"));
        metrics.targets.count_scaling_action("t", true, "schedule");
        let text = metrics.render();
        for series in [
            "pc_autoscaler_target_schedule_active{rule=\"day\",target=\"t\"} 1\n",
            "pc_autoscaler_target_metric_value{metric=\"concurrency\",target=\"t\"} 5\n",
            "pc_autoscaler_target_bound{bound=\"max\",target=\"t\"} 10\n",
            "pc_autoscaler_target_metric_data{state=\"fresh\",target=\"t\"} 1\n",
            "pc_autoscaler_scaling_actions_total{direction=\"up\",target=\"t\",trigger=\"schedule\"} 1\n",
        ] {
            assert!(text.contains(series), "{series} missing in:\n{text}");
        }
        // The rule renamed and tracking dropped: their series go, the target's stay.
        let renamed =
            target("[[target.schedule]]\nname = \"daytime\"\ncron = \"0 8 * * *\"\nmin = 2\n");
        metrics.forget_removed(&old, Some(&renamed));
        let text = metrics.render();
        assert!(!text.contains("rule=\"day\""), "{text}");
        assert!(
            !text.contains("pc_autoscaler_target_metric_value{"),
            "{text}"
        );
        assert!(text.contains("pc_autoscaler_scaling_actions_total{direction=\"up\",target=\"t\""));
        // The target removed: nothing with its label is left.
        metrics.register_target(&renamed);
        metrics.forget_removed(&renamed, None);
        let text = metrics.render();
        assert!(!text.contains("target=\"t\""), "{text}");
    }

    #[test]
    fn every_family_is_exported_with_help() {
        let metrics = Metrics::new();
        metrics.config_reloads.with_label_values(&["success"]).inc();
        metrics
            .aws_requests
            .with_label_values(&["ListAliases", "ok"])
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
