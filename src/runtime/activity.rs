//! The operator's view of a running daemon: every decision that changed something (an
//! activity), kept in a bounded ring. The driver writes it from the shards' effects;
//! `/activities`, `/status` (for each target's newest activity) and
//! `pc-autoscaler status` read it. [`TargetStatus`] is the shape `/status` answers in;
//! the shard projects it from its own state when asked.
//!
//! Plain data behind one mutex, held only to copy an entry in or out: serializing and
//! the file are done outside it. With `daemon.activity_log`, every activity and every
//! outcome is also appended to a JSON-lines file by a thread of its own ([`ActivityLog`]),
//! rotated by size, and read back at start, so history survives restarts without a
//! database. It must not decide anything or talk to AWS.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Activities kept per target, newest last.
pub const PER_TARGET: usize = 100;
/// Activities kept in all, whatever the number of targets.
pub const TOTAL: usize = 20_000;
/// The most one `/activities` or `/status` answer carries.
pub const MAX_PAGE: usize = 1_000;

/// What kind of change an activity records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A put or delete sent to Lambda.
    Write,
    /// Capacity found changed by someone else.
    Drift,
    /// The decision started holding capacity because the metrics could not be used.
    Hold,
    /// The target cannot be decided or its decision cannot be written (a weighted
    /// alias, an unreadable config, a refused value, failing writes).
    Blocked,
}

/// What set the evaluation off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The pass every `daemon.interval`.
    Interval,
    /// A schedule boundary.
    Boundary,
    /// An allocation settled.
    Settle,
    /// A scan found drift, or first read the target.
    Drift,
    /// A scan the daemon asked for, or a function read for the first time.
    Scan,
    /// A good reload.
    Reload,
    /// A throttled or failed write's retry time.
    Retry,
}

/// One change, as `/activities` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// Increasing within one daemon's life; a later line with the same id (in the
    /// activity log) is the same activity with its outcome known.
    pub id: u64,
    pub time: DateTime<Utc>,
    pub target: String,
    pub kind: Kind,
    pub from: Option<u32>,
    pub to: Option<u32>,
    /// The policy's reason, rendered.
    pub reason: String,
    pub trigger: Trigger,
    /// `sent`, `IN_PROGRESS`, `READY after 62 s`, `FAILED: …`, `throttled`,
    /// `conflict`, `refused: …`, `error: …`, or what a drift, hold or block was.
    pub outcome: String,
    /// The leader lease's epoch; 0 without leader election.
    pub epoch: u64,
}

/// One target's latest evaluation, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub target: String,
    pub function: String,
    pub qualifier: String,
    pub evaluated_at: DateTime<Utc>,
    /// Bounds in force, and the schedule rule they come from (`None`: the target's own).
    pub min: u32,
    pub max: u32,
    pub rule: Option<String>,
    /// The labels below are fixed words: borrowed, not a copy per target.
    pub metric: Option<Cow<'static, str>>,
    pub metric_value: Option<f64>,
    /// Seconds since the newest datapoint used, at `evaluated_at`.
    pub metric_age_seconds: Option<i64>,
    pub metric_data: Cow<'static, str>,
    pub requested: u32,
    pub allocated: u32,
    /// `READY`, `IN_PROGRESS` or `FAILED`: `IN_PROGRESS` is an allocation under way.
    pub allocation: Cow<'static, str>,
    /// Lambda's `StatusReason` while the config is `FAILED`.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// When a `FAILED` config is written again.
    #[serde(default)]
    pub next_attempt: Option<DateTime<Utc>>,
    pub desired: u32,
    pub reason: String,
    pub reserved_available: Option<u32>,
    pub account_headroom: Option<u32>,
    /// Why the target is not decided or its decision not written, if it is not.
    pub blocked: Option<String>,
    /// From the journal, when shown.
    pub last_activity: Option<Box<Activity>>,
}

/// Activity ids: increasing over the life of one process (and past those restored
/// from the activity log), shared by every shard so that each knows the id of an
/// activity it records before the journal holds it.
#[derive(Debug, Clone, Default)]
pub struct ActivityIds(Arc<AtomicU64>);

impl ActivityIds {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Ids after `id` only, from now on.
    fn after(&self, id: u64) {
        self.0.fetch_max(id, Ordering::Relaxed);
    }
}

/// Bounded history.
#[derive(Debug, Default)]
pub struct Journal {
    ids: ActivityIds,
    by_target: HashMap<String, VecDeque<Activity>>,
    /// Activities in the order they were kept, to evict the oldest past `TOTAL`. An
    /// entry whose activity left by its target's own bound stays until it is reached
    /// or compacted: no search on the way in.
    order: VecDeque<(String, u64)>,
    /// Activities kept in all.
    kept: usize,
    /// The activity log's writer, when there is one.
    sink: Option<SyncSender<Activity>>,
}

impl Journal {
    /// Where new activities take their ids.
    pub fn ids(&self) -> ActivityIds {
        self.ids.clone()
    }

    /// Records a new activity, giving it the next id, and returns the id.
    pub fn record(&mut self, mut activity: Activity) -> u64 {
        activity.id = self.ids.next();
        let id = activity.id;
        self.add(activity);
        id
    }

    /// Records a new activity whose id was taken from [`Journal::ids`].
    pub fn add(&mut self, activity: Activity) {
        self.ids.after(activity.id);
        self.log(&activity);
        self.keep(activity);
    }

    /// Appends to the activity log, if any, without waiting: a log that cannot keep
    /// up loses lines, never the loop's time.
    fn log(&mut self, activity: &Activity) {
        if let Some(sink) = &self.sink
            && let Err(TrySendError::Full(_)) = sink.try_send(activity.clone())
        {
            tracing::warn!("the activity log is behind; an activity was not written to it");
        }
    }

    /// Sends every later activity and outcome to `sink`.
    pub fn log_to(&mut self, sink: SyncSender<Activity>) {
        self.sink = Some(sink);
    }

    /// Keeps an activity as it is (read back from the activity log at start).
    pub fn restore(&mut self, activity: Activity) {
        self.ids.after(activity.id);
        if let Some(kept) = self.find(&activity.target, activity.id) {
            *kept = activity;
        } else {
            self.keep(activity);
        }
    }

    fn keep(&mut self, activity: Activity) {
        let key = (activity.target.clone(), activity.id);
        let history = self.by_target.entry(key.0.clone()).or_default();
        history.push_back(activity);
        self.kept += 1;
        if history.len() > PER_TARGET {
            history.pop_front();
            self.kept -= 1;
        }
        self.order.push_back(key);
        while self.kept > TOTAL {
            let Some((target, id)) = self.order.pop_front() else {
                break;
            };
            let Some(history) = self.by_target.get_mut(&target) else {
                continue;
            };
            if history.front().is_some_and(|oldest| oldest.id == id) {
                history.pop_front();
                self.kept -= 1;
                if history.is_empty() {
                    self.by_target.remove(&target);
                }
            }
        }
        if self.order.len() > 2 * TOTAL {
            let by_target = &self.by_target;
            self.order.retain(|(target, id)| {
                by_target
                    .get(target)
                    .is_some_and(|history| history.front().is_some_and(|oldest| oldest.id <= *id))
            });
        }
    }

    fn find(&mut self, target: &str, id: u64) -> Option<&mut Activity> {
        self.by_target
            .get_mut(target)?
            .iter_mut()
            .rev()
            .find(|activity| activity.id == id)
    }

    /// Sets the outcome of activity `id` of `target`; returns the updated activity
    /// (for the log), or `None` when it has been evicted.
    pub fn set_outcome(&mut self, target: &str, id: u64, outcome: String) -> Option<Activity> {
        let activity = self.find(target, id)?;
        activity.outcome = outcome;
        let updated = activity.clone();
        self.log(&updated);
        Some(updated)
    }

    /// The newest activities first, of one target or all, at or after `since`, at
    /// most `limit` (and never more than `MAX_PAGE`).
    pub fn activities(
        &self,
        target: Option<&str>,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Vec<Activity> {
        let recent = |activity: &&Activity| since.is_none_or(|since| activity.time >= since);
        let mut found: Vec<&Activity> = match target {
            Some(target) => self
                .by_target
                .get(target)
                .into_iter()
                .flatten()
                .filter(recent)
                .collect(),
            None => self.by_target.values().flatten().filter(recent).collect(),
        };
        // Sorted by reference: only the page that is answered is copied.
        found.sort_by_key(|activity| std::cmp::Reverse((activity.time, activity.id)));
        found
            .into_iter()
            .take(limit.min(MAX_PAGE))
            .cloned()
            .collect()
    }

    /// How many activities are kept in all.
    pub fn len(&self) -> usize {
        self.kept
    }

    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }

    /// The target's newest activity.
    pub fn newest(&self, target: &str) -> Option<Activity> {
        self.by_target
            .get(target)
            .and_then(|history| history.back().cloned())
    }
}

/// The append-only JSON-lines file: one line per activity or outcome (a later line
/// with the same id replaces an earlier one). Past `max_bytes` the file moves to
/// `PATH.1` (replacing it) and a new one starts, so at most twice `max_bytes` are kept.
pub struct ActivityLog {
    path: PathBuf,
    max_bytes: u64,
}

/// Lines the writer may fall behind by before new ones are dropped.
const LOG_BACKLOG: usize = 10_000;

impl ActivityLog {
    pub fn new(path: &Path, max_bytes: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            max_bytes,
        }
    }

    fn rotated(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(".1");
        PathBuf::from(name)
    }

    /// Every activity in the rotated and the current file, oldest first; lines that
    /// do not parse (a torn last line) are skipped.
    pub fn read_back(&self) -> Vec<Activity> {
        let mut found = Vec::new();
        for path in [self.rotated(), self.path.clone()] {
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            found.extend(
                std::io::BufReader::new(file)
                    .lines()
                    .map_while(Result::ok)
                    .filter_map(|line| serde_json::from_str::<Activity>(&line).ok()),
            );
        }
        found
    }

    /// Starts the writer thread; the journal sends it every activity and outcome.
    pub fn start(self) -> std::io::Result<SyncSender<Activity>> {
        let mut file = self.open()?;
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Activity>(LOG_BACKLOG);
        std::thread::Builder::new()
            .name("activity-log".into())
            .spawn(move || {
                for activity in receiver {
                    if let Err(error) = self.append(&mut file, &activity) {
                        tracing::warn!(path = %self.path.display(), error = %error, "cannot write the activity log");
                    }
                }
            })?;
        Ok(sender)
    }

    fn open(&self) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    fn append(&self, file: &mut std::fs::File, activity: &Activity) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(activity).map_err(std::io::Error::other)?;
        line.push(b'\n');
        file.write_all(&line)?;
        if file.metadata()?.len() > self.max_bytes {
            std::fs::rename(&self.path, self.rotated())?;
            *file = self.open()?;
        }
        Ok(())
    }
}

/// The journal as the loop and the HTTP server share it.
#[derive(Debug, Clone, Default)]
pub struct SharedJournal(Arc<Mutex<Journal>>);

impl SharedJournal {
    pub fn lock(&self) -> MutexGuard<'_, Journal> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(target: &str, minute: i64) -> Activity {
        Activity {
            id: 0,
            time: DateTime::<Utc>::from_timestamp(1_800_000_000 + minute * 60, 0)
                .expect("a valid time"),
            target: target.into(),
            kind: Kind::Write,
            from: Some(1),
            to: Some(2),
            reason: "tracking".into(),
            trigger: Trigger::Interval,
            outcome: "sent".into(),
            epoch: 0,
        }
    }

    #[test]
    fn the_ring_stays_within_its_bounds_after_100_000_activities() {
        let mut journal = Journal::default();
        for index in 0..100_000i64 {
            journal.record(activity(&format!("t{}", index % 500), index));
        }
        assert_eq!(journal.len(), TOTAL);
        let counted: usize = journal.by_target.values().map(VecDeque::len).sum();
        assert_eq!(counted, TOTAL);
        assert!(
            journal
                .by_target
                .values()
                .all(|history| history.len() <= PER_TARGET)
        );
        assert!(journal.order.len() <= 2 * TOTAL);
        // The newest are kept, newest first.
        let newest = journal.activities(None, None, 3);
        assert_eq!(newest[0].id, 100_000);
        assert_eq!(newest[2].id, 99_998);
        // One busy target keeps its last 100.
        for index in 0..1_000 {
            journal.record(activity("busy", 200_000 + index));
        }
        let busy = journal.activities(Some("busy"), None, MAX_PAGE);
        assert_eq!(busy.len(), PER_TARGET);
        assert_eq!(busy[0].id, 101_000);
        let counted: usize = journal.by_target.values().map(VecDeque::len).sum();
        assert_eq!((journal.len(), counted), (TOTAL, TOTAL));
        assert!(journal.order.len() <= 2 * TOTAL);
    }

    #[test]
    fn the_activity_log_rotates_by_size_and_is_read_back_with_outcomes() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("activity.jsonl");
        let mut journal = Journal::default();
        journal.log_to(
            ActivityLog::new(&path, 4_096)
                .start()
                .expect("the log opens"),
        );
        let mut last = 0;
        for minute in 0..100 {
            last = journal.record(activity("t", minute));
        }
        journal.set_outcome("t", last, "READY after 60 s".into());
        drop(journal);
        // The writer drains what was sent before the journal went away.
        let log = ActivityLog::new(&path, 4_096);
        let mut restored = Journal::default();
        assert!(eventually(|| {
            log.read_back()
                .last()
                .is_some_and(|last| last.outcome == "READY after 60 s")
        }));
        for activity in log.read_back() {
            restored.restore(activity);
        }
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |meta| meta.len());
        assert!(size(&path) <= 4_096 + 300 && size(&log.rotated()) <= 4_096 + 300);
        let newest = restored.activities(Some("t"), None, 1);
        assert_eq!(newest[0].id, last);
        assert_eq!(newest[0].outcome, "READY after 60 s");
        assert!(restored.len() < 100, "older lines rotated away");
        assert_eq!(restored.record(activity("t", 200)), last + 1, "ids go on");
    }

    /// Polls `condition` for up to 5 s (a thread is involved).
    fn eventually(mut condition: impl FnMut() -> bool) -> bool {
        for _ in 0..500 {
            if condition() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn an_outcome_updates_the_newest_activity() {
        let mut journal = Journal::default();
        let id = journal.record(activity("t", 0));
        journal.set_outcome("t", id, "READY after 60 s".into());
        assert_eq!(
            journal.newest("t").map(|last| last.outcome),
            Some("READY after 60 s".to_owned())
        );
        assert_eq!(
            journal.activities(Some("t"), Some(activity("t", 1).time), 10),
            Vec::new(),
            "`since` excludes older activities"
        );
        let ids = journal.ids();
        let next = ids.next();
        journal.add(Activity {
            id: next,
            ..activity("t", 2)
        });
        assert_eq!(journal.record(activity("t", 3)), next + 1);
    }
}
