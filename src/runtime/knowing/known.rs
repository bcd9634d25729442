//! What the runtime knows about Lambda without asking again: every function's
//! provisioned concurrency configs (from scans, the daemon's own writes and their
//! read-backs), its reserved concurrency and weighted aliases, and the account's
//! unreserved concurrency.
//!
//! A plain value, changed only by the task that owns it (the daemon's loop, or one
//! `plan`/`run --once`). It must not read the clock or send requests: answers come in
//! with the time they were read, and drift is reported to the caller to act on.

use std::collections::{BTreeSet, HashMap};

use crate::aws::{FunctionConfigs, ProvisionedConfig};
use crate::config::{FunctionId, TargetConfig};

/// Every qualifier's config of one function, sorted by qualifier: a function has a
/// few, and a vector of them is a fifth of a map's smallest node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Configs(Vec<(String, ProvisionedConfig)>);

impl Configs {
    pub fn get(&self, qualifier: &str) -> Option<&ProvisionedConfig> {
        self.position(qualifier).ok().map(|index| &self.0[index].1)
    }

    fn position(&self, qualifier: &str) -> Result<usize, usize> {
        self.0
            .binary_search_by(|(known, _)| known.as_str().cmp(qualifier))
    }

    /// Each qualifier and its config, in qualifier order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ProvisionedConfig)> {
        self.0
            .iter()
            .map(|(qualifier, config)| (qualifier.as_str(), config))
    }

    fn set(&mut self, qualifier: &str, config: Option<ProvisionedConfig>) {
        match (self.position(qualifier), config) {
            (Ok(index), Some(config)) => self.0[index].1 = config,
            (Ok(index), None) => {
                self.0.remove(index);
            }
            (Err(index), Some(config)) => self.0.insert(index, (qualifier.to_owned(), config)),
            (Err(_), None) => {}
        }
    }
}

impl From<FunctionConfigs> for Configs {
    fn from(configs: FunctionConfigs) -> Self {
        // A map iterates in key order: the vector is sorted.
        Configs(configs.into_iter().collect())
    }
}

/// What is known about one function.
#[derive(Debug, Clone, Default)]
pub struct FunctionFacts {
    /// Every qualifier's config; `None` until the function was first read.
    pub configs: Option<Configs>,
    /// Why the last read of the configs failed, while none succeeded yet.
    pub read_error: Option<String>,
    /// Reserved concurrency: `None` until read, `Some(None)` when it has none.
    pub reserved: Option<Option<u32>>,
    /// Aliases with routing weights; `None` until read.
    pub weighted: Option<BTreeSet<String>>,
    /// Qualifiers found to name a version with SnapStart on (read only by `plan` and
    /// `run --once`, where a write would go).
    pub snap_start: BTreeSet<String>,
}

/// A qualifier whose requested capacity was found changed by someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub qualifier: String,
    /// What the cache held: `None` for no config.
    pub known: Option<u32>,
    pub found: Option<u32>,
}

/// Everything known, by function.
#[derive(Debug, Clone, Default)]
pub struct Known {
    functions: HashMap<FunctionId, FunctionFacts>,
    /// The account's unreserved concurrency at the last read; `None` until read or
    /// when the answer lacked it.
    unreserved: Option<u32>,
    /// Capacity the daemon added since, on functions without reserved concurrency:
    /// it came out of the unreserved pool.
    added_since_account_read: i64,
}

fn requested(config: Option<&ProvisionedConfig>) -> Option<u32> {
    config.map(|config| config.requested)
}

impl Known {
    pub fn function(&self, function: &FunctionId) -> Option<&FunctionFacts> {
        self.functions.get(function)
    }

    fn facts(&mut self, function: &FunctionId) -> &mut FunctionFacts {
        self.functions.entry(function.clone()).or_default()
    }

    /// The target's config: `None` while unknown, `Some(None)` when it has none.
    pub fn config(&self, target: &TargetConfig) -> Option<Option<&ProvisionedConfig>> {
        let configs = self.functions.get(&target.function)?.configs.as_ref()?;
        Some(configs.get(target.qualifier.as_str()))
    }

    /// Records a scan. Returns every qualifier whose requested capacity differs from
    /// what was known before; nothing on the first scan.
    pub fn scanned(&mut self, function: &FunctionId, configs: FunctionConfigs) -> Vec<Drift> {
        let facts = self.facts(function);
        facts.read_error = None;
        let drift = match &facts.configs {
            None => Vec::new(),
            Some(before) => {
                let qualifiers: BTreeSet<&str> = before
                    .iter()
                    .map(|(qualifier, _)| qualifier)
                    .chain(configs.keys().map(String::as_str))
                    .collect();
                qualifiers
                    .into_iter()
                    .filter_map(|qualifier| {
                        let known = requested(before.get(qualifier));
                        let found = requested(configs.get(qualifier));
                        (known != found).then(|| Drift {
                            qualifier: qualifier.to_owned(),
                            known,
                            found,
                        })
                    })
                    .collect()
            }
        };
        facts.configs = Some(configs.into());
        drift
    }

    /// A scan failed; a function that was never read reports why.
    pub fn scan_failed(&mut self, function: &FunctionId, error: String) {
        let facts = self.facts(function);
        if facts.configs.is_none() {
            facts.read_error = Some(error);
        }
    }

    /// The daemon's own write was accepted: `Some` is Lambda's answer to a put, `None`
    /// a delete.
    pub fn wrote(&mut self, target: &TargetConfig, config: Option<ProvisionedConfig>) {
        let reserved = self
            .functions
            .get(&target.function)
            .and_then(|f| f.reserved);
        let configs = self.facts(&target.function).configs.get_or_insert_default();
        let before = requested(configs.get(target.qualifier.as_str())).unwrap_or(0);
        let after = requested(config.as_ref()).unwrap_or(0);
        configs.set(target.qualifier.as_str(), config);
        // Only a function known to have no reserved concurrency draws on the pool.
        if reserved == Some(None) {
            self.added_since_account_read += i64::from(after) - i64::from(before);
        }
    }

    /// A read-back of the target. Returns the drift when it disagrees with what is
    /// known (someone else changed the capacity meanwhile).
    pub fn read_back(
        &mut self,
        target: &TargetConfig,
        config: Option<ProvisionedConfig>,
    ) -> Option<Drift> {
        let configs = self.facts(&target.function).configs.get_or_insert_default();
        let known = requested(configs.get(target.qualifier.as_str()));
        let found = requested(config.as_ref());
        configs.set(target.qualifier.as_str(), config);
        (known != found).then(|| Drift {
            qualifier: target.qualifier.to_string(),
            known,
            found,
        })
    }

    pub fn set_reserved(&mut self, function: &FunctionId, reserved: Option<u32>) {
        self.facts(function).reserved = Some(reserved);
    }

    pub fn set_weighted(&mut self, function: &FunctionId, weighted: BTreeSet<String>) {
        self.facts(function).weighted = Some(weighted);
    }

    pub fn set_unreserved(&mut self, unreserved: Option<u32>) {
        self.unreserved = unreserved;
        self.added_since_account_read = 0;
    }

    /// Unreserved concurrency left for provisioned concurrency, keeping `reserve`
    /// back; `None` while unknown (unknown limits nothing).
    pub fn account_headroom(&self, reserve: u32) -> Option<u32> {
        let unreserved = i64::from(self.unreserved?) - self.added_since_account_read;
        let left = unreserved - i64::from(reserve);
        Some(u32::try_from(left.max(0)).unwrap_or(u32::MAX))
    }

    /// Records whether the target's version has SnapStart on.
    pub fn set_snap_start(&mut self, target: &TargetConfig, on: bool) {
        let qualifier = target.qualifier.to_string();
        let facts = self.facts(&target.function);
        if on {
            facts.snap_start.insert(qualifier);
        } else {
            facts.snap_start.remove(&qualifier);
        }
    }

    /// Whether the target's version is known to have SnapStart on.
    pub fn has_snap_start(&self, target: &TargetConfig) -> bool {
        self.functions
            .get(&target.function)
            .is_some_and(|facts| facts.snap_start.contains(target.qualifier.as_str()))
    }

    /// Whether the alias is known to have routing weights.
    pub fn is_weighted(&self, target: &TargetConfig) -> bool {
        self.functions
            .get(&target.function)
            .and_then(|facts| facts.weighted.as_ref())
            .is_some_and(|weighted| weighted.contains(target.qualifier.as_str()))
    }

    /// Forgets a function no target names any more.
    pub fn forget(&mut self, function: &FunctionId) {
        self.functions.remove(function);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::AllocationStatus;

    fn config(requested: u32) -> ProvisionedConfig {
        ProvisionedConfig {
            requested,
            allocated: requested,
            status: AllocationStatus::Ready,
            ..ProvisionedConfig::default()
        }
    }

    fn target(qualifier: &str) -> TargetConfig {
        let mut target = crate::policy::test_support::target("min = 0\nmax = 10");
        target.qualifier = crate::config::Qualifier::classify(qualifier);
        target
    }

    #[test]
    fn a_scan_reports_what_others_changed_and_the_first_scan_reports_nothing() {
        let mut known = Known::default();
        let live = target("live");
        assert_eq!(known.config(&live), None, "unknown before the first scan");
        let first = FunctionConfigs::from([("live".to_owned(), config(5))]);
        assert!(known.scanned(&live.function, first).is_empty());
        assert_eq!(known.config(&live).flatten().map(|c| c.requested), Some(5));

        known.wrote(&live, Some(config(8)));
        let second =
            FunctionConfigs::from([("live".to_owned(), config(8)), ("7".to_owned(), config(2))]);
        assert_eq!(
            known.scanned(&live.function, second),
            vec![Drift {
                qualifier: "7".into(),
                known: None,
                found: Some(2)
            }],
            "the daemon's own write is no drift"
        );
        let reset = FunctionConfigs::from([("7".to_owned(), config(2))]);
        assert_eq!(
            known.scanned(&live.function, reset),
            vec![Drift {
                qualifier: "live".into(),
                known: Some(8),
                found: None
            }]
        );
        assert_eq!(known.config(&live), Some(None));
    }

    #[test]
    fn own_writes_come_out_of_the_account_headroom_until_it_is_read_again() {
        let mut known = Known::default();
        let live = target("live");
        assert_eq!(known.account_headroom(100), None);
        known.set_unreserved(Some(900));
        known.set_reserved(&live.function, None);
        known.scanned(&live.function, FunctionConfigs::new());
        known.wrote(&live, Some(config(300)));
        assert_eq!(known.account_headroom(100), Some(500));
        known.wrote(&live, Some(config(100)));
        assert_eq!(known.account_headroom(100), Some(700));
        known.set_unreserved(Some(800));
        assert_eq!(known.account_headroom(100), Some(700));
    }

    #[test]
    fn a_read_back_that_disagrees_is_drift() {
        let mut known = Known::default();
        let live = target("live");
        known.scanned(&live.function, FunctionConfigs::new());
        known.wrote(&live, Some(config(8)));
        assert_eq!(known.read_back(&live, Some(config(8))), None);
        assert_eq!(
            known.read_back(&live, Some(config(3))),
            Some(Drift {
                qualifier: "live".into(),
                known: Some(8),
                found: Some(3)
            })
        );
    }
}
