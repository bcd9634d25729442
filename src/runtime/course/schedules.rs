//! The waits of a write course: the backoff between failed attempts, the read-backs
//! that follow an allocation, how often each kind of failure is tried, and how long a
//! refusal is remembered. Plain values; what it must not do: read a clock (time and
//! jitter come in).

use std::time::Duration;

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

/// How an allocation is followed after a write: the first read-back `first` after
/// Lambda accepted it, each later one twice as long after the one before, at most
/// `longest` apart, `attempts` in all (about 15 minutes at the defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadBacks {
    pub first: Duration,
    pub longest: Duration,
    pub attempts: u32,
}

impl Default for ReadBacks {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(2),
            longest: Duration::from_secs(30),
            attempts: 34,
        }
    }
}

impl ReadBacks {
    /// The wait before read-back number `made` (0 for the first).
    pub fn wait(&self, made: u32) -> Duration {
        self.first
            .saturating_mul(2u32.saturating_pow(made.min(16)))
            .min(self.longest.max(self.first))
    }
}

/// Writes that fail for a transient reason (5xx, timeout, a transient 4xx such as
/// `AccessDenied` while IAM propagates) are tried this often in a row.
pub const MAX_TRANSIENT_ATTEMPTS: u32 = 3;
/// Conflicts (`ResourceConflictException`) waited out in a row before backing off.
pub const MAX_CONFLICT_WAITS: u32 = 5;
/// Throttles (`TooManyRequestsException`) waited out in a row before backing off.
pub const MAX_THROTTLED_ATTEMPTS: u32 = 8;
/// A config that Lambda left `FAILED` (an init failure) is written again this long
/// after, doubling after each failure in a row up to [`FAILED_RETRY_CAP`], and up to a
/// quarter longer at random: never sooner than a minute, so a failing function gets at
/// most one write a minute.
pub const FAILED_RETRY_FIRST: Duration = Duration::from_secs(60);
pub const FAILED_RETRY_CAP: Duration = Duration::from_secs(15 * 60);

/// The wait before writing a `FAILED` config again after `failures` in a row (1 for
/// the first); `jitter` in [0, 1).
pub fn failed_retry_wait(failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FAILED_RETRY_FIRST
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(FAILED_RETRY_CAP)
        .mul_f64(1.0 + jitter.clamp(0.0, 1.0) / 4.0)
}

/// How long a value Lambda refused as invalid is not sent again, while the caps stay
/// the same. A refusal can depend on things the daemon cannot see (another
/// qualifier's holding, an account limit), so no refusal is remembered for ever.
pub const REFUSAL_MEMORY: Duration = Duration::from_secs(15 * 60);
