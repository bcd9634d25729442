//! `pc-autoscaler override`: set, list and clear operators' overrides in their store,
//! each request checked (`runtime::state::overrides::check`) before it is kept. What it
//! must not do: decide what an override means (the policy does).

use crate::aws;
use crate::config::{Config, TargetConfig};
use crate::policy::overrides::OverrideKind;
use crate::runtime::drivers::once::functions;
use crate::runtime::plane::control::{Control, ONE_SHOT_GET_FUNCTION_RATE};
use crate::runtime::state::overrides::OverrideList;
use crate::runtime::state::overrides::{self, SetRequest, StoredOverride, parse_kind};
use crate::runtime::state::store::{Document, Store};

/// Where `config` keeps documents of `D`'s kind (overrides, handover records), if
/// anywhere.
pub async fn document_store<D: Document>(
    config: &Config,
) -> Option<Store<aws::dynamodb::DynamoState>> {
    let table = match &config.leader {
        Some(leader) => Some(std::sync::Arc::new(
            aws::Connect::state(&aws::Sdk, &config.aws, leader).await,
        )),
        None => None,
    };
    Store::for_config::<D>(config, table)
}

/// What `pc-autoscaler override` was asked.
#[derive(Debug, Clone)]
pub enum OverrideCommand {
    Set(crate::runtime::state::overrides::SetRequest),
    List,
    /// An override's id, or a target: every override set on that target by name.
    Clear(String),
    /// Every override, whatever the store holds.
    ClearAll,
}

/// Why an override command failed: bad input (exit 2, nothing written) or a store
/// that could not be read or written (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum OverrideFailure {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Store(String),
}

/// Carries out `command` on the store `config` names, at `now`; returns the text to
/// print. `id` names a new override.
pub async fn overrides(
    config: &Config,
    command: OverrideCommand,
    now: chrono::DateTime<chrono::Utc>,
    id: String,
) -> Result<String, OverrideFailure> {
    let store = document_store::<OverrideList>(config).await.ok_or_else(|| {
        OverrideFailure::Invalid(
            "overrides are kept in the lease table (`[leader]`) or in `daemon.state_directory`; this config has neither".into(),
        )
    })?;
    match command {
        OverrideCommand::Set(request) => set(config, &store, request, (now, id)).await,
        OverrideCommand::List => {
            let (list, _) = store
                .load::<OverrideList>()
                .await
                .map_err(OverrideFailure::Store)?;
            let lines: String = list
                .overrides
                .iter()
                .filter(|one| now < one.until)
                .map(|one| match one.refusal(now) {
                    None => override_line(one, now) + "\n",
                    Some(why) => format!(
                        "{}  (not applied: {})\n",
                        override_line(one, now),
                        crate::escape::printable(&why)
                    ),
                })
                .collect();
            Ok(if lines.is_empty() {
                format!("no override in force ({store})\n")
            } else {
                lines
            })
        }
        OverrideCommand::ClearAll => {
            // Without reading the list first: it empties a store that no longer reads.
            let empty = <OverrideList as crate::runtime::state::store::Document>::empty();
            store
                .replace(&empty)
                .await
                .map_err(OverrideFailure::Store)?;
            Ok("cleared every override\n".into())
        }
        OverrideCommand::Clear(named) => {
            let cleared = store
                .change(|list: &mut OverrideList| Ok(list.clear(&named)))
                .await
                .map_err(OverrideFailure::Store)?;
            if cleared == 0 {
                return Err(OverrideFailure::Invalid(format!(
                    "no override has the id or the target `{}`",
                    crate::escape::printable(&named)
                )));
            }
            Ok(format!("cleared {cleared}\n"))
        }
    }
}

/// `override set`: checked against every target the config has, kept in `store`.
async fn set(
    config: &Config,
    store: &Store<aws::dynamodb::DynamoState>,
    mut request: SetRequest,
    (now, id): (chrono::DateTime<chrono::Utc>, String),
) -> Result<String, OverrideFailure> {
    // In the lease table, the setter is the caller's AWS identity.
    if let Some(leader) = &config.leader {
        request.by = match aws::sts::caller_arn(&config.aws, leader.endpoint_url.as_deref()).await {
            Ok(arn) => arn,
            Err(error) => {
                format!("{} (AWS identity unknown: {})", request.by, error.label())
            }
        };
    }
    let (targets, unread) = crate::cli::once::every_target(config).await;
    let covers_any = (targets.iter()).any(|target| request.scope.covers(&target.name));
    if !covers_any && !unread.is_empty() {
        // Not known to be wrong: what the selectors would find was not read.
        return Err(OverrideFailure::Store(format!(
            "{} covers no target found; not every selector could be read: {}",
            request.scope,
            unread.join("; ")
        )));
    }
    let kept = overrides::check(request, &targets, now, id).map_err(OverrideFailure::Invalid)?;
    let note = within_reserved(config, &targets, &kept).await?;
    let full = store
        .change(|list: &mut OverrideList| {
            list.drop_ended(now);
            if list.overrides.len() >= overrides::MAX_OVERRIDES {
                return Ok(Some(list.overrides.len()));
            }
            list.overrides.push(kept.clone());
            Ok(None)
        })
        .await
        .map_err(OverrideFailure::Store)?;
    if let Some(count) = full {
        return Err(OverrideFailure::Invalid(format!(
            "{count} overrides are in force, the most kept; clear some first"
        )));
    }
    Ok(format!("set {}\n{note}", override_line(&kept, now)))
}

/// Functions whose reserved concurrency `override set` reads at most: each is one
/// `GetFunction`, and an incident is no time to wait for thousands of them.
const MAX_RESERVED_READS: usize = 20;

/// Refuses a pin or floor above the reserved concurrency of a function it covers
/// (`GetFunction`, on its own limit, not the shared 15/s), when it covers at most
/// [`MAX_RESERVED_READS`] functions; returns a note when it covers more. A function
/// whose reserved concurrency cannot be read is let through: the policy caps the
/// override there anyway, as it does for every function not read here.
async fn within_reserved(
    config: &Config,
    targets: &[TargetConfig],
    kept: &StoredOverride,
) -> Result<String, OverrideFailure> {
    let (OverrideKind::Pin(value) | OverrideKind::Floor(value)) =
        parse_kind(&kept.kind).map_err(OverrideFailure::Invalid)?
    else {
        return Ok(String::new());
    };
    let covered: Vec<&TargetConfig> = targets
        .iter()
        .filter(|target| kept.scope.covers(target.name.as_str()))
        .collect();
    let count = functions(covered.iter().copied()).len();
    if count > MAX_RESERVED_READS {
        return Ok(format!(
            "note: the reserved concurrency of the {count} functions it covers was not read; the daemon holds each function's overrides within it\n"
        ));
    }
    for key in config.shards() {
        let in_shard = covered.iter().copied().filter(|target| target.shard == key);
        let functions = functions(in_shard);
        if functions.is_empty() {
            continue;
        }
        let (settings, account) = config.shard_access(&key);
        let lambda = aws::connect(&settings, account).await.lambda;
        let control = Control::new(
            lambda,
            config.daemon.max_read_rate,
            ONE_SHOT_GET_FUNCTION_RATE,
            config,
            None,
        )
        .in_shard(
            account.map(|account| account.account_id.clone()),
            settings.region.clone(),
        );
        for function in functions {
            match control.reserved(&function).await {
                Ok(Some(reserved)) if value > reserved => {
                    return Err(OverrideFailure::Invalid(format!(
                        "{} is above the reserved concurrency of function `{}` ({reserved})",
                        kept.kind,
                        crate::escape::printable(&function.name)
                    )));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(function = %function.name, error = %error, "reserved concurrency could not be read; the policy caps the override there")
                }
            }
        }
    }
    Ok(String::new())
}

/// One override for people: id, scope, kind, time left, who and why (escaped: the
/// store is outside input).
pub fn override_line(one: &StoredOverride, now: chrono::DateTime<chrono::Utc>) -> String {
    use crate::escape::printable;
    let left = (one.until - now).num_minutes().max(0);
    format!(
        "{}  {}  {}  until {} ({}h {:02}m left)  by {}: {}",
        printable(&one.id),
        printable(&one.scope.to_string()),
        printable(&one.kind),
        one.until.format("%Y-%m-%d %H:%M UTC"),
        left / 60,
        left % 60,
        printable(&one.by),
        printable(&one.reason),
    )
}
