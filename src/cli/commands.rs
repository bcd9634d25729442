//! The AWS-facing commands: `plan` (one evaluation, no writes) and `run --once` (one
//! evaluation, carried out). They connect, call `runtime::drivers::once` and render with `plan`.

use std::time::Duration;

use crate::aws;
use crate::cli::plan;
use crate::config::{Config, ShardKey};
use crate::runtime::course::ReadBacks;
use crate::runtime::discovery::{Skipped, Written};
use crate::runtime::drivers::once::{self, ApplyOptions, Context};
use crate::runtime::knowing::evaluate::Evaluation;
use crate::runtime::knowing::evaluate::nothing_read;

type SdkContext = Context<aws::SdkLambda, aws::SdkMetrics>;

/// What one-shot commands work on: a context per shard (its targets written out and
/// those its selectors found live), what the selectors skipped, and why the
/// overrides could not be read, if they could not.
struct Contexts {
    shards: Vec<SdkContext>,
    /// The shard of each context.
    keys: Vec<ShardKey>,
    skipped: Vec<(ShardKey, Skipped)>,
    unread: Option<String>,
}

/// A context per shard of `config`, with the overrides in force read from their store.
async fn contexts(mut config: Config, read_rate: Option<f64>) -> Contexts {
    let (overrides, unread) = match override_store(&config).await {
        Some(store) => match store.load().await {
            Ok((list, _)) => (list, None),
            Err(why) => (Default::default(), Some(why)),
        },
        None => (Default::default(), None),
    };
    let overrides = std::sync::Arc::new(overrides);
    let rate = read_rate.unwrap_or(config.daemon.max_read_rate);
    let written = Written::of(&config.targets);
    let mut contexts = Contexts {
        shards: Vec::new(),
        keys: Vec::new(),
        skipped: Vec::new(),
        unread,
    };
    // Each shard's config holds its own targets only: the others are not copied.
    let keys = config.shards();
    let mut targets = std::mem::take(&mut config.targets);
    for key in keys {
        let (settings, account) = config.shard_access(&key);
        let clients = aws::connect(&settings, account).await;
        let (own, rest) = targets.into_iter().partition(|target| target.shard == key);
        targets = rest;
        let mut shard_config = config.clone();
        shard_config.targets = own;
        let mut context = Context::new(shard_config, clients.lambda, clients.metrics, rate);
        context.control = context.control.in_shard(
            account.map(|account| account.account_id.clone()),
            settings.region.clone(),
        );
        context.overrides = overrides.clone();
        let selectors: Vec<_> = config.selectors_of(&key).cloned().collect();
        if !selectors.is_empty() {
            let found = crate::runtime::discovery::reads::read(
                &context.control,
                &clients.tagging,
                &selectors,
                config.daemon.discovery_rate,
                &Default::default(),
            )
            .await;
            let resolution =
                crate::runtime::discovery::resolve(&config, &key, &written, &found, &[]);
            for (selector, why) in resolution.failed {
                let reason = format!("the selector could not be read: {why}");
                let function = "*".to_owned();
                contexts.skipped.push((
                    key.clone(),
                    Skipped {
                        function,
                        selector,
                        reason,
                    },
                ));
            }
            contexts.skipped.extend(
                resolution
                    .skipped
                    .into_iter()
                    .map(|skip| (key.clone(), skip)),
            );
            let mut with_found = Config::clone(&context.config);
            with_found.targets.extend(resolution.targets);
            context.config = std::sync::Arc::new(with_found);
        }
        contexts.shards.push(context);
        contexts.keys.push(key);
    }
    contexts
}

/// Every shard's evaluations, shard after shard.
async fn evaluate_all(contexts: &Contexts) -> Vec<(usize, Vec<Evaluation>)> {
    let mut all = Vec::new();
    for (index, context) in contexts.shards.iter().enumerate() {
        all.push((index, once::evaluate(context).await));
    }
    all
}

/// The override store `config` names, if any.
async fn override_store(
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

/// One evaluation against AWS, no writes: a table, or JSON with `json`. The flag is
/// true when nothing could be read: every target blocked or its metrics unreadable.
/// `read_rate` overrides `daemon.max_read_rate`.
pub async fn plan(config: Config, json: bool, read_rate: Option<f64>) -> (String, bool) {
    let contexts = contexts(config, read_rate).await;
    let mut failures = Vec::new();
    let mut evaluations: Vec<Evaluation> = Vec::new();
    for (index, mut shard) in evaluate_all(&contexts).await {
        if let Some(line) = plan::shard_failure(&contexts.keys[index], &mut shard) {
            failures.push(line);
        }
        evaluations.extend(shard);
    }
    let nothing_read = nothing_read(&evaluations);
    let rows = plan::rows(&evaluations);
    let Some(context) = contexts.shards.first() else {
        return ("no shard: nothing to plan\n".to_owned(), true);
    };
    let unread = contexts.unread.clone();
    let output = if json {
        serde_json::to_string_pretty(&rows).expect("plan rows serialize: plain strings and numbers")
            + "\n"
    } else {
        let mut table = plan::render(&rows);
        for line in failures {
            table.push_str(&format!("{}\n", crate::escape::printable(&line)));
        }
        for (shard, skip) in &contexts.skipped {
            table.push_str(&format!(
                "skipped {shard} {}/{}: {}\n",
                crate::escape::printable(&skip.selector),
                crate::escape::printable(&skip.function),
                crate::escape::printable(&skip.reason)
            ));
        }
        let now = context.clock.now();
        for one in context
            .overrides
            .overrides
            .iter()
            .filter(|one| now < one.until)
        {
            table.push_str(&format!("override {}\n", override_line(one, now)));
        }
        if let Some(why) = unread {
            table.push_str(&format!(
                "warning: {}; decided without overrides\n",
                crate::escape::printable(&why)
            ));
        }
        table.push_str(&crate::cli::check::budget_line(&context.config));
        table.push('\n');
        if let Some(warning) = crate::cli::check::budget_warning(&context.config) {
            table.push_str(&format!("warning: {warning}\n"));
        }
        table
    };
    (output, nothing_read)
}

/// Options of `run --once`.
#[derive(Debug, Clone)]
pub struct OnceOptions {
    /// Decide and report, never write (also set by `daemon.dry_run`).
    pub dry_run: bool,
    /// How long one target may take: writes, retries and waiting for READY; `None`:
    /// `ApplyOptions`'s default.
    pub wait: Option<Duration>,
    /// The first wait before an allocation's status is read back (each later one
    /// waits twice as long, up to 30 s); `None`: 2 s, as the daemon.
    pub poll_interval: Option<Duration>,
    /// Lambda requests per second; `None`: `daemon.max_read_rate`.
    pub read_rate: Option<f64>,
}

/// One evaluation, carried out. Returns the report and whether any target failed.
pub async fn run_once(config: Config, options: &OnceOptions) -> (String, bool) {
    let dry_run = options.dry_run || config.daemon.dry_run;
    if config.leader.is_some() && !dry_run {
        // A one-shot run is an operator's deliberate act; it does not contend for the
        // lease, so it must say that its writes go beside the leader's.
        tracing::warn!(
            "`run --once` does not take the leader lease: its writes go beside those of the copy that leads; use --dry-run while copies run"
        );
    }
    let contexts = contexts(config, options.read_rate).await;
    if let Some(why) = &contexts.unread {
        // A pause it cannot see must not be undone: nothing is written.
        return (
            format!(
                "error: {}; nothing was written\n",
                crate::escape::printable(why)
            ),
            true,
        );
    }
    let evaluated = evaluate_all(&contexts).await;
    let nothing_read = nothing_read(
        &evaluated
            .iter()
            .flat_map(|(_, evaluations)| evaluations.iter().cloned())
            .collect::<Vec<_>>(),
    );
    let defaults = ApplyOptions::default();
    let apply_options = ApplyOptions {
        dry_run,
        deadline: options.wait.unwrap_or(defaults.deadline),
        read_backs: ReadBacks {
            first: options.poll_interval.unwrap_or(defaults.read_backs.first),
            ..defaults.read_backs
        },
        ..defaults
    };
    let mut results = Vec::new();
    for (index, evaluations) in evaluated {
        results.extend(once::apply(&contexts.shards[index], evaluations, &apply_options).await);
    }
    let failed = nothing_read || results.iter().any(|(_, applied)| applied.is_failure());
    (plan::render_applied(&results), failed)
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

/// What `pc-autoscaler audit` was asked.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The Region to read; default the account's only one, or `[aws] region`.
    pub region: Option<String>,
    /// An `[[account]]` of the config; default the base credentials' account.
    pub account: Option<String>,
    pub days: u32,
    /// Where `report.json`, `audit.svg` and `audit.toml` go.
    pub out: Option<std::path::PathBuf>,
    /// Lambda requests per second; `None`: `daemon.max_read_rate`.
    pub read_rate: Option<f64>,
}

/// Why `audit` could not run: bad input (exit 2) or AWS could not be read (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum AuditFailure {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unreadable(String),
}

/// Reads one account and Region and judges its provisioned concurrency; returns the
/// report for people. `progress` hears each step of the reads.
pub async fn audit(
    config: Config,
    options: &AuditOptions,
    progress: &mut dyn FnMut(String),
) -> Result<String, AuditFailure> {
    let key = match &options.account {
        Some(name) => {
            let account = config.account(name).ok_or_else(|| {
                AuditFailure::Invalid(format!("the config has no [[account]] named `{name}`"))
            })?;
            let region = match (&options.region, account.regions.as_slice()) {
                (Some(region), _) => region.clone(),
                (None, [only]) => only.clone(),
                (None, _) => {
                    return Err(AuditFailure::Invalid(format!(
                        "account `{name}` has several Regions; say which with --region"
                    )));
                }
            };
            ShardKey::of(name, &region)
        }
        None => ShardKey {
            account: None,
            region: options.region.as_deref().map(Into::into),
        },
    };
    let (settings, account) = config.shard_access(&key);
    let region = settings.region.clone().unwrap_or_default();
    let clients = aws::connect(&settings, account).await;
    let scaling = aws::connect_scaling(&settings, account).await;
    let rate = options.read_rate.unwrap_or(config.daemon.max_read_rate);
    let control = crate::runtime::plane::control::Control::new(
        clients.lambda,
        rate,
        crate::runtime::plane::control::ONE_SHOT_GET_FUNCTION_RATE,
        &config,
        None,
    )
    .in_shard(
        account.map(|account| account.account_id.clone()),
        settings.region.clone(),
    );
    let now = crate::clock::Clock::System.now();
    let read = crate::audit::read::read(
        &control,
        &clients.metrics,
        &scaling,
        (options.days, now),
        progress,
    )
    .await
    .map_err(|error| {
        AuditFailure::Unreadable(format!("the functions could not be listed: {error}"))
    })?;
    let report = crate::audit::assess(
        &read.observed,
        &region,
        options.days,
        &crate::audit::price::Price::us_east_1(),
    );
    if let Some(dir) = &options.out {
        crate::audit::write_outputs(&report, dir).map_err(|error| {
            AuditFailure::Unreadable(format!("cannot write to {}: {error}", dir.display()))
        })?;
    }
    let mut text = format!(
        "{} functions, {} with provisioned concurrency ({} configs) in {}\n",
        read.functions,
        read.observed
            .iter()
            .map(|one| &one.function.name)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        read.observed.len(),
        if key.is_base() {
            region.clone()
        } else {
            key.to_string()
        }
    );
    text.push_str(&crate::audit::render(&report));
    for problem in &read.problems {
        text.push_str(&format!("warning: {}\n", crate::escape::printable(problem)));
    }
    Ok(text)
}
