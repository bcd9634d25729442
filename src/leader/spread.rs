//! The spread elector (`[leader] spread = true`): a lease per shard, each taken,
//! renewed and released by the rules of [`crate::leader`], and shared out among the
//! copies by the rules of [`super::balance`]. It tells the daemon which shards this
//! copy holds through a `watch` channel, and fences each shard's writes with that
//! shard's lease.
//!
//! One task does it all: each lease's renew as it falls due, and every
//! `renew_every / 2` a read of every lease it does not hold, then the balance. The
//! requests of a round go out at once; reads are waited for only until the next renew
//! falls due, so neither a slow answer nor many leases delay a renew. A shard it hands
//! over is fenced first and released only once no write of it is on the wire.
//!
//! It must not touch Lambda or CloudWatch, nor decide anything about a target.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::balance::{Shares, grants};
use super::{
    AfterFailure, Ask, Expected, Fence, LeaderElection, LeaseError, LeaseRecord, Renewal, Tenure,
    Verdict, Watch, new_version,
};
use crate::config::{LeaderSettings, ShardKey};

/// The name of a shard's lease item: `NAME@account/region`, `NAME@base` for the base
/// account's shard.
pub fn lease_name(name: &str, shard: &ShardKey) -> String {
    if shard.is_base() {
        format!("{name}@base")
    } else {
        format!("{name}@{shard}")
    }
}

/// Where the spread elector tells what becomes of this copy's leases: the metrics.
pub trait SpreadReport: Send + Sync + 'static {
    /// This copy now holds `shard` at `epoch`, or (`None`) no longer does.
    fn held(&self, shard: &ShardKey, epoch: Option<u64>);
    /// A lease changed hands here: `"taken"`, `"granted"` (handed to a copy that
    /// asked), `"lost"` (not renewed in time) or `"released"` (on the way out).
    fn changed(&self, how: &'static str);
    /// Requests sent to the lease table: `"read"` (a consistent `GetItem`) or
    /// `"write"` (a conditional put or update), for its bill.
    fn requested(&self, kind: &'static str, count: u64);
}

/// Each shard's write gate; a shard's fence is made closed the first time it is asked
/// for, by the elector or the driver, whichever comes first.
#[derive(Debug, Clone)]
pub struct Fences {
    window: Duration,
    by_shard: Arc<Mutex<HashMap<ShardKey, Fence>>>,
}

impl Fences {
    fn new(window: Duration) -> Self {
        Self {
            window,
            by_shard: Arc::default(),
        }
    }

    pub fn of(&self, shard: &ShardKey) -> Fence {
        self.by_shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(shard.clone())
            .or_insert_with(|| Fence::closed(self.window))
            .clone()
    }
}

/// The shards this copy holds, with the epoch of each lease.
pub type Held = BTreeMap<ShardKey, u64>;

/// What the daemon keeps of a running spread elector.
pub struct Spread {
    pub held: watch::Receiver<Held>,
    pub fences: Fences,
    /// Whether the last round's requests were answered: a copy holding nothing is
    /// ready only when it could take a shard.
    pub reachable: Arc<AtomicBool>,
    shards: Arc<watch::Sender<Vec<ShardKey>>>,
    release: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Spread {
    /// Starts the elector for `shards`; `backend` is the lease store, named per shard.
    pub fn start<L: LeaderElection>(
        backend: L,
        settings: &LeaderSettings,
        identity: String,
        shards: Vec<ShardKey>,
        report: impl SpreadReport,
    ) -> Self {
        let (held_sender, held) = watch::channel(Held::new());
        let (shards_sender, shards_changed) = watch::channel(shards);
        let (release, release_asked) = watch::channel(false);
        let fences = Fences::new(settings.write_window());
        let reachable = Arc::new(AtomicBool::new(false));
        let task = SpreadTask {
            backend: Arc::new(backend),
            name: settings.name.clone(),
            lease: settings.lease,
            renew_every: settings.renew_every,
            window: settings.write_window(),
            identity,
            leases: BTreeMap::new(),
            fences: fences.clone(),
            held: held_sender,
            reachable: reachable.clone(),
            report: Arc::new(report),
            last_ask: None,
            last_granted: None,
            next_read: Instant::now(),
            askers: BTreeMap::new(),
            failed: None,
        };
        Self {
            held,
            fences,
            reachable,
            shards: Arc::new(shards_sender),
            release,
            task: tokio::spawn(task.run(shards_changed, release_asked)),
        }
    }

    /// Where the shards of a reloaded config go: leases of shards no longer named are
    /// released, new ones are contended for.
    pub fn shards(&self) -> Arc<watch::Sender<Vec<ShardKey>>> {
        self.shards.clone()
    }

    /// Releases every lease held (each fence closed first) and stops the task; waits
    /// at most `limit`.
    pub async fn release(self, limit: Duration) {
        let _ = self.release.send(true);
        if tokio::time::timeout(limit, self.task).await.is_err() {
            tracing::warn!(
                "the shard leases were not released in time; other copies take them when they expire"
            );
        }
    }
}

/// One shard's lease as this copy knows it.
struct ShardLease<L> {
    backend: Arc<L>,
    fence: Fence,
    watch: Watch,
    tenure: Option<Tenure>,
    /// After a failed renew: when to try again.
    retry_at: Option<Instant>,
    /// Granted to another copy or no longer configured: fenced, released once no
    /// write is on the wire.
    handing: bool,
    /// No longer configured: forgotten once released.
    retired: bool,
    /// When this copy granted it to a copy that asked: not taken back for a cycle.
    granted_at: Option<Instant>,
    /// The holder and what this copy makes of the lease, from the last read (while
    /// not held).
    seen: Option<(Option<String>, Verdict)>,
}

impl<L> ShardLease<L> {
    fn holds(&self) -> bool {
        self.tenure.is_some() && !self.handing
    }

    /// When this copy next sends the renew or release of a lease it holds.
    fn due(&self, renew_every: Duration) -> Option<Instant> {
        let tenure = self.tenure.as_ref()?;
        Some(
            self.retry_at
                .unwrap_or_else(|| tenure.renew_due(renew_every)),
        )
    }
}

struct SpreadTask<L> {
    backend: Arc<L>,
    name: String,
    lease: Duration,
    renew_every: Duration,
    window: Duration,
    identity: String,
    leases: BTreeMap<ShardKey, ShardLease<L>>,
    fences: Fences,
    held: watch::Sender<Held>,
    reachable: Arc<AtomicBool>,
    report: Arc<dyn SpreadReport>,
    last_ask: Option<Instant>,
    last_granted: Option<Instant>,
    /// When the leases this copy does not hold are read next.
    next_read: Instant,
    /// Copies that asked this copy for a lease, with what they held and when: counted
    /// as live for a cycle, though they may hold nothing yet.
    askers: BTreeMap<String, (usize, Instant)>,
    /// Requests that failed since the last warning, and the first one's error.
    failed: Option<(usize, String)>,
}

/// A lease to take, in the order they are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Free {
    /// Released by its holder (handed over, or on its way out).
    Released,
    /// Its holder stopped renewing it.
    Abandoned,
    /// No item yet.
    NeverTaken,
}

/// What a request of one round came back with.
enum Answer {
    Renewed {
        sent: Instant,
        next: String,
        result: Result<Renewal, LeaseError>,
    },
    Released(Result<bool, LeaseError>),
    Read {
        at: Instant,
        result: Result<Option<LeaseRecord>, LeaseError>,
    },
}

impl<L: LeaderElection> SpreadTask<L> {
    /// A balancing cycle: a copy asks, and a holder grants, at most once in one. A
    /// lease, so that the last move's holder has renewed and been read by everyone.
    fn cycle(&self) -> Duration {
        self.lease
    }

    async fn run(
        mut self,
        mut shards: watch::Receiver<Vec<ShardKey>>,
        mut release_asked: watch::Receiver<bool>,
    ) {
        self.set_shards(&shards.borrow_and_update().clone());
        let mut prepared = false;
        let mut next = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                // The guard `wait_for` returns is dropped inside the block (it is not Send).
                _ = async { let _ = release_asked.wait_for(|asked| *asked).await; } => {
                    self.release_all().await;
                    return;
                }
                Ok(()) = shards.changed() => {
                    let shards = shards.borrow_and_update().clone();
                    self.set_shards(&shards);
                }
            }
            if !prepared {
                match self.backend.prepare().await {
                    Ok(()) => prepared = true,
                    Err(error) => {
                        self.unreachable(&error);
                        self.say_failures();
                        next = Instant::now() + self.renew_every / 2;
                        continue;
                    }
                }
            }
            self.round().await;
            self.say_failures();
            self.publish();
            next = self.next_round();
        }
    }

    fn set_shards(&mut self, shards: &[ShardKey]) {
        let gone: Vec<ShardKey> = self
            .leases
            .keys()
            .filter(|key| !shards.contains(key))
            .cloned()
            .collect();
        for key in gone {
            // A shard no longer configured: fenced now, released by the next round.
            if let Some(lease) = self.leases.get_mut(&key) {
                lease.fence.close();
                if lease.tenure.is_some() {
                    lease.handing = true;
                    lease.retired = true;
                    self.report.held(&key, None);
                } else {
                    self.leases.remove(&key);
                }
            }
        }
        for key in shards {
            let lease = self
                .leases
                .entry(key.clone())
                .or_insert_with(|| ShardLease {
                    backend: Arc::new(self.backend.named(&lease_name(&self.name, key))),
                    fence: self.fences.of(key),
                    watch: Watch::default(),
                    tenure: None,
                    retry_at: None,
                    handing: false,
                    retired: false,
                    granted_at: None,
                    seen: None,
                });
            // Configured again before its release went out: released all the same,
            // and contended for afresh.
            lease.retired = false;
        }
    }

    /// The next round: the next read, sooner when a renew is due.
    fn next_round(&self) -> Instant {
        let poll = self.next_read;
        self.leases
            .values()
            .filter_map(|lease| lease.due(self.renew_every))
            .fold(poll, Instant::min)
    }

    /// A request to the table failed: counted, and said once a round.
    fn unreachable(&mut self, error: &LeaseError) {
        self.reachable.store(false, Ordering::Relaxed);
        let (count, _) = self.failed.get_or_insert_with(|| (0, error.to_string()));
        *count += 1;
    }

    fn say_failures(&mut self) {
        if let Some((failed, first)) = self.failed.take() {
            tracing::warn!(identity = %self.identity, failed, error = %first, "shard lease requests failed");
        }
    }

    /// One round: every request at once, then the balance on what came back. Renews
    /// are waited for; reads only until the next renew falls due (a read left
    /// unanswered is sent again next round), so a slow read never delays a renew.
    async fn round(&mut self) {
        let now = Instant::now();
        // Renews fall due lease by lease; the others are read every half a renew
        // period, whatever woke the round.
        let reading = now >= self.next_read;
        if reading {
            self.next_read = now + self.renew_every / 2;
        }
        let mut requests = JoinSet::new();
        let mut reads = JoinSet::new();
        for (key, lease) in &self.leases {
            let (backend, key) = (lease.backend.clone(), key.clone());
            let identity = self.identity.clone();
            match &lease.tenure {
                Some(tenure) if lease.handing && lease.fence.in_flight() == 0 => {
                    let version = tenure.version.clone();
                    requests.spawn(async move {
                        let result = backend.release(&identity, &version, &new_version()).await;
                        (key, Answer::Released(result))
                    });
                }
                Some(_) if lease.due(self.renew_every).is_some_and(|due| due <= now) => {
                    let tenure = lease
                        .tenure
                        .as_ref()
                        .expect("a lease with a due date is held");
                    let (version, next) = (tenure.version.clone(), new_version());
                    requests.spawn(async move {
                        let sent = Instant::now();
                        let result = backend.renew(&identity, &version, &next).await;
                        let answer = Answer::Renewed { sent, next, result };
                        (key, answer)
                    });
                }
                Some(_) => {}
                None if !reading => {}
                None => {
                    reads.spawn(async move {
                        let result = backend.read().await;
                        let at = Instant::now();
                        (key, Answer::Read { at, result })
                    });
                }
            }
        }
        self.report.requested("read", reads.len() as u64);
        self.report.requested("write", requests.len() as u64);
        let mut answered = false;
        let mut asks = Vec::new();
        while let Some(joined) = requests.join_next().await {
            let Ok((key, answer)) = joined else {
                continue;
            };
            answered |= self.answered(&key, answer, &mut asks);
        }
        // At least a moment: a renew due that soon loses nothing by it.
        let read_until = self
            .next_round()
            .max(Instant::now() + Duration::from_millis(100));
        while let Ok(Some(joined)) = tokio::time::timeout_at(read_until, reads.join_next()).await {
            let Ok((key, answer)) = joined else {
                continue;
            };
            answered |= self.answered(&key, answer, &mut asks);
        }
        if answered {
            self.reachable.store(true, Ordering::Relaxed);
        }
        for (key, ask) in asks {
            self.consider(&key, &ask);
        }
        if reading {
            self.balance().await;
        }
    }

    /// Takes one answer in; `true` when the table answered. Asks that came with a
    /// renew are collected, to be judged once every renew of the round is in.
    fn answered(
        &mut self,
        key: &ShardKey,
        answer: Answer,
        asks: &mut Vec<(ShardKey, Ask)>,
    ) -> bool {
        let (lease_period, window) = (self.lease, self.window);
        let retry = (self.renew_every / 4).max(Duration::from_millis(100));
        let Some(lease) = self.leases.get_mut(key) else {
            return false;
        };
        let failed = match answer {
            Answer::Renewed { sent, next, result } => {
                let Some(tenure) = lease.tenure.as_mut() else {
                    return false;
                };
                match result {
                    Ok(Renewal::Kept { asked }) => {
                        tenure.version = next;
                        tenure.renewed = sent;
                        lease.retry_at = None;
                        if !lease.handing {
                            lease.fence.renewed(tenure.epoch, sent);
                        }
                        asks.extend(asked.map(|ask| (key.clone(), ask)));
                        return true;
                    }
                    Ok(Renewal::Lost) => {
                        self.lose(key, "the lease was taken by another copy");
                        return true;
                    }
                    Err(error) => {
                        match tenure.after_failure(Instant::now(), window, retry) {
                            AfterFailure::RetryAt(at) => lease.retry_at = Some(at),
                            AfterFailure::StepDown => {
                                self.lose(key, "no renew succeeded within half the lease")
                            }
                        }
                        error
                    }
                }
            }
            Answer::Released(result) => {
                let epoch = lease.tenure.take().map_or(0, |tenure| tenure.epoch);
                lease.handing = false;
                lease.retry_at = None;
                lease.watch.forget();
                if lease.retired {
                    self.leases.remove(key);
                }
                match result {
                    Ok(_) => {
                        tracing::info!(identity = %self.identity, shard = %key, epoch, "released the shard's lease");
                        return true;
                    }
                    // It expires in a lease; until then nobody takes it.
                    Err(error) => error,
                }
            }
            Answer::Read { at, result } => match result {
                Ok(found) => {
                    let verdict = lease.watch.observe(found.as_ref(), at, lease_period);
                    let owner = found.and_then(|record| record.owner);
                    lease.seen = Some((owner, verdict));
                    return true;
                }
                Err(error) => {
                    lease.seen = None;
                    error
                }
            },
        };
        self.unreachable(&failed);
        false
    }

    fn lose(&mut self, key: &ShardKey, why: &'static str) {
        let Some(lease) = self.leases.get_mut(key) else {
            return;
        };
        lease.fence.close();
        lease.watch.forget();
        lease.handing = false;
        lease.retry_at = None;
        if let Some(tenure) = lease.tenure.take() {
            tracing::warn!(identity = %self.identity, shard = %key, epoch = tenure.epoch, why, "lost the shard's lease: this copy stops acting on it");
            self.report.held(key, None);
            self.report.changed("lost");
        }
    }

    fn view(&self) -> Shares {
        let now = Instant::now();
        let mut others: BTreeMap<String, usize> = self
            .askers
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) < self.cycle())
            .map(|(asker, (holding, _))| (asker.clone(), *holding))
            .collect();
        // What a copy holds now counts, not what it held when it asked; a copy with
        // any lease abandoned is gone, though its other leases have not expired yet.
        let mut gone = std::collections::BTreeSet::new();
        for lease in self.leases.values() {
            match &lease.seen {
                Some((Some(owner), Verdict::Wait { .. })) => {
                    others.remove(owner);
                }
                Some((Some(owner), Verdict::Take { .. })) => {
                    gone.insert(owner.clone());
                }
                _ => {}
            }
        }
        for lease in self.leases.values() {
            if let Some((Some(owner), Verdict::Wait { .. })) = &lease.seen
                && *owner != self.identity
                && !gone.contains(owner)
            {
                *others.entry(owner.clone()).or_default() += 1;
            }
        }
        Shares {
            mine: self.leases.values().filter(|lease| lease.holds()).count(),
            others,
            leases: self.leases.len(),
        }
    }

    /// An ask that came with a renew: granted or left.
    fn consider(&mut self, key: &ShardKey, ask: &Ask) {
        let now = Instant::now();
        self.askers.insert(ask.by.clone(), (ask.holding, now));
        let mine = self.view().mine;
        if !grants(mine, ask.holding, self.last_granted, now, self.cycle()) {
            return;
        }
        let Some(lease) = self.leases.get_mut(key).filter(|lease| lease.holds()) else {
            return;
        };
        lease.fence.close();
        lease.handing = true;
        lease.granted_at = Some(now);
        self.last_granted = Some(now);
        tracing::info!(identity = %self.identity, shard = %key, to = %ask.by, mine, "handing the shard over: stopped writing it, releasing once no write is on the wire");
        self.report.held(key, None);
        self.report.changed("granted");
    }

    /// Takes free and expired leases up to this copy's share, free ones first; with
    /// none to take, asks the most loaded copy for one.
    async fn balance(&mut self) {
        let mut view = self.view();
        let mut takeable: Vec<(Free, ShardKey)> = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.tenure.is_none())
            .filter(|(_, lease)| {
                lease
                    .granted_at
                    .is_none_or(|at| Instant::now().saturating_duration_since(at) >= self.cycle())
            })
            .filter_map(|(key, lease)| match &lease.seen {
                Some((
                    None,
                    Verdict::Take {
                        expected: Expected::Absent,
                        ..
                    },
                )) => Some((Free::NeverTaken, key.clone())),
                Some((None, Verdict::Take { .. })) => Some((Free::Released, key.clone())),
                Some((Some(_), Verdict::Take { .. })) => Some((Free::Abandoned, key.clone())),
                _ => None,
            })
            .collect();
        // Never-taken leases in a random order, so that copies starting together try
        // different ones first.
        takeable.sort_by_cached_key(|(free, _)| (*free, fastrand::u32(..)));
        let none_takeable = takeable.is_empty();
        for (free, key) in takeable {
            if !view.may_take() {
                break;
            }
            // A first start: every copy sees every lease free and itself alone, so each
            // takes one a round and the copies see each other as owners within a few.
            let first_start = free == Free::NeverTaken;
            if self.take(&key).await {
                view.mine += 1;
                if first_start {
                    break;
                }
            }
        }
        if none_takeable {
            self.ask(&view).await;
        }
    }

    async fn take(&mut self, key: &ShardKey) -> bool {
        let Some(lease) = self.leases.get_mut(key) else {
            return false;
        };
        let Some((_, Verdict::Take { expected, epoch })) = lease.seen.take() else {
            return false;
        };
        let record = LeaseRecord {
            owner: Some(self.identity.clone()),
            version: new_version(),
            epoch,
            asked: None,
        };
        let sent = Instant::now();
        self.report.requested("write", 1);
        match lease.backend.acquire(&record, &expected).await {
            Ok(true) => {
                lease.fence.renewed(epoch, sent);
                lease.tenure = Some(Tenure {
                    epoch,
                    version: record.version,
                    renewed: sent,
                });
                tracing::info!(identity = %self.identity, shard = %key, epoch, "took the shard's lease");
                self.report.held(key, Some(epoch));
                self.report.changed("taken");
                true
            }
            Ok(false) => {
                lease.watch.forget();
                false
            }
            Err(error) => {
                lease.watch.forget();
                self.unreachable(&error);
                false
            }
        }
    }

    async fn ask(&mut self, view: &Shares) {
        let now = Instant::now();
        if self
            .last_ask
            .is_some_and(|at| now.saturating_duration_since(at) < self.cycle())
        {
            return;
        }
        let Some(holder) = view.whom_to_ask().map(str::to_owned) else {
            return;
        };
        // The holder's last shard by name: every asker picks the same one.
        let Some((key, lease)) = self.leases.iter().rev().find(|(_, lease)| {
            matches!(&lease.seen, Some((Some(owner), Verdict::Wait { .. })) if *owner == holder)
        }) else {
            return;
        };
        let ask = Ask {
            by: self.identity.clone(),
            holding: view.mine,
        };
        self.last_ask = Some(now);
        self.report.requested("write", 1);
        match lease.backend.ask(&holder, &ask).await {
            Ok(asked) => {
                if asked {
                    tracing::info!(identity = %self.identity, shard = %key, holder = %holder, holding = view.mine, "asked for a shard");
                }
            }
            Err(error) => self.unreachable(&error),
        }
    }

    /// Tells the daemon which shards this copy holds, when that changed.
    fn publish(&self) {
        let held: Held = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.holds())
            .filter_map(|(key, lease)| Some((key.clone(), lease.tenure.as_ref()?.epoch)))
            .collect();
        self.held.send_if_modified(|known| {
            let changed = *known != held;
            *known = held;
            changed
        });
    }

    /// On shutdown: every fence closed, then every held lease released at once.
    async fn release_all(&mut self) {
        let mut releases = JoinSet::new();
        for (key, lease) in &mut self.leases {
            lease.fence.close();
            if let Some(tenure) = lease.tenure.take() {
                self.report.requested("write", 1);
                let (backend, identity, key) =
                    (lease.backend.clone(), self.identity.clone(), key.clone());
                releases.spawn(async move {
                    let released = backend
                        .release(&identity, &tenure.version, &new_version())
                        .await;
                    (key, tenure.epoch, released)
                });
            }
        }
        while let Some(joined) = releases.join_next().await {
            let Ok((key, epoch, released)) = joined else {
                continue;
            };
            self.report.held(&key, None);
            match released {
                Ok(_) => {
                    tracing::info!(identity = %self.identity, shard = %key, epoch, "released the shard's lease");
                    self.report.changed("released");
                }
                Err(error) => {
                    tracing::warn!(identity = %self.identity, shard = %key, epoch, error = %error, "the shard's lease could not be released; another copy takes it when it expires")
                }
            }
        }
        let _ = self.held.send(Held::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::memory::MemoryLease;

    const LEASE: Duration = Duration::from_secs(15);
    const RENEW_EVERY: Duration = Duration::from_secs(5);

    fn settings() -> LeaderSettings {
        LeaderSettings {
            table: "lease".into(),
            name: "pc".into(),
            create_table: false,
            endpoint_url: None,
            lease: LEASE,
            renew_every: RENEW_EVERY,
            identity: None,
            spread: true,
        }
    }

    fn shards(count: usize) -> Vec<ShardKey> {
        (0..count)
            .map(|index| ShardKey::of(&format!("a{}", index / 2), &format!("r{}", index % 2)))
            .collect()
    }

    struct Unreported;

    impl SpreadReport for Unreported {
        fn held(&self, _: &ShardKey, _: Option<u64>) {}
        fn changed(&self, _: &'static str) {}
        fn requested(&self, _: &'static str, _: u64) {}
    }

    fn start(lease: &MemoryLease, name: &str, count: usize) -> Spread {
        Spread::start(
            lease.clone(),
            &settings(),
            name.into(),
            shards(count),
            Unreported,
        )
    }

    fn counts(copies: &[&Spread]) -> Vec<usize> {
        copies.iter().map(|copy| copy.held.borrow().len()).collect()
    }

    /// Every shard held by exactly one copy, and that copy's fence the only one open.
    fn one_writer_each(copies: &[&Spread], count: usize) {
        for shard in shards(count) {
            let holders = copies
                .iter()
                .filter(|copy| copy.held.borrow().contains_key(&shard))
                .count();
            let open = copies
                .iter()
                .filter(|copy| copy.fences.of(&shard).check().is_ok())
                .count();
            assert_eq!((holders, open), (1, 1), "{shard}");
        }
    }

    /// Steps virtual time in 100 ms ticks until `done`, returning how long it took.
    async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < limit, "not within {limit:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn three_copies_settle_at_two_each_and_a_fourth_is_handed_one_shard_a_cycle() {
        let table = MemoryLease::default();
        let a = start(&table.reach(), "a", 6);
        let b = start(&table.reach(), "b", 6);
        let c = start(&table.reach(), "c", 6);
        until(LEASE * 6, || counts(&[&a, &b, &c]) == [2, 2, 2]).await;
        one_writer_each(&[&a, &b, &c], 6);
        // Settled: nothing moves over several cycles.
        tokio::time::sleep(LEASE * 4).await;
        assert_eq!(counts(&[&a, &b, &c]), [2, 2, 2]);

        // 8 shards' worth: a fourth copy over 6 shards gets one (2/2/1/1 at most one apart).
        let d = start(&table.reach(), "d", 6);
        let took = until(LEASE * 3, || counts(&[&d])[0] == 1).await;
        assert!(took <= LEASE + RENEW_EVERY * 2, "{took:?}");
        tokio::time::sleep(LEASE * 4).await;
        let mut settled = counts(&[&a, &b, &c, &d]);
        settled.sort_unstable();
        assert_eq!(settled, [1, 1, 2, 2]);
        one_writer_each(&[&a, &b, &c, &d], 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_copy_that_leaves_hands_its_shards_over_within_half_a_renew_period() {
        let table = MemoryLease::default();
        let a = start(&table.reach(), "a", 4);
        let b = start(&table.reach(), "b", 4);
        until(LEASE * 6, || counts(&[&a, &b]) == [2, 2]).await;
        a.release(Duration::from_secs(5)).await;
        let taken = until(LEASE, || counts(&[&b]) == [4]).await;
        assert!(
            taken <= RENEW_EVERY / 2 + Duration::from_millis(200),
            "{taken:?}"
        );
        one_writer_each(&[&b], 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_copy_stops_writing_within_half_a_lease_before_its_shards_are_taken() {
        let table = MemoryLease::default();
        let cut = table.reach();
        let a = start(&cut, "a", 4);
        let b = start(&table.reach(), "b", 4);
        until(LEASE * 6, || counts(&[&a, &b]) == [2, 2]).await;
        let a_shards: Vec<ShardKey> = a.held.borrow().keys().cloned().collect();
        cut.set_reachable(false);
        let closed = until(LEASE, || {
            a_shards
                .iter()
                .all(|shard| a.fences.of(shard).check().is_err())
        })
        .await;
        assert!(closed <= LEASE / 2, "{closed:?}");
        let taken = closed + until(LEASE * 2, || counts(&[&b]) == [4]).await;
        assert!(
            taken - closed >= LEASE / 2,
            "closed {closed:?}, taken {taken:?}"
        );
        assert!(taken <= LEASE + RENEW_EVERY, "{taken:?}");
        // Back: a renews nothing it lost, and is handed shards again by asking.
        cut.set_reachable(true);
        until(LEASE * 6, || counts(&[&a, &b]) == [2, 2]).await;
        one_writer_each(&[&a, &b], 4);
    }
}
