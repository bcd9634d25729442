//! The shard's one queue of due work, each item at its due time: drift scans,
//! refreshes of slow facts, read-backs of allocations in progress, and targets to
//! decide again (a write's retry time, a refusal's end).
//!
//! Four lanes. Urgent reads (read-backs, and the scans a conflict or a disagreeing
//! read-back calls for) and decisions always start when due. Drift scans and
//! refreshes each start only while fewer than [`BACKGROUND_ROOM`] of their lane are
//! in flight, so that a cold start over thousands of functions never queues thousands
//! of requests in the budget at once. Each lane has its own room: the budget ranks
//! scans above refreshes, but it can only rank what reaches it, and a room shared with
//! a cold start's thousands of refreshes would keep the scans out. Each item is queued
//! at most once; queueing it again moves it (a decision only
//! sooner). A plain value: time is passed in, and it
//! starts nothing itself.
//!
//! What it must not do: start work itself or read the clock.

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
    ReadBack(TargetName),
    /// Decide the target again.
    Decide(TargetName),
    /// Hand out a snapshot of what is known, if it changed.
    Snapshot,
    /// Read Application Auto Scaling's scalable targets and the handover records: a
    /// few calls to another service, outside Lambda's budget.
    Aas,
}

/// Which queue a chore waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Urgent,
    Scan,
    Refresh,
    /// Decisions: no request of their own, so no room to keep.
    Decide,
}

impl Lane {
    const ALL: [Lane; 4] = [Lane::Urgent, Lane::Scan, Lane::Refresh, Lane::Decide];

    fn index(self) -> usize {
        self as usize
    }

    /// Whether a chore taken from this lane is a read that holds room until it ends.
    pub fn holds_room(self) -> bool {
        matches!(self, Lane::Scan | Lane::Refresh)
    }
}

#[derive(Debug, Default)]
pub struct Due {
    lanes: [BTreeSet<(Instant, Chore)>; 4],
    /// Where each queued chore is, to move it without a search.
    queued: HashMap<Chore, (Instant, Lane)>,
    in_flight: [usize; 4],
    /// The instant chores moved to the front of a lane share, while one waits there:
    /// ties go by the chore's order (a function's name), not by who moved last.
    front: [Option<Instant>; 4],
}

impl Due {
    /// Queues `chore` at `due`, replacing the same chore queued before. An urgent
    /// scan also replaces a background one, and is never pushed back by one.
    pub fn queue(&mut self, chore: Chore, due: Instant, urgent: bool) {
        let lane = Self::lane_of(&chore, urgent);
        if let Some((when, was)) = self.queued.get(&chore).copied() {
            // An urgent read is never pushed back by a background one, nor a decision
            // by a later one.
            let later_decision = lane == Lane::Decide && when <= due;
            if (was == Lane::Urgent && lane != Lane::Urgent) || later_decision {
                return;
            }
            self.lanes[was.index()].remove(&(when, chore.clone()));
        }
        self.lanes[lane.index()].insert((due, chore.clone()));
        self.queued.insert(chore, (due, lane));
    }

    /// Moves `chore`, if it is waiting, ahead of everything else waiting in its lane
    /// (due now at the latest): the next to start when the lane has room.
    pub fn queue_first(&mut self, chore: Chore, now: Instant) {
        let lane = Self::lane_of(&chore, false);
        if self.queued.get(&chore).is_none_or(|(_, was)| *was != lane) {
            return;
        }
        let first = self.lanes[lane.index()].first().map(|(at, _)| *at);
        let due = match (self.front[lane.index()], first) {
            (Some(front), Some(first)) if front == first => front,
            _ => {
                let earliest = first.map_or(now, |at| at.min(now));
                earliest
                    .checked_sub(std::time::Duration::from_nanos(1))
                    .unwrap_or(earliest)
            }
        };
        self.front[lane.index()] = Some(due);
        if let Some((when, was)) = self.queued.remove(&chore) {
            self.lanes[was.index()].remove(&(when, chore.clone()));
        }
        self.lanes[lane.index()].insert((due, chore.clone()));
        self.queued.insert(chore, (due, lane));
    }

    fn lane_of(chore: &Chore, urgent: bool) -> Lane {
        match chore {
            Chore::Decide(_) | Chore::Snapshot => Lane::Decide,
            _ if urgent => Lane::Urgent,
            Chore::ReadBack(_) | Chore::Aas => Lane::Urgent,
            Chore::Scan(_) => Lane::Scan,
            Chore::Refresh(_) | Chore::Account => Lane::Refresh,
        }
    }

    fn room(&self, lane: Lane) -> usize {
        if lane.holds_room() {
            BACKGROUND_ROOM.saturating_sub(self.in_flight[lane.index()])
        } else {
            usize::MAX
        }
    }

    /// Takes every chore due at `now` that its lane has room for; a background read
    /// counts in flight until [`Due::finished`].
    pub fn take_due(&mut self, now: Instant) -> Vec<(Chore, Lane)> {
        let mut due = Vec::new();
        for lane in Lane::ALL {
            let mut room = self.room(lane);
            while room > 0
                && let Some((at, _)) = self.lanes[lane.index()].first()
                && *at <= now
            {
                let (_, chore) = self.lanes[lane.index()].pop_first().expect("a first entry");
                self.queued.remove(&chore);
                if lane.holds_room() {
                    self.in_flight[lane.index()] += 1;
                }
                due.push((chore, lane));
                room -= 1;
            }
        }
        due
    }

    /// A read taken from `lane` ended (or its task failed): its room is free.
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

    /// Whether `chore` is queued, and when.
    pub fn when(&self, chore: &Chore) -> Option<Instant> {
        self.queued.get(chore).map(|(when, _)| *when)
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
        let mut due = Due::default();
        for index in 0..BACKGROUND_ROOM + 5 {
            due.queue(Chore::Scan(function(&format!("f{index}"))), now, false);
        }
        due.queue(Chore::ReadBack("t".into()), now, true);
        due.queue(Chore::Decide("t".into()), now, false);
        let taken = due.take_due(now);
        assert_eq!(taken.len(), BACKGROUND_ROOM + 2);
        assert_eq!(taken[0].1, Lane::Urgent, "the urgent read-back first");
        assert!(due.take_due(now).is_empty(), "no room, no background read");
        assert_eq!(due.next_due(), None);
        due.finished(Lane::Scan);
        assert_eq!(due.next_due(), Some(now));
        assert_eq!(due.take_due(now).len(), 1);
    }

    #[test]
    fn scans_moved_to_the_front_go_in_name_order_ahead_of_the_rest() {
        let now = Instant::now();
        let mut due = Due::default();
        for index in 0..40 {
            due.queue(Chore::Scan(function(&format!("f{index:02}"))), now, false);
        }
        for index in [39, 7, 30] {
            due.queue_first(Chore::Scan(function(&format!("f{index:02}"))), now);
        }
        let taken: Vec<Chore> = due
            .take_due(now)
            .into_iter()
            .map(|(chore, _)| chore)
            .collect();
        let first: Vec<Chore> = ["f07", "f30", "f39", "f00"]
            .into_iter()
            .map(|name| Chore::Scan(function(name)))
            .collect();
        assert_eq!(taken[..4], first[..]);
    }

    #[test]
    fn refreshes_never_hold_the_room_scans_need() {
        let now = Instant::now();
        let later = now + Duration::from_secs(600);
        let mut due = Due::default();
        for index in 0..1_000 {
            due.queue(Chore::Refresh(function(&format!("f{index}"))), now, false);
        }
        due.queue(Chore::Scan(function("f0")), later, false);
        assert_eq!(due.take_due(now).len(), BACKGROUND_ROOM);
        // The refresh lane is full and stays so; the scan still starts when due.
        let taken = due.take_due(later);
        assert_eq!(taken, vec![(Chore::Scan(function("f0")), Lane::Scan)]);
    }

    #[test]
    fn queueing_again_moves_a_chore_and_urgent_wins() {
        let now = Instant::now();
        let later = now + Duration::from_secs(600);
        let mut due = Due::default();
        due.queue(Chore::Scan(function("f")), later, false);
        due.queue(Chore::Scan(function("f")), now, true);
        due.queue(Chore::Scan(function("f")), later, false);
        assert_eq!(due.when(&Chore::Scan(function("f"))), Some(now));
        let taken = due.take_due(now);
        assert_eq!(taken, vec![(Chore::Scan(function("f")), Lane::Urgent)]);
        assert_eq!(due.next_due(), None, "queued once");
    }

    #[test]
    fn a_retry_is_due_work_and_the_earliest_decision_wins() {
        let now = Instant::now();
        let mut due = Due::default();
        due.queue(
            Chore::Decide("t".into()),
            now + Duration::from_secs(30),
            false,
        );
        due.queue(
            Chore::Decide("t".into()),
            now + Duration::from_secs(5),
            false,
        );
        due.queue(
            Chore::Decide("t".into()),
            now + Duration::from_secs(60),
            false,
        );
        assert_eq!(due.next_due(), Some(now + Duration::from_secs(5)));
        let taken = due.take_due(now + Duration::from_secs(5));
        assert_eq!(taken, vec![(Chore::Decide("t".into()), Lane::Decide)]);
        assert_eq!(due.next_due(), None);
    }
}
