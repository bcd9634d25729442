//! Which schedule rule is in force at an instant, and when that next changes.
//!
//! Everything is computed from the rule expressions and `now` alone, so a restarted
//! daemon reaches the same answer as one that never stopped. Semantics:
//! - a rule *starts* `lead` before a fire time: at the latest fire at or before
//!   `now + lead`, minus `lead`;
//! - a rule with `duration` is a window that ends at `start + duration`;
//! - a rule without `duration` is open-ended: it holds until another open-ended rule
//!   of the same target starts. Windows overlay open-ended rules and, once they end,
//!   the open-ended rule in force shows through again;
//! - among active rules the one that started last wins; on a tie, the one written
//!   later in the file;
//! - only fire times from a rule's `start` to its `end` count; an open-ended rule
//!   that fired before its `end` holds after it, as Application Auto Scaling's
//!   scheduled actions leave their bounds.
//!
//! Cron times are wall-clock times in the rule's zone: a time skipped by a daylight
//! saving jump fires at the first valid instant after it, a repeated hour fires once.
//!
//! What it must not do: read the clock: `now` comes in.

use chrono::{DateTime, LocalResult, TimeDelta, TimeZone, Utc};

use crate::config::{RuleTime, ScheduleRule, TargetConfig};

/// The capacity bounds in force, and where they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
    /// The rule in force, if any; `None` means the target's own min and max.
    pub rule: Option<String>,
    /// Whether `min` comes from the rule (rather than the target).
    pub min_from_rule: bool,
    /// Whether `max` comes from the rule (rather than the target).
    pub max_from_rule: bool,
}

/// A change of bounds at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub bounds: Bounds,
}

/// The bounds in force for `target` at `now`.
pub fn bounds_at(target: &TargetConfig, now: DateTime<Utc>) -> Bounds {
    match active_rule(&target.schedules, now) {
        None => Bounds {
            min: target.min,
            max: target.max,
            rule: None,
            min_from_rule: false,
            max_from_rule: false,
        },
        Some(rule) => Bounds {
            min: rule.min.unwrap_or(target.min),
            max: rule.max.unwrap_or(target.max),
            rule: Some(rule.name.clone()),
            min_from_rule: rule.min.is_some(),
            max_from_rule: rule.max.is_some(),
        },
    }
}

/// The rule in force at `now`, if any.
pub fn active_rule(rules: &[ScheduleRule], now: DateTime<Utc>) -> Option<&ScheduleRule> {
    let mut open_ended: Option<(DateTime<Utc>, usize)> = None;
    let mut winner: Option<(DateTime<Utc>, usize)> = None;
    for (index, rule) in rules.iter().enumerate() {
        let Some(start) = latest_start(rule, now) else {
            continue;
        };
        match rule.duration {
            Some(duration) => {
                if now < start + duration && winner.is_none_or(|(best, _)| start >= best) {
                    winner = Some((start, index));
                }
            }
            None => {
                if open_ended.is_none_or(|(best, _)| start >= best) {
                    open_ended = Some((start, index));
                }
            }
        }
    }
    let chosen = match (winner, open_ended) {
        (Some(window), Some(open)) => {
            if (open.0, open.1) > (window.0, window.1) {
                open
            } else {
                window
            }
        }
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => return None,
    };
    rules.get(chosen.1)
}

/// The latest start (fire time minus lead) at or before `now`.
pub fn latest_start(rule: &ScheduleRule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let horizon = rule
        .end
        .map_or(now + rule.lead, |end| (now + rule.lead).min(end));
    let fire = match &rule.when {
        RuleTime::Cron { cron, .. } => cron
            .find_previous_occurrence(&horizon.with_timezone(&rule.timezone), true)
            .ok()?
            .with_timezone(&Utc),
        RuleTime::At(_) => {
            let fire = one_off_fire(rule)?;
            if fire > horizon {
                return None;
            }
            fire
        }
    };
    if rule.start.is_some_and(|start| fire < start) {
        return None;
    }
    Some(fire - rule.lead)
}

/// The next start after `after`.
fn next_start(rule: &ScheduleRule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let fire = next_fire(rule, after + rule.lead)?;
    Some(fire - rule.lead)
}

/// The next end of a window after `after`.
fn next_end(rule: &ScheduleRule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let duration = rule.duration?;
    // Ends are in fire order, so the first fire whose end lies after `after` gives it.
    let fire = next_fire(rule, after + rule.lead - duration)?;
    Some(fire - rule.lead + duration)
}

fn next_fire(rule: &ScheduleRule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Before the rule's `start`, its first fire is the first at or after it.
    let (from, inclusive) = match rule.start {
        Some(start) if start > after => (start, true),
        _ => (after, false),
    };
    let fire = match &rule.when {
        RuleTime::Cron { cron, .. } => cron
            .find_next_occurrence(&from.with_timezone(&rule.timezone), inclusive)
            .ok()
            .map(|fire| fire.with_timezone(&Utc)),
        RuleTime::At(_) => {
            one_off_fire(rule).filter(|fire| *fire > from || (inclusive && *fire == from))
        }
    }?;
    rule.end.is_none_or(|end| fire <= end).then_some(fire)
}

/// A one-off rule's instant. A local time repeated by a clock change means its first
/// occurrence; one skipped by a clock change means the first valid minute after it.
fn one_off_fire(rule: &ScheduleRule) -> Option<DateTime<Utc>> {
    let RuleTime::At(local) = rule.when else {
        return None;
    };
    let mut candidate = local;
    // A gap is at most a few hours; step out of it a minute at a time.
    for _ in 0..=240 {
        match rule.timezone.from_local_datetime(&candidate) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                return Some(at.with_timezone(&Utc));
            }
            LocalResult::None => candidate += TimeDelta::minutes(1),
        }
    }
    None
}

/// The earliest instant after `after` at which any rule starts or ends.
pub fn next_boundary(target: &TargetConfig, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    target
        .schedules
        .iter()
        .flat_map(|rule| [next_start(rule, after), next_end(rule, after)])
        .flatten()
        .min()
}

/// The next `count` instants after `after` at which the bounds in force change.
pub fn upcoming_changes(target: &TargetConfig, after: DateTime<Utc>, count: usize) -> Vec<Change> {
    // Boundaries where nothing changes (a rule restarting while already active) are
    // skipped; this bounds the search so a dense rule cannot spin for long.
    const MAX_BOUNDARIES: usize = 1_000;
    let mut changes = Vec::new();
    let mut previous = bounds_at(target, after);
    let mut cursor = after;
    for _ in 0..MAX_BOUNDARIES {
        if changes.len() >= count {
            break;
        }
        let Some(boundary) = next_boundary(target, cursor) else {
            break;
        };
        let bounds = bounds_at(target, boundary);
        if bounds != previous {
            changes.push(Change {
                at: boundary,
                bounds: bounds.clone(),
            });
            previous = bounds;
        }
        cursor = boundary;
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::{at, target};

    fn rule_at(target: &TargetConfig, now: &str) -> Option<String> {
        active_rule(&target.schedules, at(now)).map(|rule| rule.name.clone())
    }

    #[test]
    fn a_rule_firing_exactly_now_is_active() {
        let t = target(
            "min = 1\nmax = 10\n[[target.schedule]]\nname = \"peak\"\ncron = \"0 8 * * *\"\nduration = \"1h\"\nmin = 5",
        );
        assert_eq!(rule_at(&t, "2026-06-01T07:59:59Z"), None);
        assert_eq!(rule_at(&t, "2026-06-01T08:00:00Z").as_deref(), Some("peak"));
        assert_eq!(rule_at(&t, "2026-06-01T08:59:59Z").as_deref(), Some("peak"));
        // The window is half-open: it ends exactly at start + duration.
        assert_eq!(rule_at(&t, "2026-06-01T09:00:00Z"), None);
    }

    #[test]
    fn only_fire_times_from_start_to_end_count_and_an_open_ended_rule_holds_past_its_end() {
        let t = target(
            "min = 1\nmax = 10\n[[target.schedule]]\nname = \"december\"\ncron = \"0 8 * * *\"\n\
             start = \"2026-12-02T00:00:00Z\"\nend = \"2026-12-04T12:00:00Z\"\nmin = 5",
        );
        assert_eq!(rule_at(&t, "2026-12-01T09:00:00Z"), None);
        assert_eq!(rule_at(&t, "2026-12-02T07:59:59Z"), None);
        assert_eq!(
            rule_at(&t, "2026-12-02T08:00:00Z").as_deref(),
            Some("december")
        );
        // Its last fire is on the 4th; its bounds stay, as a scheduled action's do.
        assert_eq!(
            rule_at(&t, "2027-03-01T00:00:00Z").as_deref(),
            Some("december")
        );
        assert_eq!(
            next_boundary(&t, at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-02T08:00:00Z"))
        );
        assert_eq!(
            next_boundary(&t, at("2026-12-04T08:00:00Z")),
            None,
            "no fire after the end"
        );
        // A window rule ends with its last window.
        let window = target(
            "min = 1\nmax = 10\n[[target.schedule]]\nname = \"w\"\ncron = \"0 8 * * *\"\nduration = \"1h\"\n\
             start = \"2026-12-02T00:00:00Z\"\nend = \"2026-12-03T00:00:00Z\"\nmin = 5",
        );
        assert_eq!(
            rule_at(&window, "2026-12-02T08:30:00Z").as_deref(),
            Some("w")
        );
        assert_eq!(rule_at(&window, "2026-12-03T08:30:00Z"), None);
    }

    #[test]
    fn lead_starts_the_rule_early_and_moves_its_window() {
        let t = target(
            "min = 1\nmax = 10\n[[target.schedule]]\nname = \"peak\"\ncron = \"0 8 * * *\"\nduration = \"1h\"\nlead = \"5m\"\nmin = 5",
        );
        assert_eq!(rule_at(&t, "2026-06-01T07:54:59Z"), None);
        assert_eq!(rule_at(&t, "2026-06-01T07:55:00Z").as_deref(), Some("peak"));
        assert_eq!(rule_at(&t, "2026-06-01T08:54:59Z").as_deref(), Some("peak"));
        assert_eq!(rule_at(&t, "2026-06-01T08:55:00Z"), None);
        assert_eq!(bounds_at(&t, at("2026-06-01T08:00:00Z")).min, 5);
    }

    #[test]
    fn overlapping_windows_the_later_start_wins_then_the_earlier_shows_again() {
        let t = target(
            "min = 1\nmax = 100\n\
             [[target.schedule]]\nname = \"day\"\ncron = \"0 8 * * *\"\nduration = \"10h\"\nmin = 10\n\
             [[target.schedule]]\nname = \"lunch\"\ncron = \"0 12 * * *\"\nduration = \"2h\"\nmin = 40",
        );
        assert_eq!(rule_at(&t, "2026-06-01T11:00:00Z").as_deref(), Some("day"));
        assert_eq!(
            rule_at(&t, "2026-06-01T12:30:00Z").as_deref(),
            Some("lunch")
        );
        assert_eq!(rule_at(&t, "2026-06-01T14:00:00Z").as_deref(), Some("day"));
        assert_eq!(rule_at(&t, "2026-06-01T18:00:00Z"), None);
    }

    #[test]
    fn an_open_ended_rule_holds_until_the_next_open_ended_rule_and_windows_overlay_it() {
        let t = target(
            "min = 1\nmax = 100\n\
             [[target.schedule]]\nname = \"business\"\ncron = \"0 8 * * *\"\nmin = 20\n\
             [[target.schedule]]\nname = \"night\"\ncron = \"0 20 * * *\"\nmin = 2\n\
             [[target.schedule]]\nname = \"launch\"\nat = \"2026-06-01T10:00:00\"\nduration = \"1h\"\nmin = 80",
        );
        assert_eq!(
            rule_at(&t, "2026-06-01T07:00:00Z").as_deref(),
            Some("night")
        );
        assert_eq!(
            rule_at(&t, "2026-06-01T09:00:00Z").as_deref(),
            Some("business")
        );
        assert_eq!(
            rule_at(&t, "2026-06-01T10:30:00Z").as_deref(),
            Some("launch")
        );
        assert_eq!(
            rule_at(&t, "2026-06-01T11:00:00Z").as_deref(),
            Some("business")
        );
        assert_eq!(
            rule_at(&t, "2026-06-01T21:00:00Z").as_deref(),
            Some("night")
        );
    }

    #[test]
    fn equal_starts_prefer_the_rule_written_later() {
        let t = target(
            "min = 1\nmax = 100\n\
             [[target.schedule]]\nname = \"first\"\ncron = \"0 8 * * *\"\nduration = \"1h\"\nmin = 10\n\
             [[target.schedule]]\nname = \"second\"\ncron = \"0 8 * * *\"\nduration = \"1h\"\nmin = 20",
        );
        assert_eq!(
            rule_at(&t, "2026-06-01T08:10:00Z").as_deref(),
            Some("second")
        );
    }

    #[test]
    fn wall_clock_rules_follow_daylight_saving_time() {
        let t = target(
            "min = 1\nmax = 100\n[[target.schedule]]\nname = \"peak\"\ncron = \"0 8 * * *\"\ntimezone = \"Europe/Berlin\"\nduration = \"1h\"\nmin = 10",
        );
        // 08:00 in Berlin is 07:00 UTC in winter (CET) and 06:00 UTC in summer (CEST);
        // the clocks went forward on 2026-03-29.
        assert_eq!(rule_at(&t, "2026-03-28T07:00:00Z").as_deref(), Some("peak"));
        assert_eq!(rule_at(&t, "2026-03-28T06:30:00Z"), None);
        assert_eq!(rule_at(&t, "2026-03-29T06:00:00Z").as_deref(), Some("peak"));
        assert_eq!(rule_at(&t, "2026-03-29T07:00:00Z"), None);
        let changes = upcoming_changes(&t, at("2026-03-28T12:00:00Z"), 2);
        assert_eq!(changes[0].at, at("2026-03-29T06:00:00Z"));
        assert_eq!(changes[1].at, at("2026-03-29T07:00:00Z"));
    }

    #[test]
    fn a_time_skipped_by_spring_forward_fires_at_the_first_valid_instant() {
        // 02:30 does not exist in Berlin on 2026-03-29 (02:00 CET → 03:00 CEST).
        let t = target(
            "min = 1\nmax = 100\n[[target.schedule]]\nname = \"n\"\ncron = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\nduration = \"30m\"\nmin = 10",
        );
        let start = latest_start(&t.schedules[0], at("2026-03-29T02:00:00Z"));
        assert_eq!(start, Some(at("2026-03-29T01:00:00Z")));
        let one_off = target(
            "min = 1\nmax = 100\n[[target.schedule]]\nname = \"n\"\nat = \"2026-03-29T02:30:00\"\ntimezone = \"Europe/Berlin\"\nduration = \"30m\"\nmin = 10",
        );
        assert_eq!(
            latest_start(&one_off.schedules[0], at("2026-03-29T02:00:00Z")),
            Some(at("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_once() {
        // 02:30 happens twice in Berlin on 2026-10-25: 00:30 UTC (CEST) and 01:30 UTC (CET).
        let t = target(
            "min = 1\nmax = 100\n[[target.schedule]]\nname = \"n\"\ncron = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\nduration = \"10m\"\nmin = 10",
        );
        let changes = upcoming_changes(&t, at("2026-10-24T12:00:00Z"), 4);
        let starts: Vec<_> = changes
            .iter()
            .filter(|c| c.bounds.rule.is_some())
            .map(|c| c.at)
            .collect();
        assert_eq!(starts[0], at("2026-10-25T00:30:00Z"));
        assert_eq!(starts[1], at("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn upcoming_changes_skip_boundaries_that_change_nothing() {
        // A rule every minute with a two-minute window is always active once started.
        let t = target(
            "min = 1\nmax = 100\n[[target.schedule]]\nname = \"always\"\ncron = \"* * * * *\"\nduration = \"2m\"\nmin = 10",
        );
        assert!(upcoming_changes(&t, at("2026-06-01T00:00:30Z"), 3).is_empty());
        assert_eq!(bounds_at(&t, at("2026-06-01T00:00:30Z")).min, 10);
    }

    #[test]
    fn a_one_off_rule_in_the_past_is_over_and_one_in_the_future_is_previewed() {
        let t = target(
            "min = 1\nmax = 500\n[[target.schedule]]\nname = \"bf\"\nat = \"2026-11-27T06:00:00\"\ntimezone = \"America/New_York\"\nduration = \"18h\"\nmin = 300",
        );
        let changes = upcoming_changes(&t, at("2026-11-22T00:00:00Z"), 3);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].at, at("2026-11-27T11:00:00Z"));
        assert_eq!(changes[0].bounds.min, 300);
        assert_eq!(changes[1].at, at("2026-11-28T05:00:00Z"));
        assert_eq!(changes[1].bounds.min, 1);
        assert!(upcoming_changes(&t, at("2026-12-01T00:00:00Z"), 3).is_empty());
    }
}
