//! The daemon (`run`): the life of one process. It serves HTTP, stands by for the
//! leader lease when there is one, and while it leads, drives the shards.
//!
//! - [`run`] has mini-redis's shape: the listener, the config and where it came from
//!   ([`Source`]), what the daemon is built from ([`Parts`]: a `Connect`, a
//!   [`WakeSource`], a `Clock`, the metrics, health and journal it shares) and a
//!   channel of [`DaemonCommand`]s (reload, shutdown). [`run_from_file`] wires the SDK,
//!   tokio-cron-scheduler, the system clock and the signals to it.
//! - With `[leader]` the process alternates two states: a [`Standby`] (config and wake
//!   source only; answers probes, takes reloads, reads nothing else) until the elector
//!   says this copy leads, then a [`driver::Leader`] with nothing cached, until it
//!   stops or no longer leads. Without `[leader]` it leads from the start. With
//!   `[leader] spread = true` it leads from the start too, acting on the shards whose
//!   leases the spread elector holds (`leader::spread`).
//! - The leader's shards (`runtime::shard`) decide; the driver carries out what they
//!   ask. Reloads go through one [`reload::Reloader`] whatever the role.
//!
//! SIGHUP reloads, SIGTERM/SIGINT stop; systemd hears READY, WATCHDOG, RELOADING and
//! STOPPING. The time of day comes from an injected [`Clock`] and every timer is
//! tokio's, so the whole process runs in virtual time under test (`virtual_time.rs`).
//!
//! What it must not do: decide (the shards do) or read anything while it stands by but
//! the lease.

mod driver;
mod events;
mod http;
pub mod notify;
mod reload;
pub use crate::runtime::state::files::check_state_directory;
mod wake;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::aws::{self, Connect};
use crate::clock::Clock;
use crate::config::{Config, ShardKey};
use crate::leader::Fence;
use crate::leader::elect::{Elector, Role};
use crate::leader::spread::{Fences, Held, Spread};
use crate::metrics::{Instrumented, Metrics};
use crate::runtime::plane::control::Control;
use crate::runtime::shard::Shard;
use crate::runtime::state::activity::{ActivityLog, SharedJournal};
use notify::Systemd;
use reload::Reloader;

pub use http::Health;
pub use reload::Overrides;
pub use wake::{CronWakes, TimerWakes, WakeSource};

/// What the outside asks of a running daemon; production sends these from its signal
/// handlers. Closing the channel stops the daemon as `Shutdown` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonCommand {
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
    #[error("start-up did not finish: {0}")]
    Startup(String),
}

/// How often the loop turns even when nothing happens: its heartbeat for `/healthz`.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a stopping leader waits for its lease to be released.
const LEASE_RELEASE_LIMIT: Duration = Duration::from_secs(5);

/// The AWS clients of one shard.
struct ShardClients<A: Connect> {
    control: Control<Instrumented<A::Lambda>>,
    cloudwatch: Arc<Instrumented<A::Metrics>>,
    tagging: Arc<Instrumented<A::Tagging>>,
    scaling: Arc<Instrumented<A::Scaling>>,
}

impl<A: Connect> Clone for ShardClients<A> {
    fn clone(&self) -> Self {
        Self {
            control: self.control.clone(),
            cloudwatch: self.cloudwatch.clone(),
            tagging: self.tagging.clone(),
            scaling: self.scaling.clone(),
        }
    }
}

/// Which lease fences a shard's writes: the one lease of every shard, or (spread) a
/// lease per shard.
#[derive(Debug, Clone)]
enum Fencing {
    One(Fence),
    PerShard(Fences),
}

impl Fencing {
    fn of(&self, shard: &ShardKey) -> Fence {
        match self {
            Fencing::One(fence) => fence.clone(),
            Fencing::PerShard(fences) => fences.of(shard),
        }
    }
}

/// The clients of every shard of `config`, in `Config::shards` order.
async fn connect<A: Connect>(
    aws: &A,
    config: &Config,
    metrics: &Arc<Metrics>,
    fencing: &Fencing,
) -> Vec<(ShardKey, ShardClients<A>)> {
    let mut shards = Vec::new();
    for key in config.shards() {
        let clients = connect_shard(aws, config, &key, metrics).await;
        let control = clients.control.fenced(fencing.of(&key));
        shards.push((key, ShardClients { control, ..clients }));
    }
    shards
}

/// The clients of one shard: its Region, and its account's role.
async fn connect_shard<A: Connect>(
    aws: &A,
    config: &Config,
    key: &ShardKey,
    metrics: &Arc<Metrics>,
) -> ShardClients<A> {
    let (settings, account) = config.shard_access(key);
    let clients = aws.connect(&settings, account).await;
    let instrumented = |inner| Instrumented {
        inner,
        metrics: metrics.clone(),
    };
    ShardClients {
        control: Control::new(
            Instrumented {
                inner: clients.lambda,
                metrics: metrics.clone(),
            },
            config.daemon.control_plane_budget,
            crate::runtime::plane::control::DAEMON_GET_FUNCTION_RATE,
            config,
            Some(metrics.clone()),
        )
        .in_shard(
            account.map(|account| account.account_id.clone()),
            settings.region.clone(),
        ),
        cloudwatch: Arc::new(Instrumented {
            inner: clients.metrics,
            metrics: metrics.clone(),
        }),
        tagging: Arc::new(instrumented(clients.tagging)),
        scaling: Arc::new(Instrumented {
            inner: clients.scaling,
            metrics: metrics.clone(),
        }),
    }
}

/// A shard shared between the loop, which changes it, and the HTTP listener, which
/// reads it at a scrape or a `/status`. No lock is held across an await. A panic while
/// it was held leaves the shard as it was then, still the best view there is, so a
/// poisoned lock is taken as it is.
#[derive(Debug, Clone)]
pub struct SharedShard(Arc<Mutex<Shard>>);

impl SharedShard {
    pub fn new(shard: Shard) -> Self {
        Self(Arc::new(Mutex::new(shard)))
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Shard> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The shards in force, shared with the HTTP listener, which reads them at a scrape
/// or a `/status`; empty while this copy stands by. With spread leases, also the names
/// of the shards this copy holds.
#[derive(Debug, Clone, Default)]
pub struct LiveShards(
    Arc<RwLock<Vec<SharedShard>>>,
    Arc<RwLock<Option<Vec<String>>>>,
);

impl LiveShards {
    fn set(&self, shards: Vec<SharedShard>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = shards;
    }

    fn set_held(&self, names: Vec<String>) {
        *self
            .1
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(names);
    }

    /// The shards this copy holds (`account/region`, `base`), with spread leases.
    pub fn held(&self) -> Option<Vec<String>> {
        self.1
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn clear(&self) {
        self.set(Vec::new());
    }

    /// The shards now, in order.
    pub fn shards(&self) -> Vec<SharedShard> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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
    /// Activities, for `/status` and `/activities`.
    pub journal: SharedJournal,
    /// The shards in force, for `/metrics` and `/status`.
    pub in_force: LiveShards,
}

/// Where the config comes from and what wins over it.
pub struct Source {
    /// Read again on [`DaemonCommand::Reload`].
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
        in_force: LiveShards::default(),
    };
    let source = Source {
        path,
        config,
        overrides,
    };
    run(listener, source, parts, inbox).await
}

/// Says what of the state directory others than its owner may write: whoever may
/// write it may set overrides.
fn warn_of_unsafe_modes(config: &Config) {
    if let Some(directory) = &config.daemon.state_directory {
        for place in crate::runtime::state::files::unsafe_modes(directory) {
            tracing::warn!(place = %place, "others than its owner may write the state directory: whoever may write it may set overrides");
        }
    }
}

/// Runs the daemon on `listener` until `commands` says `Shutdown` or closes (the shape
/// of mini-redis's `server::run`, with reloads on the same channel), then lets writes
/// in flight finish within the grace period.
pub async fn run<A: Connect, W: WakeSource>(
    listener: TcpListener,
    source: Source,
    parts: Parts<A, W>,
    mut commands: mpsc::Receiver<DaemonCommand>,
) -> Result<(), DaemonError> {
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
        in_force,
    } = parts;
    if let Some(path) = &config.daemon.activity_log {
        let max_mib = config.daemon.activity_log_max_mib;
        if !open_activity_log(&journal, path, max_mib, &mut commands).await? {
            return Ok(());
        }
    }
    warn_of_unsafe_modes(&config);
    // What parsing the config took is freed by now.
    crate::trim::release_free_memory();
    let view = http::View {
        metrics: metrics.clone(),
        health: health.clone(),
        journal: journal.clone(),
        in_force: in_force.clone(),
    };
    let (stop_http, server) = serve_http(listener, view);
    tracing::info!(listen = %config.daemon.listen, targets = config.targets.len(), "pc-autoscaler started");
    let aws = Arc::new(aws);
    let mut election = match &config.leader {
        None => Election::None,
        Some(settings) if settings.spread => {
            Election::Spread(start_spread(aws.as_ref(), &config, settings, clock, &metrics).await)
        }
        Some(settings) => {
            Election::One(start_elector(aws.as_ref(), &config, settings, clock, &metrics).await)
        }
    };
    let systemd = Arc::new(Systemd::default());
    let stores = driver::keeping::stores(aws.as_ref(), &config, &metrics).await;
    let shared = Shared {
        stores: Arc::new(stores),
        aws,
        clock,
        metrics: metrics.clone(),
        health: health.clone(),
        journal,
        fencing: election.fencing(),
        role: election.role(),
        held: election.held(),
        systemd: systemd.clone(),
        in_force,
    };
    let standby = Standby {
        config,
        reloader: Reloader::new(path, overrides, metrics, systemd),
        wakes,
    };
    lead_and_stand_by(standby, &mut election, &mut commands, &shared).await;
    election.release().await;
    let _ = stop_http.send(true);
    let _ = server.await;
    tracing::info!("pc-autoscaler stopped");
    Ok(())
}

/// How this copy comes to act: alone, as the one leader, or on the shards it holds.
enum Election {
    None,
    One(Elector),
    Spread(Spread),
}

impl Election {
    fn fencing(&self) -> Fencing {
        match self {
            Election::None => Fencing::One(Fence::open()),
            Election::One(elector) => Fencing::One(elector.fence.clone()),
            Election::Spread(spread) => Fencing::PerShard(spread.fences.clone()),
        }
    }

    fn role(&self) -> Option<watch::Receiver<Role>> {
        match self {
            Election::One(elector) => Some(elector.role.clone()),
            _ => None,
        }
    }

    fn held(&self) -> Option<HeldShards> {
        match self {
            Election::Spread(spread) => Some(HeldShards {
                held: spread.held.clone(),
                reachable: spread.reachable.clone(),
                shards: spread.shards(),
            }),
            _ => None,
        }
    }

    /// Gives up what this copy holds, on the way out.
    async fn release(self) {
        match self {
            Election::None => {}
            Election::One(elector) => elector.release(LEASE_RELEASE_LIMIT).await,
            Election::Spread(spread) => spread.release(LEASE_RELEASE_LIMIT).await,
        }
    }
}

/// Alternates standing by and leading (leading from the start without `[leader]`, and
/// with spread leases, where the driver runs the shards this copy holds) until the
/// daemon is told to stop.
async fn lead_and_stand_by<A: Connect, W: WakeSource>(
    mut standby: Standby<W>,
    election: &mut Election,
    commands: &mut mpsc::Receiver<DaemonCommand>,
    shared: &Shared<A>,
) {
    loop {
        if let Election::One(elector) = election
            && !standby.wait_for_lease(elector, commands, shared).await
        {
            break;
        }
        let mut leader = driver::Leader::take_over(standby, shared).await;
        if leader.run(commands).await == Exit::Shutdown {
            leader.shut_down().await;
            break;
        }
        // Stepped down: everything the leader knew or had under way is dropped; a
        // write past the fence is already on the wire, none after it is sent.
        standby = leader.stand_down();
    }
}

/// Serves the HTTP endpoints until the sender says stop.
fn serve_http(
    listener: TcpListener,
    view: http::View,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop_http, http_stopped) = watch::channel(false);
    let metrics = view.metrics.clone();
    let server = tokio::spawn(http::serve(
        listener,
        http::router(view),
        metrics,
        async move {
            let mut stopped = http_stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
    (stop_http, server)
}

/// This copy's name in the lease: `[leader] identity`, else hostname and process id.
fn identity_of(settings: &crate::config::LeaderSettings) -> String {
    settings
        .identity
        .clone()
        .unwrap_or_else(crate::leader::elect::default_identity)
}

/// Starts the spread elector for `[leader] spread = true`: this copy contends for a
/// lease per shard of the config.
async fn start_spread<A: Connect>(
    aws: &A,
    config: &Config,
    settings: &crate::config::LeaderSettings,
    clock: Clock,
    metrics: &Arc<Metrics>,
) -> Spread {
    let identity = identity_of(settings);
    tracing::info!(identity = %identity, table = %settings.table, shards = config.shards().len(), "contending for the shards' leases");
    let backend = aws.lease(&config.aws, settings, clock).await;
    let report = metrics.register_spread(&identity, config);
    Spread::start(backend, settings, identity, config.shards(), report)
}

/// Starts the elector for `[leader]`: this copy stands by until it holds the lease.
async fn start_elector<A: Connect>(
    aws: &A,
    config: &Config,
    settings: &crate::config::LeaderSettings,
    clock: Clock,
    metrics: &Arc<Metrics>,
) -> Elector {
    let identity = identity_of(settings);
    tracing::info!(identity = %identity, table = %settings.table, "standing by for the leader lease");
    let backend = aws.lease(&config.aws, settings, clock).await;
    let report = metrics.register_leader(&identity);
    Elector::start(backend, settings, identity, report)
}

/// What every tenure of one process shares.
struct Shared<A: Connect> {
    aws: Arc<A>,
    clock: Clock,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    journal: SharedJournal,
    /// Passes each shard's writes only while this copy's lease of it is fresh; open
    /// without `[leader]`.
    fencing: Fencing,
    /// The elector's word on this copy's role; `None` without `[leader]` or spread.
    role: Option<watch::Receiver<Role>>,
    /// The shards this copy holds, with spread leases.
    held: Option<HeldShards>,
    systemd: Arc<Systemd>,
    in_force: LiveShards,
    /// Where the snapshot, the overrides and the handover records are kept, and where
    /// activities go out to EventBridge.
    stores: Arc<driver::keeping::Stores<A>>,
}

impl<A: Connect> Clone for Shared<A> {
    fn clone(&self) -> Self {
        Self {
            aws: self.aws.clone(),
            clock: self.clock,
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            journal: self.journal.clone(),
            fencing: self.fencing.clone(),
            role: self.role.clone(),
            held: self.held.clone(),
            systemd: self.systemd.clone(),
            in_force: self.in_force.clone(),
            stores: self.stores.clone(),
        }
    }
}

/// The spread elector's word on the shards this copy holds.
#[derive(Clone)]
struct HeldShards {
    held: watch::Receiver<Held>,
    /// Whether the lease table answers: a copy holding nothing is ready when it could
    /// take a shard.
    reachable: Arc<std::sync::atomic::AtomicBool>,
    shards: Arc<watch::Sender<Vec<ShardKey>>>,
}

impl HeldShards {
    /// The shards of the config in force, for the elector to contend for.
    fn set_shards(&self, shards: Vec<ShardKey>) {
        self.shards.send_if_modified(|known| {
            let changed = *known != shards;
            *known = shards;
            changed
        });
    }
}

/// Why the leader's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Shutdown,
    /// The elector says this copy is no longer the leader.
    SteppedDown,
}

/// What a copy keeps while it stands by: only its config, its reloads and its wake
/// source. It reads nothing from Lambda or CloudWatch and writes nothing.
struct Standby<W> {
    config: Config,
    reloader: Reloader,
    wakes: W,
}

impl<W> Standby<W> {
    /// Waits until this copy holds the lease (`true`) or is told to stop (`false`).
    /// Meanwhile it answers probes, feeds the watchdog and takes reloads, so that
    /// the config in force when it takes over is the latest one.
    async fn wait_for_lease<A: Connect>(
        &mut self,
        elector: &mut Elector,
        commands: &mut mpsc::Receiver<DaemonCommand>,
        shared: &Shared<A>,
    ) -> bool {
        // Ready means "able to take over": the lease store answers.
        shared.health.pass_ended();
        shared.systemd.ready();
        let mut heartbeat = tokio::time::interval_at(Instant::now(), HEARTBEAT);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
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
                        if command == DaemonCommand::Shutdown {
                            break;
                        }
                    }
                    return false;
                }
                command = commands.recv() => match command {
                    Some(DaemonCommand::Reload) => self.reloader.start(),
                    Some(DaemonCommand::Shutdown) | None => return false,
                },
                Some(config) = self.reloader.finished() => {
                    reload::taken_in_force(&self.config, &config, "standby");
                    self.config = config;
                }
                _ = heartbeat.tick() => {
                    shared.health.set_ready(elector.reachable.load(std::sync::atomic::Ordering::Relaxed));
                    if notify::watchdog_interval().is_some() {
                        let _ = notify::notify("WATCHDOG=1");
                    }
                }
            }
            if self.reloader.again() {
                self.reloader.start();
            }
            shared.health.loop_turned();
        }
    }
}

/// Feeds the systemd watchdog while the loop makes progress and no pass is overdue:
/// systemd restarts a daemon that is stuck, not one that is busy.
fn feed_watchdog(health: &Health) {
    match health.not_alive() {
        None => {
            let _ = notify::notify("WATCHDOG=1");
        }
        Some(why) => tracing::error!(why = why.trim_end(), "not feeding the systemd watchdog"),
    }
}

fn count_task_failure(metrics: &Metrics, task: &'static str, error: &tokio::task::JoinError) {
    tracing::error!(task, error = %error, "a background task failed");
    metrics.task_failures.with_label_values(&[task]).inc();
}

/// How long reading the activity log back at start may take before the daemon gives
/// up and exits: a file on a hung mount must not hold a start-up for ever.
const START_READ_LIMIT: Duration = Duration::from_secs(60);

/// Reads the history back from the activity log and starts its writer, off the loop
/// and within [`START_READ_LIMIT`], stopping at once on SIGTERM or SIGINT meanwhile.
/// A log that cannot be read or opened is reported; the daemon runs on without it.
/// `Ok(false)`: told to stop first.
async fn open_activity_log(
    journal: &SharedJournal,
    path: &std::path::Path,
    max_mib: u32,
    commands: &mut mpsc::Receiver<DaemonCommand>,
) -> Result<bool, DaemonError> {
    let log = ActivityLog::new(path, u64::from(max_mib) * 1024 * 1024);
    let opening = tokio::task::spawn_blocking(move || {
        let history = log.read_back();
        (history, log.start())
    });
    let opened = tokio::select! {
        opened = tokio::time::timeout(START_READ_LIMIT, opening) => opened,
        command = wait_for_shutdown(commands) => {
            tracing::warn!(?command, "stopped while the activity log was read back");
            return Ok(false);
        }
    };
    let (history, sink) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(error)) => {
            tracing::error!(path = %path.display(), error = %error, "reading the activity log failed; history is kept in memory only");
            return Ok(true);
        }
        Err(_) => {
            return Err(DaemonError::Startup(format!(
                "reading the activity log {} did not end within {} s",
                path.display(),
                START_READ_LIMIT.as_secs()
            )));
        }
    };
    let mut journal = journal.lock();
    match history {
        Ok(read) => {
            if read.skipped > 0 {
                tracing::warn!(path = %path.display(), skipped = read.skipped, "lines of the activity log that were not activities were skipped");
            }
            let restored = read.activities.len();
            for activity in read.activities {
                journal.restore(activity);
            }
            tracing::info!(path = %path.display(), restored, "activity log read back");
        }
        Err(error) => tracing::error!(error = %error, "the activity log was not read back"),
    }
    match sink {
        Ok(sink) => journal.log_to(sink),
        Err(error) => {
            tracing::error!(error = %error, "cannot open the activity log; history is kept in memory only")
        }
    }
    Ok(true)
}

/// Resolves with the command that asks to stop (a reload before start-up ended is
/// left for later); `None` when the channel closed.
async fn wait_for_shutdown(commands: &mut mpsc::Receiver<DaemonCommand>) -> Option<DaemonCommand> {
    loop {
        match commands.recv().await {
            Some(DaemonCommand::Reload) => continue,
            other => return other,
        }
    }
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

/// Signals whose default action ends the process, besides the three that mean
/// something here: each is logged and otherwise ignored, so a stray `kill -USR1` or a
/// log-rotation hook cannot end the daemon in the middle of a write with its lease held.
const IGNORED_SIGNALS: [(libc::c_int, &str); 9] = [
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
];

/// SIGHUP → reload; SIGTERM and SIGINT → shutdown; the rest of the signals that would
/// end the process are logged and ignored. The handlers only send commands.
fn forward_signals(commands: mpsc::Sender<DaemonCommand>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    for (number, name) in IGNORED_SIGNALS {
        let mut ignored = signal(SignalKind::from_raw(number))?;
        tokio::spawn(async move {
            while ignored.recv().await.is_some() {
                tracing::warn!(
                    signal = name,
                    "signal received and ignored: only SIGTERM and SIGINT stop the daemon, SIGHUP reloads"
                );
            }
        });
    }
    tokio::spawn(async move {
        loop {
            let command = tokio::select! {
                _ = hangup.recv() => DaemonCommand::Reload,
                _ = terminate.recv() => DaemonCommand::Shutdown,
                _ = interrupt.recv() => DaemonCommand::Shutdown,
            };
            if commands.send(command).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod virtual_time;
