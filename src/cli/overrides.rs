//! `pc-autoscaler override`: set, list and clear operators' overrides in their store,
//! each request checked (`runtime::state::overrides::check`) before it is kept. What it
//! must not do: decide what an override means (the policy does).

use crate::aws;
use crate::config::Config;

/// The override store `config` names, if any.
pub async fn override_store(
    config: &Config,
) -> Option<crate::runtime::state::overrides::store::OverrideStore<aws::dynamodb::DynamoState>> {
    let table = match &config.leader {
        Some(leader) => Some(std::sync::Arc::new(
            aws::Connect::state(&aws::Sdk, &config.aws, leader).await,
        )),
        None => None,
    };
    crate::runtime::state::overrides::store::OverrideStore::for_config(config, table)
}

/// What `pc-autoscaler override` was asked.
#[derive(Debug, Clone)]
pub enum OverrideCommand {
    Set(crate::runtime::state::overrides::SetRequest),
    List,
    /// An override's id, or a target: every override set on that target by name.
    Clear(String),
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
    use crate::runtime::state::overrides;
    let store = override_store(config).await.ok_or_else(|| {
        OverrideFailure::Invalid(
            "overrides are kept in the lease table (`[leader]`) or in `daemon.state_directory`; this config has neither".into(),
        )
    })?;
    match command {
        OverrideCommand::Set(mut request) => {
            // In the lease table, the setter is the caller's AWS identity.
            if let Some(leader) = &config.leader {
                request.by =
                    match aws::sts::caller_arn(&config.aws, leader.endpoint_url.as_deref()).await {
                        Ok(arn) => arn,
                        Err(error) => {
                            format!("{} (AWS identity unknown: {})", request.by, error.label())
                        }
                    };
            }
            let kept =
                overrides::check(request, config, now, id).map_err(OverrideFailure::Invalid)?;
            within_reserved(config, &kept).await?;
            let line = format!("set {}\n", override_line(&kept, now));
            store
                .change(|list| {
                    list.drop_ended(now);
                    if list.overrides.len() >= overrides::MAX_OVERRIDES {
                        return Err(format!(
                            "{} overrides are in force, the most kept; clear some first",
                            list.overrides.len()
                        ));
                    }
                    list.overrides.push(kept.clone());
                    Ok(())
                })
                .await
                .map_err(OverrideFailure::Store)?;
            Ok(line)
        }
        OverrideCommand::List => {
            let (list, _) = store.load().await.map_err(OverrideFailure::Store)?;
            let lines: String = list
                .overrides
                .iter()
                .filter(|one| now < one.until)
                .map(|one| override_line(one, now) + "\n")
                .collect();
            Ok(if lines.is_empty() {
                format!("no override in force ({store})\n")
            } else {
                lines
            })
        }
        OverrideCommand::Clear(named) => {
            let cleared = store
                .change(|list| Ok(list.clear(&named)))
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

/// Refuses a pin or floor above the reserved concurrency of a function it covers
/// (`GetFunction`, on its own limit, not the shared 15/s). A function whose reserved
/// concurrency cannot be read is let through: the policy caps it there anyway.
async fn within_reserved(
    config: &Config,
    kept: &crate::runtime::state::overrides::StoredOverride,
) -> Result<(), OverrideFailure> {
    use crate::policy::overrides::OverrideKind;
    let (OverrideKind::Pin(value) | OverrideKind::Floor(value)) =
        crate::runtime::state::overrides::parse_kind(&kept.kind)
            .map_err(OverrideFailure::Invalid)?
    else {
        return Ok(());
    };
    let covered: Vec<_> = config
        .targets
        .iter()
        .filter(|target| kept.scope.covers(target.name.as_str()))
        .collect();
    for key in config.shards() {
        let in_shard = covered.iter().copied().filter(|target| target.shard == key);
        let functions = crate::runtime::drivers::once::functions(in_shard);
        if functions.is_empty() {
            continue;
        }
        let (settings, account) = config.shard_access(&key);
        let lambda = aws::connect(&settings, account).await.lambda;
        let control = crate::runtime::plane::control::Control::new(
            lambda,
            config.daemon.max_read_rate,
            crate::runtime::plane::control::ONE_SHOT_GET_FUNCTION_RATE,
            config,
            None,
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
    Ok(())
}

/// One override for people: id, scope, kind, time left, who and why (escaped: the
/// store is outside input).
pub fn override_line(
    one: &crate::runtime::state::overrides::StoredOverride,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
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
