//! Passes and readiness, and the forecast's history reads.
//!
//! A pass reads every tracked target's metrics in one batched `GetMetricData` and
//! decides every target. It counts as informed when the metrics were read and Lambda
//! answered at least one read since the last pass; after [`UNREADY_AFTER_PASSES`]
//! uninformed passes in a row the shard is not ready, until an informed one. HistoryProgress:
//! targets that keep it read 14 days once, a few a call, one call at a time, outside
//! Lambda's budget. What it must not do: wait for unknown targets to be known;
//! readiness at scale never waits for every function to be read.

use std::sync::Arc;

use super::targets::HistoryProgress;
use super::{Effect, Now, PassRead, Shard};
use crate::config::{TargetConfig, TargetName};
use crate::policy::PolicyState;
use crate::policy::cadence::ReadWhy;
use crate::runtime::knowing::Reach;
use crate::runtime::knowing::{DATAPOINTS_PER_CALL, history_datapoints};
use crate::runtime::state::activity::Trigger;

/// Passes in a row that inform no target before the shard is not ready.
pub const UNREADY_AFTER_PASSES: u32 = 3;

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    /// The metrics were read, and Lambda answered (or there is nothing to read).
    Informed,
    /// Nothing could be read.
    Uninformed,
    /// The metric read outlived the pass deadline and was abandoned.
    TimedOut,
    /// The metric read's task was lost.
    Failed,
}

impl PassOutcome {
    pub const ALL: [PassOutcome; 4] = [
        PassOutcome::Informed,
        PassOutcome::Uninformed,
        PassOutcome::TimedOut,
        PassOutcome::Failed,
    ];

    /// A bounded label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            PassOutcome::Informed => "informed",
            PassOutcome::Uninformed => "uninformed",
            PassOutcome::TimedOut => "timed_out",
            PassOutcome::Failed => "failed",
        }
    }
}

/// The pass under way, and what the last ones were.
#[derive(Debug, Default)]
pub struct Passes {
    /// What started the pass under way, if one is.
    running: Option<Trigger>,
    /// A reload asked for a pass while one was under way: start one when it ends.
    again: bool,
    /// Lambda reads that succeeded and failed since the last pass ended.
    reads_ok: u32,
    reads_failed: u32,
    uninformed_in_a_row: u32,
    /// The targets whose metrics the read under way brings.
    reading: Arc<[Arc<TargetConfig>]>,
    /// The read under way is the sentinel's second read of the pass.
    follow_up: bool,
    /// Whether the pass's first read succeeded.
    metrics_read: bool,
}

impl Passes {
    pub fn count_read(&mut self, ok: bool) {
        if ok {
            self.reads_ok += 1;
        } else {
            self.reads_failed += 1;
        }
    }
}

impl Shard {
    /// Starts the metric read of a pass, unless one is under way: the targets the
    /// cadence says (all of them at a reload).
    pub(super) fn start_pass(&mut self, trigger: Trigger, now: Now) {
        if self.passes.running.is_some() {
            self.passes.again |= trigger == Trigger::Reload;
            return;
        }
        self.passes.running = Some(trigger);
        let chosen = self.choose_reads(trigger == Trigger::Reload, now);
        let deadline = self.settings.pass_deadline();
        self.passes.reading = chosen.targets.clone();
        self.effects.push(Effect::ReadMetrics {
            targets: chosen.targets,
            deadline,
            reach: Reach {
                since: chosen.since,
                account: chosen.quiet > 0,
            },
            why: chosen.why,
        });
        self.effects.push(Effect::PassStarted { deadline });
    }

    /// A pass's read ended: the targets read are decided on it, with the untracked
    /// ones at its first read. The account's sentinel may ask for a second read of the
    /// quiet targets, decided when it ends; then the pass ends.
    pub(super) fn pass_done(&mut self, read: PassRead, now: Now) {
        let Some(trigger) = self.passes.running else {
            return;
        };
        if read.timed_out {
            tracing::error!(
                deadline_seconds = self.settings.pass_deadline().as_secs(),
                "a metric read outlived the pass deadline and was abandoned"
            );
            self.pass_ended(super::PassOutcome::TimedOut, now);
            return;
        }
        let follow_up = std::mem::take(&mut self.passes.follow_up);
        if !follow_up {
            self.passes.metrics_read = read.series.is_some();
        }
        // A failed read leaves no series: the targets read then hold, as unreadable.
        let mut series = read.series.unwrap_or_default();
        let mut decide = Vec::with_capacity(self.passes.reading.len());
        for target in std::mem::take(&mut self.passes.reading).iter() {
            // A target found or added while the read was under way was not in it: it
            // waits for the next pass rather than be written from its floor alone.
            if let Some(slot) = self.targets.get_mut(&target.name) {
                slot.series = series.remove(&target.name);
                slot.metrics_read = true;
                // A read that failed or came back partial is tried again at the next pass.
                slot.reads.asked = slot
                    .series
                    .as_ref()
                    .is_none_or(|series| series.status != crate::aws::SeriesStatus::Complete);
                if slot.series.is_some() {
                    slot.reads.last = Some(now.wall);
                    slot.reads.count = slot.reads.count.saturating_add(1);
                }
                decide.push(target.name.clone());
            }
        }
        if !follow_up {
            let untracked = self
                .targets
                .iter()
                .filter(|(_, slot)| slot.config.tracking.is_none());
            decide.extend(untracked.map(|(name, _)| name.clone()));
        }
        self.decide(&decide, trigger, now);
        if !follow_up && let Some(account) = &read.account {
            let quiet = self.sentinel_reads(account, &decide, now);
            if !quiet.is_empty() {
                let deadline = self.settings.pass_deadline();
                let since = quiet
                    .iter()
                    .filter_map(|target| self.targets.get(&target.name)?.reads.last)
                    .min()
                    .map(|last| last - super::cadence::SENTINEL_LOOKBACK);
                let count = quiet.len() as u64;
                let targets: Arc<[Arc<TargetConfig>]> = quiet.into();
                self.passes.reading = targets.clone();
                self.passes.follow_up = true;
                self.effects.push(Effect::ReadMetrics {
                    targets,
                    deadline,
                    reach: Reach {
                        since,
                        account: false,
                    },
                    why: vec![(ReadWhy::Sentinel, count)],
                });
                return;
            }
        }
        let lambda_unreadable = self.passes.reads_failed > 0 && self.passes.reads_ok == 0;
        let informed = self.targets.is_empty() || (self.passes.metrics_read && !lambda_unreadable);
        let outcome = if informed {
            PassOutcome::Informed
        } else {
            PassOutcome::Uninformed
        };
        self.pass_ended(outcome, now);
    }

    /// The bookkeeping of every pass, however it ended: readiness, and a pass a
    /// reload asked for meanwhile.
    pub(super) fn pass_ended(&mut self, outcome: PassOutcome, now: Now) {
        let passes = &mut self.passes;
        passes.running = None;
        passes.reads_ok = 0;
        passes.reads_failed = 0;
        if outcome == PassOutcome::Informed {
            passes.uninformed_in_a_row = 0;
        } else {
            passes.uninformed_in_a_row += 1;
            tracing::warn!(
                outcome = outcome.label(),
                passes_in_a_row = passes.uninformed_in_a_row,
                "a pass informed no target"
            );
        }
        let ready = passes.uninformed_in_a_row < UNREADY_AFTER_PASSES;
        self.effects.push(Effect::PassEnded { outcome, ready });
        if std::mem::take(&mut self.passes.again) {
            self.start_pass(Trigger::Reload, now);
        }
    }

    /// Starts the next history read unless one is under way.
    pub(super) fn read_next_history(&mut self) {
        if !self.history_reading.is_empty() {
            return;
        }
        let mut batch = Vec::new();
        let mut datapoints = 0;
        while let Some(name) = self.history_queue.front() {
            let Some(slot) = self.targets.get(name) else {
                self.history_queue.pop_front();
                continue;
            };
            datapoints += history_datapoints(&slot.config);
            if datapoints > DATAPOINTS_PER_CALL && !batch.is_empty() {
                break;
            }
            let Some(name) = self.history_queue.pop_front() else {
                break;
            };
            // A target a reload removed, or removed and added back, meanwhile: its
            // slot says whether this entry still stands.
            let Some(slot) = self.targets.get_mut(&name) else {
                continue;
            };
            if slot.history != HistoryProgress::Queued {
                continue;
            }
            slot.history = HistoryProgress::Reading;
            batch.push(slot.config.clone());
            self.history_reading.push(name);
        }
        if !batch.is_empty() {
            self.effects.push(Effect::ReadHistory(batch));
        }
    }

    /// A history read ended: each target's forecast starts from it; the ones left
    /// out build their history as they run.
    pub(super) fn history_read(&mut self, states: Vec<(TargetName, PolicyState)>) {
        for (name, state) in states {
            if let Some(slot) = self.targets.get_mut(&name)
                && slot.history == HistoryProgress::Reading
            {
                slot.state = Some(Box::new(state.demand_only()));
            }
        }
        for name in std::mem::take(&mut self.history_reading) {
            if let Some(slot) = self.targets.get_mut(&name)
                && slot.history == HistoryProgress::Reading
            {
                slot.history = HistoryProgress::Read;
            }
        }
        self.read_next_history();
    }

    /// Forecasting targets whose history is still to be read, the read under way
    /// included.
    pub fn history_pending(&self) -> usize {
        self.targets
            .iter()
            .filter(|(_, slot)| {
                matches!(
                    slot.history,
                    HistoryProgress::Queued | HistoryProgress::Reading
                )
            })
            .count()
    }
}
