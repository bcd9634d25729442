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
//! budget and the one write course ([`WriteCourse`]); targets of one function are written one
//! after another, so a function never has two writes in flight.
//!
//! What it must not do: wait beyond each target's deadline, or write to a function
//! twice at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::runtime::state::overrides::OverrideList;
use tokio::time::Instant;

use crate::aws::{AwsError, ItemTable, LambdaApi, MetricsApi, ScalingApi};
use crate::clock::Clock;
use crate::config::{Config, FunctionId, TargetConfig, TargetName};
use crate::policy::{AllocationStatus, PolicyState};
use crate::runtime::course::{
    Backoff, Next, Outcome, ReadBacks, WriteCourse, log_change, write_priority,
};
use crate::runtime::drivers::handing::Records;
use crate::runtime::knowing::aas::{AasView, Standing, TakeoverOutcome};
use crate::runtime::knowing::evaluate::{self, Evaluation, SeriesByTarget};
use crate::runtime::knowing::known::Known;
use crate::runtime::knowing::series;
use crate::runtime::plane::budget::Priority;
use crate::runtime::plane::control::Control;

/// Shared clients and settings of one run.
pub struct Context<L, M> {
    pub control: Control<L>,
    pub metrics: Arc<M>,
    pub config: Arc<Config>,
    /// `Clock::System` unless a test says otherwise.
    pub clock: Clock,
    /// Operators' overrides, as read from their store (none without one).
    pub overrides: Arc<OverrideList>,
    /// What Application Auto Scaling manages: nothing is written before it is read.
    pub aas: Arc<AasView>,
}

impl<L, M> Clone for Context<L, M> {
    fn clone(&self) -> Self {
        Self {
            control: self.control.clone(),
            metrics: self.metrics.clone(),
            config: self.config.clone(),
            clock: self.clock,
            overrides: self.overrides.clone(),
            aas: self.aas.clone(),
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
                crate::runtime::plane::control::ONE_SHOT_GET_FUNCTION_RATE,
                &config,
                None,
            ),
            metrics: Arc::new(metrics),
            config: Arc::new(config),
            clock: Clock::System,
            overrides: Arc::default(),
            aas: Arc::default(),
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
struct FirstRead {
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
            FirstRead {
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
        series::fetch(
            metrics.as_ref(),
            &targets,
            now,
            crate::runtime::knowing::Reach::default()
        ),
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
    (known, series.targets.unwrap_or_default())
}

fn record_function(known: &mut Known, read: FirstRead) {
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

/// The targets whose decision would put a new capacity (above 0).
fn writing(evaluations: &[Evaluation]) -> impl Iterator<Item = &TargetConfig> {
    evaluations.iter().filter_map(|evaluation| {
        let evaluated = evaluation.outcome.as_ref().ok()?;
        let desired = evaluated.decision.desired;
        (desired > 0 && desired != evaluated.observation.requested).then_some(&evaluation.target)
    })
}

/// The weights of every function where a decision would write to an alias: Lambda
/// refuses provisioned concurrency on a weighted alias.
async fn read_weights_where_writing<L: LambdaApi, M>(
    context: &Context<L, M>,
    evaluations: &[Evaluation],
) -> Vec<(FunctionId, BTreeSet<String>)> {
    let wanted = functions(writing(evaluations).filter(|target| target.is_alias()));
    let mut reads = JoinSet::new();
    for function in wanted {
        let control = context.control.clone();
        reads.spawn(async move {
            let weighted = control.alias_weights(&function, Priority::Refresh).await;
            (function, weighted)
        });
    }
    let mut read = Vec::new();
    while let Some(Ok((function, weighted))) = reads.join_next().await {
        match weighted {
            Ok(weighted) => read.push((function, weighted)),
            Err(error) => {
                tracing::warn!(function = %function.name, error = %error, "alias weights read failed; a weighted alias is refused by Lambda")
            }
        }
    }
    read
}

/// Whether each target a decision would write to names a version with SnapStart on:
/// Lambda refuses provisioned concurrency there.
async fn read_snap_start_where_writing<L: LambdaApi, M>(
    context: &Context<L, M>,
    evaluations: &[Evaluation],
) -> Vec<(TargetConfig, bool)> {
    let mut reads = JoinSet::new();
    for target in writing(evaluations).cloned() {
        let control = context.control.clone();
        reads.spawn(async move {
            let on = control.snap_start(&target).await;
            (target, on)
        });
    }
    let mut read = Vec::new();
    while let Some(Ok((target, on))) = reads.join_next().await {
        match on {
            Ok(on) => read.push((target, on)),
            Err(error) => {
                tracing::warn!(target = %target.name, error = %error, "SnapStart read failed; a version with SnapStart refuses provisioned concurrency")
            }
        }
    }
    read
}

/// Reads everything and decides for every target. Never writes.
pub async fn evaluate<L: LambdaApi, M: MetricsApi>(context: &Context<L, M>) -> Vec<Evaluation> {
    let now = context.clock.now();
    // The current read first: a history read is long, and an emulator or a throttled
    // account could keep the current read waiting behind it until it timed out.
    let (mut known, series) = read_all(context, now).await;
    let histories =
        forecast_histories(context.metrics.as_ref(), &context.config.targets, now).await;
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
            &context.overrides,
            now,
        )
    };
    let evaluations = all(&known);
    let (weights, snap_start) = tokio::join!(
        read_weights_where_writing(context, &evaluations),
        read_snap_start_where_writing(context, &evaluations)
    );
    let read_more = !weights.is_empty() || !snap_start.is_empty();
    for (function, weighted) in weights {
        known.set_weighted(&function, weighted);
    }
    for (target, on) in snap_start {
        known.set_snap_start(&target, on);
    }
    if read_more {
        return all(&known);
    }
    evaluations
}

/// How writes are carried out.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub dry_run: bool,
    pub backoff: Backoff,
    /// How an allocation is read back after a write: the daemon's schedule, with the
    /// first wait `--poll-interval`.
    pub read_backs: ReadBacks,
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
            read_backs: ReadBacks::default(),
            deadline: Duration::from_secs(300),
            wait_for_ready: true,
        }
    }
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Unchanged {
        capacity: u32,
    },
    /// Dry run: the write that would have been made.
    WouldChange {
        from: u32,
        to: u32,
    },
    /// Lambda accepted the write; `outcome` is where the allocation ended (or stood at
    /// the deadline).
    Written {
        from: u32,
        to: u32,
        outcome: Outcome,
    },
    /// The write was not accepted: its last outcome, and why no more was tried.
    Failed {
        outcome: Outcome,
        why: &'static str,
    },
    /// The task carrying the write out failed.
    Lost {
        error: String,
    },
    Blocked {
        why: String,
    },
    /// Not pc-autoscaler's to write: Application Auto Scaling manages it.
    LeftAlone {
        why: String,
    },
}

impl Applied {
    /// Failed, blocked or allocated as FAILED: `run --once` exits non-zero, so a cron
    /// job notices.
    pub fn is_failure(&self) -> bool {
        match self {
            Applied::Written { outcome, .. } => outcome.is_failure(),
            Applied::Failed { .. } | Applied::Lost { .. } | Applied::Blocked { .. } => true,
            Applied::Unchanged { .. } | Applied::WouldChange { .. } | Applied::LeftAlone { .. } => {
                false
            }
        }
    }
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Unchanged { capacity } => write!(f, "unchanged at {capacity}"),
            Applied::WouldChange { from, to } => write!(f, "would change {from} -> {to} (dry run)"),
            Applied::Written { from, to, outcome } if outcome.is_failure() => {
                write!(f, "FAILED: changed {from} -> {to}, then {outcome}")
            }
            Applied::Written { from, to, outcome } => {
                write!(f, "changed {from} -> {to} ({outcome})")
            }
            Applied::Failed { outcome, why } => write!(f, "FAILED: {outcome} ({why})"),
            Applied::Lost { error } => write!(f, "FAILED: internal error: {error}"),
            Applied::Blocked { why } => write!(f, "BLOCKED: {why}"),
            Applied::LeftAlone { why } => write!(f, "left alone: {why}"),
        }
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
                        Applied::Lost {
                            error: format!("the write task failed ({error})"),
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
    for call in crate::runtime::knowing::history_calls(&forecasting) {
        states.extend(super::history::read(metrics, &call, now).await.states);
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
        series::fetch(
            context.metrics.as_ref(),
            [target],
            now,
            crate::runtime::knowing::Reach::default()
        )
    );
    record_function(
        &mut known,
        FirstRead {
            function: target.function.clone(),
            configs,
            reserved,
        },
    );
    let series = series.targets.unwrap_or_default();
    evaluate::evaluate(
        target,
        &known,
        (
            series.get(&target.name),
            context.overrides.for_target(target.name.as_str(), now),
        ),
        account_headroom,
        previous,
        now,
    )
}

/// Takes over from Application Auto Scaling every target the config says to, before
/// anything is written: what happened to each.
pub async fn take_over<L, M, S: ScalingApi, T: ItemTable>(
    context: &mut Context<L, M>,
    (scaling, records): (&S, &Records<T>),
) -> Vec<(TargetName, TakeoverOutcome)> {
    let now = context.clock.now();
    let mut aas = AasView::clone(&context.aas);
    let mut taken = Vec::new();
    for target in &context.config.targets {
        if let Standing::ToTakeOver { before } = aas.standing(target) {
            let outcome = records.take_over(scaling, target, before, now).await;
            aas.took_over(target, outcome.clone());
            taken.push((target.name.clone(), outcome));
        }
    }
    context.aas = Arc::new(aas);
    taken
}

/// One target's write course, carried out within its deadline: the same
/// [`WriteCourse`] the daemon drives, with the waits slept here.
async fn apply_one<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    evaluation: Evaluation,
    options: &ApplyOptions,
) -> Applied {
    let target = evaluation.target;
    match context.aas.standing(&target) {
        Standing::Ours => {}
        Standing::ToTakeOver { .. } if options.dry_run => {
            return Applied::LeftAlone {
                why: "would be taken over from Application Auto Scaling, then written (dry run)"
                    .into(),
            };
        }
        Standing::ToTakeOver { .. } | Standing::TakingOver => {
            return Applied::Blocked {
                why: "not taken over from Application Auto Scaling (see above): nothing written"
                    .into(),
            };
        }
        other => {
            return Applied::LeftAlone {
                why: other.to_string(),
            };
        }
    }
    let mut outcome = evaluation.outcome;
    let deadline = Instant::now() + options.deadline;
    let mut course = WriteCourse::default();
    loop {
        let evaluated = match outcome {
            Ok(evaluated) => evaluated,
            Err(blocked) => {
                return Applied::Blocked {
                    why: blocked.to_string(),
                };
            }
        };
        let (from, to) = (evaluated.observation.requested, evaluated.decision.desired);
        // A FAILED config that lacks what is wanted is written again, same value or not.
        if !evaluated.decision.changes(&evaluated.observation) {
            return Applied::Unchanged { capacity: from };
        }
        if options.dry_run {
            return Applied::WouldChange { from, to };
        }
        outcome =
            match write_once(context, &target, &evaluated, &mut course, options, deadline).await {
                Attempt::Ended(applied) => return applied,
                Attempt::Again => Ok(evaluated),
                // Decide again on what is there now: the desired value may have changed.
                Attempt::Reevaluate => {
                    let caps = evaluated.observation.caps;
                    reevaluate(
                        context,
                        &target,
                        caps.account_headroom,
                        &evaluated.decision.state,
                    )
                    .await
                    .outcome
                }
            };
    }
}

/// Where one write of `run --once` left its target.
enum Attempt {
    Ended(Applied),
    /// Send the same write again (its wait is over).
    Again,
    /// Another operation was under way and has settled: decide again.
    Reevaluate,
}

/// Sends one write and carries out what the course says of its answer.
async fn write_once<L: LambdaApi, M: MetricsApi>(
    context: &Context<L, M>,
    target: &TargetConfig,
    evaluated: &evaluate::Evaluated,
    course: &mut WriteCourse,
    options: &ApplyOptions,
    deadline: Instant,
) -> Attempt {
    let (from, to) = (evaluated.observation.requested, evaluated.decision.desired);
    let result = context
        .control
        .write(
            target,
            to,
            write_priority(evaluated.observation.usable(), to),
        )
        .await;
    if result.is_ok() {
        log_change(target, from, to, &evaluated.decision.reason, 0);
    }
    let (written, next) = course.after_write(
        result.as_ref().map(Option::as_ref),
        (to, evaluated.observation.caps),
        0,
        (&options.backoff, &options.read_backs),
        Instant::now(),
        fastrand::f64(),
    );
    if let Err(error) = &result {
        tracing::warn!(target = %target.name, error = %error, outcome = error.label(), next = ?next, "write failed");
    }
    let failed = |why| {
        Attempt::Ended(Applied::Failed {
            outcome: written.clone(),
            why,
        })
    };
    match next {
        Next::Done => Attempt::Ended(Applied::Written {
            from,
            to,
            outcome: written.clone(),
        }),
        Next::ReadBackAt(at) => {
            let outcome = if options.wait_for_ready {
                follow(context, target, course, options, at, deadline).await
            } else {
                written.clone()
            };
            Attempt::Ended(Applied::Written { from, to, outcome })
        }
        Next::RetryAt(at) if at > deadline => {
            failed("gave up: the deadline would pass while waiting")
        }
        Next::RetryAt(at) => {
            tokio::time::sleep_until(at).await;
            Attempt::Again
        }
        Next::Refused { .. } => failed("not sent again: Lambda refused the value"),
        Next::BackedOff { .. } => failed("gave up: it kept failing"),
        Next::ScanThenDecide => {
            wait_until_settled(context, target, options, deadline).await;
            if Instant::now() > deadline {
                return failed("gave up: still in progress at the deadline");
            }
            Attempt::Reevaluate
        }
    }
}

/// Follows an accepted write's allocation until it settles or the deadline would
/// pass before the next read-back: the outcome it ended with, or `IN_PROGRESS`.
async fn follow<L: LambdaApi, M>(
    context: &Context<L, M>,
    target: &TargetConfig,
    course: &mut WriteCourse,
    options: &ApplyOptions,
    mut at: Instant,
    deadline: Instant,
) -> Outcome {
    while at <= deadline {
        tokio::time::sleep_until(at).await;
        let read = context.control.read_back(target).await;
        if let Err(error) = &read {
            tracing::warn!(target = %target.name, error = %error, "status read failed while waiting");
        }
        match course.after_read_back(
            read.as_ref().map(Option::as_ref),
            &options.read_backs,
            Instant::now(),
            fastrand::f64(),
        ) {
            (Some(settled), _) => {
                if let Outcome::Failed { reason } = &settled.outcome {
                    tracing::error!(target = %target.name, reason = reason.as_deref().unwrap_or(""), "allocation FAILED");
                }
                return settled.outcome;
            }
            (None, Next::ReadBackAt(next)) => at = next,
            (None, _) => break,
        }
    }
    Outcome::InProgress
}

/// After a conflict: reads the target's config back on the read-back schedule until
/// no operation is in progress, or the deadline would pass.
async fn wait_until_settled<L: LambdaApi, M>(
    context: &Context<L, M>,
    target: &TargetConfig,
    options: &ApplyOptions,
    deadline: Instant,
) {
    for made in 0..options.read_backs.attempts {
        let read = context.control.read_back(target).await;
        let in_progress = read.as_ref().map_or(true, |config| {
            config
                .as_ref()
                .is_some_and(|config| config.status == AllocationStatus::InProgress)
        });
        let next = Instant::now() + options.read_backs.wait(made);
        if !in_progress || next > deadline {
            return;
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::memory::{MemoryLambda, MemoryMetrics};

    #[tokio::test]
    async fn a_panicking_write_is_reported_for_its_targets_and_the_others_proceed() {
        let source = "[[target]]\nfunction = \"boom\"\nqualifier = \"live\"\nmin = 3\nmax = 10\n\
                      [[target]]\nfunction = \"calm\"\nqualifier = \"live\"\nmin = 3\nmax = 10\n";
        let config = crate::config::parse(source, std::path::Path::new("t.toml")).expect("valid");
        let lambda = MemoryLambda::default();
        lambda.panic_on_put("boom");
        let mut context = Context::new(config, lambda, MemoryMetrics::default(), 1000.0);
        let mut aas = AasView::default();
        aas.read(Ok(Vec::new()), Ok(Default::default()));
        context.aas = Arc::new(aas);
        let evaluations = evaluate(&context).await;
        let options = ApplyOptions {
            deadline: Duration::from_secs(5),
            wait_for_ready: false,
            ..ApplyOptions::default()
        };
        let mut applied = apply(&context, evaluations, &options).await;
        applied.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(applied.len(), 2, "no target vanishes: {applied:?}");
        assert!(
            matches!(&applied[0], (name, Applied::Lost { .. }) if name == "boom:live"),
            "{applied:?}"
        );
        assert!(applied[0].1.is_failure());
        assert!(
            matches!(&applied[1], (name, Applied::Written { to: 3, .. }) if name == "calm:live"),
            "{applied:?}"
        );
    }
}
