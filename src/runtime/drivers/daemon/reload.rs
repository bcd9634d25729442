//! One reload, for the standby and the leader alike: read and validate the file off
//! the loop, with the command line's overrides applied, count and log the result in
//! one place, and reload again if a SIGHUP came while one was under way.
//!
//! What it must not do: change anything in force itself. A good reload hands the new
//! config to its caller; a bad one changes nothing but a counter and the log.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::notify::Systemd;
use crate::config::{self, Config, LoadError};
use crate::metrics::Metrics;

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
    pub fn apply(self, config: &mut Config) {
        config.daemon.dry_run |= self.dry_run;
        if let Some(listen) = self.listen {
            config.daemon.listen = listen;
        }
    }
}

/// Reloads of one process, whatever its role: where the file is, what wins over it,
/// and the reload under way (at most one; a SIGHUP meanwhile asks for one more after
/// it). It outlives a change of role, so a reload under way is not lost with it.
pub struct Reloader {
    path: PathBuf,
    overrides: Overrides,
    metrics: Arc<Metrics>,
    systemd: Arc<Systemd>,
    task: JoinSet<Result<Config, ReloadError>>,
    again: bool,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        overrides: Overrides,
        metrics: Arc<Metrics>,
        systemd: Arc<Systemd>,
    ) -> Self {
        Self {
            path,
            overrides,
            metrics,
            systemd,
            task: JoinSet::new(),
            again: false,
        }
    }

    /// Reads and validates the file off the loop, unless a reload is under way (then
    /// one more follows it).
    pub fn start(&mut self) {
        self.systemd.reloading();
        if !self.task.is_empty() {
            self.again = true;
            return;
        }
        self.task
            .spawn(read_config(self.path.clone(), self.overrides));
    }

    /// The reload under way ended: `Some` with the new config when it was good.
    /// Never resolves while none is under way.
    pub async fn finished(&mut self) -> Option<Config> {
        let outcome = match self.task.join_next().await {
            Some(Ok(outcome)) => outcome,
            Some(Err(error)) => {
                super::count_task_failure(&self.metrics, "reload", &error);
                Err(ReloadError::Task(error.to_string()))
            }
            None => std::future::pending().await,
        };
        let label = if outcome.is_ok() {
            "success"
        } else {
            "failure"
        };
        self.metrics
            .config_reloads
            .with_label_values(&[label])
            .inc();
        if let Err(error) = &outcome {
            self.report(error);
            // What the failed parse took (megabytes for a file of many errors) is
            // given back now, not at the next large job.
            crate::trim::release_free_memory();
        }
        self.systemd.ready();
        outcome.ok()
    }

    /// Logs a failed reload: each configuration error as an event of its own (at most
    /// `config::MAX_REPORTED` of them), then one line that says the old config stays.
    fn report(&self, error: &ReloadError) {
        let path = self.path.display();
        let summary = match error {
            ReloadError::Load(LoadError::Invalid(errors)) => {
                for error in &errors.errors {
                    tracing::error!(error = %error, "configuration error");
                }
                errors.summary()
            }
            ReloadError::Load(other) => other.to_string(),
            ReloadError::Task(error) => format!("the reload task failed: {error}"),
        };
        tracing::error!(path = %path, error = %summary, "reload failed; the previous configuration stays in force");
    }

    /// Whether a SIGHUP came while the last reload was under way (asked once).
    pub fn again(&mut self) -> bool {
        std::mem::take(&mut self.again)
    }
}

/// Why a reload kept the old config.
#[derive(Debug)]
enum ReloadError {
    Load(LoadError),
    Task(String),
}

/// Reads and validates the config file off the runtime's threads, with the command
/// line's overrides applied.
async fn read_config(path: PathBuf, overrides: Overrides) -> Result<Config, ReloadError> {
    let loaded = tokio::task::spawn_blocking(move || config::load(&path))
        .await
        .map_err(|error| ReloadError::Task(error.to_string()))?;
    let mut config = loaded.map_err(ReloadError::Load)?;
    overrides.apply(&mut config);
    Ok(config)
}

/// Logs the reload and warns of settings that only a restart applies.
pub fn taken_in_force(old: &Config, new: &Config, role: &'static str) {
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
    tracing::info!(targets = new.targets.len(), role, "configuration reloaded");
}
