//! Which tracked targets a pass reads (`policy::cadence`), and the account's sentinel:
//! when the account's concurrency rises by more than the targets read explain, the
//! quiet ones are read at once, within the same pass.
//!
//! What it must not do: decide capacity. A target the pass does not read is not
//! decided by it either, so its capacity stays as it is until a read says otherwise.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::targets::Slot;
use super::{Now, Shard};
use crate::aws::{Series, SeriesStatus};
use crate::config::{TargetConfig, TargetName};
use crate::policy::AllocationStatus;
use crate::policy::cadence::{self, ReadSignals, ReadWhy};

/// Published datapoints lag the minute they describe: reads reach this far before a
/// target's last read, and the sentinel looks this far back for the rise the quiet
/// targets have not seen.
pub(super) const SENTINEL_LOOKBACK: TimeDelta = TimeDelta::minutes(5);

/// What the cadence remembers of a target's reads and its last decision.
#[derive(Debug, Clone, Default)]
pub struct ReadTally {
    pub last: Option<DateTime<Utc>>,
    pub count: u32,
    /// Read at the next pass whatever the cadence says: a drift, an override, the
    /// sentinel.
    pub asked: bool,
    pub forecast_needs: Option<u32>,
    /// The target value and scale-in window the last decision used.
    pub aim: Option<(f64, TimeDelta)>,
    /// The lowest capacity its bounds allowed at the last decision.
    pub floor: u32,
}

/// The targets a pass reads, why, and how far back.
pub struct Chosen {
    pub targets: Arc<[Arc<TargetConfig>]>,
    pub why: Vec<(ReadWhy, u64)>,
    /// Read back to here: a little before the oldest last read of any tracked target.
    pub since: Option<DateTime<Utc>>,
    /// Tracked targets left out: the sentinel watches for them.
    pub quiet: usize,
}

impl Shard {
    fn read_signals<'a>(&self, name: &TargetName, slot: &'a Slot, now: Now) -> ReadSignals<'a> {
        let (requested, allocating) = match self.known.config(&slot.config) {
            Some(Some(config)) => (
                config.requested,
                config.status == AllocationStatus::InProgress,
            ),
            _ => (0, false),
        };
        let override_ends = self
            .overrides
            .of(name, now.wall)
            .iter()
            .filter(|one| one.in_force(now.wall))
            .map(|one| one.until)
            .min();
        let next_change = match (slot.boundary, override_ends) {
            (Some(boundary), Some(ends)) => Some(boundary.min(ends)),
            (boundary, ends) => boundary.or(ends),
        };
        let (target, scale_in_window) = slot
            .reads
            .aim
            .unwrap_or_else(|| cadence::aim(&slot.config, None));
        ReadSignals {
            last_read: slot.reads.last,
            reads: slot.reads.count,
            datapoints: slot.series.as_ref().map_or(&[], |series| &series.points),
            requested,
            floor: slot.reads.floor,
            target,
            scale_in_window,
            allocating,
            next_change,
            forecast_needs: slot.reads.forecast_needs,
            asked: slot.reads.asked,
        }
    }

    /// The tracked targets this pass reads: all of them with `everyone` (a reload) or
    /// when the cadence is off, else those `policy::cadence` says.
    pub(super) fn choose_reads(&self, everyone: bool, now: Now) -> Chosen {
        let cadence = cadence::Cadence::of(&self.settings);
        if everyone || !cadence.adaptive() {
            let why = if cadence.adaptive() {
                ReadWhy::Asked
            } else {
                ReadWhy::EveryInterval
            };
            return Chosen {
                targets: self.tracked.clone(),
                why: vec![(why, self.tracked.len() as u64)],
                since: None,
                quiet: 0,
            };
        }
        let mut targets = Vec::new();
        let mut why: Vec<(ReadWhy, u64)> = Vec::new();
        let mut since: Option<DateTime<Utc>> = None;
        let mut quiet = 0;
        for (name, slot) in self.targets.iter() {
            if slot.config.tracking.is_none() {
                continue;
            }
            // Every minute since the oldest last read, the quiet targets' included:
            // the sentinel looks at the account over the same span.
            if let Some(last) = slot.reads.last {
                let from = last - SENTINEL_LOOKBACK;
                since = Some(since.map_or(from, |since| since.min(from)));
            }
            let signals = self.read_signals(name, slot, now);
            match cadence::read_now(&signals, cadence, now.wall) {
                Some(reason) => {
                    match why.iter_mut().find(|(one, _)| *one == reason) {
                        Some((_, count)) => *count += 1,
                        None => why.push((reason, 1)),
                    }
                    targets.push(slot.config.clone());
                }
                None => quiet += 1,
            }
        }
        Chosen {
            targets: targets.into(),
            why,
            since,
            quiet,
        }
    }

    /// The quiet targets to read at once, when the account's concurrency rose by more
    /// than the targets just read explain plus the smallest headroom among the quiet
    /// ones; empty otherwise.
    pub(super) fn sentinel_reads(
        &mut self,
        account: &Series,
        read: &[TargetName],
        now: Now,
    ) -> Vec<Arc<TargetConfig>> {
        if account.status != SeriesStatus::Complete {
            return Vec::new();
        }
        let mut quiet = Vec::new();
        let mut oldest: Option<DateTime<Utc>> = None;
        let mut threshold = f64::INFINITY;
        for (name, slot) in self.targets.iter() {
            if slot.config.tracking.is_none() || !slot.metrics_read || read.contains(name) {
                continue;
            }
            let signals = self.read_signals(name, slot, now);
            threshold = threshold.min(cadence::headroom(&signals));
            if let Some(last) = slot.reads.last {
                oldest = Some(oldest.map_or(last, |oldest| oldest.min(last)));
            }
            quiet.push(name.clone());
        }
        let Some(oldest) = oldest else {
            return Vec::new();
        };
        let since = oldest - SENTINEL_LOOKBACK;
        let explained: f64 = read
            .iter()
            .filter_map(|name| self.targets.get(name)?.series.as_ref())
            .map(|series| cadence::rise_since(&series.points, since))
            .sum();
        if !cadence::sentinel_alarm(&account.points, since, explained, threshold) {
            return Vec::new();
        }
        tracing::info!(
            quiet_targets = quiet.len(),
            "the account's concurrency rose more than the targets read explain; the quiet targets are read now"
        );
        quiet
            .iter()
            .filter_map(|name| {
                let slot = self.targets.get_mut(name)?;
                slot.reads.asked = true;
                Some(slot.config.clone())
            })
            .collect()
    }

    /// These targets are read at the next pass, whatever the cadence says.
    pub(super) fn ask_to_read(&mut self, names: &[TargetName]) {
        for name in names {
            if let Some(slot) = self.targets.get_mut(name) {
                slot.reads.asked = true;
            }
        }
    }
}
