//! What the shard shows of itself, read from its own state when asked: each target's
//! metric samples for a scrape, the shard-level counts, and `/status`. Nothing is
//! copied ahead of time. What it must not do: change the shard.

use std::ops::Range;

use super::Shard;
use super::targets::{Seen, Slot};
use crate::metrics::{Decided, ShardTotals, TargetRows, TargetSample};
use crate::policy::AllocationStatus;
use crate::runtime::state::activity::TargetStatus;

/// The shard-level values a scrape shows.
pub type ShardValues = ShardTotals;

impl TargetRows for Shard {
    fn generation(&self) -> u64 {
        self.targets.generation()
    }

    fn len(&self) -> usize {
        self.targets.len()
    }

    fn visit(&self, range: Range<usize>, visit: &mut dyn FnMut(&TargetSample<'_>)) {
        for index in range {
            let Some((name, slot)) = self.targets.at(index) else {
                break;
            };
            visit(&sample(name, slot));
        }
    }
}

fn sample<'a>(name: &'a str, slot: &'a Slot) -> TargetSample<'a> {
    let seen = slot.seen.as_deref();
    let config = &slot.config;
    TargetSample {
        target: name,
        evaluated: seen.map(|seen| Decided {
            desired: seen.desired,
            requested: seen.requested,
            allocated: seen.allocated,
            min: seen.min,
            max: seen.max,
            allocation_failed: seen.allocation == AllocationStatus::Failed
                || slot.course.allocation_failing(),
            metric_data: seen.metric_data,
        }),
        metric_value: config
            .tracking
            .as_ref()
            .zip(seen.and_then(|seen| seen.metric_value))
            .map(|(tracking, value)| (tracking.metric.label(), value)),
        rules: &config.schedules,
        active_rule: seen.and_then(|seen| seen.rule.as_deref()),
        forecast_capacity: seen.and_then(|seen| seen.forecast_capacity),
        chosen_window: seen.and_then(|seen| seen.chosen_window),
        write_blocked: slot.course.blocked().map(|blocked| blocked.label()),
        handover: slot.handover,
        contested: slot.contest.contested(),
        overrides: seen.map_or(0, |seen| seen.overrides),
        drift: slot.counts.drift,
        actions: &slot.counts.actions,
    }
}

impl Shard {
    /// Targets not known yet and histories still to read.
    pub fn totals(&self) -> ShardValues {
        let unknown = self
            .targets
            .iter()
            .filter(|(_, slot)| self.known.config(&slot.config).is_none())
            .count();
        ShardTotals {
            targets_unknown: unknown as u64,
            history_pending: self.history_pending() as u64,
            overrides_unreadable: self.overrides.unreadable().into(),
            aas_unreadable: self.aas.unreadable().into(),
        }
    }

    /// How many targets (or whether `target`) have been decided.
    pub fn decided(&self, target: Option<&str>) -> usize {
        self.targets
            .iter()
            .filter(|(name, slot)| {
                slot.seen.is_some() && target.is_none_or(|target| **name == target)
            })
            .count()
    }

    /// The status of every decided target (or only `target`), in config order from
    /// `offset`, at most `limit`; `last_activity` is left for the caller to fill.
    pub fn statuses(&self, target: Option<&str>, offset: usize, limit: usize) -> Vec<TargetStatus> {
        let decided = |(name, slot): &(&crate::config::TargetName, &Slot)| {
            slot.seen.is_some() && target.is_none_or(|target| *name == target)
        };
        self.targets
            .iter()
            .filter(decided)
            .skip(offset)
            .take(limit)
            .filter_map(|(name, slot)| Some(status(name, slot, slot.seen.as_deref()?)))
            .collect()
    }
}

fn status(name: &str, slot: &Slot, seen: &Seen) -> TargetStatus {
    let config = &slot.config;
    TargetStatus {
        target: name.to_owned(),
        account: config.shard.account_label().to_owned(),
        region: config.shard.region.as_deref().map(str::to_owned),
        function: config.function.reference.clone(),
        qualifier: config.qualifier.as_str().to_owned(),
        evaluated_at: seen.at,
        min: seen.min,
        max: seen.max,
        rule: seen.rule.clone(),
        metric: config
            .tracking
            .as_ref()
            .map(|tracking| tracking.metric.label().into()),
        metric_value: seen.metric_value,
        metric_age_seconds: seen.newest.map(|newest| (seen.at - newest).num_seconds()),
        metric_data: seen.metric_data.label().into(),
        requested: seen.requested,
        allocated: seen.allocated,
        allocation: seen.allocation.label().into(),
        status_reason: seen.status_reason.clone(),
        next_attempt: seen.failed_retry_at,
        desired: seen.desired,
        reason: seen.reason.to_string(),
        override_until: match &seen.reason {
            crate::policy::Reason::Override { until, .. } => Some(*until),
            _ => None,
        },
        reserved_available: seen.caps.reserved_available,
        account_headroom: seen.caps.account_headroom,
        blocked: slot.blocked.as_ref().map(ToString::to_string),
        last_activity: None,
    }
}
