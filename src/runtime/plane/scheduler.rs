//! Carries out a [`Budget`]: requests wait here for their turn, by priority, and a
//! throttle reported here slows every later request down.
//!
//! One dispatcher task per budget hands out turns: it grants every waiting request
//! whose priority has a token, highest priority first and in arrival order within
//! one, then sleeps until the next token is due or a new request arrives. A request
//! that stops waiting (its task was aborted) gives its turn back unused.
//!
//! It must not send requests or know what they are: [`super::control`] asks for a
//! turn, sends, and reports a throttle. The clock is tokio's, so tests run it in
//! paused (virtual) time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::budget::{Budget, Priority};
use crate::metrics::Metrics;

/// How often an idle dispatcher checks whether its scheduler still exists.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// A shared request budget. Cloning shares it.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Turns>,
}

struct Turns {
    state: Mutex<TurnState>,
    arrived: Arc<Notify>,
    origin: Instant,
    /// Counts and queues by priority; `None` for the one-shot commands.
    metrics: Option<Arc<Metrics>>,
}

struct TurnState {
    budget: Budget,
    waiting: [VecDeque<oneshot::Sender<()>>; Priority::ALL.len()],
}

impl Turns {
    fn state(&self) -> MutexGuard<'_, TurnState> {
        // The budget's methods never panic, so the lock is never poisoned by them;
        // should anything else poison it, its numbers are still valid.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// Grants every turn that is due; returns when the next one may be.
    fn grant_due(&self) -> Option<Instant> {
        let now = self.now();
        let mut state = self.state();
        let TurnState { budget, waiting } = &mut *state;
        let mut next: Option<f64> = None;
        for priority in Priority::ALL {
            let queue = &mut waiting[priority.index()];
            loop {
                // A waiter that gave up takes no token.
                while queue.front().is_some_and(oneshot::Sender::is_closed) {
                    queue.pop_front();
                    self.count_queued(priority, -1);
                }
                if queue.is_empty() {
                    break;
                }
                if !budget.try_take(priority, now) {
                    let ready = budget.ready_at(priority, now);
                    next = Some(next.map_or(ready, |next| next.min(ready)));
                    break;
                }
                let turn = queue.pop_front().expect("the queue is not empty");
                self.count_queued(priority, -1);
                if turn.send(()).is_ok()
                    && let Some(metrics) = &self.metrics
                {
                    metrics
                        .budget
                        .spent
                        .with_label_values(&[priority.label()])
                        .inc();
                }
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.budget.rate.set(budget.rate());
        }
        next.map(|at| self.origin + Duration::from_secs_f64(at.max(0.0)))
    }

    fn count_queued(&self, priority: Priority, change: i64) {
        if let Some(metrics) = &self.metrics {
            metrics
                .budget
                .queued
                .with_label_values(&[priority.label()])
                .add(change);
        }
    }
}

impl Scheduler {
    /// A budget of `rate` requests a second. Starts its dispatcher on the current
    /// tokio runtime; the dispatcher ends soon after the last clone is dropped.
    pub fn new(rate: f64, metrics: Option<Arc<Metrics>>) -> Self {
        let arrived = Arc::new(Notify::new());
        let shared = Arc::new(Turns {
            state: Mutex::new(TurnState {
                budget: Budget::new(rate),
                waiting: Default::default(),
            }),
            arrived: arrived.clone(),
            origin: Instant::now(),
            metrics,
        });
        tokio::spawn(dispatch(Arc::downgrade(&shared), arrived));
        Self { shared }
    }

    /// Waits for a turn to send one request of `priority`.
    pub async fn turn(&self, priority: Priority) {
        let (granted, turn) = oneshot::channel();
        self.shared.state().waiting[priority.index()].push_back(granted);
        self.shared.count_queued(priority, 1);
        self.shared.arrived.notify_one();
        // The dispatcher only drops a turn unsent when the scheduler is gone.
        let _ = turn.await;
    }

    /// Lambda throttled a request of `priority`: slow the whole budget down, and pause
    /// it for `retry_after` when Lambda said how long.
    pub fn throttled(&self, priority: Priority, retry_after: Option<Duration>) {
        let now = self.shared.now();
        self.shared
            .state()
            .budget
            .throttled(now, retry_after.map(|wait| wait.as_secs_f64()));
        if let Some(metrics) = &self.shared.metrics {
            metrics
                .budget
                .throttled
                .with_label_values(&[priority.label()])
                .inc();
        }
    }

    /// The rate in force, requests per second.
    pub fn rate(&self) -> f64 {
        self.shared.state().budget.rate()
    }
}

async fn dispatch(shared: Weak<Turns>, arrived: Arc<Notify>) {
    loop {
        let next = match shared.upgrade() {
            Some(shared) => shared.grant_due(),
            None => return,
        };
        let wake = next.unwrap_or_else(|| Instant::now() + IDLE_CHECK);
        tokio::select! {
            _ = arrived.notified() => {}
            _ = tokio::time::sleep_until(wake.min(Instant::now() + IDLE_CHECK)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn turns_go_by_priority_at_the_rate() {
        let scheduler = Scheduler::new(1.0, None);
        let start = Instant::now();
        // Use up the scans' starting burst so that they have to wait.
        scheduler.turn(Priority::DriftScan).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, priority) in [Priority::DriftScan, Priority::DriftScan, Priority::Raise]
            .into_iter()
            .enumerate()
        {
            let scheduler = scheduler.clone();
            let order = order.clone();
            tasks.spawn(async move {
                scheduler.turn(priority).await;
                order
                    .lock()
                    .expect("not poisoned")
                    .push((index, start.elapsed().as_millis()));
            });
        }
        while tasks.join_next().await.is_some() {}
        let order = order.lock().expect("not poisoned").clone();
        // The scale-out goes at once from its own bucket; each scan waits for one
        // second's refill, which fills the higher buckets first (4 levels × 1 token
        // ahead of the scans' bucket are already full, so refill reaches it).
        assert_eq!(order[0], (2, 0), "{order:?}");
        assert_eq!(order[1].0, 0);
        assert_eq!(order[2].0, 1);
        assert!(order[2].1 >= 2_000, "{order:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_turn_costs_nothing() {
        let scheduler = Scheduler::new(1.0, None);
        scheduler.turn(Priority::Refresh).await;
        let waiting = tokio::spawn({
            let scheduler = scheduler.clone();
            async move { scheduler.turn(Priority::Refresh).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        waiting.abort();
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        scheduler.turn(Priority::Refresh).await;
        assert!(
            start.elapsed() <= Duration::from_millis(1_000),
            "{:?}",
            start.elapsed()
        );
    }
}
