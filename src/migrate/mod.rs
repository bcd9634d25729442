//! `migrate`: Application Auto Scaling's settings for Lambda provisioned concurrency
//! ([`Aas`]: scalable targets, scaling policies, scheduled actions) written as a
//! pc-autoscaler config, each target with its bounds, its target tracking and its
//! scheduled actions as rules ([`schedule`]); whatever cannot be carried over exactly is
//! a comment saying why. [`read`] reads the settings, and each target's history for a
//! replay of both.
//!
//! What it must not do: write to AWS, or pass off an approximation as the same.

pub mod read;
pub mod schedule;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::aws::{
    PolicyKind, ScalableTarget, ScalingPolicy, ScheduledAction, TargetTrackingPolicy, TrackedMetric,
};
use crate::config::TargetConfig;
use crate::escape::printable;
use schedule::Converted;

/// AAS's settings for Lambda in one account and Region.
#[derive(Debug, Clone, Default)]
pub struct Aas {
    pub targets: Vec<ScalableTarget>,
    pub policies: Vec<ScalingPolicy>,
    pub actions: Vec<ScheduledAction>,
}

/// What `migrate` writes: the config, and each target as the config reads it back.
#[derive(Debug, Clone)]
pub struct Migration {
    pub text: String,
    /// Each scalable target carried over, with its AAS target value when it tracks.
    pub carried: Vec<(TargetConfig, Option<f64>)>,
    /// Scalable targets left out, with why.
    pub left_out: Vec<(String, String)>,
}

/// The predefined metric pc-autoscaler's `utilization` is.
const UTILIZATION: &str = "LambdaProvisionedConcurrencyUtilization";

/// The config for `aas` in `region`, as of `now`, keeping the takeover records in
/// `state_directory`.
pub fn migrate(
    aas: &Aas,
    (region, state_directory): (Option<&str>, &Path),
    now: DateTime<Utc>,
) -> Migration {
    let mut text = String::from(
        "# Written by `pc-autoscaler migrate` from Application Auto Scaling's settings.\n\
         # Check it with `pc-autoscaler check`; what could not be carried over is said in\n\
         # comments. With `take_over_aas`, the daemon suspends AAS's scaling of each target\n\
         # before its first write (`pc-autoscaler migrate --rollback` resumes it).\n",
    );
    if let Some(region) = region {
        let _ = write!(text, "\n[aws]\nregion = {}\n", quoted(region));
    }
    let _ = write!(
        text,
        "\n[daemon]\n\
         # Where the takeover records are kept (with [leader], its table keeps them).\n\
         state_directory = {}\n\
         \n[defaults]\ntake_over_aas = true\n",
        quoted(&state_directory.display().to_string())
    );
    let mut migration = Migration {
        text,
        carried: Vec::new(),
        left_out: Vec::new(),
    };
    let mut targets = aas.targets.clone();
    targets.sort_by(|left, right| {
        (&left.function, &left.qualifier).cmp(&(&right.function, &right.qualifier))
    });
    for target in &targets {
        let key = (target.function.as_str(), target.qualifier.as_str());
        let policies: Vec<&ScalingPolicy> = aas
            .policies
            .iter()
            .filter(|policy| (policy.function.as_str(), policy.qualifier.as_str()) == key)
            .collect();
        let actions: Vec<&ScheduledAction> = aas
            .actions
            .iter()
            .filter(|action| (action.function.as_str(), action.qualifier.as_str()) == key)
            .collect();
        carry(target, (&policies, &actions), now, &mut migration);
    }
    migration
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A comment line for people, whatever `text` holds.
fn comment(text: &str) -> String {
    format!("# {}\n", printable(text))
}

/// One scalable target, written into `migration` when the config takes it.
fn carry(
    target: &ScalableTarget,
    (policies, actions): (&[&ScalingPolicy], &[&ScheduledAction]),
    now: DateTime<Utc>,
    migration: &mut Migration,
) {
    let name = format!("{}:{}", target.function, target.qualifier);
    let mut block = format!(
        "\n{}",
        comment(&format!(
            "{name}: min {}, max {} in AAS",
            target.min, target.max
        ))
    );
    let _ = write!(
        block,
        "[[target]]\nfunction = {}\nqualifier = {}\nmin = {}\nmax = {}\n",
        quoted(&target.function),
        quoted(&target.qualifier),
        target.min,
        target.max.max(1)
    );
    if target.max == 0 {
        block.push_str(&comment("AAS's max is 0; a target's max is at least 1"));
    }
    let (tracking, tracked_value) = tracking(policies, &mut block);
    block.push_str(&tracking);
    for (index, action) in actions.iter().enumerate() {
        match schedule::convert(action, actions, index, now) {
            Converted::Rule { toml, note } => {
                if let Some(note) = note {
                    block.push_str(&comment(&format!("action `{}`: {note}", action.name)));
                }
                block.push_str(&toml);
            }
            Converted::InTheBounds(why) => {
                block.push_str(&comment(&format!(
                    "action `{}` ({}): {why}",
                    action.name, action.schedule
                )));
            }
            Converted::Not(why) => {
                block.push_str(&comment(&format!(
                    "action `{}` ({}) is not carried over: {why}",
                    action.name, action.schedule
                )));
            }
        }
    }
    match crate::config::parse(&block, Path::new("migrated.toml")) {
        Ok(mut parsed) => {
            migration.text.push_str(&block);
            if let Some(target) = parsed.targets.pop() {
                migration.carried.push((target, tracked_value));
            }
        }
        Err(errors) => {
            let why = errors
                .errors
                .first()
                .map_or_else(String::new, |error| error.reason.clone());
            migration.text.push_str(&format!(
                "\n{}",
                comment(&format!("{name} is not carried over: {why}"))
            ));
            migration.left_out.push((name, why));
        }
    }
}

/// The target's `tracking` line from its target-tracking policy, and the AAS target
/// value it carries; every policy not carried over is a comment in `block`.
fn tracking(policies: &[&ScalingPolicy], block: &mut String) -> (String, Option<f64>) {
    let mut line = String::new();
    let mut value = None;
    for policy in policies {
        let name = &policy.name;
        match &policy.kind {
            PolicyKind::TargetTracking(tracked) if value.is_none() => {
                match tracked_line(tracked) {
                    Ok(written) => {
                        line = written;
                        value = Some(tracked.target_value);
                    }
                    Err(why) => block.push_str(&comment(&format!(
                        "policy `{name}` is not carried over: {why}"
                    ))),
                }
            }
            PolicyKind::TargetTracking(_) => block.push_str(&comment(&format!(
                "policy `{name}` is not carried over: a target tracks one policy here, and an earlier one is carried"
            ))),
            PolicyKind::Step(steps) => block.push_str(&comment(&format!(
                "step scaling policy `{name}` ({steps}) is not carried over: target tracking and the forecast do its job here"
            ))),
            PolicyKind::Other(kind) => block.push_str(&comment(&format!(
                "policy `{name}` ({kind}) is not carried over: pc-autoscaler has no equivalent"
            ))),
        }
    }
    (line, value)
}

/// A target-tracking policy as the config's `tracking`, or why it cannot be one.
fn tracked_line(policy: &TargetTrackingPolicy) -> Result<String, String> {
    let utilization = match &policy.metric {
        TrackedMetric::Predefined(kind) => kind == UTILIZATION,
        TrackedMetric::Customized {
            namespace,
            name,
            math,
            ..
        } => {
            !math
                && namespace.as_deref() == Some("AWS/Lambda")
                && name.as_deref() == Some("ProvisionedConcurrencyUtilization")
        }
    };
    if !utilization {
        return Err(match &policy.metric {
            TrackedMetric::Predefined(kind) => format!("it tracks `{kind}`, not {UTILIZATION}"),
            TrackedMetric::Customized {
                namespace,
                name,
                math: true,
                ..
            } => format!(
                "it tracks metric math ({}/{}); a config tracks one metric",
                namespace.as_deref().unwrap_or("-"),
                name.as_deref().unwrap_or("-")
            ),
            TrackedMetric::Customized {
                namespace,
                name,
                statistic,
                ..
            } => format!(
                "it tracks {}/{} ({}) at {}: AAS scales capacity in proportion to such a metric, as to a utilization, while a custom metric here is a demand divided by the value one unit serves; write `tracking = {{ metric = \"custom\", custom = {{ ... }}, target = ... }}` with that value by hand",
                namespace.as_deref().unwrap_or("-"),
                name.as_deref().unwrap_or("-"),
                statistic.as_deref().unwrap_or("-"),
                policy.target_value
            ),
        });
    }
    if !(policy.target_value > 0.0 && policy.target_value <= 1.0) {
        return Err(format!(
            "its target value {} is not a utilization above 0 and at most 1",
            policy.target_value
        ));
    }
    let mut keys = vec![
        "metric = \"utilization\"".to_owned(),
        format!("target = {}", policy.target_value),
    ];
    let mut cooldown = |key: &str, seconds: Option<u32>| {
        if let Some(seconds) = seconds {
            keys.push(format!("{key} = \"{seconds}s\""));
        }
    };
    cooldown("scale_in_cooldown", policy.scale_in_cooldown);
    cooldown("scale_out_cooldown", policy.scale_out_cooldown);
    if policy.disable_scale_in {
        keys.push("disable_scale_in = true".into());
    }
    Ok(format!("tracking = {{ {} }}\n", keys.join(", ")))
}

/// The targets of `migration` by function and qualifier.
pub fn by_function(
    migration: &Migration,
) -> BTreeMap<(String, String), &(TargetConfig, Option<f64>)> {
    migration
        .carried
        .iter()
        .map(|carried| {
            let target = &carried.0;
            (
                (target.function.name.clone(), target.qualifier.to_string()),
                carried,
            )
        })
        .collect()
}
