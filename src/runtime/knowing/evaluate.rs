//! Feeding the policy: builds each target's `Observation` from what is known
//! ([`Known`]) and its metric series, and asks `policy::decide`. Shared by `plan`,
//! `run --once` and the daemon.
//!
//! Pure and synchronous: no requests, no clock (`now` is passed in). A target whose
//! state is not known is not decided; a failed read never becomes a scale-in (an
//! unreadable metric holds, an unknown cap limits nothing).
//!
//! What it must not do: send requests or read the clock, or decide a target whose state
//! is not known.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::known::Known;
use crate::aws::{MetricQuery, ProvisionedConfig, Series, SeriesStatus};
use crate::config::{MetricKind, TargetConfig, TargetName};
use crate::policy::overrides::Override;
use crate::policy::{
    self, AllocationStatus, Caps, Decision, MetricsRead, Observation, PolicyState,
};
use crate::runtime::state::overrides::OverrideList;

/// Why a target was not decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blocked {
    /// The alias routes traffic to two versions: Lambda refuses provisioned concurrency.
    WeightedAlias,
    /// The target's config could not be read.
    ReadFailed { error: String },
    /// The target's config has not been read yet.
    NotReadYet,
    /// Its version has SnapStart on: Lambda refuses provisioned concurrency.
    SnapStart,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::WeightedAlias => f.write_str(
                "alias has a weighted RoutingConfig; provisioned concurrency is not possible",
            ),
            Blocked::ReadFailed { error } => write!(f, "cannot read the current config: {error}"),
            Blocked::NotReadYet => f.write_str("its current config has not been read yet"),
            Blocked::SnapStart => f.write_str(
                crate::aws::RefusalCause::SnapStart
                    .remedy()
                    .unwrap_or_default(),
            ),
        }
    }
}

/// One target's evaluation.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub target: TargetConfig,
    /// `Err` when the target cannot be managed now.
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
    /// Whether this target was decided on fresh facts: its config known, and its
    /// metric read in full when it tracks one.
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

/// The metric query of a tracked target (`id` unique in the batch).
pub fn metric_query(target: &TargetConfig, id: String) -> Option<MetricQuery> {
    let tracking = target.tracking.as_ref()?;
    let lambda_metric = |name: &str| {
        let function = target.function.name.clone();
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
            period: MetricQuery::MINUTE,
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
            period: MetricQuery::MINUTE,
        },
    })
}

/// How far back a target's metric is read: its whole scale-in window, which also
/// reaches back by the staleness allowance (see `policy::tracking::window_start`).
pub fn read_window(target: &TargetConfig) -> TimeDelta {
    target
        .tracking
        .as_ref()
        .map_or(TimeDelta::zero(), |tracking| {
            tracking.scale_in_window + tracking.stale_after + TimeDelta::minutes(1)
        })
}

/// Series by target name. A tracked target without an entry could not be read.
pub type SeriesByTarget = HashMap<TargetName, Series>;

/// Decides one target from what is known. `account_headroom` is what the account's
/// unreserved pool has left for it.
pub fn evaluate(
    target: &TargetConfig,
    known: &Known,
    (series, overrides): (Option<&Series>, Vec<Override>),
    account_headroom: Option<u32>,
    previous: &PolicyState,
    now: DateTime<Utc>,
) -> Evaluation {
    Evaluation {
        target: target.clone(),
        outcome: evaluated(
            target,
            known,
            (series, overrides),
            account_headroom,
            previous,
            now,
        ),
    }
}

fn evaluated(
    target: &TargetConfig,
    known: &Known,
    (series, overrides): (Option<&Series>, Vec<Override>),
    account_headroom: Option<u32>,
    previous: &PolicyState,
    now: DateTime<Utc>,
) -> Result<Evaluated, Blocked> {
    let facts = known.function(&target.function);
    let Some(current) = known.config(target) else {
        return Err(match facts.and_then(|facts| facts.read_error.clone()) {
            Some(error) => Blocked::ReadFailed { error },
            None => Blocked::NotReadYet,
        });
    };
    if target.is_alias() && known.is_weighted(target) {
        return Err(Blocked::WeightedAlias);
    }
    if known.has_snap_start(target) {
        return Err(Blocked::SnapStart);
    }
    let current = current.cloned();
    let reserved = facts.and_then(|facts| facts.reserved).flatten();
    let reserved_available = reserved.map(|reserved| {
        let others: u32 = facts
            .and_then(|facts| facts.configs.as_ref())
            .into_iter()
            .flat_map(super::known::Configs::iter)
            .filter(|(qualifier, _)| *qualifier != target.qualifier.as_str())
            .map(|(_, config)| config.requested)
            .sum();
        reserved.saturating_sub(others)
    });
    // A function with reserved concurrency draws on it, not on the account's pool;
    // one whose reserved concurrency is unknown is not limited by the pool either.
    let draws_on_pool = facts.and_then(|facts| facts.reserved) == Some(None);
    let account_headroom = account_headroom.filter(|_| draws_on_pool);

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
        requested: current.as_ref().map_or(0, |config| config.requested),
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
        overrides,
    };
    let decision = policy::decide(target, &observation, previous, now);
    Ok(Evaluated {
        observation,
        config: current,
        decision,
        metric_status,
    })
}

/// One pass over targets, decided one at a time in config order. Increases decided
/// earlier in the pass come out of the account headroom of the targets after them, so
/// one pass never promises the same unreserved concurrency twice.
///
/// The daemon carries out each evaluation before the next is made, so a pass over
/// 5,000 targets never holds 5,000 evaluations at once.
pub struct Pass {
    headroom: Option<u32>,
}

impl Pass {
    pub fn new(known: &Known, account_reserve: u32) -> Self {
        Pass {
            headroom: known.account_headroom(account_reserve),
        }
    }

    /// Decides `target` with the state its last decision handed on, where the caller
    /// keeps one (the daemon does, for targets with a forecast); others start afresh.
    pub fn decide(
        &mut self,
        target: &TargetConfig,
        known: &Known,
        (series, overrides): (Option<&Series>, Vec<Override>),
        previous: Option<&PolicyState>,
        now: DateTime<Utc>,
    ) -> Result<Evaluated, Blocked> {
        let fresh = PolicyState::default();
        let outcome = evaluated(
            target,
            known,
            (series, overrides),
            self.headroom,
            previous.unwrap_or(&fresh),
            now,
        );
        if let (Ok(evaluated), Some(left)) = (&outcome, self.headroom.as_mut())
            && evaluated.observation.caps.account_headroom.is_some()
        {
            let increase = evaluated
                .decision
                .desired
                .saturating_sub(evaluated.observation.requested);
            *left = left.saturating_sub(increase);
        }
        outcome
    }
}

/// Decides every target in order, as one [`Pass`].
pub fn evaluate_all<'a, 's>(
    targets: impl IntoIterator<Item = &'a TargetConfig>,
    known: &Known,
    series: &SeriesByTarget,
    account_reserve: u32,
    previous: impl Fn(&TargetName) -> Option<&'s PolicyState>,
    overrides: &OverrideList,
    now: DateTime<Utc>,
) -> Vec<Evaluation> {
    let mut pass = Pass::new(known, account_reserve);
    targets
        .into_iter()
        .map(|target| {
            let outcome = pass.decide(
                target,
                known,
                (
                    series.get(&target.name),
                    overrides.for_target(target.name.as_str(), now),
                ),
                previous(&target.name),
                now,
            );
            Evaluation {
                target: target.clone(),
                outcome,
            }
        })
        .collect()
}
