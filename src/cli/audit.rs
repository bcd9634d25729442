//! `pc-autoscaler audit`: which account and Region the flags name, the clients and
//! the read rate for them, then `audit::read` and `audit::assess`, rendered for people.
//! What it must not do: write to AWS; only the files `--out` names are written.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::Failure;
use crate::audit;
use crate::aws;
use crate::config::{Config, ShardKey};
use crate::escape::printable;
use crate::runtime::plane::control::{Control, ONE_SHOT_GET_FUNCTION_RATE};

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

/// What `audit` found: the text for people and the report its files are made from.
pub struct Audited {
    pub text: String,
    pub report: audit::AuditReport,
}

/// Reads one account and Region at `now` and judges its provisioned concurrency.
/// `progress` hears each step of the reads. A `--out` that cannot be written is
/// refused before anything is read; the files are written by [`write_outputs`], after
/// the caller has shown the text.
pub async fn audit(
    config: Config,
    options: &AuditOptions,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(String),
) -> Result<Audited, Failure> {
    if let Some(dir) = &options.out {
        writable(dir).map_err(|error| {
            Failure::Invalid(format!(
                "--out {}: {error}",
                printable(&dir.display().to_string())
            ))
        })?;
    }
    let key = shard_of(&config, (options.account.as_ref(), options.region.as_ref()))?;
    let (settings, account) = config.shard_access(&key);
    let region = settings.region.clone().unwrap_or_default();
    let clients = aws::connect(&settings, account).await;
    let control = Control::new(
        clients.lambda,
        options.read_rate.unwrap_or(config.daemon.max_read_rate),
        ONE_SHOT_GET_FUNCTION_RATE,
        &config,
        None,
    )
    .in_shard(
        account.map(|account| account.account_id.clone()),
        settings.region.clone(),
    );
    let prices = audit::price::Price::us_east_1();
    let mut read = audit::read::read(
        &control,
        (&clients.metrics, &clients.scaling),
        (options.days, now),
        &prices,
        progress,
    )
    .await
    .map_err(|error| Failure::Unreadable(format!("the functions could not be listed: {error}")))?;
    let configs = std::mem::take(&mut read.configs);
    let report = audit::assess(configs, &region, options.days, &prices);
    let place = if key.is_base() {
        region
    } else {
        key.to_string()
    };
    let text = render(&read, &report, &place);
    Ok(Audited { text, report })
}

/// `report.json`, `audit.svg` and `audit.toml` in `dir`; returns what to tell.
pub fn write_outputs(report: &audit::AuditReport, dir: &Path) -> Result<String, Failure> {
    audit::write_outputs(report, dir).map_err(|error| {
        Failure::Unreadable(format!("cannot write to {}: {error}", dir.display()))
    })?;
    let toml = match report.starter_config {
        Some(_) => " and audit.toml",
        None => "",
    };
    Ok(format!(
        "wrote {0}/report.json, {0}/audit.svg{toml}\n",
        printable(&dir.display().to_string())
    ))
}

/// Whether `dir` is a directory this process can write in, made if absent: checked
/// before the reads, so a bad `--out` costs nothing.
fn writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".pc-autoscaler-audit-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}

/// The account and Region the flags name: an `[[account]]` and one of its Regions, or
/// the base credentials' account in `--region` (default `[aws] region`).
/// The shard `--account` and `--region` name in `config`.
pub fn shard_of(
    config: &Config,
    (account, region): (Option<&String>, Option<&String>),
) -> Result<ShardKey, Failure> {
    let Some(name) = account else {
        return Ok(ShardKey {
            account: None,
            region: region.map(|region| region.as_str().into()),
        });
    };
    let account = config
        .account(name)
        .ok_or_else(|| Failure::Invalid(format!("the config has no [[account]] named `{name}`")))?;
    let region = match (region, account.regions.as_slice()) {
        (Some(region), _) => region.clone(),
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(Failure::Invalid(format!(
                "account `{name}` has several Regions; say which with --region"
            )));
        }
    };
    Ok(ShardKey::of(name, &region))
}

/// The report for people: what was read of `place`, the judgement, and what could
/// not be read.
fn render(read: &audit::read::AccountRead, report: &audit::AuditReport, place: &str) -> String {
    let with_configs: BTreeSet<&String> =
        (report.configs.iter()).map(|one| &one.function).collect();
    let mut text = format!(
        "{} functions, {} with provisioned concurrency ({} configs) in {place}\n",
        read.functions,
        with_configs.len(),
        report.configs.len(),
    );
    text.push_str(&audit::render(report));
    for problem in &read.problems {
        text.push_str(&format!("warning: {}\n", printable(problem)));
    }
    text
}
