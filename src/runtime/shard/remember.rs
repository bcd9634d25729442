//! What the shard remembers across a restart or a failover: the snapshot it hands out
//! of what it knows, and what it takes from the last one at a start. A snapshot orders
//! the first scans (`need.rs` compares a target's need with what was remembered of it)
//! and decides nothing: nothing is written before the function is scanned.
//!
//! What it must not do: write from a snapshot: a snapshot orders reads, never decides.

use std::collections::{HashMap, HashSet};

use super::due::Chore;
use super::{Effect, Now, Shard};
use crate::runtime::state::snapshot::{RememberedConfig, RememberedFunction, Snapshot, VERSION};

/// What a snapshot taken at the start remembers, kept through the cold start: targets
/// that selectors find after the start take it as they come.
#[derive(Debug, Default)]
pub struct Remembered {
    functions: HashSet<String>,
    serving: HashMap<(String, String), u32>,
}

impl Shard {
    /// Takes what a stored snapshot remembers, when it may be used; otherwise says why
    /// not, and the start goes on as a cold one.
    pub(super) fn remember(&mut self, bytes: &[u8], now: Now) {
        let snapshot = match Snapshot::decode(bytes, &self.fingerprint, now.wall) {
            Ok(snapshot) => snapshot,
            Err(why) => {
                tracing::warn!(reason = %why, "the snapshot is not used; every function is read as in a cold start");
                return;
            }
        };
        let serving = snapshot
            .serving()
            .into_iter()
            .map(|((function, qualifier), value)| {
                ((function.to_owned(), qualifier.to_owned()), value)
            })
            .collect();
        let functions = snapshot
            .functions
            .iter()
            .map(|function| function.function.clone())
            .collect();
        self.remembered = Some(Remembered { functions, serving });
        let remembered = self.take_remembered();
        tracing::info!(remembered, written_at = %snapshot.written_at, "a snapshot orders the first scans");
    }

    /// Gives each target not read yet what the snapshot remembers of it; returns how
    /// many it gave.
    pub(super) fn take_remembered(&mut self) -> usize {
        let Some(remembered) = &self.remembered else {
            return 0;
        };
        let mut count = 0;
        for (_, slot) in self.targets.iter_mut() {
            let function = &slot.config.function.reference;
            // A function in the snapshot without this qualifier had no config: 0.
            if slot.remembered.is_none() && remembered.functions.contains(function) {
                let key = (function.clone(), slot.config.qualifier.as_str().to_owned());
                slot.remembered = Some(remembered.serving.get(&key).copied().unwrap_or(0));
                count += 1;
            }
        }
        count
    }

    /// A function was read for the first time: when it was the last one unknown, the
    /// cold start is over and what it learnt is kept at once, not up to a minute later.
    pub(super) fn first_scan_done(&mut self, now: Now) {
        if !self.keeps_snapshots {
            return;
        }
        // Stops at the first unknown function, and scans go roughly in the order
        // this walks: cheap even while thousands are unknown.
        let all_known = self.targets.functions().all(|function| {
            self.known
                .function(function)
                .is_some_and(|facts| facts.configs.is_some())
        });
        if all_known {
            self.due.queue(Chore::Snapshot, now.instant, false);
            self.remembered = None;
        }
    }

    /// Hands out a snapshot of what is known, when it changed since the last one.
    pub(super) fn hand_out_snapshot(&mut self, now: Now) {
        if let Some(bytes) = self.snapshot(now) {
            self.effects.push(Effect::SaveSnapshot(bytes));
        }
    }

    /// A snapshot of what is known, when it changed since the last one handed out:
    /// every minute, and once more when the daemon stops.
    pub fn snapshot(&mut self, now: Now) -> Option<Vec<u8>> {
        let mut functions: Vec<RememberedFunction> = self
            .targets
            .functions()
            .filter_map(|function| {
                let facts = self.known.function(function)?;
                let configs = facts.configs.as_ref()?;
                Some(RememberedFunction {
                    function: function.reference.clone(),
                    configs: configs
                        .iter()
                        .map(|(qualifier, config)| RememberedConfig {
                            qualifier: qualifier.to_owned(),
                            requested: config.requested,
                            status: config.status,
                            last_modified: config.last_modified,
                        })
                        .collect(),
                    weighted: facts
                        .weighted
                        .as_ref()
                        .map(|weighted| weighted.iter().cloned().collect()),
                })
            })
            .collect();
        functions.sort_by(|a, b| a.function.cmp(&b.function));
        let content = Snapshot {
            version: VERSION,
            fingerprint: self.fingerprint.clone(),
            written_at: chrono::DateTime::<chrono::Utc>::MIN_UTC,
            functions,
        };
        // Compared without its time: an unchanged snapshot is not written again.
        let hash = {
            use std::hash::{Hash as _, Hasher as _};
            let mut hasher = std::hash::DefaultHasher::new();
            content.encode().hash(&mut hasher);
            hasher.finish()
        };
        if self.last_snapshot == Some(hash) {
            return None;
        }
        self.last_snapshot = Some(hash);
        let snapshot = Snapshot {
            written_at: now.wall,
            ..content
        };
        Some(snapshot.encode())
    }
}
