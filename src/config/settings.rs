//! The process-wide sections: `[aws]`, `[daemon]` and `[leader]`, each key's default
//! and range from [`super::keys`]. What it must not do: read the environment (the
//! identity's default is the runtime's) or reach AWS.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;

use toml::Spanned;

use super::checker::Checker;
use super::keys;
use super::model::*;
use super::raw::*;

pub fn aws(checker: &mut Checker<'_>, raw: RawAws) -> AwsSettings {
    if let Some(url) = &raw.endpoint_url {
        check_url(checker, url);
    }
    let timeout = checker
        .within(&raw.timeout, &keys::AWS_TIMEOUT)
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
    let path = |checker: &mut Checker<'_>, value: &Option<Spanned<String>>, what: &str| {
        let value = value.as_ref()?;
        if value.get_ref().is_empty() {
            checker.error(value.span(), format!("the {what} must not be empty"));
            return None;
        }
        Some(PathBuf::from(value.get_ref()))
    };
    let activity_log = path(checker, &raw.activity_log, "activity log path");
    let state_directory = path(checker, &raw.state_directory, "state directory");
    DaemonSettings {
        interval: checker.duration_or_default(&raw.interval, &keys::DAEMON_INTERVAL),
        listen,
        dry_run: raw.dry_run.unwrap_or(defaults.dry_run),
        log_format,
        max_write_rate: checker.rate(&raw.max_write_rate, &keys::DAEMON_MAX_WRITE_RATE),
        max_read_rate: checker.rate(&raw.max_read_rate, &keys::DAEMON_MAX_READ_RATE),
        control_plane_budget: checker.rate(
            &raw.control_plane_budget,
            &keys::DAEMON_CONTROL_PLANE_BUDGET,
        ),
        quiet_read_period: checker
            .duration_or_default(&raw.quiet_read_period, &keys::DAEMON_QUIET_READ_PERIOD),
        drift_scan_period: checker
            .duration_or_default(&raw.drift_scan_period, &keys::DAEMON_DRIFT_SCAN_PERIOD),
        refresh_period: checker
            .duration_or_default(&raw.refresh_period, &keys::DAEMON_REFRESH_PERIOD),
        account_reserve: checker
            .count_or_default(&raw.account_reserve, &keys::DAEMON_ACCOUNT_RESERVE),
        shutdown_grace: checker
            .duration_or_default(&raw.shutdown_grace, &keys::DAEMON_SHUTDOWN_GRACE),
        pass_timeout: checker
            .within(&raw.pass_timeout, &keys::DAEMON_PASS_TIMEOUT)
            .and_then(|delta| delta.to_std().ok()),
        activity_log,
        state_directory,
        discovery_period: checker
            .duration_or_default(&raw.discovery_period, &keys::DAEMON_DISCOVERY_PERIOD),
        discovery_rate: checker.rate(&raw.discovery_rate, &keys::DAEMON_DISCOVERY_RATE),
        activity_log_max_mib: checker.count_or_default(
            &raw.activity_log_max_mib,
            &keys::DAEMON_ACTIVITY_LOG_MAX_MIB,
        ),
    }
}

/// `[events]`: the bus (a name, or an EventBridge bus ARN), the endpoint, the queue.
pub fn events(checker: &mut Checker<'_>, raw: RawEvents) -> EventsSettings {
    if let Some(url) = &raw.endpoint_url {
        check_url(checker, url);
    }
    let bus = match raw.bus {
        Some(bus) if valid_bus(bus.get_ref()) => bus.into_inner(),
        Some(bus) => {
            checker.error(
                bus.span(),
                "an event bus is a name of 1 to 256 of a-z, A-Z, 0-9, `.`, `_`, `-` and `/`, or its ARN (arn:PARTITION:events:REGION:ACCOUNT:event-bus/NAME)",
            );
            String::new()
        }
        None => EventsSettings::DEFAULT_BUS.to_owned(),
    };
    EventsSettings {
        bus,
        endpoint_url: raw.endpoint_url.map(Spanned::into_inner),
        queue: checker.count_or_default(&raw.queue, &keys::EVENTS_QUEUE),
    }
}

fn valid_bus(bus: &str) -> bool {
    let name = |name: &str| {
        (1..=256).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    };
    match bus.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            parts.len() == 5
                && parts[1] == "events"
                && parts[4].strip_prefix("event-bus/").is_some_and(name)
        }
        None => name(bus),
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
    let timing = lease_timing(checker, &raw, span.clone());
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
    let identity = match raw.identity {
        Some(identity) if identity.get_ref().is_empty() => {
            checker.error(identity.span(), "the identity must not be empty");
            None
        }
        identity => identity.map(Spanned::into_inner),
    };
    let (lease, renew_every) = timing?;
    Some(LeaderSettings {
        table: table?,
        name: name?,
        create_table: raw.create_table.unwrap_or(false),
        endpoint_url: raw.endpoint_url.map(Spanned::into_inner),
        lease,
        renew_every,
        identity,
        spread: raw.spread.unwrap_or(false),
    })
}

/// The lease and how often it is renewed: renewals under half the lease.
fn lease_timing(
    checker: &mut Checker<'_>,
    raw: &RawLeader,
    span: Range<usize>,
) -> Option<(std::time::Duration, std::time::Duration)> {
    let std_duration =
        |delta: Option<chrono::TimeDelta>| delta.and_then(|delta| delta.to_std().ok());
    let lease = std_duration(checker.within(&raw.lease, &keys::LEADER_LEASE));
    let renew_every = std_duration(checker.within(&raw.renew_every, &keys::LEADER_RENEW_EVERY));
    let (lease, renew_every) = match (lease, renew_every, &raw.lease, &raw.renew_every) {
        (None, _, Some(_), _) | (_, None, _, Some(_)) => return None,
        (lease, renew_every, ..) => (
            lease.unwrap_or(keys::LEADER_LEASE.duration()),
            renew_every.unwrap_or(keys::LEADER_RENEW_EVERY.duration()),
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
    Some((lease, renew_every))
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
