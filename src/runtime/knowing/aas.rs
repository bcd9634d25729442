//! What is known of Application Auto Scaling (AAS) in one shard: which targets a
//! scalable target manages, what it has suspended, and which were taken over or handed
//! back ([`crate::runtime::state::handover`]). From that, each target's [`Standing`]:
//! whether pc-autoscaler may write it, must leave it to AAS, or must take it over
//! first.
//!
//! The rules. A target is pc-autoscaler's to write when no scalable target names it,
//! or when AAS has suspended all of its scaling (dynamic in and out, and scheduled):
//! then AAS writes nothing. A target AAS still scales is left alone, unless the config
//! says `take_over_aas`: then it is taken over (its suspended state recorded, then all
//! of it suspended) before the first write. A target handed back by `migrate
//! --rollback` is left alone whatever the config says. Nothing is written before the
//! first read; a read that fails leaves writes as they were before this existed, and
//! says so.
//!
//! What it must not do: send requests, read the clock, or decide capacity.

use std::collections::{HashMap, HashSet};

use crate::aws::{ScalableTarget, SuspendedState};
use crate::config::TargetConfig;
use crate::runtime::state::handover::Handovers;

/// A function's name and a qualifier, as AAS's resource ids name them.
type Resource = (String, String);

fn resource_of(target: &TargetConfig) -> Resource {
    (target.function.name.clone(), target.qualifier.to_string())
}

/// How far the shard has read AAS.
#[derive(Debug, Clone, Default, PartialEq)]
enum ReadState {
    #[default]
    NotYet,
    /// Read at least once; the last read is what is known.
    Read,
    /// No read has succeeded: AAS could not be read (no permission, no endpoint).
    Unreadable(String),
}

/// One target's standing towards AAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// pc-autoscaler may write it.
    Ours,
    /// AAS has not been read yet: nothing is written until it is.
    NotReadYet,
    /// AAS manages it and the config does not take it over.
    LeftToAas(SuspendedState),
    /// Handed back to AAS by `migrate --rollback`.
    HandedBack,
    /// To be taken over: AAS had `before` suspended.
    ToTakeOver { before: SuspendedState },
    /// Its takeover is under way.
    TakingOver,
    /// Its takeover failed; it is tried again after the next read of AAS.
    TakeoverFailed,
}

impl Standing {
    pub fn may_write(self) -> bool {
        self == Standing::Ours
    }

    /// The `state` label of `pc_autoscaler_target_handover`, for a target with a
    /// scalable target or a record; `None` for the rest.
    pub fn label(self, taken_over: bool) -> Option<&'static str> {
        match self {
            Standing::Ours if taken_over => Some("taken_over"),
            Standing::Ours | Standing::NotReadYet => None,
            Standing::LeftToAas(_) => Some("left_to_aas"),
            Standing::HandedBack => Some("handed_back"),
            Standing::ToTakeOver { .. } | Standing::TakingOver | Standing::TakeoverFailed => {
                Some("taking_over")
            }
        }
    }
}

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Standing::Ours => f.write_str("pc-autoscaler's to write"),
            Standing::NotReadYet => f.write_str(
                "Application Auto Scaling has not been read yet; nothing is written until it is",
            ),
            Standing::LeftToAas(_) => f.write_str(
                "managed by Application Auto Scaling (a scalable target scales it); left alone: \
                 set take_over_aas = true to take it over, or remove the scalable target",
            ),
            Standing::HandedBack => f.write_str(
                "handed back to Application Auto Scaling by `migrate --rollback`; left alone \
                 until `migrate --forget-handed-back`",
            ),
            Standing::ToTakeOver { .. } => f.write_str(
                "managed by Application Auto Scaling, to be taken over (take_over_aas): its \
                 suspended state is recorded, then all of its scaling suspended, before the \
                 first write",
            ),
            Standing::TakingOver => f.write_str(
                "being taken over from Application Auto Scaling: written once its scaling is \
                 suspended",
            ),
            Standing::TakeoverFailed => f.write_str(
                "managed by Application Auto Scaling; its takeover failed (see its activity) \
                 and is tried again after the next read of Application Auto Scaling",
            ),
        }
    }
}

/// What one shard knows of AAS.
#[derive(Debug, Clone, Default)]
pub struct AasView {
    read: ReadState,
    /// What each scalable target has suspended.
    scalable: HashMap<Resource, SuspendedState>,
    /// Targets taken over, and whether handed back since; `None` until the records
    /// were read (then nothing is taken over).
    records: Option<HashMap<Resource, bool>>,
    /// Takeovers under way.
    taking: HashSet<Resource>,
    /// Takeovers that failed since the last read: not tried again before the next.
    failed: HashSet<Resource>,
}

impl AasView {
    /// A read of AAS's scalable targets and of the shard's handover records (the
    /// caller keeps only those of this shard). What succeeded
    /// replaces what is known; a failure keeps the last read, if there was one.
    /// Returns whether AAS failed before any read succeeded (worth saying once).
    pub fn read(
        &mut self,
        scalable: Result<Vec<ScalableTarget>, String>,
        records: Result<Handovers, String>,
    ) -> bool {
        if let Ok(handovers) = records {
            let records = handovers.records.into_iter().map(|record| {
                let handed_back = record.handed_back_at.is_some();
                ((record.function, record.qualifier), handed_back)
            });
            self.records = Some(records.collect());
        }
        match scalable {
            Ok(targets) => {
                self.read = ReadState::Read;
                self.failed.clear();
                self.scalable = targets
                    .into_iter()
                    .map(|target| ((target.function, target.qualifier), target.suspended))
                    .collect();
                false
            }
            Err(_) if self.read == ReadState::Read => false,
            Err(error) => {
                let first = self.read == ReadState::NotYet;
                self.read = ReadState::Unreadable(error);
                first
            }
        }
    }

    /// Whether AAS could not be read yet.
    pub fn unreadable(&self) -> bool {
        matches!(self.read, ReadState::Unreadable(_))
    }

    pub fn standing(&self, target: &TargetConfig) -> Standing {
        match &self.read {
            ReadState::NotYet => return Standing::NotReadYet,
            // As before AAS was read at all: the scalable targets are not known.
            ReadState::Unreadable(_) => return Standing::Ours,
            ReadState::Read => {}
        }
        let resource = resource_of(target);
        let record = self.records.as_ref().map(|records| records.get(&resource));
        if record == Some(Some(&true)) {
            return Standing::HandedBack;
        }
        let Some(&suspended) = self.scalable.get(&resource) else {
            return Standing::Ours;
        };
        if suspended == SuspendedState::ALL {
            return Standing::Ours;
        }
        // Without the records, a target handed back could not be told from one never
        // taken: nothing is taken over.
        if !target.take_over_aas || record.is_none() {
            return Standing::LeftToAas(suspended);
        }
        if self.taking.contains(&resource) {
            Standing::TakingOver
        } else if self.failed.contains(&resource) {
            Standing::TakeoverFailed
        } else {
            Standing::ToTakeOver { before: suspended }
        }
    }

    /// Whether `target` was taken over and is not handed back.
    pub fn taken_over(&self, target: &TargetConfig) -> bool {
        (self.records.as_ref())
            .is_some_and(|records| records.get(&resource_of(target)) == Some(&false))
    }

    /// A takeover of `target` started.
    pub fn taking(&mut self, target: &TargetConfig) {
        self.taking.insert(resource_of(target));
    }

    /// A takeover of `target` ended: on success, AAS has all of it suspended and the
    /// record is kept; `handed_back` when the record said it was handed back.
    pub fn took_over(&mut self, target: &TargetConfig, outcome: TakeoverOutcome) {
        let resource = resource_of(target);
        self.taking.remove(&resource);
        match outcome {
            TakeoverOutcome::Done => {
                self.scalable.insert(resource.clone(), SuspendedState::ALL);
                self.records.get_or_insert_default().insert(resource, false);
            }
            TakeoverOutcome::HandedBack => {
                self.records.get_or_insert_default().insert(resource, true);
            }
            TakeoverOutcome::Failed(_) => {
                self.failed.insert(resource);
            }
        }
    }
}

/// How a takeover ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TakeoverOutcome {
    Done,
    /// The record says the target was handed back: nothing was suspended.
    HandedBack,
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::state::store::Document as _;

    fn target(take_over: bool) -> TargetConfig {
        let mut target = crate::policy::test_support::target("min = 0\nmax = 10");
        target.take_over_aas = take_over;
        target
    }

    fn scalable(target: &TargetConfig, suspended: SuspendedState) -> ScalableTarget {
        ScalableTarget {
            function: target.function.name.clone(),
            qualifier: target.qualifier.to_string(),
            min: 0,
            max: 10,
            suspended,
        }
    }

    #[test]
    fn nothing_is_written_before_the_first_read_and_an_aas_target_is_left_alone() {
        let (plain, taking) = (target(false), target(true));
        let mut view = AasView::default();
        assert_eq!(view.standing(&plain), Standing::NotReadYet);
        view.read(Ok(vec![]), Ok(Handovers::empty()));
        assert_eq!(view.standing(&plain), Standing::Ours);

        let active = SuspendedState::default();
        view.read(Ok(vec![scalable(&plain, active)]), Ok(Handovers::empty()));
        assert_eq!(view.standing(&plain), Standing::LeftToAas(active));
        assert_eq!(
            view.standing(&taking),
            Standing::ToTakeOver { before: active }
        );
        view.taking(&taking);
        assert_eq!(view.standing(&taking), Standing::TakingOver);
        view.took_over(&taking, TakeoverOutcome::Failed("throttled".into()));
        assert_eq!(
            view.standing(&taking),
            Standing::TakeoverFailed,
            "not again at once"
        );
        view.read(Ok(vec![scalable(&plain, active)]), Ok(Handovers::empty()));
        assert_eq!(
            view.standing(&taking),
            Standing::ToTakeOver { before: active }
        );
        view.taking(&taking);
        view.took_over(&taking, TakeoverOutcome::Done);
        assert_eq!(view.standing(&taking), Standing::Ours);
        assert!(view.taken_over(&taking));

        // A failed read keeps what the last one found.
        assert!(!view.read(Err("throttled".into()), Err("unreadable".into())));
        assert_eq!(view.standing(&taking), Standing::Ours);
    }

    #[test]
    fn a_target_handed_back_is_left_alone_and_an_unreadable_aas_changes_nothing() {
        let shard = crate::config::ShardKey::default();
        let taking = target(true);
        let mut handovers = Handovers::empty();
        let before = SuspendedState {
            scheduled: true,
            ..SuspendedState::default()
        };
        let now = "2026-12-07T10:00:00Z".parse().expect("a time");
        let qualifier = taking.qualifier.to_string();
        handovers.taking(&shard, (&taking.function.name, &qualifier), before, now);
        handovers.records[0].handed_back_at = Some(now);
        let mut view = AasView::default();
        view.read(Ok(vec![scalable(&taking, before)]), Ok(handovers));
        assert_eq!(view.standing(&taking), Standing::HandedBack);

        let mut unread = AasView::default();
        let denied = || Err("AccessDenied".to_owned());
        assert!(unread.read(denied(), Ok(Handovers::empty())));
        assert!(!unread.read(denied(), Ok(Handovers::empty())), "said once");
        assert_eq!(unread.standing(&taking), Standing::Ours);
        assert!(unread.unreadable());

        // Records that cannot be read take nothing over.
        let mut no_records = AasView::default();
        let active = SuspendedState::default();
        no_records.read(Ok(vec![scalable(&taking, active)]), Err("gone".into()));
        assert_eq!(no_records.standing(&taking), Standing::LeftToAas(active));
    }
}
