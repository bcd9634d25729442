//! One evaluation of every target against AWS, and carrying out its decisions: the
//! shared core of `plan`, `run --once` and (later) the daemon loop.
//!
//! Reading never writes. A failed read never leads to a scale-in: a target whose
//! config cannot be read is reported and left alone; missing metrics reach the policy
//! as missing data (held); an unreadable cap limits nothing. Writes go through the
//! actuator's rules (`actuator`) and a shared token bucket; targets of one function
//! are written one after another, so a function never has two writes in flight.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio::time::Instant;

use crate::actuator::{self, Backoff, Retry, TokenBucket};
use crate::aws::{AwsError, LambdaApi, MetricQuery, MetricsApi, ProvisionedConfig, SeriesStatus};
use crate::config::{Config, MetricKind, TargetConfig, function_name};
use crate::policy::{
    self, AllocationStatus, Caps, Decision, MetricsRead, Observation, PolicyState,
};

/// The control-plane budget, shared by every target: one bucket for writes, one for reads.
pub struct RateLimits {
    origin: Instant,
    writes: Mutex<TokenBucket>,
    reads: Mutex<TokenBucket>,
}

impl RateLimits {
    pub fn new(max_write_rate: f64, max_read_rate: f64) -> Self {
        Self {
            origin: Instant::now(),
            // A burst of one second's worth: enough for a handful of targets at once.
            writes: Mutex::new(TokenBucket::new(max_write_rate, max_write_rate)),
            reads: Mutex::new(TokenBucket::new(max_read_rate, max_read_rate)),
        }
    }

    async fn take(&self, bucket: &Mutex<TokenBucket>) {
        let now = self.origin.elapsed().as_secs_f64();
        // `reserve` never panics, so the lock cannot be poisoned by it; should anything
        // else ever poison it, the bucket's numbers are still valid, so keep using them
        // rather than failing every later pass.
        let wait = bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .reserve(now);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    pub async fn write(&self) {
        self.take(&self.writes).await;
    }

    pub async fn read(&self) {
        self.take(&self.reads).await;
    }
}

/// Why a target was not evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blocked {
    /// The alias routes traffic to two versions: Lambda refuses provisioned concurrency.
    WeightedAlias,
    /// The target's config could not be read.
    ReadFailed { error: String },
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::WeightedAlias => f.write_str(
                "alias has a weighted RoutingConfig; provisioned concurrency is not possible",
            ),
            Blocked::ReadFailed { error } => write!(f, "cannot read the current config: {error}"),
        }
    }
}

/// One target's evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub target: TargetConfig,
    /// `Err` when the target cannot be managed this cycle.
    pub outcome: Result<Evaluated, Blocked>,
}

#[derive(Debug, Clone)]
pub struct Evaluated {
    pub observation: Observation,
    pub config: Option<ProvisionedConfig>,
    pub decision: Decision,
    /// Whether the metric read failed or came back partial (then data counts as missing).
    pub metric_status: Option<SeriesStatus>,
}

impl Evaluation {
    /// Whether this target was read well enough to decide on fresh facts: its config
    /// read, and its metric read in full when it tracks one.
    pub fn is_informed(&self) -> bool {
        self.outcome
            .as_ref()
            .is_ok_and(|evaluated| evaluated.observation.metrics == MetricsRead::Complete)
    }
}

/// True when a pass over at least one target informed none of them: AWS could not be
/// read at all (no credentials, no network, every read throttled).
pub fn nothing_read(evaluations: &[Evaluation]) -> bool {
    !evaluations.is_empty() && !evaluations.iter().any(Evaluation::is_informed)
}

/// Shared clients and settings of one reconcile pass.
pub struct Context<L, M> {
    pub lambda: Arc<L>,
    pub metrics: Arc<M>,
    pub limits: Arc<RateLimits>,
    pub config: Arc<Config>,
}

impl<L, M> Context<L, M> {
    /// A context whose rate budget comes from `config.daemon`.
    pub fn new(config: Config, lambda: L, metrics: M) -> Self {
        Self {
            lambda: Arc::new(lambda),
            metrics: Arc::new(metrics),
            limits: Arc::new(RateLimits::new(
                config.daemon.max_write_rate,
                config.daemon.max_read_rate,
            )),
            config: Arc::new(config),
        }
    }
}

impl<L, M> Clone for Context<L, M> {
    fn clone(&self) -> Self {
        Self {
            lambda: self.lambda.clone(),
            metrics: self.metrics.clone(),
            limits: self.limits.clone(),
            config: self.config.clone(),
        }
    }
}

/// The metric query of a tracked target (`id` unique in the batch).
pub fn metric_query(target: &TargetConfig, id: String) -> Option<MetricQuery> {
    let tracking = target.tracking.as_ref()?;
    let lambda_metric = |name: &str| {
        let function = function_name(&target.function).to_owned();
        MetricQuery {
            id: id.clone(),
            namespace: "AWS/Lambda".into(),
            name: name.into(),
            dimensions: BTreeMap::from([
                ("FunctionName".to_owned(), function.clone()),
                (
                    "Resource".to_owned(),
                    format!("{function}:{}", target.qualifier),
                ),
            ]),
            stat: "Maximum".into(),
        }
    };
    Some(match &tracking.metric {
        // Utilization is tracked from the absolute demand: see `policy::tracking`.
        MetricKind::Concurrency | MetricKind::Utilization => lambda_metric("ConcurrentExecutions"),
        MetricKind::Custom(custom) => MetricQuery {
            id,
            namespace: custom.namespace.clone(),
            name: custom.name.clone(),
            dimensions: custom.dimensions.clone(),
            stat: custom.stat.clone(),
        },
    })
}

/// How far back a target's metric is read: its whole scale-in window, which also
/// reaches back by the staleness allowance (see `policy::tracking::window_start`).
fn read_window(target: &TargetConfig) -> TimeDelta {
    target
        .tracking
        .as_ref()
        .map_or(TimeDelta::zero(), |tracking| {
            tracking.scale_in_window + tracking.stale_after + TimeDelta::minutes(1)
        })
}

/// One batched read of `queries` over the longest window of `targets`. A failed read
/// is logged here; the targets then see no series and hold (`MetricsRead::Unreadable`).
async fn read_metrics<L, M: MetricsApi>(
    context: &Context<L, M>,
    targets: &[TargetConfig],
    queries: &[MetricQuery],
    now: DateTime<Utc>,
) -> Option<crate::aws::MetricsBatch> {
    if queries.is_empty() {
        return Some(Default::default());
    }
    let window = targets.iter().map(read_window).max().unwrap_or_default();
    match context.metrics.fetch(queries, now - window, now).await {
        Ok(batch) => Some(batch),
        Err(error) => {
            tracing::warn!(error = %error, outcome = error.label(), "metric read failed; tracked targets hold their capacity this cycle");
            None
        }
    }
}

/// What one function's reads found, shared by its targets.
#[derive(Default, Clone)]
struct FunctionReads {
    reserved: Option<u32>,
    holdings: Vec<crate::aws::QualifierHolding>,
}

/// Reads everything and decides for every target. Never writes.
pub async fn evaluate<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    now: DateTime<Utc>,
) -> Vec<Evaluation> {
    let config = &context.config;
    let lambda = &context.lambda;

    // All targets' metrics in one batched pass.
    let queries: Vec<(usize, MetricQuery)> = config
        .targets
        .iter()
        .enumerate()
        .filter_map(|(index, target)| {
            metric_query(target, format!("m{index}")).map(|query| (index, query))
        })
        .collect();
    let plain: Vec<MetricQuery> = queries.iter().map(|(_, query)| query.clone()).collect();
    let metrics = read_metrics(context, &config.targets, &plain, now).await;

    context.limits.read().await;
    let unreserved = match lambda.unreserved_concurrency().await {
        Ok(Some(unreserved)) => Some(unreserved),
        Ok(None) => {
            tracing::warn!(
                "account settings lack UnreservedConcurrentExecutions; the account cap is unknown this cycle"
            );
            None
        }
        Err(error) => {
            tracing::warn!(error = %error, "account settings read failed; the account cap is unknown this cycle");
            None
        }
    };
    let mut account_budget =
        unreserved.map(|unreserved| unreserved.saturating_sub(config.daemon.account_reserve));

    let mut function_reads: HashMap<String, FunctionReads> = HashMap::new();
    let mut evaluations = Vec::with_capacity(config.targets.len());
    for (index, target) in config.targets.iter().enumerate() {
        let series = metrics
            .as_ref()
            .and_then(|batch| batch.series.get(&format!("m{index}")));
        let outcome = evaluate_target(
            context,
            target,
            series,
            &mut function_reads,
            &mut account_budget,
            now,
        )
        .await;
        evaluations.push(Evaluation {
            target: target.clone(),
            outcome,
        });
    }
    evaluations
}

async fn evaluate_target<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    target: &TargetConfig,
    series: Option<&crate::aws::Series>,
    function_reads: &mut HashMap<String, FunctionReads>,
    account_budget: &mut Option<u32>,
    now: DateTime<Utc>,
) -> Result<Evaluated, Blocked> {
    let lambda = &context.lambda;
    let is_version = target.qualifier.chars().all(|c| c.is_ascii_digit());
    if !is_version {
        context.limits.read().await;
        match lambda
            .alias_is_weighted(&target.function, &target.qualifier)
            .await
        {
            Ok(true) => return Err(Blocked::WeightedAlias),
            Ok(false) => {}
            Err(error) => {
                return Err(Blocked::ReadFailed {
                    error: error.to_string(),
                });
            }
        }
    }
    context.limits.read().await;
    let current = lambda
        .provisioned_config(&target.function, &target.qualifier)
        .await
        .map_err(|error| Blocked::ReadFailed {
            error: error.to_string(),
        })?;

    let function = function_name(&target.function).to_owned();
    if !function_reads.contains_key(&function) {
        let mut reads = FunctionReads::default();
        context.limits.read().await;
        match lambda.reserved_concurrency(&target.function).await {
            Ok(reserved) => reads.reserved = reserved,
            Err(error) => {
                tracing::warn!(target = %target.name, error = %error, "reserved concurrency read failed; its cap is unknown this cycle")
            }
        }
        if reads.reserved.is_some() {
            context.limits.read().await;
            match lambda.provisioned_configs(&target.function).await {
                Ok(holdings) => reads.holdings = holdings,
                Err(error) => {
                    tracing::warn!(target = %target.name, error = %error, "provisioned config list failed; the reserved cap is unknown this cycle");
                    reads.reserved = None;
                }
            }
        }
        function_reads.insert(function.clone(), reads);
    }
    let reads = function_reads.get(&function).cloned().unwrap_or_default();
    let requested = current.as_ref().map_or(0, |config| config.requested);
    let reserved_available = reads.reserved.map(|reserved| {
        let others: u32 = reads
            .holdings
            .iter()
            .filter(|holding| holding.qualifier != target.qualifier)
            .map(|holding| holding.requested)
            .sum();
        reserved.saturating_sub(others)
    });
    // A function with reserved concurrency draws on it, not on the account's pool.
    let account_headroom = if reads.reserved.is_some() {
        None
    } else {
        *account_budget
    };

    // Only a complete series lets an empty window mean "idle"; a failed, partial or
    // absent one means "we could not read", which always holds.
    let (datapoints, metric_status) = match series {
        Some(series) => (series.points.clone(), Some(series.status)),
        None => (Vec::new(), None),
    };
    let metrics_read = match metric_status {
        Some(SeriesStatus::Complete) => MetricsRead::Complete,
        _ if target.tracking.is_none() => MetricsRead::Complete,
        _ => MetricsRead::Unreadable,
    };
    let observation = Observation {
        requested,
        allocated: current.as_ref().map_or(0, |config| config.allocated),
        status: current
            .as_ref()
            .map_or(AllocationStatus::None, |config| config.status),
        last_modified: current.as_ref().and_then(|config| config.last_modified),
        datapoints,
        metrics: metrics_read,
        caps: Caps {
            reserved_available,
            account_headroom,
        },
    };
    let decision = policy::decide(target, &observation, &PolicyState::default(), now);
    if account_headroom.is_some()
        && let Some(budget) = account_budget.as_mut()
    {
        *budget = budget.saturating_sub(decision.desired.saturating_sub(requested));
    }
    Ok(Evaluated {
        observation,
        config: current,
        decision,
        metric_status,
    })
}

/// How writes are carried out.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub dry_run: bool,
    pub backoff: Backoff,
    /// How often the status is read back while an allocation is in progress.
    pub poll_interval: Duration,
    /// How long one target may take in all (writes, retries, waiting for READY).
    pub deadline: Duration,
    /// Whether to wait for an allocation to finish after a successful write.
    pub wait_for_ready: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            backoff: Backoff::default(),
            poll_interval: Duration::from_secs(5),
            deadline: Duration::from_secs(300),
            wait_for_ready: true,
        }
    }
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Applied {
    Unchanged {
        capacity: u32,
    },
    /// Dry run: the write that would have been made.
    WouldChange {
        from: u32,
        to: u32,
    },
    Changed {
        from: u32,
        to: u32,
        status: String,
    },
    Failed {
        error: String,
    },
    Blocked {
        why: String,
    },
}

impl Applied {
    /// Failed or blocked: `run --once` exits non-zero, so a cron job notices.
    pub fn is_failure(&self) -> bool {
        matches!(self, Applied::Failed { .. } | Applied::Blocked { .. })
    }
}

/// Carries out every evaluation. Targets of one function go one after another. A
/// group whose task panicked reports each of its targets as failed: nothing vanishes
/// from the output or the exit code.
pub async fn apply<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    evaluations: Vec<Evaluation>,
    options: &ApplyOptions,
) -> Vec<(String, Applied)> {
    let mut by_function: BTreeMap<String, Vec<(usize, Evaluation)>> = BTreeMap::new();
    for (index, evaluation) in evaluations.into_iter().enumerate() {
        by_function
            .entry(function_name(&evaluation.target.function).to_owned())
            .or_default()
            .push((index, evaluation));
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut members: HashMap<tokio::task::Id, Vec<(usize, String)>> = HashMap::new();
    for (_, group) in by_function {
        let context = context.clone();
        let options = options.clone();
        let names = group
            .iter()
            .map(|(index, evaluation)| (*index, evaluation.target.name.clone()))
            .collect();
        let handle = tasks.spawn(async move {
            let mut results = Vec::new();
            for (index, evaluation) in group {
                let name = evaluation.target.name.clone();
                let applied = apply_one(&context, evaluation, &options).await;
                results.push((index, name, applied));
            }
            results
        });
        members.insert(handle.id(), names);
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, results)) => all.extend(results),
            Err(error) => {
                let names = members.remove(&error.id()).unwrap_or_default();
                for (index, name) in names {
                    tracing::error!(target = %name, error = %error, "the write task failed");
                    all.push((
                        index,
                        name,
                        Applied::Failed {
                            error: format!("internal error: the write task failed ({error})"),
                        },
                    ));
                }
            }
        }
    }
    all.sort_by_key(|(index, _, _)| *index);
    all.into_iter()
        .map(|(_, name, applied)| (name, applied))
        .collect()
}

/// Reads one target afresh and decides at the current time: after a conflict was
/// waited out, the pass's datapoints and `now` are old news.
async fn reevaluate<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    target: &TargetConfig,
    account_headroom: Option<u32>,
) -> Result<Evaluated, Blocked> {
    let now = Utc::now();
    let queries: Vec<MetricQuery> = metric_query(target, "m0".into()).into_iter().collect();
    let batch = read_metrics(context, std::slice::from_ref(target), &queries, now).await;
    let series = batch.and_then(|mut batch| batch.series.remove("m0"));
    let mut budget = account_headroom;
    evaluate_target(
        context,
        target,
        series.as_ref(),
        &mut HashMap::new(),
        &mut budget,
        now,
    )
    .await
}

async fn apply_one<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    evaluation: Evaluation,
    options: &ApplyOptions,
) -> Applied {
    let target = evaluation.target;
    let mut evaluated = match evaluation.outcome {
        Ok(evaluated) => evaluated,
        Err(blocked) => {
            return Applied::Blocked {
                why: blocked.to_string(),
            };
        }
    };
    let started = Instant::now();
    let mut attempts = actuator::Attempts::default();
    loop {
        let from = evaluated.observation.requested;
        let desired = evaluated.decision.desired;
        if desired == from {
            return Applied::Unchanged { capacity: from };
        }
        if options.dry_run {
            return Applied::WouldChange { from, to: desired };
        }
        context.limits.write().await;
        let error = match write(context.lambda.as_ref(), &target, desired).await {
            Ok(()) => {
                log_change(&target, from, desired, &evaluated.decision);
                let status = if options.wait_for_ready {
                    settle(context, &target, options, started).await
                } else {
                    Settled::InProgress
                };
                if status == Settled::Failed {
                    return Applied::Failed {
                        error: format!("allocation of {desired} FAILED"),
                    };
                }
                return Applied::Changed {
                    from,
                    to: desired,
                    status: status.label().to_owned(),
                };
            }
            Err(error) => error,
        };
        let retry = attempts.after_failure(&error, &options.backoff, fastrand::f64());
        tracing::warn!(target = %target.name, error = %error, outcome = error.label(), retry = ?retry, "write failed");
        match retry {
            Retry::Never | Retry::GiveUp => {
                return Applied::Failed {
                    error: error.to_string(),
                };
            }
            Retry::After(wait) => {
                if started.elapsed() + wait > options.deadline {
                    return Applied::Failed {
                        error: format!("{error} (gave up: the deadline would pass while waiting)"),
                    };
                }
                tokio::time::sleep(wait).await;
            }
            Retry::WhenSettled => {
                settle(context, &target, options, started).await;
                if started.elapsed() > options.deadline {
                    return Applied::Failed {
                        error: format!("{error} (gave up: still in progress at the deadline)"),
                    };
                }
                // Decide again on what is there now: the desired value may have changed.
                match reevaluate(
                    context,
                    &target,
                    evaluated.observation.caps.account_headroom,
                )
                .await
                {
                    Ok(fresh) => evaluated = fresh,
                    Err(blocked) => {
                        return Applied::Blocked {
                            why: blocked.to_string(),
                        };
                    }
                }
            }
        }
    }
}

/// The one log line of an accepted capacity change, for `run --once` and the daemon.
pub fn log_change(target: &TargetConfig, from: u32, to: u32, decision: &Decision) {
    tracing::info!(
        target = %target.name,
        from,
        to,
        reason = %decision.reason,
        trigger = decision.reason.label(),
        "capacity changed"
    );
}

/// Puts `desired`, or deletes the config for 0 ("no provisioned concurrency").
pub async fn write<L: LambdaApi>(
    lambda: &L,
    target: &TargetConfig,
    desired: u32,
) -> Result<(), AwsError> {
    if desired == 0 {
        lambda
            .delete_provisioned_config(&target.function, &target.qualifier)
            .await
    } else {
        lambda
            .put_provisioned_config(&target.function, &target.qualifier, desired)
            .await
            .map(|_| ())
    }
}

/// Where an allocation stood when [`read_until_settled`] stopped reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Ready,
    /// The config is gone (a delete).
    Deleted,
    Failed,
    /// Still in progress at the deadline.
    InProgress,
    /// The last read failed.
    Unknown,
}

impl Settled {
    pub fn label(self) -> &'static str {
        match self {
            Settled::Ready => "READY",
            Settled::Deleted => "DELETED",
            Settled::Failed => "FAILED",
            Settled::InProgress => "IN_PROGRESS",
            Settled::Unknown => "UNKNOWN",
        }
    }
}

/// Reads the target's config back every `poll` until it is no longer in progress, or
/// `deadline` would pass before the next read.
pub async fn read_until_settled<L: LambdaApi>(
    lambda: &L,
    limits: &RateLimits,
    target: &TargetConfig,
    poll: Duration,
    deadline: Instant,
) -> Settled {
    loop {
        limits.read().await;
        let settled = match lambda
            .provisioned_config(&target.function, &target.qualifier)
            .await
        {
            Ok(None) => return Settled::Deleted,
            Ok(Some(config)) => match config.status {
                AllocationStatus::InProgress => Settled::InProgress,
                AllocationStatus::Ready | AllocationStatus::None => return Settled::Ready,
                AllocationStatus::Failed => {
                    tracing::error!(target = %target.name, reason = config.status_reason.as_deref().unwrap_or(""), "allocation FAILED");
                    return Settled::Failed;
                }
            },
            Err(error) => {
                tracing::warn!(target = %target.name, error = %error, "status read failed while waiting");
                Settled::Unknown
            }
        };
        if Instant::now() + poll > deadline {
            return settled;
        }
        tokio::time::sleep(poll).await;
    }
}

/// [`read_until_settled`] within `run --once`'s per-target deadline.
async fn settle<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    target: &TargetConfig,
    options: &ApplyOptions,
    started: Instant,
) -> Settled {
    read_until_settled(
        context.lambda.as_ref(),
        &context.limits,
        target,
        options.poll_interval,
        started + options.deadline,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{MetricsBatch, ProvisionedConfig, QualifierHolding};

    /// In memory: every function is idle with no config; a put to `boom` panics.
    struct PanickyLambda;

    impl LambdaApi for PanickyLambda {
        async fn provisioned_config(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<ProvisionedConfig>, AwsError> {
            Ok(None)
        }
        async fn put_provisioned_config(
            &self,
            function: &str,
            _: &str,
            value: u32,
        ) -> Result<ProvisionedConfig, AwsError> {
            assert_ne!(function, "boom", "injected panic inside a write");
            Ok(ProvisionedConfig {
                requested: value,
                allocated: value,
                status: crate::policy::AllocationStatus::Ready,
                status_reason: None,
                last_modified: None,
            })
        }
        async fn delete_provisioned_config(&self, _: &str, _: &str) -> Result<(), AwsError> {
            Ok(())
        }
        async fn reserved_concurrency(&self, _: &str) -> Result<Option<u32>, AwsError> {
            Ok(None)
        }
        async fn provisioned_configs(&self, _: &str) -> Result<Vec<QualifierHolding>, AwsError> {
            Ok(Vec::new())
        }
        async fn unreserved_concurrency(&self) -> Result<Option<u32>, AwsError> {
            Ok(None)
        }
        async fn alias_is_weighted(&self, _: &str, _: &str) -> Result<bool, AwsError> {
            Ok(false)
        }
    }

    struct NoMetrics;

    impl MetricsApi for NoMetrics {
        async fn fetch(
            &self,
            _: &[MetricQuery],
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<MetricsBatch, AwsError> {
            Ok(MetricsBatch::default())
        }
    }

    #[tokio::test]
    async fn a_panicking_write_is_reported_for_its_targets_and_the_others_proceed() {
        let source = "[[target]]\nfunction = \"boom\"\nqualifier = \"live\"\nmin = 3\nmax = 10\n\
                      [[target]]\nfunction = \"calm\"\nqualifier = \"live\"\nmin = 3\nmax = 10\n";
        let config = crate::config::parse(source, std::path::Path::new("t.toml")).expect("valid");
        let context = Context::new(config, PanickyLambda, NoMetrics);
        let evaluations = evaluate(&context, Utc::now()).await;
        let options = ApplyOptions {
            dry_run: false,
            backoff: Backoff::default(),
            poll_interval: Duration::from_millis(10),
            deadline: Duration::from_secs(5),
            wait_for_ready: false,
        };
        let mut applied = apply(&context, evaluations, &options).await;
        applied.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(applied.len(), 2, "no target vanishes: {applied:?}");
        assert!(
            matches!(&applied[0], (name, Applied::Failed { .. }) if name == "boom:live"),
            "{applied:?}"
        );
        assert!(applied[0].1.is_failure());
        assert!(
            matches!(&applied[1], (name, Applied::Changed { to: 3, .. }) if name == "calm:live"),
            "{applied:?}"
        );
    }
}
