//! The daemon's reads to come, each at its due time: drift scans, refreshes of slow
//! facts, read-backs of allocations in progress.
//!
//! Two queues: urgent reads (read-backs and the scans a conflict or a disagreeing
//! read-back calls for) always start when due; background reads (periodic scans and
//! refreshes) start only while fewer than `background_cap` are in flight, so that a
//! cold start over thousands of functions never queues thousands of requests in the
//! budget at once. Each chore is queued at most once; queueing it again moves it.
//! A plain value: time is passed in, and it starts nothing itself.

use std::collections::{BTreeSet, HashMap};

use tokio::time::Instant;

use crate::config::FunctionId;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Chore {
    /// Read every qualifier's config of the function.
    Scan(FunctionId),
    /// Read the function's reserved concurrency and alias weights again.
    Refresh(FunctionId),
    /// Read the account's unreserved concurrency again.
    Account,
    /// Read the target's config back while its allocation is in progress.
    ReadBack { target: String, attempt: u32 },
}

impl Chore {
    /// Which chore it replaces when queued: one of each kind per function or target.
    fn key(&self) -> Chore {
        match self {
            Chore::ReadBack { target, .. } => Chore::ReadBack {
                target: target.clone(),
                attempt: 0,
            },
            other => other.clone(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Chores {
    urgent: BTreeSet<(Instant, Chore)>,
    background: BTreeSet<(Instant, Chore)>,
    queued: HashMap<Chore, (Instant, bool)>,
}

impl Chores {
    /// Queues `chore` at `due`, replacing the same chore queued before. An urgent
    /// chore also replaces a background one, and is never pushed back by one.
    pub fn queue(&mut self, chore: Chore, due: Instant, urgent: bool) {
        let key = chore.key();
        if let Some((when, was_urgent)) = self.queued.get(&key).copied() {
            if was_urgent && !urgent {
                return;
            }
            let queue = if was_urgent {
                &mut self.urgent
            } else {
                &mut self.background
            };
            queue.retain(|(at, queued)| !(*at == when && queued.key() == key));
        }
        let queue = if urgent {
            &mut self.urgent
        } else {
            &mut self.background
        };
        queue.insert((due, chore));
        self.queued.insert(key, (due, urgent));
    }

    /// Takes every chore due at `now`: all urgent ones, and background ones while
    /// `background_room` allows. The flag is true for urgent chores.
    pub fn take_due(&mut self, now: Instant, background_room: usize) -> Vec<(Chore, bool)> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.urgent.first()
            && *at <= now
        {
            let (_, chore) = self.urgent.pop_first().expect("a first entry");
            self.queued.remove(&chore.key());
            due.push((chore, true));
        }
        let mut room = background_room;
        while room > 0
            && let Some((at, _)) = self.background.first()
            && *at <= now
        {
            let (_, chore) = self.background.pop_first().expect("a first entry");
            self.queued.remove(&chore.key());
            due.push((chore, false));
            room -= 1;
        }
        due
    }

    /// When the next chore can start, given whether background reads have room.
    pub fn next_due(&self, background_room: bool) -> Option<Instant> {
        let urgent = self.urgent.first().map(|(at, _)| *at);
        let background = self
            .background
            .first()
            .map(|(at, _)| *at)
            .filter(|_| background_room);
        match (urgent, background) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn function(name: &str) -> FunctionId {
        FunctionId {
            name: name.into(),
            account: None,
            reference: name.into(),
        }
    }

    #[test]
    fn urgent_chores_go_first_and_background_ones_wait_for_room() {
        let now = Instant::now();
        let mut chores = Chores::default();
        for index in 0..10 {
            chores.queue(Chore::Scan(function(&format!("f{index}"))), now, false);
        }
        chores.queue(
            Chore::ReadBack {
                target: "t".into(),
                attempt: 0,
            },
            now,
            true,
        );
        let due = chores.take_due(now, 3);
        assert_eq!(due.len(), 4);
        assert!(due[0].1, "the urgent read-back first");
        assert_eq!(
            chores.take_due(now, 0).len(),
            0,
            "no room, no background read"
        );
        assert_eq!(chores.next_due(false), None);
        assert_eq!(chores.next_due(true), Some(now));
    }

    #[test]
    fn queueing_again_moves_a_chore_and_urgent_wins() {
        let now = Instant::now();
        let later = now + Duration::from_secs(600);
        let mut chores = Chores::default();
        chores.queue(Chore::Scan(function("f")), later, false);
        chores.queue(Chore::Scan(function("f")), now, true);
        chores.queue(Chore::Scan(function("f")), later, false);
        let due = chores.take_due(now, 10);
        assert_eq!(due, vec![(Chore::Scan(function("f")), true)]);
        assert_eq!(chores.next_due(true), None, "queued once");
    }
}
