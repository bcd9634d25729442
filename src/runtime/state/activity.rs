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
use std::io::{BufRead, Read, Write};
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
    /// An operator's override was set, cleared or ended, or its store could not be
    /// read; `target` is the override's scope.
    Override,
    /// A selector began or stopped managing a target, or skipped a function it matched;
    /// `target` is the target's name, or `selector/function` for a skip.
    Discovery,
    /// A target was taken over from Application Auto Scaling, or its takeover failed.
    Handover,
    /// Someone else keeps changing a target's capacity, or has stopped.
    Contested,
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
    /// An operator's override was set, cleared or ended.
    Override,
    /// A selector's discovery.
    Discovery,
    /// A read of Application Auto Scaling, or a takeover from it.
    Aas,
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
    /// The `[[account]]`'s name, or `base`.
    #[serde(default)]
    pub account: String,
    /// Its Region; `None`: `[aws] region` or the SDK's chain.
    #[serde(default)]
    pub region: Option<String>,
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
    /// When the override that decided ends, if one did.
    #[serde(default)]
    pub override_until: Option<DateTime<Utc>>,
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
    /// The last line could not be written whole nor cut back.
    torn: bool,
}

/// Lines the writer may fall behind by before new ones are dropped.
const LOG_BACKLOG: usize = 10_000;

impl ActivityLog {
    pub fn new(path: &Path, max_bytes: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            max_bytes,
            torn: false,
        }
    }

    fn rotated(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(".1");
        PathBuf::from(name)
    }

    /// Every activity in the rotated and the current file, oldest first. A line that
    /// is not an activity (a torn line, bad UTF-8, bad JSON, longer than
    /// [`MAX_LINE_BYTES`], an id out of range) is skipped and counted, and the reading
    /// goes on past it. A path that exists but is not a regular file (a FIFO, a
    /// device) is refused: reading one could block or never end.
    pub fn read_back(&self) -> Result<ReadBack, ActivityLogError> {
        let mut read = ReadBack::default();
        for path in [self.rotated(), self.path.clone()] {
            let Some(file) = open_regular(&path, false)? else {
                continue;
            };
            // The log rotates at `max_bytes`: a file much larger was not written here.
            let limit = self
                .max_bytes
                .saturating_mul(2)
                .saturating_add(MAX_LINE_BYTES as u64);
            let mut reader = std::io::BufReader::new(file.take(limit));
            let mut line = Vec::new();
            loop {
                line.clear();
                match read_line(&mut reader, &mut line) {
                    Ok(Line::End) => break,
                    Ok(Line::TooLong) => read.skipped += 1,
                    Ok(Line::Whole) => match parse_line(&line) {
                        Some(activity) => read.activities.push(activity),
                        None if line.iter().all(u8::is_ascii_whitespace) => {}
                        None => read.skipped += 1,
                    },
                    Err(source) => {
                        return Err(ActivityLogError::Read {
                            path: path.clone(),
                            source,
                        });
                    }
                }
            }
        }
        Ok(read)
    }

    /// Starts the writer thread; the journal sends it every activity and outcome.
    pub fn start(mut self) -> Result<SyncSender<Activity>, ActivityLogError> {
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
            })
            .map_err(|source| ActivityLogError::Read {
                path: PathBuf::from("(the writer thread)"),
                source,
            })?;
        Ok(sender)
    }

    fn open(&self) -> Result<std::fs::File, ActivityLogError> {
        open_regular(&self.path, true).map(|file| file.expect("created when absent"))
    }

    /// Appends one whole line. A write that fails part way (a full disk) is cut back,
    /// so the next line never starts inside a torn one.
    fn append(&mut self, file: &mut std::fs::File, activity: &Activity) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(activity).map_err(std::io::Error::other)?;
        line.push(b'\n');
        append_whole(file, &line, &mut self.torn)?;
        if file.metadata()?.len() > self.max_bytes {
            std::fs::rename(&self.path, self.rotated())?;
            *file = self.open().map_err(std::io::Error::other)?;
        }
        Ok(())
    }
}

/// A file lines are appended to.
trait LineFile: Write {
    fn length(&self) -> std::io::Result<u64>;
    fn cut_to(&mut self, length: u64) -> std::io::Result<()>;
}

impl LineFile for std::fs::File {
    fn length(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn cut_to(&mut self, length: u64) -> std::io::Result<()> {
        self.set_len(length)
    }
}

/// Appends `line` whole or not at all: a write that fails part way (a full disk) is cut
/// back; if even that fails, `torn` says so and the next line starts with a newline,
/// so that it stands on a line of its own and only the torn one is lost.
fn append_whole(file: &mut impl LineFile, line: &[u8], torn: &mut bool) -> std::io::Result<()> {
    let before = file.length()?;
    let written = if *torn {
        file.write_all(b"\n").and_then(|()| file.write_all(line))
    } else {
        file.write_all(line)
    };
    let Err(error) = written else {
        *torn = false;
        return Ok(());
    };
    // Cut back to how it was (torn as it was); failing that, end the torn part.
    *torn = match file.cut_to(before) {
        Ok(()) => *torn,
        Err(_) => file.write_all(b"\n").is_err(),
    };
    Err(error)
}

/// Whether `path` can be the activity log: a regular file that can be appended to, or
/// absent in a directory that can be written (its rotated `PATH.1` likewise). For
/// `check`, which runs where the daemon will.
pub fn check_path(path: &Path) -> Result<(), String> {
    let log = ActivityLog::new(path, 0);
    for candidate in [path.to_path_buf(), log.rotated()] {
        if let Ok(metadata) = std::fs::metadata(&candidate)
            && !metadata.is_file()
        {
            return Err(format!(
                "{} is {}, not a regular file",
                candidate.display(),
                kind_of(&metadata)
            ));
        }
    }
    if path.exists() {
        return std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|error| format!("{} cannot be written: {error}", path.display()));
    }
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !directory.is_dir() {
        return Err(format!(
            "its directory {} does not exist",
            directory.display()
        ));
    }
    let probe = directory.join(format!(".pc-autoscaler-check-{}", std::process::id()));
    std::fs::File::create(&probe)
        .map(|_| {
            let _ = std::fs::remove_file(&probe);
        })
        .map_err(|error| {
            format!(
                "its directory {} cannot be written: {error}",
                directory.display()
            )
        })
}

/// What the activity log held.
#[derive(Debug, Default)]
pub struct ReadBack {
    pub activities: Vec<Activity>,
    /// Lines that were not activities.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ActivityLogError {
    #[error("the activity log {} is not a regular file ({kind}); refusing to read or write it", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("cannot read or open the activity log {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A line longer than this is not an activity: an activity line is a few hundred bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Ids above this are refused when read back: a JSON number past 2⁵³ is not exact for
/// every reader, and ids must go on increasing from the largest.
pub const MAX_ID: u64 = (1 << 53) - 1;

/// What kind of thing is at a path that is not a regular file.
fn kind_of(metadata: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Checks that `path` (links followed) is a regular file or absent. Returns the file
/// opened for reading, or for appending with `create`; `None` when it is absent and
/// not to be created.
pub fn open_regular(path: &Path, create: bool) -> Result<Option<std::fs::File>, ActivityLogError> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => {
            return Err(ActivityLogError::NotAFile {
                path: path.to_path_buf(),
                kind: kind_of(&metadata),
            });
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !create => return Ok(None),
        _ => {}
    }
    let opened = if create {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    } else {
        std::fs::File::open(path)
    };
    opened.map(Some).map_err(|source| ActivityLogError::Read {
        path: path.to_path_buf(),
        source,
    })
}

enum Line {
    Whole,
    TooLong,
    End,
}

/// Reads one line into `line`, without its newline, at most [`MAX_LINE_BYTES`]; the
/// rest of a longer line is passed over.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Line> {
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => Line::End,
                (true, true) => Line::TooLong,
                (true, false) => Line::Whole,
            });
        }
        any = true;
        let (chunk, ends) = match available.iter().position(|byte| *byte == b'\n') {
            Some(at) => (&available[..at], Some(at + 1)),
            None => (available, None),
        };
        if line.len() + chunk.len() > MAX_LINE_BYTES {
            too_long = true;
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        let used = ends.unwrap_or(available.len());
        reader.consume(used);
        if ends.is_some() {
            return Ok(if too_long { Line::TooLong } else { Line::Whole });
        }
    }
}

/// An activity, when the line is one with an id in range.
fn parse_line(line: &[u8]) -> Option<Activity> {
    let activity: Activity = serde_json::from_slice(line).ok()?;
    (1..=MAX_ID).contains(&activity.id).then_some(activity)
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
                .expect("readable")
                .activities
                .last()
                .is_some_and(|last| last.outcome == "READY after 60 s")
        }));
        for activity in log.read_back().expect("readable").activities {
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

    #[test]
    fn a_damaged_log_is_read_past_what_is_not_an_activity() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("activity.jsonl");
        let line = |id: u64| {
            let mut line = serde_json::to_vec(&Activity {
                id,
                ..activity("t", id as i64)
            })
            .expect("JSON");
            line.push(b'\n');
            line
        };
        let mut text = Vec::new();
        for id in 1..=5 {
            text.extend(line(id));
        }
        text.extend(b"\xff\xfe not UTF-8\n");
        text.extend(line(6));
        text.extend(b"{\"id\": 7, \"torn");
        text.extend(b"\n");
        text.extend(vec![b'x'; MAX_LINE_BYTES + 10]);
        text.extend(b"\n");
        text.extend(line(18_446_744_073_709_551_615));
        text.extend(line(8));
        std::fs::write(&path, text).expect("written");
        let read = ActivityLog::new(&path, 1 << 20)
            .read_back()
            .expect("readable");
        let ids: Vec<u64> = read.activities.iter().map(|activity| activity.id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 8]);
        assert_eq!(
            read.skipped, 4,
            "bad UTF-8, a torn line, a huge one, an id out of range"
        );
        let mut journal = Journal::default();
        for activity in read.activities {
            journal.restore(activity);
        }
        assert_eq!(
            journal.record(activity("t", 9)),
            9,
            "ids go on from the largest"
        );
    }

    #[test]
    fn only_a_regular_file_is_read_or_written() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let error = ActivityLog::new(dir.path(), 1 << 20)
            .read_back()
            .expect_err("a directory");
        assert!(
            error
                .to_string()
                .contains("not a regular file (a directory)"),
            "{error}"
        );
        let device = ActivityLog::new(Path::new("/dev/zero"), 1 << 20);
        assert!(device.read_back().is_err());
        assert!(device.start().is_err());
        let absent = ActivityLog::new(&dir.path().join("new.jsonl"), 1 << 20);
        assert!(
            absent
                .read_back()
                .expect("absent is empty")
                .activities
                .is_empty()
        );
    }

    /// A file that takes `room` more bytes and then fails, like a full disk.
    struct Filling {
        bytes: Vec<u8>,
        room: usize,
        cut_fails: bool,
    }

    impl Write for Filling {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            let taken = buf.len().min(self.room);
            self.room -= taken;
            self.bytes.extend_from_slice(&buf[..taken]);
            Ok(taken)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl LineFile for Filling {
        fn length(&self) -> std::io::Result<u64> {
            Ok(self.bytes.len() as u64)
        }
        fn cut_to(&mut self, length: u64) -> std::io::Result<()> {
            if self.cut_fails {
                return Err(std::io::Error::other("cannot truncate"));
            }
            self.bytes.truncate(length as usize);
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_leaves_whole_lines_only() {
        for cut_fails in [false, true] {
            let mut file = Filling {
                bytes: b"{\"first\":1}\n".to_vec(),
                room: 5,
                cut_fails,
            };
            let mut torn = false;
            assert!(append_whole(&mut file, b"{\"second\":2}\n", &mut torn).is_err());
            // Space comes back: the next line is whole and on its own line.
            file.room = usize::MAX;
            append_whole(&mut file, b"{\"third\":3}\n", &mut torn).expect("room again");
            let text = String::from_utf8(file.bytes).expect("UTF-8");
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.first(), Some(&"{\"first\":1}"), "{text}");
            assert_eq!(lines.last(), Some(&"{\"third\":3}"), "{text}");
            assert_eq!(lines.len(), if cut_fails { 3 } else { 2 }, "{text}");
        }
    }
}
