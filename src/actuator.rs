//! The actuator's rules, as pure values: what to do after a failed write, how long to
//! back off, and how writes and reads share the control-plane rate budget.
//!
//! No clock and no I/O here: times are passed in as offsets from an origin the caller
//! chooses, randomness as a number in [0, 1). The async driver in `reconcile` carries
//! these answers out.

use std::time::Duration;

use crate::aws::AwsError;

/// Exponential backoff with full jitter: attempt `n` waits a uniformly random time in
/// `[0, min(cap, base × 2ⁿ))`, which spreads retries of many clients apart.
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
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.min(30)))
            .min(self.cap);
        ceiling.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// The longest wait `delay` can return for `attempt`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.delay(attempt, 1.0)
    }
}

/// Longest `retryAfterSeconds` honoured as given; a larger value is clamped, so a
/// bogus header cannot park a target for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Writes that fail for a transient reason (5xx, timeout) are tried this often in all.
pub const MAX_TRANSIENT_ATTEMPTS: u32 = 3;

/// What to do after a write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Try the same write again after this long.
    After(Duration),
    /// An operation is in progress: wait until the status settles, then decide again.
    WhenSettled,
    /// The request is wrong: do not repeat it until the decision or the config changes.
    Never,
    /// Transient failures persisted: report, and let the next cycle try again.
    GiveUp,
}

/// The rule for a failed write. `attempt` counts earlier failures of this write.
pub fn after_failure(error: &AwsError, attempt: u32, backoff: &Backoff, jitter: f64) -> Retry {
    match error {
        AwsError::Throttled {
            retry_after: Some(wait),
            ..
        } => Retry::After((*wait).min(MAX_RETRY_AFTER)),
        AwsError::Throttled {
            retry_after: None, ..
        } => Retry::After(backoff.delay(attempt, jitter)),
        AwsError::Conflict { .. } => Retry::WhenSettled,
        AwsError::InvalidParameter { .. } | AwsError::Client { .. } => Retry::Never,
        AwsError::Server { .. }
        | AwsError::Timeout { .. }
        | AwsError::Network { .. }
        | AwsError::Malformed { .. } => {
            if attempt + 1 >= MAX_TRANSIENT_ATTEMPTS {
                Retry::GiveUp
            } else {
                Retry::After(backoff.delay(attempt, jitter))
            }
        }
    }
}

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
        let burst = burst.max(1.0);
        Self {
            rate,
            burst,
            tokens: burst,
            updated: 0.0,
        }
    }

    /// Takes one token at `now` (seconds since the origin); returns how long to wait
    /// before using it.
    pub fn reserve(&mut self, now: f64) -> Duration {
        if now > self.updated {
            self.tokens = (self.tokens + (now - self.updated) * self.rate).min(self.burst);
            self.updated = now;
        }
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
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

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let backoff = Backoff::default();
        assert_eq!(
            after_failure(&throttled(Some(2)), 0, &backoff, 0.5),
            Retry::After(Duration::from_secs(2))
        );
        assert_eq!(
            after_failure(&throttled(Some(86_400)), 0, &backoff, 0.5),
            Retry::After(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn each_error_kind_has_its_rule() {
        let backoff = Backoff::default();
        let conflict = AwsError::Conflict {
            message: String::new(),
        };
        assert_eq!(
            after_failure(&conflict, 0, &backoff, 0.5),
            Retry::WhenSettled
        );
        let invalid = AwsError::InvalidParameter {
            message: String::new(),
        };
        assert_eq!(after_failure(&invalid, 0, &backoff, 0.5), Retry::Never);
        let server = AwsError::Server {
            code: "ServiceException".into(),
            message: String::new(),
        };
        assert!(matches!(
            after_failure(&server, 0, &backoff, 0.5),
            Retry::After(_)
        ));
        assert_eq!(
            after_failure(&server, MAX_TRANSIENT_ATTEMPTS - 1, &backoff, 0.5),
            Retry::GiveUp
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let backoff = Backoff {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(4),
        };
        let ceilings: Vec<u64> = (0..6)
            .map(|attempt| backoff.ceiling(attempt).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, vec![500, 1_000, 2_000, 4_000, 4_000, 4_000]);
        assert_eq!(backoff.delay(3, 0.25), Duration::from_secs(1));
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
        fn full_jitter_stays_under_the_ceiling(attempt in 0u32..64, jitter in 0.0f64..1.0) {
            let backoff = Backoff::default();
            prop_assert!(backoff.delay(attempt, jitter) <= backoff.ceiling(attempt));
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
