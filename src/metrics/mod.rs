//! The daemon's own Prometheus metrics: every family defined here with its help text,
//! names in base units with `_total` and `_seconds` suffixes, and labels bounded to
//! target names, rule names, API names and fixed outcome words.
//!
//! Two kinds. The process-wide families (requests, budget, passes, reloads, the lease)
//! live in one `prometheus` registry of bounded size. The per-target and per-shard
//! families are read from the shards at scrape time ([`per_target`]). This module
//! takes plain values only: it knows nothing of the runtime that feeds it.
//!
//! What it must not do: know the runtime, keep a per-target vector in the registry, or
//! let a label take an unbounded value.

pub mod leases;
pub mod per_target;
pub mod reference;

pub use per_target::{Decided, FAMILIES, TargetRows, TargetSample};

pub use leases::{LeaderFamilies, LeaseGauges, SpreadGauges};

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::aws::{
    AwsError, FunctionConfigs, LambdaApi, MetricQuery, MetricsApi, MetricsBatch, ProvisionedConfig,
};

/// Every metric the daemon exports.
pub struct Metrics {
    pub registry: Registry,
    pub aws_requests: IntCounterVec,
    pub aws_duration: HistogramVec,
    pub evaluation_duration: Histogram,
    pub metric_reads: IntCounterVec,
    pub last_evaluation: Gauge,
    pub last_successful_evaluation: Gauge,
    pub passes: IntCounterVec,
    pub config_reloads: IntCounterVec,
    pub task_failures: IntCounterVec,
    pub snapshot_saves: IntCounterVec,
    pub events: IntCounterVec,
    pub http_connections_dropped: IntCounterVec,
    pub budget: BudgetFamilies,
    pub shards: ShardFamilies,
    /// Registered only with `[leader]` ([`Metrics::register_leader`]).
    pub leader: LeaderFamilies,
}

/// The control-plane budget's families, by priority.
/// Each shard's health and discovery, by `account` (an `[[account]]`'s name, or
/// `base`) and `region`: bounded by the config.
pub struct ShardFamilies {
    pub ready: IntGaugeVec,
    pub cloudwatch_metrics: IntCounterVec,
    pub discoveries: IntCounterVec,
    pub discovered: IntGaugeVec,
    pub skipped: IntGaugeVec,
}

impl ShardFamilies {
    fn new(registry: &Registry) -> Self {
        let shard = ["account", "region"];
        Self {
            ready: int_gauge(
                registry,
                "pc_autoscaler_shard_ready",
                "1 while the account and Region's shard reads AWS (not 3 uninformed passes in a row), else 0.",
                &shard,
            ),
            cloudwatch_metrics: counter(
                registry,
                "pc_autoscaler_cloudwatch_metrics_requested_total",
                "Metrics requested from CloudWatch GetMetricData by account and Region, pages included: what CloudWatch bills ($0.01 per 1,000).",
                &shard,
            ),
            discoveries: counter(
                registry,
                "pc_autoscaler_discoveries_total",
                "Discoveries of selectors' functions by account, Region and outcome (success, failure: a selector's read failed and its targets were kept).",
                &["account", "region", "outcome"],
            ),
            discovered: int_gauge(
                registry,
                "pc_autoscaler_discovered_targets",
                "Targets that selectors manage, by account and Region.",
                &shard,
            ),
            skipped: int_gauge(
                registry,
                "pc_autoscaler_discovery_skipped_functions",
                "Functions a selector matched but does not manage (no such alias, a bad tag override, a target written out or an earlier selector's), by account and Region; `plan` and the activities say why.",
                &shard,
            ),
        }
    }
}

pub struct BudgetFamilies {
    pub spent: IntCounterVec,
    pub queued: IntGaugeVec,
    pub throttled: IntCounterVec,
    pub rate: Gauge,
}

impl BudgetFamilies {
    fn new(registry: &Registry) -> Self {
        let by_priority =
            |name, help| zeros(counter(registry, name, help, &["priority"]), &PRIORITIES);
        Self {
            spent: by_priority(
                "pc_autoscaler_control_plane_requests_total",
                "Lambda requests sent within the control-plane budget (Lambda's shared 15/s), by priority (scale_out, read_back, scale_in, drift_scan, refresh).",
            ),
            throttled: by_priority(
                "pc_autoscaler_control_plane_throttled_total",
                "Lambda requests answered with TooManyRequestsException, by priority; each slows the whole budget down.",
            ),
            queued: zeros(
                int_gauge(
                    registry,
                    "pc_autoscaler_control_plane_queued_requests",
                    "Lambda requests waiting for the control-plane budget, by priority.",
                    &["priority"],
                ),
                &PRIORITIES,
            ),
            rate: gauge(
                registry,
                "pc_autoscaler_control_plane_budget_requests_per_second",
                "The control-plane budget's rate in force: daemon.control_plane_budget, or less for a while after a throttle.",
            ),
        }
    }
}

/// Every API `Instrumented` names, for exporting its counters from the start.
pub const APIS: [&str; 14] = [
    "GetProvisionedConcurrencyConfig",
    "PutProvisionedConcurrencyConfig",
    "DeleteProvisionedConcurrencyConfig",
    "GetFunction",
    "ListProvisionedConcurrencyConfigs",
    "GetAccountSettings",
    "ListAliases",
    "ListFunctions",
    "GetMetricData",
    "GetResources",
    "DescribeScalableTargets",
    "DescribeScalingPolicies",
    "DescribeScheduledActions",
    "RegisterScalableTarget",
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
/// How a pass over all targets ended (the runtime's `PassOutcome` labels).
pub const PASS_OUTCOMES: [&str; 4] = ["informed", "uninformed", "timed_out", "failed"];
/// The daemon's background tasks, for `pc_autoscaler_task_failures_total`.
pub const TASKS: [&str; 4] = ["evaluation", "write", "reload", "read"];
/// The control-plane budget's priorities, highest first (the runtime's `Priority`
/// labels).
pub const PRIORITIES: [&str; 5] = [
    "scale_out",
    "read_back",
    "scale_in",
    "drift_scan",
    "refresh",
];

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

/// AWS requests by API and outcome (every pair at 0 from the start), and their
/// durations by API.
fn request_families(registry: &Registry) -> (IntCounterVec, HistogramVec) {
    let requests = counter(
        registry,
        "pc_autoscaler_aws_requests_total",
        "AWS API requests by API and outcome (ok, throttled, conflict, client_error, credentials, server_error, timeout).",
        &["api", "outcome"],
    );
    for api in APIS {
        for outcome in OUTCOMES {
            requests.with_label_values(&[api, outcome]);
        }
    }
    let duration = registered(
        registry,
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
    (requests, duration)
}

/// `family` with a series at 0 for each of `values` of its one label.
fn metric_reads(registry: &Registry) -> IntCounterVec {
    use crate::policy::cadence::ReadWhy;
    zeros(
        counter(
            registry,
            "pc_autoscaler_metric_reads_total",
            "Targets whose metric a pass read, by why (every_interval, first_reads, asked, quiet_period_over, near_target, rising, allocating, change_ahead, forecast_ahead, sentinel, scale_in_due); a quiet target is read every daemon.quiet_read_period.",
            &["reason"],
        ),
        &ReadWhy::ALL.map(ReadWhy::label),
    )
}

fn zeros<P: prometheus::core::MetricVecBuilder>(
    family: prometheus::core::MetricVec<P>,
    values: &[&str],
) -> prometheus::core::MetricVec<P> {
    for value in values {
        family.with_label_values(&[value]);
    }
    family
}

pub(crate) fn unregistered<T>(metric: Result<T, prometheus::Error>) -> T {
    metric.expect("metric names and labels are valid constants")
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    registered(registry, Gauge::new(name, help))
}

fn int_gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(registry, IntGaugeVec::new(Opts::new(name, help), labels))
}

fn pass_duration(registry: &Registry) -> Histogram {
    registered(
        registry,
        Histogram::with_opts(
            HistogramOpts::new(
                "pc_autoscaler_evaluation_duration_seconds",
                "Duration of one pass's metric read.",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
        ),
    )
}

const SUCCESS_OR_FAILURE: (&str, &[&str]) = ("outcome", &["success", "failure"]);

/// A counter family with one label, every one of whose `values` reads 0 from the start.
fn by_label(
    registry: &Registry,
    name: &str,
    help: &str,
    (label, values): (&str, &[&str]),
) -> IntCounterVec {
    zeros(counter(registry, name, help, &[label]), values)
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
        let (aws_requests, aws_duration) = request_families(&registry);
        Self {
            aws_requests,
            aws_duration,
            evaluation_duration: pass_duration(&registry),
            metric_reads: metric_reads(&registry),
            last_evaluation: gauge(
                &registry,
                "pc_autoscaler_last_evaluation_timestamp_seconds",
                "Unix time at which the last pass over all targets ended, informed or not.",
            ),
            last_successful_evaluation: gauge(
                &registry,
                "pc_autoscaler_last_successful_evaluation_timestamp_seconds",
                "Unix time of the last pass that informed at least one target (its config and metrics read).",
            ),
            passes: by_label(
                &registry,
                "pc_autoscaler_passes_total",
                "Passes over all targets by outcome: informed (at least one target read), uninformed (none), timed_out, failed.",
                ("outcome", &PASS_OUTCOMES),
            ),
            config_reloads: by_label(
                &registry,
                "pc_autoscaler_config_reloads_total",
                "Configuration reloads by outcome (success, failure).",
                SUCCESS_OR_FAILURE,
            ),
            task_failures: by_label(
                &registry,
                "pc_autoscaler_task_failures_total",
                "Background tasks that panicked or were cancelled, by task (evaluation, write, reload, read).",
                ("task", &TASKS),
            ),
            snapshot_saves: by_label(
                &registry,
                "pc_autoscaler_snapshot_saves_total",
                "Snapshots of what the leader knows kept for a restart or a takeover (daemon.state_directory or the lease table), by outcome (success, failure).",
                SUCCESS_OR_FAILURE,
            ),
            events: by_label(
                &registry,
                "pc_autoscaler_events_total",
                "Activities sent to EventBridge ([events]) by outcome: sent, dropped (the queue was full, or this copy stopped leading), failed (given up after 8 attempts).",
                ("outcome", &["sent", "dropped", "failed"]),
            ),
            http_connections_dropped: by_label(
                &registry,
                "pc_autoscaler_http_connections_dropped_total",
                "HTTP connections closed at the connection cap to make room (evicted: the oldest whose request head was not read whole yet), or refused (refused: every slot was serving).",
                ("reason", &["evicted", "refused"]),
            ),
            budget: BudgetFamilies::new(&registry),
            shards: ShardFamilies::new(&registry),
            leader: LeaderFamilies::new(),
            registry,
        }
    }

    /// Appends the registry's families in the text exposition format. The registry
    /// holds only process-wide families, so what it gathers is bounded whatever the
    /// number of targets.
    pub fn render_registry(&self, out: &mut String) {
        TextEncoder::new()
            .encode_utf8(&self.registry.gather(), out)
            .expect("encoding into memory cannot fail");
    }
}

/// What the daemon's CloudWatch reads have cost so far, and a month at that rate
/// (`/status`, `pc-autoscaler status`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CloudWatchBill {
    pub shards: Vec<ShardBill>,
    pub metrics_requested: u64,
    pub usd_per_month: f64,
    /// Seconds since the start the rate is taken over.
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardBill {
    pub account: String,
    pub region: String,
    pub metrics_requested: u64,
    pub usd_per_month: f64,
}

impl Metrics {
    /// The bill of `pc_autoscaler_cloudwatch_metrics_requested_total` after `uptime`,
    /// at CloudWatch's published price.
    pub fn cloudwatch_bill(&self, uptime: Duration) -> CloudWatchBill {
        use prometheus::core::Collector as _;
        let seconds = uptime.as_secs_f64().max(1.0);
        let monthly = |requested: u64| {
            requested as f64 / seconds
                * crate::policy::cadence::SECONDS_PER_MONTH
                * crate::policy::cadence::PRICE_PER_METRIC_REQUESTED
        };
        let mut shards = Vec::new();
        for family in self.shards.cloudwatch_metrics.collect() {
            for metric in family.get_metric() {
                let label = |name: &str| {
                    metric
                        .get_label()
                        .iter()
                        .find(|pair| pair.name() == name)
                        .map(|pair| pair.value().to_owned())
                        .unwrap_or_default()
                };
                let requested = metric.get_counter().value() as u64;
                shards.push(ShardBill {
                    account: label("account"),
                    region: label("region"),
                    metrics_requested: requested,
                    usd_per_month: monthly(requested),
                });
            }
        }
        let total = shards.iter().map(|shard| shard.metrics_requested).sum();
        CloudWatchBill {
            shards,
            metrics_requested: total,
            usd_per_month: monthly(total),
            seconds,
        }
    }
}

/// What every shard counts besides its targets, summed over the shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardTotals {
    pub targets_unknown: u64,
    pub history_pending: u64,
    /// Shards whose last read of the override store failed.
    pub overrides_unreadable: u64,
    /// Shards that could not read Application Auto Scaling yet.
    pub aas_unreadable: u64,
}

impl std::ops::AddAssign for ShardTotals {
    fn add_assign(&mut self, other: Self) {
        self.targets_unknown += other.targets_unknown;
        self.history_pending += other.history_pending;
        self.overrides_unreadable += other.overrides_unreadable;
        self.aas_unreadable += other.aas_unreadable;
    }
}

/// Appends the shard-level families.
pub fn render_shard_totals(totals: ShardTotals, out: &mut String) {
    use std::fmt::Write as _;
    for (name, help, value) in [
        (
            "pc_autoscaler_targets_unknown",
            "Targets whose provisioned concurrency has not been read yet (after a start or reload); they are not decided until it is.",
            totals.targets_unknown,
        ),
        (
            "pc_autoscaler_forecast_history_pending",
            "Forecasting targets whose 14-day metric history has not been read yet (after a start, reload or takeover); they are decided reactively until it is.",
            totals.history_pending,
        ),
        (
            "pc_autoscaler_override_store_unreadable",
            "1 while the last read of the override store failed: the overrides read before stay in force until they end.",
            totals.overrides_unreadable,
        ),
        (
            "pc_autoscaler_aas_unreadable",
            "Shards that could not read Application Auto Scaling's scalable targets yet: their targets are written as if AAS managed none (grant application-autoscaling:DescribeScalableTargets).",
            totals.aas_unreadable,
        ),
    ] {
        let _ = write!(
            out,
            "# HELP {name} {help}
# TYPE {name} gauge
{name} {value}
"
        );
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
    async fn snap_start(&self, function: &str, qualifier: &str) -> Result<bool, AwsError> {
        self.observe("GetFunction", self.inner.snap_start(function, qualifier))
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
    async fn aliases(&self, function: &str) -> Result<crate::aws::Aliases, AwsError> {
        self.observe("ListAliases", self.inner.aliases(function))
            .await
    }

    async fn functions(
        &self,
        marker: Option<String>,
    ) -> Result<(Vec<crate::aws::FunctionSummary>, Option<String>), AwsError> {
        self.observe("ListFunctions", self.inner.functions(marker))
            .await
    }
}

impl<T: crate::aws::TaggingApi> crate::aws::TaggingApi for Instrumented<T> {
    async fn tagged_page(
        &self,
        tags: &[(String, Option<String>)],
        token: Option<String>,
    ) -> Result<crate::aws::TaggedPage, AwsError> {
        self.observe("GetResources", self.inner.tagged_page(tags, token))
            .await
    }
}

impl<S: crate::aws::ScalingApi> crate::aws::ScalingApi for Instrumented<S> {
    async fn lambda_targets(&self) -> Result<Vec<crate::aws::ScalableTarget>, AwsError> {
        self.observe("DescribeScalableTargets", self.inner.lambda_targets())
            .await
    }
    async fn lambda_policies(&self) -> Result<Vec<crate::aws::ScalingPolicy>, AwsError> {
        self.observe("DescribeScalingPolicies", self.inner.lambda_policies())
            .await
    }
    async fn lambda_scheduled_actions(&self) -> Result<Vec<crate::aws::ScheduledAction>, AwsError> {
        self.observe(
            "DescribeScheduledActions",
            self.inner.lambda_scheduled_actions(),
        )
        .await
    }
    async fn set_suspended(
        &self,
        function: &str,
        qualifier: &str,
        state: crate::aws::SuspendedState,
    ) -> Result<(), AwsError> {
        self.observe(
            "RegisterScalableTarget",
            self.inner.set_suspended(function, qualifier, state),
        )
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
    fn known_label_values_start_at_zero_and_every_family_has_help() {
        let metrics = Metrics::new();
        metrics.config_reloads.with_label_values(&["success"]).inc();
        let mut text = String::new();
        metrics.render_registry(&mut text);
        for series in [
            "pc_autoscaler_config_reloads_total{outcome=\"failure\"} 0",
            "pc_autoscaler_passes_total{outcome=\"uninformed\"} 0",
            "pc_autoscaler_aws_requests_total{api=\"PutProvisionedConcurrencyConfig\",outcome=\"throttled\"} 0",
            "pc_autoscaler_control_plane_requests_total{priority=\"drift_scan\"} 0",
        ] {
            assert!(text.contains(series), "{series} missing in:\n{text}");
        }
        for name in [
            "pc_autoscaler_build_info",
            "pc_autoscaler_config_reloads_total",
            "pc_autoscaler_aws_requests_total",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{name} missing");
        }
        assert!(!text.contains("pc_autoscaler_leader"), "only with [leader]");
        metrics.register_leader("copy-a");
        let mut text = String::new();
        metrics.render_registry(&mut text);
        assert!(text.contains("pc_autoscaler_leader{identity=\"copy-a\"} 0"));
    }

    #[test]
    fn shard_totals_are_announced_even_at_zero() {
        let mut text = String::new();
        render_shard_totals(ShardTotals::default(), &mut text);
        assert!(text.contains("pc_autoscaler_targets_unknown 0\n"), "{text}");
        assert!(text.contains("# TYPE pc_autoscaler_forecast_history_pending gauge\n"));
    }
}
