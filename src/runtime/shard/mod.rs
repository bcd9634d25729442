//! A shard: the targets of one account and Region, with their control-plane budget's
//! work, their known-state cache and their due work, as one sans-IO state machine.
//!
//! [`Shard::handle`] takes an [`Event`] (a read or write ended, a pass's metrics came,
//! a boundary or due work came round, a reload) and the time ([`Now`]), changes the
//! shard's state and returns [`Effect`]s as values: start this read, send this write,
//! record this activity, arm the boundary wake, the pass ended. [`Shard::poll_timeout`]
//! says when due work comes next. The daemon's driver (`drivers::daemon::driver`) carries effects out and
//! feeds results back as events; nothing here awaits, spawns or reads a clock, so
//! every transition is a plain function of its inputs and is tested without tokio
//! (`tests.rs`), and the driver in virtual time tests the whole loop.
//!
//! The files follow the shard's jobs: [`targets`] (one slot per target), [`due`] (the
//! one queue of due work), [`boundaries`] (the wall-clock queue), `reads.rs` (what a
//! read's answer means), `decide.rs` (deciding and writing), `pass.rs` (passes,
//! readiness and history reads), `need.rs` (cold start by need), `others.rs` (the
//! other writers: Application Auto Scaling and contests), `remember.rs` (the
//! snapshot it hands out and takes in), `view.rs` (what `/status` and `/metrics` show
//! of it). The overrides it applies are kept in `state::overrides::in_force`.
//!
//! What a shard must not do: send requests, read the clock or the environment, use a
//! client, a task, a channel or a driver, or know of any other shard (`tests/tidy.rs`).
//! It may use `aws`'s plain data types (errors, configs, series) and tokio's
//! `Instant`, which is a value.

mod boundaries;
mod cadence;
mod decide;
pub mod due;
mod need;
mod others;
mod pass;
mod reads;
mod remember;
pub mod targets;
#[cfg(test)]
pub(crate) mod tests;
mod view;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::aws::{AwsError, FunctionConfigs, ProvisionedConfig, ScalableTarget, SuspendedState};
use crate::config::{DaemonSettings, FunctionId, TargetConfig, TargetName};
use crate::policy::{PolicyState, schedule};
use crate::runtime::course::{Backoff, Outcome, ReadBacks};
use crate::runtime::knowing::aas::{AasView, TakeoverOutcome};
use crate::runtime::knowing::evaluate::SeriesByTarget;
use crate::runtime::knowing::known::Known;
use crate::runtime::plane::budget::Priority;
use crate::runtime::state::activity::{Activity, ActivityIds, Kind, Trigger};
use crate::runtime::state::handover::Handovers;
use crate::runtime::state::overrides::OverrideList;
use crate::runtime::state::overrides::in_force::InForce;
use crate::runtime::state::snapshot;
use boundaries::Boundaries;
use due::{Chore, Due, Lane};
use pass::Passes;
use targets::{HistoryProgress, Targets};

pub use pass::PassOutcome;
pub use view::ShardValues;

/// The time of an event, on both clocks: monotonic for due work and backoff, the wall
/// clock for decisions, schedules and the journal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    pub instant: Instant,
    pub wall: DateTime<Utc>,
}

/// A finished metric read: the start of a pass.
#[derive(Debug, Default)]
pub struct PassRead {
    /// `None` when the read failed.
    pub series: Option<SeriesByTarget>,
    /// The account's concurrency, when the sentinel asked for it.
    pub account: Option<crate::aws::Series>,
    /// The read outlived the pass deadline and was abandoned.
    pub timed_out: bool,
}

/// A finished Lambda read.
#[derive(Debug)]
pub enum ReadDone {
    Scan {
        function: FunctionId,
        /// The function's write count when the scan started.
        writes_before: u64,
        result: Result<FunctionConfigs, AwsError>,
    },
    ReadBack {
        target: TargetName,
        result: Result<Option<ProvisionedConfig>, AwsError>,
    },
    Refresh {
        function: FunctionId,
        reserved: Result<Option<u32>, AwsError>,
        /// `None` when the function has no alias target.
        weighted: Option<Result<BTreeSet<String>, AwsError>>,
    },
    Account(Result<Option<u32>, AwsError>),
    /// Application Auto Scaling's scalable targets, and the handover records of this
    /// shard (the driver keeps only those).
    Aas {
        scalable: Result<Vec<ScalableTarget>, String>,
        records: Result<Handovers, String>,
    },
}

/// What happens to a shard.
#[derive(Debug)]
pub enum Event {
    /// A tenure starts with these settings and targets: learn everything. `remembered`
    /// is the last snapshot the store held, if any: it orders the first scans. With
    /// `snapshots`, the shard hands out a snapshot of what it knows 10 s in, when the
    /// cold start ends, then every minute that it changed.
    Start {
        settings: DaemonSettings,
        targets: Vec<TargetConfig>,
        remembered: Option<Vec<u8>>,
        snapshots: bool,
        /// Whether overrides are read: nothing is decided before the first read.
        reads_overrides: bool,
    },
    /// A good reload: the new settings and targets, decided at once.
    Reload {
        settings: DaemonSettings,
        targets: Vec<TargetConfig>,
    },
    /// The interval came round: a pass starts.
    Tick,
    /// The pass's metric read ended.
    MetricsRead(PassRead),
    /// The pass's metric read task was lost (it panicked).
    PassLost,
    /// A Lambda read taken from `lane` ended.
    Read { lane: Lane, done: ReadDone },
    /// A Lambda read's task was lost: its lane's room is free again.
    ReadLost { lane: Lane },
    /// The write to `function` was answered.
    Wrote {
        function: FunctionId,
        result: Result<Option<ProvisionedConfig>, AwsError>,
    },
    /// The write task of `function` was lost: what is there is read again.
    WriteLost { function: FunctionId },
    /// A history read ended: each target's state rebuilt from its history, for the
    /// targets whose read succeeded.
    HistoryRead(Vec<(TargetName, PolicyState)>),
    /// Due work may be due (the timer [`Shard::poll_timeout`] named rang).
    Due,
    /// A schedule boundary may have come (the wake rang, or the heartbeat).
    Boundary,
    /// A read of the override store ended: the list, or why it could not be read.
    OverridesRead(Result<OverrideList, String>),
    /// A takeover from Application Auto Scaling ended.
    TookOver {
        target: TargetName,
        outcome: TakeoverOutcome,
    },
}

/// A read the driver starts.
#[derive(Debug, Clone)]
pub enum Read {
    Scan {
        function: FunctionId,
        priority: Priority,
        writes_before: u64,
    },
    ReadBack(Arc<TargetConfig>),
    Refresh {
        function: FunctionId,
        aliases: bool,
    },
    Account,
    Aas,
}

/// What the shard asks of the world.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Read the metrics of these tracked targets, within `deadline`: a pass.
    ReadMetrics {
        targets: Arc<[Arc<TargetConfig>]>,
        deadline: Duration,
        reach: crate::runtime::knowing::Reach,
        /// How many of them are read for each reason (`policy::cadence`).
        why: Vec<(crate::policy::cadence::ReadWhy, u64)>,
    },
    /// Read 14 days of these targets' metrics.
    ReadHistory(Vec<Arc<TargetConfig>>),
    /// Read from Lambda; the answer comes back as [`Event::Read`] with this lane.
    Read { lane: Lane, read: Read },
    /// Put `to` (delete for 0); the answer comes back as [`Event::Wrote`].
    Write {
        target: Arc<TargetConfig>,
        to: u32,
        priority: Priority,
    },
    /// Keep this activity in the journal.
    Record(Activity),
    /// Set the outcome of an activity recorded before.
    SetOutcome {
        target: TargetName,
        activity: u64,
        outcome: Outcome,
    },
    /// A pass started; it must end within `deadline`.
    PassStarted { deadline: Duration },
    /// A pass ended; `ready` is whether the shard counts as ready after it.
    PassEnded { outcome: PassOutcome, ready: bool },
    /// Wake the shard with [`Event::Boundary`] at this time.
    ArmBoundary(DateTime<Utc>),
    /// Keep this snapshot of what the shard knows ([`crate::runtime::state::snapshot`]).
    SaveSnapshot(Vec<u8>),
    /// Take `target` over from Application Auto Scaling: record `before` (what its
    /// scalable target had suspended), then suspend all of its scaling. The answer
    /// comes back as [`Event::TookOver`].
    TakeOver {
        target: Arc<TargetConfig>,
        before: SuspendedState,
    },
}

/// A snapshot is handed out at most this often, and only when it changed; the first
/// soon after a start, so that a cold start's progress is kept from early on.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(60);
const SNAPSHOT_FIRST: Duration = Duration::from_secs(10);
/// A failed scan or refresh is tried again after one interval, and at most this long.
const READ_RETRY: Duration = Duration::from_secs(30);
/// The account settings are read at least this often.
const ACCOUNT_REFRESH: Duration = Duration::from_secs(300);

/// The state machine of one shard.
#[derive(Debug)]
pub struct Shard {
    settings: DaemonSettings,
    targets: Targets,
    /// The tracked targets, for the pass's metric read: one copy of the list per
    /// config, not one per pass.
    tracked: Arc<[Arc<TargetConfig>]>,
    known: Known,
    /// What Application Auto Scaling manages, and so which targets are the shard's to
    /// write.
    aas: AasView,
    due: Due,
    boundaries: Boundaries,
    passes: Passes,
    /// Targets whose history is still to be read, a call at a time.
    history_queue: VecDeque<TargetName>,
    /// The targets of the history read under way.
    history_reading: Vec<TargetName>,
    ids: ActivityIds,
    /// The leader lease's epoch while this shard runs; 0 without `[leader]`.
    epoch: u64,
    rng: fastrand::Rng,
    backoff: Backoff,
    read_backs: ReadBacks,
    effects: Vec<Effect>,
    /// Of the targets in force, for snapshots.
    fingerprint: String,
    /// What the start's snapshot remembers, until the cold start ends.
    remembered: Option<remember::Remembered>,
    /// A hash of the last snapshot handed out (without its time), to hand out only
    /// one that changed; the snapshot itself is not kept.
    last_snapshot: Option<u64>,
    /// Whether this tenure hands out snapshots at all.
    keeps_snapshots: bool,
    /// Operators' overrides, as last read.
    overrides: InForce,
}

impl Shard {
    /// An empty shard; [`Event::Start`] gives it its targets. `seed` seeds the jitter
    /// of its backoffs.
    pub fn new(ids: ActivityIds, epoch: u64, seed: u64) -> Self {
        Shard {
            settings: DaemonSettings::default(),
            targets: Targets::default(),
            tracked: Arc::new([]),
            known: Known::default(),
            aas: AasView::default(),
            due: Due::default(),
            boundaries: Boundaries::default(),
            passes: Passes::default(),
            history_queue: VecDeque::new(),
            history_reading: Vec::new(),
            ids,
            epoch,
            rng: fastrand::Rng::with_seed(seed),
            backoff: Backoff::default(),
            read_backs: ReadBacks::default(),
            effects: Vec::new(),
            fingerprint: String::new(),
            remembered: None,
            last_snapshot: None,
            keeps_snapshots: false,
            overrides: InForce::default(),
        }
    }

    /// Carries `event` through the state machine at `now`; returns what it asks for.
    pub fn handle(&mut self, event: Event, now: Now) -> Vec<Effect> {
        match event {
            Event::Start {
                settings,
                targets,
                remembered,
                snapshots,
                reads_overrides,
            } => {
                self.overrides.await_first_read(reads_overrides);
                self.due.queue(Chore::Aas, now.instant, false);
                self.configure(settings, targets, now);
                if let Some(bytes) = remembered {
                    self.remember(&bytes, now);
                }
                self.keeps_snapshots = snapshots;
                if snapshots {
                    self.due
                        .queue(Chore::Snapshot, now.instant + SNAPSHOT_FIRST, false);
                }
            }
            Event::Reload { settings, targets } => {
                // A reload is how an operator says "look again" after `migrate
                // --rollback`: AAS is read at once.
                self.due.queue(Chore::Aas, now.instant, false);
                self.configure(settings, targets, now);
                self.take_remembered();
                self.start_pass(Trigger::Reload, now);
            }
            Event::Tick => self.start_pass(Trigger::Interval, now),
            Event::MetricsRead(read) => self.pass_done(read, now),
            Event::PassLost => self.pass_ended(PassOutcome::Failed, now),
            Event::Read { lane, done } => {
                if lane.holds_room() {
                    self.due.finished(lane);
                }
                self.read_done(lane, done, now);
            }
            Event::ReadLost { lane } => {
                if lane.holds_room() {
                    self.due.finished(lane);
                }
            }
            Event::Wrote { function, result } => self.write_done(&function, result, now),
            Event::WriteLost { function } => self.write_lost(&function, now),
            Event::HistoryRead(states) => self.history_read(states),
            Event::Due => self.start_due(now),
            Event::Boundary => self.fire_due_boundaries(now),
            Event::OverridesRead(read) => self.overrides_read(read, now),
            Event::TookOver { target, outcome } => self.took_over(&target, outcome, now),
        }
        self.arm_boundary();
        std::mem::take(&mut self.effects)
    }

    /// When due work comes next: call [`Shard::handle`] with [`Event::Due`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due.next_due()
    }

    /// The settings in force.
    pub fn settings(&self) -> &DaemonSettings {
        &self.settings
    }

    /// The targets in force, in config order: what a copy that stops leading keeps.
    pub fn target_configs(&self) -> Vec<TargetConfig> {
        self.targets
            .iter()
            .map(|(_, slot)| TargetConfig::clone(&slot.config))
            .collect()
    }

    /// Takes settings and targets in force: keeps what is known of functions still
    /// named, learns the new ones, and schedules every boundary anew.
    fn configure(&mut self, settings: DaemonSettings, configs: Vec<TargetConfig>, now: Now) {
        self.settings = settings;
        let diff = self.targets.replace(configs);
        for function in &diff.functions_removed {
            self.known.forget(function);
        }
        if !diff.removed.is_empty() {
            tracing::info!(
                removed = diff.removed.len(),
                "targets removed; their state is dropped"
            );
        }
        // Of the targets written out: those selectors find come after the start, and
        // take what the snapshot remembers as they come.
        self.fingerprint = snapshot::fingerprint(
            self.targets
                .iter()
                .map(|(_, slot)| slot.config.as_ref())
                .filter(|config| config.origin == crate::config::Origin::Config),
        );
        self.tracked = self
            .targets
            .iter()
            .filter(|(_, slot)| slot.config.tracking.is_some())
            .map(|(_, slot)| slot.config.clone())
            .collect();
        self.learn(now);
        self.schedule_all_boundaries(now);
    }

    /// Queues the first read of every function not known yet, the account's, and
    /// every history not asked for yet.
    fn learn(&mut self, now: Now) {
        let unknown: Vec<FunctionId> = self
            .targets
            .functions()
            .filter(|function| self.known.function(function).is_none())
            .cloned()
            .collect();
        for function in unknown {
            self.due
                .queue(Chore::Refresh(function.clone()), now.instant, false);
            self.due.queue(Chore::Scan(function), now.instant, false);
        }
        self.due.queue(Chore::Account, now.instant, false);
        for (name, slot) in self.targets.iter_mut() {
            if slot.history == HistoryProgress::NotAsked {
                slot.history = HistoryProgress::Queued;
                self.history_queue.push_back(name.clone());
            }
        }
        self.read_next_history();
    }

    fn schedule_all_boundaries(&mut self, now: Now) {
        self.boundaries.clear();
        for (name, slot) in self.targets.iter_mut() {
            slot.boundary = schedule::next_boundary(&slot.config, now.wall);
            if let Some(when) = slot.boundary {
                self.boundaries.insert(when, name.clone());
            }
        }
    }

    /// Decides every target whose boundary has come and queues its next one.
    fn fire_due_boundaries(&mut self, now: Now) {
        let mut due = Vec::new();
        for (when, name) in self.boundaries.take_due(now.wall) {
            let Some(slot) = self.targets.get_mut(&name) else {
                continue;
            };
            if slot.boundary != Some(when) {
                continue;
            }
            tracing::debug!(target = %name, "schedule boundary");
            slot.boundary = schedule::next_boundary(&slot.config, now.wall);
            if let Some(next) = slot.boundary {
                self.boundaries.insert(next, name.clone());
            }
            due.push(name);
        }
        self.decide(&due, Trigger::Boundary, now);
    }

    fn arm_boundary(&mut self) {
        if let Some(when) = self.boundaries.earliest_to_arm() {
            self.effects.push(Effect::ArmBoundary(when));
        }
    }

    /// Starts every chore that is due, within its lane's room.
    fn start_due(&mut self, now: Now) {
        let mut decide = Vec::new();
        for (chore, lane) in self.due.take_due(now.instant) {
            let read = match chore {
                Chore::Decide(target) => {
                    decide.push(target);
                    continue;
                }
                Chore::Snapshot => {
                    self.hand_out_snapshot(now);
                    self.due
                        .queue(Chore::Snapshot, now.instant + SNAPSHOT_EVERY, false);
                    continue;
                }
                Chore::Scan(function) => self.targets.function(&function).map(|slot| Read::Scan {
                    priority: if lane == Lane::Urgent {
                        Priority::ReadBack
                    } else {
                        Priority::DriftScan
                    },
                    writes_before: slot.writes_ended,
                    function,
                }),
                Chore::ReadBack(target) => self
                    .targets
                    .get(&target)
                    .map(|slot| Read::ReadBack(slot.config.clone())),
                Chore::Refresh(function) => {
                    self.targets.function(&function).map(|slot| Read::Refresh {
                        aliases: slot.has_alias(&self.targets),
                        function,
                    })
                }
                Chore::Account => Some(Read::Account),
                Chore::Aas => Some(Read::Aas),
            };
            match read {
                Some(read) => self.effects.push(Effect::Read { lane, read }),
                // Its target or function is gone: nothing to read any more.
                None if lane.holds_room() => self.due.finished(lane),
                None => {}
            }
        }
        self.decide(&decide, Trigger::Retry, now);
    }

    /// A read of the override store ended: each change is an activity, and the targets
    /// a change covers are decided at once (every target, after a tenure's first read).
    fn overrides_read(&mut self, read: Result<OverrideList, String>, now: Now) {
        let taken = self.overrides.take(read, now.wall);
        for (scope, outcome) in taken.told {
            let entry = Entry {
                kind: Kind::Override,
                from: None,
                to: None,
                reason: String::new(),
                trigger: Trigger::Override,
                outcome,
            };
            self.record(&TargetName::from(scope), entry, now);
        }
        if taken.first || taken.everyone {
            // The decisions the wait held back, or those the pause of an unread store
            // held.
            self.decide_all(Trigger::Override, now);
            return;
        }
        let covered: Vec<TargetName> = self
            .targets
            .iter()
            .filter(|(name, _)| (taken.changed.iter()).any(|one| one.scope.covers(name.as_str())))
            .map(|(name, _)| name.clone())
            .collect();
        self.decide(&covered, Trigger::Override, now);
        // Read at the next pass: what an override ends with is decided on fresh data.
        self.ask_to_read(&covered);
    }

    /// Records an activity at `now`, at this shard's epoch; returns its id.
    fn record(&mut self, target: &TargetName, entry: Entry, now: Now) -> u64 {
        let id = self.ids.next();
        self.effects.push(Effect::Record(Activity {
            id,
            time: now.wall,
            target: target.to_string(),
            kind: entry.kind,
            from: entry.from,
            to: entry.to,
            reason: entry.reason,
            trigger: entry.trigger,
            outcome: entry.outcome,
            epoch: self.epoch,
        }));
        id
    }
}

/// An activity to record, without what the shard fills in.
struct Entry {
    kind: Kind,
    from: Option<u32>,
    to: Option<u32>,
    reason: String,
    trigger: Trigger,
    outcome: String,
}
