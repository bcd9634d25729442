//! `[[target.schedule]]`: recurring (`cron`) and one-off (`at`) rules in their time
//! zones, with their bounds checked against the target's.
//!
//! What it must not do: compute when a rule is in force (`policy::schedule` does).

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use toml::Spanned;

use super::checker::{Checker, check_label};
use super::keys;
use super::model::*;
use super::raw::*;

pub(super) fn schedules(
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
    let timezone = timezone(checker, &raw);
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
    let lead = checker.delta_or_default(&raw.lead, &keys::SCHEDULE_LEAD);
    let (min, max) = rule_bounds(checker, &raw, span, (target_min, target_max));
    let timezone = timezone?;
    let start = raw.start.as_ref().map(|at| instant(checker, at, timezone));
    let end = raw.end.as_ref().map(|at| instant(checker, at, timezone));
    if let (Some(Some(start)), Some(Some(end)), Some(raw_end)) = (start, end, &raw.end)
        && end <= start
    {
        checker.error(raw_end.span(), "the rule's `end` is not after its `start`");
    }
    Some(ScheduleRule {
        name,
        when: when?,
        timezone,
        duration,
        lead,
        start: start.map(|start| start.ok_or(())).transpose().ok()?,
        end: end.map(|end| end.ok_or(())).transpose().ok()?,
        min,
        max,
    })
}

/// An instant `start` or `end` names: RFC 3339 with its offset (`2026-12-01T00:00:00Z`),
/// or a local date and time in the rule's zone (its first occurrence, if a clock change
/// repeats it); `None`, reported, when it is neither, or a local time a clock change
/// skips.
fn instant(checker: &mut Checker<'_>, at: &Spanned<RawAt>, zone: Tz) -> Option<DateTime<Utc>> {
    use chrono::TimeZone as _;
    let text = at.get_ref().as_text();
    if let Ok(instant) = DateTime::parse_from_rfc3339(&text) {
        return Some(instant.with_timezone(&Utc));
    }
    let local = local_datetime(&text);
    let instant = local.and_then(|local| zone.from_local_datetime(&local).earliest());
    if instant.is_none() {
        checker.error(
            at.span(),
            format!("`{text}` is not an instant; write RFC 3339 (\"2026-12-01T00:00:00Z\") or a local date and time that exists in the rule's zone"),
        );
    }
    instant.map(|instant| instant.with_timezone(&Utc))
}

/// A local date and time as `at` accepts it.
fn local_datetime(text: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
}

/// The rule's IANA time zone, UTC by default.
fn timezone(checker: &mut Checker<'_>, raw: &RawSchedule) -> Option<Tz> {
    match &raw.timezone {
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
    }
}

/// The rule's `min` and `max`, checked against each other and the target's.
fn rule_bounds(
    checker: &mut Checker<'_>,
    raw: &RawSchedule,
    span: Range<usize>,
    (target_min, target_max): (Option<u32>, Option<u32>),
) -> (Option<u32>, Option<u32>) {
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
    (min, max)
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
    let parsed = local_datetime(&text);
    if parsed.is_none() {
        checker.error(
            at.span(),
            format!("`{text}` is not a local date and time; write e.g. \"2026-11-27T06:00:00\" (the zone comes from `timezone`)"),
        );
    }
    parsed.map(RuleTime::At)
}
