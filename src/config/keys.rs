//! One table of every configuration key: its default, its range and what it means.
//! Validation takes each key's default and range from here, `check` names the keys set
//! away from their defaults, and the book's configuration reference is rendered from it
//! ([`reference_table`]; tests/docs.rs keeps it in step).
//!
//! What it must not do: hold checks that need more than one key (those live with the
//! section that has both); it says what one key may be, alone.

use std::time::Duration;

/// What a key holds, with its default and range.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    /// A humantime duration from `min` to `max`.
    Duration {
        default: Option<Duration>,
        min: Duration,
        max: Duration,
    },
    /// Requests per second, from [`MIN_RATE`] to [`MAX_RATE`].
    Rate {
        default: f64,
    },
    /// A whole number from `min` to `max`.
    Count {
        default: Option<u32>,
        min: u32,
        max: u32,
    },
    /// One of `choices`.
    Choice {
        default: Option<&'static str>,
        choices: &'static [&'static str],
    },
    Flag {
        default: bool,
    },
    /// Free text, checked as the meaning says.
    Text {
        default: Option<&'static str>,
    },
}

/// One key of the file.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// As written in the file: `daemon.interval`, `target.tracking.target`.
    pub path: &'static str,
    pub kind: KeyKind,
    pub meaning: &'static str,
}

/// The largest capacity or count Lambda's API can carry (`i32`).
pub const MAX_COUNT: u32 = i32::MAX as u32;
/// Rates of Lambda requests per second: above 0, at most this. Lambda allows 15 a
/// second per account and Region; emulators may take more, nothing takes millions.
pub const MAX_RATE: f64 = 1_000.0;
/// The lowest rate: one request in 100 s. Lower would park a pass for hours.
pub const MIN_RATE: f64 = 0.01;

const fn seconds(count: u64) -> Duration {
    Duration::from_secs(count)
}

const fn minutes(count: u64) -> Duration {
    Duration::from_secs(count * 60)
}

const fn hours(count: u64) -> Duration {
    Duration::from_secs(count * 3600)
}

/// The longest duration any key takes.
pub const YEAR: Duration = hours(24 * 366);

impl Key {
    /// The default of a duration key; a key of another kind has none.
    pub const fn default_duration(&self) -> Option<Duration> {
        match self.kind {
            KeyKind::Duration { default, .. } => default,
            _ => None,
        }
    }

    /// The default of a duration key that has one.
    pub const fn duration(&self) -> Duration {
        match self.default_duration() {
            Some(duration) => duration,
            None => panic!("a duration key with a default"),
        }
    }

    /// The range of a duration key.
    pub const fn duration_range(&self) -> (Duration, Duration) {
        match self.kind {
            KeyKind::Duration { min, max, .. } => (min, max),
            _ => (Duration::ZERO, Duration::MAX),
        }
    }

    pub const fn rate(&self) -> f64 {
        match self.kind {
            KeyKind::Rate { default } => default,
            _ => panic!("a rate key"),
        }
    }

    pub const fn count(&self) -> u32 {
        match self.kind {
            KeyKind::Count {
                default: Some(count),
                ..
            } => count,
            _ => panic!("a count key with a default"),
        }
    }

    pub const fn count_range(&self) -> (u32, u32) {
        match self.kind {
            KeyKind::Count { min, max, .. } => (min, max),
            _ => (0, MAX_COUNT),
        }
    }

    /// The key's last part, as written in its table.
    pub fn name(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }

    /// The default as the configuration reference writes it (`60s`, `2/s`, `none`).
    pub fn default_text(&self) -> String {
        let none = "none".to_owned();
        match self.kind {
            KeyKind::Duration { default, .. } => default.map_or(none, show_duration),
            KeyKind::Rate { default } => format!("{default}/s"),
            KeyKind::Count { default, .. } => default.map_or(none, |count| count.to_string()),
            KeyKind::Choice { default, .. } => default.map_or(none, |choice| format!("`{choice}`")),
            KeyKind::Flag { default } => default.to_string(),
            KeyKind::Text { default } => default.map_or(none, |text| format!("`{text}`")),
        }
    }

    fn range_text(&self) -> String {
        match self.kind {
            KeyKind::Duration { min, max, .. } => {
                format!("{} to {}", show_duration(min), show_duration(max))
            }
            KeyKind::Rate { .. } => format!("{MIN_RATE} to {MAX_RATE}"),
            KeyKind::Count { min, max, .. } => format!("{min} to {max}"),
            KeyKind::Choice { choices, .. } => choices
                .iter()
                .map(|choice| format!("`{choice}`"))
                .collect::<Vec<_>>()
                .join(", "),
            KeyKind::Flag { .. } => "true, false".into(),
            KeyKind::Text { .. } => "-".into(),
        }
    }
}

/// A duration as the reference writes it.
pub fn show_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

macro_rules! keys {
    ($($name:ident: $path:literal, $kind:expr, $meaning:literal;)*) => {
        $(pub const $name: Key = Key { path: $path, kind: $kind, meaning: $meaning };)*
        /// Every key, in the order of the configuration reference.
        pub const REFERENCE: &[Key] = &[$($name),*];
    };
}

const fn duration(default: Option<Duration>, min: Duration, max: Duration) -> KeyKind {
    KeyKind::Duration { default, min, max }
}

const fn count(default: Option<u32>, min: u32, max: u32) -> KeyKind {
    KeyKind::Count { default, min, max }
}

const fn text(default: Option<&'static str>) -> KeyKind {
    KeyKind::Text { default }
}

const fn choice(default: &'static str, choices: &'static [&'static str]) -> KeyKind {
    KeyKind::Choice {
        default: Some(default),
        choices,
    }
}

const MODES: &[&str] = &["off", "observe", "on"];

keys! {
    AWS_REGION: "aws.region", text(None), "The Region of the base account's targets and of STS; default the SDK's chain (`AWS_REGION`, the profile). An `[[account]]` lists its own.";
    AWS_PROFILE: "aws.profile", text(None), "A named profile of the shared AWS config files.";
    AWS_ENDPOINT_URL: "aws.endpoint_url", text(None), "One endpoint for Lambda, CloudWatch, STS and the tagging API (emulators, tests); an http:// or https:// URL. `AWS_ENDPOINT_URL_<SERVICE>` also work.";
    AWS_TIMEOUT: "aws.timeout", duration(Some(seconds(10)), seconds(1), minutes(5)), "Per-attempt timeout of every AWS call.";
    DAEMON_INTERVAL: "daemon.interval", duration(Some(seconds(60)), seconds(1), hours(1)), "How often every target's metrics are read and every target decided.";
    DAEMON_LISTEN: "daemon.listen", text(Some("127.0.0.1:9464")), "Address and port of /metrics, /healthz, /readyz, /status and /activities; `--listen` wins.";
    DAEMON_DRY_RUN: "daemon.dry_run", KeyKind::Flag { default: false }, "Decide and report, never write; `--dry-run` wins.";
    DAEMON_LOG_FORMAT: "daemon.log_format", choice("text", &["text", "json"]), "The log's format.";
    DAEMON_CONTROL_PLANE_BUDGET: "daemon.control_plane_budget", KeyKind::Rate { default: 2.0 }, "Requests a second the daemon spends of Lambda's shared 15/s per account and Region, reads and writes together.";
    DAEMON_MAX_WRITE_RATE: "daemon.max_write_rate", KeyKind::Rate { default: 5.0 }, "A further cap on writes a second, within the budget.";
    DAEMON_MAX_READ_RATE: "daemon.max_read_rate", KeyKind::Rate { default: 10.0 }, "What `plan` and `run --once` spend a second while they read every function once; `--read-rate` wins.";
    DAEMON_QUIET_READ_PERIOD: "daemon.quiet_read_period", duration(Some(minutes(10)), seconds(0), hours(1)), "How often a quiet target's metric is read: one near its target, rising, allocating or with a change ahead is read every interval, and a rise in the account's concurrency reads the rest at once. No longer than `interval` (e.g. `0s`): every target every interval.";
    DAEMON_DRIFT_SCAN_PERIOD: "daemon.drift_scan_period", duration(Some(minutes(10)), seconds(1), hours(24)), "Every function's configs are read at least this often, to find changes made by others.";
    DAEMON_REFRESH_PERIOD: "daemon.refresh_period", duration(Some(hours(1)), seconds(1), hours(24)), "How often reserved concurrency, alias weights and the account's unreserved concurrency are read again.";
    DAEMON_ACCOUNT_RESERVE: "daemon.account_reserve", count(Some(100), 0, MAX_COUNT), "Unreserved account concurrency that provisioned concurrency never takes.";
    DAEMON_SHUTDOWN_GRACE: "daemon.shutdown_grace", duration(Some(seconds(20)), seconds(0), minutes(15)), "How long writes in flight may take to finish after SIGTERM.";
    DAEMON_PASS_TIMEOUT: "daemon.pass_timeout", duration(None, seconds(10), hours(6)), "How long one pass may take before it is abandoned and liveness fails; default the larger of 5 intervals and 5 minutes.";
    DAEMON_ACTIVITY_LOG: "daemon.activity_log", text(None), "A JSON-lines file every activity is appended to, read back at start.";
    DAEMON_ACTIVITY_LOG_MAX_MIB: "daemon.activity_log_max_mib", count(Some(16), 1, 4_096), "Past this size the activity log moves to `PATH.1`, so at most twice this is kept.";
    DAEMON_STATE_DIRECTORY: "daemon.state_directory", text(None), "Where the snapshot of what the daemon knows is kept without `[leader]` (written atomically), so that a restart orders its first reads by need; none: no snapshot.";
    DAEMON_DISCOVERY_PERIOD: "daemon.discovery_period", duration(Some(minutes(5)), seconds(10), hours(24)), "How often selectors look for functions again (also at start and after a reload).";
    DAEMON_DISCOVERY_RATE: "daemon.discovery_rate", KeyKind::Rate { default: 1.0 }, "Tagging API requests a second of one account and Region's discovery (`GetResources` pages); it does not draw on Lambda's 15/s.";
    LEADER_BACKEND: "leader.backend", choice("dynamodb", &["dynamodb"]), "Where the lease is kept.";
    LEADER_TABLE: "leader.table", text(None), "The DynamoDB table of the lease (hash key `id`, a string); required with `[leader]`.";
    LEADER_NAME: "leader.name", text(Some("pc-autoscaler")), "The lease item's `id`: copies with the same table and name elect one leader.";
    LEADER_CREATE_TABLE: "leader.create_table", KeyKind::Flag { default: false }, "Create the table (on-demand billing) when it does not exist.";
    LEADER_ENDPOINT_URL: "leader.endpoint_url", text(None), "DynamoDB's endpoint (emulators, tests).";
    LEADER_LEASE: "leader.lease", duration(Some(seconds(15)), seconds(2), minutes(10)), "How long a lease holds without a renew before another copy takes over.";
    LEADER_RENEW_EVERY: "leader.renew_every", duration(Some(seconds(5)), Duration::from_millis(100), minutes(5)), "How often the leader renews; under half the lease.";
    EVENTS_BUS: "events.bus", text(Some("default")), "The EventBridge bus every activity is also sent to (a name or an ARN); without `[events]` none is sent.";
    EVENTS_ENDPOINT_URL: "events.endpoint_url", text(None), "EventBridge's endpoint (emulators, tests); an http:// or https:// URL.";
    EVENTS_QUEUE: "events.queue", count(Some(10_000), 10, 1_000_000), "Events waiting to be sent at most; past it the oldest is dropped and counted.";
    LEADER_SPREAD: "leader.spread", KeyKind::Flag { default: false }, "A lease per shard, spread over the copies: each copy acts on the shards it holds, and the shards are balanced among the live copies. Off: one copy leads every shard.";
    LEADER_IDENTITY: "leader.identity", text(None), "This copy's name in the lease; default the hostname and process id.";
    ACCOUNT_NAME: "account.name", text(None), "A short name for targets and labels: 1 to 32 letters, digits, `-` and `_` (required).";
    ACCOUNT_ROLE_ARN: "account.role_arn", text(None), "The role assumed from the base credentials (`arn:PARTITION:iam::ACCOUNT:role/NAME`, required); refreshed before it expires.";
    ACCOUNT_EXTERNAL_ID: "account.external_id", text(None), "The external id the role's trust policy asks for.";
    ACCOUNT_SESSION_NAME: "account.session_name", text(Some("pc-autoscaler")), "The role session's name, as CloudTrail shows it.";
    ACCOUNT_REGIONS: "account.regions", text(None), "The Regions managed in the account, each a shard (required, at least one).";
    SELECTOR_NAME: "selector.name", text(None), "The selector's name in `plan`, logs and activities; default `selector-N`.";
    SELECTOR_ACCOUNT: "selector.account", text(None), "The `[[account]]` it looks in; default every account (the base one when there is none).";
    SELECTOR_REGION: "selector.region", text(None), "The Region it looks in; default every Region of its accounts.";
    SELECTOR_TAGS: "selector.tags", text(None), "Tags a function must all have, `{ key = \"value\" }`; `\"*\"` takes any value. Found with the Resource Groups Tagging API.";
    SELECTOR_FUNCTIONS: "selector.functions", text(None), "Function-name globs (`*`, `?`); one must match. Without `tags`, functions are listed with `ListFunctions`.";
    SELECTOR_QUALIFIER: "selector.qualifier", text(None), "The alias managed on each function found (required); a function without it is skipped.";
    SELECTOR_TAG_OVERRIDES: "selector.tag_overrides", KeyKind::Flag { default: false }, "Tags `pc-autoscaler:min`, `pc-autoscaler:max` and `pc-autoscaler:target` on a function override the template's, `min` and `max` within the template's `max`.";
    TARGET_FUNCTION: "target.function", text(None), "The function: a name, partial ARN or ARN (required).";
    TARGET_QUALIFIER: "target.qualifier", text(None), "An alias or a published version, not `$LATEST` (required).";
    TARGET_NAME: "target.name", text(None), "The target's label in logs and metrics; default `function:qualifier`, `account/function:qualifier` in an `[[account]]` (`account/region/function:qualifier` when it has several Regions).";
    TARGET_ACCOUNT: "target.account", text(None), "The `[[account]]` it is in; default the base credentials' (or the account an ARN names).";
    TARGET_REGION: "target.region", text(None), "Its Region, one of its account's; required when the account has several and the function is not an ARN.";
    TARGET_MIN: "target.min", count(None, 0, MAX_COUNT), "The lowest capacity (required).";
    TARGET_MAX: "target.max", count(None, 1, MAX_COUNT), "The highest capacity, at least `min` (required).";
    TARGET_TAKE_OVER_AAS: "target.take_over_aas", KeyKind::Flag { default: false }, "When an Application Auto Scaling target manages it: suspend AAS's scaling (recorded, undone by `migrate --rollback`) and manage it; without this it is left alone and reported.";
    TRACKING_METRIC: "target.tracking.metric", choice("concurrency", &["concurrency", "utilization", "custom"]), "What is tracked; `custom` needs `custom = { namespace, name, dimensions, stat }`.";
    TRACKING_TARGET: "target.tracking.target", text(None), "The value to aim for: a utilization above 0 and at most 1, or a custom metric's value per unit (required).";
    TRACKING_SCALE_IN_WINDOW: "target.tracking.scale_in_window", duration(Some(minutes(15)), minutes(1), hours(6)), "Scale in only to the highest recommendation of this window.";
    TRACKING_SCALE_OUT_COOLDOWN: "target.tracking.scale_out_cooldown", duration(Some(seconds(0)), seconds(0), YEAR), "No scale-out sooner than this after the config's `LastModified`.";
    TRACKING_SCALE_IN_COOLDOWN: "target.tracking.scale_in_cooldown", duration(Some(minutes(5)), seconds(0), YEAR), "No scale-in sooner than this after the config's `LastModified`.";
    TRACKING_MAX_SCALE_IN_STEP: "target.tracking.max_scale_in_step", text(None), "At most this much less per scale-in: a percentage such as `\"50%\"` or a count.";
    TRACKING_MISSING_DATA: "target.tracking.missing_data", choice("hold", &["hold", "zero"]), "An empty window of a complete read: keep capacity, or treat as no load.";
    TRACKING_STALE_AFTER: "target.tracking.stale_after", duration(Some(minutes(5)), minutes(1), YEAR), "A newest datapoint older than this counts as missing.";
    TRACKING_DISABLE_SCALE_IN: "target.tracking.disable_scale_in", KeyKind::Flag { default: false }, "Never scale in.";
    TRACKING_FORECAST: "target.tracking.forecast", choice("on", MODES), "Predictive pre-warm from the target's own history (`\"off\"` before 0.2: see the upgrade notes).";
    TRACKING_FORECAST_HORIZON: "target.tracking.forecast_horizon", duration(Some(minutes(10)), minutes(1), hours(1)), "How far ahead the forecast looks.";
    TRACKING_CHOOSE_WINDOW: "target.tracking.choose_window", choice("on", MODES), "The scale-in window and target chosen from the target's history at the configured pair's cost (`\"off\"` before 0.2).";
    CUSTOM_STAT: "target.tracking.custom.stat", text(Some("Average")), "A CloudWatch statistic: Average, Maximum, Minimum, Sum, SampleCount or pNN.";
    SCHEDULE_NAME: "target.schedule.name", text(None), "The rule's name; default `rule-N`.";
    SCHEDULE_CRON: "target.schedule.cron", text(None), "A recurring rule: 5 fields, or 6 with seconds first (this or `at`).";
    SCHEDULE_AT: "target.schedule.at", text(None), "A one-off rule: a local date and time (this or `cron`).";
    SCHEDULE_TIMEZONE: "target.schedule.timezone", text(Some("UTC")), "The IANA zone `cron` and `at` are read in.";
    SCHEDULE_DURATION: "target.schedule.duration", duration(None, Duration::from_millis(1), YEAR), "How long the rule holds; without it, until another open-ended rule starts.";
    SCHEDULE_LEAD: "target.schedule.lead", duration(Some(seconds(0)), seconds(0), YEAR), "The rule takes effect this much before its fire time.";
    SCHEDULE_START: "target.schedule.start", text(None), "Fire times before this do not count: RFC 3339, or a local date and time in the rule's zone.";
    SCHEDULE_END: "target.schedule.end", text(None), "Fire times after this do not count; the bounds the rule set stay until another rule starts.";
    SCHEDULE_MIN: "target.schedule.min", count(None, 0, MAX_COUNT), "The rule's floor (`min`, `max` or both).";
    SCHEDULE_MAX: "target.schedule.max", count(None, 1, MAX_COUNT), "The rule's ceiling.";
}

/// The book's configuration reference (`docs/src/reference/configuration.md`, kept in
/// step by `tests/docs.rs`): one row a key.
pub fn reference_table() -> String {
    let mut table =
        String::from("| key | default | range | meaning |\n| --- | --- | --- | --- |\n");
    for key in REFERENCE {
        table.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            key.path,
            key.default_text(),
            key.range_text(),
            key.meaning
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_file_is_in_the_table_and_no_other() {
        let mut known = super::super::schema::every_key_path();
        known.sort();
        let mut listed: Vec<&str> = REFERENCE.iter().map(|key| key.path).collect();
        listed.sort();
        // Tables themselves and the custom metric's other keys are described by their
        // parents' rows.
        let described_by_parent = [
            "target.tracking.custom",
            "target.tracking.custom.namespace",
            "target.tracking.custom.name",
            "target.tracking.custom.dimensions",
        ];
        // A selector's template keys are the target's, described by their rows.
        let template = [
            "selector.min",
            "selector.max",
            "selector.tracking",
            "selector.schedule",
            "selector.take_over_aas",
        ];
        known.retain(|path| {
            !described_by_parent.contains(&path.as_str())
                && !template.iter().any(|prefix| path.starts_with(prefix))
        });
        assert_eq!(known, listed);
    }
}
