//! The actuator's rules, as pure values: what to do after a failed write, how long to
//! back off, and how writes and reads share the control-plane rate budget.
//!
//! No clock and no I/O here: times are passed in (an `Instant` value, or offsets from an
//! origin the caller chooses), randomness as a number in [0, 1). `reconcile` (for
//! `run --once`) and the daemon carry these answers out.

use std::time::Duration;

use tokio::time::Instant;

use crate::aws::AwsError;

/// Exponential backoff with "equal jitter": attempt `n` waits a uniformly random time
/// in `[c / 2, c)` where `c = min(cap, base × 2ⁿ)`. The random half spreads retries of
/// many clients apart; the fixed half guarantees that a retry really waits, which
/// full jitter (`[0, c)`) does not: it may retry at once, again and again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry); `jitter` in [0, 1).
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// The longest wait `delay` can return for `attempt`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(attempt.min(30)))
            .min(self.cap)
    }

    /// The shortest wait `delay` can return for `attempt`.
    pub fn floor(&self, attempt: u32) -> Duration {
        self.ceiling(attempt) / 2
    }
}

/// Longest `retryAfterSeconds` honoured as given; a larger value is clamped, so a
/// bogus header cannot park a target for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Writes that fail for a transient reason (5xx, timeout, a transient 4xx such as
/// `AccessDenied` while IAM propagates) are tried this often in all.
pub const MAX_TRANSIENT_ATTEMPTS: u32 = 3;
/// Conflicts (`ResourceConflictException`) waited out per write before giving up.
pub const MAX_CONFLICT_WAITS: u32 = 5;
/// Throttles (`TooManyRequestsException`) waited out per write before giving up.
pub const MAX_THROTTLED_ATTEMPTS: u32 = 8;
/// How long a value Lambda refused as invalid is not sent again, while the config,
/// the caps and the decision stay the same. A refusal can depend on things the
/// daemon cannot see (another qualifier's holding, an account limit), so no refusal
/// is remembered for ever.
pub const REFUSAL_MEMORY: Duration = Duration::from_secs(15 * 60);

/// What to do after a write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Try the same write again after this long.
    After(Duration),
    /// An operation is in progress: wait until the status settles, then decide again.
    WhenSettled,
    /// The request is wrong: do not repeat it for `REFUSAL_MEMORY`, or until the
    /// decision, the caps or the config change.
    Never,
    /// This kind of failure persisted: report, and let the next evaluation try again.
    GiveUp,
}

/// The failures of one write so far, each kind with its own budget: a throttle says
/// nothing about whether the request is right, and a conflict only that another
/// operation is under way, so neither may use up the tries of the other kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    pub throttles: u32,
    pub conflicts: u32,
    pub failures: u32,
}

impl Attempts {
    /// Counts `error` and returns the rule for it.
    pub fn after_failure(&mut self, error: &AwsError, backoff: &Backoff, jitter: f64) -> Retry {
        let retry = after_failure(error, *self, backoff, jitter);
        match error {
            AwsError::Throttled { .. } => self.throttles += 1,
            AwsError::Conflict { .. } => self.conflicts += 1,
            _ => self.failures += 1,
        }
        retry
    }
}

/// The rule for a failed write, given the failures before this one.
pub fn after_failure(
    error: &AwsError,
    attempts: Attempts,
    backoff: &Backoff,
    jitter: f64,
) -> Retry {
    match error {
        AwsError::Throttled { .. } if attempts.throttles + 1 >= MAX_THROTTLED_ATTEMPTS => {
            Retry::GiveUp
        }
        AwsError::Throttled {
            retry_after: Some(wait),
            ..
        } => Retry::After((*wait).min(MAX_RETRY_AFTER)),
        AwsError::Throttled {
            retry_after: None, ..
        } => Retry::After(backoff.delay(attempts.throttles, jitter)),
        AwsError::Conflict { .. } if attempts.conflicts + 1 >= MAX_CONFLICT_WAITS => Retry::GiveUp,
        AwsError::Conflict { .. } => Retry::WhenSettled,
        error if error.is_permanent() => Retry::Never,
        _ if attempts.failures + 1 >= MAX_TRANSIENT_ATTEMPTS => Retry::GiveUp,
        _ => Retry::After(backoff.delay(attempts.failures, jitter)),
    }
}

/// Why a target's decision is not being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteBlocked {
    /// Lambda refused the value as invalid; it is not sent again for a while.
    Refused,
    /// Writes kept failing (throttled, conflicting, 5xx, transient 4xx); they are
    /// retried with capped backoff.
    Failing,
}

impl WriteBlocked {
    pub const ALL: [WriteBlocked; 2] = [WriteBlocked::Refused, WriteBlocked::Failing];

    /// A bounded label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            WriteBlocked::Refused => "refused",
            WriteBlocked::Failing => "failing",
        }
    }
}

/// A value Lambda refused, with what it was refused under.
#[derive(Debug, Clone, PartialEq)]
struct Refusal<K> {
    value: u32,
    context: K,
    until: Instant,
}

/// The write state machine of one target in the daemon: whether a write may go now,
/// and what a write's result means for the next one. Pure: the time comes in as
/// `now`, randomness as `jitter`. `K` is what a refusal depends on besides the value
/// (the caps in force); a refusal is forgotten when it changes.
#[derive(Debug, Clone)]
pub struct WriteState<K> {
    attempts: Attempts,
    not_before: Option<Instant>,
    refused: Option<Refusal<K>>,
    blocked: Option<WriteBlocked>,
}

impl<K> Default for WriteState<K> {
    fn default() -> Self {
        Self {
            attempts: Attempts::default(),
            not_before: None,
            refused: None,
            blocked: None,
        }
    }
}

impl<K: PartialEq> WriteState<K> {
    /// Whether writing `to` under `context` may go now.
    pub fn may_write(&self, to: u32, context: &K, now: Instant) -> bool {
        let refused = self.refused.as_ref().is_some_and(|refusal| {
            refusal.value == to && refusal.context == *context && now < refusal.until
        });
        !refused && self.not_before.is_none_or(|at| now >= at)
    }

    /// Records a write's result. The runtime carries out the returned rule: wait and
    /// evaluate again, watch the allocation, or wait for the next evaluation.
    pub fn on_result(
        &mut self,
        result: Result<(), &AwsError>,
        to: u32,
        context: K,
        backoff: &Backoff,
        now: Instant,
        jitter: f64,
    ) -> Option<Retry> {
        let error = match result {
            Ok(()) => {
                *self = Self::default();
                return None;
            }
            Err(error) => error,
        };
        let retry = self.attempts.after_failure(error, backoff, jitter);
        match &retry {
            Retry::After(wait) => self.not_before = Some(now + *wait),
            Retry::WhenSettled => {}
            Retry::Never => {
                self.refused = Some(Refusal {
                    value: to,
                    context,
                    until: now + REFUSAL_MEMORY,
                });
                self.blocked = Some(WriteBlocked::Refused);
            }
            Retry::GiveUp => {
                // Keep trying at the slowest pace, never for good: the next evaluation
                // after the cap sends the write again with a fresh budget.
                self.attempts = Attempts::default();
                self.not_before = Some(now + backoff.cap);
                self.blocked = Some(WriteBlocked::Failing);
            }
        }
        Some(retry)
    }

    /// The decision needs no write (it equals what is requested): nothing is blocked.
    pub fn nothing_to_write(&mut self) {
        self.blocked = None;
    }

    pub fn blocked(&self) -> Option<WriteBlocked> {
        self.blocked
    }
}

/// The longest wait a token bucket hands out; a bucket configured absurdly slowly
/// must not overflow a `Duration` (validation keeps rates far from this anyway).
const MAX_BUCKET_WAIT: Duration = Duration::from_secs(3600);

/// A token bucket that hands out reservations: a burst of callers each learn how long
/// to wait, so 1,000 simultaneous writes are spread out at `rate` per second instead of
/// being sent at once and throttled.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    /// Seconds since the caller's origin at the last update.
    updated: f64,
}

impl TokenBucket {
    /// `rate` tokens a second, at most `burst` saved up; starts full.
    pub fn new(rate: f64, burst: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        let burst = if burst.is_finite() {
            burst.max(1.0)
        } else {
            1.0
        };
        Self {
            rate,
            burst,
            tokens: burst,
            updated: 0.0,
        }
    }

    /// Takes one token at `now` (seconds since the origin); returns how long to wait
    /// before using it, at most `MAX_BUCKET_WAIT`. Never panics.
    pub fn reserve(&mut self, now: f64) -> Duration {
        if now > self.updated {
            self.tokens = (self.tokens + (now - self.updated) * self.rate).min(self.burst);
            self.updated = now;
        }
        // Do not let a long queue of reservations run up an ever-growing debt.
        let debt_limit = -(MAX_BUCKET_WAIT.as_secs_f64() * self.rate);
        self.tokens = (self.tokens - 1.0).max(debt_limit);
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-self.tokens / self.rate)
                .unwrap_or(MAX_BUCKET_WAIT)
                .min(MAX_BUCKET_WAIT)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn throttled(retry_after: Option<u64>) -> AwsError {
        AwsError::Throttled {
            retry_after: retry_after.map(Duration::from_secs),
            reason: None,
            message: String::new(),
        }
    }

    fn none() -> Attempts {
        Attempts::default()
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

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let backoff = Backoff::default();
        assert_eq!(
            after_failure(&throttled(Some(2)), none(), &backoff, 0.5),
            Retry::After(Duration::from_secs(2))
        );
        assert_eq!(
            after_failure(&throttled(Some(86_400)), none(), &backoff, 0.5),
            Retry::After(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn each_error_kind_has_its_rule() {
        let backoff = Backoff::default();
        assert_eq!(
            after_failure(&conflict(), none(), &backoff, 0.5),
            Retry::WhenSettled
        );
        let invalid = AwsError::InvalidParameter {
            message: String::new(),
        };
        assert_eq!(after_failure(&invalid, none(), &backoff, 0.5), Retry::Never);
        assert!(matches!(
            after_failure(&server(), none(), &backoff, 0.5),
            Retry::After(_)
        ));
        let spent = Attempts {
            failures: MAX_TRANSIENT_ATTEMPTS - 1,
            ..none()
        };
        assert_eq!(
            after_failure(&server(), spent, &backoff, 0.5),
            Retry::GiveUp
        );
    }

    #[test]
    fn transient_client_errors_are_retried_not_remembered() {
        let backoff = Backoff::default();
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
            assert!(
                matches!(
                    after_failure(&error, none(), &backoff, 0.5),
                    Retry::After(_)
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn conflicts_and_throttles_do_not_use_up_the_failure_budget() {
        // 409, 409, 500, 500: the two 5xx are the first and second of three tries.
        let backoff = Backoff::default();
        let mut attempts = Attempts::default();
        assert_eq!(
            attempts.after_failure(&conflict(), &backoff, 0.5),
            Retry::WhenSettled
        );
        assert_eq!(
            attempts.after_failure(&conflict(), &backoff, 0.5),
            Retry::WhenSettled
        );
        assert!(matches!(
            attempts.after_failure(&throttled(None), &backoff, 0.5),
            Retry::After(_)
        ));
        assert!(matches!(
            attempts.after_failure(&server(), &backoff, 0.5),
            Retry::After(_)
        ));
        assert!(matches!(
            attempts.after_failure(&server(), &backoff, 0.5),
            Retry::After(_)
        ));
        assert_eq!(
            attempts.after_failure(&server(), &backoff, 0.5),
            Retry::GiveUp
        );
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
    fn a_refusal_is_forgotten_after_its_memory_or_when_anything_changes() {
        let backoff = Backoff::default();
        let now = Instant::now();
        let invalid = AwsError::InvalidParameter {
            message: String::new(),
        };
        let mut state = WriteState::<u32>::default();
        assert_eq!(
            state.on_result(Err(&invalid), 50, 7, &backoff, now, 0.5),
            Some(Retry::Never)
        );
        assert_eq!(state.blocked(), Some(WriteBlocked::Refused));
        assert!(!state.may_write(50, &7, now + Duration::from_secs(60)));
        // Another value, other caps, or the memory's end: allowed again.
        assert!(state.may_write(51, &7, now));
        assert!(state.may_write(50, &8, now));
        assert!(state.may_write(50, &7, now + REFUSAL_MEMORY));
        // Success clears everything.
        assert_eq!(state.on_result(Ok(()), 50, 7, &backoff, now, 0.5), None);
        assert_eq!(state.blocked(), None);
    }

    #[test]
    fn persistent_failures_block_visibly_and_are_retried_at_the_cap() {
        let backoff = Backoff::default();
        let now = Instant::now();
        let mut state = WriteState::<()>::default();
        for _ in 0..MAX_TRANSIENT_ATTEMPTS - 1 {
            assert!(matches!(
                state.on_result(Err(&server()), 5, (), &backoff, now, 0.5),
                Some(Retry::After(_))
            ));
        }
        assert_eq!(state.blocked(), None);
        assert_eq!(
            state.on_result(Err(&server()), 5, (), &backoff, now, 0.5),
            Some(Retry::GiveUp)
        );
        assert_eq!(state.blocked(), Some(WriteBlocked::Failing));
        assert!(!state.may_write(5, &(), now + backoff.cap / 2));
        assert!(state.may_write(5, &(), now + backoff.cap));
    }

    #[test]
    fn an_absurd_rate_never_panics_a_bucket() {
        let mut bucket = TokenBucket::new(1e-30, 1.0);
        assert_eq!(bucket.reserve(0.0), Duration::ZERO);
        assert_eq!(bucket.reserve(0.0), MAX_BUCKET_WAIT);
        let mut bucket = TokenBucket::new(f64::NAN, f64::INFINITY);
        assert_eq!(bucket.reserve(f64::MAX), Duration::ZERO);
    }

    #[test]
    fn a_burst_is_spread_at_the_rate() {
        // 5 a second with a burst of 5: the first 5 go at once, the 1,000th waits 199 s.
        let mut bucket = TokenBucket::new(5.0, 5.0);
        let waits: Vec<Duration> = (0..1_000).map(|_| bucket.reserve(0.0)).collect();
        assert_eq!(waits[4], Duration::ZERO);
        assert_eq!(waits[5], Duration::from_millis(200));
        assert!((waits[999].as_secs_f64() - 199.0).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn equal_jitter_stays_between_floor_and_ceiling(attempt in 0u32..64, jitter in 0.0f64..1.0) {
            let backoff = Backoff::default();
            prop_assert!(backoff.delay(attempt, jitter) <= backoff.ceiling(attempt));
            prop_assert!(backoff.delay(attempt, jitter) >= backoff.floor(attempt));
            prop_assert!(backoff.ceiling(attempt) <= backoff.cap);
        }

        #[test]
        fn a_bucket_never_hands_out_more_than_rate_times_time_plus_burst(
            rate in 0.5f64..50.0, burst in 1.0f64..20.0, calls in 1usize..500,
        ) {
            let mut bucket = TokenBucket::new(rate, burst);
            let last_wait = (0..calls).map(|_| bucket.reserve(0.0)).last().expect("at least one call");
            // The n-th call may go at (n - burst) / rate seconds at the earliest.
            let earliest = ((calls as f64 - burst) / rate).max(0.0);
            prop_assert!((last_wait.as_secs_f64() - earliest).abs() < 1e-6);
        }
    }
}
