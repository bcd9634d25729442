//! The leader's discoveries: each shard with selectors reads what they find at its
//! start and every `daemon.discovery_period`, one read at a time per shard, beside the
//! loop. A read's result is resolved (`runtime::discovery::resolve`) against the config
//! in force; when the targets it gives changed, the shard takes them as a reload, and
//! each target begun, dropped or skipped is an activity. What it must not do: change
//! capacity (a dropped target's is left as it is), or let one shard's failure touch
//! another's.

use std::collections::{BTreeMap, BTreeSet};

use super::{Leader, WakeSource};
use crate::aws::{Aliases, Connect};
use crate::config::{Origin, TargetConfig};
use crate::runtime::discovery::{self, Found, Resolution, Skipped};
use crate::runtime::shard::Event;
use crate::runtime::state::activity::{Activity, Kind, Trigger};

/// What a shard's discoveries left: the targets its selectors manage, what they
/// skipped, and each function's aliases (read once it has every selector's alias; a
/// function not seen before, or still without one, is read at the next discovery).
#[derive(Default)]
pub struct Discovered {
    pub targets: Vec<TargetConfig>,
    pub skipped: Vec<Skipped>,
    aliases: BTreeMap<String, Aliases>,
    /// The last read, resolved again when a reload changes the selectors.
    found: Option<Found>,
    signature: BTreeSet<(String, String)>,
    running: bool,
    /// Every selector's last read failed (a role that cannot be assumed, a Region
    /// that is down): the shard is not ready.
    failing: bool,
}

impl Discovered {
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// A discovery task was lost: the next period starts another.
    pub fn stopped(&mut self) {
        self.running = false;
    }
}

impl<A: Connect, W: WakeSource> Leader<A, W> {
    /// Starts a discovery in every shard that has selectors and none under way.
    pub(super) fn discover_all(&mut self) {
        for index in 0..self.shards.len() {
            self.discover(index);
        }
    }

    /// Starts a discovery in shard `index`, if it runs, has selectors and none under way.
    pub(super) fn discover(&mut self, index: usize) {
        let shard = &mut self.shards[index];
        let selectors: Vec<_> = self.config.selectors_of(&shard.key).cloned().collect();
        if selectors.is_empty() || shard.discovered.running || !shard.running() {
            return;
        }
        shard.discovered.running = true;
        let clients = shard.clients.clone();
        let known = shard.discovered.aliases.clone();
        let rate = self.config.daemon.discovery_rate;
        let generation = shard.generation;
        self.discovering.spawn(async move {
            let found = discovery::reads::read(
                &clients.control,
                clients.tagging.as_ref(),
                &selectors,
                rate,
                &known,
            )
            .await;
            ((index, generation), found)
        });
    }

    /// A discovery's read came back: resolved, and taken by the shard if it changed.
    pub(super) async fn discovered(&mut self, (index, generation): (usize, u64), found: Found) {
        let Some(shard) = self
            .shards
            .get_mut(index)
            .filter(|shard| shard.running() && shard.generation == generation)
        else {
            return;
        };
        shard.discovered.running = false;
        // Kept only when every selector's alias is there: a function still without
        // one is read again at the next discovery, so an alias made later is found.
        let qualifiers: Vec<String> = self
            .config
            .selectors_of(&shard.key)
            .map(|selector| selector.template.qualifier.to_string())
            .collect();
        for (function, aliases) in &found.aliases {
            let complete = aliases.as_ref().is_ok_and(|aliases| {
                qualifiers
                    .iter()
                    .all(|qualifier| aliases.contains_key(qualifier))
            });
            if let (Ok(aliases), true) = (aliases, complete) {
                shard
                    .discovered
                    .aliases
                    .insert(function.clone(), aliases.clone());
            }
        }
        shard.discovered.found = Some(found);
        self.resolve(index, None).await;
    }

    /// Resolves the shard's last read under the config in force. With `written` (a
    /// reload's targets for the shard) the shard always takes them, with the
    /// selectors'; without, only a change of the selectors' targets goes to the shard,
    /// as a reload beside the targets it has written out.
    pub(super) async fn resolve(&mut self, index: usize, written: Option<Vec<TargetConfig>>) {
        let shard = &self.shards[index];
        let resolution = shard.discovered.found.as_ref().map(|found| {
            discovery::resolve(
                &self.config,
                &shard.key,
                &self.written,
                found,
                &shard.discovered.targets,
            )
        });
        let mut changed = false;
        if let Some(resolution) = resolution {
            self.count_discovery(index, &resolution);
            self.record_changes(index, &resolution);
            let signature = resolution.signature();
            let selectors = self.config.selectors_of(&self.shards[index].key).count();
            let discovered = &mut self.shards[index].discovered;
            discovered.failing =
                !resolution.failed.is_empty() && resolution.failed.len() == selectors;
            changed = signature != discovered.signature;
            discovered.signature = signature;
            discovered.targets = resolution.targets;
            discovered.skipped = resolution.skipped;
            self.publish_ready(index);
        }
        if written.is_none() && !changed {
            return;
        }
        let shard = &self.shards[index];
        let mut targets = written.unwrap_or_else(|| {
            let core = shard.core.lock();
            let configs = core.target_configs().into_iter();
            configs
                .filter(|target| target.origin == Origin::Config)
                .collect()
        });
        targets.extend(shard.discovered.targets.iter().cloned());
        let settings = self.config.daemon.clone();
        self.handle(index, Event::Reload { settings, targets })
            .await;
    }

    fn count_discovery(&self, index: usize, resolution: &Resolution) {
        let key = &self.shards[index].key;
        let labels = [key.account_label(), key.region_label(&self.config.aws)];
        let families = &self.shared.metrics.shards;
        let outcome = if resolution.failed.is_empty() {
            "success"
        } else {
            "failure"
        };
        families
            .discoveries
            .with_label_values(&[labels[0], labels[1], outcome])
            .inc();
        families
            .discovered
            .with_label_values(&labels)
            .set(resolution.targets.len() as i64);
        families
            .skipped
            .with_label_values(&labels)
            .set(resolution.skipped.len() as i64);
        for (selector, why) in &resolution.failed {
            tracing::warn!(shard = %key, selector = %selector, error = %why, "a selector's discovery failed; its targets are kept until it reads again");
        }
    }

    /// Each target begun or dropped, and each function newly skipped, as an activity.
    fn record_changes(&mut self, index: usize, resolution: &Resolution) {
        let before = &self.shards[index].discovered;
        let old: BTreeSet<&str> = before.targets.iter().map(|target| &*target.name).collect();
        let new: BTreeSet<&str> = resolution
            .targets
            .iter()
            .map(|target| &*target.name)
            .collect();
        let skipped_before: BTreeSet<&Skipped> = before.skipped.iter().collect();
        let mut changes = Vec::new();
        for target in &resolution.targets {
            if !old.contains(&*target.name) {
                changes.push((
                    target.name.to_string(),
                    format!("managed: found by {}", target.origin),
                ));
            }
        }
        for target in &before.targets {
            if !new.contains(&*target.name) {
                let outcome =
                    "no longer selected: dropped, its provisioned concurrency left as it is";
                tracing::info!(target = %target.name, "{outcome}");
                changes.push((target.name.to_string(), outcome.to_owned()));
            }
        }
        for skip in &resolution.skipped {
            if !skipped_before.contains(skip) {
                tracing::warn!(selector = %skip.selector, function = %skip.function, reason = %skip.reason, "a selected function is skipped");
                changes.push((
                    format!("{}/{}", skip.selector, skip.function),
                    format!("skipped: {}", skip.reason),
                ));
            }
        }
        let ids = self.shared.journal.lock().ids();
        let epoch = self.shared.fencing.of(&self.shards[index].key).epoch();
        let time = self.shared.clock.now();
        for (target, outcome) in changes {
            self.record(Activity {
                id: ids.next(),
                time,
                target,
                kind: Kind::Discovery,
                from: None,
                to: None,
                reason: String::new(),
                trigger: Trigger::Discovery,
                outcome,
                epoch,
            });
        }
    }
}
