//! The write gate the elector holds open and every Lambda write checks just before it
//! is sent: shared state, updated by the elector task, read by write tasks.
//!
//! It must not decide anything: the elector ([`super::Tenure`]) says when the lease
//! was renewed; the fence only answers "is that younger than the window now?".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Cloning shares the gate.
#[derive(Debug, Clone)]
pub struct Fence {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    origin: Instant,
    window: Duration,
    leader: AtomicBool,
    epoch: AtomicU64,
    /// Nanoseconds after `origin` at which the last successful renew was sent.
    renewed_ns: AtomicU64,
    /// Writes let through and not yet answered: a lease handed over is released only
    /// once none is left on the wire.
    in_flight: AtomicUsize,
}

/// A write let through the fence, on the wire until dropped.
#[derive(Debug)]
pub struct Passed {
    inner: Option<Arc<Inner>>,
    pub epoch: u64,
}

impl Drop for Passed {
    fn drop(&mut self) {
        if let Some(inner) = &self.inner {
            inner.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Fence {
    /// No election: a single copy that may always write, at epoch 0.
    pub fn open() -> Self {
        Self { inner: None }
    }

    /// Closed until [`Fence::renewed`]; writes then pass for `window` after each renew.
    pub fn closed(window: Duration) -> Self {
        Self {
            inner: Some(Arc::new(Inner {
                origin: Instant::now(),
                window,
                leader: AtomicBool::new(false),
                epoch: AtomicU64::new(0),
                renewed_ns: AtomicU64::new(0),
                in_flight: AtomicUsize::new(0),
            })),
        }
    }

    /// The lease was taken or renewed by a request sent at `sent`.
    pub fn renewed(&self, epoch: u64, sent: Instant) {
        if let Some(inner) = &self.inner {
            let ns = u64::try_from(sent.saturating_duration_since(inner.origin).as_nanos())
                .unwrap_or(u64::MAX);
            inner.renewed_ns.store(ns, Ordering::SeqCst);
            inner.epoch.store(epoch, Ordering::SeqCst);
            inner.leader.store(true, Ordering::SeqCst);
        }
    }

    /// Stepped down or released: nothing passes any more.
    pub fn close(&self) {
        if let Some(inner) = &self.inner {
            inner.leader.store(false, Ordering::SeqCst);
        }
    }

    /// Whether a write may be sent now; `Err(epoch)` when the lease is not fresh.
    pub fn check(&self) -> Result<u64, u64> {
        let Some(inner) = &self.inner else {
            return Ok(0);
        };
        let epoch = inner.epoch.load(Ordering::SeqCst);
        if !inner.leader.load(Ordering::SeqCst) {
            return Err(epoch);
        }
        let renewed = inner.origin + Duration::from_nanos(inner.renewed_ns.load(Ordering::SeqCst));
        if Instant::now().saturating_duration_since(renewed) < inner.window {
            Ok(epoch)
        } else {
            Err(epoch)
        }
    }

    /// Lets a write through while the lease is fresh, counting it on the wire until
    /// the answer drops it; `Err(epoch)` when the lease is not fresh.
    pub fn enter(&self) -> Result<Passed, u64> {
        let Some(inner) = &self.inner else {
            return Ok(Passed {
                inner: None,
                epoch: 0,
            });
        };
        // Counted before the check: a release that sees none on the wire after the
        // fence closed cannot miss a write that passed.
        inner.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut passed = Passed {
            inner: Some(inner.clone()),
            epoch: 0,
        };
        passed.epoch = self.check()?;
        Ok(passed)
    }

    /// Writes let through and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.in_flight.load(Ordering::SeqCst))
    }

    /// The epoch of the current or last tenure; 0 without an election.
    pub fn epoch(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.epoch.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_fence_passes_writes_only_within_the_window_after_a_renew() {
        let fence = Fence::closed(Duration::from_secs(5));
        assert_eq!(fence.check(), Err(0));
        fence.renewed(3, Instant::now());
        assert_eq!(fence.check(), Ok(3));
        tokio::time::sleep(Duration::from_millis(4_999)).await;
        assert_eq!(fence.check(), Ok(3));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(fence.check(), Err(3));
        fence.renewed(3, Instant::now());
        fence.close();
        assert_eq!(fence.check(), Err(3));
        assert_eq!(Fence::open().check(), Ok(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_let_through_counts_as_in_flight_until_its_answer() {
        let fence = Fence::closed(Duration::from_secs(5));
        assert!(fence.enter().is_err());
        assert_eq!(fence.in_flight(), 0, "a refused write is not on the wire");
        fence.renewed(2, Instant::now());
        let passed = fence.enter().expect("a fresh lease lets a write through");
        assert_eq!(passed.epoch, 2);
        fence.close();
        assert_eq!(fence.in_flight(), 1);
        drop(passed);
        assert_eq!(fence.in_flight(), 0);
    }
}
