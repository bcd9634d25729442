//! What `plan` and `run --once` print: per target, what was read, what the policy
//! decided and why, and (for `run --once`) what was done. Text tables for people,
//! JSON for machines. Rendering only.
//!
//! What it must not do: decide or read anything; it renders what it is given.

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::TargetConfig;
use crate::escape::{Printable, printable};
use crate::runtime::drivers::once::Applied;
use crate::runtime::knowing::aas::Standing;
use crate::runtime::knowing::evaluate::Evaluation;

/// One target's row, as `plan --json` writes it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRow {
    pub target: String,
    /// The `[[account]]`'s name, or `base`.
    pub account: String,
    /// `None`: `[aws] region` or the SDK's chain.
    pub region: Option<String>,
    /// `config`, or the selector that found it (and the tag overrides applied).
    pub source: String,
    pub function: String,
    pub qualifier: String,
    pub blocked: Option<String>,
    pub requested: Option<u32>,
    pub allocated: Option<u32>,
    pub status: Option<String>,
    /// Lambda's `StatusReason` when the config is `FAILED`.
    pub status_reason: Option<String>,
    pub metric: Option<String>,
    pub metric_value: Option<f64>,
    pub datapoints: Option<usize>,
    pub rule: Option<String>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub reserved_cap: Option<u32>,
    pub account_headroom: Option<u32>,
    pub desired: Option<u32>,
    pub reason: Option<String>,
    pub reason_code: Option<&'static str>,
    /// With `forecast = "observe"` or `"on"`: what it foresees, or why nothing.
    pub forecast: Option<String>,
    /// With `choose_window = "observe"` or `"on"`: the scale-in window and target the
    /// history chose, or that the configured pair is kept.
    pub window: Option<String>,
    pub changes: bool,
    /// Why pc-autoscaler does not write it though it can decide it: Application Auto
    /// Scaling manages it, or is to be taken over first.
    pub left_alone: Option<String>,
}

/// Each evaluation's row; `standing` says, for each target, whether pc-autoscaler may
/// write it.
pub fn rows(
    evaluations: &[Evaluation],
    standing: &dyn Fn(&TargetConfig) -> Standing,
) -> Vec<PlanRow> {
    evaluations
        .iter()
        .map(|evaluation| {
            let target = &evaluation.target;
            let mut row = PlanRow {
                target: target.name.to_string(),
                account: target.shard.account_label().to_owned(),
                region: target.shard.region.as_deref().map(str::to_owned),
                source: target.origin.to_string(),
                function: target.function.reference.clone(),
                qualifier: target.qualifier.to_string(),
                blocked: None,
                requested: None,
                allocated: None,
                status: None,
                status_reason: None,
                metric: target
                    .tracking
                    .as_ref()
                    .map(|tracking| tracking.metric.label().to_owned()),
                metric_value: None,
                datapoints: None,
                rule: None,
                min: None,
                max: None,
                reserved_cap: None,
                account_headroom: None,
                desired: None,
                reason: None,
                reason_code: None,
                forecast: None,
                window: None,
                changes: false,
                left_alone: None,
            };
            let standing = standing(target);
            if !standing.may_write() {
                row.left_alone = Some(standing.to_string());
            }
            match &evaluation.outcome {
                Err(blocked) => row.blocked = Some(blocked.to_string()),
                Ok(evaluated) => decided(&mut row, target, evaluated, standing.may_write()),
            }
            row
        })
        .collect()
}

/// Fills what a decided target's row shows; `writes` is whether pc-autoscaler may
/// write it.
fn decided(
    row: &mut PlanRow,
    target: &TargetConfig,
    evaluated: &crate::runtime::knowing::evaluate::Evaluated,
    writes: bool,
) {
    let observation = &evaluated.observation;
    let decision = &evaluated.decision;
    row.requested = Some(observation.requested);
    row.allocated = Some(observation.allocated);
    row.status = Some(observation.status.label().to_owned());
    row.status_reason = evaluated
        .config
        .as_ref()
        .and_then(|config| config.status_reason.clone())
        .filter(|_| observation.status == crate::policy::AllocationStatus::Failed);
    row.metric_value = decision.metric_value;
    row.datapoints = target
        .tracking
        .as_ref()
        .map(|_| observation.datapoints.len());
    row.rule = decision.bounds.rule.clone();
    row.min = Some(decision.bounds.min);
    row.max = Some(decision.bounds.max);
    row.reserved_cap = observation.caps.reserved_available;
    row.account_headroom = observation.caps.account_headroom;
    row.desired = Some(decision.desired);
    row.reason = Some(decision.reason.to_string());
    row.reason_code = Some(decision.reason.label());
    row.forecast = decision
        .forecast
        .as_ref()
        .map(crate::policy::forecast::describe);
    if target.chooses_window() {
        row.window = Some(match &decision.tuned {
            Some(tuned) => tuned.to_string(),
            None => "as configured".to_owned(),
        });
    }
    row.changes = decision.changes(observation) && writes;
}

/// When no target of a shard could be read and all for the same reason (no
/// credentials, a role that cannot be assumed, an endpoint down), that reason once, in
/// one line; each target's row then points at it instead of repeating it.
pub fn shard_failure(
    shard: &crate::config::ShardKey,
    evaluations: &mut [Evaluation],
) -> Option<String> {
    use crate::runtime::knowing::evaluate::Blocked;
    let mut reasons = evaluations
        .iter()
        .map(|evaluation| match &evaluation.outcome {
            Err(Blocked::ReadFailed { error }) => Some(error.as_str()),
            _ => None,
        });
    let first = reasons.next()??;
    if !reasons.all(|reason| reason == Some(first)) {
        return None;
    }
    // One line, whatever the SDK's chain of causes spans.
    let summary = first.split_whitespace().collect::<Vec<_>>().join(" ");
    let hint = if shard.is_base() || !first.to_ascii_lowercase().contains("credential") {
        String::new()
    } else {
        format!(
            "; the role of account `{}` could not be assumed with the base credentials: check sts:AssumeRole, the role's trust policy and external id",
            shard.account_label()
        )
    };
    let line = format!("shard {shard}: no target could be read: {summary}{hint}");
    for evaluation in evaluations.iter_mut() {
        evaluation.outcome = Err(Blocked::ReadFailed {
            error: format!("see shard {shard} below"),
        });
    }
    Some(line)
}

fn show<T: std::fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// The plan as a table.
pub fn render(rows: &[PlanRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:>9} {:>9} {:<11} {:<12} {:>9} {:<14} {:>9} {:>8} {:>8} {:>7}  reason",
        "target",
        "requested",
        "allocated",
        "status",
        "metric",
        "value",
        "rule",
        "bounds",
        "reserved",
        "account",
        "desired"
    );
    for row in rows {
        if let Some(blocked) = &row.blocked {
            let _ = writeln!(out, "{:<24} BLOCKED: {}", row.target, Printable(blocked));
            if row.source != "config" {
                let _ = writeln!(out, "{:<24} from {}", "", Printable(&row.source));
            }
            continue;
        }
        let value = row
            .metric_value
            .map_or_else(|| "-".to_owned(), |value| format!("{value:.3}"));
        let bounds = format!("{}..{}", show(&row.min), show(&row.max));
        let desired = format!(
            "{}{}",
            show(&row.desired),
            if row.changes { "*" } else { "" }
        );
        let _ = writeln!(
            out,
            "{:<24} {:>9} {:>9} {:<11} {:<12} {:>9} {:<14} {:>9} {:>8} {:>8} {:>7}  {}",
            row.target,
            show(&row.requested),
            show(&row.allocated),
            show(&row.status),
            show(&row.metric),
            value,
            row.rule.as_deref().unwrap_or("-"),
            bounds,
            show(&row.reserved_cap),
            show(&row.account_headroom),
            desired,
            printable(&show(&row.reason))
        );
        if let Some(reason) = &row.status_reason {
            let _ = writeln!(
                out,
                "{:<24} FAILED: {}; {} allocated of {} requested",
                "",
                Printable(reason),
                show(&row.allocated),
                show(&row.requested)
            );
        }
        if let Some(forecast) = &row.forecast {
            let _ = writeln!(out, "{:<24} forecast {forecast}", "");
        }
        if let Some(window) = &row.window {
            let _ = writeln!(out, "{:<24} window {window}", "");
        }
        if let Some(why) = &row.left_alone {
            let _ = writeln!(out, "{:<24} not written: {why}", "");
        }
        if row.source != "config" {
            let _ = writeln!(out, "{:<24} from {}", "", Printable(&row.source));
        }
    }
    let _ = writeln!(out, "(* = would change)");
    out
}

/// What `run --once` did, one line a target.
pub fn render_applied(results: &[(crate::config::TargetName, Applied)]) -> String {
    let mut out = String::new();
    for (target, applied) in results {
        let _ = writeln!(out, "{target}: {}", printable(&applied.to_string()));
    }
    out
}
