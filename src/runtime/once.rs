//! The one-shot runtime of `plan` and `run --once`: read every function once, decide
//! every target, and (for `run --once`) carry the decisions out.
//!
//! Reads: one `ListProvisionedConcurrencyConfigs` per function (it covers all
//! qualifiers) within the one-shot read rate, `GetFunction` within its own limit, the
//! account settings once, and every metric in one batched `GetMetricData`, all at
//! once rather than one after another. Alias weights are read (`ListAliases`) only
//! for functions where a decision would write to an alias. Targets with a forecast also
//! read their 14 days of history, as the daemon does at start, 5 targets a call, one call
//! at a time, beside the other reads. Writes go through the same
//! budget and the actuator's [`WriteState`]; targets of one function are written one
//! after another, so a function never has two writes in flight.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::actuator::{Backoff, Retry, WriteState};
use super::budget::Priority;
use super::control::Control;
use super::evaluate::{self, Evaluation, SeriesByTarget};
use super::known::Known;
use super::series;
use crate::aws::{AwsError, LambdaApi, MetricsApi};
use crate::clock::Clock;
use crate::config::{Config, FunctionId, TargetConfig, TargetName};
use crate::policy::{AllocationStatus, Caps, Decision, PolicyState};

/// Shared clients and settings of one run.
pub struct Context<L, M> {
    pub control: Control<L>,
    pub metrics: Arc<M>,
    pub config: Arc<Config>,
    /// `Clock::System` unless a test says otherwise.
    pub clock: Clock,
}

impl<L, M> Clone for Context<L, M> {
    fn clone(&self) -> Self {
        Self {
            control: self.control.clone(),
            metrics: self.metrics.clone(),
            config: self.config.clone(),
            clock: self.clock,
        }
    }
}

impl<L: LambdaApi, M> Context<L, M> {
    /// A context that spends at most `read_rate` Lambda requests a second.
    pub fn new(config: Config, lambda: L, metrics: M, read_rate: f64) -> Self {
        Self {
            control: Control::new(
                lambda,
                read_rate,
                super::control::ONE_SHOT_GET_FUNCTION_RATE,
                &config,
                None,
            ),
            metrics: Arc::new(metrics),
            config: Arc::new(config),
            clock: Clock::System,
        }
    }
}

/// Every function named by `targets`, once each, in the order they first appear.
pub fn functions<'a>(targets: impl IntoIterator<Item = &'a TargetConfig>) -> Vec<FunctionId> {
    let mut seen = BTreeSet::new();
    targets
        .into_iter()
        .filter(|target| seen.insert(&target.function))
        .map(|target| target.function.clone())
        .collect()
}

/// What one function's first read found.
struct FunctionRead {
    function: FunctionId,
    configs: Result<crate::aws::FunctionConfigs, AwsError>,
    reserved: Result<Option<u32>, AwsError>,
}

/// Reads every function, the account and the metrics, all at once.
async fn read_all<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    now: chrono::DateTime<chrono::Utc>,
) -> (Known, SeriesByTarget) {
    let config = &context.config;
    let mut reads = JoinSet::new();
    for function in functions(&config.targets) {
        let control = context.control.clone();
        reads.spawn(async move {
            let (configs, reserved) = tokio::join!(
                control.scan(&function, Priority::DriftScan),
                control.reserved(&function)
            );
            FunctionRead {
                function,
                configs,
                reserved,
            }
        });
    }
    let metrics = context.metrics.clone();
    let targets = config.targets.clone();
    let control = context.control.clone();
    let (series, unreserved) = tokio::join!(
        series::fetch(metrics.as_ref(), &targets, now),
        control.unreserved(Priority::Refresh)
    );
    let mut known = Known::default();
    match unreserved {
        Ok(Some(unreserved)) => known.set_unreserved(Some(unreserved)),
        Ok(None) => tracing::warn!(
            "account settings lack UnreservedConcurrentExecutions; the account cap is unknown"
        ),
        Err(error) => {
            tracing::warn!(error = %error, "account settings read failed; the account cap is unknown")
        }
    }
    while let Some(joined) = reads.join_next().await {
        let Ok(read) = joined else {
            // A read task cannot panic short of a bug; its targets stay "not read".
            continue;
        };
        record_function(&mut known, read);
    }
    (known, series.unwrap_or_default())
}

fn record_function(known: &mut Known, read: FunctionRead) {
    match read.configs {
        Ok(configs) => {
            known.scanned(&read.function, configs);
        }
        Err(error) => known.scan_failed(&read.function, error.to_string()),
    }
    match read.reserved {
        Ok(reserved) => known.set_reserved(&read.function, reserved),
        Err(error) => {
            tracing::warn!(function = %read.function.name, error = %error, "reserved concurrency read failed; its cap is unknown")
        }
    }
}

/// Reads the weights of every function where a decision would write to an alias:
/// Lambda refuses provisioned concurrency on a weighted alias.
async fn read_weights_where_writing<L: LambdaApi, M>(
    context: &Context<L, M>,
    known: &mut Known,
    evaluations: &[Evaluation],
) -> bool {
    let wanted = functions(evaluations.iter().filter_map(|evaluation| {
        let evaluated = evaluation.outcome.as_ref().ok()?;
        let writes = evaluated.decision.desired != evaluated.observation.requested;
        (writes && evaluation.target.is_alias()).then_some(&evaluation.target)
    }));
    let mut reads = JoinSet::new();
    for function in wanted.iter().cloned() {
        let control = context.control.clone();
        reads.spawn(async move {
            let weighted = control.alias_weights(&function, Priority::Refresh).await;
            (function, weighted)
        });
    }
    while let Some(Ok((function, weighted))) = reads.join_next().await {
        match weighted {
            Ok(weighted) => known.set_weighted(&function, weighted),
            Err(error) => {
                tracing::warn!(function = %function.name, error = %error, "alias weights read failed; a weighted alias is refused by Lambda")
            }
        }
    }
    !wanted.is_empty()
}

/// Reads everything and decides for every target. Never writes.
pub async fn evaluate<L: LambdaApi, M: MetricsApi>(context: &Context<L, M>) -> Vec<Evaluation> {
    let now = context.clock.now();
    let ((mut known, series), histories) = tokio::join!(
        read_all(context, now),
        forecast_histories(context.metrics.as_ref(), &context.config.targets, now)
    );
    let reserve = context.config.daemon.account_reserve;
    // One-shot commands keep no state between runs: a target starts from its metric
    // history if it forecasts, afresh otherwise.
    let all = |known: &Known| {
        evaluate::evaluate_all(
            &context.config.targets,
            known,
            &series,
            reserve,
            |name| histories.get(name),
            now,
        )
    };
    let evaluations = all(&known);
    if read_weights_where_writing(context, &mut known, &evaluations).await {
        return all(&known);
    }
    evaluations
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
) -> Vec<(TargetName, Applied)> {
    let mut by_function: BTreeMap<FunctionId, Vec<(usize, Evaluation)>> = BTreeMap::new();
    for (index, evaluation) in evaluations.into_iter().enumerate() {
        by_function
            .entry(evaluation.target.function.clone())
            .or_default()
            .push((index, evaluation));
    }
    let mut tasks = JoinSet::new();
    let mut members: HashMap<tokio::task::Id, Vec<(usize, TargetName)>> = HashMap::new();
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

/// The states of the targets with a forecast, rebuilt from their metric history; a
/// target whose read failed is left out and decided reactively.
async fn forecast_histories<M: MetricsApi>(
    metrics: &M,
    targets: &[TargetConfig],
    now: chrono::DateTime<chrono::Utc>,
) -> HashMap<TargetName, PolicyState> {
    let forecasting: Vec<TargetConfig> = targets
        .iter()
        .filter(|target| target.keeps_history())
        .cloned()
        .collect();
    let mut states = HashMap::new();
    for batch in forecasting.chunks(series::HISTORY_TARGETS_PER_CALL) {
        states.extend(series::history(metrics, batch, now).await);
    }
    states
}

/// Reads one target afresh and decides at the current time: after a conflict was
/// waited out, the pass's datapoints, configs and `now` are old news. `previous` is the
/// state of the decision before, which carries the forecast's history.
async fn reevaluate<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    target: &TargetConfig,
    account_headroom: Option<u32>,
    previous: &PolicyState,
) -> Evaluation {
    let now = context.clock.now();
    let mut known = Known::default();
    let (configs, reserved, series) = tokio::join!(
        context.control.scan(&target.function, Priority::ReadBack),
        context.control.reserved(&target.function),
        series::fetch(context.metrics.as_ref(), [target], now)
    );
    record_function(
        &mut known,
        FunctionRead {
            function: target.function.clone(),
            configs,
            reserved,
        },
    );
    let series = series.unwrap_or_default();
    evaluate::evaluate(
        target,
        &known,
        series.get(&target.name),
        account_headroom,
        previous,
        now,
    )
}

async fn apply_one<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    evaluation: Evaluation,
    options: &ApplyOptions,
) -> Applied {
    let target = evaluation.target;
    let mut outcome = evaluation.outcome;
    let started = Instant::now();
    let mut state = WriteState::<Caps>::default();
    loop {
        let evaluated = match outcome {
            Ok(evaluated) => evaluated,
            Err(blocked) => {
                return Applied::Blocked {
                    why: blocked.to_string(),
                };
            }
        };
        let from = evaluated.observation.requested;
        let desired = evaluated.decision.desired;
        if desired == from {
            return Applied::Unchanged { capacity: from };
        }
        if options.dry_run {
            return Applied::WouldChange { from, to: desired };
        }
        let error = match context
            .control
            .write(&target, desired, write_priority(from, desired))
            .await
        {
            Ok(_) => {
                log_change(&target, from, desired, &evaluated.decision, 0);
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
        let retry = state.on_result(
            Err(&error),
            desired,
            evaluated.observation.caps,
            &options.backoff,
            Instant::now(),
            fastrand::f64(),
        );
        tracing::warn!(target = %target.name, error = %error, outcome = error.label(), retry = ?retry, "write failed");
        match retry {
            Some(Retry::After(wait)) => {
                if started.elapsed() + wait > options.deadline {
                    return Applied::Failed {
                        error: format!("{error} (gave up: the deadline would pass while waiting)"),
                    };
                }
                tokio::time::sleep(wait).await;
                outcome = Ok(evaluated);
            }
            Some(Retry::WhenSettled) => {
                settle(context, &target, options, started).await;
                if started.elapsed() > options.deadline {
                    return Applied::Failed {
                        error: format!("{error} (gave up: still in progress at the deadline)"),
                    };
                }
                // Decide again on what is there now: the desired value may have changed.
                outcome = reevaluate(
                    context,
                    &target,
                    evaluated.observation.caps.account_headroom,
                    &evaluated.decision.state,
                )
                .await
                .outcome;
            }
            Some(Retry::Never | Retry::GiveUp) | None => {
                return Applied::Failed {
                    error: error.to_string(),
                };
            }
        }
    }
}

/// Writes that raise capacity go first; lowering can wait.
pub fn write_priority(from: u32, to: u32) -> Priority {
    if to > from {
        Priority::Raise
    } else {
        Priority::Lower
    }
}

/// The one log line of an accepted capacity change, for `run --once` and the daemon.
/// `epoch` is the leader lease's fencing epoch; 0 without leader election.
pub fn log_change(target: &TargetConfig, from: u32, to: u32, decision: &Decision, epoch: u64) {
    tracing::info!(
        target = %target.name,
        from,
        to,
        epoch,
        reason = %decision.reason,
        trigger = decision.reason.label(),
        "capacity changed"
    );
}

/// Where an allocation stood when [`settle`] stopped reading.
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

    /// What a read-back means for the allocation.
    pub fn of(read: &Result<Option<crate::aws::ProvisionedConfig>, AwsError>) -> Settled {
        match read {
            Ok(None) => Settled::Deleted,
            Ok(Some(config)) => match config.status {
                AllocationStatus::InProgress => Settled::InProgress,
                AllocationStatus::Ready | AllocationStatus::None => Settled::Ready,
                AllocationStatus::Failed => Settled::Failed,
            },
            Err(_) => Settled::Unknown,
        }
    }
}

/// Reads the target's config back every `poll_interval` until it is no longer in
/// progress, or the target's deadline would pass before the next read.
async fn settle<L: LambdaApi, M>(
    context: &Context<L, M>,
    target: &TargetConfig,
    options: &ApplyOptions,
    started: Instant,
) -> Settled {
    let deadline = started + options.deadline;
    loop {
        let read = context.control.read_back(target).await;
        let settled = Settled::of(&read);
        match (&read, settled) {
            (Ok(Some(config)), Settled::Failed) => {
                tracing::error!(target = %target.name, reason = config.status_reason.as_deref().unwrap_or(""), "allocation FAILED");
                return settled;
            }
            (Err(error), _) => {
                tracing::warn!(target = %target.name, error = %error, "status read failed while waiting")
            }
            (_, Settled::InProgress) => {}
            _ => return settled,
        }
        if Instant::now() + options.poll_interval > deadline {
            return settled;
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::memory::{MemoryLambda, MemoryMetrics};

    #[tokio::test]
    async fn a_panicking_write_is_reported_for_its_targets_and_the_others_proceed() {
        let source = "[[target]]\nfunction = \"boom\"\nqualifier = \"live\"\nmin = 3\nmax = 10\n\
                      [[target]]\nfunction = \"calm\"\nqualifier = \"live\"\nmin = 3\nmax = 10\n";
        let config = crate::config::parse(source, std::path::Path::new("t.toml")).expect("valid");
        let lambda = MemoryLambda::default();
        lambda.panic_on_put("boom");
        let context = Context::new(config, lambda, MemoryMetrics::default(), 1000.0);
        let evaluations = evaluate(&context).await;
        let options = ApplyOptions {
            poll_interval: Duration::from_millis(10),
            deadline: Duration::from_secs(5),
            wait_for_ready: false,
            ..ApplyOptions::default()
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
