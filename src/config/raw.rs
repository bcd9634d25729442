//! The configuration file as written: serde structs that mirror the TOML keys.
//!
//! Every leaf is `Spanned` so validation can point at the offending line. Nothing
//! here is checked beyond TOML types; `validate` turns these into typed values.
//! `deny_unknown_fields` is kept as a safety net, although `schema` reports unknown
//! keys first (all of them, with suggestions).
//!
//! What it must not do: check anything beyond TOML types.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
/// The top level. Only its key names are used (by `schema`): each section is
/// deserialized on its own so one broken target does not hide another's errors.
#[expect(dead_code, reason = "only the field names are read, by `schema`")]
pub struct RawFile {
    pub aws: Option<IgnoredAny>,
    pub daemon: Option<IgnoredAny>,
    pub leader: Option<IgnoredAny>,
    pub events: Option<IgnoredAny>,
    pub defaults: Option<IgnoredAny>,
    pub account: Option<IgnoredAny>,
    pub selector: Option<IgnoredAny>,
    pub target: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    pub region: Option<Spanned<String>>,
    pub profile: Option<Spanned<String>>,
    pub endpoint_url: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub interval: Option<Spanned<String>>,
    pub listen: Option<Spanned<String>>,
    pub dry_run: Option<bool>,
    pub log_format: Option<Spanned<String>>,
    pub max_write_rate: Option<Spanned<f64>>,
    pub max_read_rate: Option<Spanned<f64>>,
    pub control_plane_budget: Option<Spanned<f64>>,
    pub quiet_read_period: Option<Spanned<String>>,
    pub drift_scan_period: Option<Spanned<String>>,
    pub refresh_period: Option<Spanned<String>>,
    pub account_reserve: Option<Spanned<i64>>,
    pub shutdown_grace: Option<Spanned<String>>,
    pub pass_timeout: Option<Spanned<String>>,
    pub activity_log: Option<Spanned<String>>,
    pub activity_log_max_mib: Option<Spanned<i64>>,
    pub state_directory: Option<Spanned<String>>,
    pub discovery_period: Option<Spanned<String>>,
    pub discovery_rate: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLeader {
    pub backend: Option<Spanned<String>>,
    pub table: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub create_table: Option<bool>,
    pub endpoint_url: Option<Spanned<String>>,
    pub lease: Option<Spanned<String>>,
    pub renew_every: Option<Spanned<String>>,
    pub identity: Option<Spanned<String>>,
    pub spread: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvents {
    pub bus: Option<Spanned<String>>,
    pub endpoint_url: Option<Spanned<String>>,
    pub queue: Option<Spanned<i64>>,
}

/// A target, after the `[defaults]` table has been merged under it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub function: Option<Spanned<String>>,
    pub qualifier: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub account: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
    pub tracking: Option<RawTracking>,
    pub schedule: Option<Vec<Spanned<RawSchedule>>>,
    pub take_over_aas: Option<Spanned<bool>>,
}

/// `[[account]]`: an account reached through a role, and the Regions managed in it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub name: Option<Spanned<String>>,
    pub role_arn: Option<Spanned<String>>,
    pub external_id: Option<Spanned<String>>,
    pub session_name: Option<Spanned<String>>,
    pub regions: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[[selector]]`: which functions it finds, and the target template (the target keys
/// but `function`, `name`, `account` and `region`, with `[defaults]` merged under them).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSelector {
    pub name: Option<Spanned<String>>,
    pub account: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub tags: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    pub functions: Option<Spanned<Vec<Spanned<String>>>>,
    pub tag_overrides: Option<bool>,
    pub qualifier: Option<Spanned<String>>,
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
    pub tracking: Option<RawTracking>,
    pub schedule: Option<Vec<Spanned<RawSchedule>>>,
    pub take_over_aas: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracking {
    pub metric: Option<Spanned<String>>,
    pub target: Option<Spanned<f64>>,
    pub scale_in_window: Option<Spanned<String>>,
    pub scale_out_cooldown: Option<Spanned<String>>,
    pub scale_in_cooldown: Option<Spanned<String>>,
    pub max_scale_in_step: Option<Spanned<RawStep>>,
    pub missing_data: Option<Spanned<String>>,
    pub stale_after: Option<Spanned<String>>,
    pub disable_scale_in: Option<bool>,
    pub forecast: Option<Spanned<String>>,
    pub forecast_horizon: Option<Spanned<String>>,
    pub choose_window: Option<Spanned<String>>,
    pub custom: Option<Spanned<RawCustomMetric>>,
}

/// `max_scale_in_step` is either `"50%"` or a count.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawStep {
    Count(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCustomMetric {
    pub namespace: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    pub stat: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub name: Option<Spanned<String>>,
    pub cron: Option<Spanned<String>>,
    pub at: Option<Spanned<RawAt>>,
    pub timezone: Option<Spanned<String>>,
    pub duration: Option<Spanned<String>>,
    pub lead: Option<Spanned<String>>,
    pub start: Option<Spanned<RawAt>>,
    pub end: Option<Spanned<RawAt>>,
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
}

/// `at` may be written as a string or as a bare TOML local date-time.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAt {
    Text(String),
    Datetime(toml::value::Datetime),
}

impl RawAt {
    pub fn as_text(&self) -> String {
        match self {
            RawAt::Text(text) => text.clone(),
            RawAt::Datetime(datetime) => datetime.to_string(),
        }
    }
}
