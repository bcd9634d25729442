//! `audit`'s reads of one account and Region, read only, within the one-shot read rate
//! on Lambda's shared limit (through [`Control`], which also honours throttles): every
//! function (`ListFunctions`), its configs (`ListProvisionedConcurrencyConfigs`, one a
//! function), and for the functions that have any, their aliases and reserved
//! concurrency; Application Auto Scaling's Lambda targets; and each config's
//! CloudWatch history over the window, one batched `GetMetricData` a config.
//!
//! What it must not do: judge anything (`crate::audit` does), write anything, or stop
//! at one failed read: what could not be read is said in [`AccountRead::problems`].

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::JoinSet;

use crate::audit::price::Price;
use crate::audit::{ConfigReport, History, Observed, judge};
use crate::aws::{
    Aliases, AwsError, FunctionConfigs, FunctionSummary, LambdaApi, MetricQuery, MetricsApi,
    ScalableTarget, ScalingApi,
};
use crate::config::FunctionId;
use crate::runtime::plane::budget::Priority;
use crate::runtime::plane::control::Control;
use crate::runtime::plane::listing::list_functions;

/// Lambda reads in flight at once; each still waits for its turn in the budget.
const IN_FLIGHT: usize = 8;

/// What was read, judged config by config as it came (each history is dropped once
/// judged), and what could not be read.
#[derive(Debug, Default)]
pub struct AccountRead {
    pub configs: Vec<ConfigReport>,
    /// Functions listed in all.
    pub functions: usize,
    pub problems: Vec<String>,
}

fn id(name: &str) -> FunctionId {
    FunctionId {
        name: name.to_owned(),
        account: None,
        reference: name.to_owned(),
    }
}

/// One function's reads: its configs and, when it has any, aliases and reserved.
struct FunctionRead {
    summary: FunctionSummary,
    configs: Result<FunctionConfigs, AwsError>,
    aliases: Result<Aliases, AwsError>,
    reserved: Result<Option<u32>, AwsError>,
}

/// Reads the account over the `days` before `now` and judges each config at `prices`;
/// `progress` hears each step.
pub async fn read<L: LambdaApi, M: MetricsApi, S: ScalingApi>(
    control: &Control<L>,
    (metrics, scaling): (&M, &S),
    (days, now): (u32, DateTime<Utc>),
    prices: &Price,
    progress: &mut dyn FnMut(String),
) -> Result<AccountRead, AwsError> {
    let functions = list_functions(control, |count| {
        progress(format!("{count} functions listed"))
    })
    .await?;
    let mut read = AccountRead {
        functions: functions.len(),
        ..AccountRead::default()
    };
    progress(format!(
        "{} functions; reading their configs",
        functions.len()
    ));
    let reads = read_functions(control, functions).await;
    let scalable = scalable_targets(scaling, &mut read.problems).await;
    let count: usize = reads
        .iter()
        .map(|one| one.configs.as_ref().map_or(0, FunctionConfigs::len))
        .sum();
    progress(format!(
        "{count} configs; reading {days} days of CloudWatch history"
    ));
    let window = (now - TimeDelta::days(i64::from(days)), now);
    for one in reads {
        observe(one, (metrics, &scalable, window), prices, &mut read).await;
    }
    Ok(read)
}

/// Application Auto Scaling's Lambda targets, by function and qualifier.
type Scalable = BTreeMap<(String, String), ScalableTarget>;

/// Application Auto Scaling's Lambda targets, by function and qualifier; none, with
/// the problem said, when they cannot be read.
async fn scalable_targets<S: ScalingApi>(scaling: &S, problems: &mut Vec<String>) -> Scalable {
    match scaling.lambda_targets().await {
        Ok(targets) => crate::aws::by_function(targets),
        Err(error) => {
            problems.push(format!(
                "Application Auto Scaling could not be read ({error}); no config is flagged as managed by it"
            ));
            BTreeMap::new()
        }
    }
}

/// Each config of one function's reads, with its history over `window`, judged into
/// `read`.
async fn observe<M: MetricsApi>(
    one: FunctionRead,
    (metrics, scalable, (start, now)): (&M, &Scalable, (DateTime<Utc>, DateTime<Utc>)),
    prices: &Price,
    read: &mut AccountRead,
) {
    let name = one.summary.name.clone();
    let configs = match one.configs {
        Ok(configs) => configs,
        Err(error) => {
            read.problems
                .push(format!("{name}: its configs could not be read: {error}"));
            return;
        }
    };
    if configs.is_empty() {
        return;
    }
    let aliases = one.aliases.unwrap_or_else(|error| {
        read.problems
            .push(format!("{name}: its aliases could not be read: {error}"));
        Aliases::new()
    });
    let reserved = one.reserved.unwrap_or_else(|error| {
        read.problems.push(format!(
            "{name}: its reserved concurrency could not be read: {error}"
        ));
        None
    });
    let function_requested = configs.values().map(|config| config.requested).sum();
    for (qualifier, config) in configs {
        let history = match history(metrics, &name, &qualifier, (start, now)).await {
            Ok(history) => history,
            Err(error) => {
                read.problems.push(format!(
                    "{name}:{qualifier}: its history could not be read: {error}"
                ));
                History::default()
            }
        };
        let observed = Observed {
            function: one.summary.clone(),
            scalable_target: scalable.get(&(name.clone(), qualifier.clone())).cloned(),
            qualifier,
            config,
            function_requested,
            reserved,
            aliases: aliases.clone(),
            history,
        };
        read.configs.push(judge(&observed, prices));
    }
}

/// Each function's configs, and the aliases and reserved concurrency of those that
/// have any, a few functions at a time, in the order listed.
async fn read_functions<L: LambdaApi>(
    control: &Control<L>,
    functions: Vec<FunctionSummary>,
) -> Vec<FunctionRead> {
    let total = functions.len();
    let mut waiting = functions.into_iter().enumerate();
    let mut running = JoinSet::new();
    let mut done: Vec<Option<FunctionRead>> = (0..total).map(|_| None).collect();
    loop {
        while running.len() < IN_FLIGHT
            && let Some((index, summary)) = waiting.next()
        {
            let control = control.clone();
            running.spawn(async move {
                let function = id(&summary.name);
                let configs = control.scan(&function, Priority::DriftScan).await;
                let has_configs = configs.as_ref().is_ok_and(|configs| !configs.is_empty());
                let (aliases, reserved) = if has_configs {
                    tokio::join!(
                        control.aliases_by_name(&summary.name, Priority::Refresh),
                        control.reserved(&function)
                    )
                } else {
                    (Ok(Aliases::new()), Ok(None))
                };
                (
                    index,
                    FunctionRead {
                        summary,
                        configs,
                        aliases,
                        reserved,
                    },
                )
            });
        }
        match running.join_next().await {
            Some(Ok((index, read))) => done[index] = Some(read),
            // A lost read leaves its function out; the others are reported.
            Some(Err(_)) => {}
            None => return done.into_iter().flatten().collect(),
        }
    }
}

/// The four series of one config, a slot a minute over `[start, end)`.
pub async fn history<M: MetricsApi>(
    metrics: &M,
    function: &str,
    qualifier: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<History, AwsError> {
    let dimensions: BTreeMap<String, String> = [
        ("FunctionName".to_owned(), function.to_owned()),
        ("Resource".to_owned(), format!("{function}:{qualifier}")),
    ]
    .into_iter()
    .collect();
    let query = |id: &str, name: &str, stat: &str| MetricQuery {
        id: id.to_owned(),
        namespace: "AWS/Lambda".to_owned(),
        name: name.to_owned(),
        dimensions: dimensions.clone(),
        stat: stat.to_owned(),
        period: MetricQuery::MINUTE,
    };
    let queries = [
        query("concurrency", "ConcurrentExecutions", "Maximum"),
        query(
            "utilization",
            "ProvisionedConcurrencyUtilization",
            "Maximum",
        ),
        query("provisioned", "ProvisionedConcurrencyInvocations", "Sum"),
        query(
            "spillover",
            "ProvisionedConcurrencySpilloverInvocations",
            "Sum",
        ),
    ];
    let mut batch = metrics.fetch(&queries, start, end).await?;
    let mut points = |id: &str| {
        batch
            .series
            .remove(id)
            .map(|series| series.points)
            .unwrap_or_default()
    };
    let minutes = usize::try_from((end - start).num_minutes()).unwrap_or(0);
    let mut concurrency = vec![None; minutes];
    for point in points("concurrency") {
        let minute = (point.timestamp - start).num_minutes();
        if let Some(slot) = usize::try_from(minute)
            .ok()
            .and_then(|minute| concurrency.get_mut(minute))
        {
            *slot = Some(point.value);
        }
    }
    let sum = |points: Vec<crate::policy::Datapoint>| points.iter().map(|point| point.value).sum();
    Ok(History {
        start,
        concurrency,
        utilization: points("utilization")
            .iter()
            .map(|point| point.value)
            .collect(),
        provisioned_invocations: sum(points("provisioned")),
        spillover_invocations: sum(points("spillover")),
    })
}
