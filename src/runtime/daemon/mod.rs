//! The daemon: one event loop that keeps every target decided from what it knows,
//! and reads Lambda only within the control-plane budget.
//!
//! - Every `daemon.interval` one batched `GetMetricData` reads all metrics, and every
//!   target whose state is known is decided: no Lambda read is needed for that.
//! - Lambda is read by chores ([`chores`]): each function's configs are scanned once
//!   at start and then every `daemon.drift_scan_period` (one
//!   `ListProvisionedConcurrencyConfigs` covers its qualifiers); reserved concurrency
//!   (`GetFunction`, its own limit), alias weights and the account settings every
//!   `daemon.refresh_period`; an allocation the daemon started is read back until it
//!   settles. A scan that finds a value the daemon did not write is drift: it is
//!   logged, counted, and the target is decided again at once.
//! - Targets are also decided at their schedule boundaries (one queue, one wake armed
//!   for the earliest by the [`WakeSource`], the heartbeat as backstop), when their
//!   allocation settles, and when a retry time comes.
//! - Writes go through the actuator's `WriteState`, one in flight per function,
//!   scale-outs ahead of everything else in the budget.
//!
//! The loop never awaits AWS, the credential chain or the file system: reads, writes
//! and reloads are tasks whose results come back as loop branches, and deciding is
//! CPU only. Every task's failure (a panic included) is handled where it is joined.
//! SIGHUP reloads, SIGTERM/SIGINT stop; systemd hears READY, WATCHDOG and STOPPING.
//! The time of day comes from an injected [`Clock`] and every timer is tokio's, so the
//! whole loop runs in virtual time under test (`virtual_time.rs`).

mod chores;
mod http;
pub mod notify;
mod wake;
mod writes;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::activity::{Activity, ActivityLog, Kind, SharedJournal, TargetStatus, Trigger};
use super::actuator::{Backoff, Retry, WriteBlocked, WriteState};
use super::budget::Priority;
use super::control::Control;
use super::elect::{Elector, Role};
use super::evaluate::{self, Evaluation, SeriesByTarget};
use super::known::{Drift, Known};
use super::once::{Settled, log_change, write_priority};
use super::series;
use crate::aws::{self, AwsError, Connect, FunctionConfigs, ProvisionedConfig};
use crate::clock::Clock;
use crate::config::{self, Config, FunctionId, TargetConfig, TargetName};
use crate::leader::Fence;
use crate::metrics::{Instrumented, Metrics};
use crate::policy::{Caps, Decision, PolicyState, schedule};
use chores::{Chore, Chores, Lane};
use writes::{Held, Writes};

pub use http::Health;
pub use wake::{CronWakes, TimerWakes, WakeSource};

/// What the outside asks of a running daemon; production sends these from its signal
/// handlers. Closing the channel stops the daemon as `Shutdown` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Read the config file again (SIGHUP).
    Reload,
    /// Stop (SIGTERM, SIGINT): writes in flight get the grace period.
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the schedule timer: {0}")]
    Scheduler(String),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// The first read-back of an allocation comes this long after the write; each later
/// one waits twice as long as the one before, up to `READ_BACK_MAX`.
const READ_BACK_FIRST: Duration = Duration::from_secs(2);
const READ_BACK_MAX: Duration = Duration::from_secs(30);
/// An allocation is followed this many read-backs at most (about 15 minutes).
const READ_BACK_ATTEMPTS: u32 = 34;
/// A failed scan or refresh is tried again after one interval, and at most this long.
const READ_RETRY: Duration = Duration::from_secs(30);
/// The account settings are read at least this often.
const ACCOUNT_REFRESH: Duration = Duration::from_secs(300);
/// Sent on each heartbeat until `READY=1`: systemd's start timeout then measures a
/// stall, not the length of the first pass.
const START_EXTENSION: &str = "EXTEND_TIMEOUT_USEC=30000000";
/// How often the loop turns even when nothing happens: its heartbeat for `/healthz`.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// What the daemon remembers about one target between decisions.
#[derive(Debug, Default)]
struct TargetMemory {
    /// Whether a write may go, and what the last ones' results mean. A refusal is tied
    /// to the caps it was refused under.
    write: WriteState<Caps>,
    /// The last decision's reason label and why it was blocked, if it was: an
    /// activity is recorded when these change, not at every pass.
    last_reason: Option<&'static str>,
    last_blocked: Option<String>,
    /// The write activity whose allocation is being followed, and when it was sent.
    allocating: Option<(u64, Instant)>,
    /// What the last decision handed on, kept only for targets with a forecast (its
    /// history); the others rebuild theirs from each metric read.
    state: PolicyState,
}

/// Every target's next schedule boundary, earliest first, and the timer job armed for
/// the earliest. Boundaries at the same instant are one entry each and come due
/// together: a burst is never dropped, whatever its size.
#[derive(Default)]
struct Boundaries {
    queue: BTreeSet<(DateTime<Utc>, TargetName)>,
    by_target: HashMap<TargetName, DateTime<Utc>>,
    /// The boundary the wake source is armed for.
    armed: Option<DateTime<Utc>>,
}

impl Boundaries {
    fn set(&mut self, target: &TargetName, next: Option<DateTime<Utc>>) {
        if let Some(old) = self.by_target.remove(target) {
            self.queue.remove(&(old, target.clone()));
        }
        if let Some(next) = next {
            self.queue.insert((next, target.clone()));
            self.by_target.insert(target.clone(), next);
        }
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.by_target.clear();
    }

    /// Removes and returns the targets whose boundary is at or before `now`.
    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<TargetName> {
        let mut due = Vec::new();
        while let Some((when, _)) = self.queue.first()
            && *when <= now
        {
            let (_, target) = self.queue.pop_first().expect("the queue has a first entry");
            self.by_target.remove(&target);
            due.push(target);
        }
        due
    }

    fn earliest(&self) -> Option<DateTime<Utc>> {
        self.queue.first().map(|(when, _)| *when)
    }
}

/// A finished metric read: the start of a pass.
struct MetricsRead {
    /// `None` when the read failed or outlived the pass deadline.
    series: Option<SeriesByTarget>,
    timed_out: bool,
    duration: Duration,
}

/// A finished Lambda read.
enum ReadDone {
    Scan {
        function: FunctionId,
        /// A scan a conflict or a disagreeing read-back asked for.
        urgent: bool,
        /// The function's write count when the scan was queued.
        writes_before: u64,
        result: Result<FunctionConfigs, AwsError>,
    },
    ReadBack {
        target: TargetName,
        attempt: u32,
        result: Result<Option<ProvisionedConfig>, AwsError>,
    },
    Refresh {
        function: FunctionId,
        reserved: Result<Option<u32>, AwsError>,
        /// `None` when the function has no alias target.
        weighted: Option<Result<BTreeSet<String>, AwsError>>,
    },
    Account(Result<Option<u32>, AwsError>),
}

/// A finished write.
struct WriteDone {
    target: TargetName,
    /// The write's activity in the journal.
    activity: u64,
    /// When Lambda answered: an allocation's time to READY counts from here.
    sent: Instant,
    from: u32,
    to: u32,
    trigger: &'static str,
    caps: Caps,
    result: Result<Option<ProvisionedConfig>, AwsError>,
}

/// The AWS clients of one configuration.
struct Clients<A: Connect> {
    control: Control<Instrumented<A::Lambda>>,
    cloudwatch: Arc<Instrumented<A::Metrics>>,
}

impl<A: Connect> Clone for Clients<A> {
    fn clone(&self) -> Self {
        Self {
            control: self.control.clone(),
            cloudwatch: self.cloudwatch.clone(),
        }
    }
}

async fn connect<A: Connect>(
    aws: &A,
    config: &Config,
    metrics: &Arc<Metrics>,
    fence: &Fence,
) -> Clients<A> {
    let (lambda, cloudwatch) = aws.connect(&config.aws).await;
    Clients {
        control: Control::new(
            Instrumented {
                inner: lambda,
                metrics: metrics.clone(),
            },
            config.daemon.control_plane_budget,
            super::control::DAEMON_GET_FUNCTION_RATE,
            config,
            Some(metrics.clone()),
        )
        .fenced(fence.clone()),
        cloudwatch: Arc::new(Instrumented {
            inner: cloudwatch,
            metrics: metrics.clone(),
        }),
    }
}

/// A reload read and validated off the loop, with new clients when the AWS settings
/// or the budget changed.
struct Reloaded<A: Connect> {
    config: Config,
    clients: Option<Clients<A>>,
}

fn interval_timer(period: Duration, first: Instant) -> Interval {
    let mut timer = tokio::time::interval_at(first, period);
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    timer
}

/// Command-line settings that win over every config the daemon loads, the first and
/// each reload alike.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// `--dry-run`: no config can enable writes.
    pub dry_run: bool,
    /// `--listen`: the container image sets it, so that its probes reach the port
    /// whatever the mounted config says.
    pub listen: Option<std::net::SocketAddr>,
}

impl Overrides {
    fn apply(self, config: &mut Config) {
        config.daemon.dry_run |= self.dry_run;
        if let Some(listen) = self.listen {
            config.daemon.listen = listen;
        }
    }
}

/// What a daemon is built from besides its config. Production passes the SDK, the
/// tokio-cron-scheduler wake source and the system clock ([`run_from_file`]); tests
/// pass in-memory AWS, a tokio timer and a clock that follows virtual time.
pub struct Parts<A, W> {
    pub aws: A,
    pub wakes: W,
    pub clock: Clock,
    /// Shared with the caller, which may read what the daemon exports.
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Activities and status, for `/status` and `/activities`.
    pub journal: SharedJournal,
}

/// Where the config comes from and what wins over it.
pub struct Source {
    /// Read again on [`Command::Reload`].
    pub path: PathBuf,
    /// Already read and validated from `path`.
    pub config: Config,
    pub overrides: Overrides,
}

/// Runs the daemon until SIGTERM or SIGINT. `path` is re-read on SIGHUP.
pub async fn run_from_file(
    path: PathBuf,
    config: Config,
    overrides: Overrides,
    clock: Clock,
) -> Result<(), DaemonError> {
    let address = overrides.listen.unwrap_or(config.daemon.listen);
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| DaemonError::Listen { address, source })?;
    let (commands, inbox) = mpsc::channel(16);
    forward_signals(commands).map_err(DaemonError::Signals)?;
    let wakes = CronWakes::start().await.map_err(DaemonError::Scheduler)?;
    let parts = Parts {
        aws: aws::Sdk,
        wakes,
        clock,
        metrics: Arc::new(Metrics::new()),
        health: Arc::new(Health::new()),
        journal: SharedJournal::default(),
    };
    let source = Source {
        path,
        config,
        overrides,
    };
    run(listener, source, parts, inbox).await;
    Ok(())
}

/// Runs the daemon on `listener` until `commands` says `Shutdown` or closes (the shape
/// of mini-redis's `server::run`, with reloads on the same channel), then lets writes
/// in flight finish within the grace period.
pub async fn run<A: Connect, W: WakeSource>(
    listener: TcpListener,
    source: Source,
    parts: Parts<A, W>,
    commands: mpsc::Receiver<Command>,
) {
    let Source {
        path,
        mut config,
        overrides,
    } = source;
    overrides.apply(&mut config);
    let Parts {
        aws,
        wakes,
        clock,
        metrics,
        health,
        journal,
    } = parts;
    for target in &config.targets {
        metrics.register_target(target);
    }
    if let Some(path) = &config.daemon.activity_log {
        open_activity_log(&journal, path, config.daemon.activity_log_max_mib);
    }
    // What parsing the config took is freed by now.
    crate::trim::release_free_memory();
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(http::serve(
        listener,
        http::router(metrics.clone(), health.clone(), journal.clone()),
        async move {
            let mut stopped = http_stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
    tracing::info!(listen = %config.daemon.listen, targets = config.targets.len(), "pc-autoscaler started");

    let aws = Arc::new(aws);
    let mut commands = commands;
    let mut elector = match &config.leader {
        None => None,
        Some(settings) => {
            let identity = settings
                .identity
                .clone()
                .unwrap_or_else(super::elect::default_identity);
            tracing::info!(identity = %identity, table = %settings.table, "standing by for the leader lease");
            let backend = aws.lease(&config.aws, settings, clock).await;
            Some(Elector::start(backend, settings, identity, metrics.clone()))
        }
    };
    let shared = Shared {
        aws,
        clock,
        metrics: metrics.clone(),
        health: health.clone(),
        journal,
        fence: elector
            .as_ref()
            .map_or_else(Fence::open, |elector| elector.fence.clone()),
        role: elector.as_ref().map(|elector| elector.role.clone()),
    };
    let mut standby = Standby {
        path,
        overrides,
        config,
        wakes,
        told_systemd_ready: false,
    };
    loop {
        if let Some(elector) = &mut elector
            && !standby
                .wait_for_lease(elector, &mut commands, &metrics, &health)
                .await
        {
            break;
        }
        let clients = connect(
            shared.aws.as_ref(),
            &standby.config,
            &metrics,
            &shared.fence,
        )
        .await;
        let mut daemon = Daemon::take_over(standby, &shared, clients);
        daemon.learn_everything();
        let exit = daemon.run_loop(&mut commands).await;
        if exit == Exit::Shutdown {
            daemon.shut_down().await;
            break;
        }
        // Stepped down: everything the daemon knew or had under way is dropped; a
        // write past the fence is already on the wire, none after it is sent.
        standby = daemon.stand_down();
    }
    if let Some(elector) = elector {
        elector.release(LEASE_RELEASE_LIMIT).await;
    }
    let _ = stop_http.send(true);
    let _ = server.await;
    tracing::info!("pc-autoscaler stopped");
}

/// What every tenure of one process shares.
struct Shared<A> {
    aws: Arc<A>,
    clock: Clock,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    journal: SharedJournal,
    /// Passes writes only while this copy's lease is fresh; open without `[leader]`.
    fence: Fence,
    /// The elector's word on this copy's role; `None` without `[leader]`.
    role: Option<watch::Receiver<Role>>,
}

impl<A> Clone for Shared<A> {
    fn clone(&self) -> Self {
        Self {
            aws: self.aws.clone(),
            clock: self.clock,
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            journal: self.journal.clone(),
            fence: self.fence.clone(),
            role: self.role.clone(),
        }
    }
}

/// How long a stopping leader waits for its lease to be released.
const LEASE_RELEASE_LIMIT: Duration = Duration::from_secs(5);

/// Why the daemon loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Shutdown,
    /// The elector says this copy is no longer the leader.
    SteppedDown,
}

/// What a copy keeps while it stands by: only its config and wake source. It reads
/// nothing from Lambda or CloudWatch and writes nothing.
struct Standby<W> {
    path: PathBuf,
    overrides: Overrides,
    config: Config,
    wakes: W,
    told_systemd_ready: bool,
}

impl<W> Standby<W> {
    /// Waits until this copy holds the lease (`true`) or is told to stop (`false`).
    /// Meanwhile it answers probes, feeds the watchdog and takes reloads, so that
    /// the config in force when it takes over is the latest one.
    async fn wait_for_lease(
        &mut self,
        elector: &mut Elector,
        commands: &mut mpsc::Receiver<Command>,
        metrics: &Metrics,
        health: &Health,
    ) -> bool {
        // Ready means "able to take over": the lease store answers.
        health.pass_ended();
        if !self.told_systemd_ready {
            self.told_systemd_ready = true;
            let _ = notify::notify("READY=1");
        }
        let watchdog = notify::watchdog_interval().is_some();
        let mut heartbeat = interval_timer(HEARTBEAT, Instant::now());
        loop {
            tokio::select! {
                // The guard `wait_for` returns is dropped inside the block (it is not Send).
                elected = async { elector.role.wait_for(|role| role.is_leader()).await.is_ok() } => {
                    if elected {
                        return true;
                    }
                    // The elector task is gone: this copy can never lead again.
                    tracing::error!("the elector stopped; this copy stands by until it is stopped");
                    while let Some(command) = commands.recv().await {
                        if command == Command::Shutdown {
                            break;
                        }
                    }
                    return false;
                }
                command = commands.recv() => match command {
                    Some(Command::Reload) => self.reload(metrics).await,
                    Some(Command::Shutdown) | None => return false,
                },
                _ = heartbeat.tick() => {
                    health.set_ready(elector.reachable.load(std::sync::atomic::Ordering::Relaxed));
                    if watchdog {
                        let _ = notify::notify("WATCHDOG=1");
                    }
                }
            }
            health.loop_turned();
        }
    }

    /// A reload while standing by: validate and keep, or keep the old config.
    async fn reload(&mut self, metrics: &Metrics) {
        let _ = notify::notify("RELOADING=1");
        match read_config(self.path.clone(), self.overrides).await {
            Ok(new) => {
                take_in_force(metrics, &self.config, &new);
                self.config = new;
                metrics.config_reloads.with_label_values(&["success"]).inc();
                tracing::info!(
                    targets = self.config.targets.len(),
                    "configuration reloaded while standing by"
                );
            }
            Err(error) => {
                metrics.config_reloads.with_label_values(&["failure"]).inc();
                tracing::error!(path = %self.path.display(), error = %error, "reload failed; the previous configuration stays in force");
            }
        }
        let _ = notify::notify("READY=1");
    }
}

/// Reads and validates the config file off the runtime's threads, with the command
/// line's overrides applied: a reload, by the leader or a standby.
async fn read_config(path: PathBuf, overrides: Overrides) -> Result<Config, String> {
    let loaded = tokio::task::spawn_blocking(move || config::load(&path))
        .await
        .map_err(|error| format!("the reload task failed: {error}"))?;
    let mut config = loaded.map_err(|error| error.to_string())?;
    overrides.apply(&mut config);
    Ok(config)
}

/// Reads the history back from the activity log and starts its writer. A log that
/// cannot be opened is reported; the daemon runs on without it.
fn open_activity_log(journal: &SharedJournal, path: &std::path::Path, max_mib: u32) {
    let log = ActivityLog::new(path, u64::from(max_mib) * 1024 * 1024);
    let history = log.read_back();
    let mut journal = journal.lock();
    let restored = history.len();
    for activity in history {
        journal.restore(activity);
    }
    match log.start() {
        Ok(sink) => {
            journal.log_to(sink);
            tracing::info!(path = %path.display(), restored, "activity log opened");
        }
        Err(error) => {
            tracing::error!(path = %path.display(), error = %error, "cannot open the activity log; history is kept in memory only")
        }
    }
}

/// What a good reload changes before the new config takes over, leader or standby:
/// the per-target series, and a word on settings only a restart applies. Returns the
/// targets that are gone.
fn take_in_force(metrics: &Metrics, old: &Config, new: &Config) -> Vec<TargetName> {
    let mut removed = Vec::new();
    for target in &old.targets {
        let kept = new
            .targets
            .iter()
            .find(|candidate| candidate.name == target.name);
        metrics.forget_removed(target, kept);
        if kept.is_none() {
            removed.push(target.name.clone());
        }
    }
    for target in &new.targets {
        metrics.register_target(target);
    }
    if new.daemon.listen != old.daemon.listen {
        tracing::warn!(listen = %new.daemon.listen, "a new listen address takes effect at the next restart");
    }
    if new.leader != old.leader {
        tracing::warn!("a new [leader] section takes effect at the next restart");
    }
    if new.daemon.activity_log != old.daemon.activity_log
        || new.daemon.activity_log_max_mib != old.daemon.activity_log_max_mib
    {
        tracing::warn!("a new activity log takes effect at the next restart");
    }
    removed
}

/// Resolves when `role` says this copy no longer leads; never without an election.
async fn stepped_down(role: &mut Option<watch::Receiver<Role>>) {
    match role {
        // A closed channel means the elector is gone: no lease, no writes.
        Some(role) => {
            let _ = role.wait_for(|role| !role.is_leader()).await;
        }
        None => std::future::pending().await,
    }
}

/// Indices into `config.targets` by function, in config order.
fn by_function(config: &Config) -> HashMap<FunctionId, Vec<usize>> {
    let mut index: HashMap<FunctionId, Vec<usize>> = HashMap::new();
    for (position, target) in config.targets.iter().enumerate() {
        index
            .entry(target.function.clone())
            .or_default()
            .push(position);
    }
    index
}

/// SIGHUP → reload; SIGTERM and SIGINT → shutdown. The handlers only send commands.
fn forward_signals(commands: mpsc::Sender<Command>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let command = tokio::select! {
                _ = hangup.recv() => Command::Reload,
                _ = terminate.recv() => Command::Shutdown,
                _ = interrupt.recv() => Command::Shutdown,
            };
            if commands.send(command).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

struct Daemon<A: Connect, W> {
    path: PathBuf,
    overrides: Overrides,
    config: Arc<Config>,
    /// Indices into `config.targets` by function.
    by_function: HashMap<FunctionId, Vec<usize>>,
    /// What every tenure shares: AWS (connected anew when a reload changes its
    /// settings or the budget), the clock, what HTTP reads, the fence and the role.
    shared: Shared<A>,
    clients: Clients<A>,
    /// Metric reads and full decisions, every `daemon.interval`.
    ticker: Interval,
    /// Notified by the wake source at the earliest boundary.
    boundary_wake: Arc<Notify>,
    wakes: W,
    boundaries: Boundaries,
    known: Known,
    /// The last metric read, by target; `None` until the first one ended.
    series: Option<SeriesByTarget>,
    memory: HashMap<TargetName, TargetMemory>,
    /// How many writes to each function have ended: a scan queued before the last
    /// one ended may predate it. A count, not a time: two events can share an instant.
    writes_ended: HashMap<FunctionId, u64>,
    chores: Chores,
    reads: JoinSet<ReadDone>,
    /// The lane each read in `reads` was taken from, to free its room when it ends.
    read_lanes: HashMap<tokio::task::Id, Lane>,
    /// Lambda reads that succeeded and failed since the last pass ended.
    reads_ok: u32,
    reads_failed: u32,
    /// Writes in flight, at most one per function; waited for at shutdown.
    writes: Writes<WriteDone>,
    /// Retry timers, each ending with the target to decide again; dropped at shutdown.
    watches: JoinSet<TargetName>,
    /// The metric read of the pass under way, if any (at most one).
    pass: JoinSet<MetricsRead>,
    /// A reload asked for a pass while one was under way: start one when it ends.
    pass_again: bool,
    /// What the pass under way was started by: the interval or a reload.
    pass_trigger: Trigger,
    reloads: JoinSet<Result<Reloaded<A>, String>>,
    /// A SIGHUP came while a reload was under way: reload again when it ends.
    reload_again: bool,
    /// Passes in a row that informed no target.
    uninformed_passes: u32,
    told_systemd_ready: bool,
    /// Every target's state is known (until the next reload).
    all_known: bool,
    /// Forecasting targets whose metric history is still to be read, a call at a time.
    /// Names only: a copy of 5,000 targets' configs would be megabytes.
    history_queue: VecDeque<TargetName>,
    history: JoinSet<Vec<(TargetName, PolicyState)>>,
    /// Targets whose history has been asked for, so a reload does not ask again.
    history_asked: HashSet<TargetName>,
}

impl<A: Connect, W: WakeSource> Daemon<A, W> {
    /// A daemon that starts acting with nothing known, from what a standby kept.
    fn take_over(standby: Standby<W>, shared: &Shared<A>, clients: Clients<A>) -> Self {
        let interval = standby.config.daemon.interval;
        Daemon {
            path: standby.path,
            overrides: standby.overrides,
            by_function: by_function(&standby.config),
            config: Arc::new(standby.config),
            shared: shared.clone(),
            clients,
            ticker: interval_timer(interval, Instant::now()),
            boundary_wake: Arc::default(),
            wakes: standby.wakes,
            boundaries: Boundaries::default(),
            known: Known::default(),
            series: None,
            memory: HashMap::new(),
            writes_ended: HashMap::new(),
            chores: Chores::default(),
            reads: JoinSet::new(),
            read_lanes: HashMap::new(),
            reads_ok: 0,
            reads_failed: 0,
            writes: Writes::default(),
            watches: JoinSet::new(),
            pass: JoinSet::new(),
            pass_again: false,
            pass_trigger: Trigger::Interval,
            reloads: JoinSet::new(),
            reload_again: false,
            uninformed_passes: 0,
            told_systemd_ready: standby.told_systemd_ready,
            all_known: false,
            history_queue: VecDeque::new(),
            history: JoinSet::new(),
            history_asked: HashSet::new(),
        }
    }

    async fn run_loop(&mut self, commands: &mut mpsc::Receiver<Command>) -> Exit {
        // Without a systemd watchdog, the branch below simply never fires.
        let watchdog_period = notify::watchdog_interval().unwrap_or(Duration::from_secs(86_400));
        let mut watchdog = interval_timer(watchdog_period, Instant::now() + watchdog_period);
        let mut heartbeat = interval_timer(HEARTBEAT, Instant::now() + HEARTBEAT);
        self.schedule_all_boundaries().await;
        loop {
            let next_chore = self
                .chores
                .next_due()
                .unwrap_or_else(|| Instant::now() + HEARTBEAT);
            tokio::select! {
                _ = self.ticker.tick() => self.start_pass(Trigger::Interval),
                Some(joined) = self.pass.join_next() => match joined {
                    Ok(read) => self.pass_done(read),
                    Err(error) => {
                        self.count_task_failure("evaluation", &error);
                        self.full_pass_ended("failed");
                    }
                },
                _ = tokio::time::sleep_until(next_chore) => self.start_due_chores(),
                Some(joined) = self.reads.join_next_with_id() => {
                    let id = match &joined {
                        Ok((id, _)) => *id,
                        Err(error) => error.id(),
                    };
                    if let Some(lane) = self.read_lanes.remove(&id) {
                        self.chores.finished(lane);
                    }
                    match joined {
                        Ok((_, done)) => self.read_done(done),
                        // The chore is lost with its task; the drift scan period
                        // brings the function back.
                        Err(error) => self.count_task_failure("read", &error),
                    }
                }
                _ = watchdog.tick() => {
                    // Fed only while the loop makes progress and no pass is overdue:
                    // systemd restarts a daemon that is stuck, not one that is busy.
                    match self.shared.health.not_alive() {
                        None => { let _ = notify::notify("WATCHDOG=1"); }
                        Some(why) => tracing::error!(why = why.trim_end(), "not feeding the systemd watchdog"),
                    }
                }
                _ = heartbeat.tick() => {
                    if !self.told_systemd_ready && self.shared.health.not_alive().is_none() {
                        let _ = notify::notify(START_EXTENSION);
                    }
                    // The backstop for a timer job that was lost or fired early.
                    self.fire_due_boundaries().await;
                }
                Some((held, joined)) = self.writes.join_next() => match joined {
                    Ok(done) => self.write_done(done),
                    Err(error) => self.write_failed(held, error),
                },
                Some(joined) = self.watches.join_next() => match joined {
                    Ok(target) => self.decide(&[target], Trigger::Retry),
                    Err(error) => if error.is_panic() {
                        self.count_task_failure("watch", &error);
                    }
                },
                _ = self.boundary_wake.notified() => self.fire_due_boundaries().await,
                Some(joined) = self.reloads.join_next() => match joined {
                    Ok(outcome) => self.reload_done(outcome).await,
                    Err(error) => {
                        self.count_task_failure("reload", &error);
                        self.reload_done(Err(format!("the reload task failed: {error}"))).await;
                    }
                },
                command = commands.recv() => match command {
                    Some(Command::Reload) => self.start_reload(),
                    Some(Command::Shutdown) | None => return Exit::Shutdown,
                },
                Some(joined) = self.history.join_next() => match joined {
                    Ok(states) => self.history_read(states),
                    Err(error) => {
                        self.count_task_failure("read", &error);
                        self.read_next_history();
                    }
                },
                _ = stepped_down(&mut self.shared.role) => {
                    // A standby reads nothing: what this copy had still to read, it never will.
                    self.shared.metrics.forecast_history_pending.set(0);
                    return Exit::SteppedDown;
                }
            }
            self.shared.health.loop_turned();
        }
    }

    fn count_task_failure(&self, task: &'static str, error: &tokio::task::JoinError) {
        tracing::error!(task, error = %error, "a background task failed");
        self.shared
            .metrics
            .task_failures
            .with_label_values(&[task])
            .inc();
    }

    fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.config
            .targets
            .iter()
            .find(|target| target.name == name)
    }

    /// Queues the first read of every function not known yet, and the account.
    fn learn_everything(&mut self) {
        let now = Instant::now();
        for function in super::once::functions(&self.config.targets) {
            if self.known.function(&function).is_none() {
                self.chores
                    .queue(Chore::Refresh(function.clone()), now, false);
                self.chores.queue(Chore::Scan(function), now, false);
            }
        }
        self.chores.queue(Chore::Account, now, false);
        self.all_known = false;
        self.count_unknown();
        for target in &self.config.targets {
            if target.keeps_history() && self.history_asked.insert(target.name.clone()) {
                self.history_queue.push_back(target.name.clone());
            }
        }
        self.read_next_history();
    }

    /// Starts the next history read unless one is under way: one `GetMetricData` of
    /// 14 days for a few targets at a time, off the loop, outside Lambda's budget.
    fn read_next_history(&mut self) {
        if !self.history.is_empty() {
            return;
        }
        if self.history_queue.is_empty() {
            self.count_history_pending(0);
            return;
        }
        let count = self
            .history_queue
            .len()
            .min(series::HISTORY_TARGETS_PER_CALL);
        let names: Vec<TargetName> = self.history_queue.drain(..count).collect();
        // A target a reload removed meanwhile is left out.
        let targets: Vec<TargetConfig> = names
            .iter()
            .filter_map(|name| self.target(name).cloned())
            .collect();
        let cloudwatch = self.clients.cloudwatch.clone();
        let now = self.shared.clock.now();
        self.history
            .spawn(async move { series::history(cloudwatch.as_ref(), &targets, now).await });
        self.count_history_pending(count);
    }

    /// Exports how many forecasting targets still wait for their history: the queue and
    /// the read under way.
    fn count_history_pending(&self, reading: usize) {
        let pending = self.history_queue.len() + reading;
        self.shared
            .metrics
            .forecast_history_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// A history read ended: each target's forecast starts from it.
    fn history_read(&mut self, states: Vec<(TargetName, PolicyState)>) {
        for (name, state) in states {
            if self.target(&name).is_some() {
                self.memory.entry(name).or_default().state = state.demand_only();
            }
        }
        self.read_next_history();
    }

    /// Exports how many targets are still unknown. Once every one is known, only a
    /// reload can make one unknown again: the count (a walk over every target) stops
    /// until then.
    fn count_unknown(&mut self) {
        if self.all_known {
            return;
        }
        let unknown = self
            .config
            .targets
            .iter()
            .filter(|target| self.known.config(target).is_none())
            .count();
        self.shared.metrics.targets_unknown.set(unknown as i64);
        self.all_known = unknown == 0;
    }

    /// Starts every chore that is due, within its lane's room.
    fn start_due_chores(&mut self) {
        for (chore, lane) in self.chores.take_due(Instant::now()) {
            match self.start_chore(chore, lane == Lane::Urgent) {
                Some(task) => {
                    self.read_lanes.insert(task.id(), lane);
                }
                None => self.chores.finished(lane),
            }
        }
    }

    /// Starts the read a chore calls for; `None` when there is nothing to read any
    /// more (its target is gone).
    fn start_chore(&mut self, chore: Chore, urgent: bool) -> Option<AbortHandle> {
        let control = self.clients.control.clone();
        Some(match chore {
            Chore::Scan(function) => {
                let priority = if urgent {
                    Priority::ReadBack
                } else {
                    Priority::DriftScan
                };
                let writes_before = self.writes_ended.get(&function).copied().unwrap_or(0);
                self.reads.spawn(async move {
                    let result = control.scan(&function, priority).await;
                    ReadDone::Scan {
                        function,
                        urgent,
                        writes_before,
                        result,
                    }
                })
            }
            Chore::ReadBack { target, attempt } => {
                let config = self.target(&target).cloned()?;
                self.reads.spawn(async move {
                    let result = control.read_back(&config).await;
                    ReadDone::ReadBack {
                        target,
                        attempt,
                        result,
                    }
                })
            }
            Chore::Refresh(function) => {
                let has_alias = self.targets_of(&function).any(TargetConfig::is_alias);
                self.reads.spawn(async move {
                    let (reserved, weighted) = tokio::join!(control.reserved(&function), async {
                        if has_alias {
                            Some(control.alias_weights(&function, Priority::Refresh).await)
                        } else {
                            None
                        }
                    });
                    ReadDone::Refresh {
                        function,
                        reserved,
                        weighted,
                    }
                })
            }
            Chore::Account => self.reads.spawn(async move {
                ReadDone::Account(control.unreserved(Priority::Refresh).await)
            }),
        })
    }

    fn count_read<T>(&mut self, result: &Result<T, AwsError>) {
        if result.is_ok() {
            self.reads_ok += 1;
        } else {
            self.reads_failed += 1;
        }
    }

    fn is_managed(&self, function: &FunctionId) -> bool {
        self.by_function.contains_key(function)
    }

    /// The targets of `function`, in config order.
    fn targets_of(&self, function: &FunctionId) -> impl Iterator<Item = &TargetConfig> {
        self.by_function
            .get(function)
            .into_iter()
            .flatten()
            .map(|index| &self.config.targets[*index])
    }

    /// Takes `config` into force, with its index of targets by function.
    fn set_config(&mut self, config: Config) {
        self.by_function = by_function(&config);
        self.config = Arc::new(config);
    }

    fn read_done(&mut self, done: ReadDone) {
        let now = Instant::now();
        let settings = self.config.daemon.clone();
        match done {
            ReadDone::Scan {
                function,
                urgent,
                writes_before,
                result,
            } => {
                self.count_read(&result);
                if !self.is_managed(&function) {
                    return;
                }
                self.chores.queue(
                    Chore::Scan(function.clone()),
                    now + settings.drift_scan_period,
                    false,
                );
                match result {
                    Ok(configs) => self.scanned(&function, configs, writes_before, urgent),
                    Err(error) => {
                        tracing::warn!(function = %function.name, error = %error, outcome = error.label(), "drift scan failed; it is tried again");
                        self.known.scan_failed(&function, error.to_string());
                        let retry = settings.interval.min(READ_RETRY);
                        self.chores.queue(Chore::Scan(function), now + retry, false);
                    }
                }
                self.count_unknown();
            }
            ReadDone::ReadBack {
                target,
                attempt,
                result,
            } => {
                self.count_read(&result);
                let Some(config) = self.target(&target).cloned() else {
                    return;
                };
                let settled = Settled::of(&result);
                match result {
                    Ok(found) => {
                        if let Some(drift) = self.known.read_back(&config, found) {
                            self.drifted(&config, &drift, "read_back");
                            self.chores
                                .queue(Chore::Scan(config.function.clone()), now, true);
                            return;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(target = %target, error = %error, "status read failed while an allocation is in progress")
                    }
                }
                if matches!(settled, Settled::InProgress | Settled::Unknown) {
                    self.read_back_later(&target, attempt + 1);
                } else {
                    self.settled(&config);
                    self.decide(&[target], Trigger::Settle);
                }
            }
            ReadDone::Refresh {
                function,
                reserved,
                weighted,
            } => {
                if !self.is_managed(&function) {
                    return;
                }
                match reserved {
                    Ok(reserved) => self.known.set_reserved(&function, reserved),
                    Err(error) => {
                        tracing::warn!(function = %function.name, error = %error, "reserved concurrency read failed; its cap is unknown")
                    }
                }
                if let Some(weighted) = weighted {
                    self.count_read(&weighted);
                    match weighted {
                        Ok(weighted) => self.known.set_weighted(&function, weighted),
                        Err(error) => {
                            tracing::warn!(function = %function.name, error = %error, "alias weights read failed")
                        }
                    }
                }
                self.chores.queue(
                    Chore::Refresh(function),
                    now + settings.refresh_period,
                    false,
                );
            }
            ReadDone::Account(result) => {
                self.count_read(&result);
                match result {
                    Ok(unreserved) => self.known.set_unreserved(unreserved),
                    Err(error) => {
                        tracing::warn!(error = %error, "account settings read failed; the account cap stays as last read")
                    }
                }
                let period = settings.refresh_period.min(ACCOUNT_REFRESH);
                self.chores.queue(Chore::Account, now + period, false);
            }
        }
    }

    /// A scan's answer: records it, reports drift, follows allocations in progress,
    /// and decides the function's targets that it changed or first made known (all of
    /// them after an urgent scan: it was asked for to decide again).
    fn scanned(
        &mut self,
        function: &FunctionId,
        configs: FunctionConfigs,
        writes_before: u64,
        urgent: bool,
    ) {
        let wrote_since = self.writes_ended.get(function).copied().unwrap_or(0) != writes_before;
        if self.writes.busy(&function.name) || wrote_since {
            // The scan may predate a write: its answer is not news. The write's own
            // answer and read-backs keep the cache right; the next scan checks.
            return;
        }
        let first = self
            .known
            .function(function)
            .is_none_or(|facts| facts.configs.is_none());
        let targets: Vec<TargetConfig> = self.targets_of(function).cloned().collect();
        let drift = self.known.scanned(function, configs);
        let mut decide = Vec::new();
        let mut drifted = Vec::new();
        for target in &targets {
            self.settled(target);
            let to_decide = if let Some(drift) = drift
                .iter()
                .find(|drift| drift.qualifier == target.qualifier.as_str())
            {
                self.drifted(target, drift, "scan");
                &mut drifted
            } else if first || urgent {
                &mut decide
            } else {
                continue;
            };
            to_decide.push(target.name.clone());
            let in_progress =
                self.known.config(target).flatten().is_some_and(|config| {
                    config.status == crate::policy::AllocationStatus::InProgress
                });
            if in_progress {
                self.read_back_later(&target.name, 0);
            }
        }
        self.decide(&decide, Trigger::Scan);
        self.decide(&drifted, Trigger::Drift);
    }

    /// Someone else changed a target's capacity: log and count it. The caller decides
    /// the target again; cooldowns count from the foreign write's `LastModified`.
    fn drifted(&mut self, target: &TargetConfig, drift: &Drift, found_by: &'static str) {
        tracing::warn!(
            target = %target.name,
            known = ?drift.known,
            found = ?drift.found,
            found_by,
            "drift: the capacity was changed by someone else"
        );
        self.shared.metrics.targets.count_drift(&target.name);
        self.record(
            &target.name,
            Kind::Drift,
            (drift.known, drift.found),
            format!(
                "changed by someone else; found by {}",
                found_by.replace('_', " ")
            ),
            Trigger::Drift,
            "decided again".into(),
        );
        // A refusal or backoff was about the old state; the demand history was not.
        if let Some(memory) = self.memory.get_mut(&target.name) {
            *memory = TargetMemory {
                state: std::mem::take(&mut memory.state),
                ..TargetMemory::default()
            };
        }
    }

    /// Records an activity now, at this copy's epoch; returns its id.
    fn record(
        &self,
        target: &TargetName,
        kind: Kind,
        (from, to): (Option<u32>, Option<u32>),
        reason: String,
        trigger: Trigger,
        outcome: String,
    ) -> u64 {
        self.shared.journal.lock().record(Activity {
            id: 0,
            time: self.shared.clock.now(),
            target: target.to_string(),
            kind,
            from,
            to,
            reason,
            trigger,
            outcome,
            epoch: self.shared.fence.epoch(),
        })
    }

    /// Gives a followed allocation its outcome once the known config has settled.
    fn settled(&mut self, target: &TargetConfig) {
        let Some(memory) = self.memory.get_mut(&target.name) else {
            return;
        };
        let Some((activity, sent)) = memory.allocating else {
            return;
        };
        let outcome = match self.known.config(target) {
            Some(Some(config)) => match config.status {
                crate::policy::AllocationStatus::InProgress => return,
                crate::policy::AllocationStatus::None => "deleted".to_owned(),
                crate::policy::AllocationStatus::Ready => {
                    format!("READY after {} s", sent.elapsed().as_secs())
                }
                crate::policy::AllocationStatus::Failed => format!(
                    "FAILED: {}",
                    config.status_reason.as_deref().unwrap_or("no reason given")
                ),
            },
            Some(None) => "deleted".to_owned(),
            None => return,
        };
        memory.allocating = None;
        self.shared
            .journal
            .lock()
            .set_outcome(&target.name, activity, outcome);
    }

    fn read_back_later(&mut self, target: &TargetName, attempt: u32) {
        if attempt >= READ_BACK_ATTEMPTS {
            tracing::warn!(
                target = %target,
                "allocation still in progress after the last read-back; the drift scan follows it"
            );
            return;
        }
        let wait = READ_BACK_FIRST
            .saturating_mul(2u32.saturating_pow(attempt.min(8)))
            .min(READ_BACK_MAX);
        self.chores.queue(
            Chore::ReadBack {
                target: target.clone(),
                attempt,
            },
            Instant::now() + wait,
            true,
        );
    }

    /// Starts the metric read of a pass over every target, unless one is under way.
    fn start_pass(&mut self, trigger: Trigger) {
        if !self.pass.is_empty() {
            return;
        }
        self.pass_trigger = trigger;
        let deadline = self.config.daemon.pass_deadline();
        let cloudwatch = self.clients.cloudwatch.clone();
        let targets = self.config.targets.clone();
        let now = self.shared.clock.now();
        self.pass.spawn(async move {
            let started = Instant::now();
            let read =
                tokio::time::timeout(deadline, series::fetch(cloudwatch.as_ref(), &targets, now))
                    .await;
            MetricsRead {
                timed_out: read.is_err(),
                series: read.ok().flatten(),
                duration: started.elapsed(),
            }
        });
        self.shared.health.pass_started(deadline);
    }

    /// A pass: every known target decided on the new metrics.
    fn pass_done(&mut self, read: MetricsRead) {
        if read.timed_out {
            tracing::error!(
                deadline_seconds = self.config.daemon.pass_deadline().as_secs(),
                "a metric read outlived the pass deadline and was abandoned"
            );
            self.full_pass_ended("timed_out");
            return;
        }
        let metrics_read = read.series.is_some();
        // A failed read leaves no series: tracked targets then hold, as unreadable.
        self.series = Some(read.series.unwrap_or_default());
        self.decide_where(|_| true, self.pass_trigger);
        self.shared
            .metrics
            .evaluation_duration
            .observe(read.duration.as_secs_f64());
        let lambda_unreadable = self.reads_failed > 0 && self.reads_ok == 0;
        let informed = self.config.targets.is_empty() || (metrics_read && !lambda_unreadable);
        if informed {
            self.shared
                .metrics
                .last_successful_evaluation
                .set(self.shared.clock.now().timestamp_millis() as f64 / 1000.0);
        }
        self.full_pass_ended(if informed { "informed" } else { "uninformed" });
    }

    /// The bookkeeping of every pass, however it ended: readiness, the first
    /// `READY=1`, and a pass a reload asked for meanwhile.
    fn full_pass_ended(&mut self, outcome: &'static str) {
        self.reads_ok = 0;
        self.reads_failed = 0;
        self.shared.health.pass_ended();
        self.shared
            .metrics
            .passes
            .with_label_values(&[outcome])
            .inc();
        self.shared
            .metrics
            .last_evaluation
            .set(self.shared.clock.now().timestamp_millis() as f64 / 1000.0);
        if outcome == "informed" {
            self.uninformed_passes = 0;
            self.shared.health.set_ready(true);
        } else {
            self.uninformed_passes += 1;
            tracing::warn!(
                outcome,
                passes_in_a_row = self.uninformed_passes,
                "a pass informed no target"
            );
            if self.uninformed_passes >= http::UNREADY_AFTER_PASSES {
                self.shared.health.set_ready(false);
            }
        }
        // Ready means: the first metric read is done, and every target whose state is
        // known has been decided. Targets still unknown are read at the budget's pace
        // (`pc_autoscaler_targets_unknown`); start-up does not wait for them.
        if !self.told_systemd_ready {
            self.told_systemd_ready = true;
            let _ = notify::notify("READY=1");
        }
        if std::mem::take(&mut self.pass_again) {
            self.start_pass(Trigger::Reload);
        }
    }

    /// Decides the named targets from what is known and starts the writes they call
    /// for.
    fn decide(&mut self, names: &[TargetName], trigger: Trigger) {
        if names.is_empty() {
            return;
        }
        let names: HashSet<&TargetName> = names.iter().collect();
        self.decide_where(|target| names.contains(&target.name), trigger);
    }

    /// Decides every target `wanted` picks, in config order (one pass, whatever the
    /// number of targets), carrying out each decision before the next is made. A
    /// tracked target waits for the first metric read.
    fn decide_where(&mut self, wanted: impl Fn(&TargetConfig) -> bool, trigger: Trigger) {
        let now = self.shared.clock.now();
        let metrics_read = self.series.is_some();
        let config = Arc::clone(&self.config);
        let mut pass = evaluate::Pass::new(&self.known, config.daemon.account_reserve);
        for target in config
            .targets
            .iter()
            .filter(|target| wanted(target))
            .filter(|target| metrics_read || target.tracking.is_none())
        {
            let series = self
                .series
                .as_ref()
                .and_then(|series| series.get(&target.name));
            let previous = self.memory.get(&target.name).map(|memory| &memory.state);
            let evaluation = pass.evaluate(target, &self.known, series, previous, now);
            self.carry_out(evaluation, trigger, now);
        }
    }

    /// Records one target's evaluation and starts the write it calls for.
    fn carry_out(&mut self, mut evaluation: Evaluation, trigger: Trigger, now: DateTime<Utc>) {
        // The forecast's demand history lives in the state each decision hands on:
        // kept for the next pass, or the history would end where the read at start did.
        // The window is rebuilt from each metric read, as other targets' whole state is,
        // and nothing else reads the state.
        if let Ok(evaluated) = &mut evaluation.outcome {
            let state = std::mem::take(&mut evaluated.decision.state);
            if evaluation.target.keeps_history() {
                self.memory
                    .entry(evaluation.target.name.clone())
                    .or_default()
                    .state = state.demand_only();
            }
        }
        let evaluation = &evaluation;
        let target = &evaluation.target;
        let evaluated = match &evaluation.outcome {
            Ok(evaluated) => evaluated,
            // Not read yet is where every target starts, not a block worth a record.
            Err(evaluate::Blocked::NotReadYet) => return,
            Err(blocked) => {
                self.note_blocked(target, Some(blocked.to_string()), None, trigger);
                return;
            }
        };
        self.shared.metrics.record_evaluation(evaluation);
        let from = evaluated.observation.requested;
        let to = evaluated.decision.desired;
        let caps = evaluated.observation.caps;
        let reason = &evaluated.decision.reason;
        let memory = self.memory.entry(target.name.clone()).or_default();
        let was_held = memory
            .last_reason
            .is_some_and(|label| label.starts_with("held"));
        memory.last_reason = Some(reason.label());
        if reason.label().starts_with("held") && !was_held {
            self.record(
                &target.name,
                Kind::Hold,
                (Some(from), Some(from)),
                reason.to_string(),
                trigger,
                "capacity held".into(),
            );
        }
        let memory = self.memory.entry(target.name.clone()).or_default();
        let blocked = if to == from {
            memory.write.nothing_to_write();
            None
        } else if self.config.daemon.dry_run
            || self.writes.busy(&target.function.name)
            || !memory.write.may_write(to, &caps, Instant::now())
        {
            memory.write.blocked()
        } else {
            let activity = self.record(
                &target.name,
                Kind::Write,
                (Some(from), Some(to)),
                reason.to_string(),
                trigger,
                "sent".into(),
            );
            self.writes.spawn(
                Held {
                    target: target.name.clone(),
                    function: target.function.name.clone(),
                },
                write(
                    self.clients.control.clone(),
                    self.shared.fence.epoch(),
                    activity,
                    target.clone(),
                    (from, to),
                    caps,
                    evaluated.decision.clone(),
                ),
            );
            None
        };
        self.shared.metrics.set_write_blocked(&target.name, blocked);
        let blocked_text = blocked.map(|blocked| match blocked {
            WriteBlocked::Refused => {
                "refused: Lambda refused the value; it is not sent again for a while".to_owned()
            }
            WriteBlocked::Failing => {
                "failing: writes keep failing; retried with capped backoff".to_owned()
            }
        });
        self.note_blocked(target, blocked_text.clone(), Some((from, to)), trigger);
        self.shared
            .journal
            .lock()
            .set_status(status_of(evaluation, evaluated, blocked_text, now));
    }

    /// Records a block when it starts or changes (not at every pass), and its end in
    /// the target's memory.
    fn note_blocked(
        &mut self,
        target: &TargetConfig,
        blocked: Option<String>,
        change: Option<(u32, u32)>,
        trigger: Trigger,
    ) {
        let memory = self.memory.entry(target.name.clone()).or_default();
        if memory.last_blocked == blocked {
            return;
        }
        memory.last_blocked = blocked.clone();
        let Some(why) = blocked else {
            return;
        };
        let (from, to) = change.map_or((None, None), |(from, to)| (Some(from), Some(to)));
        self.record(
            &target.name,
            Kind::Blocked,
            (from, to),
            why,
            trigger,
            "not written".into(),
        );
    }

    /// A write task that panicked or was aborted: its function is already released;
    /// the function is scanned again and the target decided from what it finds.
    fn write_failed(&mut self, held: Held, error: tokio::task::JoinError) {
        self.count_task_failure("write", &error);
        tracing::error!(target = %held.target, "the write task failed; the function is read again");
        if let Some(target) = self.target(&held.target).cloned() {
            self.chores
                .queue(Chore::Scan(target.function), Instant::now(), true);
        }
    }

    fn write_done(&mut self, done: WriteDone) {
        // A target removed by a reload while its write was in flight needs nothing more.
        let Some(target) = self.target(&done.target).cloned() else {
            return;
        };
        *self
            .writes_ended
            .entry(target.function.clone())
            .or_default() += 1;
        let memory = self.memory.entry(done.target.clone()).or_default();
        let backoff = Backoff::default();
        let retry = memory.write.on_result(
            done.result.as_ref().map(|_| ()),
            done.to,
            done.caps,
            &backoff,
            Instant::now(),
            fastrand::f64(),
        );
        self.shared
            .metrics
            .set_write_blocked(&done.target, memory.write.blocked());
        let error = match done.result {
            Ok(config) => {
                self.shared.metrics.targets.count_scaling_action(
                    &done.target,
                    done.to > done.from,
                    done.trigger,
                );
                let allocating = config.is_some();
                self.known.wrote(&target, config);
                if let Some(memory) = self.memory.get_mut(&done.target) {
                    memory.allocating = Some((done.activity, done.sent));
                }
                self.shared.journal.lock().set_outcome(
                    &done.target,
                    done.activity,
                    if allocating { "IN_PROGRESS" } else { "deleted" }.into(),
                );
                self.settled(&target);
                if allocating {
                    self.read_back_later(&done.target, 0);
                }
                return;
            }
            Err(error) => error,
        };
        self.shared
            .journal
            .lock()
            .set_outcome(&done.target, done.activity, write_failure(&error));
        tracing::warn!(target = %done.target, to = done.to, epoch = self.shared.fence.epoch(), error = %error, outcome = error.label(), retry = ?retry, "write failed");
        match retry {
            Some(Retry::After(wait)) => self.decide_after(&done.target, wait),
            // Something else is in progress on the function: what is there now is
            // not what is known. Read it, then decide again.
            Some(Retry::WhenSettled) => {
                self.chores
                    .queue(Chore::Scan(target.function), Instant::now(), true)
            }
            // The next decision after the refusal's memory or the cap tries again;
            // a timer makes sure of it even with a long interval.
            Some(Retry::Never) => self.decide_after(&done.target, super::actuator::REFUSAL_MEMORY),
            Some(Retry::GiveUp) => self.decide_after(&done.target, backoff.cap),
            None => {}
        }
    }

    /// Decides `target` again after `wait`.
    fn decide_after(&mut self, target: &TargetName, wait: Duration) {
        let name = target.clone();
        self.watches.spawn(async move {
            tokio::time::sleep(wait).await;
            name
        });
    }

    async fn schedule_all_boundaries(&mut self) {
        self.boundaries.clear();
        let now = self.shared.clock.now();
        for target in self.config.targets.iter() {
            self.boundaries
                .set(&target.name, schedule::next_boundary(target, now));
        }
        self.arm_boundary_timer().await;
    }

    /// Decides every target whose boundary has come and queues its next one.
    async fn fire_due_boundaries(&mut self) {
        let now = self.shared.clock.now();
        let due = self.boundaries.take_due(now);
        for name in &due {
            tracing::debug!(target = %name, "schedule boundary");
            let next = self
                .target(name)
                .and_then(|target| schedule::next_boundary(target, now));
            self.boundaries.set(name, next);
        }
        self.decide(&due, Trigger::Boundary);
        self.arm_boundary_timer().await;
    }

    /// Keeps one wake armed for the earliest boundary; re-arms only when the earliest
    /// changed.
    async fn arm_boundary_timer(&mut self) {
        let earliest = self.boundaries.earliest();
        if self.boundaries.armed == earliest {
            return;
        }
        self.boundaries.armed = None;
        let Some(when) = earliest else {
            return;
        };
        let delay = (when - self.shared.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        match self.wakes.arm(delay, self.boundary_wake.clone()).await {
            Ok(()) => self.boundaries.armed = Some(when),
            // The heartbeat still finds the boundary within a second.
            Err(error) => tracing::error!(error = %error, "cannot arm the schedule boundary timer"),
        }
    }

    /// SIGHUP: read and validate the file, and connect anew if the AWS settings or
    /// the budget changed, all off the loop.
    fn start_reload(&mut self) {
        let _ = notify::notify("RELOADING=1");
        if !self.reloads.is_empty() {
            self.reload_again = true;
            return;
        }
        let path = self.path.clone();
        let old = self.config.clone();
        let metrics = self.shared.metrics.clone();
        let overrides = self.overrides;
        let aws = self.shared.aws.clone();
        let fence = self.shared.fence.clone();
        self.reloads.spawn(async move {
            let new = read_config(path, overrides).await?;
            let reconnect = new.aws != old.aws
                || new.daemon.control_plane_budget != old.daemon.control_plane_budget
                || new.daemon.max_write_rate != old.daemon.max_write_rate;
            let clients = if reconnect {
                Some(connect(aws.as_ref(), &new, &metrics, &fence).await)
            } else {
                None
            };
            Ok(Reloaded {
                config: new,
                clients,
            })
        });
    }

    /// Applies a reload, or keeps the old config when it failed; either way the loop
    /// goes on. A good reload decides every target at once and reads new functions.
    async fn reload_done(&mut self, outcome: Result<Reloaded<A>, String>) {
        match outcome {
            Err(error) => {
                self.shared
                    .metrics
                    .config_reloads
                    .with_label_values(&["failure"])
                    .inc();
                tracing::error!(path = %self.path.display(), error = %error, "reload failed; the previous configuration stays in force");
            }
            Ok(Reloaded {
                config: new,
                clients,
            }) => {
                let old = self.config.clone();
                let removed = take_in_force(&self.shared.metrics, &old, &new);
                for name in &removed {
                    self.memory.remove(name);
                }
                self.shared
                    .journal
                    .lock()
                    .retain_status(|name| !removed.iter().any(|gone| *gone == name));
                if new.aws != old.aws {
                    // Another account or Region: nothing known holds there.
                    self.known = Known::default();
                    self.chores.clear();
                }
                let functions: BTreeSet<FunctionId> = new
                    .targets
                    .iter()
                    .map(|target| target.function.clone())
                    .collect();
                self.known.retain(|function| functions.contains(function));
                let interval = new.daemon.interval;
                if let Some(clients) = clients {
                    self.clients = clients;
                }
                self.set_config(new);
                self.learn_everything();
                self.schedule_all_boundaries().await;
                self.shared
                    .metrics
                    .config_reloads
                    .with_label_values(&["success"])
                    .inc();
                tracing::info!(
                    targets = self.config.targets.len(),
                    "configuration reloaded"
                );
                crate::trim::release_free_memory();
                // Decide at once with the new config; the next pass follows one
                // interval later.
                self.ticker = interval_timer(interval, Instant::now() + interval);
                if self.pass.is_empty() {
                    self.start_pass(Trigger::Reload);
                } else {
                    self.pass_again = true;
                }
            }
        }
        let _ = notify::notify("READY=1");
        if std::mem::take(&mut self.reload_again) {
            self.start_reload();
        }
    }

    /// SIGTERM: no new reads or decisions; writes in flight finish within the grace
    /// period.
    async fn shut_down(&mut self) {
        let grace = self.config.daemon.shutdown_grace;
        // systemd's TimeoutStopSec need not know the configured grace: the daemon
        // asks for it, plus a margin to exit.
        let stop_time = grace + Duration::from_secs(10);
        let _ = notify::notify(&format!(
            "STOPPING=1\nEXTEND_TIMEOUT_USEC={}",
            stop_time.as_micros()
        ));
        tracing::info!(
            writes_in_flight = self.writes.len(),
            grace_seconds = grace.as_secs(),
            "shutting down"
        );
        self.wakes.stop().await;
        self.watches.abort_all();
        self.reads.abort_all();
        self.pass.abort_all();
        self.reloads.abort_all();
        let finish = async {
            while let Some((_, joined)) = self.writes.join_next().await {
                match joined {
                    Ok(done) => self.write_done(done),
                    Err(error) => self.count_task_failure("write", &error),
                }
            }
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            tracing::error!("writes still in flight at the end of the grace period were abandoned");
        }
        self.watches.abort_all();
    }

    /// Lost the lease: keeps only what a standby needs. Everything else is dropped,
    /// and a dropped `JoinSet` aborts its tasks (the fence already stops any write
    /// not yet sent). A reload under way is lost with its task; the next SIGHUP
    /// reads the file again.
    fn stand_down(self) -> Standby<W> {
        tracing::warn!(
            writes_in_flight = self.writes.len(),
            "standing down: the loop stops acting"
        );
        self.shared.health.pass_ended();
        let config = Arc::unwrap_or_clone(self.config);
        Standby {
            path: self.path,
            overrides: self.overrides,
            config,
            wakes: self.wakes,
            told_systemd_ready: self.told_systemd_ready,
        }
    }
}

/// One write, beside the loop: waits for its turn in the budget (raises first), puts
/// or deletes, and logs the change once.
async fn write<L: aws::LambdaApi>(
    control: Control<L>,
    epoch: u64,
    activity: u64,
    target: TargetConfig,
    (from, to): (u32, u32),
    caps: Caps,
    decision: Decision,
) -> WriteDone {
    let result = control.write(&target, to, write_priority(from, to)).await;
    let sent = Instant::now();
    if result.is_ok() {
        log_change(&target, from, to, &decision, epoch);
    }
    WriteDone {
        target: target.name,
        activity,
        sent,
        from,
        to,
        trigger: decision.reason.trigger(),
        caps,
        result,
    }
}

/// A failed write's outcome, short and bounded.
fn write_failure(error: &AwsError) -> String {
    let text = match error {
        AwsError::Throttled { .. } => return "throttled".into(),
        AwsError::Conflict { .. } => return "conflict".into(),
        AwsError::Fenced { .. } => return "not sent: the leader lease was not fresh".into(),
        AwsError::InvalidParameter { message } => format!("refused: {message}"),
        other => format!("{}: {other}", other.label()),
    };
    text.chars().take(300).collect()
}

/// What `/status` shows of one evaluated target.
fn status_of(
    evaluation: &Evaluation,
    evaluated: &evaluate::Evaluated,
    blocked: Option<String>,
    now: DateTime<Utc>,
) -> TargetStatus {
    let target = &evaluation.target;
    let decision = &evaluated.decision;
    let observation = &evaluated.observation;
    let newest = observation
        .datapoints
        .iter()
        .map(|point| point.timestamp)
        .max();
    TargetStatus {
        target: target.name.to_string(),
        function: target.function.reference.clone(),
        qualifier: target.qualifier.as_str().to_owned(),
        evaluated_at: now,
        min: decision.bounds.min,
        max: decision.bounds.max,
        rule: decision.bounds.rule.clone(),
        metric: target
            .tracking
            .as_ref()
            .map(|tracking| tracking.metric.label().into()),
        metric_value: decision.metric_value,
        metric_age_seconds: newest.map(|newest| (now - newest).num_seconds()),
        metric_data: decision.metric_data.label().into(),
        requested: observation.requested,
        allocated: observation.allocated,
        allocation: observation.status.label().into(),
        desired: decision.desired,
        reason: decision.reason.to_string(),
        reserved_available: observation.caps.reserved_available,
        account_headroom: observation.caps.account_headroom,
        blocked,
        last_activity: None,
    }
}

#[cfg(test)]
mod virtual_time;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + i64::from(minute) * 60, 0)
            .expect("a valid timestamp")
    }

    #[test]
    fn boundaries_come_due_together_and_each_target_keeps_only_its_next() {
        let mut boundaries = Boundaries::default();
        for index in 0..5_000 {
            boundaries.set(&format!("t{index}").into(), Some(at(2)));
        }
        boundaries.set(&"early".into(), Some(at(1)));
        boundaries.set(&"early".into(), Some(at(3)));
        boundaries.set(&"never".into(), None);
        assert_eq!(boundaries.earliest(), Some(at(2)));
        assert!(boundaries.take_due(at(1)).is_empty());
        assert_eq!(
            boundaries.take_due(at(2)).len(),
            5_000,
            "a burst is never cut"
        );
        assert_eq!(boundaries.take_due(at(10)), vec![TargetName::from("early")]);
        assert_eq!(boundaries.earliest(), None);
    }
}
