//! Every target's next schedule boundary, earliest first, on the wall clock, and the
//! wake the driver keeps armed for the earliest.
//!
//! Boundaries at the same instant are one entry each and come due together: a burst
//! is never dropped, whatever its size. The slot holds its target's boundary; an entry
//! here that no longer matches its slot (the target was removed or rescheduled by a
//! reload) is skipped when it comes due. A plain value: time is passed in.
//!
//! What it must not do: read the clock or drop a boundary.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::config::TargetName;

#[derive(Debug, Default)]
pub struct Boundaries {
    queue: BTreeSet<(DateTime<Utc>, TargetName)>,
    /// The boundary the driver's wake is armed for.
    armed: Option<DateTime<Utc>>,
}

impl Boundaries {
    pub fn insert(&mut self, when: DateTime<Utc>, target: TargetName) {
        self.queue.insert((when, target));
    }

    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Removes and returns the entries at or before `now`.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, TargetName)> {
        let mut due = Vec::new();
        while let Some((when, _)) = self.queue.first()
            && *when <= now
        {
            due.push(self.queue.pop_first().expect("the queue has a first entry"));
        }
        due
    }

    /// The earliest boundary, when the wake must be armed anew for it.
    pub fn earliest_to_arm(&mut self) -> Option<DateTime<Utc>> {
        let earliest = self.queue.first().map(|(when, _)| *when);
        if earliest == self.armed {
            return None;
        }
        self.armed = earliest;
        earliest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + i64::from(minute) * 60, 0)
            .expect("a valid timestamp")
    }

    #[test]
    fn boundaries_come_due_together_and_the_wake_is_armed_once_per_earliest() {
        let mut boundaries = Boundaries::default();
        for index in 0..5_000 {
            boundaries.insert(at(2), format!("t{index}").into());
        }
        boundaries.insert(at(3), "late".into());
        assert_eq!(boundaries.earliest_to_arm(), Some(at(2)));
        assert_eq!(boundaries.earliest_to_arm(), None, "already armed");
        assert!(boundaries.take_due(at(1)).is_empty());
        assert_eq!(
            boundaries.take_due(at(2)).len(),
            5_000,
            "a burst is never cut"
        );
        assert_eq!(boundaries.earliest_to_arm(), Some(at(3)));
        assert_eq!(
            boundaries.take_due(at(10)),
            vec![(at(3), TargetName::from("late"))]
        );
        assert_eq!(boundaries.earliest_to_arm(), None);
    }
}
