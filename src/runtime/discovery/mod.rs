//! Discovery: what a shard's selectors make of the functions they found. [`resolve`]
//! turns one read ([`Found`]: each selector's functions with their tags, each
//! function's aliases) into targets, and says which functions were skipped and why
//! (no such alias, a bad tag override, a target written out for it, an earlier
//! selector's). The reads themselves are [`reads`]' job.
//!
//! What it must not do: read anything, or let a failed read drop a target: a selector
//! whose read failed keeps the targets it had, and a function whose aliases could not
//! be read keeps its target if it had one. Capacity is never changed here; a dropped
//! target's capacity stays as it is.

pub mod reads;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use crate::aws::Aliases;
use crate::config::{
    Config, FunctionId, MetricKind, Origin, Qualifier, SelectorConfig, ShardKey, TargetConfig,
    default_target_name,
};

/// The tag a function's owners set its `min` with (`pc-autoscaler:max`, `:target` too).
pub const TAG_PREFIX: &str = "pc-autoscaler:";

/// A function a selector matched, with its tags (none when listed by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFunction {
    pub name: String,
    pub tags: BTreeMap<String, String>,
}

/// What one selector's read found: the functions it matched, or why it failed.
pub type SelectorRead = Result<Vec<FoundFunction>, String>;

/// One discovery's read of one shard.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// By selector name, in the config's order: the functions it matched, or why its
    /// read failed.
    pub selectors: Vec<(Arc<str>, SelectorRead)>,
    /// Each matched function's aliases, or why they could not be read.
    pub aliases: BTreeMap<String, Result<Aliases, String>>,
}

/// A function a selector matched but does not manage, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    pub function: String,
    pub selector: Arc<str>,
    pub reason: String,
}

/// What a shard's selectors manage after one read.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub targets: Vec<TargetConfig>,
    pub skipped: Vec<Skipped>,
    /// Selectors whose read failed, with why: their earlier targets are kept.
    pub failed: Vec<(Arc<str>, String)>,
}

impl Resolution {
    /// What a change of targets is judged by: names and the tag overrides applied.
    pub fn signature(&self) -> BTreeSet<(String, String)> {
        self.targets
            .iter()
            .map(|target| (target.name.to_string(), target.origin.to_string()))
            .collect()
    }
}

/// The targets written out, as selectors must leave them alone: their functions and
/// qualifiers in each shard, and their names.
#[derive(Debug, Clone, Default)]
pub struct Written {
    functions: HashSet<(ShardKey, String, String)>,
    names: HashSet<String>,
}

impl Written {
    pub fn of(targets: &[TargetConfig]) -> Self {
        Self {
            functions: targets
                .iter()
                .map(|target| {
                    let function = target.function.name.clone();
                    (target.shard.clone(), function, target.qualifier.to_string())
                })
                .collect(),
            names: targets
                .iter()
                .map(|target| target.name.to_string())
                .collect(),
        }
    }
}

/// Resolves `found` for `shard` under `config`, beside the targets `written` out;
/// `previous` are the targets the selectors had, kept where a read failed.
pub fn resolve(
    config: &Config,
    shard: &ShardKey,
    written: &Written,
    found: &Found,
    previous: &[TargetConfig],
) -> Resolution {
    let mut resolver = Resolver {
        account_id: shard
            .account
            .as_deref()
            .and_then(|name| config.account(name))
            .map(|account| account.account_id.clone()),
        config,
        shard,
        written,
        found,
        previous,
        claimed: BTreeMap::new(),
        resolution: Resolution::default(),
    };
    for (name, read) in &found.selectors {
        let Some(selector) = config
            .selectors
            .iter()
            .find(|selector| *selector.name == **name)
        else {
            continue;
        };
        match read {
            Ok(functions) => {
                for function in functions {
                    resolver.take(selector, name, function);
                }
            }
            Err(why) => resolver.keep_previous(name, why),
        }
    }
    let mut resolution = resolver.resolution;
    resolution
        .targets
        .sort_by(|left, right| left.name.cmp(&right.name));
    resolution
}

/// One resolution under way: what is read, and what each function came to so far.
struct Resolver<'a> {
    config: &'a Config,
    shard: &'a ShardKey,
    account_id: Option<String>,
    written: &'a Written,
    found: &'a Found,
    previous: &'a [TargetConfig],
    /// Each function managed so far, by the selector that claimed it.
    claimed: BTreeMap<String, Arc<str>>,
    resolution: Resolution,
}

/// What becomes of one function a selector matched.
enum Ruling {
    /// A target made from the selector's template.
    Take(TargetConfig),
    /// The target it had: its aliases could not be read this time.
    Keep(TargetConfig),
    Skip(String),
}

impl Resolver<'_> {
    /// A selector whose read failed keeps the targets it had.
    fn keep_previous(&mut self, selector: &Arc<str>, why: &str) {
        self.resolution
            .failed
            .push((selector.clone(), why.to_owned()));
        for target in self.previous {
            let from_it =
                matches!(&target.origin, Origin::Selector { name, .. } if name == selector);
            if from_it && !self.claimed.contains_key(&target.function.name) {
                self.claimed
                    .insert(target.function.name.clone(), selector.clone());
                self.resolution.targets.push(target.clone());
            }
        }
    }

    /// Takes what `selector` (named `name`) makes of `function`.
    fn take(&mut self, selector: &SelectorConfig, name: &Arc<str>, function: &FoundFunction) {
        match self.judge(selector, function) {
            Ruling::Take(target) | Ruling::Keep(target) => {
                self.claimed.insert(function.name.clone(), name.clone());
                self.resolution.targets.push(target);
            }
            Ruling::Skip(reason) => self.resolution.skipped.push(Skipped {
                function: function.name.clone(),
                selector: name.clone(),
                reason,
            }),
        }
    }

    /// Whether `selector` manages `function`, in order: an earlier selector's claim, a
    /// target written out for it, its alias, then the template and its tags.
    fn judge(&self, selector: &SelectorConfig, function: &FoundFunction) -> Ruling {
        let qualifier = selector.template.qualifier.as_str();
        if let Some(first) = self.claimed.get(&function.name) {
            return Ruling::Skip(format!("selector `{first}` matched it first"));
        }
        let key = (
            self.shard.clone(),
            function.name.clone(),
            qualifier.to_owned(),
        );
        if self.written.functions.contains(&key) {
            return Ruling::Skip(format!(
                "a [[target]] is written for {}:{qualifier}",
                function.name
            ));
        }
        match self.found.aliases.get(&function.name) {
            Some(Ok(aliases)) if aliases.contains_key(qualifier) => {}
            Some(Ok(_)) => return Ruling::Skip(format!("it has no alias `{qualifier}`")),
            unread => return self.unread_aliases(function, unread),
        }
        match instantiate(
            self.config,
            self.shard,
            selector,
            function,
            self.account_id.clone(),
        ) {
            Ok(target) if self.written.names.contains(&*target.name) => {
                Ruling::Skip(format!("a [[target]] is already named `{}`", target.name))
            }
            Ok(target) => Ruling::Take(target),
            Err(reason) => Ruling::Skip(reason),
        }
    }

    /// A function whose aliases could not be read keeps the target it had; one never
    /// seen waits for the next read.
    fn unread_aliases(
        &self,
        function: &FoundFunction,
        unread: Option<&Result<Aliases, String>>,
    ) -> Ruling {
        let had = self.previous.iter().find(|target| {
            target.function.name == function.name && target.origin != Origin::Config
        });
        match (had, unread) {
            (Some(target), _) => Ruling::Keep(target.clone()),
            (None, Some(Err(why))) => Ruling::Skip(format!("its aliases could not be read: {why}")),
            (None, _) => Ruling::Skip("its aliases could not be read: they were not read".into()),
        }
    }
}

/// The selector's template made a target for `function`, with its tag overrides.
fn instantiate(
    config: &Config,
    shard: &ShardKey,
    selector: &SelectorConfig,
    function: &FoundFunction,
    account_id: Option<String>,
) -> Result<TargetConfig, String> {
    let mut target = selector.template.clone();
    let qualifier = target.qualifier.as_str().to_owned();
    target.name = default_target_name(shard, &config.accounts, &function.name, &qualifier).into();
    target.shard = shard.clone();
    target.function = FunctionId {
        name: function.name.clone(),
        account: account_id,
        reference: function.name.clone(),
    };
    target.qualifier = Qualifier::Alias(qualifier);
    let overridden = if selector.tag_overrides {
        apply_tag_overrides(&mut target, &function.tags)?
    } else {
        Vec::new()
    };
    target.origin = Origin::Selector {
        name: selector.name.as_str().into(),
        overridden,
    };
    Ok(target)
}

/// Applies `pc-autoscaler:min`, `:max` and `:target`; returns them as `key=value`, or
/// the first that is not valid, said as `check` would.
fn apply_tag_overrides(
    target: &mut TargetConfig,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut applied = Vec::new();
    let tag = |suffix: &str| {
        let key = format!("{TAG_PREFIX}{suffix}");
        tags.get(&key).map(|value| (key, value.trim().to_owned()))
    };
    let bad = |key: &str, value: &str, expected: String| {
        format!(
            "tag `{key}` = `{}`: {expected}",
            crate::escape::printable(value)
        )
    };
    // The right to tag a function is not the right to take the account's pool: the
    // tags move the bounds within the template's `max`, never above it.
    let ceiling = target.max;
    let count = |key: &str, value: &str, low: u32| {
        value
            .parse::<u32>()
            .ok()
            .filter(|count| (low..=ceiling).contains(count))
            .ok_or_else(|| {
                bad(
                    key,
                    value,
                    format!("expected a whole number from {low} to the selector's max, {ceiling}"),
                )
            })
    };
    if let Some((key, value)) = tag("min") {
        target.min = count(&key, &value, 0)?;
        applied.push(format!("{key}={value}"));
    }
    if let Some((key, value)) = tag("max") {
        target.max = count(&key, &value, 1)?;
        applied.push(format!("{key}={value}"));
    }
    if target.min > target.max {
        return Err(format!(
            "max ({}) is below min ({}) once the tags are applied",
            target.max, target.min
        ));
    }
    if let Some((key, value)) = tag("target") {
        let Some(tracking) = &mut target.tracking else {
            return Err(bad(
                &key,
                &value,
                "the selector's template tracks nothing".into(),
            ));
        };
        let parsed = value
            .parse::<f64>()
            .ok()
            .filter(|number| number.is_finite());
        let valid = match tracking.metric {
            MetricKind::Custom(_) => parsed.filter(|number| *number > 0.0 && *number <= 1e9),
            _ => parsed.filter(|number| *number > 0.0 && *number <= 1.0),
        };
        tracking.target = valid.ok_or_else(|| {
            let expected = match tracking.metric {
                MetricKind::Custom(_) => "expected a number above 0",
                _ => "expected a utilization above 0 and at most 1",
            };
            bad(&key, &value, expected.into())
        })?;
        applied.push(format!("{key}={value}"));
    }
    Ok(applied)
}

#[cfg(test)]
mod tests;
