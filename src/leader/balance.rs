//! How spread leases (`[leader] spread = true`) are shared out among copies: whether
//! a copy takes one more free lease, whom it asks for one when none is free, and
//! whether a holder grants an ask.
//!
//! The rules, after the Kinesis Client Library's, with one change: nothing is ever
//! taken from a copy that renews in time. A lease moves only when its holder lets it
//! go, so a move never has two writers.
//! - Free or expired leases are taken first, while the copy holds fewer than its
//!   share: the leases over the live copies it knows of (itself included), rounded up.
//! - With none free, a copy that holds two or more fewer than the most loaded copy
//!   asks that copy (ties: the first by name) for one lease, once a balancing cycle.
//! - The holder grants an ask only while it still holds two or more than the asker
//!   did, and at most one lease a cycle; it stops writing the shard, then releases it.
//!
//! Pure: counts and instants in, a choice out. It must not do IO or read a clock.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// The leases as one copy sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shares {
    /// How many leases this copy holds.
    pub mine: usize,
    /// How many each other live copy holds, by identity. A copy holding none is
    /// unseen until it asks; the shares then move towards it one at a time.
    pub others: BTreeMap<String, usize>,
    /// Every lease, held or not.
    pub leases: usize,
}

impl Shares {
    /// This copy's share: the leases over the live copies, rounded up.
    pub fn share(&self) -> usize {
        self.leases.div_ceil(self.others.len() + 1)
    }

    /// Whether this copy may take one more free or expired lease.
    pub fn may_take(&self) -> bool {
        self.mine < self.share()
    }

    /// Whom to ask for a lease when none is free: the most loaded live copy (the first
    /// by name among equals) when it holds two or more than this copy.
    pub fn whom_to_ask(&self) -> Option<&str> {
        let (most_loaded, count) = self.others.iter().rev().max_by_key(|(_, count)| **count)?;
        (*count >= self.mine + 2).then_some(most_loaded.as_str())
    }
}

/// Whether a holder of `mine` leases grants an ask from a copy that held `holding`,
/// at `now`, having last granted one at `last_granted`.
pub fn grants(
    mine: usize,
    holding: usize,
    last_granted: Option<Instant>,
    now: Instant,
    cycle: Duration,
) -> bool {
    let cycle_over = last_granted.is_none_or(|at| now.saturating_duration_since(at) >= cycle);
    cycle_over && mine >= holding + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(mine: usize, others: &[(&str, usize)], leases: usize) -> Shares {
        Shares {
            mine,
            others: others
                .iter()
                .map(|(name, count)| ((*name).to_owned(), *count))
                .collect(),
            leases,
        }
    }

    #[test]
    fn a_copy_takes_free_leases_up_to_its_share_of_the_live_copies() {
        assert!(view(0, &[], 6).may_take());
        assert!(view(5, &[], 6).may_take());
        assert!(view(1, &[("a", 3)], 6).may_take());
        assert!(!view(3, &[("a", 3)], 6).may_take());
        assert!(view(2, &[("a", 2), ("b", 2)], 7).may_take());
        assert!(!view(2, &[("a", 2), ("b", 2)], 6).may_take());
    }

    #[test]
    fn a_copy_asks_the_most_loaded_only_when_the_spread_is_two_or_more() {
        assert_eq!(view(0, &[("a", 3), ("b", 3)], 6).whom_to_ask(), Some("a"));
        assert_eq!(view(1, &[("a", 2), ("b", 3)], 6).whom_to_ask(), Some("b"));
        assert_eq!(view(1, &[("a", 2), ("b", 2)], 5).whom_to_ask(), None);
        assert_eq!(view(0, &[], 6).whom_to_ask(), None);
    }

    #[test]
    fn a_holder_grants_one_ask_a_cycle_and_only_to_a_copy_two_below_it() {
        let now = Instant::now();
        let cycle = Duration::from_secs(15);
        assert!(grants(3, 0, None, now, cycle));
        assert!(grants(3, 1, None, now, cycle));
        assert!(!grants(3, 2, None, now, cycle));
        assert!(!grants(
            3,
            0,
            Some(now - Duration::from_secs(14)),
            now,
            cycle
        ));
        assert!(grants(3, 0, Some(now - cycle), now, cycle));
    }

    /// A fleet in rounds of one balancing cycle: each copy in turn takes what is free
    /// up to its share, else asks; each ask is answered by its holder at once. Some
    /// copies join after the others settled. Checks, for every size up to 40 leases and
    /// 5 copies: every lease is held, the spread ends at most one apart, a copy grants
    /// at most one lease a cycle, and one copy joining a settled fleet has its share
    /// within as many cycles as the share.
    #[test]
    fn any_fleet_settles_within_one_apart_moving_one_lease_a_cycle_per_copy() {
        for leases in 1..=40 {
            for copies in 1..=5 {
                for joined_late in 0..copies {
                    settle(leases, copies, joined_late);
                }
            }
        }
    }

    /// `joined_late` copies start after the others settled.
    fn settle(leases: usize, copies: usize, joined_late: usize) {
        let names: Vec<String> = (0..copies).map(|index| format!("c{index}")).collect();
        // The holder of each lease.
        let mut holder: Vec<Option<usize>> = vec![None; leases];
        let first = copies - joined_late;
        run_rounds(&names, &mut holder, first, leases * 2 + 2);
        let (rounds, limited) = run_rounds(&names, &mut holder, copies, leases + 2);
        assert!(!limited, "{leases} leases, {copies} copies: still moving");
        let counts = counts(&holder, copies);
        let (min, max) = (counts.iter().min(), counts.iter().max());
        assert!(
            max.zip(min).is_some_and(|(max, min)| max - min <= 1),
            "{leases} leases over {copies} copies ({joined_late} late): {counts:?}"
        );
        assert!(holder.iter().all(Option::is_some));
        if joined_late == 1 {
            let share = leases / copies;
            assert!(
                rounds <= share,
                "{leases} leases, {copies} copies: {rounds} rounds"
            );
        }
    }

    fn counts(holder: &[Option<usize>], copies: usize) -> Vec<usize> {
        let mut counts = vec![0; copies];
        for copy in holder.iter().flatten() {
            counts[*copy] += 1;
        }
        counts
    }

    /// Runs until a round changes nothing; returns the rounds that changed something
    /// and whether the limit was reached.
    fn run_rounds(
        names: &[String],
        holder: &mut [Option<usize>],
        copies: usize,
        limit: usize,
    ) -> (usize, bool) {
        let cycle = Duration::from_secs(1);
        let start = Instant::now();
        let mut last_granted = vec![None; copies];
        for round in 0..limit {
            let now = start + cycle * round as u32;
            let mut changed = false;
            let mut granted_this_round = vec![0; copies];
            for me in 0..copies {
                let counts = counts(holder, copies);
                let view = Shares {
                    mine: counts[me],
                    others: (0..copies)
                        .filter(|other| *other != me && counts[*other] > 0)
                        .map(|other| (names[other].clone(), counts[other]))
                        .collect(),
                    leases: holder.len(),
                };
                if holder.iter().any(Option::is_none) {
                    let mut mine = view.mine;
                    while let Some(free) = holder.iter().position(Option::is_none)
                        && (Shares {
                            mine,
                            ..view.clone()
                        })
                        .may_take()
                    {
                        holder[free] = Some(me);
                        mine += 1;
                        changed = true;
                    }
                    continue;
                }
                let Some(asked) = view.whom_to_ask() else {
                    continue;
                };
                let owner = names
                    .iter()
                    .position(|name| name == asked)
                    .expect("the copy is one of the names");
                if grants(counts[owner], view.mine, last_granted[owner], now, cycle) {
                    let lease = holder
                        .iter()
                        .rposition(|h| *h == Some(owner))
                        .expect("the copy is one of the names");
                    holder[lease] = Some(me);
                    last_granted[owner] = Some(now);
                    granted_this_round[owner] += 1;
                    changed = true;
                }
            }
            assert!(granted_this_round.iter().all(|granted| *granted <= 1));
            if !changed {
                return (round, false);
            }
        }
        (limit, true)
    }
}
