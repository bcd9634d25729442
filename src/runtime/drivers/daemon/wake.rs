//! What wakes the loop at the next schedule boundary. The loop computes the boundary
//! itself (`policy::schedule::next_boundary`) and keeps one wake armed, for the
//! earliest; a wake source only has to ring once after a delay.
//!
//! In production that is a one-shot tokio-cron-scheduler job. Tests of the daemon in
//! virtual time use a tokio timer instead: under `tokio::time::pause` the runtime
//! jumps straight to the next deadline, so hours of schedule pass in milliseconds.
//! A wake source must not decide anything; a lost or early wake is harmless, since the
//! loop's heartbeat checks the boundaries every second as a backstop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_cron_scheduler::{Job, JobScheduler};

pub trait WakeSource: Send + 'static {
    /// Notifies `wake` once, `delay` from now, in place of any wake armed before.
    fn arm(
        &mut self,
        delay: Duration,
        wake: Arc<Notify>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Disarms and stops for good (at shutdown).
    fn stop(&mut self) -> impl Future<Output = ()> + Send;
}

/// tokio-cron-scheduler, with at most one one-shot job at a time.
pub struct CronWakes {
    scheduler: JobScheduler,
    armed: Option<uuid::Uuid>,
}

impl CronWakes {
    pub async fn start() -> Result<Self, String> {
        let scheduler = JobScheduler::new()
            .await
            .map_err(|error| error.to_string())?;
        scheduler.start().await.map_err(|error| error.to_string())?;
        Ok(Self {
            scheduler,
            armed: None,
        })
    }
}

impl WakeSource for CronWakes {
    async fn arm(&mut self, delay: Duration, wake: Arc<Notify>) -> Result<(), String> {
        if let Some(job) = self.armed.take() {
            let _ = self.scheduler.remove(&job).await;
        }
        let job = Job::new_one_shot(delay, move |_, _| wake.notify_one())
            .map_err(|error| error.to_string())?;
        let id = self
            .scheduler
            .add(job)
            .await
            .map_err(|error| error.to_string())?;
        self.armed = Some(id);
        Ok(())
    }

    async fn stop(&mut self) {
        let _ = self.scheduler.shutdown().await;
    }
}

/// A tokio timer: virtual under `tokio::time::pause`.
#[derive(Default)]
pub struct TimerWakes {
    armed: Option<AbortHandle>,
}

impl WakeSource for TimerWakes {
    async fn arm(&mut self, delay: Duration, wake: Arc<Notify>) -> Result<(), String> {
        if let Some(armed) = self.armed.take() {
            armed.abort();
        }
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            wake.notify_one();
        });
        self.armed = Some(task.abort_handle());
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(armed) = self.armed.take() {
            armed.abort();
        }
    }
}
