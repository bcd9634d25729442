//! What the leader keeps and tells beside its shards' work: the snapshot, saved one at
//! a time with only the newest waiting and once more on the way out; the overrides,
//! read once a pass; activities, into the journal and out as events. What it must not
//! do: decide anything; the shards do.

use std::time::Duration;

use tokio::task::JoinSet;

use std::sync::Arc;

use super::super::events::EventQueue;
use super::{Leader, WakeSource};
use crate::aws::Connect;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::runtime::state::handover::Handovers;
use crate::runtime::state::overrides::OverrideList;
use crate::runtime::state::snapshot::store::Snapshots;
use crate::runtime::state::store::Store;

/// Where the process keeps what outlives it, and where its events go.
pub struct Stores<A: Connect> {
    pub snapshots: Arc<Snapshots<A::State>>,
    /// Operators' overrides, if kept anywhere.
    pub overrides: Option<Arc<Store<A::State>>>,
    /// The records of targets taken over from Application Auto Scaling, if kept
    /// anywhere.
    pub handovers: Option<Arc<Store<A::State>>>,
    /// The events queue with `[events]`, its sender started.
    pub events: Option<Arc<EventQueue>>,
}

/// The process's [`Stores`]: the lease table with `[leader]`, else the state
/// directory.
pub async fn stores<A: Connect>(aws: &A, config: &Config, metrics: &Arc<Metrics>) -> Stores<A> {
    let table = match &config.leader {
        Some(leader) => Some(Arc::new(aws.state(&config.aws, leader).await)),
        None => None,
    };
    let events = match &config.events {
        Some(settings) => {
            let queue = Arc::new(EventQueue::new(settings.queue, metrics.clone()));
            let (api, region, account) = aws.events(&config.aws, settings).await;
            tokio::spawn(queue.clone().run(api, region, account));
            Some(queue)
        }
        None => None,
    };
    Stores {
        snapshots: Arc::new(Snapshots::for_config(table.clone(), config)),
        overrides: Store::for_config::<OverrideList>(config, table.clone()).map(Arc::new),
        handovers: Store::for_config::<Handovers>(config, table).map(Arc::new),
        events,
    }
}

/// How long the way out waits for the last snapshot to be saved.
const LAST_SAVE_LIMIT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Keeping {
    /// The snapshot being saved (one at a time, of any shard), and the newest of each
    /// shard waiting for it, by slot.
    pub saving: JoinSet<Result<(), String>>,
    unsaved: std::collections::BTreeMap<String, Vec<u8>>,
    /// The read of the override store under way (one at a time, once a pass).
    pub reading_overrides: JoinSet<Result<OverrideList, String>>,
}

impl<A: Connect, W: WakeSource> Leader<A, W> {
    /// Records `activity` in the journal, and sends it with `[events]`.
    pub(super) fn record(&mut self, activity: crate::runtime::state::activity::Activity) {
        if let Some(events) = &self.shared.stores.events {
            events.send(&activity);
        }
        self.shared.journal.lock().add(activity);
    }

    /// Sets the outcome of the activity `id` of `target`, and sends it with `[events]`.
    pub(super) fn set_outcome(&mut self, target: &str, id: u64, outcome: String) {
        let updated = self.shared.journal.lock().set_outcome(target, id, outcome);
        if let (Some(events), Some(updated)) = (&self.shared.stores.events, updated) {
            events.send(&updated);
        }
    }

    /// Starts a read of the override store, unless one is under way or there is none.
    pub(super) fn read_overrides(&mut self) {
        let Some(store) = self.shared.stores.overrides.clone() else {
            return;
        };
        if self.keeping.reading_overrides.is_empty() {
            self.keeping
                .reading_overrides
                .spawn(async move { store.load().await.map(|(list, _)| list) });
        }
    }

    /// Saves `bytes` as `slot`'s snapshot, after the save under way if there is one;
    /// only the newest of each slot waits.
    pub(super) fn save_snapshot(&mut self, slot: String, bytes: Vec<u8>) {
        if !self.keeping.saving.is_empty() {
            self.keeping.unsaved.insert(slot, bytes);
            return;
        }
        let snapshots = self.shared.stores.snapshots.clone();
        self.keeping
            .saving
            .spawn(async move { snapshots.save(&slot, bytes).await });
    }

    pub(super) fn snapshot_saved(
        &mut self,
        saved: Result<Result<(), String>, tokio::task::JoinError>,
    ) {
        let outcome = if matches!(saved, Ok(Ok(()))) {
            "success"
        } else {
            "failure"
        };
        self.shared
            .metrics
            .snapshot_saves
            .with_label_values(&[outcome])
            .inc();
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                tracing::warn!(reason = %why, "the snapshot was not saved; a restart would start cold");
            }
            Err(error) => super::super::count_task_failure(&self.shared.metrics, "write", &error),
        }
        if let Some((slot, bytes)) = self.keeping.unsaved.pop_first() {
            self.save_snapshot(slot, bytes);
        }
    }

    /// On the way out, what is known now is kept for the next start (a deploy of the
    /// daemon is its most common restart), within [`LAST_SAVE_LIMIT`].
    pub(super) async fn save_last_snapshot(&mut self) {
        if !self.shared.stores.snapshots.is_on() {
            return;
        }
        let now = self.now();
        let last: Vec<(String, Vec<u8>)> = self
            .shards
            .iter()
            .filter(|shard| shard.running())
            .filter_map(|shard| {
                let mut core = shard.core.lock();
                Some((shard.snapshot_slot(), core.snapshot(now)?))
            })
            .collect();
        let snapshots = self.shared.stores.snapshots.clone();
        let saving = async {
            while let Some(saved) = self.keeping.saving.join_next().await {
                self.snapshot_saved(saved);
            }
            self.keeping.unsaved.clear();
            // Every shard's at once: a copy handing its shards over waits for them all.
            let mut saving = tokio::task::JoinSet::new();
            for (slot, bytes) in last {
                let snapshots = snapshots.clone();
                saving.spawn(async move { snapshots.save(&slot, bytes).await });
            }
            while let Some(saved) = saving.join_next().await {
                self.snapshot_saved(saved);
            }
        };
        if tokio::time::timeout(LAST_SAVE_LIMIT, saving).await.is_err() {
            tracing::warn!(
                "the last snapshot was not saved in time; a restart reads what was saved before"
            );
        }
    }
}
