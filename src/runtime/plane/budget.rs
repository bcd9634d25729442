//! The control-plane request budget as a pure value: how many Lambda requests may go
//! now, in which order of priority, and how a throttle slows all of them down.
//!
//! Lambda allows 15 control-plane requests a second per account and Region, for every
//! API and every caller together. The daemon spends a configured share of that
//! (`daemon.control_plane_budget`). The budget is a cascade of token buckets, one per
//! [`Priority`]: the refill goes to the highest priority first and only what overflows
//! a full bucket flows on to the next one. So a priority's tokens never depend on what
//! lower priorities do: a drift scan can never delay a scale-out, whatever the rate,
//! and a quiet daemon still spends its whole budget on scans.
//!
//! A throttle (`TooManyRequestsException`) halves the rate at once and pauses the
//! budget for the `retryAfterSeconds` Lambda gave; the rate then grows back linearly
//! (additive increase, multiplicative decrease). No clock and no I/O here: time comes
//! in as seconds since an origin the caller chooses; the async [`super::scheduler`]
//! carries it out.
//!
//! What it must not do: send requests or read the clock: time comes in as seconds.

/// Priorities, highest first. Lower priorities are served only from tokens that
/// higher ones left unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Writes that raise capacity: scale-outs and schedule floors.
    Raise,
    /// Read-backs of the daemon's own allocations in progress, and the scans a
    /// conflict or a disagreeing read-back calls for.
    ReadBack,
    /// Writes that lower capacity.
    Lower,
    /// Drift scans (and the first read of every function).
    DriftScan,
    /// Refreshes of facts that change rarely: alias weights, account settings.
    Refresh,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority::Raise,
        Priority::ReadBack,
        Priority::Lower,
        Priority::DriftScan,
        Priority::Refresh,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// A bounded label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Priority::Raise => "scale_out",
            Priority::ReadBack => "read_back",
            Priority::Lower => "scale_in",
            Priority::DriftScan => "drift_scan",
            Priority::Refresh => "refresh",
        }
    }
}

const LEVELS: usize = Priority::ALL.len();

/// The slowest the rate falls to after throttles, as a share of the configured rate.
const MIN_RATE_SHARE: f64 = 1.0 / 16.0;
/// After a throttle the rate grows back by this share of the configured rate a
/// second: from half to all of it in 10 s without another throttle.
const INCREASE_SHARE_PER_SECOND: f64 = 0.05;
/// Throttles within this many seconds of a decrease are the same congestion: a burst
/// of 429s answers one burst of requests and halves the rate once.
const DECREASE_HOLDOFF: f64 = 1.0;

/// The budget of one account and Region.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// The configured rate, requests per second.
    ceiling: f64,
    /// The rate now: the ceiling, or less after throttles.
    rate: f64,
    /// Tokens each priority's bucket holds at most.
    burst: f64,
    tokens: [f64; LEVELS],
    /// Seconds since the origin at the last update.
    updated: f64,
    /// No request goes before this time (a throttle's `retryAfterSeconds`).
    paused_until: f64,
    last_decrease: Option<f64>,
}

/// Rounding slack of a token: far below anything a rate can make of real time.
const TOKEN_ROUNDING: f64 = 1e-9;

impl Budget {
    /// `rate` requests a second; every bucket starts full. A non-finite or
    /// non-positive rate is taken as one a second (validation keeps rates in range).
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        // One second's worth per priority, at least one request: a lone scale-out
        // never waits, and a burst of five levels stays well under Lambda's 15.
        let burst = rate.clamp(1.0, 3.0);
        Self {
            ceiling: rate,
            rate,
            burst,
            tokens: [burst; LEVELS],
            updated: 0.0,
            paused_until: 0.0,
            last_decrease: None,
        }
    }

    /// The rate in force, requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn ceiling(&self) -> f64 {
        self.ceiling
    }

    /// Brings the buckets up to `now`: the rate recovers, and the refill cascades from
    /// the highest priority down.
    fn refill(&mut self, now: f64) {
        if now <= self.updated {
            return;
        }
        let elapsed = now - self.updated;
        self.updated = now;
        let mut added = elapsed * self.rate;
        self.rate =
            (self.rate + elapsed * self.ceiling * INCREASE_SHARE_PER_SECOND).min(self.ceiling);
        for tokens in &mut self.tokens {
            let room = (self.burst - *tokens).max(0.0);
            let put = added.min(room);
            *tokens += put;
            added -= put;
            if added <= 0.0 {
                break;
            }
        }
    }

    /// Takes a token for a request of `priority` at `now`, if one is there.
    pub fn try_take(&mut self, priority: Priority, now: f64) -> bool {
        self.refill(now);
        if now < self.paused_until {
            return false;
        }
        let tokens = &mut self.tokens[priority.index()];
        // At `ready_at` the refill is exact only up to rounding: a token that is
        // 0.999999999 there must count, or the dispatcher asks again at the same
        // instant for ever.
        if *tokens >= 1.0 - TOKEN_ROUNDING {
            *tokens = (*tokens - 1.0).max(0.0);
            true
        } else {
            false
        }
    }

    /// The earliest time at which `priority` can have a token if nobody takes one
    /// meanwhile: higher buckets fill first. A later call may find it later still,
    /// when a higher priority took tokens in between.
    pub fn ready_at(&self, priority: Priority, now: f64) -> f64 {
        let start = now.max(self.updated);
        let higher_deficit: f64 = self.tokens[..priority.index()]
            .iter()
            .map(|tokens| (self.burst - tokens).max(0.0))
            .sum();
        let own_deficit = (1.0 - self.tokens[priority.index()]).max(0.0);
        let needed = higher_deficit + own_deficit;
        let ready = if needed <= 0.0 {
            start
        } else {
            start + needed / self.rate
        };
        ready.max(self.paused_until)
    }

    /// Lambda throttled a request at `now`: halve the rate (once per congestion) and
    /// pause for `retry_after` seconds if Lambda said so.
    pub fn throttled(&mut self, now: f64, retry_after: Option<f64>) {
        self.refill(now);
        let recent = self
            .last_decrease
            .is_some_and(|at| now - at < DECREASE_HOLDOFF);
        if !recent {
            self.rate = (self.rate / 2.0).max(self.ceiling * MIN_RATE_SHARE);
            self.last_decrease = Some(now);
        }
        if let Some(wait) = retry_after.filter(|wait| wait.is_finite() && *wait > 0.0) {
            self.paused_until = self
                .paused_until
                .max(now + wait.min(crate::aws::MAX_RETRY_AFTER.as_secs_f64()));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Takes every token `priority` gets at `now`; returns how many.
    fn drain(budget: &mut Budget, priority: Priority, now: f64) -> u32 {
        let mut taken = 0;
        while budget.try_take(priority, now) {
            taken += 1;
        }
        taken
    }

    #[test]
    fn the_rate_is_kept_over_a_minute() {
        let mut budget = Budget::new(2.0);
        let mut granted = 0;
        for step in 0..=600 {
            granted += drain(&mut budget, Priority::DriftScan, f64::from(step) / 10.0);
        }
        // 60 s at 2/s plus the bucket's starting burst.
        assert_eq!(granted, 120 + 2);
    }

    #[test]
    fn a_scale_out_finds_a_token_while_scans_use_the_whole_budget() {
        let mut budget = Budget::new(2.0);
        for step in 0..600 {
            drain(&mut budget, Priority::DriftScan, f64::from(step) / 10.0);
        }
        assert!(budget.try_take(Priority::Raise, 60.0));
        assert!(budget.try_take(Priority::Raise, 60.0));
    }

    #[test]
    fn a_throttle_halves_the_rate_once_per_burst_and_it_recovers() {
        let mut budget = Budget::new(4.0);
        budget.throttled(10.0, None);
        assert_eq!(budget.rate(), 2.0);
        // Within the hold-off: the same congestion; the rate only grew back a little.
        budget.throttled(10.2, None);
        assert!((budget.rate() - 2.04).abs() < 1e-9, "{}", budget.rate());
        budget.throttled(12.0, None);
        assert!((budget.rate() - 1.2).abs() < 1e-9, "{}", budget.rate());
        budget.try_take(Priority::Refresh, 100.0);
        assert_eq!(budget.rate(), 4.0);
    }

    #[test]
    fn retry_after_pauses_every_priority() {
        let mut budget = Budget::new(10.0);
        budget.throttled(5.0, Some(3.0));
        assert!(!budget.try_take(Priority::Raise, 7.9));
        assert_eq!(budget.ready_at(Priority::Raise, 7.9), 8.0);
        assert!(budget.try_take(Priority::Raise, 8.0));
    }

    #[derive(Debug, Clone)]
    struct Arrival {
        at: f64,
        priority: Priority,
    }

    fn arrivals() -> impl Strategy<Value = Vec<Arrival>> {
        prop::collection::vec(
            (0.0..120.0f64, 0usize..LEVELS).prop_map(|(at, level)| Arrival {
                at,
                priority: Priority::ALL[level],
            }),
            0..300,
        )
    }

    /// Serves `arrivals` as the scheduler does (every waiting request whose bucket has
    /// a token, highest priority first, first come first served within one) and
    /// returns when each request of `watched` priority went, in arrival order.
    fn serve(rate: f64, mut arrivals: Vec<Arrival>, watched: Priority) -> Vec<f64> {
        arrivals.sort_by(|a, b| a.at.total_cmp(&b.at));
        let mut budget = Budget::new(rate);
        let mut waiting: [std::collections::VecDeque<f64>; LEVELS] = Default::default();
        let mut next = 0;
        let mut now = 0.0;
        let mut served = Vec::new();
        loop {
            while next < arrivals.len() && arrivals[next].at <= now {
                waiting[arrivals[next].priority.index()].push_back(arrivals[next].at);
                next += 1;
            }
            for priority in Priority::ALL {
                while !waiting[priority.index()].is_empty() && budget.try_take(priority, now) {
                    waiting[priority.index()].pop_front();
                    if priority == watched {
                        served.push(now);
                    }
                }
            }
            let wake = Priority::ALL
                .iter()
                .filter(|priority| !waiting[priority.index()].is_empty())
                .map(|priority| budget.ready_at(*priority, now))
                .chain(arrivals.get(next).map(|arrival| arrival.at))
                .fold(f64::INFINITY, f64::min);
            if !wake.is_finite() {
                return served;
            }
            // Step at least a little, so floating-point rounding cannot stall.
            now = wake.max(now + 1e-9);
        }
    }

    proptest! {
        /// With the budget at any rate, a scale-out goes exactly when it would have gone
        /// had no drift scan, refresh or lower-priority request ever been made.
        #[test]
        fn lower_priorities_never_delay_a_scale_out(
            rate in 0.05..50.0f64,
            raises in prop::collection::vec(0.0..120.0f64, 0..60),
            others in arrivals(),
        ) {
            let raises: Vec<Arrival> = raises
                .into_iter()
                .map(|at| Arrival { at, priority: Priority::Raise })
                .collect();
            let alone = serve(rate, raises.clone(), Priority::Raise);
            let mut mixed = raises;
            mixed.extend(others.into_iter().filter(|arrival| arrival.priority != Priority::Raise));
            let together = serve(rate, mixed, Priority::Raise);
            prop_assert_eq!(alone.len(), together.len());
            for (a, b) in alone.iter().zip(&together) {
                prop_assert!((a - b).abs() < 1e-6, "scale-out at {} alone, {} with others", a, b);
            }
        }

        /// The time `ready_at` names is exact: a token is there then. The dispatcher
        /// sleeps until that time and, finding nothing, would ask again at the same
        /// instant for ever (virtual time then never moves on).
        #[test]
        fn a_token_is_there_when_ready_at_says(
            rate in 0.05..50.0f64,
            mut takes in prop::collection::vec((0..LEVELS, 0.0..30.0f64), 0..100),
            waiting in 0..LEVELS,
        ) {
            takes.sort_by(|a, b| a.1.total_cmp(&b.1));
            let mut budget = Budget::new(rate);
            let mut now = 0.0;
            for (level, at) in takes {
                now = at;
                budget.try_take(Priority::ALL[level], now);
            }
            let priority = Priority::ALL[waiting];
            let ready = budget.ready_at(priority, now);
            prop_assert!(budget.try_take(priority, ready), "no token at {} (rate {})", ready, rate);
        }

        /// Whatever arrives, no window of time sees more than its share of the rate
        /// plus the buckets' starting burst.
        #[test]
        fn spending_never_exceeds_the_rate(rate in 0.05..50.0f64, mixed in arrivals()) {
            let mut all = Vec::new();
            for priority in Priority::ALL {
                all.extend(serve(rate, mixed.clone(), priority));
            }
            all.sort_by(f64::total_cmp);
            let burst = rate.clamp(1.0, 3.0) * LEVELS as f64;
            for (index, start) in all.iter().enumerate() {
                for (count, end) in all[index..].iter().enumerate() {
                    let allowed = (end - start) * rate + burst + 1e-6;
                    prop_assert!((count + 1) as f64 <= allowed,
                        "{} requests in {} s at {}/s", count + 1, end - start, rate);
                }
            }
        }
    }
}
