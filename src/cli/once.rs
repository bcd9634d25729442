//! `plan` (one evaluation, no writes) and `run --once` (one evaluation, carried out):
//! a context per shard, with the targets its selectors find and the overrides in
//! force, then `runtime::drivers::once`, rendered with [`super::plan`].
//!
//! What it must not do: decide, or write anything but through the one-shot driver.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::aws;
use crate::cli::overrides::{document_store, override_line};
use crate::cli::plan;
use crate::config::TargetConfig;
use crate::config::{Config, ShardKey};
use crate::runtime::course::ReadBacks;
use crate::runtime::discovery::{Resolution, Skipped, Written, reads};
use crate::runtime::drivers::handing::Records;
use crate::runtime::drivers::once::{self, ApplyOptions, Context};
use crate::runtime::knowing::aas::{AasView, Standing, TakeoverOutcome};
use crate::runtime::knowing::evaluate::nothing_read;
use crate::runtime::knowing::evaluate::{Blocked, Evaluation};
use crate::runtime::plane::control::{Control, ONE_SHOT_GET_FUNCTION_RATE};
use crate::runtime::state::handover::Handovers;

type SdkContext = Context<aws::SdkLambda, aws::SdkMetrics>;

/// What one-shot commands work on: a context per shard (its targets written out and
/// those its selectors found live), what the selectors skipped, and why the
/// overrides could not be read, if they could not.
struct Contexts {
    shards: Vec<SdkContext>,
    /// The shard of each context.
    keys: Vec<ShardKey>,
    /// Each shard's Application Auto Scaling and handover records, for takeovers.
    scaling: Vec<(aws::SdkScaling, Records<aws::dynamodb::DynamoState>)>,
    skipped: Vec<(ShardKey, Skipped)>,
    unread: Option<String>,
    /// What could not be read but is worth a line (Application Auto Scaling), by shard.
    warnings: Vec<(ShardKey, String)>,
}

/// A context per shard of `config`, with the overrides in force read from their store.
async fn contexts(mut config: Config, read_rate: Option<f64>) -> Contexts {
    let (overrides, unread) =
        match document_store::<crate::runtime::state::overrides::OverrideList>(&config).await {
            Some(store) => match store
                .load::<crate::runtime::state::overrides::OverrideList>()
                .await
            {
                Ok((list, _)) => (list, None),
                Err(why) => (Default::default(), Some(why)),
            },
            None => (Default::default(), None),
        };
    let overrides = std::sync::Arc::new(overrides);
    let handovers = document_store::<Handovers>(&config).await.map(Arc::new);
    let rate = read_rate.unwrap_or(config.daemon.max_read_rate);
    let written = Written::of(&config.targets);
    let mut contexts = Contexts {
        shards: Vec::new(),
        keys: Vec::new(),
        scaling: Vec::new(),
        skipped: Vec::new(),
        unread,
        warnings: Vec::new(),
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
        let records = Records {
            shard: key.clone(),
            store: handovers.clone(),
        };
        let aas = aas_of(&key, (&clients.scaling, &records), &mut contexts.warnings).await;
        context.aas = Arc::new(aas);
        contexts.scaling.push((clients.scaling, records));
        if config.selectors_of(&key).next().is_some() {
            let resolution =
                discover(&config, &key, &written, &context.control, &clients.tagging).await;
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

/// What AAS manages in shard `key`; what could not be read is a warning.
async fn aas_of(
    key: &ShardKey,
    (scaling, records): (&aws::SdkScaling, &Records<aws::dynamodb::DynamoState>),
    warnings: &mut Vec<(ShardKey, String)>,
) -> AasView {
    let (scalable, read_records) = records.read_aas(scaling).await;
    let error = scalable.as_ref().err().cloned();
    if let Err(why) = &read_records {
        let warning =
            format!("the handover records could not be read: {why}; no target is taken over");
        warnings.push((key.clone(), warning));
    }
    let mut aas = AasView::default();
    if aas.read(scalable, read_records) {
        let warning = format!(
            "Application Auto Scaling could not be read in {key}: {}; targets are treated as if it managed none",
            error.unwrap_or_default()
        );
        warnings.push((key.clone(), warning));
    }
    aas
}

/// What the selectors of shard `key` find live, beside the targets `written` out.
async fn discover(
    config: &Config,
    key: &ShardKey,
    written: &Written,
    control: &Control<aws::SdkLambda>,
    tagging: &aws::SdkTagging,
) -> Resolution {
    let selectors: Vec<_> = config.selectors_of(key).cloned().collect();
    let found = reads::read(
        control,
        tagging,
        &selectors,
        config.daemon.discovery_rate,
        &Default::default(),
    )
    .await;
    crate::runtime::discovery::resolve(config, key, written, &found, &[])
}

/// Every target of `config`: those written out and those its selectors find live; and
/// why a selector could not be read, for each one that could not.
pub async fn every_target(config: &Config) -> (Vec<TargetConfig>, Vec<String>) {
    let mut targets = config.targets.clone();
    let mut failed = Vec::new();
    let written = Written::of(&config.targets);
    for key in config.shards() {
        if config.selectors_of(&key).next().is_none() {
            continue;
        }
        let (settings, account) = config.shard_access(&key);
        let clients = aws::connect(&settings, account).await;
        let control = Control::new(
            clients.lambda,
            config.daemon.max_read_rate,
            ONE_SHOT_GET_FUNCTION_RATE,
            config,
            None,
        )
        .in_shard(
            account.map(|account| account.account_id.clone()),
            settings.region.clone(),
        );
        let resolution = discover(config, &key, &written, &control, &clients.tagging).await;
        failed.extend(
            (resolution.failed.iter())
                .map(|(selector, why)| format!("selector `{selector}` in {key}: {why}")),
        );
        targets.extend(resolution.targets);
    }
    (targets, failed)
}

/// Every shard's evaluations, shard after shard.
async fn evaluate_all(contexts: &Contexts) -> Vec<(usize, Vec<Evaluation>)> {
    let mut all = Vec::new();
    for (index, context) in contexts.shards.iter().enumerate() {
        all.push((index, once::evaluate(context).await));
    }
    all
}

/// One evaluation against AWS, no writes: a table, or JSON with `json`. The flag is
/// true when nothing could be read: every target blocked or its metrics unreadable.
/// `read_rate` overrides `daemon.max_read_rate`.
pub async fn plan(config: Config, json: bool, read_rate: Option<f64>) -> (String, bool) {
    let contexts = contexts(config, read_rate).await;
    let mut failures = Vec::new();
    let mut failed = Vec::new();
    let mut evaluations: Vec<Evaluation> = Vec::new();
    for (index, mut shard) in evaluate_all(&contexts).await {
        if let Some(line) = plan::shard_failure(&contexts.keys[index], &mut shard) {
            failures.push(line);
            failed.push(contexts.keys[index].clone());
        }
        evaluations.extend(shard);
    }
    let nothing_read = nothing_read(&evaluations);
    let standing = |target: &TargetConfig| {
        let shard = contexts.keys.iter().position(|key| *key == target.shard);
        shard.map_or(Standing::NotReadYet, |shard| {
            contexts.shards[shard].aas.standing(target)
        })
    };
    let rows = plan::rows(&evaluations, &standing);
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
        // A shard that could not be read at all says why once, above.
        for (_, warning) in (contexts.warnings.iter()).filter(|(key, _)| !failed.contains(key)) {
            let warning = crate::escape::printable(warning);
            table.push_str(&format!("warning: {warning}\n"));
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
    let mut contexts = contexts(config, options.read_rate).await;
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
    let mut report = String::new();
    for (_, warning) in &contexts.warnings {
        report.push_str(&format!("warning: {}\n", crate::escape::printable(warning)));
    }
    if !dry_run {
        // Before anything is evaluated or written: AAS stops first.
        for (context, (scaling, records)) in contexts.shards.iter_mut().zip(&contexts.scaling) {
            for (target, outcome) in once::take_over(context, (scaling, records)).await {
                report.push_str(&format!("{target}: {}\n", takeover_line(&outcome)));
            }
        }
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
    report.push_str(&plan::render_applied(&results));
    (report, failed)
}

fn takeover_line(outcome: &TakeoverOutcome) -> String {
    match outcome {
        TakeoverOutcome::Done => "taken over from Application Auto Scaling (its suspended state recorded, then all of its scaling suspended)".into(),
        TakeoverOutcome::HandedBack => "not taken over: handed back by `migrate --rollback`".into(),
        TakeoverOutcome::Failed(why) => format!("not taken over from Application Auto Scaling: {}", crate::escape::printable(why)),
    }
}

/// `check --aws`: every target read as `plan` reads it, and whether its version has
/// SnapStart on: what Lambda would refuse, and who else manages it. Returns the report
/// and whether any target has a problem a person must fix.
pub async fn check_aws(config: Config) -> (String, bool) {
    let contexts = contexts(config, None).await;
    let mut report = String::from("\nwith AWS:\n");
    let mut failed = false;
    for (_, warning) in &contexts.warnings {
        let _ = writeln!(report, "warning: {}", crate::escape::printable(warning));
    }
    for (index, evaluations) in evaluate_all(&contexts).await {
        let context = &contexts.shards[index];
        for evaluation in evaluations {
            let target = &evaluation.target;
            let mut problems = Vec::new();
            match &evaluation.outcome {
                Err(blocked) => problems.push(format!("error: {blocked}")),
                Ok(_) => match context.control.snap_start(target).await {
                    Ok(true) => problems.push(format!("error: {}", Blocked::SnapStart)),
                    Ok(false) => {}
                    Err(error) => {
                        problems.push(format!("error: its version could not be read: {error}"))
                    }
                },
            }
            failed |= !problems.is_empty();
            let reserved = (evaluation.outcome.as_ref().ok())
                .and_then(|evaluated| evaluated.observation.caps.reserved_available)
                .filter(|available| *available < target.min);
            if let Some(available) = reserved {
                problems.push(format!(
                    "warning: its function's reserved concurrency leaves {available} for it, below its min {}: Lambda refuses more",
                    target.min
                ));
            }
            let standing = context.aas.standing(target);
            if !standing.may_write() {
                problems.push(format!("note: {standing}"));
            }
            let name = crate::escape::printable(target.name.as_str()).to_string();
            if problems.is_empty() {
                let _ = writeln!(report, "{name}: ok");
            }
            for problem in problems {
                let _ = writeln!(report, "{name}: {}", crate::escape::printable(&problem));
            }
        }
    }
    (report, failed)
}
