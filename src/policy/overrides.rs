//! Operators' overrides: capacity pinned, floored, capped or paused by hand, each with an
//! expiry, who set it and why. The policy applies those in force at `now` after its own
//! decision (schedules, tracking, forecast and bounds included) and before the hard
//! limits, which no override passes: the target's configured `max`, reserved
//! concurrency and the account's headroom.
//!
//! When several are in force, the strongest word wins: a pin, then a pause, then a
//! floor, then a ceiling. A floor beats a ceiling because a floor is what keeps a
//! function served; an operator who wants less sets a pin. Among pins the first listed
//! wins (stores list the newest first), among floors the highest, among ceilings the
//! lowest.
//!
//! What it must not do: read the clock (an override ends when `now` passes `until`,
//! and the decision after it is the ordinary one, cooldowns included), or know where
//! overrides are kept.

use std::fmt;

use chrono::{DateTime, Utc};

/// Which direction a pause holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    ScaleIn,
    ScaleOut,
    All,
}

/// What an override does to the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideKind {
    /// Exactly this capacity.
    Pin(u32),
    /// At least this capacity.
    Floor(u32),
    /// At most this capacity.
    Ceiling(u32),
    /// The capacity in place now, held in that direction.
    Pause(Pause),
}

/// Every kind's label, in the order of [`in_force_bits`].
pub const KINDS: [&str; 6] = [
    "pin",
    "floor",
    "ceiling",
    "pause_scale_in",
    "pause_scale_out",
    "pause_all",
];

/// Which kinds are in force at `now`, one bit each in the order of [`KINDS`].
pub fn in_force_bits(overrides: &[Override], now: DateTime<Utc>) -> u8 {
    overrides
        .iter()
        .filter(|one| one.in_force(now))
        .filter_map(|one| KINDS.iter().position(|kind| *kind == one.kind.label()))
        .fold(0, |bits, index| bits | 1 << index)
}

impl OverrideKind {
    /// A short, bounded label for metrics: `pin`, `floor`, `ceiling`,
    /// `pause_scale_in`, `pause_scale_out`, `pause_all`.
    pub fn label(self) -> &'static str {
        match self {
            OverrideKind::Pin(_) => "pin",
            OverrideKind::Floor(_) => "floor",
            OverrideKind::Ceiling(_) => "ceiling",
            OverrideKind::Pause(Pause::ScaleIn) => "pause_scale_in",
            OverrideKind::Pause(Pause::ScaleOut) => "pause_scale_out",
            OverrideKind::Pause(Pause::All) => "pause_all",
        }
    }

    /// Which of the kinds in force wins, lowest first.
    fn rank(self) -> u8 {
        match self {
            OverrideKind::Pin(_) => 0,
            OverrideKind::Pause(_) => 1,
            OverrideKind::Floor(_) => 2,
            OverrideKind::Ceiling(_) => 3,
        }
    }

    /// The capacity this kind asks for, given what `decided` and what the target `has`;
    /// `None` when it leaves the decision as it is.
    fn wants(self, decided: u32, has: u32) -> Option<u32> {
        let wanted = match self {
            OverrideKind::Pin(value) => value,
            OverrideKind::Floor(floor) => decided.max(floor),
            OverrideKind::Ceiling(ceiling) => decided.min(ceiling),
            OverrideKind::Pause(Pause::ScaleIn) => decided.max(has),
            OverrideKind::Pause(Pause::ScaleOut) => decided.min(has),
            OverrideKind::Pause(Pause::All) => has,
        };
        (wanted != decided || matches!(self, OverrideKind::Pin(_) | OverrideKind::Pause(_)))
            .then_some(wanted)
    }
}

impl fmt::Display for OverrideKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverrideKind::Pin(value) => write!(f, "pin {value}"),
            OverrideKind::Floor(value) => write!(f, "floor {value}"),
            OverrideKind::Ceiling(value) => write!(f, "ceiling {value}"),
            OverrideKind::Pause(Pause::ScaleIn) => f.write_str("pause scale-in"),
            OverrideKind::Pause(Pause::ScaleOut) => f.write_str("pause scale-out"),
            OverrideKind::Pause(Pause::All) => f.write_str("pause all"),
        }
    }
}

/// One override of one target, as the store hands it to the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub kind: OverrideKind,
    /// It is in force until this instant, not at it.
    pub until: DateTime<Utc>,
    /// Who set it: an AWS identity or a local user.
    pub by: String,
    /// Why, as its setter wrote it.
    pub reason: String,
}

impl Override {
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }
}

/// The override that decides the capacity at `now`, and the capacity it asks for,
/// after the policy `decided` on its own with the target having `has`; `None` when
/// none is in force or the one that wins leaves the decision as it is.
pub fn winning(
    overrides: &[Override],
    decided: u32,
    has: u32,
    now: DateTime<Utc>,
) -> Option<(&Override, u32)> {
    let in_force = || overrides.iter().filter(move |one| one.in_force(now));
    // Floors and ceilings combine: the ceiling first, so that a floor wins over it.
    let ceiling = in_force()
        .filter_map(|one| match one.kind {
            OverrideKind::Ceiling(value) => Some((one, value)),
            _ => None,
        })
        .min_by_key(|(_, value)| *value);
    let floor = in_force()
        .filter_map(|one| match one.kind {
            OverrideKind::Floor(value) => Some((one, value)),
            _ => None,
        })
        .max_by_key(|(_, value)| *value);
    let strongest = in_force()
        .filter(|one| matches!(one.kind, OverrideKind::Pin(_) | OverrideKind::Pause(_)))
        .min_by_key(|one| one.kind.rank());
    if let Some(one) = strongest {
        return one.kind.wants(decided, has).map(|wanted| (one, wanted));
    }
    let capped = ceiling.and_then(|(one, _)| one.kind.wants(decided, has).map(|w| (one, w)));
    let after_ceiling = capped.map_or(decided, |(_, wanted)| wanted);
    let floored = floor.and_then(|(one, _)| one.kind.wants(after_ceiling, has).map(|w| (one, w)));
    floored.or(capped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + minutes * 60, 0).expect("a valid time")
    }

    fn set(kind: OverrideKind, until_minute: i64) -> Override {
        Override {
            kind,
            until: at(until_minute),
            by: "ops".into(),
            reason: "launch".into(),
        }
    }

    fn wins(overrides: &[Override], decided: u32, has: u32) -> Option<(OverrideKind, u32)> {
        winning(overrides, decided, has, at(0)).map(|(one, wanted)| (one.kind, wanted))
    }

    #[test]
    fn each_kind_alone() {
        use OverrideKind::*;
        let alone = |kind, decided, has| wins(&[set(kind, 60)], decided, has);
        assert_eq!(alone(Pin(200), 50, 50), Some((Pin(200), 200)));
        assert_eq!(
            alone(Pin(50), 50, 50),
            Some((Pin(50), 50)),
            "a pin explains"
        );
        assert_eq!(alone(Floor(500), 50, 50), Some((Floor(500), 500)));
        assert_eq!(
            alone(Floor(10), 50, 50),
            None,
            "above the floor: as decided"
        );
        assert_eq!(alone(Ceiling(20), 50, 50), Some((Ceiling(20), 20)));
        assert_eq!(alone(Ceiling(80), 50, 50), None);
        let scale_in = Pause(super::Pause::ScaleIn);
        assert_eq!(alone(scale_in, 10, 50), Some((scale_in, 50)));
        assert_eq!(
            alone(scale_in, 90, 50),
            Some((scale_in, 90)),
            "scale-out goes on"
        );
        let scale_out = Pause(super::Pause::ScaleOut);
        assert_eq!(alone(scale_out, 90, 50), Some((scale_out, 50)));
        assert_eq!(
            alone(scale_out, 10, 50),
            Some((scale_out, 10)),
            "scale-in goes on"
        );
        let all = Pause(super::Pause::All);
        assert_eq!(alone(all, 90, 50), Some((all, 50)));
        assert_eq!(alone(all, 10, 50), Some((all, 50)));
    }

    #[test]
    fn an_expired_override_is_not_in_force() {
        assert_eq!(wins(&[set(OverrideKind::Pin(200), 0)], 50, 50), None);
        assert_eq!(
            wins(&[set(OverrideKind::Pin(200), 1)], 50, 50),
            Some((OverrideKind::Pin(200), 200))
        );
    }

    #[test]
    fn the_strongest_word_wins() {
        use OverrideKind::*;
        let pause = Pause(super::Pause::All);
        let all = [
            set(Ceiling(10), 60),
            set(Floor(300), 60),
            set(pause, 60),
            set(Pin(200), 60),
            set(Pin(100), 60),
        ];
        assert_eq!(wins(&all, 50, 40), Some((Pin(200), 200)), "the first pin");
        assert_eq!(wins(&all[..3], 50, 40), Some((pause, 40)));
        assert_eq!(
            wins(&all[..2], 50, 40),
            Some((Floor(300), 300)),
            "a floor beats a ceiling"
        );
        let floors = [
            set(Floor(30), 60),
            set(Floor(70), 60),
            set(Ceiling(60), 60),
            set(Ceiling(40), 60),
        ];
        assert_eq!(wins(&floors, 50, 50), Some((Floor(70), 70)));
        assert_eq!(wins(&floors[2..], 50, 50), Some((Ceiling(40), 40)));
        assert_eq!(wins(&floors[..1], 50, 50), None);
        // The ceiling brings 50 to 40; a floor of 45 raises it again.
        let both = [set(Ceiling(40), 60), set(Floor(45), 60)];
        assert_eq!(wins(&both, 50, 50), Some((Floor(45), 45)));
        let both = [set(Ceiling(40), 60), set(Floor(30), 60)];
        assert_eq!(wins(&both, 50, 50), Some((Ceiling(40), 40)));
    }
}
