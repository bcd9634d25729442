//! The overrides a shard applies: the last list read from the store, and what changed
//! in it at each read (each override set, cleared or ended is told once). A store that
//! cannot be read keeps the last list in force until its overrides end, so a pause is
//! never dropped because a read failed. A tenure decides nothing before its first read;
//! if that read fails, nothing is scaled in until one succeeds ([`UNREAD`]): the list
//! it could not read may hold a pause.
//!
//! Limits hold here as at the command line: an override that ends more than 30 days
//! ahead, or whose kind this build cannot read, is refused and told once.
//!
//! What it must not do: read the store (the driver does, once a pass), record or
//! decide anything (the shard does, from what [`InForce::take`] tells), or judge an
//! override (`policy::overrides` does).

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::{OverrideList, StoredOverride};
use crate::config::TargetName;
use crate::policy::overrides::{Override, OverrideKind, Pause};

/// Who and why of the pause that holds while the store has not been read since the
/// tenure began: a scale-in could undo a pause the store holds.
pub const UNREAD: (&str, &str) = (
    "pc-autoscaler",
    "the override store has not been read since the start; no scale-in until it is",
);

/// The overrides a shard applies.
#[derive(Debug, Default)]
pub struct InForce {
    list: OverrideList,
    /// Each override told as set and not yet as ended, by id.
    seen: HashMap<String, DateTime<Utc>>,
    /// Whether the last read failed.
    unreadable: bool,
    /// Whether the tenure's first read is still awaited: until it ends nothing is
    /// decided, or a new leader's first pass would undo a pin it had not read yet.
    awaited: bool,
    /// Whether the store has not been read whole since the tenure began (with a store).
    unread: bool,
    /// Overrides refused (by id), each told once.
    refused: HashMap<String, String>,
}

/// What one read changed.
#[derive(Debug, Default)]
pub struct Taken {
    /// What to record, each with the scope it concerns: a set, a clear, an end, or the
    /// store turning unreadable.
    pub told: Vec<(String, String)>,
    /// The overrides set, cleared or ended: the targets they cover are decided again.
    pub changed: Vec<StoredOverride>,
    /// This was the tenure's first read: every target is decided now.
    pub first: bool,
    /// Every target is decided again: the store was read whole for the first time
    /// since the tenure began, after a read that failed.
    pub everyone: bool,
}

impl InForce {
    /// `target`'s overrides at `now`, newest first.
    pub fn of(&self, target: &TargetName, now: DateTime<Utc>) -> Vec<Override> {
        let mut overrides = if self.list.overrides.is_empty() {
            Vec::new()
        } else {
            self.list.for_target(target.as_str(), now)
        };
        if self.unread {
            let (by, reason) = UNREAD;
            overrides.insert(
                0,
                Override {
                    kind: OverrideKind::Pause(Pause::ScaleIn),
                    until: now + TimeDelta::hours(1),
                    by: by.into(),
                    reason: reason.into(),
                },
            );
        }
        overrides
    }

    pub fn await_first_read(&mut self, reads: bool) {
        self.awaited = reads;
        self.unread = reads;
    }

    /// Whether targets may be decided: the tenure's first read has ended, or there is
    /// no store.
    pub fn ready(&self) -> bool {
        !self.awaited
    }

    /// Whether the store could not be read the last time.
    pub fn unreadable(&self) -> bool {
        self.unreadable
    }

    /// Takes a read of the store at `now`: the list, or why it could not be read.
    pub fn take(&mut self, read: Result<OverrideList, String>, now: DateTime<Utc>) -> Taken {
        let mut taken = Taken::default();
        match read {
            Err(why) => {
                if !self.unreadable {
                    tracing::warn!(reason = %why, "the override store cannot be read; the overrides last read stay in force until they end");
                    taken.told.push((
                        "overrides".into(),
                        format!("store unreadable: {why}; the overrides last read stay in force"),
                    ));
                }
                self.unreadable = true;
            }
            Ok(list) => {
                if self.unreadable {
                    tracing::info!("the override store can be read again");
                }
                self.unreadable = false;
                // The pause of an unread store ends: every target is decided again
                // (after the tenure's first read, every target is decided anyway).
                taken.everyone = std::mem::take(&mut self.unread) && !self.awaited;
                let list = self.within_limits(list, now, &mut taken);
                self.take_list(list, now, &mut taken);
            }
        }
        // Ends, whether the store answered or not.
        let ended: Vec<StoredOverride> = self
            .list
            .overrides
            .iter()
            .filter(|one| one.until <= now)
            .filter(|one| self.seen.remove(&one.id).is_some())
            .cloned()
            .collect();
        for one in ended {
            taken
                .told
                .push((one.scope.to_string(), format!("ended: {}", one.kind)));
            taken.changed.push(one);
        }
        self.list.drop_ended(now);
        taken.first = std::mem::take(&mut self.awaited);
        taken
    }

    /// The overrides of `list` within the limits the command line keeps: one that ends
    /// more than 30 days ahead, or whose kind cannot be read, is refused and told once.
    fn within_limits(
        &mut self,
        mut list: OverrideList,
        now: DateTime<Utc>,
        taken: &mut Taken,
    ) -> OverrideList {
        list.overrides.retain(|one| {
            let Some(why) = one.refusal(now) else {
                return true;
            };
            let why = format!("refused: {why}");
            if self.refused.insert(one.id.clone(), why.clone()).is_none() {
                tracing::warn!(id = %one.id, reason = %why, "an override in the store is refused");
                taken.told.push((one.scope.to_string(), why));
            }
            false
        });
        list
    }

    /// What a list read whole says: the overrides new to it, and those gone from it.
    fn take_list(&mut self, list: OverrideList, now: DateTime<Utc>, taken: &mut Taken) {
        for one in &list.overrides {
            if now < one.until && !self.seen.contains_key(&one.id) {
                self.seen.insert(one.id.clone(), one.until);
                taken.told.push((one.scope.to_string(), set_text(one)));
                taken.changed.push(one.clone());
            }
        }
        let gone: Vec<StoredOverride> = self
            .list
            .overrides
            .iter()
            .filter(|old| list.overrides.iter().all(|new| new.id != old.id))
            .filter(|old| self.seen.remove(&old.id).is_some())
            .cloned()
            .collect();
        for one in gone {
            let outcome = if now < one.until {
                format!("cleared: {}", one.kind)
            } else {
                format!("ended: {}", one.kind)
            };
            taken.told.push((one.scope.to_string(), outcome));
            taken.changed.push(one);
        }
        self.list = list;
    }
}

fn set_text(one: &StoredOverride) -> String {
    format!(
        "set: {} until {} by {}: {}",
        one.kind, one.until, one.by, one.reason
    )
}
