//! Cold start by need: while a target's function has not been read yet, what its
//! metrics and schedule already say it needs orders the scans. A target that needs
//! more than its floor has its function read before those that do not; one whose need
//! rises above what was last seen or remembered of it (a metric jump) has its function
//! read at once, in the urgent lane, so that its write follows within the interval.
//! It holds whenever targets are unknown: at a start, after a reload that adds
//! functions, after a cache entry is dropped.
//!
//! What it must not do: write. A need is computed as if nothing were provisioned; a
//! write waits for the scan, which says what is there.

use super::due::Chore;
use super::{Now, Shard};
use crate::aws::SeriesStatus;
use crate::config::TargetName;
use crate::policy::{self, MetricsRead, Observation, PolicyState, TOLERANCE};

impl Shard {
    /// Notes what the unknown target `name` needs now, and moves its function's scan
    /// ahead when that calls for it.
    pub(super) fn note_need(&mut self, name: &TargetName, now: Now) {
        let Some(slot) = self.targets.get_mut(name) else {
            return;
        };
        let metrics = match &slot.series {
            Some(series) if series.status == SeriesStatus::Complete => MetricsRead::Complete,
            _ if slot.config.tracking.is_none() => MetricsRead::Complete,
            _ => MetricsRead::Unreadable,
        };
        let observation = Observation {
            datapoints: slot
                .series
                .as_ref()
                .map(|series| series.points.clone())
                .unwrap_or_default(),
            metrics,
            ..Observation::default()
        };
        let fresh = PolicyState::default();
        let state = slot.state.as_deref().unwrap_or(&fresh);
        let need = policy::decide(&slot.config, &observation, state, now.wall).desired;
        let seen = slot.remembered.or(slot.provisional);
        slot.provisional = Some(need);
        let scan = Chore::Scan(slot.config.function.clone());
        match seen {
            Some(seen) if f64::from(need) > f64::from(seen) * (1.0 + TOLERANCE) => {
                tracing::info!(target = %name, need, seen, "an unread target needs more than before: its function is read at once");
                self.due.queue(scan, now.instant, true);
            }
            None if need > slot.config.min => self.due.queue_first(scan, now.instant),
            _ => {}
        }
    }
}
