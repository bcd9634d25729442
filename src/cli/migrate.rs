//! `pc-autoscaler migrate`: from Application Auto Scaling (AAS) to pc-autoscaler and
//! back. Without a flag it reads AAS's settings in one account and Region, writes the
//! config `migrate::migrate` makes of them (checked before it is written) and, for each
//! target with history, what AAS as configured and the written config would each have
//! cost and spilled, from `audit`'s replay. `--rollback` resumes AAS exactly as it was
//! for every target taken over; `--forget-handed-back` lets a config take those
//! targets over again.
//!
//! What it must not do: write to AWS, except the suspended states `--rollback`
//! restores; or write over a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::Failure;
use super::audit::shard_of;
use super::overrides::document_store;
use crate::audit::{self, against_aas};
use crate::aws::{self, ScalingApi};
use crate::config::Config;
use crate::escape::printable;
use crate::migrate::{self, read};
use crate::runtime::plane::control::{Control, ONE_SHOT_GET_FUNCTION_RATE};
use crate::runtime::state::handover::Handovers;

/// The state directory the Debian package and the systemd unit make.
const PACKAGED_STATE_DIRECTORY: &str = "/var/lib/pc-autoscaler";

/// What `pc-autoscaler migrate` was asked.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub region: Option<String>,
    pub account: Option<String>,
    /// Where the config is written; an existing file is refused.
    pub out: PathBuf,
    /// Days of history replayed; 0 replays nothing.
    pub days: u32,
    pub read_rate: Option<f64>,
}

/// Reads AAS in the shard the options name, writes the config, and returns what to
/// tell.
pub async fn migrate(
    config: Config,
    options: &MigrateOptions,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(String),
) -> Result<String, Failure> {
    let out = printable(&options.out.display().to_string()).to_string();
    if options.out.exists() {
        return Err(Failure::Invalid(format!(
            "--out {out} exists; choose another file"
        )));
    }
    let key = shard_of(&config, (options.account.as_ref(), options.region.as_ref()))?;
    let (settings, account) = config.shard_access(&key);
    let clients = aws::connect(&settings, account).await;
    progress(
        "reading Application Auto Scaling's scalable targets, policies and scheduled actions"
            .into(),
    );
    let aas = read::settings(&clients.scaling).await.map_err(|error| {
        Failure::Unreadable(format!(
            "Application Auto Scaling could not be read: {error}"
        ))
    })?;
    // The config's own state directory, or the one the package makes.
    let state_directory = (config.daemon.state_directory.clone())
        .unwrap_or_else(|| PathBuf::from(PACKAGED_STATE_DIRECTORY));
    let mut migration = migrate::migrate(&aas, (settings.region.as_deref(), &state_directory), now);
    if let Some(account) = account {
        migration.text.insert_str(
            0,
            &format!(
                "# Read from account `{}` ({}): run it with that account's credentials, or\n\
                 # move its targets into a config with that [[account]] and `account = \"{}\"`.\n",
                account.name, account.account_id, account.name
            ),
        );
    }
    let mut text = if migration.carried.is_empty() {
        format!(
            "no scalable target of Lambda provisioned concurrency could be carried over ({} found): nothing written\n",
            aas.targets.len()
        )
    } else {
        // What is written passes `check`, or nothing is written.
        crate::config::parse(&migration.text, &options.out).map_err(|errors| {
            Failure::Unreadable(format!(
                "the migrated config does not pass check (a bug; please report it):\n{errors}"
            ))
        })?;
        write_new(&options.out, &migration.text)
            .map_err(|error| Failure::Unreadable(format!("cannot write {out}: {error}")))?;
        let count = migration.carried.len();
        format!(
            "wrote {out}: {count} target{} from Application Auto Scaling, {} left out (said in its comments)\n",
            if count == 1 { "" } else { "s" },
            migration.left_out.len()
        )
    };
    for (name, why) in &migration.left_out {
        let _ = writeln!(text, "left out {}: {}", printable(name), printable(why));
    }
    if options.days > 0 && !migration.carried.is_empty() {
        let rate = options.read_rate.unwrap_or(config.daemon.max_read_rate);
        let control = Control::new(
            clients.lambda,
            rate,
            ONE_SHOT_GET_FUNCTION_RATE,
            &config,
            None,
        );
        progress(format!(
            "reading {} days of history for the replay",
            options.days
        ));
        let clients = (&control, &clients.metrics);
        text.push_str(&replay(&migration, clients, (options.days, now)).await);
    }
    Ok(text)
}

/// Creates `path` with `text`; an existing file is an error.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// What AAS as configured and the migrated config would each have billed and spilled
/// over each tracked target's history.
async fn replay<L: aws::LambdaApi, M: aws::MetricsApi>(
    migration: &migrate::Migration,
    clients: (&Control<L>, &M),
    (days, now): (u32, DateTime<Utc>),
) -> String {
    let targets: Vec<(String, String)> = migration
        .carried
        .iter()
        .map(|(target, _)| (target.function.name.clone(), target.qualifier.to_string()))
        .collect();
    let mut problems = Vec::new();
    let observed = read::histories(clients, &targets, (days, now), &mut problems).await;
    let by_function = migrate::by_function(migration);
    let prices = audit::price::Price::us_east_1();
    let mut text = format!(
        "\nreplayed over the last {days} days ($ a month, us-east-1 prices):\n{:<40} {:>12} {:>9} {:>12} {:>9}\n",
        "target", "AAS bill", "AAS spill", "config bill", "spill"
    );
    for one in &observed {
        let key = (one.function.name.clone(), one.qualifier.clone());
        let Some((target, _)) = by_function.get(&key).copied() else {
            continue;
        };
        let name = printable(&format!("{}:{}", one.function.name, one.qualifier)).to_string();
        match against_aas(target, one, &prices) {
            Some((aas, ours)) => {
                let _ = writeln!(
                    text,
                    "{name:<40} {:>12.2} {:>8.2}% {:>12.2} {:>8.2}%",
                    aas.bill_dollars_a_month,
                    aas.spillover_pct,
                    ours.bill_dollars_a_month,
                    ours.spillover_pct
                );
            }
            None if target.tracking.is_none() => {
                let _ = writeln!(
                    text,
                    "{name:<40} no target tracking carried over: not replayed"
                );
            }
            None => {
                let _ = writeln!(text, "{name:<40} less than a day of history: not replayed");
            }
        }
    }
    for problem in problems {
        let _ = writeln!(text, "warning: {}", printable(&problem));
    }
    text
}

/// `--rollback`: marks every target taken over as handed back, so that the daemon
/// leaves it alone, then restores what its scalable target had suspended before the
/// takeover. Run again, it restores whatever still differs. Returns what to tell, and
/// whether anything could not be restored.
pub async fn rollback(config: &Config, now: DateTime<Utc>) -> Result<(String, bool), Failure> {
    let store = records_store(config).await?;
    let handovers = store
        .change(|handovers: &mut Handovers| {
            for record in &mut handovers.records {
                record.handed_back_at.get_or_insert(now);
            }
            Ok(handovers.clone())
        })
        .await
        .map_err(Failure::Unreadable)?;
    if handovers.records.is_empty() {
        return Ok((
            "no target was taken over: nothing to roll back\n".into(),
            false,
        ));
    }
    let mut text = String::new();
    let mut failed = false;
    let shards = config.shards();
    for key in &shards {
        let records: Vec<_> = (handovers.records.iter())
            .filter(|record| record.is_of_shard(key))
            .collect();
        if records.is_empty() {
            continue;
        }
        let (settings, account) = config.shard_access(key);
        let scaling = aws::connect(&settings, account).await.scaling;
        let found = match scaling.lambda_targets().await {
            Ok(found) => aws::by_function(found),
            Err(error) => {
                let _ = writeln!(
                    text,
                    "{key}: Application Auto Scaling could not be read: {error}; nothing restored there"
                );
                failed = true;
                continue;
            }
        };
        for record in records {
            let name = printable(&format!("{}:{}", record.function, record.qualifier)).to_string();
            let resource = (record.function.clone(), record.qualifier.clone());
            let line = match found.get(&resource) {
                None => "its scalable target is gone: nothing to restore".to_owned(),
                Some(target) if target.suspended == record.before => {
                    format!(
                        "already as before the takeover ({})",
                        suspended(record.before)
                    )
                }
                Some(_) => match scaling
                    .set_suspended(&record.function, &record.qualifier, record.before)
                    .await
                {
                    Ok(()) => format!("restored: {}", suspended(record.before)),
                    Err(error) => {
                        failed = true;
                        format!("NOT restored: {error}; run --rollback again")
                    }
                },
            };
            let _ = writeln!(text, "{name} ({key}): {line}");
        }
    }
    let elsewhere = (handovers.records.iter())
        .filter(|record| !shards.iter().any(|key| record.is_of_shard(key)))
        .count();
    if elsewhere > 0 {
        failed = true;
        let _ = writeln!(
            text,
            "{elsewhere} record(s) name an account or Region this config does not have: roll them back with the config that took them over"
        );
    }
    text.push_str("The daemon leaves these targets alone after its next read of Application Auto Scaling (within daemon.discovery_period, or at once on reload).\n");
    Ok((text, failed))
}

/// `--forget-handed-back`: drops the records of targets handed back, so that a config
/// with `take_over_aas` takes them over again.
pub async fn forget_handed_back(config: &Config) -> Result<String, Failure> {
    let store = records_store(config).await?;
    let forgotten = store
        .change(|handovers: &mut Handovers| Ok(handovers.forget_handed_back()))
        .await
        .map_err(Failure::Unreadable)?;
    Ok(format!("forgot {forgotten} target(s) handed back\n"))
}

async fn records_store(
    config: &Config,
) -> Result<crate::runtime::state::store::Store<aws::dynamodb::DynamoState>, Failure> {
    document_store::<Handovers>(config).await.ok_or_else(|| {
        Failure::Invalid(
            "the handover records are kept in the lease table (`[leader]`) or in `daemon.state_directory`; this config has neither".into(),
        )
    })
}

/// A suspended state for people.
fn suspended(state: aws::SuspendedState) -> String {
    let parts: Vec<&str> = [
        (state.dynamic_in, "dynamic scale-in"),
        (state.dynamic_out, "dynamic scale-out"),
        (state.scheduled, "scheduled scaling"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if parts.is_empty() {
        "nothing suspended".into()
    } else {
        format!("{} suspended", parts.join(", "))
    }
}
