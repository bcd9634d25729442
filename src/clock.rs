//! The one wall clock the program reads. Everything that needs the time of day (schedule
//! rules, metric windows, cooldowns against `LastModified`) takes it from a [`Clock`]
//! passed in, so that the daemon can run in virtual time under `tokio::time::pause`.
//!
//! Elapsed time is measured with `tokio::time::Instant`, which the same pause controls.
//! `clippy.toml` forbids every other way of reading the wall clock; this module is the
//! only place allowed to. It must not be read inside `policy/`: the policy gets `now`.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Where the time of day comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system's wall clock.
    System,
    /// The system's wall clock plus this much: a host whose clock is wrong, for the
    /// failure tests of leader election (`run --clock-ahead`).
    Ahead(std::time::Duration),
    /// `start` at `origin`, then moving with tokio's clock: virtual under
    /// `tokio::time::pause`, so a test can jump hours ahead in no time.
    Following {
        start: DateTime<Utc>,
        origin: Instant,
    },
}

impl Clock {
    /// A clock that reads `start` now and then follows tokio's clock.
    pub fn following_tokio(start: DateTime<Utc>) -> Self {
        Self::Following {
            start,
            origin: Instant::now(),
        }
    }

    #[allow(clippy::disallowed_methods)] // The one place the wall clock is read.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Ahead(ahead) => {
                Utc::now()
                    + chrono::Duration::from_std(*ahead)
                        .expect("a skew given on the command line fits chrono::Duration")
            }
            Self::Following { start, origin } => {
                let elapsed = chrono::Duration::from_std(origin.elapsed())
                    .expect("a test runs for less than the range of chrono::Duration");
                *start + elapsed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_following_clock_moves_with_virtual_time() {
        let start = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("a valid time");
        let clock = Clock::following_tokio(start);
        assert_eq!(clock.now(), start);
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        assert_eq!(clock.now(), start + chrono::Duration::hours(1));
    }
}
