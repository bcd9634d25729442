//! Leader election among copies of the daemon: the lease record, the backend trait
//! that stores it ([`LeaderElection`]), and the rules a copy follows to take, keep and
//! give up the lease.
//!
//! The rules are sans-IO: [`Watch`] and [`Tenure`] get the monotonic time passed in and
//! never read a clock, so every timing argument below is tested without a backend.
//! They never trust another host's clock: the only time compared is this copy's own.
//!
//! Safety, in one line: a leader writes only while its last successful renew was
//! *sent* less than `lease / 2` ago, and a contender takes over only after it has
//! watched one version stay unchanged for a full `lease`. A renew is read by the
//! contender no earlier than it was sent, so the old leader stops writing at least
//! `lease / 2` before the new one starts: that margin covers a write already on the
//! wire and clocks that run at slightly different rates.
//!
//! This module must not know about Lambda, the daemon loop or a particular backend.

pub mod balance;
pub mod elect;
pub mod fence;
pub mod spread;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

pub use fence::Fence;

/// The lease item as a backend stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The holder; `None` after a release: anyone may take it at once.
    pub owner: Option<String>,
    /// Random, new on every write of the record: what contenders watch.
    pub version: String,
    /// The fencing token: one more on every change of holder, never reused.
    pub epoch: u64,
    /// A copy's request for this lease, when leases are spread over copies
    /// ([`spread`]); cleared by the holder's next renew.
    pub asked: Option<Ask>,
}

/// A copy with few leases asks the holder of one for it; the holder decides
/// ([`balance::grants`]). Asking never changes the version, so it never looks like a
/// renew and never takes anything by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub by: String,
    /// How many leases the asking copy held when it asked.
    pub holding: usize,
}

/// The answer to a renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// The lease is no longer this copy's at the version it knew.
    Lost,
    /// Renewed; with the request that was waiting on it, if any.
    Kept { asked: Option<Ask> },
}

/// What a conditional write of the lease expects to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// No lease item yet.
    Absent,
    /// The item at this version.
    Version(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The backend could not be asked or did not answer; the lease may be anyone's.
    #[error("the lease store is unreachable: {0}")]
    Unreachable(String),
    /// The backend answered with a refusal that retrying will not fix (no table,
    /// no permission).
    #[error("the lease store refused: {0}")]
    Refused(String),
}

/// A store of one lease record with conditional writes. DynamoDB implements it
/// ([`crate::aws::dynamodb`]); a Kubernetes `Lease` (resourceVersion as the
/// condition, leaseTransitions as the epoch) would fit the same four calls.
///
/// A conditional write answers `Ok(false)` when its condition did not hold: another
/// copy changed the lease first.
pub trait LeaderElection: Send + Sync + 'static {
    /// Creates the store if the config asks for it (idempotent).
    fn prepare(&self) -> impl Future<Output = Result<(), LeaseError>> + Send;
    /// The record, read consistently; `None` when there is none.
    fn read(&self) -> impl Future<Output = Result<Option<LeaseRecord>, LeaseError>> + Send;
    /// Writes `record` (owned by this copy) if the item is as `expected`.
    fn acquire(
        &self,
        record: &LeaseRecord,
        expected: &Expected,
    ) -> impl Future<Output = Result<bool, LeaseError>> + Send;
    /// Sets a new version if the item is still `owner`'s at `current`, and clears a
    /// request waiting on it, which the answer carries.
    fn renew(
        &self,
        owner: &str,
        current: &str,
        next: &str,
    ) -> impl Future<Output = Result<Renewal, LeaseError>> + Send;
    /// Gives the lease up if it is still `owner`'s at `current`: the owner is removed
    /// and the epoch kept, so the next holder's epoch is still one more.
    fn release(
        &self,
        owner: &str,
        current: &str,
        next: &str,
    ) -> impl Future<Output = Result<bool, LeaseError>> + Send;
    /// Leaves `ask` on the lease if it is still `owner`'s; the version is kept.
    fn ask(&self, owner: &str, ask: &Ask) -> impl Future<Output = Result<bool, LeaseError>> + Send;
    /// The same store, for the lease called `name`: one per shard when leases are
    /// spread.
    fn named(&self, name: &str) -> Self
    where
        Self: Sized;
}

/// A fresh random version for a write of the record.
pub fn new_version() -> String {
    uuid::Uuid::from_u64_pair(fastrand::u64(..), fastrand::u64(..)).to_string()
}

/// What a standby should do after reading the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Take the lease with this epoch, conditioned on `expected`.
    Take { expected: Expected, epoch: u64 },
    /// Someone holds it; read again no later than `until`, when it may have expired.
    Wait { until: Instant },
}

/// A standby's memory of the lease: the version it saw and since when, on its own
/// monotonic clock.
#[derive(Debug, Default)]
pub struct Watch {
    seen: Option<(String, Instant)>,
}

impl Watch {
    /// Judges one read made at `now`. A version must stay unchanged for `lease` on
    /// this copy's clock before it counts as abandoned; another host's timestamps are
    /// never read.
    pub fn observe(
        &mut self,
        found: Option<&LeaseRecord>,
        now: Instant,
        lease: Duration,
    ) -> Verdict {
        let Some(record) = found else {
            self.seen = None;
            return Verdict::Take {
                expected: Expected::Absent,
                epoch: 1,
            };
        };
        let take = Verdict::Take {
            expected: Expected::Version(record.version.clone()),
            epoch: record.epoch + 1,
        };
        if record.owner.is_none() {
            self.seen = None;
            return take;
        }
        let since = match &self.seen {
            Some((version, since)) if *version == record.version => *since,
            _ => {
                self.seen = Some((record.version.clone(), now));
                now
            }
        };
        // Still watched after the verdict: a copy that does not take it at once (the
        // spread elector, over its share) finds it abandoned at the next read too.
        if now.duration_since(since) >= lease {
            take
        } else {
            Verdict::Wait {
                until: since + lease,
            }
        }
    }

    /// Forgets what was seen (after this copy's own attempt changed the record).
    pub fn forget(&mut self) {
        self.seen = None;
    }

    /// Since when the version now watched has stood unchanged.
    pub fn seen_since(&self) -> Option<Instant> {
        self.seen.as_ref().map(|(_, since)| *since)
    }
}

/// A leader's hold on the lease.
#[derive(Debug, Clone)]
pub struct Tenure {
    pub epoch: u64,
    pub version: String,
    /// When the last successful write of the record was *sent*: a later send time
    /// would overstate how fresh the lease is.
    pub renewed: Instant,
}

/// What a leader does after a renew failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Still inside the write window: try again at this time.
    RetryAt(Instant),
    /// Past the window: stop acting now.
    StepDown,
}

impl Tenure {
    /// Whether a write may start at `now`.
    pub fn may_write(&self, now: Instant, window: Duration) -> bool {
        now.saturating_duration_since(self.renewed) < window
    }

    /// When the next renew is due.
    pub fn renew_due(&self, renew_every: Duration) -> Instant {
        self.renewed + renew_every
    }

    /// A renew that could not be sent or was not answered: retry soon while the
    /// window is open, step down once it has closed.
    pub fn after_failure(&self, now: Instant, window: Duration, retry: Duration) -> AfterFailure {
        if self.may_write(now, window) {
            AfterFailure::RetryAt((now + retry).min(self.renewed + window))
        } else {
            AfterFailure::StepDown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);

    fn held(version: &str, epoch: u64) -> LeaseRecord {
        LeaseRecord {
            owner: Some("other".into()),
            version: version.into(),
            epoch,
            asked: None,
        }
    }

    #[test]
    fn an_absent_lease_is_taken_at_epoch_one() {
        let mut watch = Watch::default();
        assert_eq!(
            watch.observe(None, Instant::now(), LEASE),
            Verdict::Take {
                expected: Expected::Absent,
                epoch: 1
            }
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once_with_the_next_epoch() {
        let mut watch = Watch::default();
        let released = LeaseRecord {
            owner: None,
            version: "v".into(),
            epoch: 7,
            asked: None,
        };
        assert_eq!(
            watch.observe(Some(&released), Instant::now(), LEASE),
            Verdict::Take {
                expected: Expected::Version("v".into()),
                epoch: 8
            }
        );
    }

    #[test]
    fn a_held_lease_is_taken_only_after_one_version_stood_a_full_lease_on_this_clock() {
        let start = Instant::now();
        let mut watch = Watch::default();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        assert_eq!(
            watch.observe(Some(&held("a", 3)), at(0), LEASE),
            Verdict::Wait { until: at(15) }
        );
        // Renewed: the count starts again from when the new version was first seen.
        assert_eq!(
            watch.observe(Some(&held("b", 3)), at(5), LEASE),
            Verdict::Wait { until: at(20) }
        );
        assert_eq!(
            watch.observe(Some(&held("b", 3)), at(19), LEASE),
            Verdict::Wait { until: at(20) }
        );
        assert_eq!(
            watch.observe(Some(&held("b", 3)), at(20), LEASE),
            Verdict::Take {
                expected: Expected::Version("b".into()),
                epoch: 4
            }
        );
    }

    #[test]
    fn a_leader_writes_only_within_half_a_lease_of_its_last_renew_send() {
        let start = Instant::now();
        let tenure = Tenure {
            epoch: 1,
            version: "v".into(),
            renewed: start,
        };
        let window = LEASE / 2;
        assert!(tenure.may_write(start, window));
        assert!(tenure.may_write(start + Duration::from_millis(7_499), window));
        assert!(!tenure.may_write(start + window, window));
        assert_eq!(
            tenure.after_failure(
                start + Duration::from_secs(5),
                window,
                Duration::from_secs(1)
            ),
            AfterFailure::RetryAt(start + Duration::from_secs(6))
        );
        assert_eq!(
            tenure.after_failure(
                start + Duration::from_secs(7),
                window,
                Duration::from_secs(1)
            ),
            AfterFailure::RetryAt(start + window)
        );
        assert_eq!(
            tenure.after_failure(start + window, window, Duration::from_secs(1)),
            AfterFailure::StepDown
        );
    }

    /// The safety argument as a check over many timings: whenever a contender takes
    /// over, the old leader's write window closed at least `lease / 2` before.
    #[test]
    fn a_takeover_always_comes_after_the_old_leaders_window_closed() {
        let start = Instant::now();
        for renew_sent_ms in (0..10_000).step_by(370) {
            for read_delay_ms in (0..6_000).step_by(430) {
                for poll_ms in [100u64, 1_000, 5_000] {
                    let renew_sent = start + Duration::from_millis(renew_sent_ms);
                    let tenure = Tenure {
                        epoch: 1,
                        version: "v".into(),
                        renewed: renew_sent,
                    };
                    // The contender first sees the version no earlier than it was sent.
                    let mut now = renew_sent + Duration::from_millis(read_delay_ms);
                    let mut watch = Watch::default();
                    let taken_at = loop {
                        match watch.observe(Some(&held("v", 1)), now, LEASE) {
                            Verdict::Take { .. } => break now,
                            Verdict::Wait { until } => {
                                now = until.min(now + Duration::from_millis(poll_ms));
                            }
                        }
                    };
                    let window_closed = tenure.renewed + LEASE / 2;
                    assert!(taken_at >= window_closed + LEASE / 2);
                }
            }
        }
    }
}
