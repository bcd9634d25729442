//! The leader's shards under spread leases: which it acts on, starting a shard taken
//! from its snapshot and letting go of one lost or handed over. Without spread leases
//! every shard is held from the start. It must not judge a lease (the spread elector
//! does) or await AWS in the loop: a snapshot is read beside it.

use tokio::sync::watch;

use super::{Hold, Leader, SharedShard, WakeSource};
use crate::aws::Connect;
use crate::config::{Origin, ShardKey, TargetConfig};
use crate::leader::spread::Held;
use crate::runtime::shard::{Event, Shard};

impl<A: Connect, W: WakeSource> Leader<A, W> {
    /// Whether this copy acts on `key`: always, but with spread leases only while it
    /// holds the shard's lease.
    pub(super) fn holds(&self, key: &ShardKey) -> bool {
        self.held
            .as_ref()
            .is_none_or(|held| held.borrow().contains_key(key))
    }

    /// A fresh state machine for shard `key`, at its lease's epoch.
    pub(super) fn new_core(&self, key: &ShardKey) -> Shard {
        let ids = self.shared.journal.lock().ids();
        Shard::new(ids, self.shared.fencing.of(key).epoch(), fastrand::u64(..))
    }

    /// The shards this copy runs, for `/metrics` and `/status`.
    pub(super) fn publish_in_force(&self) {
        if self.held.is_some() {
            let names = self
                .shards
                .iter()
                .filter(|shard| shard.hold != Hold::Not)
                .map(|shard| shard.key.to_string())
                .collect();
            self.shared.in_force.set_held(names);
        }
        self.shared.in_force.set(
            self.shards
                .iter()
                .filter(|shard| shard.running())
                .map(|shard| shard.core.clone())
                .collect(),
        );
    }

    /// The leases this copy holds changed: shards taken start from their snapshot,
    /// shards let go stop.
    pub(super) fn held_changed(&mut self) {
        for index in 0..self.shards.len() {
            let holds = self.holds(&self.shards[index].key);
            match (holds, self.shards[index].hold) {
                (true, Hold::Not) => self.begin(index),
                (false, Hold::Starting | Hold::Running) => self.let_go(index),
                _ => {}
            }
        }
    }

    /// A shard just taken: its snapshot is read beside the loop, then it starts.
    fn begin(&mut self, index: usize) {
        let core = self.new_core(&self.shards[index].key);
        let shard = &mut self.shards[index];
        shard.hold = Hold::Starting;
        shard.generation += 1;
        shard.core = SharedShard::new(core);
        let (snapshots, slot) = (self.shared.stores.snapshots.clone(), shard.snapshot_slot());
        let generation = shard.generation;
        tracing::info!(shard = %shard.key, "acting on the shard from its snapshot");
        self.starting
            .spawn(async move { (index, generation, snapshots.load(&slot).await) });
    }

    /// A shard's snapshot was read: it starts, unless it was let go meanwhile.
    pub(super) async fn snapshot_read(
        &mut self,
        index: usize,
        generation: u64,
        remembered: Option<Vec<u8>>,
    ) {
        let Some(shard) = self.shards.get_mut(index) else {
            return;
        };
        if shard.generation != generation || shard.hold != Hold::Starting {
            return;
        }
        shard.hold = Hold::Running;
        self.publish_in_force();
        self.start_shard(index, remembered).await;
        self.discover(index);
    }

    /// Gives shard `index` its targets and what it remembers; it runs from here on.
    pub(super) async fn start_shard(&mut self, index: usize, remembered: Option<Vec<u8>>) {
        self.publish_ready(index);
        let event = Event::Start {
            settings: self.config.daemon.clone(),
            targets: std::mem::take(&mut self.shards[index].pending),
            remembered,
            snapshots: self.shared.stores.snapshots.is_on(),
            reads_overrides: self.shared.stores.overrides.is_some(),
        };
        self.handle(index, event).await;
    }

    /// A shard whose lease this copy no longer holds: what it knows is saved for the
    /// next holder, its config's targets are kept for a later holding, and every
    /// result of its tasks still to come is dropped (its fence already stops writes).
    fn let_go(&mut self, index: usize) {
        let now = self.now();
        let fresh = self.new_core(&self.shards[index].key);
        let shard = &mut self.shards[index];
        tracing::warn!(shard = %shard.key, "no longer acting on the shard");
        let (written, snapshot) = {
            let mut core = shard.core.lock();
            let written: Vec<TargetConfig> = core
                .target_configs()
                .into_iter()
                .filter(|target| target.origin == Origin::Config)
                .collect();
            (written, core.snapshot(now))
        };
        if shard.hold == Hold::Running {
            shard.pending = written;
        }
        shard.hold = Hold::Not;
        shard.generation += 1;
        shard.core = SharedShard::new(fresh);
        shard.pass_due = None;
        shard.discovered = Default::default();
        let slot = shard.snapshot_slot();
        if let Some(bytes) = snapshot {
            self.save_snapshot(slot, bytes);
        }
        self.publish_in_force();
        self.publish_pass_due(now.instant);
        self.publish_ready(index);
    }
}

/// Resolves when the spread elector's held shards change; never without spread
/// leases, or once the elector is gone (its fences are closed then).
pub(super) async fn held_changed(held: &mut Option<watch::Receiver<Held>>) {
    let Some(receiver) = held else {
        return std::future::pending().await;
    };
    if receiver.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
