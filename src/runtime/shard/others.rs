//! The other writers of the shard's targets.
//!
//! Application Auto Scaling (AAS): each target's [`Standing`] (`knowing::aas`) says
//! whether the shard may write it. A target AAS manages is decided, so that `/status`
//! shows what pc-autoscaler would do, but not written; one the config takes over is
//! taken over first ([`Effect::TakeOver`]), and written once that is done.
//!
//! Anyone else (a `terraform apply`, a deploy script, a person): a target whose
//! capacity someone else changes [`CONTEST_CHANGES`] times within [`CONTEST_WINDOW`]
//! is *contested*. The rule while it is: pc-autoscaler still raises the target to what
//! its policy needs, and never lowers it. A raise keeps the function from spilling
//! over whatever the other writer intended; a lowering is what a fight over cost would
//! repeat, and what the other writer set is at least as safe. So a contest costs at
//! most one write of ours per change of theirs, and only while theirs would spill. It
//! ends after a window without a foreign change. Starting and ending are activities
//! (and events), with the changes seen and when.
//!
//! What it must not do: write to AAS or Lambda itself; it asks through effects.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

use super::targets::BlockedBy;
use super::{Chore, Effect, Entry, Now, Shard};
use crate::aws::ScalableTarget;
use crate::config::TargetName;
use crate::runtime::knowing::aas::{Standing, TakeoverOutcome};
use crate::runtime::knowing::known::Drift;
use crate::runtime::state::activity::{Kind, Trigger};
use crate::runtime::state::handover::Handovers;

/// Foreign changes within this window count towards a contest; a contest ends after
/// one window without any.
pub const CONTEST_WINDOW: TimeDelta = TimeDelta::hours(1);
/// Foreign changes within [`CONTEST_WINDOW`] that make a target contested.
pub const CONTEST_CHANGES: usize = 3;

/// One change someone else made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ForeignChange {
    at: DateTime<Utc>,
    from: Option<u32>,
    to: Option<u32>,
}

/// A target's foreign changes of the last window, and whether it is contested.
#[derive(Debug, Clone, Default)]
pub struct Contest {
    recent: VecDeque<ForeignChange>,
    since: Option<DateTime<Utc>>,
}

impl Contest {
    /// Counts a foreign change; returns whether it starts a contest.
    fn foreign_change(&mut self, at: DateTime<Utc>, from: Option<u32>, to: Option<u32>) -> bool {
        self.recent.push_back(ForeignChange { at, from, to });
        while self
            .recent
            .front()
            .is_some_and(|change| at - change.at > CONTEST_WINDOW)
        {
            self.recent.pop_front();
        }
        let starts = self.since.is_none() && self.recent.len() >= CONTEST_CHANGES;
        if starts {
            self.since = Some(at);
        }
        starts
    }

    /// Ends the contest when no foreign change came for a window; returns whether it
    /// ended now.
    fn end_if_quiet(&mut self, now: DateTime<Utc>) -> bool {
        let quiet = self
            .recent
            .back()
            .is_none_or(|last| now - last.at > CONTEST_WINDOW);
        if quiet {
            self.recent.clear();
        }
        quiet && self.since.take().is_some()
    }

    pub fn contested(&self) -> bool {
        self.since.is_some()
    }

    /// The changes of the window, for people: `10:05:00Z 8 → 3; …`.
    fn changes(&self) -> String {
        let value = |value: Option<u32>| value.map_or("none".to_owned(), |value| value.to_string());
        self.recent
            .iter()
            .map(|change| {
                format!(
                    "{} {} → {}",
                    change.at.format("%H:%M:%SZ"),
                    value(change.from),
                    value(change.to)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Shard {
    /// A read of AAS ended: every target whose standing changed since its last
    /// decision is decided again, and the next read is queued.
    pub(super) fn aas_read(
        &mut self,
        scalable: Result<Vec<ScalableTarget>, String>,
        records: Result<Handovers, String>,
        now: Now,
    ) {
        let error = scalable.as_ref().err().cloned();
        if let Err(records_error) = &records {
            tracing::warn!(error = %records_error, "the handover records could not be read; no target is taken over until they are");
        }
        if self.aas.read(scalable, records) {
            tracing::warn!(
                error = error.as_deref().unwrap_or_default(),
                "Application Auto Scaling could not be read: targets are written as if no scalable target managed them (grant application-autoscaling:DescribeScalableTargets)"
            );
        }
        let period = self.settings.discovery_period;
        let next = if self.aas.unreadable() {
            period.min(super::READ_RETRY)
        } else {
            period
        };
        self.due.queue(Chore::Aas, now.instant + next, false);
        let changed: Vec<TargetName> = self
            .targets
            .iter()
            .filter(|(_, slot)| {
                (slot.standing).is_some_and(|was| was != self.aas.standing(&slot.config))
            })
            .map(|(name, _)| name.clone())
            .collect();
        self.decide(&changed, Trigger::Aas, now);
    }

    /// Whether the shard must stand aside from writing `name` (its decision is kept
    /// for `/status` either way): AAS manages it, its takeover is needed or under
    /// way, or it is contested and the decision would lower it.
    pub(super) fn stands_aside(
        &mut self,
        name: &TargetName,
        (from, to): (u32, u32),
        trigger: Trigger,
        now: Now,
    ) -> bool {
        let Some(slot) = self.targets.get_mut(name) else {
            return true;
        };
        let config = slot.config.clone();
        let standing = self.aas.standing(&config);
        slot.standing = Some(standing);
        slot.handover = standing.label(self.aas.taken_over(&config));
        let blocked = match standing {
            Standing::Ours => None,
            // Every target starts here; the read comes within moments.
            Standing::NotReadYet => return true,
            Standing::ToTakeOver { before } if !self.settings.dry_run => {
                self.aas.taking(&config);
                slot.standing = Some(Standing::TakingOver);
                self.effects.push(Effect::TakeOver {
                    target: config,
                    before,
                });
                Some(BlockedBy::Aas(Standing::TakingOver))
            }
            other => Some(BlockedBy::Aas(other)),
        };
        if blocked.is_some() {
            self.note_blocked(name, blocked, Some((from, to)), trigger, now);
            return true;
        }
        if let Some(slot) = self.targets.get_mut(name)
            && slot.contest.end_if_quiet(now.wall)
        {
            self.contest_ended(name, now);
        }
        let lowers_contested =
            (self.targets.get(name)).is_some_and(|slot| slot.contest.contested() && to < from);
        if lowers_contested {
            self.note_blocked(
                name,
                Some(BlockedBy::Contested),
                Some((from, to)),
                trigger,
                now,
            );
        }
        lowers_contested
    }

    /// A takeover ended: recorded, and the target decided again.
    pub(super) fn took_over(&mut self, name: &TargetName, outcome: TakeoverOutcome, now: Now) {
        let Some(slot) = self.targets.get(name) else {
            return;
        };
        let config = slot.config.clone();
        let text = match &outcome {
            TakeoverOutcome::Done => "taken over: Application Auto Scaling's suspended state was recorded, then all of its scaling suspended".to_owned(),
            TakeoverOutcome::HandedBack => "not taken over: the record says it was handed back (`migrate --rollback`)".to_owned(),
            TakeoverOutcome::Failed(error) => format!("takeover failed: {error}; tried again after the next read of Application Auto Scaling"),
        };
        tracing::info!(target = %name, outcome = %text, "takeover from Application Auto Scaling");
        self.aas.took_over(&config, outcome);
        let entry = Entry {
            kind: Kind::Handover,
            from: None,
            to: None,
            reason: "take_over_aas".into(),
            trigger: Trigger::Aas,
            outcome: text,
        };
        self.record(name, entry, now);
        self.decide(std::slice::from_ref(name), Trigger::Aas, now);
    }

    /// Counts a change someone else made to a target the shard writes; the third
    /// within a window makes it contested.
    pub(super) fn count_foreign_change(&mut self, name: &TargetName, drift: &Drift, now: Now) {
        let Some(slot) = self.targets.get_mut(name) else {
            return;
        };
        // AAS's own changes to a target left to it are no contest.
        if slot.standing != Some(Standing::Ours) {
            return;
        }
        if !slot
            .contest
            .foreign_change(now.wall, drift.known, drift.found)
        {
            return;
        }
        let changes = slot.contest.changes();
        tracing::warn!(target = %name, changes = %changes, "contested: someone else keeps changing the capacity; pc-autoscaler now only raises it");
        let entry = Entry {
            kind: Kind::Contested,
            from: drift.known,
            to: drift.found,
            reason: format!(
                "changed by someone else {} times within {} minutes: {changes}",
                CONTEST_CHANGES,
                CONTEST_WINDOW.num_minutes()
            ),
            trigger: Trigger::Drift,
            outcome: "contested: raised when the policy needs more, never lowered".into(),
        };
        self.record(name, entry, now);
    }

    fn contest_ended(&mut self, name: &TargetName, now: Now) {
        tracing::info!(target = %name, "no longer contested");
        let entry = Entry {
            kind: Kind::Contested,
            from: None,
            to: None,
            reason: format!(
                "no change by anyone else for {} minutes",
                CONTEST_WINDOW.num_minutes()
            ),
            trigger: Trigger::Drift,
            outcome: "no longer contested: written as before".into(),
        };
        self.record(name, entry, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        "2026-12-07T10:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("a time")
            + TimeDelta::minutes(minutes)
    }

    #[test]
    fn the_third_change_within_an_hour_starts_a_contest_and_an_hour_of_quiet_ends_it() {
        let mut contest = Contest::default();
        assert!(!contest.foreign_change(at(0), Some(8), Some(3)));
        assert!(
            !contest.foreign_change(at(61), Some(8), Some(3)),
            "the first has aged out"
        );
        assert!(!contest.foreign_change(at(70), Some(8), Some(2)));
        assert!(contest.foreign_change(at(75), Some(8), Some(1)));
        assert!(contest.contested());
        assert_eq!(
            contest.changes(),
            "11:01:00Z 8 → 3; 11:10:00Z 8 → 2; 11:15:00Z 8 → 1"
        );
        assert!(
            !contest.foreign_change(at(80), Some(8), None),
            "started once"
        );
        assert!(!contest.end_if_quiet(at(130)));
        assert!(contest.end_if_quiet(at(141)));
        assert!(!contest.contested());
        assert!(!contest.end_if_quiet(at(200)));
    }
}
