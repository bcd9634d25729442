//! Deciding and writing: each target decided from what is known (`evaluate`, then
//! `policy::decide`), the decision carried out through its [`WriteCourse`], and the
//! write's answer taken in. A pass's decisions are made one at a time in config order,
//! so increases decided earlier come out of the account headroom of the targets after
//! them. What it must not do: read anything itself; a write waits for what is known,
//! and a target whose state is not known is not decided.
//!
//! [`WriteCourse`]: crate::runtime::course::WriteCourse

use super::due::Chore;
use super::targets::{BlockedBy, InFlight, Seen};
use super::{Effect, Entry, Now, Shard};
use crate::aws::{AwsError, ProvisionedConfig};
use crate::config::{FunctionId, TargetName};
use crate::policy::{Caps, Reason};
use crate::runtime::course::{Next, Outcome, WriteBlocked};
use crate::runtime::course::{log_change, write_priority};
use crate::runtime::knowing::evaluate::{self, Blocked, Evaluated};
use crate::runtime::state::activity::{Kind, Trigger};

impl Shard {
    /// Decides the named targets (in config order, whatever the order given).
    pub(super) fn decide(&mut self, names: &[TargetName], trigger: Trigger, now: Now) {
        if names.is_empty() {
            return;
        }
        let mut indices: Vec<usize> = names
            .iter()
            .filter_map(|name| self.targets.index_of(name))
            .collect();
        indices.sort_unstable();
        indices.dedup();
        self.decide_indices(indices.into_iter(), trigger, now);
    }

    /// Decides every target, in config order.
    pub(super) fn decide_all(&mut self, trigger: Trigger, now: Now) {
        self.decide_indices(0..self.targets.len(), trigger, now);
    }

    /// Decides the targets at `indices` as one pass, carrying out each decision
    /// before the next is made. A tracked target waits for its first metric read.
    fn decide_indices(&mut self, indices: impl Iterator<Item = usize>, trigger: Trigger, now: Now) {
        if !self.overrides.ready() {
            return;
        }
        let mut pass = evaluate::Pass::new(&self.known, self.settings.account_reserve);
        for index in indices {
            let Some((name, slot)) = self.targets.at_mut(index) else {
                continue;
            };
            if slot.config.tracking.is_some() && !slot.metrics_read {
                continue;
            }
            let name = name.clone();
            let config = slot.config.clone();
            let overrides = self.overrides.of(&name, now.wall);
            let outcome = pass.decide(
                &config,
                &self.known,
                (slot.series.as_ref(), overrides),
                slot.state.as_deref(),
                now.wall,
            );
            self.carry_out(&name, outcome, trigger, now);
        }
    }

    /// Records one target's decision and starts the write it calls for.
    fn carry_out(
        &mut self,
        name: &TargetName,
        outcome: Result<Evaluated, Blocked>,
        trigger: Trigger,
        now: Now,
    ) {
        let evaluated = match outcome {
            Ok(evaluated) => evaluated,
            // Not read yet is where every target starts, not a block worth a record;
            // what it needs orders the reads (`need.rs`).
            Err(Blocked::NotReadYet) => {
                self.note_need(name, now);
                return;
            }
            Err(blocked) => {
                self.note_blocked(
                    name,
                    Some(BlockedBy::Undecided(blocked)),
                    None,
                    trigger,
                    now,
                );
                return;
            }
        };
        let (from, to) = (evaluated.observation.requested, evaluated.decision.desired);
        let caps = evaluated.observation.caps;
        let reason = evaluated.decision.reason.clone();
        let changes = evaluated.decision.changes(&evaluated.observation);
        let have = evaluated.observation.usable();
        self.take_in(name, evaluated, trigger, now);
        if self.stands_aside(name, (from, to), trigger, now) {
            return;
        }
        let change = changes.then_some((from, to, caps));
        let blocked = self.write_or_block(name, change, (have, reason), trigger, now);
        self.note_blocked(
            name,
            blocked.map(BlockedBy::Write),
            Some((from, to)),
            trigger,
            now,
        );
    }

    /// Keeps what the decision saw and handed on, and records a hold when it starts.
    fn take_in(&mut self, name: &TargetName, mut evaluated: Evaluated, trigger: Trigger, now: Now) {
        let Some(slot) = self.targets.get_mut(name) else {
            return;
        };
        // The forecast's demand history lives in the state each decision hands on:
        // kept for the next pass, or the history would end where the read at start
        // did. The window is rebuilt from each metric read.
        if slot.config.keeps_history() {
            let state = std::mem::take(&mut evaluated.decision.state);
            slot.state = Some(Box::new(state.demand_only()));
        }
        let cadence = crate::policy::cadence::Cadence::of(&self.settings);
        slot.reads.forecast_needs = slot.config.tracking.as_ref().and_then(|tracking| {
            let state = slot.state.as_deref()?;
            let horizon = cadence.forecast_horizon(tracking.forecast_horizon);
            crate::policy::forecast_needs(&slot.config, state, now.wall, horizon)
        });
        slot.reads.floor = evaluated.decision.bounds.min;
        slot.reads.aim = Some(crate::policy::cadence::aim(
            &slot.config,
            evaluated.decision.tuned.as_ref(),
        ));
        let requested = evaluated.observation.requested;
        let reason = &evaluated.decision.reason;
        let holds = reason.is_hold();
        let was_held = std::mem::replace(&mut slot.held, holds);
        let entry = (holds && !was_held).then(|| Entry {
            kind: Kind::Hold,
            from: Some(requested),
            to: Some(requested),
            reason: reason.to_string(),
            trigger,
            outcome: "capacity held".into(),
        });
        let retry_at = slot.course.failed_retry_at().map(|at| {
            let wait = at.saturating_duration_since(now.instant);
            now.wall + chrono::TimeDelta::from_std(wait).unwrap_or(chrono::TimeDelta::MAX)
        });
        let mut seen = seen(evaluated, slot.seen.as_deref(), now);
        seen.failed_retry_at = retry_at;
        slot.seen = Some(Box::new(seen));
        if let Some(entry) = entry {
            self.record(name, entry, now);
        }
    }

    /// Starts the write from `from` to `to` (`None`: nothing to write) when the course
    /// and the function allow it; otherwise says what blocks it, if anything does.
    fn write_or_block(
        &mut self,
        name: &TargetName,
        change: Option<(u32, u32, Caps)>,
        (have, reason): (u32, Reason),
        trigger: Trigger,
        now: Now,
    ) -> Option<WriteBlocked> {
        let slot = self.targets.get(name)?;
        let config = slot.config.clone();
        let busy = self
            .targets
            .function(&config.function)
            .is_none_or(|function| function.writing.is_some());
        let slot = self.targets.get_mut(name)?;
        let Some((from, to, caps)) = change else {
            slot.course.nothing_to_write();
            return None;
        };
        if self.settings.dry_run || busy || !slot.course.may_write(to, &caps, now.instant) {
            return slot.course.blocked();
        }
        let entry = Entry {
            kind: Kind::Write,
            from: Some(from),
            to: Some(to),
            reason: reason.to_string(),
            trigger,
            outcome: Outcome::Sent.to_string(),
        };
        let activity = self.record(name, entry, now);
        if let Some(function) = self.targets.function_mut(&config.function) {
            function.writing = Some(InFlight {
                target: name.clone(),
                activity,
                from,
                to,
                caps,
                reason,
            });
        }
        self.effects.push(Effect::Write {
            priority: write_priority(have, to),
            target: config,
            to,
        });
        None
    }

    /// Records a block when it starts or changes (not at every decision), and its
    /// end in the target's slot.
    pub(super) fn note_blocked(
        &mut self,
        name: &TargetName,
        blocked: Option<BlockedBy>,
        change: Option<(u32, u32)>,
        trigger: Trigger,
        now: Now,
    ) {
        let Some(slot) = self.targets.get_mut(name) else {
            return;
        };
        if slot.blocked == blocked {
            return;
        }
        slot.blocked = blocked.clone();
        let Some(why) = blocked else {
            return;
        };
        let entry = Entry {
            kind: Kind::Blocked,
            from: change.map(|(from, _)| from),
            to: change.map(|(_, to)| to),
            reason: why.to_string(),
            trigger,
            outcome: "not written".into(),
        };
        self.record(name, entry, now);
    }

    /// The write to `function` was answered: the course says what comes next.
    pub(super) fn write_done(
        &mut self,
        function: &FunctionId,
        result: Result<Option<ProvisionedConfig>, AwsError>,
        now: Now,
    ) {
        let Some(written) = self.targets.function_mut(function).and_then(|slot| {
            slot.writes_ended += 1;
            slot.writing.take()
        }) else {
            return;
        };
        // A target removed by a reload while its write was in flight needs nothing more.
        let Some(slot) = self.targets.get_mut(&written.target) else {
            return;
        };
        let config = slot.config.clone();
        let (outcome, next) = slot.course.after_write(
            result.as_ref().map(Option::as_ref),
            (written.to, written.caps),
            written.activity,
            (&self.backoff, &self.read_backs),
            now.instant,
            self.rng.f64(),
        );
        match &result {
            Ok(answer) => {
                slot.counts
                    .count_action(written.to > written.from, written.reason.trigger());
                log_change(
                    &config,
                    written.from,
                    written.to,
                    &written.reason,
                    self.epoch,
                );
                self.known.wrote(&config, answer.clone());
            }
            Err(error) => {
                tracing::warn!(target = %written.target, to = written.to, epoch = self.epoch, error = %error, outcome = error.label(), next = ?next, "write failed");
            }
        }
        self.effects.push(Effect::SetOutcome {
            target: written.target.clone(),
            activity: written.activity,
            outcome,
        });
        self.carry_on(&written.target, function, next, now);
    }

    /// A write task that panicked or was aborted: the function is released, scanned
    /// again, and the target decided from what it finds.
    pub(super) fn write_lost(&mut self, function: &FunctionId, now: Now) {
        if let Some(slot) = self.targets.function_mut(function) {
            slot.writes_ended += 1;
            if let Some(lost) = slot.writing.take() {
                tracing::error!(target = %lost.target, "the write task failed; the function is read again");
            }
        }
        self.due
            .queue(Chore::Scan(function.clone()), now.instant, true);
    }

    /// Queues what the course says comes next for `target`.
    pub(super) fn carry_on(
        &mut self,
        target: &TargetName,
        function: &FunctionId,
        next: Next,
        now: Now,
    ) {
        match next {
            Next::Done => {}
            Next::ReadBackAt(at) => self.due.queue(Chore::ReadBack(target.clone()), at, true),
            Next::RetryAt(at) | Next::Refused { until: at } | Next::BackedOff { until: at } => {
                self.due.queue(Chore::Decide(target.clone()), at, false);
            }
            // Something else is in progress on the function: what is there now is not
            // what is known. Read it, then decide again.
            Next::ScanThenDecide => {
                self.due
                    .queue(Chore::Scan(function.clone()), now.instant, true);
            }
        }
    }
}

/// What `/status` and the metrics keep of a decision. A metric value that the new
/// decision lacks keeps the one seen before.
fn seen(evaluated: Evaluated, before: Option<&Seen>, now: Now) -> Seen {
    let Evaluated {
        observation,
        decision,
        config,
        ..
    } = evaluated;
    let newest = observation
        .datapoints
        .iter()
        .map(|point| point.timestamp)
        .max();
    let forecast_capacity = match &decision.forecast {
        Some(forecast) => forecast.as_ref().ok().map(|(_, needed)| *needed),
        None => before.and_then(|before| before.forecast_capacity),
    };
    Seen {
        at: now.wall,
        requested: observation.requested,
        allocated: observation.allocated,
        allocation: observation.status,
        desired: decision.desired,
        min: decision.bounds.min,
        max: decision.bounds.max,
        rule: decision.bounds.rule,
        metric_data: decision.metric_data,
        metric_value: decision
            .metric_value
            .or_else(|| before.and_then(|before| before.metric_value)),
        newest,
        caps: observation.caps,
        forecast_capacity,
        chosen_window: decision.tuned.map(|tuned| tuned.window_minutes * 60),
        reason: decision.reason,
        status_reason: config.and_then(|config| config.status_reason),
        failed_retry_at: None,
        overrides: crate::policy::overrides::in_force_bits(&observation.overrides, now.wall),
    }
}
