//! Every activity the leader records, also sent to Amazon EventBridge (`[events]`), so
//! that rules can route scaling to SNS, chat, paging or a queue. Sending runs on a task
//! of its own behind a bounded queue: the loop only pushes, never waits. Entries go out
//! ten to a call; a throttled or failed call, or failed entries, are sent again after a
//! backoff (1 s doubling to 60 s), each entry at most [`ATTEMPTS`] times; when the queue
//! is full the oldest entry is dropped. Each is counted in
//! `pc_autoscaler_events_total{outcome}`.
//!
//! What it must not do: slow the loop, or send for a copy that does not lead (a leader
//! that stands down empties the queue).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use crate::aws::{EventEntry, EventsApi};
use crate::metrics::Metrics;
use crate::runtime::state::activity::{Activity, Kind};

/// How often one entry is sent before it is given up.
pub const ATTEMPTS: u32 = 8;
/// Entries in one `PutEvents` call: EventBridge's own limit.
const BATCH: usize = 10;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The `detail-type` of an activity's event.
pub fn detail_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Write => "Scaling Activity",
        Kind::Blocked | Kind::Hold => "Scaling Blocked",
        Kind::Drift => "Drift Detected",
        Kind::Override => "Override",
        Kind::Discovery => "Target Discovery",
        Kind::Handover => "Handover",
        Kind::Contested => "Target Contested",
    }
}

struct Waiting {
    activity: Activity,
    attempts: u32,
}

/// The queue between the loop and the sender.
pub struct EventQueue {
    waiting: Mutex<VecDeque<Waiting>>,
    capacity: usize,
    wake: Notify,
    metrics: Arc<Metrics>,
}

impl EventQueue {
    pub fn new(capacity: u32, metrics: Arc<Metrics>) -> Self {
        Self {
            waiting: Mutex::new(VecDeque::new()),
            capacity: capacity as usize,
            wake: Notify::new(),
            metrics,
        }
    }

    /// Queues `activity`'s event; the oldest waiting is dropped when the queue is full.
    pub fn send(&self, activity: &Activity) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.len() >= self.capacity {
            waiting.pop_front();
            self.count("dropped", 1);
        }
        waiting.push_back(Waiting {
            activity: activity.clone(),
            attempts: 0,
        });
        drop(waiting);
        self.wake.notify_one();
    }

    /// Forgets what waits: this copy no longer leads.
    pub fn clear(&self) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let dropped = waiting.len();
        waiting.clear();
        self.count("dropped", dropped);
    }

    fn count(&self, outcome: &str, count: usize) {
        self.metrics
            .events
            .with_label_values(&[outcome])
            .inc_by(count as u64);
    }

    fn take(&self) -> Vec<Waiting> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let count = waiting.len().min(BATCH);
        waiting.drain(..count).collect()
    }

    /// Puts entries that were not taken back at the head of the queue, in their order,
    /// or gives them up after [`ATTEMPTS`].
    fn again(&self, entries: Vec<Waiting>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let mut given_up = 0;
        for mut entry in entries.into_iter().rev() {
            entry.attempts += 1;
            if entry.attempts >= ATTEMPTS {
                given_up += 1;
            } else if waiting.len() < self.capacity {
                waiting.push_front(entry);
            } else {
                given_up += 1;
            }
        }
        drop(waiting);
        self.count("failed", given_up);
    }

    /// Sends what is queued through `api` until the process ends. `region` and
    /// `account` are named in every event's detail.
    pub async fn run<E: EventsApi>(
        self: Arc<Self>,
        api: E,
        region: Option<String>,
        account: Option<String>,
    ) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let batch = self.take();
            if batch.is_empty() {
                self.wake.notified().await;
                continue;
            }
            let entries: Vec<EventEntry> = batch
                .iter()
                .map(|waiting| entry(&waiting.activity, region.as_deref(), account.as_deref()))
                .collect();
            let failed = match api.put(&entries).await {
                Ok(failed) => failed,
                Err(error) => {
                    tracing::warn!(error = %error, outcome = error.label(), entries = batch.len(), "EventBridge refused the events; they are sent again");
                    (0..batch.len()).collect()
                }
            };
            self.count("sent", batch.len() - failed.len());
            if failed.is_empty() {
                backoff = FIRST_BACKOFF;
                continue;
            }
            let again: Vec<Waiting> = batch
                .into_iter()
                .enumerate()
                .filter(|(index, _)| failed.contains(index))
                .map(|(_, waiting)| waiting)
                .collect();
            self.again(again);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// The event of `activity`: its `detail` is documented in docs/src/reference/events.md.
pub fn entry(activity: &Activity, region: Option<&str>, account: Option<&str>) -> EventEntry {
    let detail = serde_json::json!({
        "id": activity.id,
        "target": activity.target,
        "account": account,
        "region": region,
        "kind": activity.kind,
        "from": activity.from,
        "to": activity.to,
        "reason": activity.reason,
        "trigger": activity.trigger,
        "outcome": activity.outcome,
        "epoch": activity.epoch,
    });
    EventEntry {
        detail_type: detail_type(activity.kind),
        detail: detail.to_string(),
        time: activity.time,
    }
}
