//! Operators' overrides as they are kept and set: each with an id, a scope (a target, a
//! glob of target names, or all), a kind (`policy::overrides`), an expiry, who set it
//! and why. This module parses and checks what the CLI is given, encodes the list the
//! stores keep (`runtime::state::store`), and resolves it to each target's overrides
//! for the policy.
//!
//! What it must not do: read the clock or any store; `now` and the bytes come in.

pub mod in_force;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{TargetConfig, glob_matches};
use crate::policy::overrides::{Override, OverrideKind, Pause};

/// The encoding's version; another is refused, never guessed at.
pub const VERSION: u32 = 1;
/// The longest an override may last.
pub const MAX_LENGTH: TimeDelta = TimeDelta::days(30);
/// The longest reason kept, in characters.
pub const MAX_REASON: usize = 256;
/// The longest setter's name kept, in characters (`$USER` or an IAM ARN).
pub const MAX_BY: usize = 256;
/// The most overrides kept at once: the list stays one small DynamoDB item.
pub const MAX_OVERRIDES: usize = 500;

/// Which targets an override covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Target(String),
    Glob(String),
    All,
}

impl Scope {
    pub fn covers(&self, target: &str) -> bool {
        match self {
            Scope::Target(name) => name == target,
            Scope::Glob(pattern) => glob_matches(pattern, target),
            Scope::All => true,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Target(name) => f.write_str(name),
            Scope::Glob(pattern) => write!(f, "glob {pattern}"),
            Scope::All => f.write_str("all targets"),
        }
    }
}

/// One override as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredOverride {
    /// Short and random: what `override clear` names.
    pub id: String,
    pub scope: Scope,
    /// As written: `pin 200`, `floor 500`, `ceiling 50`, `pause scale-in`,
    /// `pause scale-out`, `pause all`.
    pub kind: String,
    pub until: DateTime<Utc>,
    pub set_at: DateTime<Utc>,
    pub by: String,
    pub reason: String,
}

/// A reader's clock and the CLI's may differ a little: an override that ends this much
/// beyond [`MAX_LENGTH`] ahead is still taken.
const CLOCK_SLACK: TimeDelta = TimeDelta::minutes(5);

impl StoredOverride {
    /// Why the daemon does not apply this override at `now`, when it does not: the
    /// command line's limits hold for a store edited by hand.
    pub fn refusal(&self, now: DateTime<Utc>) -> Option<String> {
        if self.until > now + MAX_LENGTH + CLOCK_SLACK {
            return Some(format!(
                "{} ends more than 30 days ahead ({})",
                self.kind, self.until
            ));
        }
        parse_kind(&self.kind).err()
    }

    /// As the policy takes it; `None` for a kind this build cannot read.
    pub fn as_policy(&self) -> Option<Override> {
        Some(Override {
            kind: parse_kind(&self.kind).ok()?,
            until: self.until,
            by: self.by.clone(),
            reason: self.reason.clone(),
        })
    }
}

/// The list a store keeps.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OverrideList {
    pub version: u32,
    pub overrides: Vec<StoredOverride>,
}

impl crate::runtime::state::store::Document for OverrideList {
    const ITEM: crate::aws::Item = crate::aws::Item::Overrides;

    fn empty() -> Self {
        OverrideList {
            version: VERSION,
            overrides: Vec::new(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("overrides are plain strings and numbers")
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        let list: OverrideList = serde_json::from_slice(bytes)
            .map_err(|error| format!("the overrides do not decode: {error}"))?;
        if list.version != VERSION {
            return Err(format!(
                "the overrides are of version {}, not {VERSION}",
                list.version
            ));
        }
        Ok(list)
    }
}

impl OverrideList {
    /// Each target's overrides, newest first, those that have ended left out.
    pub fn for_target(&self, target: &str, now: DateTime<Utc>) -> Vec<Override> {
        let mut covering: Vec<&StoredOverride> = self
            .overrides
            .iter()
            .filter(|one| now < one.until && one.scope.covers(target))
            .filter(|one| one.refusal(now).is_none())
            .collect();
        covering.sort_by_key(|one| std::cmp::Reverse(one.set_at));
        covering
            .into_iter()
            .filter_map(StoredOverride::as_policy)
            .collect()
    }

    /// Removes the overrides `clear` names (an id, or every one of a target); returns
    /// how many went.
    pub fn clear(&mut self, named: &str) -> usize {
        let before = self.overrides.len();
        self.overrides
            .retain(|one| one.id != named && one.scope != Scope::Target(named.to_owned()));
        before - self.overrides.len()
    }

    /// Drops the overrides that ended before `now`.
    pub fn drop_ended(&mut self, now: DateTime<Utc>) {
        self.overrides.retain(|one| now < one.until);
    }
}

/// `pin N`, `floor N`, `ceiling N`, `pause scale-in`, `pause scale-out` or `pause all`.
pub fn parse_kind(text: &str) -> Result<OverrideKind, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let count = |value: &str| {
        value
            .parse::<u32>()
            .ok()
            .filter(|value| *value <= i32::MAX as u32)
            .ok_or_else(|| format!("`{value}` is not a count of concurrent executions"))
    };
    match words.as_slice() {
        ["pin", value] => count(value).map(OverrideKind::Pin),
        ["floor", value] => count(value).map(OverrideKind::Floor),
        ["ceiling", value] => count(value).map(OverrideKind::Ceiling),
        ["pause", "scale-in"] => Ok(OverrideKind::Pause(Pause::ScaleIn)),
        ["pause", "scale-out"] => Ok(OverrideKind::Pause(Pause::ScaleOut)),
        ["pause", "all"] => Ok(OverrideKind::Pause(Pause::All)),
        _ => Err(format!(
            "`{text}` is not an override: use pin N, floor N, ceiling N, pause scale-in, pause scale-out or pause all"
        )),
    }
}

/// What `override set` was asked, before it is checked.
#[derive(Debug, Clone)]
pub struct SetRequest {
    pub scope: Scope,
    pub kind: String,
    pub until: DateTime<Utc>,
    pub reason: String,
    pub by: String,
}

/// Checks `request` against the config in force at `now`: the targets it covers exist,
/// the kind parses, the expiry is ahead and within [`MAX_LENGTH`], the reason is short
/// and printable, a pin or floor is within every covered target's `max`. Returns the
/// override to keep, with `id`.
pub fn check(
    request: SetRequest,
    targets: &[TargetConfig],
    now: DateTime<Utc>,
    id: String,
) -> Result<StoredOverride, String> {
    let kind = parse_kind(&request.kind)?;
    let covered: Vec<&TargetConfig> = targets
        .iter()
        .filter(|target| request.scope.covers(target.name.as_str()))
        .collect();
    if covered.is_empty() {
        return Err(match &request.scope {
            Scope::Target(name) => format!("`{name}` is not a target of this config"),
            scope => format!("{scope} covers no target of this config"),
        });
    }
    if request.until <= now {
        return Err(format!("the expiry {} is not ahead", request.until));
    }
    if request.until - now > MAX_LENGTH {
        return Err(format!(
            "the expiry {} is more than 30 days ahead",
            request.until
        ));
    }
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err("give a reason (--reason)".into());
    }
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(format!(
            "the reason must be at most {MAX_REASON} characters, without control characters"
        ));
    }
    if let OverrideKind::Pin(value) | OverrideKind::Floor(value) = kind
        && let Some(target) = covered.iter().find(|target| value > highest_max(target))
    {
        return Err(format!(
            "{kind} is above the max of target `{}` ({})",
            target.name,
            highest_max(target)
        ));
    }
    Ok(StoredOverride {
        id,
        scope: request.scope,
        kind: kind.to_string(),
        until: request.until,
        set_at: now,
        // Who set it is kept bounded and printable, whatever the environment said.
        by: request
            .by
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_BY)
            .collect(),
        reason: reason.to_owned(),
    })
}

/// The highest capacity the config allows the target at any time: its `max`, or a
/// schedule rule's when higher.
fn highest_max(target: &TargetConfig) -> u32 {
    target
        .schedules
        .iter()
        .filter_map(|rule| rule.max)
        .fold(target.max, u32::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::state::store::Document as _;

    fn config() -> crate::config::Config {
        crate::config::parse(
            "[[target]]\nfunction = \"checkout\"\nqualifier = \"live\"\nmin = 1\nmax = 300\n\
             [[target]]\nfunction = \"search\"\nqualifier = \"live\"\nmin = 1\nmax = 100\n",
            std::path::Path::new("t.toml"),
        )
        .expect("valid")
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + minutes * 60, 0).expect("a valid time")
    }

    fn request(scope: Scope, kind: &str, until_minutes: i64) -> SetRequest {
        SetRequest {
            scope,
            kind: kind.into(),
            until: at(until_minutes),
            reason: "launch at 10:00".into(),
            by: "ops".into(),
        }
    }

    #[test]
    fn globs_match_as_shells_do() {
        for (pattern, text, matches) in [
            ("*", "anything", true),
            ("check*", "checkout:live", true),
            ("*:live", "checkout:live", true),
            ("*:live", "checkout:7", false),
            ("c?eck*t:*", "checkout:live", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("", "", true),
            ("", "x", false),
            // `?` is one character, as in selector globs, not one byte.
            ("caf?:live", "café:live", true),
        ] {
            assert_eq!(
                Scope::Glob(pattern.into()).covers(text),
                matches,
                "{pattern} {text}"
            );
        }
    }

    #[test]
    fn kinds_parse_and_print_alike() {
        for text in [
            "pin 200",
            "floor 500",
            "ceiling 0",
            "pause scale-in",
            "pause scale-out",
            "pause all",
        ] {
            let kind = parse_kind(text).expect("valid");
            assert_eq!(kind.to_string(), text);
        }
        for bad in [
            "pin",
            "pin -1",
            "pin 3000000000",
            "hold 5",
            "pause",
            "pause up",
        ] {
            assert!(parse_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let config = config();
        let target = |name: &str| Scope::Target(name.into());
        let refused = |request: SetRequest| {
            check(request, &config.targets, at(0), "id".into()).expect_err("refused")
        };
        assert!(refused(request(target("nope:live"), "pin 5", 60)).contains("not a target"));
        assert!(
            refused(request(Scope::Glob("x*".into()), "pin 5", 60)).contains("covers no target")
        );
        assert!(refused(request(target("checkout:live"), "pin 5", 0)).contains("not ahead"));
        assert!(
            refused(request(target("checkout:live"), "pin 5", 31 * 24 * 60)).contains("30 days")
        );
        assert!(refused(request(target("checkout:live"), "pin 301", 60)).contains("above the max"));
        assert!(refused(request(Scope::All, "floor 200", 60)).contains("search:live"));
        let mut blank = request(target("checkout:live"), "pin 5", 60);
        blank.reason = "  ".into();
        assert!(refused(blank).contains("reason"));
        let mut forged = request(target("checkout:live"), "pin 5", 60);
        forged.reason = "ok\n2026-01-01 INFO forged".into();
        assert!(refused(forged).contains("control characters"));
        let kept = check(
            request(Scope::All, "pause scale-in", 60),
            &config.targets,
            at(0),
            "id".into(),
        )
        .expect("valid");
        assert_eq!(kept.kind, "pause scale-in");
    }

    #[test]
    fn each_target_sees_the_overrides_that_cover_it_newest_first_until_they_end() {
        let config = config();
        let set = |scope: Scope, kind: &str, until: i64, set_at: i64| {
            let mut kept = check(
                request(scope, kind, until),
                &config.targets,
                at(0),
                kind.to_string(),
            )
            .expect("valid");
            kept.set_at = at(set_at);
            kept
        };
        let mut list = OverrideList {
            version: VERSION,
            overrides: vec![
                set(Scope::All, "pause scale-in", 120, 1),
                set(Scope::Target("checkout:live".into()), "pin 200", 60, 2),
                set(Scope::Glob("search*".into()), "floor 50", 30, 3),
            ],
        };
        let kinds = |target: &str, minute: i64| -> Vec<String> {
            list.for_target(target, at(minute))
                .iter()
                .map(|one| one.kind.to_string())
                .collect()
        };
        assert_eq!(kinds("checkout:live", 10), ["pin 200", "pause scale-in"]);
        assert_eq!(kinds("search:live", 10), ["floor 50", "pause scale-in"]);
        assert_eq!(kinds("search:live", 30), ["pause scale-in"], "ended at 30");
        assert_eq!(kinds("checkout:live", 120), Vec::<String>::new());
        let decoded = OverrideList::decode(&list.encode()).expect("decodes");
        assert_eq!(decoded, list);
        assert_eq!(list.clear("checkout:live"), 1);
        assert_eq!(list.clear("pause scale-in"), 1, "by id");
        list.drop_ended(at(45));
        assert!(list.overrides.is_empty());
        assert!(OverrideList::decode(b"{\"version\":9,\"overrides\":[]}").is_err());
    }
}
