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
    /// Allocations under way, oldest first: each becomes usable at the start of its
    /// `ready_at`. Lambda keeps at most one; [`Allocations::Unrefused`] queues them.
    pending: Vec<Pending>,
    /// The minute of the last accepted put.
    pub last_change: Option<usize>,
    allocations: Allocations,
}

/// Whether a put during an allocation is refused, as Lambda refuses it, or accepted
/// and allocated on its own: the idealised world of the reactive bound, which
/// `simulate --split` uses to measure what waiting for an allocation costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Allocations {
    #[default]
    OneAtATime,
    Unrefused,
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
        Self::with(initial, Allocations::OneAtATime)
    }

    pub fn with(initial: u32, allocations: Allocations) -> Self {
        Self {
            requested: initial,
            usable: initial,
            pending: Vec::new(),
            last_change: None,
            allocations,
        }
    }

    /// Completes the allocations whose time has come. Call at the start of each minute.
    pub fn advance(&mut self, minute: usize) {
        let ready = self
            .pending
            .partition_point(|pending| pending.ready_at <= minute);
        if let Some(newest) = ready.checked_sub(1) {
            self.usable = self.pending[newest].value;
            self.pending.drain(..ready);
        }
    }

    /// Whether a put now would be refused.
    pub fn in_progress(&self) -> bool {
        self.allocations == Allocations::OneAtATime && !self.pending.is_empty()
    }

    /// A larger value is usable only when all of it is allocated, and the old capacity
    /// serves meanwhile; a smaller one takes effect at once.
    pub fn put(&mut self, minute: usize, value: u32) -> PutOutcome {
        if self.in_progress() {
            return PutOutcome::Conflict;
        }
        self.requested = value;
        self.last_change = Some(minute);
        // A put replaces whatever larger value is still being allocated.
        self.pending.retain(|pending| pending.value < value);
        if value > self.usable {
            let ready_at = minute + allocation_minutes(value - self.usable);
            // Allocations complete in order: a later put is never usable sooner.
            let ready_at = self
                .pending
                .last()
                .map_or(ready_at, |last| ready_at.max(last.ready_at));
            self.pending.push(Pending { value, ready_at });
        } else {
            self.pending.clear();
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

    #[test]
    fn unrefused_puts_are_allocated_each_on_its_own_and_in_order() {
        let mut lambda = Lambda::with(10, Allocations::Unrefused);
        assert_eq!(lambda.put(0, 50), PutOutcome::Accepted);
        assert!(!lambda.in_progress(), "a put now would not be refused");
        assert_eq!(lambda.put(1, 60), PutOutcome::Accepted);
        lambda.advance(3);
        assert_eq!(lambda.usable, 50, "the first put serves 3 minutes after it");
        lambda.advance(4);
        assert_eq!(lambda.usable, 60);
        // A put below what is being allocated replaces it; below usable, at once.
        lambda.put(5, 100);
        lambda.put(6, 80);
        lambda.advance(8);
        assert_eq!(lambda.usable, 60, "the 100 was replaced");
        lambda.advance(9);
        assert_eq!(lambda.usable, 80);
        lambda.put(10, 200);
        lambda.put(11, 20);
        assert_eq!(lambda.usable, 20);
        lambda.advance(13);
        assert_eq!(lambda.usable, 20, "the 200 was withdrawn");
    }
}
