//! The targets taken over from Application Auto Scaling: for each, what AAS had
//! suspended of its scalable target before pc-autoscaler suspended the rest, so that
//! `migrate --rollback` restores exactly that, and whether it was handed back since.
//! Kept as one document every copy shares ([`super::store`]): the lease table's
//! `NAME#handovers` with `[leader]`, else `handovers.json` in the state directory.
//!
//! A record is written once, before the suspension: a target taken over again (AAS
//! resumed by someone else, a restart) keeps the state it had first. A target handed
//! back is left alone, whatever the config says, until the record is forgotten.
//!
//! What it must not do: talk to AWS or read a clock; `now` comes in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::{Item, SuspendedState};
use crate::config::ShardKey;
use crate::runtime::state::store::Document;

/// The encoding's version; another is refused, never guessed at.
pub const VERSION: u32 = 1;

/// One target taken over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    /// Its shard: an `[[account]]`'s name and the Region, `None` for the base account.
    pub account: Option<String>,
    pub region: Option<String>,
    pub function: String,
    pub qualifier: String,
    /// What AAS had suspended before the takeover.
    pub before: SuspendedState,
    pub taken_at: DateTime<Utc>,
    /// When `migrate --rollback` restored `before`.
    pub handed_back_at: Option<DateTime<Utc>>,
}

impl Handover {
    fn is_of(&self, shard: &ShardKey, function: &str, qualifier: &str) -> bool {
        self.account.as_deref() == shard.account.as_deref()
            && self.region.as_deref() == shard.region.as_deref()
            && self.function == function
            && self.qualifier == qualifier
    }

    pub fn is_of_shard(&self, shard: &ShardKey) -> bool {
        self.account.as_deref() == shard.account.as_deref()
            && self.region.as_deref() == shard.region.as_deref()
    }
}

/// What a takeover's record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taking {
    /// Recorded now or before: the scalable target may be suspended.
    Recorded,
    /// Handed back since: it is left alone.
    HandedBack,
}

/// Every record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Handovers {
    pub version: u32,
    pub records: Vec<Handover>,
}

impl Document for Handovers {
    const ITEM: Item = Item::Handovers;

    fn empty() -> Self {
        Handovers {
            version: VERSION,
            records: Vec::new(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("handovers are plain strings and numbers")
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        let handovers: Handovers = serde_json::from_slice(bytes)
            .map_err(|error| format!("the handovers do not decode: {error}"))?;
        if handovers.version != VERSION {
            return Err(format!(
                "the handovers are of version {}, not {VERSION}",
                handovers.version
            ));
        }
        Ok(handovers)
    }
}

impl Handovers {
    pub fn find(&self, shard: &ShardKey, function: &str, qualifier: &str) -> Option<&Handover> {
        self.records
            .iter()
            .find(|record| record.is_of(shard, function, qualifier))
    }

    /// Records a takeover of `function:qualifier` in `shard`, whose scalable target had
    /// `before` suspended, unless one is recorded already: the state first found stays.
    /// A target handed back is not taken again.
    pub fn taking(
        &mut self,
        shard: &ShardKey,
        (function, qualifier): (&str, &str),
        before: SuspendedState,
        now: DateTime<Utc>,
    ) -> Taking {
        if let Some(record) = self.find(shard, function, qualifier) {
            return match record.handed_back_at {
                Some(_) => Taking::HandedBack,
                None => Taking::Recorded,
            };
        }
        self.records.push(Handover {
            account: shard.account.as_deref().map(str::to_owned),
            region: shard.region.as_deref().map(str::to_owned),
            function: function.to_owned(),
            qualifier: qualifier.to_owned(),
            before,
            taken_at: now,
            handed_back_at: None,
        });
        Taking::Recorded
    }

    /// Forgets the records of targets handed back: a config that takes them over may
    /// again. Returns how many went.
    pub fn forget_handed_back(&mut self) -> usize {
        let before = self.records.len();
        self.records
            .retain(|record| record.handed_back_at.is_none());
        before - self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-07T10:00:00Z".parse().expect("a time")
    }

    #[test]
    fn the_state_first_found_is_the_one_kept() {
        let shard = ShardKey::default();
        let mut handovers = Handovers::empty();
        let before = SuspendedState {
            scheduled: true,
            ..SuspendedState::default()
        };
        handovers.taking(&shard, ("f", "live"), before, now());
        handovers.taking(&shard, ("f", "live"), SuspendedState::ALL, now());
        assert_eq!(handovers.records.len(), 1);
        assert_eq!(
            handovers
                .find(&shard, "f", "live")
                .map(|record| record.before),
            Some(before)
        );
        let decoded = Handovers::decode(&handovers.encode()).expect("decodes");
        assert_eq!(decoded, handovers);
        handovers.records[0].handed_back_at = Some(now());
        assert_eq!(handovers.forget_handed_back(), 1);
        assert!(handovers.records.is_empty());
    }
}
