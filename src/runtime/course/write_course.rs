//! [`WriteCourse`]: one target's course of writes, a pure value: whether a write may
//! go now, and what a write's or a read-back's answer means for the next step. What it
//! must not do: send anything, read a clock or decide capacity.

use std::time::Duration;

use tokio::time::Instant;

use super::outcome::{Next, Outcome, WriteBlocked};
use super::schedules::*;
use crate::aws::{AwsError, MAX_RETRY_AFTER, ProvisionedConfig, RefusalCause};
use crate::policy::Caps;

/// The failures in a row so far, each kind with its own count: a throttle says
/// nothing about whether the request is right, and a conflict only that another
/// operation is under way, so neither may use up the tries of the other kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Attempts {
    throttles: u32,
    conflicts: u32,
    failures: u32,
}

/// A value Lambda refused, with the caps it was refused under.
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    value: u32,
    caps: Caps,
    until: Instant,
}

/// An allocation in progress, while it is followed: one the course's write started,
/// or one a scan found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Following {
    /// The write's activity in the journal; `None` for an allocation found by a scan.
    pub activity: Option<u64>,
    /// When Lambda accepted the write (or the scan found it): the time to READY
    /// counts from here.
    pub sent: Instant,
    read_backs: u32,
}

/// A followed allocation that settled.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// The write's activity; `None` for an allocation a scan found.
    pub activity: Option<u64>,
    pub outcome: Outcome,
    /// For an allocation that FAILED: when it is written again.
    pub retry_at: Option<Instant>,
}

/// One target's write course. Created empty; a success ends every failure streak.
#[derive(Debug, Clone, Default)]
pub struct WriteCourse {
    attempts: Attempts,
    not_before: Option<Instant>,
    refused: Option<Refusal>,
    blocked: Option<WriteBlocked>,
    following: Option<Following>,
    /// Allocations that ended `FAILED` in a row; a READY one, or a config seen no
    /// longer `FAILED` (a deploy behind the alias, a fix by someone else), ends it.
    failed_allocations: u32,
}

impl WriteCourse {
    /// Whether writing `to` under `caps` may go now.
    pub fn may_write(&self, to: u32, caps: &Caps, now: Instant) -> bool {
        let refused = self.refused.as_ref().is_some_and(|refusal| {
            refusal.value == to && refusal.caps == *caps && now < refusal.until
        });
        !refused && self.not_before.is_none_or(|at| now >= at)
    }

    /// The decision needs no write (it equals what is requested): nothing is blocked.
    pub fn nothing_to_write(&mut self) {
        self.blocked = None;
    }

    pub fn blocked(&self) -> Option<WriteBlocked> {
        self.blocked
    }

    /// The allocation being followed, if any.
    pub fn following(&self) -> Option<Following> {
        self.following
    }

    /// A refusal or a backoff was about a state that someone else has changed: they
    /// are forgotten (an allocation still followed stays followed).
    pub fn forget_failures(&mut self) {
        *self = WriteCourse {
            following: self.following,
            ..WriteCourse::default()
        };
    }

    /// The result of writing `to` under `caps`, answered at `now` (the write is
    /// activity `activity`). Returns the write's outcome so far and what comes next.
    pub fn after_write(
        &mut self,
        result: Result<Option<&ProvisionedConfig>, &AwsError>,
        (to, caps): (u32, Caps),
        activity: u64,
        (backoff, read_backs): (&Backoff, &ReadBacks),
        now: Instant,
        jitter: f64,
    ) -> (Outcome, Next) {
        match result {
            Ok(None) => {
                *self = WriteCourse::default();
                (Outcome::Deleted, Next::Done)
            }
            Ok(Some(config)) => {
                // Lambda accepting a write says nothing of whether it will allocate.
                *self = WriteCourse {
                    failed_allocations: self.failed_allocations,
                    ..WriteCourse::default()
                };
                match Outcome::of_config(Some(config), Duration::ZERO) {
                    Some(settled) => (settled, Next::Done),
                    None => {
                        self.following = Some(Following {
                            activity: Some(activity),
                            sent: now,
                            read_backs: 0,
                        });
                        (
                            Outcome::InProgress,
                            Next::ReadBackAt(now + read_backs.wait(0)),
                        )
                    }
                }
            }
            Err(error) => (
                Outcome::of_error(error),
                self.after_failure(error, to, caps, backoff, now, jitter),
            ),
        }
    }

    fn after_failure(
        &mut self,
        error: &AwsError,
        to: u32,
        caps: Caps,
        backoff: &Backoff,
        now: Instant,
        jitter: f64,
    ) -> Next {
        let attempts = &mut self.attempts;
        let wait = match error {
            AwsError::Throttled { retry_after, .. } => {
                attempts.throttles += 1;
                if attempts.throttles >= MAX_THROTTLED_ATTEMPTS {
                    return self.back_off(backoff, now);
                }
                retry_after.map_or_else(
                    || backoff.delay(attempts.throttles - 1, jitter),
                    |wait| wait.min(MAX_RETRY_AFTER),
                )
            }
            AwsError::Conflict { .. } => {
                attempts.conflicts += 1;
                if attempts.conflicts >= MAX_CONFLICT_WAITS {
                    return self.back_off(backoff, now);
                }
                return Next::ScanThenDecide;
            }
            AwsError::InvalidParameter { message } => {
                let until = now + REFUSAL_MEMORY;
                self.refused = Some(Refusal {
                    value: to,
                    caps,
                    until,
                });
                self.blocked = Some(WriteBlocked::Refused(RefusalCause::of(message)));
                return Next::Refused { until };
            }
            _ => {
                attempts.failures += 1;
                if attempts.failures >= MAX_TRANSIENT_ATTEMPTS {
                    return self.back_off(backoff, now);
                }
                backoff.delay(attempts.failures - 1, jitter)
            }
        };
        self.not_before = Some(now + wait);
        Next::RetryAt(now + wait)
    }

    /// A kind of failure persisted: keep trying at the slowest pace, never give up
    /// for good; the write after the cap starts with fresh counts.
    fn back_off(&mut self, backoff: &Backoff, now: Instant) -> Next {
        let until = now + backoff.cap;
        self.attempts = Attempts::default();
        self.not_before = Some(until);
        self.blocked = Some(WriteBlocked::Failing);
        Next::BackedOff { until }
    }

    /// Follows an allocation found in progress (`activity`: `None`) unless one is
    /// followed already.
    pub fn follow(&mut self, activity: Option<u64>, now: Instant) {
        self.following.get_or_insert(Following {
            activity,
            sent: now,
            read_backs: 0,
        });
    }

    /// What a config read at `now` says of the followed allocation, once it settled
    /// (then it is no longer followed). One that FAILED is written again after
    /// [`failed_retry_wait`]; one that is READY ends the streak of failures.
    pub fn settled(
        &mut self,
        config: Option<&ProvisionedConfig>,
        now: Instant,
        jitter: f64,
    ) -> Option<Settled> {
        let following = self.following?;
        let outcome = Outcome::of_config(config, now.duration_since(following.sent))?;
        self.following = None;
        let retry_at = match outcome {
            Outcome::Failed { .. } => {
                self.failed_allocations += 1;
                let at = now + failed_retry_wait(self.failed_allocations, jitter);
                self.not_before = Some(at);
                Some(at)
            }
            _ => {
                self.failed_allocations = 0;
                None
            }
        };
        Some(Settled {
            activity: following.activity,
            outcome,
            retry_at,
        })
    }

    /// The config was seen not `FAILED`: whatever failed before is over.
    pub fn not_failed(&mut self) {
        self.failed_allocations = 0;
    }

    /// Whether the last allocation FAILED and none has been READY since: true through
    /// the retries too, so that an alert on it sees a failure that lasts.
    pub fn allocation_failing(&self) -> bool {
        self.failed_allocations > 0
    }

    /// When a `FAILED` config is written again, while one is waiting to be.
    pub fn failed_retry_at(&self) -> Option<Instant> {
        self.not_before.filter(|_| self.failed_allocations > 0)
    }

    /// A read-back of the followed allocation: how it settled, if it did, and what
    /// comes next. A failed read or an allocation still in progress is read again, up
    /// to the read-backs' limit.
    pub fn after_read_back(
        &mut self,
        read: Result<Option<&ProvisionedConfig>, &AwsError>,
        read_backs: &ReadBacks,
        now: Instant,
        jitter: f64,
    ) -> (Option<Settled>, Next) {
        if self.following.is_none() {
            return (None, Next::Done);
        }
        if let Ok(config) = read
            && let Some(settled) = self.settled(config, now, jitter)
        {
            let next = settled.retry_at.map_or(Next::Done, Next::RetryAt);
            return (Some(settled), next);
        }
        let following = self.following.as_mut().expect("followed, checked above");
        following.read_backs += 1;
        if following.read_backs >= read_backs.attempts {
            // The drift scan follows it from here; its outcome stays IN_PROGRESS.
            self.following = None;
            return (None, Next::Done);
        }
        (
            None,
            Next::ReadBackAt(now + read_backs.wait(following.read_backs)),
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::policy::AllocationStatus;

    fn throttled(retry_after: Option<u64>) -> AwsError {
        AwsError::Throttled {
            retry_after: retry_after.map(Duration::from_secs),
            reason: None,
            message: String::new(),
        }
    }

    fn server() -> AwsError {
        AwsError::Server {
            code: "ServiceException".into(),
            message: String::new(),
        }
    }

    fn conflict() -> AwsError {
        AwsError::Conflict {
            message: String::new(),
        }
    }

    fn invalid() -> AwsError {
        AwsError::InvalidParameter {
            message: "no".into(),
        }
    }

    fn config(status: AllocationStatus) -> ProvisionedConfig {
        ProvisionedConfig {
            requested: 5,
            allocated: 0,
            status,
            ..ProvisionedConfig::default()
        }
    }

    /// Lambda accepts a write of 5 (activity 1) at `now`: its allocation is followed.
    fn accept(course: &mut WriteCourse, read_backs: &ReadBacks, now: Instant) {
        let in_progress = config(AllocationStatus::InProgress);
        let (outcome, _) = course.after_write(
            Ok(Some(&in_progress)),
            (5, Caps::default()),
            1,
            (&Backoff::default(), read_backs),
            now,
            0.5,
        );
        assert_eq!(outcome, Outcome::InProgress);
    }

    /// Writes `error` (or success) for value 5 under no caps.
    fn fail(course: &mut WriteCourse, error: &AwsError, now: Instant) -> (Outcome, Next) {
        course.after_write(
            Err(error),
            (5, Caps::default()),
            1,
            (&Backoff::default(), &ReadBacks::default()),
            now,
            0.5,
        )
    }

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let now = Instant::now();
        let mut course = WriteCourse::default();
        assert_eq!(
            fail(&mut course, &throttled(Some(2)), now),
            (
                Outcome::Throttled,
                Next::RetryAt(now + Duration::from_secs(2))
            )
        );
        assert!(!course.may_write(5, &Caps::default(), now + Duration::from_secs(1)));
        assert_eq!(
            fail(&mut course, &throttled(Some(86_400)), now).1,
            Next::RetryAt(now + MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn each_error_kind_has_its_rule() {
        let now = Instant::now();
        assert_eq!(
            fail(&mut WriteCourse::default(), &conflict(), now),
            (Outcome::Conflict, Next::ScanThenDecide)
        );
        let mut course = WriteCourse::default();
        assert_eq!(
            fail(&mut course, &invalid(), now),
            (
                Outcome::Refused {
                    message: "no".into()
                },
                Next::Refused {
                    until: now + REFUSAL_MEMORY
                }
            )
        );
        assert_eq!(
            course.blocked(),
            Some(WriteBlocked::Refused(RefusalCause::Other))
        );
        assert!(matches!(
            fail(&mut WriteCourse::default(), &server(), now).1,
            Next::RetryAt(_)
        ));
    }

    #[test]
    fn transient_client_errors_are_retried_not_remembered() {
        let now = Instant::now();
        for code in [
            "AccessDeniedException",
            "ExpiredTokenException",
            "UnrecognizedClientException",
            "RequestNotSent",
            "KMSAccessDeniedException",
        ] {
            let error = AwsError::Client {
                code: code.into(),
                message: String::new(),
            };
            let mut course = WriteCourse::default();
            assert!(
                matches!(fail(&mut course, &error, now).1, Next::RetryAt(_)),
                "{code}"
            );
            assert_eq!(course.blocked(), None, "{code}");
        }
    }

    #[test]
    fn conflicts_and_throttles_do_not_use_up_the_failure_count() {
        // 409, 409, 429, 500, 500: the two 5xx are the first and second of three tries.
        let now = Instant::now();
        let mut course = WriteCourse::default();
        assert_eq!(fail(&mut course, &conflict(), now).1, Next::ScanThenDecide);
        assert_eq!(fail(&mut course, &conflict(), now).1, Next::ScanThenDecide);
        assert!(matches!(
            fail(&mut course, &throttled(None), now).1,
            Next::RetryAt(_)
        ));
        assert!(matches!(
            fail(&mut course, &server(), now).1,
            Next::RetryAt(_)
        ));
        assert!(matches!(
            fail(&mut course, &server(), now).1,
            Next::RetryAt(_)
        ));
        assert_eq!(course.blocked(), None);
        let cap = Backoff::default().cap;
        assert_eq!(
            fail(&mut course, &server(), now).1,
            Next::BackedOff { until: now + cap }
        );
        assert_eq!(course.blocked(), Some(WriteBlocked::Failing));
        assert!(!course.may_write(5, &Caps::default(), now + cap / 2));
        assert!(course.may_write(5, &Caps::default(), now + cap));
    }

    #[test]
    fn backoff_grows_is_capped_and_really_waits() {
        let backoff = Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(4),
        };
        let ceilings: Vec<u64> = (0..6)
            .map(|attempt| backoff.ceiling(attempt).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, vec![500, 1_000, 2_000, 4_000, 4_000, 4_000]);
        let floors: Vec<u64> = (0..6)
            .map(|attempt| backoff.delay(attempt, 0.0).as_millis() as u64)
            .collect();
        assert_eq!(floors, vec![250, 500, 1_000, 2_000, 2_000, 2_000]);
        assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(3));
    }

    #[test]
    fn a_refusal_is_forgotten_after_its_memory_or_when_the_value_or_caps_change() {
        let now = Instant::now();
        let mut course = WriteCourse::default();
        fail(&mut course, &invalid(), now);
        let caps = Caps::default();
        assert!(!course.may_write(5, &caps, now + Duration::from_secs(60)));
        assert!(course.may_write(6, &caps, now));
        let other_caps = Caps {
            reserved_available: Some(3),
            ..caps
        };
        assert!(course.may_write(5, &other_caps, now));
        assert!(course.may_write(5, &caps, now + REFUSAL_MEMORY));
        course.forget_failures();
        assert!(course.may_write(5, &caps, now) && course.blocked().is_none());
    }

    #[test]
    fn an_accepted_put_is_followed_until_it_settles() {
        let now = Instant::now();
        let read_backs = ReadBacks::default();
        let mut course = WriteCourse::default();
        fail(&mut course, &server(), now);
        let in_progress = config(AllocationStatus::InProgress);
        let (outcome, next) = course.after_write(
            Ok(Some(&in_progress)),
            (5, Caps::default()),
            7,
            (&Backoff::default(), &read_backs),
            now,
            0.5,
        );
        assert_eq!(outcome, Outcome::InProgress);
        assert_eq!(next, Next::ReadBackAt(now + Duration::from_secs(2)));
        assert!(course.may_write(5, &Caps::default(), now), "success resets");
        // 2 s, then 4, 8, 16, 30, 30, ...
        let mut at = now;
        let mut waits = Vec::new();
        for _ in 0..6 {
            at += Duration::from_secs(1);
            let (settled, next) =
                course.after_read_back(Ok(Some(&in_progress)), &read_backs, at, 0.5);
            assert_eq!(settled, None);
            let Next::ReadBackAt(when) = next else {
                panic!("followed: {next:?}");
            };
            waits.push((when - at).as_secs());
        }
        assert_eq!(waits, vec![4, 8, 16, 30, 30, 30]);
        let ready = config(AllocationStatus::Ready);
        let (settled, next) = course.after_read_back(Ok(Some(&ready)), &read_backs, at, 0.5);
        assert_eq!(
            settled,
            Some(Settled {
                activity: Some(7),
                outcome: Outcome::Ready {
                    after: Duration::from_secs(6)
                },
                retry_at: None,
            })
        );
        assert_eq!((next, course.following()), (Next::Done, None));
    }

    #[test]
    fn following_stops_after_the_last_read_back_and_failed_reads_count() {
        let now = Instant::now();
        let read_backs = ReadBacks {
            attempts: 3,
            ..ReadBacks::default()
        };
        let mut course = WriteCourse::default();
        accept(&mut course, &read_backs, now);
        let error = server();
        assert!(matches!(
            course.after_read_back(Err(&error), &read_backs, now, 0.5).1,
            Next::ReadBackAt(_)
        ));
        assert!(matches!(
            course.after_read_back(Err(&error), &read_backs, now, 0.5).1,
            Next::ReadBackAt(_)
        ));
        assert_eq!(
            course.after_read_back(Err(&error), &read_backs, now, 0.5),
            (None, Next::Done)
        );
    }

    #[test]
    fn a_failed_allocation_is_written_again_after_a_growing_wait_and_a_ready_one_ends_it() {
        let mut now = Instant::now();
        let read_backs = ReadBacks::default();
        let mut course = WriteCourse::default();
        let mut waits = Vec::new();
        for _ in 0..6 {
            accept(&mut course, &read_backs, now);
            let failed = ProvisionedConfig {
                status_reason: Some("FUNCTION_ERROR_INIT_FAILURE".into()),
                ..config(AllocationStatus::Failed)
            };
            let (settled, next) = course.after_read_back(Ok(Some(&failed)), &read_backs, now, 0.0);
            let settled = settled.expect("settled");
            assert_eq!(
                settled.outcome.to_string(),
                "FAILED: FUNCTION_ERROR_INIT_FAILURE"
            );
            let Next::RetryAt(at) = next else {
                panic!("written again: {next:?}");
            };
            assert_eq!(course.failed_retry_at(), Some(at));
            assert!(!course.may_write(5, &Caps::default(), at - Duration::from_secs(1)));
            assert!(course.may_write(5, &Caps::default(), at));
            waits.push((at - now).as_secs());
            now = at;
        }
        assert_eq!(waits, vec![60, 120, 240, 480, 900, 900]);
        accept(&mut course, &read_backs, now);
        let ready = config(AllocationStatus::Ready);
        let (_, next) = course.after_read_back(Ok(Some(&ready)), &read_backs, now, 0.0);
        assert_eq!((next, course.failed_retry_at()), (Next::Done, None));
    }

    #[test]
    fn failed_retries_are_a_minute_apart_at_least_and_never_past_the_cap_and_a_quarter() {
        for failures in 1..40 {
            for jitter in [0.0, 0.5, 0.999] {
                let wait = failed_retry_wait(failures, jitter);
                assert!(wait >= FAILED_RETRY_FIRST, "{failures} {jitter}");
                assert!(
                    wait <= FAILED_RETRY_CAP.mul_f64(1.25),
                    "{failures} {jitter}"
                );
            }
        }
    }

    #[test]
    fn outcomes_read_the_same_everywhere() {
        let failed = config(AllocationStatus::Failed);
        let texts: Vec<String> = [
            Outcome::Sent,
            Outcome::InProgress,
            Outcome::of_config(
                Some(&config(AllocationStatus::Ready)),
                Duration::from_secs(62),
            )
            .expect("settled"),
            Outcome::of_config(None, Duration::ZERO).expect("settled"),
            Outcome::of_config(Some(&failed), Duration::ZERO).expect("settled"),
            Outcome::of_error(&throttled(None)),
            Outcome::of_error(&invalid()),
            Outcome::of_error(&server()),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            texts,
            vec![
                "sent",
                "IN_PROGRESS",
                "READY after 62 s",
                "deleted",
                "FAILED: no reason given",
                "throttled",
                "refused: no",
                "server error (ServiceException): ",
            ]
        );
        let long = AwsError::Client {
            code: "X".into(),
            message: "y".repeat(1_000),
        };
        assert!(Outcome::of_error(&long).to_string().chars().count() <= 320);
    }

    proptest! {
        #[test]
        fn equal_jitter_stays_between_half_the_ceiling_and_the_ceiling(attempt in 0u32..64, jitter in 0.0f64..1.0) {
            let backoff = Backoff::default();
            prop_assert!(backoff.delay(attempt, jitter) <= backoff.ceiling(attempt));
            prop_assert!(backoff.delay(attempt, jitter) >= backoff.floor(attempt));
            prop_assert!(backoff.ceiling(attempt) <= backoff.cap);
        }

        /// Whatever fails, in whatever order, the course never stops for good: the
        /// write may always go again by the backoff's cap or the refusal's memory.
        #[test]
        fn no_sequence_of_failures_blocks_a_write_for_ever(kinds in prop::collection::vec(0u8..5, 1..40)) {
            let now = Instant::now();
            let mut course = WriteCourse::default();
            for kind in kinds {
                let error = match kind {
                    0 => throttled(Some(10_000)),
                    1 => throttled(None),
                    2 => conflict(),
                    3 => invalid(),
                    _ => server(),
                };
                fail(&mut course, &error, now);
            }
            let latest = now + REFUSAL_MEMORY.max(MAX_RETRY_AFTER).max(Backoff::default().cap);
            prop_assert!(course.may_write(5, &Caps::default(), latest));
        }
    }
}
