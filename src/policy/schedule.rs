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
//!   later in the file.
//!
//! Cron times are wall-clock times in the rule's zone: a time skipped by a daylight
//! saving jump fires at the first valid instant after it, a repeated hour fires once.

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
    let horizon = now + rule.lead;
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
    match &rule.when {
        RuleTime::Cron { cron, .. } => cron
            .find_next_occurrence(&after.with_timezone(&rule.timezone), false)
            .ok()
            .map(|fire| fire.with_timezone(&Utc)),
        RuleTime::At(_) => one_off_fire(rule).filter(|fire| *fire > after),
    }
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
