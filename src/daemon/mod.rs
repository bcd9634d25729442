//! The daemon: one event loop that evaluates every target each `daemon.interval`, and
//! single targets at schedule boundaries and when an allocation settles; reloads on
//! SIGHUP; stops cleanly on SIGTERM/SIGINT; serves `/metrics`, `/healthz`, `/readyz`;
//! and tells systemd when it is ready and alive.
//!
//! It only carries out decisions: what capacity a target should have comes from
//! `policy` (through `reconcile::evaluate`), what to do after a failed write from
//! `actuator`. Schedule boundaries are one-shot jobs in tokio-cron-scheduler whose only
//! work is to send an event into the loop; what is active is still decided by the policy.
//!
//! Restarts lose nothing that matters: every evaluation reads the whole scale-in window
//! back from CloudWatch, and cooldowns count from the config's `LastModified`, so the
//! first decision after a start equals the one an uninterrupted daemon would make.

mod http;
pub mod notify;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::actuator::{self, Backoff, Retry};
use crate::aws::{self, AwsError};
use crate::config::{self, Config, TargetConfig, function_name};
use crate::metrics::{Instrumented, Metrics};
use crate::policy::schedule;
use crate::reconcile::{self, Context, Evaluation};

pub use http::Health;

/// Everything the loop reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A schedule rule of this target starts or ends now.
    Boundary(String),
    /// A write of this target completed its allocation, or its retry time came.
    Settled(String),
    Reload,
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

/// How often a written target's status is read back while it allocates.
const SETTLE_POLL: Duration = Duration::from_secs(2);
/// How long a settle watch follows one allocation.
const SETTLE_LIMIT: Duration = Duration::from_secs(15 * 60);

/// What the actuator remembers about one target between evaluations.
#[derive(Debug, Default)]
struct TargetMemory {
    /// The config this memory belongs to; a changed target starts afresh.
    fingerprint: String,
    /// A value the API refused as invalid: not written again while it stays the decision.
    refused: Option<u32>,
    /// No write before this instant (throttled or failing).
    not_before: Option<Instant>,
    failures: u32,
}

fn fingerprint(target: &TargetConfig) -> String {
    format!("{target:?}")
}

/// A finished evaluation.
struct EvaluationDone {
    /// All targets (a tick), or one (a boundary or a settled allocation).
    full_pass: bool,
    evaluations: Vec<Evaluation>,
    duration: Duration,
}

/// A finished write.
struct WriteDone {
    target: String,
    /// The function name, released from `in_flight` whatever happened to the config.
    function: String,
    from: u32,
    to: u32,
    trigger: &'static str,
    result: Result<(), AwsError>,
}

type SdkContext = Context<Instrumented<aws::SdkLambda>, Instrumented<aws::SdkMetrics>>;

async fn connect(config: Config, metrics: &Arc<Metrics>) -> SdkContext {
    let (lambda, cloudwatch) = aws::connect(&config.aws).await;
    let instrument = |inner| Instrumented {
        inner,
        metrics: metrics.clone(),
    };
    Context::new(
        config,
        instrument(lambda),
        Instrumented {
            inner: cloudwatch,
            metrics: metrics.clone(),
        },
    )
}

/// Runs the daemon until SIGTERM or SIGINT. `path` is re-read on SIGHUP. With
/// `force_dry_run` (the `--dry-run` flag) no config, reloaded or not, can enable writes.
pub async fn run(
    path: PathBuf,
    mut config: Config,
    force_dry_run: bool,
) -> Result<(), DaemonError> {
    config.daemon.dry_run |= force_dry_run;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(config.daemon.interval));
    let listener = tokio::net::TcpListener::bind(config.daemon.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            address: config.daemon.listen,
            source,
        })?;
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, http::router(metrics.clone(), health.clone()))
        .with_graceful_shutdown(async move {
            let mut stopped = http_stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        });
    let server = tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(error = %error, "the HTTP server stopped");
        }
    });
    tracing::info!(listen = %config.daemon.listen, targets = config.targets.len(), "pc-autoscaler started");

    let (events, inbox) = mpsc::channel(1024);
    forward_signals(events.clone()).map_err(DaemonError::Signals)?;
    let scheduler = JobScheduler::new()
        .await
        .map_err(|error| DaemonError::Scheduler(error.to_string()))?;
    scheduler
        .start()
        .await
        .map_err(|error| DaemonError::Scheduler(error.to_string()))?;

    let context = connect(config, &metrics).await;
    let mut daemon = Daemon {
        path,
        force_dry_run,
        context,
        metrics,
        health,
        events,
        scheduler,
        boundary_jobs: HashMap::new(),
        memory: HashMap::new(),
        writes: JoinSet::new(),
        watches: JoinSet::new(),
        evaluations: JoinSet::new(),
        full_pass_running: false,
        ready: false,
        in_flight: HashSet::new(),
    };
    daemon.run_loop(inbox).await;
    daemon.shut_down().await;
    let _ = stop_http.send(true);
    let _ = server.await;
    tracing::info!("pc-autoscaler stopped");
    Ok(())
}

/// SIGHUP → reload; SIGTERM and SIGINT → shutdown. The handlers only send events.
fn forward_signals(events: mpsc::Sender<Event>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = hangup.recv() => Event::Reload,
                _ = terminate.recv() => Event::Shutdown,
                _ = interrupt.recv() => Event::Shutdown,
            };
            if events.send(event).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

struct Daemon {
    path: PathBuf,
    force_dry_run: bool,
    context: SdkContext,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    events: mpsc::Sender<Event>,
    scheduler: JobScheduler,
    boundary_jobs: HashMap<String, uuid::Uuid>,
    memory: HashMap<String, TargetMemory>,
    /// Writes in flight; waited for at shutdown.
    writes: JoinSet<WriteDone>,
    /// Status watches and retry timers; dropped at shutdown.
    watches: JoinSet<()>,
    /// Evaluations under way. They run beside the loop, so a slow pass over many
    /// targets never delays signals, boundaries or the watchdog.
    evaluations: JoinSet<EvaluationDone>,
    /// Whether a pass over all targets is under way (a tick then does not start another).
    full_pass_running: bool,
    ready: bool,
    /// Functions with a write in flight: never two at once for one function.
    in_flight: HashSet<String>,
}

impl Daemon {
    async fn run_loop(&mut self, mut inbox: mpsc::Receiver<Event>) {
        let mut ticker = tokio::time::interval(self.context.config.daemon.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Without a systemd watchdog, the branch below simply never fires.
        let mut watchdog = tokio::time::interval(
            notify::watchdog_interval().unwrap_or(Duration::from_secs(86_400 * 365)),
        );
        watchdog.tick().await;
        self.schedule_all_boundaries().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => self.evaluate(None),
                Some(done) = self.evaluations.join_next() => match done {
                    Ok(done) => self.evaluation_done(done),
                    Err(error) => {
                        tracing::error!(error = %error, "an evaluation task failed");
                        self.full_pass_running = false;
                    }
                },
                _ = watchdog.tick() => {
                    let _ = notify::notify("WATCHDOG=1");
                }
                Some(done) = self.writes.join_next() => match done {
                    Ok(done) => self.write_done(done),
                    Err(error) => tracing::error!(error = %error, "a write task failed"),
                },
                Some(_) = self.watches.join_next() => {}
                event = inbox.recv() => match event {
                    Some(Event::Boundary(target)) => {
                        tracing::debug!(target = %target, "schedule boundary");
                        self.evaluate(Some(&target));
                        self.schedule_boundary(&target).await;
                    }
                    Some(Event::Settled(target)) => self.evaluate(Some(&target)),
                    Some(Event::Reload) => {
                        self.reload().await;
                        ticker = tokio::time::interval(self.context.config.daemon.interval);
                        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        ticker.tick().await;
                    }
                    Some(Event::Shutdown) | None => return,
                },
            }
            self.health.heartbeat();
        }
    }

    /// Starts an evaluation of every target, or only of `only`, beside the loop.
    fn evaluate(&mut self, only: Option<&str>) {
        let context = match only {
            None if self.full_pass_running => return,
            None => {
                self.full_pass_running = true;
                self.context.clone()
            }
            Some(name) => {
                let mut config = (*self.context.config).clone();
                config.targets.retain(|target| target.name == name);
                if config.targets.is_empty() {
                    return;
                }
                Context {
                    config: Arc::new(config),
                    ..self.context.clone()
                }
            }
        };
        let full_pass = only.is_none();
        self.evaluations.spawn(async move {
            let started = std::time::Instant::now();
            let evaluations = reconcile::evaluate(&context, Utc::now()).await;
            EvaluationDone {
                full_pass,
                evaluations,
                duration: started.elapsed(),
            }
        });
    }

    /// Records an evaluation and starts the writes it calls for.
    fn evaluation_done(&mut self, done: EvaluationDone) {
        for evaluation in &done.evaluations {
            self.metrics.record_evaluation(evaluation);
            self.maybe_write(evaluation);
        }
        if done.full_pass {
            self.full_pass_running = false;
            self.metrics
                .evaluation_duration
                .observe(done.duration.as_secs_f64());
            self.metrics
                .last_evaluation
                .set(Utc::now().timestamp_millis() as f64 / 1000.0);
            if !self.ready {
                self.ready = true;
                self.health.set_ready();
                let _ = notify::notify("READY=1");
            }
        }
    }

    fn maybe_write(&mut self, evaluation: &Evaluation) {
        let Ok(evaluated) = &evaluation.outcome else {
            return;
        };
        let target = &evaluation.target;
        let from = evaluated.observation.requested;
        let to = evaluated.decision.desired;
        if to == from || self.context.config.daemon.dry_run {
            return;
        }
        let function = function_name(&target.function).to_owned();
        if self.in_flight.contains(&function) {
            return;
        }
        let memory = self.memory.entry(target.name.clone()).or_default();
        let print = fingerprint(target);
        if memory.fingerprint != print {
            *memory = TargetMemory {
                fingerprint: print,
                ..TargetMemory::default()
            };
        }
        if memory.refused == Some(to) || memory.not_before.is_some_and(|at| Instant::now() < at) {
            return;
        }
        memory.refused = None;
        self.in_flight.insert(function.clone());
        let lambda = self.context.lambda.clone();
        let limits = self.context.limits.clone();
        let target = target.clone();
        let trigger = evaluated.decision.reason.label();
        let reason = evaluated.decision.reason.to_string();
        self.writes.spawn(async move {
            limits.write().await;
            let result = reconcile::write(lambda.as_ref(), &target, to).await;
            if result.is_ok() {
                tracing::info!(target = %target.name, from, to, reason = %reason, trigger, "capacity changed");
            }
            WriteDone {
                target: target.name,
                function,
                from,
                to,
                trigger,
                result,
            }
        });
    }

    fn write_done(&mut self, done: WriteDone) {
        self.in_flight.remove(&done.function);
        // A target removed by a reload while its write was in flight needs nothing more.
        let Some(target) = self
            .context
            .config
            .targets
            .iter()
            .find(|target| target.name == done.target)
            .cloned()
        else {
            return;
        };
        let memory = self.memory.entry(done.target.clone()).or_default();
        match done.result {
            Ok(()) => {
                memory.failures = 0;
                memory.not_before = None;
                let direction = if done.to > done.from { "up" } else { "down" };
                self.metrics
                    .scaling_actions
                    .with_label_values(&[&done.target, direction, done.trigger])
                    .inc();
                self.watch_until_settled(target);
            }
            Err(error) => {
                let retry = actuator::after_failure(
                    &error,
                    memory.failures,
                    &Backoff::default(),
                    fastrand::f64(),
                );
                tracing::warn!(target = %done.target, error = %error, outcome = error.label(), retry = ?retry, "write failed");
                memory.failures += 1;
                match retry {
                    Retry::After(wait) => {
                        memory.not_before = Some(Instant::now() + wait);
                        let events = self.events.clone();
                        let name = done.target.clone();
                        self.watches.spawn(async move {
                            tokio::time::sleep(wait).await;
                            let _ = events.send(Event::Settled(name)).await;
                        });
                    }
                    Retry::WhenSettled => self.watch_until_settled(target),
                    Retry::Never => memory.refused = Some(done.to),
                    Retry::GiveUp => {
                        memory.failures = 0;
                        memory.not_before = None;
                    }
                }
            }
        }
    }

    /// Reads the target's status back until it is no longer in progress, then asks the
    /// loop to evaluate the target again.
    fn watch_until_settled(&mut self, target: TargetConfig) {
        let lambda = self.context.lambda.clone();
        let limits = self.context.limits.clone();
        let events = self.events.clone();
        self.watches.spawn(async move {
            // The first read comes after one poll: a write has only just been accepted.
            tokio::time::sleep(SETTLE_POLL).await;
            let deadline = Instant::now() + SETTLE_LIMIT;
            reconcile::read_until_settled(lambda.as_ref(), &limits, &target, SETTLE_POLL, deadline)
                .await;
            let _ = events.send(Event::Settled(target.name)).await;
        });
    }

    async fn schedule_all_boundaries(&mut self) {
        let names: Vec<String> = self
            .context
            .config
            .targets
            .iter()
            .map(|target| target.name.clone())
            .collect();
        for name in names {
            self.schedule_boundary(&name).await;
        }
    }

    /// Registers a one-shot job at the target's next schedule boundary.
    async fn schedule_boundary(&mut self, name: &str) {
        if let Some(old) = self.boundary_jobs.remove(name) {
            let _ = self.scheduler.remove(&old).await;
        }
        let Some(target) = self
            .context
            .config
            .targets
            .iter()
            .find(|target| target.name == name)
        else {
            return;
        };
        let now = Utc::now();
        let Some(boundary) = schedule::next_boundary(target, now) else {
            return;
        };
        let delay = (boundary - now).to_std().unwrap_or(Duration::ZERO);
        let events = self.events.clone();
        let event_target = name.to_owned();
        let job = Job::new_one_shot(delay, move |_, _| {
            // A full inbox means the loop is far behind; the next tick catches up.
            let _ = events.try_send(Event::Boundary(event_target.clone()));
        });
        match job {
            Ok(job) => match self.scheduler.add(job).await {
                Ok(id) => {
                    self.boundary_jobs.insert(name.to_owned(), id);
                }
                Err(error) => {
                    tracing::error!(target = %name, error = %error, "cannot register a schedule boundary")
                }
            },
            Err(error) => {
                tracing::error!(target = %name, error = %error, "cannot create a schedule boundary job")
            }
        }
    }

    /// SIGHUP: validate the file first; keep running on the old config when it is bad.
    async fn reload(&mut self) {
        let _ = notify::notify("RELOADING=1");
        match config::load(&self.path) {
            Err(error) => {
                self.metrics
                    .config_reloads
                    .with_label_values(&["failure"])
                    .inc();
                tracing::error!(path = %self.path.display(), error = %error, "reload failed; the previous configuration stays in force");
            }
            Ok(mut new) => {
                new.daemon.dry_run |= self.force_dry_run;
                let old = self.context.config.clone();
                for target in &old.targets {
                    if !new
                        .targets
                        .iter()
                        .any(|candidate| candidate.name == target.name)
                    {
                        self.metrics.forget_target(&target.name);
                        self.memory.remove(&target.name);
                    }
                }
                if new.daemon.listen != old.daemon.listen {
                    tracing::warn!(listen = %new.daemon.listen, "a new listen address takes effect at the next restart");
                }
                self.health.set_interval(new.daemon.interval);
                self.context = if new.aws != old.aws
                    || new.daemon.max_write_rate != old.daemon.max_write_rate
                    || new.daemon.max_read_rate != old.daemon.max_read_rate
                {
                    connect(new, &self.metrics).await
                } else {
                    Context {
                        config: Arc::new(new),
                        ..self.context.clone()
                    }
                };
                self.schedule_all_boundaries().await;
                self.metrics
                    .config_reloads
                    .with_label_values(&["success"])
                    .inc();
                tracing::info!(
                    targets = self.context.config.targets.len(),
                    "configuration reloaded"
                );
            }
        }
        let _ = notify::notify("READY=1");
    }

    /// SIGTERM: no new evaluations; writes in flight finish within the grace period.
    async fn shut_down(&mut self) {
        let _ = notify::notify("STOPPING=1");
        let grace = self.context.config.daemon.shutdown_grace;
        tracing::info!(
            writes_in_flight = self.writes.len(),
            grace_seconds = grace.as_secs(),
            "shutting down"
        );
        let _ = self.scheduler.shutdown().await;
        self.watches.abort_all();
        self.evaluations.abort_all();
        let finish = async {
            while let Some(done) = self.writes.join_next().await {
                if let Ok(done) = done {
                    self.write_done(done);
                }
            }
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            tracing::error!("writes still in flight at the end of the grace period were abandoned");
        }
        self.watches.abort_all();
    }
}
