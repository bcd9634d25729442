//! The daemon: one event loop that evaluates every target each `daemon.interval`, and
//! single targets at schedule boundaries and when an allocation settles; reloads on
//! SIGHUP; stops cleanly on SIGTERM/SIGINT; serves `/metrics`, `/healthz`, `/readyz`;
//! and tells systemd when it is ready and alive.
//!
//! It only carries out decisions: what capacity a target should have comes from
//! `policy` (through `reconcile::evaluate`), what to do after a write from the
//! actuator's `WriteState`. Every target's next schedule boundary waits in one queue;
//! a single one-shot job in tokio-cron-scheduler, armed for the earliest, wakes the
//! loop, and the one-second heartbeat checks the queue too, so no boundary depends on
//! a timer being delivered. (A job per target overflowed the scheduler's internal
//! channels at 300 targets and boundaries stopped.) What is active is still decided by
//! the policy.
//!
//! The loop never awaits AWS, the credential chain or the file system: evaluations,
//! writes, status watches and reloads are tasks whose results come back as loop
//! branches. Every task's failure (a panic included) is handled where it is joined,
//! so a function's in-flight mark is released on every path.
//!
//! Restarts lose nothing that matters: every evaluation reads the whole scale-in window
//! back from CloudWatch, and cooldowns count from the config's `LastModified`, so the
//! first decision after a start equals the one an uninterrupted daemon would make.

mod http;
pub mod notify;
mod writes;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::actuator::{Backoff, Retry, WriteState};
use crate::aws::{self, AwsError};
use crate::config::{self, Config, TargetConfig, function_name};
use crate::metrics::{Instrumented, Metrics};
use crate::policy::{Caps, Decision, schedule};
use crate::reconcile::{self, Context, Evaluation};
use writes::{Held, Writes};

pub use http::Health;

/// Everything the loop reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
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
/// Sent on each heartbeat until `READY=1`: systemd's start timeout then measures a
/// stall, not the length of the first pass.
const START_EXTENSION: &str = "EXTEND_TIMEOUT_USEC=30000000";

/// How often the loop turns even when nothing happens: its heartbeat for `/healthz`.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// What the daemon remembers about one target between evaluations.
#[derive(Debug, Default)]
struct TargetMemory {
    /// The config this memory belongs to; a changed target starts afresh.
    fingerprint: String,
    /// Whether a write may go, and what the last ones' results mean. A refusal is tied
    /// to the caps it was refused under.
    write: WriteState<Caps>,
    /// When the last write was started: a decision from an evaluation that started
    /// before it is out of date and is discarded.
    last_write: Option<Instant>,
}

fn fingerprint(target: &TargetConfig) -> String {
    format!("{target:?}")
}

/// Every target's next schedule boundary, earliest first, and the timer job armed for
/// the earliest. Boundaries at the same instant are one entry each and come due
/// together: a burst is never dropped, whatever its size.
#[derive(Default)]
struct Boundaries {
    queue: BTreeSet<(DateTime<Utc>, String)>,
    by_target: HashMap<String, DateTime<Utc>>,
    armed: Option<(DateTime<Utc>, uuid::Uuid)>,
}

impl Boundaries {
    fn set(&mut self, target: &str, next: Option<DateTime<Utc>>) {
        if let Some(old) = self.by_target.remove(target) {
            self.queue.remove(&(old, target.to_owned()));
        }
        if let Some(next) = next {
            self.queue.insert((next, target.to_owned()));
            self.by_target.insert(target.to_owned(), next);
        }
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.by_target.clear();
    }

    /// Removes and returns the targets whose boundary is at or before `now`.
    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<String> {
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

/// A finished evaluation.
struct EvaluationDone {
    /// All targets (a tick or a reload), or one (a boundary or a settled allocation).
    full_pass: bool,
    /// When it started: decisions older than a target's last write are discarded.
    started: Instant,
    /// `None` when the pass outlived its deadline and was abandoned.
    evaluations: Option<Vec<Evaluation>>,
    duration: Duration,
}

/// A finished write.
struct WriteDone {
    target: String,
    from: u32,
    to: u32,
    trigger: &'static str,
    caps: Caps,
    result: Result<(), AwsError>,
}

/// A reload read and validated off the loop, with new clients when the AWS settings
/// or rates changed.
struct Reloaded {
    config: Config,
    context: Option<SdkContext>,
}

type SdkContext = Context<Instrumented<aws::SdkLambda>, Instrumented<aws::SdkMetrics>>;

async fn connect(config: Config, metrics: &Arc<Metrics>) -> SdkContext {
    let (lambda, cloudwatch) = aws::connect(&config.aws).await;
    Context::new(
        config,
        Instrumented {
            inner: lambda,
            metrics: metrics.clone(),
        },
        Instrumented {
            inner: cloudwatch,
            metrics: metrics.clone(),
        },
    )
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

/// Runs the daemon until SIGTERM or SIGINT. `path` is re-read on SIGHUP.
pub async fn run(
    path: PathBuf,
    mut config: Config,
    overrides: Overrides,
) -> Result<(), DaemonError> {
    overrides.apply(&mut config);
    let metrics = Arc::new(Metrics::new());
    for target in &config.targets {
        metrics.register_target(target);
    }
    let health = Arc::new(Health::new());
    let listener = tokio::net::TcpListener::bind(config.daemon.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            address: config.daemon.listen,
            source,
        })?;
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(http::serve(
        listener,
        http::router(metrics.clone(), health.clone()),
        async move {
            let mut stopped = http_stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
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

    let interval = config.daemon.interval;
    let context = connect(config, &metrics).await;
    let mut daemon = Daemon {
        path,
        overrides,
        context,
        metrics,
        health,
        events,
        ticker: interval_timer(interval, Instant::now()),
        boundary_wake: Arc::default(),
        scheduler,
        boundaries: Boundaries::default(),
        memory: HashMap::new(),
        writes: Writes::default(),
        watches: JoinSet::new(),
        evaluations: JoinSet::new(),
        full_pass: None,
        pass_again: false,
        reloads: JoinSet::new(),
        reload_again: false,
        uninformed_passes: 0,
        told_systemd_ready: false,
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
    overrides: Overrides,
    context: SdkContext,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    events: mpsc::Sender<Event>,
    /// Full passes, every `daemon.interval`.
    ticker: Interval,
    /// Notified by the boundary timer job.
    boundary_wake: Arc<Notify>,
    scheduler: JobScheduler,
    boundaries: Boundaries,
    memory: HashMap<String, TargetMemory>,
    /// Writes in flight, at most one per function; waited for at shutdown.
    writes: Writes<WriteDone>,
    /// Status watches and retry timers; dropped at shutdown.
    watches: JoinSet<()>,
    /// Evaluations under way. They run beside the loop, so a slow pass over many
    /// targets never delays signals, boundaries or the watchdog.
    evaluations: JoinSet<EvaluationDone>,
    /// The task of the pass over all targets under way, if any.
    full_pass: Option<tokio::task::Id>,
    /// A reload asked for a pass while one was under way: start one when it ends.
    pass_again: bool,
    reloads: JoinSet<Result<Reloaded, String>>,
    /// A SIGHUP came while a reload was under way: reload again when it ends.
    reload_again: bool,
    /// Passes in a row that informed no target.
    uninformed_passes: u32,
    told_systemd_ready: bool,
}

impl Daemon {
    async fn run_loop(&mut self, mut inbox: mpsc::Receiver<Event>) {
        // Without a systemd watchdog, the branch below simply never fires.
        let watchdog_period = notify::watchdog_interval().unwrap_or(Duration::from_secs(86_400));
        let mut watchdog = interval_timer(watchdog_period, Instant::now() + watchdog_period);
        let mut heartbeat = interval_timer(HEARTBEAT, Instant::now() + HEARTBEAT);
        self.schedule_all_boundaries().await;
        loop {
            tokio::select! {
                _ = self.ticker.tick() => self.evaluate(None),
                Some(joined) = self.evaluations.join_next_with_id() => match joined {
                    Ok((id, done)) => self.evaluation_done(id, done),
                    Err(error) => self.evaluation_failed(error),
                },
                _ = watchdog.tick() => {
                    // Fed only while the loop makes progress and no pass is overdue:
                    // systemd restarts a daemon that is stuck, not one that is busy.
                    match self.health.not_alive() {
                        None => { let _ = notify::notify("WATCHDOG=1"); }
                        Some(why) => tracing::error!(why = why.trim_end(), "not feeding the systemd watchdog"),
                    }
                }
                _ = heartbeat.tick() => {
                    // Start-up lasts as long as the first pass, which grows with the
                    // number of targets: while the loop makes progress, ask systemd
                    // for more time instead of tuning TimeoutStartSec to the account.
                    if !self.told_systemd_ready && self.health.not_alive().is_none() {
                        let _ = notify::notify(START_EXTENSION);
                    }
                    // The backstop for a timer job that was lost or fired early.
                    self.fire_due_boundaries().await;
                }
                Some((held, joined)) = self.writes.join_next() => match joined {
                    Ok(done) => self.write_done(done),
                    Err(error) => self.write_failed(held, error),
                },
                Some(joined) = self.watches.join_next() => {
                    if let Err(error) = joined && error.is_panic() {
                        self.count_task_failure("watch", &error);
                    }
                }
                _ = self.boundary_wake.notified() => self.fire_due_boundaries().await,
                Some(joined) = self.reloads.join_next() => match joined {
                    Ok(outcome) => self.reload_done(outcome).await,
                    Err(error) => {
                        self.count_task_failure("reload", &error);
                        self.reload_done(Err(format!("the reload task failed: {error}"))).await;
                    }
                },
                event = inbox.recv() => match event {
                    Some(Event::Settled(target)) => self.evaluate(Some(&target)),
                    Some(Event::Reload) => self.start_reload(),
                    Some(Event::Shutdown) | None => return,
                },
            }
            self.health.loop_turned();
        }
    }

    fn count_task_failure(&self, task: &'static str, error: &tokio::task::JoinError) {
        tracing::error!(task, error = %error, "a background task failed");
        self.metrics.task_failures.with_label_values(&[task]).inc();
    }

    /// Starts an evaluation of every target, or only of `only`, beside the loop.
    fn evaluate(&mut self, only: Option<&str>) {
        let context = match only {
            None if self.full_pass.is_some() => return,
            None => self.context.clone(),
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
        let deadline = self.context.config.daemon.pass_deadline();
        let handle = self.evaluations.spawn(async move {
            let started = Instant::now();
            let evaluations =
                tokio::time::timeout(deadline, reconcile::evaluate(&context, Utc::now()))
                    .await
                    .ok();
            EvaluationDone {
                full_pass,
                started,
                evaluations,
                duration: started.elapsed(),
            }
        });
        if full_pass {
            self.full_pass = Some(handle.id());
            self.health.pass_started(deadline);
        }
    }

    /// Records an evaluation and starts the writes it calls for.
    fn evaluation_done(&mut self, id: tokio::task::Id, done: EvaluationDone) {
        let Some(evaluations) = done.evaluations else {
            tracing::error!(
                full_pass = done.full_pass,
                deadline_seconds = self.context.config.daemon.pass_deadline().as_secs(),
                "an evaluation outlived its deadline and was abandoned"
            );
            if done.full_pass {
                self.full_pass_ended(id, "timed_out");
            }
            return;
        };
        for evaluation in &evaluations {
            self.carry_out(evaluation, done.started);
        }
        if done.full_pass {
            self.metrics
                .evaluation_duration
                .observe(done.duration.as_secs_f64());
            let informed =
                self.context.config.targets.is_empty() || !reconcile::nothing_read(&evaluations);
            if informed {
                self.metrics
                    .last_successful_evaluation
                    .set(Utc::now().timestamp_millis() as f64 / 1000.0);
            }
            self.full_pass_ended(id, if informed { "informed" } else { "uninformed" });
        }
    }

    fn evaluation_failed(&mut self, error: tokio::task::JoinError) {
        self.count_task_failure("evaluation", &error);
        if self.full_pass == Some(error.id()) {
            self.full_pass_ended(error.id(), "failed");
        }
    }

    /// The bookkeeping of every pass over all targets, however it ended: readiness,
    /// the first `READY=1`, and a pass a reload asked for meanwhile.
    fn full_pass_ended(&mut self, id: tokio::task::Id, outcome: &'static str) {
        if self.full_pass == Some(id) {
            self.full_pass = None;
        }
        self.health.pass_ended();
        self.metrics.passes.with_label_values(&[outcome]).inc();
        self.metrics
            .last_evaluation
            .set(Utc::now().timestamp_millis() as f64 / 1000.0);
        if outcome == "informed" {
            self.uninformed_passes = 0;
            self.health.set_ready(true);
        } else {
            self.uninformed_passes += 1;
            tracing::warn!(
                outcome,
                passes_in_a_row = self.uninformed_passes,
                "a pass informed no target"
            );
            if self.uninformed_passes >= http::UNREADY_AFTER_PASSES {
                self.health.set_ready(false);
            }
        }
        // systemd learns that start-up is over after the first pass, whatever it
        // found: an account AWS cannot be read from is an alert, not a restart loop.
        if !self.told_systemd_ready {
            self.told_systemd_ready = true;
            let _ = notify::notify("READY=1");
        }
        if std::mem::take(&mut self.pass_again) {
            self.evaluate(None);
        }
    }

    /// Records one target's evaluation and starts the write it calls for, unless the
    /// evaluation started before the target's last write (its view is out of date).
    fn carry_out(&mut self, evaluation: &Evaluation, started: Instant) {
        let target = &evaluation.target;
        let memory = self.memory.entry(target.name.clone()).or_default();
        let print = fingerprint(target);
        if memory.fingerprint != print {
            *memory = TargetMemory {
                fingerprint: print,
                ..TargetMemory::default()
            };
        }
        if memory.last_write.is_some_and(|written| written >= started) {
            tracing::debug!(target = %target.name, "decision discarded: it predates the target's last write");
            return;
        }
        self.metrics.record_evaluation(evaluation);
        let Ok(evaluated) = &evaluation.outcome else {
            return;
        };
        let from = evaluated.observation.requested;
        let to = evaluated.decision.desired;
        let caps = evaluated.observation.caps;
        if to == from {
            memory.write.nothing_to_write();
            self.metrics.set_write_blocked(&target.name, None);
            return;
        }
        let function = function_name(&target.function).to_owned();
        let now = Instant::now();
        if self.context.config.daemon.dry_run
            || self.writes.busy(&function)
            || !memory.write.may_write(to, &caps, now)
        {
            self.metrics
                .set_write_blocked(&target.name, memory.write.blocked());
            return;
        }
        memory.last_write = Some(now);
        self.writes.spawn(
            Held {
                target: target.name.clone(),
                function,
            },
            write(
                self.context.clone(),
                target.clone(),
                from,
                to,
                caps,
                evaluated.decision.clone(),
            ),
        );
    }

    /// A write task that panicked or was aborted: its function is already released;
    /// the target is decided again from fresh reads.
    fn write_failed(&mut self, held: Held, error: tokio::task::JoinError) {
        self.count_task_failure("write", &error);
        tracing::error!(target = %held.target, "the write task failed; the target is evaluated again");
        self.evaluate(Some(&held.target));
    }

    fn write_done(&mut self, done: WriteDone) {
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
        let backoff = Backoff::default();
        let retry = memory.write.on_result(
            done.result.as_ref().map(|_| ()),
            done.to,
            done.caps,
            &backoff,
            Instant::now(),
            fastrand::f64(),
        );
        self.metrics
            .set_write_blocked(&done.target, memory.write.blocked());
        let Err(error) = &done.result else {
            let direction = if done.to > done.from { "up" } else { "down" };
            self.metrics
                .scaling_actions
                .with_label_values(&[&done.target, direction, done.trigger])
                .inc();
            self.watch_until_settled(target);
            return;
        };
        tracing::warn!(target = %done.target, to = done.to, error = %error, outcome = error.label(), retry = ?retry, "write failed");
        match retry {
            Some(Retry::After(wait)) => self.evaluate_after(&done.target, wait),
            Some(Retry::WhenSettled) => self.watch_until_settled(target),
            // The next evaluation after the refusal's memory or the cap tries again;
            // a timer makes sure of it even with a long interval.
            Some(Retry::Never) => {
                self.evaluate_after(&done.target, crate::actuator::REFUSAL_MEMORY)
            }
            Some(Retry::GiveUp) => self.evaluate_after(&done.target, backoff.cap),
            None => {}
        }
    }

    /// Evaluates `target` again after `wait`.
    fn evaluate_after(&mut self, target: &str, wait: Duration) {
        let events = self.events.clone();
        let name = target.to_owned();
        self.watches.spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = events.send(Event::Settled(name)).await;
        });
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
        self.boundaries.clear();
        let now = Utc::now();
        for target in self.context.config.targets.iter() {
            self.boundaries
                .set(&target.name, schedule::next_boundary(target, now));
        }
        self.arm_boundary_timer().await;
    }

    /// Evaluates every target whose boundary has come and queues its next one.
    async fn fire_due_boundaries(&mut self) {
        let now = Utc::now();
        for name in self.boundaries.take_due(now) {
            tracing::debug!(target = %name, "schedule boundary");
            self.evaluate(Some(&name));
            let next = self
                .context
                .config
                .targets
                .iter()
                .find(|target| target.name == name)
                .and_then(|target| schedule::next_boundary(target, now));
            self.boundaries.set(&name, next);
        }
        self.arm_boundary_timer().await;
    }

    /// Keeps one one-shot job armed for the earliest boundary; re-arms only when the
    /// earliest changed.
    async fn arm_boundary_timer(&mut self) {
        let earliest = self.boundaries.earliest();
        if self.boundaries.armed.map(|(when, _)| when) == earliest {
            return;
        }
        if let Some((_, job)) = self.boundaries.armed.take() {
            let _ = self.scheduler.remove(&job).await;
        }
        let Some(when) = earliest else {
            return;
        };
        let delay = (when - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let wake = self.boundary_wake.clone();
        let job = Job::new_one_shot(delay, move |_, _| wake.notify_one());
        let armed = match job {
            Ok(job) => self
                .scheduler
                .add(job)
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match armed {
            Ok(id) => self.boundaries.armed = Some((when, id)),
            // The heartbeat still finds the boundary within a second.
            Err(error) => tracing::error!(error = %error, "cannot arm the schedule boundary timer"),
        }
    }

    /// SIGHUP: read and validate the file, and connect anew if the AWS settings
    /// changed, all off the loop.
    fn start_reload(&mut self) {
        let _ = notify::notify("RELOADING=1");
        if !self.reloads.is_empty() {
            self.reload_again = true;
            return;
        }
        let path = self.path.clone();
        let old = self.context.config.clone();
        let metrics = self.metrics.clone();
        let overrides = self.overrides;
        self.reloads.spawn(async move {
            let loaded = tokio::task::spawn_blocking(move || config::load(&path))
                .await
                .map_err(|error| format!("the reload task failed: {error}"))?;
            let mut new = loaded.map_err(|error| error.to_string())?;
            overrides.apply(&mut new);
            let reconnect = new.aws != old.aws
                || new.daemon.max_write_rate != old.daemon.max_write_rate
                || new.daemon.max_read_rate != old.daemon.max_read_rate;
            let context = if reconnect {
                Some(connect(new.clone(), &metrics).await)
            } else {
                None
            };
            Ok(Reloaded {
                config: new,
                context,
            })
        });
    }

    /// Applies a reload, or keeps the old config when it failed; either way the loop
    /// goes on. A good reload evaluates every target at once.
    async fn reload_done(&mut self, outcome: Result<Reloaded, String>) {
        match outcome {
            Err(error) => {
                self.metrics
                    .config_reloads
                    .with_label_values(&["failure"])
                    .inc();
                tracing::error!(path = %self.path.display(), error = %error, "reload failed; the previous configuration stays in force");
            }
            Ok(Reloaded {
                config: new,
                context,
            }) => {
                let old = self.context.config.clone();
                for target in &old.targets {
                    let kept = new
                        .targets
                        .iter()
                        .find(|candidate| candidate.name == target.name);
                    self.metrics.forget_removed(target, kept);
                    if kept.is_none() {
                        self.memory.remove(&target.name);
                    }
                }
                for target in &new.targets {
                    self.metrics.register_target(target);
                }
                if new.daemon.listen != old.daemon.listen {
                    tracing::warn!(listen = %new.daemon.listen, "a new listen address takes effect at the next restart");
                }
                let interval = new.daemon.interval;
                self.context = match context {
                    Some(context) => context,
                    None => Context {
                        config: Arc::new(new),
                        ..self.context.clone()
                    },
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
                // Evaluate at once with the new config; the next pass follows one
                // interval later.
                self.ticker = interval_timer(interval, Instant::now() + interval);
                if self.full_pass.is_some() {
                    self.pass_again = true;
                } else {
                    self.evaluate(None);
                }
            }
        }
        let _ = notify::notify("READY=1");
        if std::mem::take(&mut self.reload_again) {
            self.start_reload();
        }
    }

    /// SIGTERM: no new evaluations; writes in flight finish within the grace period.
    async fn shut_down(&mut self) {
        let grace = self.context.config.daemon.shutdown_grace;
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
        let _ = self.scheduler.shutdown().await;
        self.watches.abort_all();
        self.evaluations.abort_all();
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
}

/// One write, beside the loop: waits for the write budget, puts or deletes, and logs
/// the change once.
async fn write(
    context: SdkContext,
    target: TargetConfig,
    from: u32,
    to: u32,
    caps: Caps,
    decision: Decision,
) -> WriteDone {
    context.limits.write().await;
    let result = reconcile::write(context.lambda.as_ref(), &target, to).await;
    if result.is_ok() {
        reconcile::log_change(&target, from, to, &decision);
    }
    WriteDone {
        target: target.name,
        from,
        to,
        trigger: decision.reason.trigger(),
        caps,
        result,
    }
}

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
            boundaries.set(&format!("t{index}"), Some(at(2)));
        }
        boundaries.set("early", Some(at(1)));
        boundaries.set("early", Some(at(3)));
        boundaries.set("never", None);
        assert_eq!(boundaries.earliest(), Some(at(2)));
        assert!(boundaries.take_due(at(1)).is_empty());
        assert_eq!(
            boundaries.take_due(at(2)).len(),
            5_000,
            "a burst is never cut"
        );
        assert_eq!(boundaries.take_due(at(10)), vec!["early".to_owned()]);
        assert_eq!(boundaries.earliest(), None);
    }
}
