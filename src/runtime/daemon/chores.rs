//! The daemon's reads to come, each at its due time: drift scans, refreshes of slow
//! facts, read-backs of allocations in progress.
//!
//! Three lanes. Urgent reads (read-backs, and the scans a conflict or a disagreeing
//! read-back calls for) always start when due. Drift scans and refreshes each start
//! only while fewer than `BACKGROUND_ROOM` of their lane are in flight, so that a cold
//! start over thousands of functions never queues thousands of requests in the budget
//! at once. Each lane has its own room: the budget ranks scans above refreshes, but it
//! can only rank what reaches it, and a room shared with a cold start's thousands of
//! refreshes would keep the scans out. Each chore is queued at most once; queueing it
//! again moves it. A plain value: time is passed in, and it starts nothing itself.

use std::collections::{BTreeSet, HashMap};

use tokio::time::Instant;

use crate::config::{FunctionId, TargetName};

/// Background reads in flight at most, per lane: enough to keep any budget busy, few
/// enough that a scale-out never queues behind thousands.
pub const BACKGROUND_ROOM: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Chore {
    /// Read every qualifier's config of the function.
    Scan(FunctionId),
    /// Read the function's reserved concurrency and alias weights again.
    Refresh(FunctionId),
    /// Read the account's unreserved concurrency again.
    Account,
    /// Read the target's config back while its allocation is in progress.
    ReadBack { target: TargetName, attempt: u32 },
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

/// Which queue a chore waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Urgent,
    Scan,
    Refresh,
}

impl Lane {
    const ALL: [Lane; 3] = [Lane::Urgent, Lane::Scan, Lane::Refresh];

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
pub struct Chores {
    lanes: [BTreeSet<(Instant, Chore)>; 3],
    /// By key: where each queued chore is, to move it without a search.
    queued: HashMap<Chore, (Instant, Lane, Chore)>,
    in_flight: [usize; 3],
}

impl Chores {
    /// Queues `chore` at `due`, replacing the same chore queued before. An urgent
    /// chore also replaces a background one, and is never pushed back by one.
    pub fn queue(&mut self, chore: Chore, due: Instant, urgent: bool) {
        let lane = match chore {
            _ if urgent => Lane::Urgent,
            Chore::ReadBack { .. } => Lane::Urgent,
            Chore::Scan(_) => Lane::Scan,
            Chore::Refresh(_) | Chore::Account => Lane::Refresh,
        };
        let key = chore.key();
        if let Some((_, was, _)) = self.queued.get(&key)
            && *was == Lane::Urgent
            && lane != Lane::Urgent
        {
            return;
        }
        if let Some((when, was, queued)) = self.queued.remove(&key) {
            self.lanes[was.index()].remove(&(when, queued));
        }
        self.lanes[lane.index()].insert((due, chore.clone()));
        self.queued.insert(key, (due, lane, chore));
    }

    fn room(&self, lane: Lane) -> usize {
        match lane {
            Lane::Urgent => usize::MAX,
            _ => BACKGROUND_ROOM.saturating_sub(self.in_flight[lane.index()]),
        }
    }

    /// Takes every chore due at `now` that its lane has room for, and counts it in
    /// flight until [`Chores::finished`].
    pub fn take_due(&mut self, now: Instant) -> Vec<(Chore, Lane)> {
        let mut due = Vec::new();
        for lane in Lane::ALL {
            let mut room = self.room(lane);
            while room > 0
                && let Some((at, _)) = self.lanes[lane.index()].first()
                && *at <= now
            {
                let (_, chore) = self.lanes[lane.index()].pop_first().expect("a first entry");
                self.queued.remove(&chore.key());
                self.in_flight[lane.index()] += 1;
                due.push((chore, lane));
                room -= 1;
            }
        }
        due
    }

    /// A chore taken from `lane` ended (or its task failed): its room is free.
    pub fn finished(&mut self, lane: Lane) {
        self.in_flight[lane.index()] = self.in_flight[lane.index()].saturating_sub(1);
    }

    /// When the next chore can start: the earliest in a lane with room.
    pub fn next_due(&self) -> Option<Instant> {
        Lane::ALL
            .iter()
            .filter(|lane| self.room(**lane) > 0)
            .filter_map(|lane| self.lanes[lane.index()].first().map(|(at, _)| *at))
            .min()
    }

    /// Forgets every queued chore; those in flight still count until they end.
    pub fn clear(&mut self) {
        self.lanes = Default::default();
        self.queued.clear();
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
        for index in 0..BACKGROUND_ROOM + 5 {
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
        let due = chores.take_due(now);
        assert_eq!(due.len(), BACKGROUND_ROOM + 1);
        assert_eq!(due[0].1, Lane::Urgent, "the urgent read-back first");
        assert!(
            chores.take_due(now).is_empty(),
            "no room, no background read"
        );
        assert_eq!(chores.next_due(), None);
        chores.finished(Lane::Scan);
        assert_eq!(chores.next_due(), Some(now));
        assert_eq!(chores.take_due(now).len(), 1);
    }

    #[test]
    fn refreshes_never_hold_the_room_scans_need() {
        let now = Instant::now();
        let later = now + Duration::from_secs(600);
        let mut chores = Chores::default();
        for index in 0..1_000 {
            chores.queue(Chore::Refresh(function(&format!("f{index}"))), now, false);
        }
        chores.queue(Chore::Scan(function("f0")), later, false);
        assert_eq!(chores.take_due(now).len(), BACKGROUND_ROOM);
        // The refresh lane is full and stays so; the scan still starts when due.
        let due = chores.take_due(later);
        assert_eq!(due, vec![(Chore::Scan(function("f0")), Lane::Scan)]);
    }

    #[test]
    fn queueing_again_moves_a_chore_and_urgent_wins() {
        let now = Instant::now();
        let later = now + Duration::from_secs(600);
        let mut chores = Chores::default();
        chores.queue(Chore::Scan(function("f")), later, false);
        chores.queue(Chore::Scan(function("f")), now, true);
        chores.queue(Chore::Scan(function("f")), later, false);
        let due = chores.take_due(now);
        assert_eq!(due, vec![(Chore::Scan(function("f")), Lane::Urgent)]);
        assert_eq!(chores.next_due(), None, "queued once");
    }
}
