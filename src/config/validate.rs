//! Raw sections to typed values, collecting every error instead of stopping at one.
//!
//! Each check reports through `Checker::error` with the span of the offending value;
//! the key path is derived from that span, so an inherited value is reported where
//! it is written (`defaults.tracking.target`), not where it is used.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{NaiveDateTime, TimeDelta};
use chrono_tz::Tz;
use toml::Spanned;
use toml::de::DeTable;

use super::error::ConfigError;
use super::model::*;
use super::raw::*;
use super::schema::{KeyIndex, LineCursor};

/// The largest capacity or count Lambda's API can carry (`i32`).
pub const MAX_COUNT: u32 = i32::MAX as u32;
/// Rates of Lambda requests per second: above 0, at most this. Lambda allows 15 a
/// second per account and Region; emulators may take more, nothing takes millions.
pub const MAX_RATE: f64 = 1_000.0;
/// The lowest rate: one request in 100 s. Lower would park a pass for hours.
pub const MIN_RATE: f64 = 0.01;

/// Collects errors for one file.
///
/// Errors are kept as byte offsets and located once, in [`Checker::finish`]: the key
/// path by binary search over a [`KeyIndex`], line and column by one forward scan over
/// the sorted offsets. Locating each error as it comes was quadratic (20,000 errors
/// took 99 s).
pub struct Checker<'a> {
    file: &'a Path,
    source: &'a str,
    root: &'a DeTable<'a>,
    pending: Vec<PendingError>,
}

struct PendingError {
    offset: usize,
    /// `None`: derived from the offset in `finish`.
    key: Option<String>,
    reason: String,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a Path, source: &'a str, root: &'a DeTable<'a>) -> Self {
        Self {
            file,
            source,
            root,
            pending: Vec::new(),
        }
    }

    /// An error at `span`, its key path derived from the position.
    pub fn error(&mut self, span: Range<usize>, reason: impl Into<String>) {
        self.pending.push(PendingError {
            offset: span.start,
            key: None,
            reason: reason.into(),
        });
    }

    pub fn error_at_path(&mut self, span: Range<usize>, key: String, reason: impl Into<String>) {
        self.pending.push(PendingError {
            offset: span.start,
            key: Some(key),
            reason: reason.into(),
        });
    }

    pub fn finish(mut self) -> Vec<ConfigError> {
        self.pending.sort_by_key(|pending| pending.offset);
        let index = KeyIndex::new(self.root);
        let mut cursor = LineCursor::new(self.source);
        let mut errors: Vec<ConfigError> = self
            .pending
            .into_iter()
            .map(|pending| {
                let (line, column) = cursor.advance_to(pending.offset);
                ConfigError {
                    file: self.file.to_path_buf(),
                    line,
                    column,
                    key: pending
                        .key
                        .or_else(|| index.path_at(pending.offset))
                        .unwrap_or_default(),
                    reason: pending.reason,
                }
            })
            .collect();
        // Stable: errors at one position keep the order they were found in.
        errors.sort_by(|a, b| (a.line, a.column, &a.key).cmp(&(b.line, b.column, &b.key)));
        // An inherited `[defaults]` value is checked once per target; report it once.
        errors.dedup();
        errors
    }

    /// A humantime duration; `None` when absent or invalid (invalid is reported).
    fn duration(&mut self, value: &Option<Spanned<String>>) -> Option<TimeDelta> {
        let value = value.as_ref()?;
        match humantime::parse_duration(value.get_ref()) {
            Ok(parsed) => match TimeDelta::from_std(parsed) {
                Ok(delta) if delta <= TimeDelta::days(366) => Some(delta),
                _ => {
                    self.error(value.span(), "duration is longer than a year");
                    None
                }
            },
            Err(error) => {
                self.error(
                    value.span(),
                    format!(
                        "`{}` is not a duration ({error}); write e.g. \"90s\", \"15m\" or \"1h 30m\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// A duration within `[min, max]`; `None` when absent or wrong (wrong is reported).
    fn bounded_duration(
        &mut self,
        value: &Option<Spanned<String>>,
        min: TimeDelta,
        max: TimeDelta,
    ) -> Option<TimeDelta> {
        let parsed = self.duration(value)?;
        let raw = value.as_ref()?;
        if parsed < min || parsed > max {
            self.error(
                raw.span(),
                format!(
                    "`{}` is out of range: from {} to {}",
                    raw.get_ref(),
                    humantime::format_duration(min.to_std().unwrap_or_default()),
                    humantime::format_duration(max.to_std().unwrap_or_default()),
                ),
            );
            return None;
        }
        Some(parsed)
    }

    /// A non-negative count that Lambda accepts: its API takes a 32-bit signed integer.
    fn count(&mut self, value: &Spanned<i64>, what: &str) -> Option<u32> {
        match u32::try_from(*value.get_ref()) {
            Ok(count) if count <= MAX_COUNT => Some(count),
            _ => {
                self.error(
                    value.span(),
                    format!("{what} must be a whole number from 0 to {MAX_COUNT}"),
                );
                None
            }
        }
    }

    fn one_of<T: Copy>(&mut self, value: &Spanned<String>, choices: &[(&str, T)]) -> Option<T> {
        let found = choices
            .iter()
            .find(|(name, _)| *name == value.get_ref().as_str());
        if found.is_none() {
            let names: Vec<String> = choices
                .iter()
                .map(|(name, _)| format!("\"{name}\""))
                .collect();
            self.error(
                value.span(),
                format!("`{}` is not one of {}", value.get_ref(), names.join(", ")),
            );
        }
        found.map(|(_, choice)| *choice)
    }
}

pub fn aws(checker: &mut Checker<'_>, raw: RawAws) -> AwsSettings {
    if let Some(url) = &raw.endpoint_url {
        check_url(checker, url);
    }
    let timeout = checker
        .bounded_duration(&raw.timeout, TimeDelta::seconds(1), TimeDelta::minutes(5))
        .and_then(|timeout| timeout.to_std().ok());
    AwsSettings {
        timeout,
        region: raw.region.map(Spanned::into_inner),
        profile: raw.profile.map(Spanned::into_inner),
        endpoint_url: raw.endpoint_url.map(Spanned::into_inner),
    }
}

pub fn daemon(checker: &mut Checker<'_>, raw: RawDaemon) -> DaemonSettings {
    let defaults = DaemonSettings::default();
    let std_duration = |delta: Option<TimeDelta>| delta.and_then(|delta| delta.to_std().ok());
    let interval = std_duration(checker.bounded_duration(
        &raw.interval,
        TimeDelta::seconds(1),
        TimeDelta::hours(1),
    ))
    .unwrap_or(defaults.interval);
    let listen = match &raw.listen {
        None => defaults.listen,
        Some(text) => SocketAddr::from_str(text.get_ref()).unwrap_or_else(|error| {
            checker.error(
                text.span(),
                format!(
                    "`{}` is not an address and port ({error}); write e.g. \"127.0.0.1:9464\"",
                    text.get_ref()
                ),
            );
            defaults.listen
        }),
    };
    let log_format = raw
        .log_format
        .as_ref()
        .and_then(|value| {
            checker.one_of(
                value,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            )
        })
        .unwrap_or(defaults.log_format);
    let rate = |checker: &mut Checker<'_>, value: &Option<Spanned<f64>>, default: f64| match value {
        Some(rate) if !(MIN_RATE..=MAX_RATE).contains(rate.get_ref()) => {
            checker.error(
                rate.span(),
                format!("must be a number of requests per second from {MIN_RATE} to {MAX_RATE}"),
            );
            default
        }
        Some(rate) => *rate.get_ref(),
        None => default,
    };
    let max_write_rate = rate(checker, &raw.max_write_rate, defaults.max_write_rate);
    let max_read_rate = rate(checker, &raw.max_read_rate, defaults.max_read_rate);
    let control_plane_budget = rate(
        checker,
        &raw.control_plane_budget,
        defaults.control_plane_budget,
    );
    let drift_scan_period = std_duration(checker.bounded_duration(
        &raw.drift_scan_period,
        TimeDelta::seconds(1),
        TimeDelta::hours(24),
    ))
    .unwrap_or(defaults.drift_scan_period);
    let refresh_period = std_duration(checker.bounded_duration(
        &raw.refresh_period,
        TimeDelta::seconds(1),
        TimeDelta::hours(24),
    ))
    .unwrap_or(defaults.refresh_period);
    let account_reserve = raw
        .account_reserve
        .as_ref()
        .and_then(|value| checker.count(value, "account_reserve"))
        .unwrap_or(defaults.account_reserve);
    let shutdown_grace = std_duration(checker.bounded_duration(
        &raw.shutdown_grace,
        TimeDelta::zero(),
        TimeDelta::minutes(15),
    ))
    .unwrap_or(defaults.shutdown_grace);
    let pass_timeout = std_duration(checker.bounded_duration(
        &raw.pass_timeout,
        TimeDelta::seconds(10),
        TimeDelta::hours(6),
    ));
    let activity_log = raw.activity_log.as_ref().and_then(|path| {
        if path.get_ref().is_empty() {
            checker.error(path.span(), "the activity log path must not be empty");
            None
        } else {
            Some(PathBuf::from(path.get_ref()))
        }
    });
    let activity_log_max_mib = match &raw.activity_log_max_mib {
        Some(value) => match u32::try_from(*value.get_ref()) {
            Ok(mib) if (1..=4_096).contains(&mib) => mib,
            _ => {
                checker.error(
                    value.span(),
                    "activity_log_max_mib must be a whole number from 1 to 4096",
                );
                defaults.activity_log_max_mib
            }
        },
        None => defaults.activity_log_max_mib,
    };
    DaemonSettings {
        activity_log,
        activity_log_max_mib,
        interval,
        listen,
        dry_run: raw.dry_run.unwrap_or(defaults.dry_run),
        log_format,
        max_write_rate,
        max_read_rate,
        control_plane_budget,
        drift_scan_period,
        refresh_period,
        account_reserve,
        shutdown_grace,
        pass_timeout,
    }
}

pub fn leader(
    checker: &mut Checker<'_>,
    raw: RawLeader,
    span: Range<usize>,
) -> Option<LeaderSettings> {
    if let Some(backend) = &raw.backend {
        checker.one_of(backend, &[("dynamodb", ())])?;
    }
    if let Some(url) = &raw.endpoint_url {
        check_url(checker, url);
    }
    let table = match raw.table {
        Some(table) if valid_table_name(table.get_ref()) => Some(table.into_inner()),
        Some(table) => {
            checker.error(
                table.span(),
                "a DynamoDB table name is 3 to 255 of a-z, A-Z, 0-9, `_`, `-` and `.`",
            );
            None
        }
        None => {
            checker.error_at_path(
                span.clone(),
                "leader".into(),
                "missing required key `table`",
            );
            None
        }
    };
    let name = match raw.name {
        Some(name) if name.get_ref().is_empty() => {
            checker.error(name.span(), "the lease name must not be empty");
            None
        }
        Some(name) => Some(name.into_inner()),
        None => Some(LeaderSettings::DEFAULT_NAME.to_owned()),
    };
    let std_duration = |delta: Option<TimeDelta>| delta.and_then(|delta| delta.to_std().ok());
    let lease = std_duration(checker.bounded_duration(
        &raw.lease,
        TimeDelta::seconds(2),
        TimeDelta::minutes(10),
    ));
    let renew_every = std_duration(checker.bounded_duration(
        &raw.renew_every,
        TimeDelta::milliseconds(100),
        TimeDelta::minutes(5),
    ));
    let (lease, renew_every) = match (lease, renew_every, &raw.lease, &raw.renew_every) {
        (None, _, Some(_), _) | (_, None, _, Some(_)) => return None,
        (lease, renew_every, ..) => (
            lease.unwrap_or(LeaderSettings::DEFAULT_LEASE),
            renew_every.unwrap_or(LeaderSettings::DEFAULT_RENEW_EVERY),
        ),
    };
    if renew_every * 2 >= lease {
        let at = raw
            .renew_every
            .as_ref()
            .or(raw.lease.as_ref())
            .map_or(span, Spanned::span);
        checker.error(
            at,
            format!(
                "renew_every ({}) must be under half the lease ({}): the leader writes only while its last renew is younger than lease / 2",
                humantime::format_duration(renew_every),
                humantime::format_duration(lease)
            ),
        );
        return None;
    }
    let identity = match raw.identity {
        Some(identity) if identity.get_ref().is_empty() => {
            checker.error(identity.span(), "the identity must not be empty");
            None
        }
        identity => identity.map(Spanned::into_inner),
    };
    Some(LeaderSettings {
        table: table?,
        name: name?,
        create_table: raw.create_table.unwrap_or(false),
        endpoint_url: raw.endpoint_url.map(Spanned::into_inner),
        lease,
        renew_every,
        identity,
    })
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn check_url(checker: &mut Checker<'_>, url: &Spanned<String>) {
    let text = url.get_ref();
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        checker.error(
            url.span(),
            format!("`{text}` is not a URL; write e.g. \"http://127.0.0.1:4566\""),
        );
    }
}

/// Validates one target. `span` is the target's table, for keys that are missing.
pub fn target(
    checker: &mut Checker<'_>,
    raw: RawTarget,
    span: Range<usize>,
    path: &str,
    region: Option<&str>,
) -> Option<TargetConfig> {
    let missing = |checker: &mut Checker<'_>, key: &str| {
        checker.error_at_path(
            span.clone(),
            path.to_owned(),
            format!("missing required key `{key}`"),
        );
    };
    let function = match &raw.function {
        Some(function) => match FunctionRef::parse(function.get_ref()) {
            Ok(parsed) => Some((function, parsed)),
            Err(reason) => {
                checker.error(function.span(), reason);
                None
            }
        },
        None => {
            missing(checker, "function");
            None
        }
    };
    let qualifier = match &raw.qualifier {
        Some(qualifier) => check_qualifier(checker, qualifier),
        None => {
            missing(checker, "qualifier");
            None
        }
    };
    if let Some((written, parsed)) = &function {
        if let (Some(in_arn), Some(qualifier)) = (&parsed.qualifier, &qualifier)
            && in_arn != qualifier
        {
            checker.error(
                written.span(),
                format!("the function's ARN names qualifier `{in_arn}` but `qualifier` is `{qualifier}`; they must agree (or leave it out of the ARN)"),
            );
        }
        if let (Some(in_arn), Some(configured)) = (&parsed.region, region)
            && *in_arn != configured
        {
            checker.error(
                written.span(),
                format!("the function's ARN is in region `{in_arn}` but [aws] region is `{configured}`: every target is managed through that one region"),
            );
        }
    }
    let function = function.map(|(written, parsed)| FunctionId {
        name: parsed.name.to_owned(),
        account: parsed.account.map(str::to_owned),
        reference: match parsed.qualifier {
            // Requests name the qualifier separately; a List takes no qualifier.
            Some(qualifier) => written
                .get_ref()
                .strip_suffix(qualifier)
                .and_then(|rest| rest.strip_suffix(':'))
                .unwrap_or(written.get_ref())
                .to_owned(),
            None => written.get_ref().clone(),
        },
    });
    let min = match &raw.min {
        Some(min) => checker.count(min, "min"),
        None => {
            missing(checker, "min");
            None
        }
    };
    let max = match &raw.max {
        Some(max) => checker.count(max, "max"),
        None => {
            missing(checker, "max");
            None
        }
    };
    if let (Some(min_value), Some(max_value), Some(max_raw)) = (min, max, &raw.max) {
        if max_value == 0 {
            checker.error(max_raw.span(), "max must be at least 1");
        } else if min_value > max_value {
            checker.error(
                max_raw.span(),
                format!("max ({max_value}) is below min ({min_value})"),
            );
        }
    }
    let tracking = raw
        .tracking
        .and_then(|tracking| self::tracking(checker, tracking));
    let schedules = schedules(checker, raw.schedule.unwrap_or_default(), min, max);
    let name = raw
        .name
        .filter(|name| check_label(checker, name, "name"))
        .map(Spanned::into_inner);
    let (function, qualifier, min, max) = (function?, qualifier?, min?, max?);
    Some(TargetConfig {
        name: name
            .unwrap_or_else(|| format!("{}:{qualifier}", function.name))
            .into(),
        function,
        qualifier: Qualifier::classify(&qualifier),
        min,
        max,
        tracking,
        schedules,
    })
}

fn check_qualifier(checker: &mut Checker<'_>, qualifier: &Spanned<String>) -> Option<String> {
    let text = qualifier.get_ref();
    if text == "$LATEST" {
        checker.error(
            qualifier.span(),
            "`$LATEST` cannot have provisioned concurrency; use an alias or a published version",
        );
        return None;
    }
    if !is_qualifier(text) {
        checker.error(
            qualifier.span(),
            format!(
                "`{}` is not an alias name or version number (letters, digits, `-` and `_`)",
                printable(text)
            ),
        );
        return None;
    }
    Some(text.clone())
}

fn tracking(checker: &mut Checker<'_>, raw: RawTracking) -> Option<TrackingConfig> {
    let custom = raw
        .custom
        .map(|custom| (custom.span(), custom.into_inner()));
    let metric = match &raw.metric {
        None => {
            let span = raw.target.as_ref().map(Spanned::span).unwrap_or(0..0);
            checker.error(
                span,
                "tracking needs `metric` (\"concurrency\", \"utilization\" or \"custom\")",
            );
            None
        }
        Some(metric) => match metric.get_ref().as_str() {
            "concurrency" => Some(MetricKind::Concurrency),
            "utilization" => Some(MetricKind::Utilization),
            "custom" => match &custom {
                Some((_, custom)) => custom_metric(checker, custom, metric.span()),
                None => {
                    checker.error(
                        metric.span(),
                        "metric = \"custom\" needs a `custom = { namespace, name, dimensions, stat }` table",
                    );
                    None
                }
            },
            other => {
                checker.error(
                    metric.span(),
                    format!("`{other}` is not one of \"concurrency\", \"utilization\", \"custom\""),
                );
                None
            }
        },
    };
    if let (Some((span, _)), Some(kind)) = (&custom, &metric)
        && !matches!(kind, MetricKind::Custom(_))
    {
        checker.error(
            span.clone(),
            "`custom` is only used with metric = \"custom\"",
        );
    }
    let target = match &raw.target {
        None => {
            let span = raw.metric.as_ref().map(Spanned::span).unwrap_or(0..0);
            checker.error(span, "tracking needs `target`, the value to aim for");
            None
        }
        Some(target) => {
            let value = *target.get_ref();
            let custom = matches!(metric, Some(MetricKind::Custom(_)));
            if custom && !(value.is_finite() && value > 0.0) {
                checker.error(
                    target.span(),
                    format!(
                        "target {value} must be above 0 (the metric value per unit of capacity)"
                    ),
                );
                None
            } else if !custom && !is_utilization(value) {
                checker.error(
                    target.span(),
                    format!("target {value} is out of range: a utilization above 0 and at most 1, e.g. 0.7"),
                );
                None
            } else {
                Some(value)
            }
        }
    };
    // CloudWatch publishes one datapoint a minute: a shorter window makes every
    // dip a scale-in (4,210 writes a week instead of 513 on the shared ELB trace).
    let scale_in_window = checker
        .bounded_duration(
            &raw.scale_in_window,
            TimeDelta::minutes(1),
            TimeDelta::hours(6),
        )
        .unwrap_or(TimeDelta::minutes(15));
    let scale_out_cooldown = checker
        .duration(&raw.scale_out_cooldown)
        .unwrap_or(TimeDelta::zero());
    let scale_in_cooldown = checker
        .duration(&raw.scale_in_cooldown)
        .unwrap_or(TimeDelta::minutes(5));
    let stale_after = checker
        .duration(&raw.stale_after)
        .unwrap_or(TimeDelta::minutes(5));
    if let Some(stale) = &raw.stale_after
        && stale_after < TimeDelta::minutes(1)
    {
        checker.error(
            stale.span(),
            "stale_after must be at least 1m: CloudWatch publishes one datapoint a minute",
        );
    }
    let max_scale_in_step = raw
        .max_scale_in_step
        .and_then(|step| step_limit(checker, &step));
    let missing_data = raw
        .missing_data
        .as_ref()
        .and_then(|value| {
            checker.one_of(
                value,
                &[("hold", MissingData::Hold), ("zero", MissingData::Zero)],
            )
        })
        .unwrap_or(MissingData::Hold);
    let mut mode = |value: &Option<Spanned<String>>| {
        value
            .as_ref()
            .and_then(|value| {
                checker.one_of(
                    value,
                    &[
                        ("off", ForecastMode::Off),
                        ("observe", ForecastMode::Observe),
                        ("on", ForecastMode::On),
                    ],
                )
            })
            .unwrap_or_default()
    };
    let forecast = mode(&raw.forecast);
    let choose_window = mode(&raw.choose_window);
    let forecast_horizon = checker
        .bounded_duration(
            &raw.forecast_horizon,
            TimeDelta::minutes(1),
            TimeDelta::hours(1),
        )
        .unwrap_or(TimeDelta::minutes(10));
    Some(TrackingConfig {
        forecast,
        forecast_horizon,
        choose_window,
        metric: metric?,
        target: target?,
        scale_in_window,
        scale_out_cooldown,
        scale_in_cooldown,
        max_scale_in_step,
        missing_data,
        stale_after,
        disable_scale_in: raw.disable_scale_in.unwrap_or(false),
    })
}

/// A utilization target: above 0 and at most 1 (NaN is neither).
fn is_utilization(value: f64) -> bool {
    value > 0.0 && value <= 1.0
}

fn custom_metric(
    checker: &mut Checker<'_>,
    raw: &RawCustomMetric,
    span: Range<usize>,
) -> Option<MetricKind> {
    let mut required = |value: &Option<Spanned<String>>, key: &str| match value {
        Some(text) if !text.get_ref().is_empty() => Some(text.get_ref().clone()),
        _ => {
            checker.error(span.clone(), format!("the custom metric needs `{key}`"));
            None
        }
    };
    let namespace = required(&raw.namespace, "namespace");
    let name = required(&raw.name, "name");
    let stat = match &raw.stat {
        None => Some("Average".to_owned()),
        Some(stat) => {
            let text = stat.get_ref();
            let percentile = text
                .strip_prefix('p')
                .and_then(|number| number.parse::<f64>().ok())
                .is_some_and(|p| p > 0.0 && p < 100.0);
            if percentile
                || ["Average", "Maximum", "Minimum", "Sum", "SampleCount"].contains(&text.as_str())
            {
                Some(text.clone())
            } else {
                checker.error(
                    stat.span(),
                    format!("`{text}` is not a CloudWatch statistic (Average, Maximum, Minimum, Sum, SampleCount or pNN)"),
                );
                None
            }
        }
    };
    Some(MetricKind::Custom(CustomMetric {
        namespace: namespace?,
        name: name?,
        dimensions: raw.dimensions.clone(),
        stat: stat?,
    }))
}

fn step_limit(checker: &mut Checker<'_>, step: &Spanned<RawStep>) -> Option<StepLimit> {
    let invalid = "max_scale_in_step must be a percentage such as \"50%\" or a count of at least 1";
    match step.get_ref() {
        RawStep::Count(count) => match u32::try_from(*count) {
            Ok(count) if count >= 1 => Some(StepLimit::Count(count)),
            _ => {
                checker.error(step.span(), invalid);
                None
            }
        },
        RawStep::Text(text) => match text
            .strip_suffix('%')
            .and_then(|number| number.trim().parse::<f64>().ok())
        {
            Some(percent) if percent > 0.0 && percent <= 100.0 => {
                Some(StepLimit::Fraction(percent / 100.0))
            }
            _ => {
                checker.error(step.span(), invalid);
                None
            }
        },
    }
}

fn schedules(
    checker: &mut Checker<'_>,
    raw: Vec<Spanned<RawSchedule>>,
    target_min: Option<u32>,
    target_max: Option<u32>,
) -> Vec<ScheduleRule> {
    let mut rules = Vec::new();
    let mut names: BTreeMap<String, ()> = BTreeMap::new();
    for (index, spanned) in raw.into_iter().enumerate() {
        let span = spanned.span();
        let raw = spanned.into_inner();
        let name = match &raw.name {
            Some(name) if !check_label(checker, name, "name") => continue,
            Some(name) => name.get_ref().clone(),
            None => format!("rule-{index}"),
        };
        if names.insert(name.clone(), ()).is_some() {
            let at = raw.name.as_ref().map_or(span.clone(), Spanned::span);
            checker.error(
                at,
                format!("another rule of this target is already named `{name}`"),
            );
        }
        if let Some(rule) = schedule(checker, raw, name, span, target_min, target_max) {
            rules.push(rule);
        }
    }
    rules
}

fn schedule(
    checker: &mut Checker<'_>,
    raw: RawSchedule,
    name: String,
    span: Range<usize>,
    target_min: Option<u32>,
    target_max: Option<u32>,
) -> Option<ScheduleRule> {
    let timezone = match &raw.timezone {
        None => Some(Tz::UTC),
        Some(zone) => {
            match zone.get_ref().parse::<Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    checker.error(
                    zone.span(),
                    format!("`{}` is not an IANA time zone; write e.g. \"Europe/Berlin\" or \"UTC\"", zone.get_ref()),
                );
                    None
                }
            }
        }
    };
    let when = match (&raw.cron, &raw.at) {
        (Some(_), Some(at)) => {
            checker.error(at.span(), "a rule has either `cron` or `at`, not both");
            None
        }
        (None, None) => {
            checker.error(
                span.clone(),
                "a rule needs `cron` (recurring) or `at` (one-off)",
            );
            None
        }
        (Some(cron), None) => parse_cron(checker, cron),
        (None, Some(at)) => parse_at(checker, at),
    };
    let duration = checker.duration(&raw.duration);
    if let (Some(duration), Some(raw_duration)) = (duration, &raw.duration)
        && duration <= TimeDelta::zero()
    {
        checker.error(
            raw_duration.span(),
            "duration must be longer than 0s (leave it out for an open-ended rule)",
        );
    }
    let lead = checker.duration(&raw.lead).unwrap_or(TimeDelta::zero());
    let min = raw.min.as_ref().and_then(|min| checker.count(min, "min"));
    let max = raw.max.as_ref().and_then(|max| checker.count(max, "max"));
    if raw.min.is_none() && raw.max.is_none() {
        checker.error(
            span.clone(),
            "a rule sets `min`, `max` or both; this one sets neither",
        );
    }
    let effective_min = min.or(target_min);
    let effective_max = max.or(target_max);
    if let (Some(low), Some(high)) = (effective_min, effective_max)
        && low > high
    {
        let at = raw
            .min
            .as_ref()
            .or(raw.max.as_ref())
            .map_or(span, Spanned::span);
        let reason = match (min, max) {
            (Some(_), Some(_)) => format!("the rule's min ({low}) is above its max ({high})"),
            (Some(_), None) => format!(
                "the rule's min ({low}) is above the target's max ({high}); set `max` on the rule too"
            ),
            _ => format!(
                "the rule's max ({high}) is below the target's min ({low}); set `min` on the rule too"
            ),
        };
        checker.error(at, reason);
    }
    if let Some(max_raw) = &raw.max
        && max == Some(0)
    {
        checker.error(max_raw.span(), "max must be at least 1");
    }
    Some(ScheduleRule {
        name,
        when: when?,
        timezone: timezone?,
        duration,
        lead,
        min,
        max,
    })
}

fn parse_cron(checker: &mut Checker<'_>, cron: &Spanned<String>) -> Option<RuleTime> {
    let text = cron.get_ref().trim();
    let fields = text.split_whitespace().count();
    if !(fields == 5 || fields == 6) {
        checker.error(
            cron.span(),
            format!("`{text}` has {fields} fields; write 5 (minute hour day month weekday) or 6 (seconds first)"),
        );
        return None;
    }
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build();
    match parser.parse(text) {
        Ok(parsed) => {
            // A pattern such as `0 0 30 2 *` parses but never fires.
            let probe = chrono::DateTime::<chrono::Utc>::from_timestamp(946_684_800, 0)
                .expect("2000-01-01 is a valid timestamp");
            if parsed.find_next_occurrence(&probe, false).is_err() {
                checker.error(cron.span(), format!("`{text}` never fires"));
                return None;
            }
            Some(RuleTime::Cron {
                expression: text.to_owned(),
                cron: Box::new(parsed),
            })
        }
        Err(error) => {
            checker.error(
                cron.span(),
                format!("`{text}` is not a cron expression: {error}"),
            );
            None
        }
    }
}

fn parse_at(checker: &mut Checker<'_>, at: &Spanned<RawAt>) -> Option<RuleTime> {
    let text = at.get_ref().as_text();
    let parsed = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(&text, format).ok());
    if parsed.is_none() {
        checker.error(
            at.span(),
            format!("`{text}` is not a local date and time; write e.g. \"2026-11-27T06:00:00\" (the zone comes from `timezone`)"),
        );
    }
    parsed.map(RuleTime::At)
}

/// Longest target or rule name: it becomes a metric label and a log field.
const MAX_LABEL_CHARS: usize = 128;

/// Target and rule names end up in logs, metric labels and terminals: they must be
/// visible text, so a name cannot forge a log line or reorder what a person reads.
/// Reports and returns false when `name` is not acceptable.
fn check_label(checker: &mut Checker<'_>, name: &Spanned<String>, key: &str) -> bool {
    let text = name.get_ref();
    let reason = if text.trim().is_empty() {
        Some(format!(
            "{key} must not be empty (leave it out for the default)"
        ))
    } else if text.chars().count() > MAX_LABEL_CHARS {
        Some(format!("{key} is longer than {MAX_LABEL_CHARS} characters"))
    } else {
        text.chars().find(|c| is_invisible(*c)).map(|c| {
            format!(
                "{key} contains the control or formatting character U+{:04X}; use visible characters only",
                u32::from(c)
            )
        })
    };
    match reason {
        Some(reason) => {
            checker.error(name.span(), reason);
            false
        }
        None => true,
    }
}

/// Control characters (NUL, newline, escape…) and the Unicode format characters that
/// reorder or hide text: bidi embeddings, overrides and isolates, zero-width marks.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// A function reference as Lambda accepts it: a name (`my-function`), a partial ARN
/// (`123456789012:function:my-function`) or a full ARN
/// (`arn:aws:lambda:us-east-1:123456789012:function:my-function`), each optionally
/// followed by `:qualifier`.
#[derive(Debug, PartialEq, Eq)]
pub struct FunctionRef<'a> {
    pub name: &'a str,
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub qualifier: Option<&'a str>,
}

/// Lambda's limits: a name is 1 to 64 of these characters; the whole reference at
/// most 140 characters.
const MAX_FUNCTION_NAME: usize = 64;
const MAX_FUNCTION_REFERENCE: usize = 140;

impl<'a> FunctionRef<'a> {
    pub fn parse(text: &'a str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("function must not be empty".into());
        }
        if text.len() > MAX_FUNCTION_REFERENCE {
            return Err(format!(
                "function is {} characters long; Lambda accepts at most {MAX_FUNCTION_REFERENCE}",
                text.len()
            ));
        }
        let parts: Vec<&str> = text.split(':').collect();
        let (account, region, name, qualifier) = match parts.as_slice() {
            [
                "arn",
                partition,
                service,
                region,
                account,
                resource,
                rest @ ..,
            ] => {
                if *service != "lambda" {
                    return Err(format!(
                        "`{}` is not a Lambda ARN: the service is `{service}`, not `lambda`",
                        printable(text)
                    ));
                }
                check_region(region, partition)?;
                check_account(account)?;
                if *resource != "function" {
                    return Err(format!(
                        "`{}` is not a function ARN: expected `function` after the account, found `{}`",
                        printable(text),
                        printable(resource)
                    ));
                }
                match rest {
                    [name] => (Some(*account), Some(*region), *name, None),
                    [name, qualifier] => (Some(*account), Some(*region), *name, Some(*qualifier)),
                    [] => {
                        return Err(format!(
                            "`{}` has no function name after `function:`",
                            printable(text)
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "`{}` has too many `:`-separated parts for a function ARN",
                            printable(text)
                        ));
                    }
                }
            }
            ["arn", ..] => {
                return Err(format!(
                    "`{}` is not a complete function ARN; write arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME",
                    printable(text)
                ));
            }
            [account, "function", name] => {
                check_account(account)?;
                (Some(*account), None, *name, None)
            }
            [account, "function", name, qualifier] => {
                check_account(account)?;
                (Some(*account), None, *name, Some(*qualifier))
            }
            [name] => (None, None, *name, None),
            [name, qualifier] => (None, None, *name, Some(*qualifier)),
            _ => {
                return Err(format!(
                    "`{}` is not a function name, partial ARN (ACCOUNT:function:NAME) or ARN",
                    printable(text)
                ));
            }
        };
        let name_valid = !name.is_empty()
            && name.len() <= MAX_FUNCTION_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_valid {
            return Err(format!(
                "`{}` is not a Lambda function name: 1 to {MAX_FUNCTION_NAME} letters, digits, `-` and `_`",
                printable(name)
            ));
        }
        if let Some(qualifier) = qualifier
            && !is_qualifier(qualifier)
        {
            return Err(format!(
                "`{}` is not an alias name or version number (letters, digits, `-` and `_`)",
                printable(qualifier)
            ));
        }
        Ok(Self {
            name,
            account,
            region,
            qualifier,
        })
    }
}

/// `region` must look like an AWS Region and belong to `partition`.
fn check_region(region: &str, partition: &str) -> Result<(), String> {
    let pieces: Vec<&str> = region.split('-').collect();
    let lowercase =
        |piece: &&str| !piece.is_empty() && piece.chars().all(|c| c.is_ascii_lowercase());
    let well_formed = match pieces.as_slice() {
        [area, middle @ .., number] => {
            area.len() == 2
                && lowercase(area)
                && !middle.is_empty()
                && middle.iter().all(lowercase)
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    if !well_formed {
        return Err(format!(
            "`{}` is not an AWS Region (e.g. us-east-1)",
            printable(region)
        ));
    }
    let expected = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    };
    if partition != expected && !(expected == "aws" && partition.starts_with("aws-iso")) {
        return Err(format!(
            "the ARN's partition `{}` does not match region `{region}` (expected `{expected}`)",
            printable(partition)
        ));
    }
    Ok(())
}

fn check_account(account: &str) -> Result<(), String> {
    if account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an AWS account ID: 12 digits",
            printable(account)
        ))
    }
}

fn is_qualifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `text` with anything invisible escaped, for quoting user input in an error.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if is_invisible(c) {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_references_in_every_form_lambda_accepts() {
        let parsed = |text| FunctionRef::parse(text).expect(text);
        assert_eq!(parsed("my-function").name, "my-function");
        assert_eq!(parsed("my-function:live").qualifier, Some("live"));
        assert_eq!(parsed("123456789012:function:f_1").name, "f_1");
        let arn = parsed("arn:aws:lambda:us-east-1:123456789012:function:f:7");
        assert_eq!(
            (arn.name, arn.region, arn.qualifier),
            ("f", Some("us-east-1"), Some("7"))
        );
        parsed("arn:aws-cn:lambda:cn-northwest-1:123456789012:function:f");
        parsed("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f");
        let partial = parsed("123456789012:function:g:live");
        assert_eq!(
            (partial.name, partial.account, partial.qualifier),
            ("g", Some("123456789012"), Some("live"))
        );
    }

    #[test]
    fn malformed_function_references_are_refused() {
        for text in [
            "",
            "arn:aws:lambda:us-east-1:12345:function",
            "arn:aws:s3:us-east-1:123456789012:function:f",
            "arn:aws:lambda:us-east-1:123456789012:layer:f",
            "arn:aws:lambda:us-east-1:123456789012:function:f:1:2",
            "arn:aws:lambda",
            "12345678901:function:f",
            "a:b:c",
            "f\n",
            "f\u{202E}",
            &"x".repeat(65),
            &format!(
                "arn:aws:lambda:us-east-1:123456789012:function:{}",
                "x".repeat(100)
            ),
        ] {
            assert!(FunctionRef::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn invisible_characters_are_escaped_when_quoted() {
        assert_eq!(printable("a\nb\u{202E}"), "a\\u{a}b\\u{202e}");
    }
}
