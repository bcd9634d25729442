//! Application Auto Scaling's scheduled actions as schedule rules: `cron(…)` (six
//! fields, the last the year, days of the week 1 to 7 from Sunday), `at(…)` and
//! `rate(…)`, each in its `Timezone`, fired from `StartTime` to `EndTime`, setting
//! `MinCapacity`, `MaxCapacity` or both.
//!
//! An action sets bounds that hold until another action changes them; so does an
//! open-ended rule, which is what an action becomes. What a rule cannot say exactly is
//! a comment saying why, never a rule that does something close: an action that sets
//! one bound while another action of the target sets the other (the bound it leaves
//! depends on which ran last), a year given as a list or a step, a `rate()` that is not
//! the target's only action or starts in the future (when it first fires is not
//! published). Fires within an hour of a clock change are named in a note: AAS does
//! not document how it fires there.
//!
//! What it must not do: read anything, or approximate.

use std::fmt::Write as _;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::aws::ScheduledAction;

/// What one action becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Converted {
    /// A `[[target.schedule]]` table, and a note for people when it has one.
    Rule { toml: String, note: Option<String> },
    /// Nothing to write: the target's bounds say it already (a `rate()` action).
    InTheBounds(String),
    /// Why it cannot be written as a rule.
    Not(String),
}

/// How far ahead fires are looked at for clock changes.
const NOTE_HORIZON_DAYS: i64 = 366;

/// `action`, one of `siblings` (every action of its target), as of `now`.
pub fn convert(
    action: &ScheduledAction,
    siblings: &[&ScheduledAction],
    index: usize,
    now: DateTime<Utc>,
) -> Converted {
    let zone_name = action.timezone.as_deref().unwrap_or("UTC");
    let Ok(zone) = zone_name.parse::<Tz>() else {
        return Converted::Not(format!(
            "its time zone `{zone_name}` is not one pc-autoscaler knows"
        ));
    };
    let others = siblings
        .iter()
        .filter(|other| other.name != action.name)
        .copied()
        .collect::<Vec<_>>();
    if let Some(why) = partial_bounds(action, &others) {
        return Converted::Not(why);
    }
    let schedule = action.schedule.trim();
    let (when, years) = if let Some(inner) = inside(schedule, "cron(") {
        match cron(inner) {
            Ok(converted) => converted,
            Err(why) => return Converted::Not(why),
        }
    } else if let Some(inner) = inside(schedule, "at(") {
        match NaiveDateTime::parse_from_str(inner.trim(), "%Y-%m-%dT%H:%M:%S") {
            Ok(at) => (When::At(at), None),
            Err(_) => return Converted::Not(format!("`{schedule}` is not a date and time")),
        }
    } else if inside(schedule, "rate(").is_some() {
        return rate(action, &others, now);
    } else {
        return Converted::Not(format!("`{schedule}` is not cron(), at() or rate()"));
    };
    let (start, end) = window(action, years, zone);
    let mut toml = String::from("\n[[target.schedule]]\n");
    let _ = writeln!(toml, "name = {}", quoted(&rule_name(&action.name, index)));
    match &when {
        When::Cron(expression) => {
            let _ = writeln!(toml, "cron = {}", quoted(expression));
        }
        When::At(at) => {
            let _ = writeln!(
                toml,
                "at = {}",
                quoted(&at.format("%Y-%m-%dT%H:%M:%S").to_string())
            );
        }
    }
    let _ = writeln!(toml, "timezone = {}", quoted(zone_name));
    for (key, instant) in [("start", start), ("end", end)] {
        if let Some(instant) = instant {
            let _ = writeln!(toml, "{key} = {}", quoted(&rfc3339(instant)));
        }
    }
    for (key, bound) in [("min", action.min), ("max", action.max)] {
        if let Some(bound) = bound {
            let _ = writeln!(toml, "{key} = {bound}");
        }
    }
    Converted::Rule {
        note: clock_change_note(&when, zone, (start, end), now),
        toml,
    }
}

/// When an action fires.
#[derive(Debug, Clone, PartialEq)]
enum When {
    /// A five-field cron expression, as the config reads it.
    Cron(String),
    At(NaiveDateTime),
}

fn inside<'a>(schedule: &'a str, opening: &str) -> Option<&'a str> {
    schedule.strip_prefix(opening)?.strip_suffix(')')
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The rule's name: the action's, when the config takes it.
fn rule_name(name: &str, index: usize) -> String {
    let visible = !name.is_empty()
        && name.chars().count() <= 128
        && name
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() || c == ' ');
    if visible {
        name.to_owned()
    } else {
        format!("action-{index}")
    }
}

/// Why setting one bound cannot be carried over, when another action sets the other.
fn partial_bounds(action: &ScheduledAction, others: &[&ScheduledAction]) -> Option<String> {
    match (action.min, action.max) {
        (None, None) => Some("it sets neither a minimum nor a maximum".into()),
        (Some(_), None) if others.iter().any(|other| other.max.is_some()) => Some(
            "it sets only the minimum, and another action sets the maximum: the maximum it leaves depends on which ran last".into(),
        ),
        (None, Some(_)) if others.iter().any(|other| other.min.is_some()) => Some(
            "it sets only the maximum, and another action sets the minimum: the minimum it leaves depends on which ran last".into(),
        ),
        _ => None,
    }
}

/// A `rate()` action: as the target's only action, once it has fired, its bounds are
/// the scalable target's bounds now, which the target carries.
fn rate(action: &ScheduledAction, others: &[&ScheduledAction], now: DateTime<Utc>) -> Converted {
    if !others.is_empty() {
        return Converted::Not(
            "rate() sets its bounds again at every period, between the other actions' fires, at instants AAS does not publish".into(),
        );
    }
    if action.start.is_some_and(|start| start > now) {
        return Converted::Not(
            "rate() first fires at or after its start, when exactly AAS does not publish".into(),
        );
    }
    Converted::InTheBounds(
        "it is the target's only action and has fired: the bounds it sets are the target's min and max".into(),
    )
}

/// AAS's six cron fields as the config's five, and the years the sixth allows.
fn cron(inner: &str) -> Result<(When, Option<(i32, i32)>), String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    let [minutes, hours, day, month, weekday, year] = fields[..] else {
        return Err(format!("cron({inner}) does not have six fields"));
    };
    let question = |field: &str| {
        if field == "?" {
            "*".to_owned()
        } else {
            field.to_owned()
        }
    };
    let weekday = if weekday == "?" {
        "*".to_owned()
    } else {
        weekday_from_sunday_one(weekday)?
    };
    let expression = format!("{minutes} {hours} {} {month} {weekday}", question(day));
    let parser = croner::parser::CronParser::builder().build();
    parser
        .parse(&expression)
        .map_err(|error| format!("cron({inner}) has no equivalent here: {error}"))?;
    let years = match year {
        "*" => None,
        year => Some(year_range(year)?),
    };
    Ok((When::Cron(expression), years))
}

/// Days of the week numbered 1 (Sunday) to 7, as AAS numbers them, numbered 0 to 6;
/// names, `L` and `#` kept.
fn weekday_from_sunday_one(field: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| -> Result<(), String> {
        if digits.is_empty() {
            return Ok(());
        }
        let day: u32 = digits
            .parse()
            .map_err(|_| format!("`{field}`: not a day"))?;
        if !(1..=7).contains(&day) {
            return Err(format!("`{field}`: days of the week are 1 to 7"));
        }
        let _ = write!(out, "{}", day - 1);
        digits.clear();
        Ok(())
    };
    let mut after_hash = false;
    for c in field.chars() {
        if c.is_ascii_digit() && !after_hash {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out)?;
        if c == '#' || c == '/' {
            // The number after `#` (the nth week) or `/` (a step) is not a day.
            after_hash = true;
        } else if !c.is_ascii_digit() {
            after_hash = false;
        }
        out.push(c);
    }
    flush(&mut digits, &mut out)?;
    Ok(out)
}

/// The years of a year field: one, or a range.
fn year_range(field: &str) -> Result<(i32, i32), String> {
    let parse = |text: &str| {
        text.parse::<i32>().map_err(|_| {
            format!("the year field `{field}` is a list or a step, which a rule cannot say")
        })
    };
    match field.split_once('-') {
        Some((from, to)) => Ok((parse(from)?, parse(to)?)),
        None => parse(field).map(|year| (year, year)),
    }
}

/// The rule's `start` and `end`: the action's, narrowed to the years its cron allows.
fn window(
    action: &ScheduledAction,
    years: Option<(i32, i32)>,
    zone: Tz,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let Some((first, last)) = years else {
        return (action.start, action.end);
    };
    let local = |year: i32, month: u32, day: u32, time: (u32, u32, u32)| {
        NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_opt(time.0, time.1, time.2))
            .and_then(|local| zone.from_local_datetime(&local).earliest())
            .map(|instant| instant.with_timezone(&Utc))
    };
    let from = local(first, 1, 1, (0, 0, 0));
    let to = local(last, 12, 31, (23, 59, 59));
    let start = match (action.start, from) {
        (Some(action), Some(year)) => Some(action.max(year)),
        (one, other) => one.or(other),
    };
    let end = match (action.end, to) {
        (Some(action), Some(year)) => Some(action.min(year)),
        (one, other) => one.or(other),
    };
    (start, end)
}

/// The fires of the coming year that come within an hour of a clock change of `zone`,
/// named for people: how AAS fires there is not published.
fn clock_change_note(
    when: &When,
    zone: Tz,
    (start, end): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    now: DateTime<Utc>,
) -> Option<String> {
    let near_change = |fire: DateTime<Utc>| {
        use chrono::Offset as _;
        let offset = |at: DateTime<Utc>| zone.offset_from_utc_datetime(&at.naive_utc()).fix();
        offset(fire - TimeDelta::hours(1)) != offset(fire + TimeDelta::hours(1))
    };
    let horizon = now + TimeDelta::days(NOTE_HORIZON_DAYS);
    let in_window = |fire: DateTime<Utc>| {
        start.is_none_or(|start| fire >= start) && end.is_none_or(|end| fire <= end)
    };
    let mut near: Vec<DateTime<Utc>> = Vec::new();
    match when {
        When::At(at) => {
            let fire = match zone.from_local_datetime(at) {
                LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at),
                LocalResult::None => None,
            };
            match fire {
                Some(fire) if !near_change(fire.with_timezone(&Utc)) => {}
                _ => near.push(now),
            }
        }
        When::Cron(expression) => {
            let cron = croner::parser::CronParser::builder()
                .build()
                .parse(expression)
                .ok()?;
            let mut cursor = now.with_timezone(&zone);
            // At most a fire a minute for a year: a bound on a busy expression.
            for _ in 0..(NOTE_HORIZON_DAYS * 24 * 60) {
                let Ok(fire) = cron.find_next_occurrence(&cursor, false) else {
                    break;
                };
                let utc = fire.with_timezone(&Utc);
                if utc > horizon {
                    break;
                }
                if in_window(utc) && near_change(utc) {
                    near.push(utc);
                }
                cursor = fire;
            }
        }
    }
    (!near.is_empty()).then(|| {
        format!(
            "it fires within an hour of a clock change of {zone} ({} times in the coming year); AAS does not publish how it fires there; this rule fires at the first valid minute after a skipped time, and once in a repeated hour",
            near.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(schedule: &str, zone: Option<&str>) -> ScheduledAction {
        ScheduledAction {
            function: "f".into(),
            qualifier: "live".into(),
            name: "morning".into(),
            schedule: schedule.into(),
            timezone: zone.map(Into::into),
            start: None,
            end: None,
            min: Some(20),
            max: Some(100),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-12-07T00:00:00Z".parse().expect("a time")
    }

    #[test]
    fn days_of_the_week_count_from_sunday_as_zero() {
        for (aws, ours) in [
            ("MON-FRI", "MON-FRI"),
            ("2-6", "1-5"),
            ("1,7", "0,6"),
            ("6#3", "5#3"),
            ("6L", "5L"),
            ("1/2", "0/2"),
        ] {
            assert_eq!(weekday_from_sunday_one(aws).as_deref(), Ok(ours), "{aws}");
        }
        assert!(weekday_from_sunday_one("8").is_err());
    }

    #[test]
    fn a_cron_action_becomes_an_open_ended_rule_in_its_zone() {
        let converted = convert(
            &action("cron(0 8 ? * MON-FRI *)", Some("Europe/Berlin")),
            &[],
            0,
            now(),
        );
        let Converted::Rule { toml, .. } = converted else {
            panic!("{converted:?}");
        };
        assert!(toml.contains("cron = \"0 8 * * MON-FRI\""), "{toml}");
        assert!(toml.contains("timezone = \"Europe/Berlin\""), "{toml}");
        assert!(toml.contains("min = 20\nmax = 100"), "{toml}");
    }

    #[test]
    fn a_year_narrows_the_window_and_a_year_list_cannot_be_said() {
        let Converted::Rule { toml, .. } =
            convert(&action("cron(0 8 * * ? 2027)", Some("UTC")), &[], 0, now())
        else {
            panic!("a rule");
        };
        assert!(
            toml.contains("start = \"2027-01-01T00:00:00Z\"\nend = \"2027-12-31T23:59:59Z\""),
            "{toml}"
        );
        assert!(matches!(
            convert(&action("cron(0 8 * * ? 2027,2029)", None), &[], 0, now()),
            Converted::Not(_)
        ));
    }

    #[test]
    fn one_bound_is_carried_only_when_no_other_action_sets_the_other() {
        let mut only_min = action("cron(0 8 * * ? *)", None);
        only_min.max = None;
        let mut other = action("cron(0 20 * * ? *)", None);
        other.name = "evening".into();
        assert!(matches!(
            convert(&only_min, &[&only_min], 0, now()),
            Converted::Rule { .. }
        ));
        assert!(matches!(
            convert(&only_min, &[&only_min, &other], 0, now()),
            Converted::Not(_)
        ));
    }

    #[test]
    fn a_rate_is_carried_by_the_bounds_only_when_alone_and_already_firing() {
        let rate = action("rate(5 minutes)", None);
        assert!(matches!(
            convert(&rate, &[&rate], 0, now()),
            Converted::InTheBounds(_)
        ));
        let mut other = action("at(2027-01-01T00:00:00)", None);
        other.name = "new-year".into();
        assert!(matches!(
            convert(&rate, &[&rate, &other], 0, now()),
            Converted::Not(_)
        ));
    }

    #[test]
    fn fires_near_a_clock_change_are_noted() {
        let Converted::Rule { note, .. } = convert(
            &action("cron(30 2 * * ? *)", Some("Europe/Berlin")),
            &[],
            0,
            now(),
        ) else {
            panic!("a rule");
        };
        assert!(note.is_some_and(|note| note.contains("clock change")));
        let Converted::Rule { note, .. } = convert(
            &action("cron(0 12 * * ? *)", Some("Europe/Berlin")),
            &[],
            0,
            now(),
        ) else {
            panic!("a rule");
        };
        assert_eq!(note, None);
    }
}
