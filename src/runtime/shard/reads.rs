//! What a Lambda read's answer means for the shard: a scan records the function's
//! configs, reports drift and follows allocations in progress; a read-back follows
//! the shard's own allocation; refreshes keep the slow facts. Each queues its next
//! read. What it must not do: decide capacity itself (it asks `decide.rs`), or start
//! a read before its due time.

use super::due::{Chore, Lane};
use super::{Entry, Now, ReadDone, Shard};
use crate::aws::{AwsError, FunctionConfigs, ProvisionedConfig};
use crate::config::{FunctionId, TargetName};
use crate::policy::AllocationStatus;
use crate::runtime::course::{Outcome, Settled};
use crate::runtime::knowing::known::Drift;
use crate::runtime::state::activity::{Kind, Trigger};

/// How a change made by someone else was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    Scan,
    ReadBack,
}

impl FoundBy {
    fn label(self) -> &'static str {
        match self {
            FoundBy::Scan => "scan",
            FoundBy::ReadBack => "read back",
        }
    }
}

impl Shard {
    /// A read taken from `lane` ended.
    pub(super) fn read_done(&mut self, lane: Lane, done: ReadDone, now: Now) {
        match done {
            ReadDone::Scan {
                function,
                writes_before,
                result,
            } => {
                // An urgent scan was asked for to decide the function's targets again.
                let urgent = lane == Lane::Urgent;
                self.scan_done(function, (writes_before, urgent), result, now);
            }
            ReadDone::ReadBack { target, result } => self.read_back_done(&target, result, now),
            ReadDone::Refresh {
                function,
                reserved,
                weighted,
            } => {
                if self.targets.function(&function).is_none() {
                    return;
                }
                match reserved {
                    Ok(reserved) => self.known.set_reserved(&function, reserved),
                    Err(error) => {
                        tracing::warn!(function = %function.name, error = %error, "reserved concurrency read failed; its cap is unknown")
                    }
                }
                if let Some(weighted) = weighted {
                    self.passes.count_read(weighted.is_ok());
                    match weighted {
                        Ok(weighted) => self.known.set_weighted(&function, weighted),
                        Err(error) => {
                            tracing::warn!(function = %function.name, error = %error, "alias weights read failed")
                        }
                    }
                }
                let next = now.instant + self.settings.refresh_period;
                self.due.queue(Chore::Refresh(function), next, false);
            }
            ReadDone::Aas { scalable, records } => self.aas_read(scalable, records, now),
            ReadDone::Account(result) => {
                self.passes.count_read(result.is_ok());
                match result {
                    Ok(unreserved) => self.known.set_unreserved(unreserved),
                    Err(error) => {
                        tracing::warn!(error = %error, "account settings read failed; the account cap stays as last read")
                    }
                }
                let period = self.settings.refresh_period.min(super::ACCOUNT_REFRESH);
                self.due.queue(Chore::Account, now.instant + period, false);
            }
        }
    }

    fn scan_done(
        &mut self,
        function: FunctionId,
        (writes_before, urgent): (u64, bool),
        result: Result<FunctionConfigs, AwsError>,
        now: Now,
    ) {
        self.passes.count_read(result.is_ok());
        let Some(slot) = self.targets.function(&function) else {
            return;
        };
        // The scan may predate a write: its answer is not news. The write's own
        // answer and read-backs keep the cache right; the next scan checks.
        let stale = slot.writing.is_some() || slot.writes_ended != writes_before;
        let next_scan = now.instant + self.settings.drift_scan_period;
        self.due
            .queue(Chore::Scan(function.clone()), next_scan, false);
        let configs = match result {
            Ok(configs) => configs,
            Err(error) => {
                tracing::warn!(function = %function.name, error = %error, outcome = error.label(), "drift scan failed; it is tried again");
                self.known.scan_failed(&function, error.to_string());
                let retry = self.settings.interval.min(super::READ_RETRY);
                self.due
                    .queue(Chore::Scan(function), now.instant + retry, false);
                return;
            }
        };
        if stale {
            return;
        }
        let first = self
            .known
            .function(&function)
            .is_none_or(|facts| facts.configs.is_none());
        let drift = self.known.scanned(&function, configs);
        if first {
            self.first_scan_done(now);
        }
        let mut decide = Vec::new();
        let mut drifted = Vec::new();
        for name in self.targets.of_function(&function) {
            let Some(slot) = self.targets.get(&name) else {
                continue;
            };
            let qualifier = slot.config.qualifier.to_string();
            self.settle_from_known(&name, now);
            let found = drift.iter().find(|drift| drift.qualifier == qualifier);
            match found {
                Some(found) => {
                    self.drifted(&name, found, FoundBy::Scan, now);
                    drifted.push(name.clone());
                }
                None if first || urgent => decide.push(name.clone()),
                None => continue,
            }
            self.follow_if_in_progress(&name, now);
        }
        self.decide(&decide, Trigger::Scan, now);
        self.decide(&drifted, Trigger::Drift, now);
        self.ask_to_read(&drifted);
    }

    /// A target found allocating (by a scan) is read back until it settles, and
    /// decided then: nothing may be written while an allocation is in progress.
    fn follow_if_in_progress(&mut self, name: &TargetName, now: Now) {
        let Some(slot) = self.targets.get_mut(name) else {
            return;
        };
        let in_progress = self
            .known
            .config(&slot.config)
            .flatten()
            .is_some_and(|config| config.status == AllocationStatus::InProgress);
        if in_progress {
            slot.course.follow(None, now.instant);
            let at = now.instant + self.read_backs.wait(0);
            self.due.queue(Chore::ReadBack(name.clone()), at, true);
        }
    }

    fn read_back_done(
        &mut self,
        target: &TargetName,
        result: Result<Option<ProvisionedConfig>, AwsError>,
        now: Now,
    ) {
        self.passes.count_read(result.is_ok());
        let Some(slot) = self.targets.get(target) else {
            return;
        };
        let config = slot.config.clone();
        match &result {
            Ok(found) => {
                if let Some(drift) = self.known.read_back(&config, found.clone()) {
                    self.drifted(target, &drift, FoundBy::ReadBack, now);
                    // The scan that follows settles the allocation and decides.
                    self.due
                        .queue(Chore::Scan(config.function.clone()), now.instant, true);
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(target = %target, error = %error, "status read failed while an allocation is in progress")
            }
        }
        let Some(slot) = self.targets.get_mut(target) else {
            return;
        };
        let (settled, next) = slot.course.after_read_back(
            result.as_ref().map(Option::as_ref),
            &self.read_backs,
            now.instant,
            self.rng.f64(),
        );
        self.carry_on(target, &config.function, next, now);
        if let Some(settled) = settled {
            self.settled(target, settled);
            self.decide(std::slice::from_ref(target), Trigger::Settle, now);
        }
    }

    /// A followed allocation settled: its activity gets the outcome, and one that
    /// FAILED is decided again when its retry is due.
    fn settled(&mut self, target: &TargetName, settled: Settled) {
        if let Outcome::Failed { reason } = &settled.outcome {
            tracing::error!(target = %target, reason = reason.as_deref().unwrap_or("none given"), "allocation FAILED; it is written again after a backoff");
        }
        if let Some(at) = settled.retry_at {
            self.due.queue(Chore::Decide(target.clone()), at, false);
        }
        if let Some(activity) = settled.activity {
            self.effects.push(super::Effect::SetOutcome {
                target: target.clone(),
                activity,
                outcome: settled.outcome,
            });
        }
    }

    /// Gives a followed allocation its outcome once the known config has settled.
    pub(super) fn settle_from_known(&mut self, name: &TargetName, now: Now) {
        let Some(slot) = self.targets.get_mut(name) else {
            return;
        };
        let Some(config) = self.known.config(&slot.config) else {
            return;
        };
        // READY (or gone), or allocating anew without a write of ours (a deploy behind
        // the alias, a fix by someone else): what failed before is over.
        let recovered = match config.map(|config| config.status) {
            None | Some(AllocationStatus::Ready | AllocationStatus::None) => true,
            Some(AllocationStatus::InProgress) => slot.course.following().is_none(),
            Some(AllocationStatus::Failed) => false,
        };
        if recovered {
            slot.course.not_failed();
        }
        if let Some(settled) = slot.course.settled(config, now.instant, self.rng.f64()) {
            self.settled(name, settled);
        }
    }

    /// Someone else changed a target's capacity: log, count and record it. The
    /// caller decides the target again; cooldowns count from the foreign write's
    /// `LastModified`.
    fn drifted(&mut self, name: &TargetName, drift: &Drift, found_by: FoundBy, now: Now) {
        tracing::warn!(
            target = %name,
            known = ?drift.known,
            found = ?drift.found,
            found_by = found_by.label(),
            "drift: the capacity was changed by someone else"
        );
        if let Some(slot) = self.targets.get_mut(name) {
            slot.counts.drift += 1;
            // A refusal or backoff was about the old state; the demand history was not.
            slot.course.forget_failures();
            slot.held = false;
            slot.blocked = None;
        }
        let entry = Entry {
            kind: Kind::Drift,
            from: drift.known,
            to: drift.found,
            reason: format!("changed by someone else; found by {}", found_by.label()),
            trigger: Trigger::Drift,
            outcome: "decided again".into(),
        };
        self.record(name, entry, now);
        self.count_foreign_change(name, drift, now);
    }
}
