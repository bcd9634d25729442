//! One home for each target: a slot per target, keyed by name, in config order, and
//! an index of the shard's functions.
//!
//! A slot holds everything the shard keeps about its target: the config, the write
//! course, the policy's memory, where its history read stands, its next boundary, its
//! last metric read and what its last decision saw. So dropping a slot is the whole
//! cleanup when a reload removes a target; queues that name it (due work, boundaries,
//! the history queue) find it gone and skip it. What it must not do: decide, or know
//! about AWS beyond the config values it holds.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;

use super::others::Contest;
use crate::aws::Series;
use crate::config::{FunctionId, TargetConfig, TargetName};
use crate::policy::{AllocationStatus, Caps, MetricData, PolicyState, Reason, TRIGGERS};
use crate::runtime::course::{WriteBlocked, WriteCourse};
use crate::runtime::knowing::aas::Standing;
use crate::runtime::knowing::evaluate::Blocked;

/// Where a target's demand history read stands (targets that keep history only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryProgress {
    NotAsked,
    Queued,
    Reading,
    /// Read, or the read ended without it: the target builds its history as it runs.
    Read,
}

/// What keeps a target's decision from being carried out, if something does.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockedBy {
    /// The target cannot be decided (a weighted alias, an unreadable config).
    Undecided(Blocked),
    /// The decision cannot be written.
    Write(WriteBlocked),
    /// Application Auto Scaling manages the target, or it is being taken over.
    Aas(Standing),
    /// Someone else keeps changing the target, and the decision would lower it.
    Contested,
}

impl std::fmt::Display for BlockedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockedBy::Undecided(blocked) => blocked.fmt(f),
            BlockedBy::Write(blocked) => blocked.fmt(f),
            BlockedBy::Aas(standing) => standing.fmt(f),
            BlockedBy::Contested => f.write_str(
                "contested: someone else keeps changing the capacity; it is raised when the policy needs more, never lowered",
            ),
        }
    }
}

/// What the target's last decision saw and decided: what `/status` and the metrics
/// show of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub at: DateTime<Utc>,
    pub requested: u32,
    pub allocated: u32,
    pub allocation: AllocationStatus,
    pub desired: u32,
    pub min: u32,
    pub max: u32,
    /// The schedule rule the bounds come from.
    pub rule: Option<String>,
    pub reason: Reason,
    pub metric_data: MetricData,
    /// The newest demand read and when it was measured.
    pub metric_value: Option<f64>,
    pub newest: Option<DateTime<Utc>>,
    pub caps: Caps,
    /// What the forecast says the next horizon needs, while it predicts.
    pub forecast_capacity: Option<u32>,
    /// The scale-in window the history chose, in seconds.
    pub chosen_window: Option<u32>,
    /// Lambda's `StatusReason`, for a config that FAILED.
    pub status_reason: Option<String>,
    /// When a FAILED config is written again.
    pub failed_retry_at: Option<DateTime<Utc>>,
    /// Operators' overrides in force at the decision, one bit a kind
    /// (`policy::overrides::in_force_bits`).
    pub overrides: u8,
}

/// Counters a target has counted since its slot was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub drift: u64,
    /// Accepted changes by direction (up, down) and trigger ([`TRIGGERS`]).
    pub actions: [[u64; TRIGGERS.len()]; 2],
}

impl Counts {
    pub fn count_action(&mut self, up: bool, trigger: &str) {
        let trigger = TRIGGERS
            .iter()
            .position(|known| *known == trigger)
            .expect("a trigger is one of TRIGGERS");
        self.actions[usize::from(!up)][trigger] += 1;
    }
}

/// Everything the shard keeps about one target.
#[derive(Debug)]
pub struct Slot {
    pub config: Arc<TargetConfig>,
    pub course: WriteCourse,
    /// Whether the last decision held capacity: a hold is recorded when it starts.
    pub held: bool,
    /// What blocks the target now: a block is recorded when it starts or changes.
    pub blocked: Option<BlockedBy>,
    /// What the last decision handed on, for targets that keep history (the rest
    /// rebuild theirs from each metric read).
    pub state: Option<Box<PolicyState>>,
    pub history: HistoryProgress,
    pub boundary: Option<DateTime<Utc>>,
    /// The last metric read; `None` when it could not be read.
    pub series: Option<Series>,
    /// Whether a pass has read its metrics (or tried to): a tracked target is not
    /// decided before, so that its first write is its tracked value, not its floor.
    pub metrics_read: bool,
    /// When its metric was read, and what its reads next depend on.
    pub reads: super::cadence::ReadTally,
    pub seen: Option<Box<Seen>>,
    pub counts: Counts,
    /// While its function is unknown: what the target was last found to need.
    pub provisional: Option<u32>,
    /// What a snapshot remembered it requested: orders the scans, decides nothing.
    pub remembered: Option<u32>,
    /// Its standing towards Application Auto Scaling at its last decision.
    pub standing: Option<Standing>,
    /// The `state` of `pc_autoscaler_target_handover`, if it has one.
    pub handover: Option<&'static str>,
    /// Changes someone else made, and whether that makes a contest.
    pub contest: Contest,
}

impl Slot {
    fn new(config: Arc<TargetConfig>) -> Self {
        Slot {
            history: if config.keeps_history() {
                HistoryProgress::NotAsked
            } else {
                HistoryProgress::Read
            },
            config,
            course: WriteCourse::default(),
            held: false,
            blocked: None,
            state: None,
            boundary: None,
            series: None,
            metrics_read: false,
            reads: Default::default(),
            seen: None,
            counts: Counts::default(),
            provisional: None,
            remembered: None,
            standing: None,
            handover: None,
            contest: Contest::default(),
        }
    }

    /// Takes `config` in place of the old one. A target that now names another
    /// function or qualifier starts afresh; one that stops keeping history drops it,
    /// one that starts keeping it is read.
    fn reconfigure(&mut self, config: Arc<TargetConfig>) {
        let same_config =
            self.config.function == config.function && self.config.qualifier == config.qualifier;
        if !same_config {
            *self = Slot::new(config);
            return;
        }
        match (self.config.keeps_history(), config.keeps_history()) {
            (true, false) => {
                self.state = None;
                self.history = HistoryProgress::Read;
            }
            (false, true) => self.history = HistoryProgress::NotAsked,
            _ => {}
        }
        self.config = config;
    }
}

/// What the shard keeps per function.
#[derive(Debug, Default)]
pub struct FunctionSlot {
    /// Its targets, in config order.
    pub targets: Vec<TargetName>,
    /// How many writes to it have ended: a scan started before the last one ended may
    /// predate it. A count, not a time: two events can share an instant.
    pub writes_ended: u64,
    /// The write in flight, at most one per function.
    pub writing: Option<InFlight>,
}

impl FunctionSlot {
    /// Whether any of its targets writes to an alias (alias weights matter then).
    pub fn has_alias(&self, targets: &Targets) -> bool {
        self.targets
            .iter()
            .filter_map(|name| targets.get(name))
            .any(|slot| slot.config.is_alias())
    }
}

/// A write in flight: what the answer will be about.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlight {
    pub target: TargetName,
    pub activity: u64,
    pub from: u32,
    pub to: u32,
    pub caps: Caps,
    pub reason: Reason,
}

/// What a [`Targets::replace`] changed.
#[derive(Debug, Default, PartialEq)]
pub struct Diff {
    pub added: Vec<TargetName>,
    pub removed: Vec<TargetName>,
    pub functions_added: Vec<FunctionId>,
    pub functions_removed: Vec<FunctionId>,
}

/// Every target's slot, by name, in config order, and the functions they name.
#[derive(Debug, Default)]
pub struct Targets {
    slots: IndexMap<TargetName, Slot>,
    functions: HashMap<FunctionId, FunctionSlot>,
    /// Changes whenever the set of targets does: a scrape that spans two generations
    /// stops the family it is in rather than show a target twice.
    generation: u64,
}

impl Targets {
    /// Takes `configs` in force, keeping the slots of targets that stay.
    pub fn replace(&mut self, configs: Vec<TargetConfig>) -> Diff {
        let mut old = std::mem::take(&mut self.slots);
        let mut diff = Diff::default();
        let mut slots = IndexMap::with_capacity(configs.len());
        for config in configs {
            let name = config.name.clone();
            let config = Arc::new(config);
            let slot = match old.swap_remove(&name) {
                Some(mut slot) => {
                    slot.reconfigure(config);
                    slot
                }
                None => {
                    diff.added.push(name.clone());
                    Slot::new(config)
                }
            };
            slots.insert(name, slot);
        }
        diff.removed = old.into_keys().collect();
        let mut functions: HashMap<FunctionId, FunctionSlot> = HashMap::new();
        for (name, slot) in &slots {
            functions
                .entry(slot.config.function.clone())
                .or_default()
                .targets
                .push(name.clone());
        }
        for (function, kept) in functions.iter_mut() {
            match self.functions.remove(function) {
                Some(before) => {
                    kept.writes_ended = before.writes_ended;
                    kept.writing = before.writing;
                }
                None => diff.functions_added.push(function.clone()),
            }
        }
        diff.functions_removed = std::mem::take(&mut self.functions).into_keys().collect();
        diff.functions_added.sort();
        self.slots = slots;
        self.functions = functions;
        self.generation += 1;
        diff
    }

    pub fn get(&self, name: &str) -> Option<&Slot> {
        self.slots.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Slot> {
        self.slots.get_mut(name)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Slots in config order.
    pub fn iter(&self) -> impl Iterator<Item = (&TargetName, &Slot)> {
        self.slots.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&TargetName, &mut Slot)> {
        self.slots.iter_mut()
    }

    /// The slot at `index` in config order.
    pub fn at(&self, index: usize) -> Option<(&TargetName, &Slot)> {
        self.slots.get_index(index)
    }

    pub fn at_mut(&mut self, index: usize) -> Option<(&TargetName, &mut Slot)> {
        self.slots.get_index_mut(index)
    }

    /// Where `name` is in config order.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.slots.get_index_of(name)
    }

    pub fn function(&self, function: &FunctionId) -> Option<&FunctionSlot> {
        self.functions.get(function)
    }

    pub fn function_mut(&mut self, function: &FunctionId) -> Option<&mut FunctionSlot> {
        self.functions.get_mut(function)
    }

    /// Every function, in no particular order.
    pub fn functions(&self) -> impl Iterator<Item = &FunctionId> {
        self.functions.keys()
    }

    /// The names of `function`'s targets, in config order.
    pub fn of_function(&self, function: &FunctionId) -> Vec<TargetName> {
        self.functions
            .get(function)
            .map(|slot| slot.targets.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(text: &str) -> Vec<TargetConfig> {
        crate::config::parse(text, std::path::Path::new("t.toml"))
            .expect("a valid config")
            .targets
    }

    const TWO: &str = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n\
                       tracking = { metric = \"concurrency\", target = 0.7, forecast = \"on\" }\n\
                       [[target]]\nfunction = \"g\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n";

    #[test]
    fn a_reload_keeps_the_slots_that_stay_and_reports_the_difference() {
        let mut targets = Targets::default();
        let first = targets.replace(configs(TWO));
        assert_eq!(first.added.len(), 2);
        assert_eq!(first.functions_added.len(), 2);
        targets.get_mut("f:live").expect("a slot").counts.drift = 3;
        let only_f = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 2\nmax = 5\n\
                      tracking = { metric = \"concurrency\", target = 0.7, forecast = \"on\" }\n";
        let diff = targets.replace(configs(only_f));
        assert_eq!(diff.removed, vec![TargetName::from("g:live")]);
        assert!(diff.added.is_empty());
        assert_eq!(diff.functions_removed.len(), 1);
        let kept = targets.get("f:live").expect("kept");
        assert_eq!((kept.counts.drift, kept.config.min), (3, 2));
        assert!(targets.get("g:live").is_none());
        assert!(targets.generation() > 1);
    }

    #[test]
    fn a_removed_target_added_back_starts_afresh_and_asks_for_its_history_again() {
        let mut targets = Targets::default();
        targets.replace(configs(TWO));
        targets.get_mut("f:live").expect("a slot").history = HistoryProgress::Read;
        targets.replace(configs(
            "[[target]]\nfunction = \"g\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n",
        ));
        targets.replace(configs(TWO));
        assert_eq!(
            targets.get("f:live").expect("back").history,
            HistoryProgress::NotAsked
        );
        assert_eq!(
            targets.get("g:live").expect("kept").history,
            HistoryProgress::Read,
            "a target without history has nothing to ask"
        );
    }
}
