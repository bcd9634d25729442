//! The elector task: takes, renews and releases the leader lease through a
//! [`LeaderElection`] backend, following the rules of [`crate::leader`], and tells the
//! daemon its role through a `watch` channel and the write [`Fence`].
//!
//! It runs beside the daemon loop for the whole life of the process, whatever the
//! role, so renewals never wait for a pass, a write or a reload. It must not touch
//! Lambda or CloudWatch: a standby reads nothing but the lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::LeaderSettings;
use crate::leader::{
    AfterFailure, Fence, LeaderElection, LeaseError, LeaseRecord, Renewal, Tenure, Verdict, Watch,
    new_version,
};

/// Where the elector tells what becomes of this copy's lease, as it happens: the
/// metrics (`metrics::LeaseGauges`) in the daemon.
pub trait LeaseReport: Send + Sync + 'static {
    /// This copy took the lease at `epoch`.
    fn took(&self, epoch: u64);
    /// This copy no longer leads: it stepped down (a transition) or released the lease
    /// on the way out (not one).
    fn stood_by(&self, stepped_down: bool);
    /// How long the lease has stood since its last renew, as this copy sees it.
    fn lease_age(&self, age: Duration);
}

/// This copy's role, as the elector last decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Standby,
    Leader { epoch: u64 },
}

impl Role {
    pub fn is_leader(self) -> bool {
        matches!(self, Role::Leader { .. })
    }
}

/// What the daemon keeps of a running elector.
pub struct Elector {
    pub role: watch::Receiver<Role>,
    pub fence: Fence,
    /// Whether the last request to the lease store was answered: a standby is ready
    /// only when it could take over.
    pub reachable: Arc<AtomicBool>,
    release: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Elector {
    /// Starts the elector task for `identity`.
    pub fn start<L: LeaderElection>(
        backend: L,
        settings: &LeaderSettings,
        identity: String,
        report: impl LeaseReport,
    ) -> Self {
        let (role_sender, role) = watch::channel(Role::Standby);
        let (release, release_asked) = watch::channel(false);
        let fence = Fence::closed(settings.write_window());
        let reachable = Arc::new(AtomicBool::new(false));
        let task = ElectorTask {
            backend,
            lease: settings.lease,
            renew_every: settings.renew_every,
            window: settings.write_window(),
            identity,
            fence: fence.clone(),
            role: role_sender,
            reachable: reachable.clone(),
            report: Box::new(report),
            watch: Watch::default(),
            tenure: None,
        };
        Self {
            role,
            fence,
            reachable,
            release,
            task: tokio::spawn(task.run(release_asked)),
        }
    }

    /// Gives the lease up (if held) and stops the task; waits at most `limit`.
    pub async fn release(self, limit: Duration) {
        let _ = self.release.send(true);
        if tokio::time::timeout(limit, self.task).await.is_err() {
            tracing::warn!(
                "the lease was not released in time; another copy takes over when it expires"
            );
        }
    }
}

struct ElectorTask<L> {
    backend: L,
    lease: Duration,
    renew_every: Duration,
    window: Duration,
    identity: String,
    fence: Fence,
    role: watch::Sender<Role>,
    reachable: Arc<AtomicBool>,
    report: Box<dyn LeaseReport>,
    watch: Watch,
    tenure: Option<Tenure>,
}

impl<L: LeaderElection> ElectorTask<L> {
    /// A renew that failed is tried again this soon while the window is open.
    fn retry_after(&self) -> Duration {
        (self.renew_every / 4).max(Duration::from_millis(100))
    }

    async fn run(mut self, mut release_asked: watch::Receiver<bool>) {
        let mut next = Instant::now();
        let mut prepared = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                // The guard `wait_for` returns is dropped inside the block (it is not Send).
                _ = async { let _ = release_asked.wait_for(|asked| *asked).await; } => {
                    self.release().await;
                    return;
                }
            }
            if !prepared {
                match self.backend.prepare().await {
                    Ok(()) => prepared = true,
                    Err(error) => {
                        self.unreachable(&error);
                        next = Instant::now() + self.renew_every;
                        continue;
                    }
                }
            }
            next = match self.tenure.take() {
                None => self.contend().await,
                Some(tenure) => self.renew(tenure).await,
            };
            self.export_age();
        }
    }

    fn unreachable(&self, error: &LeaseError) {
        self.reachable.store(false, Ordering::Relaxed);
        tracing::warn!(identity = %self.identity, error = %error, "a lease request failed");
    }

    /// How often a standby reads the lease: twice per renew, so that it sees a renew
    /// at most half a period after it was written, and a dead leader's lease is taken
    /// within `lease + renew_every` of its last renew.
    fn poll_every(&self) -> Duration {
        self.renew_every / 2
    }

    /// A standby's step: read the lease and take it when it is free or abandoned.
    async fn contend(&mut self) -> Instant {
        let read = self.backend.read().await;
        // The version was seen when the answer came, not when the read was sent: a
        // read can be overtaken by a renew sent after it, and counting from the send
        // would start the lease's clock before the renew that it is timing.
        let seen_at = Instant::now();
        let found = match read {
            Ok(found) => found,
            Err(error) => {
                self.unreachable(&error);
                return seen_at + self.poll_every();
            }
        };
        self.reachable.store(true, Ordering::Relaxed);
        let (expected, epoch) = match self.watch.observe(found.as_ref(), seen_at, self.lease) {
            Verdict::Wait { until } => return until.min(seen_at + self.poll_every()),
            Verdict::Take { expected, epoch } => (expected, epoch),
        };
        let record = LeaseRecord {
            owner: Some(self.identity.clone()),
            version: new_version(),
            epoch,
            asked: None,
        };
        let sent = Instant::now();
        match self.backend.acquire(&record, &expected).await {
            Ok(true) => {
                let tenure = Tenure {
                    epoch,
                    version: record.version,
                    renewed: sent,
                };
                let due = tenure.renew_due(self.renew_every);
                self.become_leader(tenure);
                due
            }
            // Another copy was faster: watch its lease from now.
            Ok(false) => {
                self.watch.forget();
                Instant::now()
            }
            Err(error) => {
                // The put may have landed; if so the record names this copy, and it
                // is judged like anyone else's lease: no double leader either way.
                self.unreachable(&error);
                self.watch.forget();
                Instant::now() + self.poll_every()
            }
        }
    }

    fn become_leader(&mut self, tenure: Tenure) {
        self.fence.renewed(tenure.epoch, tenure.renewed);
        tracing::info!(identity = %self.identity, epoch = tenure.epoch, "took the leader lease");
        self.report.took(tenure.epoch);
        let _ = self.role.send(Role::Leader {
            epoch: tenure.epoch,
        });
        self.tenure = Some(tenure);
    }

    /// A leader's step: renew, or step down when the lease is lost or too old.
    async fn renew(&mut self, mut tenure: Tenure) -> Instant {
        let next_version = new_version();
        let sent = Instant::now();
        match self
            .backend
            .renew(&self.identity, &tenure.version, &next_version)
            .await
        {
            // The single lease is never asked for: there is nothing to balance.
            Ok(Renewal::Kept { .. }) => {
                self.reachable.store(true, Ordering::Relaxed);
                tenure.version = next_version;
                tenure.renewed = sent;
                self.fence.renewed(tenure.epoch, sent);
                let due = tenure.renew_due(self.renew_every);
                self.tenure = Some(tenure);
                due
            }
            Ok(Renewal::Lost) => {
                self.reachable.store(true, Ordering::Relaxed);
                self.step_down(tenure.epoch, "the lease was taken by another copy");
                Instant::now()
            }
            Err(error) => {
                self.unreachable(&error);
                match tenure.after_failure(Instant::now(), self.window, self.retry_after()) {
                    AfterFailure::RetryAt(at) => {
                        self.tenure = Some(tenure);
                        at
                    }
                    AfterFailure::StepDown => {
                        self.step_down(tenure.epoch, "no renew succeeded within half the lease");
                        Instant::now() + self.renew_every
                    }
                }
            }
        }
    }

    fn step_down(&mut self, epoch: u64, why: &'static str) {
        self.fence.close();
        self.watch.forget();
        tracing::warn!(identity = %self.identity, epoch, why, "stepped down: this copy stands by");
        self.report.stood_by(true);
        let _ = self.role.send(Role::Standby);
    }

    /// On shutdown: a held lease is released so a standby takes over at its next read.
    async fn release(&mut self) {
        let Some(tenure) = self.tenure.take() else {
            return;
        };
        self.fence.close();
        match self
            .backend
            .release(&self.identity, &tenure.version, &new_version())
            .await
        {
            Ok(true) => {
                tracing::info!(identity = %self.identity, epoch = tenure.epoch, "released the leader lease")
            }
            Ok(false) => {
                tracing::warn!(identity = %self.identity, epoch = tenure.epoch, "the lease had already passed to another copy")
            }
            Err(error) => {
                tracing::warn!(identity = %self.identity, epoch = tenure.epoch, error = %error, "the lease could not be released; another copy takes over when it expires")
            }
        }
        self.report.stood_by(false);
        let _ = self.role.send(Role::Standby);
    }

    fn export_age(&self) {
        let age = match (&self.tenure, self.watch.seen_since()) {
            (Some(tenure), _) => Instant::now().saturating_duration_since(tenure.renewed),
            (None, Some(since)) => Instant::now().saturating_duration_since(since),
            (None, None) => Duration::ZERO,
        };
        self.report.lease_age(age);
    }
}

/// This copy's default identity: hostname and process id.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::memory::MemoryLease;

    fn settings() -> LeaderSettings {
        LeaderSettings {
            table: "lease".into(),
            name: "pc-autoscaler".into(),
            create_table: false,
            endpoint_url: None,
            lease: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            identity: None,
            spread: false,
        }
    }

    fn start(lease: &MemoryLease, name: &str) -> Elector {
        Elector::start(lease.clone(), &settings(), name.into(), Unreported)
    }

    /// Tests read the role and the fence, not the metrics.
    struct Unreported;

    impl LeaseReport for Unreported {
        fn took(&self, _: u64) {}
        fn stood_by(&self, _: bool) {}
        fn lease_age(&self, _: Duration) {}
    }

    /// Steps virtual time in 10 ms ticks until `done`, returning how long it took.
    async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < limit, "not within {limit:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_leader_closes_its_fence_half_a_lease_before_a_standby_takes_over() {
        let shared = MemoryLease::default();
        let (lease_a, lease_b) = (shared.reach(), shared.reach());
        let a = start(&lease_a, "a");
        until(Duration::from_secs(1), || a.fence.check().is_ok()).await;
        let b = start(&lease_b, "b");
        // A full lease and more with both alive: b never takes over.
        tokio::time::sleep(Duration::from_secs(40)).await;
        assert_eq!(*b.role.borrow(), Role::Standby);
        assert_eq!(*a.role.borrow(), Role::Leader { epoch: 1 });

        lease_a.set_reachable(false);
        let fence_closed = until(Duration::from_secs(60), || a.fence.check().is_err()).await;
        let taken = fence_closed + until(Duration::from_secs(60), || b.fence.check().is_ok()).await;
        assert!(
            fence_closed <= settings().write_window(),
            "{fence_closed:?}"
        );
        assert!(
            taken - fence_closed >= settings().lease / 2,
            "fence closed after {fence_closed:?}, lease taken after {taken:?}"
        );
        assert!(
            taken <= settings().lease + settings().renew_every,
            "{taken:?}"
        );
        assert_eq!(*b.role.borrow(), Role::Leader { epoch: 2 });
        until(Duration::from_secs(10), || !a.role.borrow().is_leader()).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_is_taken_within_half_a_renew_period() {
        let shared = MemoryLease::default();
        let a = start(&shared.reach(), "a");
        until(Duration::from_secs(1), || a.fence.check().is_ok()).await;
        let b = start(&shared.reach(), "b");
        tokio::time::sleep(Duration::from_secs(7)).await;
        a.release(Duration::from_secs(5)).await;
        let taken = until(Duration::from_secs(10), || b.fence.check().is_ok()).await;
        assert!(taken <= settings().renew_every / 2, "{taken:?}");
        let record = shared.record().expect("a lease record");
        assert_eq!(record.owner.as_deref(), Some("b"));
        assert_eq!(record.epoch, 2, "the release kept the epoch");
    }
}
