//! The write gate the elector holds open and every Lambda write checks just before it
//! is sent: shared state, updated by the elector task, read by write tasks.
//!
//! It must not decide anything: the elector ([`super::Tenure`]) says when the lease
//! was renewed; the fence only answers "is that younger than the window now?".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
}
