//! The leader's driver: carries out what the shards ask for, and nothing else.
//!
//! It owns the shards' AWS clients and every task. Each turn of its loop takes one
//! thing that happened (a timer, a task's result, a command, a reload) to the shard it
//! concerns as an [`Event`], and carries out the [`Effect`]s the shard returns:
//! spawns the reads and writes, updates the journal, health and counters, arms the
//! boundary wake. Every task's result comes back as an event, a panic included
//! (`Lost`). The loop never awaits AWS, the credential chain or the file system; the
//! shards are behind a mutex only so that the HTTP listener can read them, and no
//! lock is held across an await.
//!
//! What it must not do: decide anything, await AWS or the file system in its loop, or
//! hold a shard's lock across an await.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::reload::{Reloader, taken_in_force};
use super::{
    DaemonCommand, Exit, HEARTBEAT, ShardClients, Shared, SharedShard, Standby, WakeSource,
    connect, notify,
};
use crate::aws::Connect;
use crate::config::{Config, Origin, ShardKey, TargetConfig};
use crate::leader::spread::Held;
use crate::policy::cadence::ReadWhy;
use crate::runtime::discovery::{Found, Written};
use crate::runtime::drivers::handing::Records;
use crate::runtime::knowing::aas::TakeoverOutcome;
use crate::runtime::knowing::{Reach, series};
use crate::runtime::shard::due::Lane;
use crate::runtime::shard::{Effect, Event, Now, PassOutcome, PassRead, Read, ReadDone};

mod discovering;
mod holding;
pub(super) mod keeping;
mod tasks;

use tasks::{FromShard, Job, Tasks};

/// What a pass's metric read asks for (`Effect::ReadMetrics`).
struct PassReads {
    targets: Arc<[Arc<TargetConfig>]>,
    reach: Reach,
    why: Vec<(ReadWhy, u64)>,
}

/// Sent on each heartbeat until `READY=1`: systemd's start timeout then measures a
/// stall, not the length of the first pass.
const START_EXTENSION: &str = "EXTEND_TIMEOUT_USEC=30000000";

/// Whether this copy acts on a shard: always without spread leases; with them, from
/// when it holds the shard's lease and the shard's snapshot is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Another copy's, or nobody's: nothing is read or written.
    Not,
    /// Held; its snapshot is being read.
    Starting,
    Running,
}

/// A shard as the driver keeps it: the state machine and the clients of its account
/// and Region.
pub struct ShardIo<A: Connect> {
    key: ShardKey,
    pub core: SharedShard,
    clients: ShardClients<A>,
    hold: Hold,
    /// One more every time the shard is taken or let go: a task's result from an
    /// earlier holding is dropped.
    generation: u64,
    /// The config's targets of a shard not running, given to it when it starts.
    pending: Vec<TargetConfig>,
    /// Its passes read AWS (not 3 uninformed in a row).
    passes_ready: bool,
    /// When its pass under way must have ended, for liveness.
    pass_due: Option<Instant>,
    discovered: discovering::Discovered,
}

impl<A: Connect> ShardIo<A> {
    /// Where its snapshot is kept: `""` for the base account's (where a config without
    /// accounts always kept it), `account/region` for another.
    fn snapshot_slot(&self) -> String {
        if self.key.is_base() {
            String::new()
        } else {
            self.key.to_string()
        }
    }

    /// Ready while its passes read AWS and its selectors, if it has any, do.
    fn ready(&self) -> bool {
        self.hold == Hold::Running && self.passes_ready && !self.discovered.failing()
    }

    fn running(&self) -> bool {
        self.hold == Hold::Running
    }
}

/// Every shard's clients, in `Config::shards` order.
type ClientsByShard<A> = Vec<(ShardKey, ShardClients<A>)>;

/// The leader: its config, its shards and everything under way.
pub struct Leader<A: Connect, W> {
    /// The config in force, without its targets: those live in the shards' slots,
    /// once (a copy here would be megabytes at 5,000 targets).
    config: Config,
    shared: Shared<A>,
    reloader: Reloader,
    wakes: W,
    shards: Vec<ShardIo<A>>,
    /// Reads and passes; dropped (aborted) at shutdown or step-down.
    tasks: Tasks,
    /// Writes; waited for at shutdown within the grace period.
    writes: Tasks,
    /// A good reload waiting for its new clients.
    connecting: JoinSet<(Config, ClientsByShard<A>)>,
    /// The targets written out, which selectors leave alone.
    written: Written,
    /// Discoveries under way, one a shard at most.
    discovering: JoinSet<(FromShard, Found)>,
    discovery_ticker: Interval,
    ticker: Interval,
    boundary_wake: Arc<Notify>,
    /// The snapshot's saves and the override store's reads under way.
    keeping: keeping::Keeping,
    /// With spread leases: the shards this copy holds.
    held: Option<watch::Receiver<Held>>,
    /// Snapshots of shards just taken, being read: (index, generation, bytes).
    starting: JoinSet<(usize, u64, Option<Vec<u8>>)>,
}

fn interval_timer(period: Duration, first: Instant) -> Interval {
    let mut timer = tokio::time::interval_at(first, period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    timer
}

impl<A: Connect, W: WakeSource> Leader<A, W> {
    /// A leader that starts with nothing known, from what the standby kept.
    pub async fn take_over(standby: Standby<W>, shared: &Shared<A>) -> Self {
        let mut config = standby.config;
        let clients = connect(
            shared.aws.as_ref(),
            &config,
            &shared.metrics,
            &shared.fencing,
        )
        .await;
        let interval = config.daemon.interval;
        let targets = std::mem::take(&mut config.targets);
        let discovery_period = config.daemon.discovery_period;
        let mut leader = Leader {
            config,
            shared: shared.clone(),
            reloader: standby.reloader,
            wakes: standby.wakes,
            shards: Vec::new(),
            tasks: Tasks::default(),
            writes: Tasks::default(),
            connecting: JoinSet::new(),
            written: Written::of(&targets),
            discovering: JoinSet::new(),
            discovery_ticker: interval_timer(discovery_period, Instant::now()),
            ticker: interval_timer(interval, Instant::now()),
            boundary_wake: Arc::default(),
            keeping: keeping::Keeping::default(),
            held: shared.held.as_ref().map(|held| held.held.clone()),
            starting: JoinSet::new(),
        };
        leader.start_shards(clients, targets, true).await;
        leader
    }

    /// Builds the shards of the config in force, each starting with nothing known and
    /// the targets written out for it; selectors' targets come with their first
    /// discovery. With `remember`, each reads its last snapshot first. With spread
    /// leases only the shards held run; the others wait for their lease.
    async fn start_shards(
        &mut self,
        clients: ClientsByShard<A>,
        mut targets: Vec<TargetConfig>,
        remember: bool,
    ) {
        self.starting.abort_all();
        let generation = self.shards.iter().map(|shard| shard.generation).max();
        let generation = generation.map_or(0, |latest| latest + 1);
        self.shards = clients
            .into_iter()
            .map(|(key, clients)| {
                let core = self.new_core(&key);
                let (own, rest) = targets.drain(..).partition(|target| target.shard == key);
                targets = rest;
                let hold = if self.holds(&key) {
                    Hold::Running
                } else {
                    Hold::Not
                };
                ShardIo {
                    key,
                    core: SharedShard::new(core),
                    clients,
                    hold,
                    generation,
                    pending: own,
                    passes_ready: true,
                    pass_due: None,
                    discovered: Default::default(),
                }
            })
            .collect();
        self.publish_in_force();
        let mut remembered = if remember {
            self.load_snapshots().await
        } else {
            Vec::new()
        };
        remembered.resize(self.shards.len(), None);
        for (index, remembered) in remembered.into_iter().enumerate() {
            if self.shards[index].running() {
                self.start_shard(index, remembered).await;
            } else {
                self.publish_ready(index);
            }
        }
        self.discover_all();
    }

    /// Liveness fails when any shard's pass outlives its deadline: the earliest is
    /// the one that counts.
    fn publish_pass_due(&self, now: Instant) {
        match self.shards.iter().filter_map(|shard| shard.pass_due).min() {
            Some(due) => self
                .shared
                .health
                .pass_started(due.saturating_duration_since(now)),
            None => self.shared.health.pass_ended(),
        }
    }

    /// Every shard's last snapshot, read at once (each within the store's limit).
    async fn load_snapshots(&self) -> Vec<Option<Vec<u8>>> {
        let mut loads = JoinSet::new();
        for (index, shard) in self.shards.iter().enumerate() {
            if !shard.running() {
                continue;
            }
            let (snapshots, slot) = (self.shared.stores.snapshots.clone(), shard.snapshot_slot());
            loads.spawn(async move { (index, snapshots.load(&slot).await) });
        }
        let mut loaded = vec![None; self.shards.len()];
        while let Some(joined) = loads.join_next().await {
            if let Ok((index, bytes)) = joined {
                loaded[index] = bytes;
            }
        }
        loaded
    }

    /// Shard `index`'s readiness, in its metric and the process's `/readyz`: ready
    /// while any shard is (one account that cannot be read leaves the others working;
    /// `pc_autoscaler_shard_ready` says which).
    fn publish_ready(&mut self, index: usize) {
        let shard = &self.shards[index];
        let labels = [
            shard.key.account_label(),
            shard.key.region_label(&self.config.aws),
        ];
        self.shared
            .metrics
            .shards
            .ready
            .with_label_values(&labels)
            .set(i64::from(shard.ready()));
        self.publish_process_ready();
    }

    /// The process's `/readyz`: ready while any shard is; with spread leases and no
    /// shard held, while the lease table answers (the copy could take one).
    fn publish_process_ready(&self) {
        let ready = match &self.shared.held {
            Some(held) if !self.shards.iter().any(|shard| shard.hold != Hold::Not) => {
                let reachable = held.reachable.load(std::sync::atomic::Ordering::Relaxed);
                // Started, for systemd: there is no pass to wait for.
                if reachable {
                    self.shared.systemd.ready();
                }
                reachable
            }
            _ => self.shards.iter().any(ShardIo::ready),
        };
        self.shared.health.set_ready(ready);
    }

    fn now(&self) -> Now {
        Now {
            instant: Instant::now(),
            wall: self.shared.clock.now(),
        }
    }

    /// Takes `event` to shard `index` and carries out what it asks for.
    async fn handle(&mut self, index: usize, event: Event) {
        let now = self.now();
        let effects = {
            let mut core = self.shards[index].core.lock();
            core.handle(event, now)
        };
        for effect in effects {
            self.carry_out(index, effect, now).await;
        }
    }

    /// Takes `event` to every shard this copy runs.
    async fn handle_all(&mut self, event: impl Fn() -> Event) {
        for index in 0..self.shards.len() {
            if self.shards[index].running() {
                self.handle(index, event()).await;
            }
        }
    }

    /// A task's event, unless its shard was let go (or taken again) since it started.
    async fn handle_from(&mut self, (index, generation): FromShard, event: Event) {
        let current = self
            .shards
            .get(index)
            .is_some_and(|shard| shard.running() && shard.generation == generation);
        if current {
            self.handle(index, event).await;
        }
    }

    fn origin(&self, index: usize) -> FromShard {
        (index, self.shards[index].generation)
    }

    /// A pass's metric read: counted by why each target is read, and by the metrics
    /// CloudWatch bills.
    fn read_metrics(&mut self, index: usize, read: PassReads, deadline: Duration, now: Now) {
        let PassReads {
            targets,
            reach,
            why,
        } = read;
        let clients = self.shards[index].clients.clone();
        let metrics = self.shared.metrics.clone();
        for (why, count) in why {
            metrics
                .metric_reads
                .with_label_values(&[why.label()])
                .inc_by(count);
        }
        let requested = metrics.shards.cloudwatch_metrics.with_label_values(&[
            self.shards[index].key.account_label(),
            self.shards[index].key.region_label(&self.config.aws),
        ]);
        self.tasks.spawn(self.origin(index), Job::Pass, async move {
            let started = Instant::now();
            let fetch = series::fetch(
                clients.cloudwatch.as_ref(),
                targets.iter().map(AsRef::as_ref),
                now.wall,
                reach,
            );
            let read = tokio::time::timeout(deadline, fetch).await;
            metrics
                .evaluation_duration
                .observe(started.elapsed().as_secs_f64());
            let timed_out = read.is_err();
            let read = read.unwrap_or_default();
            requested.inc_by(read.metrics_requested);
            Event::MetricsRead(PassRead {
                timed_out,
                series: read.targets,
                account: read.account,
            })
        });
    }

    async fn carry_out(&mut self, index: usize, effect: Effect, now: Now) {
        let clients = self.shards[index].clients.clone();
        match effect {
            Effect::ReadMetrics {
                targets,
                deadline,
                reach,
                why,
            } => {
                let read = PassReads {
                    targets,
                    reach,
                    why,
                };
                self.read_metrics(index, read, deadline, now);
            }
            Effect::ReadHistory(targets) => {
                self.tasks
                    .spawn(self.origin(index), Job::History, async move {
                        let cloudwatch = clients.cloudwatch.as_ref();
                        let targets: Vec<&TargetConfig> =
                            targets.iter().map(AsRef::as_ref).collect();
                        let batch =
                            crate::runtime::drivers::history::read(cloudwatch, &targets, now.wall)
                                .await;
                        Event::HistoryRead(batch.states)
                    });
            }
            Effect::Read { lane, read } => {
                let records = Records {
                    shard: self.shards[index].key.clone(),
                    store: self.shared.stores.handovers.clone(),
                };
                let task = read_task(clients, lane, read, records);
                self.tasks.spawn(self.origin(index), Job::Read(lane), task);
            }
            Effect::TakeOver { target, before } => self.take_from_aas(index, target, before, now),
            Effect::Write {
                target,
                to,
                priority,
            } => {
                let function = target.function.clone();
                self.writes
                    .spawn(self.origin(index), Job::Write(function), async move {
                        let result = clients.control.write(&target, to, priority).await;
                        Event::Wrote {
                            function: target.function.clone(),
                            result,
                        }
                    });
            }
            Effect::Record(activity) => self.record(activity),
            Effect::SetOutcome {
                target,
                activity,
                outcome,
            } => self.set_outcome(&target, activity, outcome.to_string()),
            Effect::PassStarted { deadline } => {
                self.shards[index].pass_due = Some(now.instant + deadline);
                self.publish_pass_due(now.instant);
            }
            Effect::PassEnded { outcome, ready } => self.pass_ended(index, outcome, ready),
            Effect::SaveSnapshot(bytes) => {
                let slot = self.shards[index].snapshot_slot();
                self.save_snapshot(slot, bytes);
            }
            Effect::ArmBoundary(when) => {
                let delay = (when - self.shared.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                if let Err(error) = self.wakes.arm(delay, self.boundary_wake.clone()).await {
                    // The heartbeat still finds the boundary within a second.
                    tracing::error!(error = %error, "cannot arm the schedule boundary timer");
                }
            }
        }
    }

    /// Takes `target` over from Application Auto Scaling beside the loop, as a write:
    /// only while this copy's lease is fresh.
    fn take_from_aas(
        &mut self,
        index: usize,
        target: Arc<TargetConfig>,
        before: crate::aws::SuspendedState,
        now: Now,
    ) {
        let clients = self.shards[index].clients.clone();
        let records = Records {
            shard: self.shards[index].key.clone(),
            store: self.shared.stores.handovers.clone(),
        };
        let fence = self.shared.fencing.of(&self.shards[index].key);
        let origin = self.origin(index);
        self.writes
            .spawn(origin, Job::TakeOver(target.name.clone()), async move {
                let outcome = match fence.enter() {
                    Ok(_passed) => {
                        (records.take_over(clients.scaling.as_ref(), &target, before, now.wall))
                            .await
                    }
                    Err(epoch) => TakeoverOutcome::Failed(format!(
                        "not sent: the lease of epoch {epoch} is not fresh"
                    )),
                };
                Event::TookOver {
                    target: target.name.clone(),
                    outcome,
                }
            });
    }

    fn pass_ended(&mut self, index: usize, outcome: PassOutcome, ready: bool) {
        let metrics = &self.shared.metrics;
        let wall = self.shared.clock.now().timestamp_millis() as f64 / 1000.0;
        metrics.passes.with_label_values(&[outcome.label()]).inc();
        metrics.last_evaluation.set(wall);
        if outcome == PassOutcome::Informed {
            metrics.last_successful_evaluation.set(wall);
        }
        self.shards[index].pass_due = None;
        self.publish_pass_due(Instant::now());
        self.shards[index].passes_ready = ready;
        self.publish_ready(index);
        // A pass frees what its metric read held (thousands of series): given back
        // here, once an interval, or the heap would keep it.
        crate::trim::release_free_memory();
        // Ready means: the first metric read is done, and every target whose state is
        // known has been decided. Targets still unknown are read at the budget's pace
        // (`pc_autoscaler_targets_unknown`); start-up does not wait for them.
        self.shared.systemd.ready();
    }

    /// The loop, until the daemon is told to stop or this copy no longer leads.
    pub async fn run(&mut self, commands: &mut mpsc::Receiver<DaemonCommand>) -> Exit {
        let mut held = self.held.clone();
        // Without a systemd watchdog, the branch below simply never fires.
        let watchdog_period = notify::watchdog_interval().unwrap_or(Duration::from_secs(86_400));
        let mut watchdog = interval_timer(watchdog_period, Instant::now() + watchdog_period);
        let mut heartbeat = interval_timer(HEARTBEAT, Instant::now() + HEARTBEAT);
        loop {
            let next_due = self
                .next_due()
                .unwrap_or_else(|| Instant::now() + HEARTBEAT);
            tokio::select! {
                _ = self.ticker.tick() => {
                    self.read_overrides();
                    self.handle_all(|| Event::Tick).await;
                }
                Some(read) = self.keeping.reading_overrides.join_next() => {
                    let read = read.unwrap_or_else(|error| Err(format!("the read was lost: {error}")));
                    self.handle_all(|| Event::OverridesRead(read.clone())).await;
                }
                Some((from, event)) = self.tasks.next(&self.shared.metrics) => self.handle_from(from, event).await,
                Some((from, event)) = self.writes.next(&self.shared.metrics) => self.handle_from(from, event).await,
                _ = holding::held_changed(&mut held) => self.held_changed(),
                Some(Ok((index, generation, bytes))) = self.starting.join_next() => {
                    self.snapshot_read(index, generation, bytes).await;
                }
                _ = tokio::time::sleep_until(next_due) => self.handle_all(|| Event::Due).await,
                _ = watchdog.tick() => super::feed_watchdog(&self.shared.health),
                _ = heartbeat.tick() => {
                    if !self.shared.systemd.is_ready() && self.shared.health.not_alive().is_none() {
                        let _ = notify::notify(START_EXTENSION);
                    }
                    // The backstop for a wake that was lost or rang early.
                    self.handle_all(|| Event::Boundary).await;
                    self.publish_process_ready();
                }
                _ = self.boundary_wake.notified() => self.handle_all(|| Event::Boundary).await,
                Some(config) = self.reloader.finished() => self.reloaded(config).await,
                Some(saved) = self.keeping.saving.join_next() => self.snapshot_saved(saved),
                _ = self.discovery_ticker.tick() => self.discover_all(),
                Some(joined) = self.discovering.join_next() => match joined {
                    Ok((from, found)) => self.discovered(from, found).await,
                    Err(error) => {
                        super::count_task_failure(&self.shared.metrics, "read", &error);
                        for shard in &mut self.shards {
                            shard.discovered.stopped();
                        }
                    }
                },
                Some(joined) = self.connecting.join_next() => match joined {
                    Ok((config, clients)) => self.take_in_force(config, Some(clients)).await,
                    Err(error) => super::count_task_failure(&self.shared.metrics, "reload", &error),
                },
                command = commands.recv() => match command {
                    Some(DaemonCommand::Reload) => self.reloader.start(),
                    Some(DaemonCommand::Shutdown) | None => return Exit::Shutdown,
                },
                _ = super::stepped_down(&mut self.shared.role) => return Exit::SteppedDown,
            }
            if self.reloader.again() {
                self.reloader.start();
            }
            self.shared.health.loop_turned();
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.shards
            .iter()
            .filter(|shard| shard.running())
            .filter_map(|shard| shard.core.lock().poll_timeout())
            .min()
    }

    /// A good reload: new clients first, off the loop, when the AWS settings or the
    /// budget changed.
    async fn reloaded(&mut self, config: Config) {
        let old = &self.config;
        let reconnect = config.aws != old.aws
            || config.accounts != old.accounts
            || config.shards()
                != self
                    .shards
                    .iter()
                    .map(|shard| shard.key.clone())
                    .collect::<Vec<_>>()
            || config.daemon.control_plane_budget != old.daemon.control_plane_budget
            || config.daemon.max_write_rate != old.daemon.max_write_rate;
        if !reconnect {
            self.take_in_force(config, None).await;
            return;
        }
        let aws = self.shared.aws.clone();
        let (metrics, fencing) = (self.shared.metrics.clone(), self.shared.fencing.clone());
        self.connecting.spawn(async move {
            let clients = connect(aws.as_ref(), &config, &metrics, &fencing).await;
            (config, clients)
        });
    }

    /// Takes a reloaded config in force: each shard keeps what it knows of functions
    /// it still names, and its selectors' last read is resolved again; another
    /// account or Region, or new settings of them, start the shards afresh.
    async fn take_in_force(&mut self, mut config: Config, clients: Option<ClientsByShard<A>>) {
        taken_in_force(&self.config, &config, "leader");
        let shards = config.shards();
        let interval = config.daemon.interval;
        let mut targets = std::mem::take(&mut config.targets);
        self.written = Written::of(&targets);
        if config.daemon.discovery_period != self.config.daemon.discovery_period {
            let period = config.daemon.discovery_period;
            self.discovery_ticker = interval_timer(period, Instant::now() + period);
        }
        let same_shards = config.aws == self.config.aws
            && config.accounts == self.config.accounts
            && clients.as_ref().is_none_or(|clients| {
                clients
                    .iter()
                    .map(|(key, _)| key)
                    .eq(self.shards.iter().map(|shard| &shard.key))
            });
        self.config = config;
        if let Some(held) = &self.shared.held {
            held.set_shards(shards);
        }
        if let Some(clients) = clients {
            if !same_shards {
                // Nothing known holds there: the shards start afresh, and are decided
                // once their first pass reads the metrics.
                self.discovering.abort_all();
                self.start_shards(clients, targets, false).await;
                self.ticker = interval_timer(interval, Instant::now());
                return;
            }
            // The same accounts and Regions with a new budget: what is known stays.
            for (shard, (_, clients)) in self.shards.iter_mut().zip(clients) {
                shard.clients = clients;
            }
        }
        for index in 0..self.shards.len() {
            let key = self.shards[index].key.clone();
            let (own, rest) = targets.into_iter().partition(|target| target.shard == key);
            targets = rest;
            if self.shards[index].running() {
                self.resolve(index, Some(own)).await;
            } else {
                self.shards[index].pending = own;
            }
        }
        // The selectors may have changed: what they find is read again now.
        self.discover_all();
        crate::trim::release_free_memory();
        // Decided at once with the new config; the next pass follows an interval later.
        self.ticker = interval_timer(interval, Instant::now() + interval);
    }

    /// SIGTERM: no new reads or decisions; writes in flight finish within the grace
    /// period.
    pub async fn shut_down(mut self) {
        let grace = self.config.daemon.shutdown_grace;
        // systemd's TimeoutStopSec need not know the configured grace: the daemon
        // asks for it, plus a margin to exit.
        self.shared
            .systemd
            .stopping(grace + Duration::from_secs(10));
        tracing::info!(
            writes_in_flight = self.writes.len(),
            grace_seconds = grace.as_secs(),
            "shutting down"
        );
        self.wakes.stop().await;
        self.tasks.abort_all();
        let metrics = self.shared.metrics.clone();
        let finish = async {
            while let Some(((index, generation), event)) = self.writes.next(&metrics).await {
                if self.shards[index].generation != generation || !self.shards[index].running() {
                    continue;
                }
                let now = self.now();
                let effects = self.shards[index].core.lock().handle(event, now);
                // Only the journal's outcomes are carried out now: nothing new starts.
                for effect in effects {
                    if let Effect::SetOutcome { .. } | Effect::Record(_) = effect {
                        self.carry_out(index, effect, now).await;
                    }
                }
            }
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            tracing::error!("writes still in flight at the end of the grace period were abandoned");
        }
        self.save_last_snapshot().await;
        self.shared.in_force.clear();
    }

    /// Lost the lease: keeps only what a standby needs. Everything else is dropped,
    /// and a dropped `JoinSet` aborts its tasks (the fence already stops any write
    /// not yet sent).
    pub fn stand_down(self) -> Standby<W> {
        tracing::warn!(
            writes_in_flight = self.writes.len(),
            "standing down: the loop stops acting"
        );
        self.shared.health.pass_ended();
        self.shared.in_force.clear();
        if let Some(events) = &self.shared.stores.events {
            events.clear();
        }
        let mut config = self.config;
        for shard in self.shards {
            if !shard.running() {
                config.targets.extend(shard.pending);
                continue;
            }
            let core = shard.core.lock();
            // Selectors' targets are found again by the next leader.
            let written = core.target_configs().into_iter();
            config
                .targets
                .extend(written.filter(|target| target.origin == Origin::Config));
        }
        Standby {
            config,
            reloader: self.reloader,
            wakes: self.wakes,
        }
    }
}

/// One read, beside the loop: Lambda's within the shard's budget, and Application
/// Auto Scaling's with the handover records.
async fn read_task<A: Connect>(
    clients: ShardClients<A>,
    lane: Lane,
    read: Read,
    records: Records<A::State>,
) -> Event {
    let control = &clients.control;
    let done = match read {
        Read::Scan {
            function,
            priority,
            writes_before,
        } => ReadDone::Scan {
            result: control.scan(&function, priority).await,
            function,
            writes_before,
        },
        Read::ReadBack(target) => ReadDone::ReadBack {
            result: control.read_back(&target).await,
            target: target.name.clone(),
        },
        Read::Refresh { function, aliases } => {
            let priority = crate::runtime::plane::budget::Priority::Refresh;
            let (reserved, weighted) = tokio::join!(control.reserved(&function), async {
                if aliases {
                    Some(control.alias_weights(&function, priority).await)
                } else {
                    None
                }
            });
            ReadDone::Refresh {
                function,
                reserved,
                weighted,
            }
        }
        Read::Account => ReadDone::Account(
            control
                .unreserved(crate::runtime::plane::budget::Priority::Refresh)
                .await,
        ),
        Read::Aas => {
            let (scalable, records) = records.read_aas(clients.scaling.as_ref()).await;
            ReadDone::Aas { scalable, records }
        }
    };
    Event::Read { lane, done }
}
