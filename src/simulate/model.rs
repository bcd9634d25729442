//! The world a replayed policy acts on: Lambda's allocation of provisioned
//! concurrency, CloudWatch's late datapoints, and what spills over.
//!
//! Time advances in whole minutes. Every constant is named here; the numbers are
//! Lambda's observed and documented behaviour, simplified to minutes.
//!
//! What it must not do: know any policy: every policy acts on the same model.

/// A put of a larger value is prepared this long before environments are allocated.
pub const PREPARATION_MINUTES: usize = 2;
/// Environments allocated per minute once preparation is over.
pub const ALLOCATION_PER_MINUTE: u32 = 6_000;
/// Default delay after which a minute's datapoint can be read (`--metric-lag`).
pub const DEFAULT_METRIC_LAG_MINUTES: usize = 2;
/// Price of provisioned concurrency per GB-second (us-east-1, x86, published price).
pub const PRICE_PER_GB_SECOND: f64 = 0.000_004_166_7;

/// One function alias's provisioned concurrency, as Lambda would handle it.
#[derive(Debug, Clone)]
pub struct Lambda {
    /// The value last accepted by a put.
    pub requested: u32,
    /// Capacity that serves requests now.
    pub usable: u32,
    /// An allocation under way: becomes usable at the start of `ready_at`.
    pub pending: Option<Pending>,
    /// The minute of the last accepted put.
    pub last_change: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub value: u32,
    pub ready_at: usize,
}

/// The result of a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Accepted,
    /// Refused: an allocation is in progress (`ResourceConflictException`).
    Conflict,
}

impl Lambda {
    pub fn new(initial: u32) -> Self {
        Self {
            requested: initial,
            usable: initial,
            pending: None,
            last_change: None,
        }
    }

    /// Completes an allocation whose time has come. Call at the start of each minute.
    pub fn advance(&mut self, minute: usize) {
        if let Some(pending) = self.pending
            && minute >= pending.ready_at
        {
            self.usable = pending.value;
            self.pending = None;
        }
    }

    pub fn in_progress(&self) -> bool {
        self.pending.is_some()
    }

    /// A larger value is usable only when all of it is allocated, and the old capacity
    /// serves meanwhile; a smaller one takes effect at once.
    pub fn put(&mut self, minute: usize, value: u32) -> PutOutcome {
        if self.pending.is_some() {
            return PutOutcome::Conflict;
        }
        self.requested = value;
        self.last_change = Some(minute);
        if value > self.usable {
            let added = value - self.usable;
            let allocation = added.div_ceil(ALLOCATION_PER_MINUTE) as usize;
            self.pending = Some(Pending {
                value,
                ready_at: minute + PREPARATION_MINUTES + allocation,
            });
        } else {
            self.usable = value;
        }
        PutOutcome::Accepted
    }
}

/// The minutes a put of `added` units takes before it serves (the oracle plans with it).
pub fn allocation_minutes(added: u32) -> usize {
    PREPARATION_MINUTES + added.div_ceil(ALLOCATION_PER_MINUTE).max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_up_serves_after_preparation_and_allocation() {
        // 10 → 100 at minute 5: 90 new environments take 2 + ceil(90 / 6000) = 3 minutes.
        let mut lambda = Lambda::new(10);
        assert_eq!(lambda.put(5, 100), PutOutcome::Accepted);
        for minute in 5..8 {
            lambda.advance(minute);
            assert_eq!(lambda.usable, 10, "old capacity serves at minute {minute}");
        }
        lambda.advance(8);
        assert_eq!(lambda.usable, 100);
    }

    #[test]
    fn a_large_step_takes_a_minute_per_six_thousand() {
        // 0 → 13,000: 2 minutes of preparation + ceil(13,000 / 6,000) = 3 → usable at 5.
        let mut lambda = Lambda::new(0);
        lambda.put(0, 13_000);
        lambda.advance(4);
        assert_eq!(
            lambda.usable, 0,
            "none of it is usable until all is allocated"
        );
        lambda.advance(5);
        assert_eq!(lambda.usable, 13_000);
    }

    #[test]
    fn a_put_during_an_allocation_is_a_conflict_and_a_step_down_is_immediate() {
        let mut lambda = Lambda::new(10);
        lambda.put(0, 50);
        assert_eq!(lambda.put(1, 60), PutOutcome::Conflict);
        assert_eq!(lambda.requested, 50);
        lambda.advance(3);
        assert_eq!(lambda.put(3, 5), PutOutcome::Accepted);
        assert_eq!(lambda.usable, 5);
    }
}
