//! Operators' overrides in the shard: the last list read from the store, what changed
//! in it (each override set, cleared or ended is an activity), and each target's
//! overrides for its decision. A target an override starts or stops covering is
//! decided at once. A store that cannot be read keeps the last list in force until its
//! overrides end, so a pause is never dropped because a read failed; that is logged
//! and recorded once, when it starts.
//!
//! What it must not do: read the store (the driver does, once a pass) or judge an
//! override (`policy::overrides` does).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Entry, Now, Shard};
use crate::config::TargetName;
use crate::policy::overrides::Override;
use crate::runtime::state::activity::{Kind, Trigger};
use crate::runtime::state::overrides::{OverrideList, StoredOverride};

/// The overrides the shard applies.
#[derive(Debug, Default)]
pub struct InForce {
    list: OverrideList,
    /// Each override recorded as set and not yet as ended, by id.
    seen: HashMap<String, DateTime<Utc>>,
    /// Whether the last read failed.
    unreadable: bool,
    /// Whether the tenure's first read is still awaited: until it ends nothing is
    /// decided, or a new leader's first pass would undo a pin it had not read yet.
    awaited: bool,
}

impl InForce {
    /// `target`'s overrides at `now`, newest first.
    pub fn of(&self, target: &TargetName, now: DateTime<Utc>) -> Vec<Override> {
        if self.list.overrides.is_empty() {
            return Vec::new();
        }
        self.list.for_target(target.as_str(), now)
    }

    pub fn await_first_read(&mut self, reads: bool) {
        self.awaited = reads;
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
}

impl Shard {
    /// A read of the override store ended.
    pub(super) fn overrides_read(&mut self, read: Result<OverrideList, String>, now: Now) {
        let mut changed: Vec<StoredOverride> = Vec::new();
        match read {
            Err(why) => {
                if !self.overrides.unreadable {
                    tracing::warn!(reason = %why, "the override store cannot be read; the overrides last read stay in force until they end");
                    self.record_override(
                        "overrides",
                        format!("store unreadable: {why}; the overrides last read stay in force"),
                        now,
                    );
                }
                self.overrides.unreadable = true;
            }
            Ok(list) => {
                if self.overrides.unreadable {
                    tracing::info!("the override store can be read again");
                }
                self.overrides.unreadable = false;
                for one in &list.overrides {
                    if now.wall < one.until && !self.overrides.seen.contains_key(&one.id) {
                        self.overrides.seen.insert(one.id.clone(), one.until);
                        self.record_override(&one.scope.to_string(), set_text(one), now);
                        changed.push(one.clone());
                    }
                }
                let gone: Vec<StoredOverride> = self
                    .overrides
                    .list
                    .overrides
                    .iter()
                    .filter(|old| list.overrides.iter().all(|new| new.id != old.id))
                    .filter(|old| self.overrides.seen.remove(&old.id).is_some())
                    .cloned()
                    .collect();
                for one in gone {
                    let outcome = if now.wall < one.until {
                        format!("cleared: {}", one.kind)
                    } else {
                        format!("ended: {}", one.kind)
                    };
                    self.record_override(&one.scope.to_string(), outcome, now);
                    changed.push(one);
                }
                self.overrides.list = list;
            }
        }
        // Ends, whether the store answered or not.
        let ended: Vec<StoredOverride> = self
            .overrides
            .list
            .overrides
            .iter()
            .filter(|one| one.until <= now.wall)
            .filter(|one| self.overrides.seen.remove(&one.id).is_some())
            .cloned()
            .collect();
        for one in ended {
            self.record_override(&one.scope.to_string(), format!("ended: {}", one.kind), now);
            changed.push(one);
        }
        self.overrides.list.drop_ended(now.wall);
        if std::mem::take(&mut self.overrides.awaited) {
            // The decisions the wait held back.
            self.decide_all(Trigger::Override, now);
            return;
        }
        let covered: Vec<TargetName> = self
            .targets
            .iter()
            .filter(|(name, _)| changed.iter().any(|one| one.scope.covers(name.as_str())))
            .map(|(name, _)| name.clone())
            .collect();
        self.decide(&covered, Trigger::Override, now);
    }

    fn record_override(&mut self, scope: &str, outcome: String, now: Now) {
        self.record(
            &TargetName::from(scope.to_owned()),
            Entry {
                kind: Kind::Override,
                from: None,
                to: None,
                reason: String::new(),
                trigger: Trigger::Override,
                outcome,
            },
            now,
        );
    }
}

fn set_text(one: &StoredOverride) -> String {
    format!(
        "set: {} until {} by {}: {}",
        one.kind, one.until, one.by, one.reason
    )
}
