//! The families that exist once per target, read from the shards' own state at scrape
//! time through one collector: no registry child per series and no copy of anything.
//!
//! Why not the `prometheus` crate's vectors: a labelled child there costs about 660
//! bytes, and a scrape copies every series once more into protobuf before encoding; at
//! 5,000 targets that was most of the daemon's memory. Here a shard hands each target's
//! values over as a [`TargetSample`] of plain values, and [`render_rows`] writes them
//! straight into the text format. Every family's `HELP` and `TYPE` are written on
//! every scrape, with or without targets, and a counter that has not counted yet reads
//! 0 for every target without any memory spent on it.
//!
//! What it must not do: keep anything between scrapes, or know where the values come
//! from (the runtime implements [`TargetRows`]).

use std::fmt::Write as _;
use std::ops::Range;

use crate::config::ScheduleRule;
use crate::policy::overrides::KINDS as OVERRIDE_KINDS;
use crate::policy::{MetricData, TRIGGERS};

/// Directions of a scaling action, the `direction` label.
const DIRECTIONS: [&str; 2] = ["up", "down"];
/// Why a target's write is blocked, the `reason` label of
/// `pc_autoscaler_target_write_blocked` (the runtime's `WriteBlocked` labels).
pub const WRITE_BLOCKED_REASONS: [&str; 2] = ["refused", "failing"];
/// A target's standing towards Application Auto Scaling, the `state` label of
/// `pc_autoscaler_target_handover` (the runtime's `Standing` labels).
pub const HANDOVER_STATES: [&str; 4] = ["left_to_aas", "taking_over", "taken_over", "handed_back"];

/// What the last decision of a target saw and decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decided {
    pub desired: u32,
    pub requested: u32,
    pub allocated: u32,
    pub min: u32,
    pub max: u32,
    pub allocation_failed: bool,
    pub metric_data: MetricData,
}

/// One target's values, as a shard hands them to a scrape.
#[derive(Debug, Clone, Copy)]
pub struct TargetSample<'a> {
    pub target: &'a str,
    /// `None` until the target was first decided.
    pub evaluated: Option<Decided>,
    /// The tracking metric's label and its newest value.
    pub metric_value: Option<(&'static str, f64)>,
    /// The target's schedule rules, and the one in force.
    pub rules: &'a [ScheduleRule],
    pub active_rule: Option<&'a str>,
    pub forecast_capacity: Option<u32>,
    /// The scale-in window the history chose, in seconds.
    pub chosen_window: Option<u32>,
    /// One of [`WRITE_BLOCKED_REASONS`], while blocked.
    pub write_blocked: Option<&'static str>,
    /// One of [`HANDOVER_STATES`], for a target Application Auto Scaling has (or had)
    /// a scalable target for.
    pub handover: Option<&'static str>,
    /// Whether someone else keeps changing its capacity.
    pub contested: bool,
    pub drift: u64,
    /// Accepted changes by direction and trigger ([`TRIGGERS`]).
    pub actions: &'a [[u64; TRIGGERS.len()]; 2],
    /// Operators' overrides in force at the last decision, a bit for each of
    /// [`OVERRIDE_KINDS`].
    pub overrides: u8,
}

/// A source of target samples: one shard's targets, in a stable order.
pub trait TargetRows {
    /// Changes whenever the set of targets does: a family rendered across two
    /// generations stops where the generation changed, so no target shows twice.
    fn generation(&self) -> u64;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Calls `visit` for each target in `range` (positions in the order).
    fn visit(&self, range: Range<usize>, visit: &mut dyn FnMut(&TargetSample<'_>));
}

/// Writes one target's samples of a family.
type WriteSamples = fn(&mut String, &str, &TargetSample<'_>);

/// One family: its name, help, type, and how a target's samples are written.
pub struct Family {
    pub name: &'static str,
    help: &'static str,
    kind: &'static str,
    write: WriteSamples,
}

impl Family {
    /// The family's `HELP` and `TYPE` lines.
    pub fn header(&self, out: &mut String) {
        out.push_str("# HELP ");
        out.push_str(self.name);
        out.push(' ');
        push_escaped(out, self.help, false);
        out.push_str("\n# TYPE ");
        out.push_str(self.name);
        out.push(' ');
        out.push_str(self.kind);
        out.push('\n');
    }
}

/// Appends the samples of `family` for the targets of `rows` in `range`.
pub fn render_rows(family: &Family, rows: &dyn TargetRows, range: Range<usize>, out: &mut String) {
    rows.visit(range, &mut |sample| {
        (family.write)(out, family.name, sample)
    });
}

/// A family with one sample per target, labelled by the target alone.
macro_rules! single {
    ($pick:expr) => {
        |out: &mut String, name: &str, sample: &TargetSample<'_>| {
            let pick: fn(&TargetSample<'_>) -> Option<u64> = $pick;
            if let Some(value) = pick(sample) {
                write_sample(out, name, &[("target", sample.target)], value);
            }
        }
    };
}

/// Every per-target family, in the order a scrape shows them.
pub const FAMILIES: [Family; 16] = [
    Family {
        name: "pc_autoscaler_target_desired_capacity",
        help: "Provisioned concurrency the policy wants for the target.",
        kind: "gauge",
        write: single!(|sample| sample.evaluated.map(|e| e.desired.into())),
    },
    Family {
        name: "pc_autoscaler_target_requested_capacity",
        help: "Provisioned concurrency requested from Lambda.",
        kind: "gauge",
        write: single!(|sample| sample.evaluated.map(|e| e.requested.into())),
    },
    Family {
        name: "pc_autoscaler_target_allocated_capacity",
        help: "Provisioned concurrency allocated and usable.",
        kind: "gauge",
        write: single!(|sample| sample.evaluated.map(|e| e.allocated.into())),
    },
    Family {
        name: "pc_autoscaler_target_allocation_failed",
        help: "1 while the target's provisioned concurrency config is FAILED, and through its retries until an allocation is READY.",
        kind: "gauge",
        write: single!(|sample| sample.evaluated.map(|e| e.allocation_failed.into())),
    },
    Family {
        name: "pc_autoscaler_target_override",
        help: "1 for each kind of operator's override in force at the target's last decision (pin, floor, ceiling, pause_scale_in, pause_scale_out, pause_all); absent otherwise.",
        kind: "gauge",
        write: |out, name, sample| {
            for (index, kind) in OVERRIDE_KINDS.iter().enumerate() {
                if sample.overrides & (1 << index) != 0 {
                    write_sample(
                        out,
                        name,
                        &[("kind", kind), ("target", sample.target)],
                        1u32,
                    );
                }
            }
        },
    },
    Family {
        name: "pc_autoscaler_target_bound",
        help: "Capacity bound in force (bound is min or max).",
        kind: "gauge",
        write: |out, name, sample| {
            if let Some(evaluated) = &sample.evaluated {
                let target = sample.target;
                write_sample(
                    out,
                    name,
                    &[("bound", "min"), ("target", target)],
                    evaluated.min,
                );
                write_sample(
                    out,
                    name,
                    &[("bound", "max"), ("target", target)],
                    evaluated.max,
                );
            }
        },
    },
    Family {
        name: "pc_autoscaler_target_metric_data",
        help: "1 for what the target's metric datapoints were at the last decision (fresh, stale, idle, unreadable, not_tracked).",
        kind: "gauge",
        write: |out, name, sample| {
            if let Some(evaluated) = &sample.evaluated {
                for state in MetricData::ALL {
                    let labels = [("state", state.label()), ("target", sample.target)];
                    let value = u32::from(state == evaluated.metric_data);
                    write_sample(out, name, &labels, value);
                }
            }
        },
    },
    Family {
        name: "pc_autoscaler_target_metric_value",
        help: "Newest demand read for the target: concurrency (for metric concurrency and utilization) or the custom metric's value.",
        kind: "gauge",
        write: |out, name, sample| {
            if let Some((metric, value)) = sample.metric_value {
                let labels = [("metric", metric), ("target", sample.target)];
                write_sample(out, name, &labels, value);
            }
        },
    },
    Family {
        name: "pc_autoscaler_target_schedule_active",
        help: "1 for the schedule rule in force, 0 for the target's other rules.",
        kind: "gauge",
        write: |out, name, sample| {
            for rule in sample.rules {
                let active = sample.active_rule == Some(rule.name.as_str());
                let labels = [("rule", rule.name.as_str()), ("target", sample.target)];
                write_sample(out, name, &labels, u32::from(active));
            }
        },
    },
    Family {
        name: "pc_autoscaler_target_forecast_capacity",
        help: "The capacity the forecast says the next horizon needs (forecast = \"observe\" or \"on\"); absent while the past does not predict the present.",
        kind: "gauge",
        write: single!(|sample| sample.forecast_capacity.map(u64::from)),
    },
    Family {
        name: "pc_autoscaler_target_chosen_scale_in_window_seconds",
        help: "The scale-in window the target's history chose, at equal cost (choose_window = \"on\" uses it, \"observe\" shows it); absent while the configured window is kept.",
        kind: "gauge",
        write: single!(|sample| sample.chosen_window.map(u64::from)),
    },
    Family {
        name: "pc_autoscaler_target_write_blocked",
        help: "1 while the target's decision cannot be written, by reason (refused: Lambda refused the value; failing: writes keep failing).",
        kind: "gauge",
        write: |out, name, sample| {
            for reason in WRITE_BLOCKED_REASONS {
                let labels = [("reason", reason), ("target", sample.target)];
                let value = u32::from(sample.write_blocked == Some(reason));
                write_sample(out, name, &labels, value);
            }
        },
    },
    Family {
        name: "pc_autoscaler_target_handover",
        help: "1 in the state of a target that Application Auto Scaling has a scalable target for: left_to_aas (left alone), taking_over, taken_over (its AAS scaling suspended by pc-autoscaler), handed_back (by migrate --rollback).",
        kind: "gauge",
        write: |out, name, sample| {
            let Some(state) = sample.handover else {
                return;
            };
            for known in HANDOVER_STATES {
                let labels = [("state", known), ("target", sample.target)];
                write_sample(out, name, &labels, u32::from(state == known));
            }
        },
    },
    Family {
        name: "pc_autoscaler_target_contested",
        help: "1 while someone else keeps changing the target's capacity (3 times within an hour): it is raised when its policy needs more, never lowered.",
        kind: "gauge",
        write: single!(|sample| Some(u64::from(sample.contested))),
    },
    Family {
        name: "pc_autoscaler_drift_detected_total",
        help: "Changes of a target's provisioned concurrency that the daemon did not make, found by a drift scan or a read-back.",
        kind: "counter",
        write: single!(|sample| Some(sample.drift)),
    },
    Family {
        name: "pc_autoscaler_scaling_actions_total",
        help: "Accepted capacity changes, by direction (up, down) and trigger (tracking, schedule, target_bounds, caps, idle, forecast, override).",
        kind: "counter",
        write: |out, name, sample| {
            for (direction, counts) in DIRECTIONS.iter().zip(sample.actions) {
                for (trigger, count) in TRIGGERS.iter().zip(counts) {
                    let labels = [
                        ("direction", *direction),
                        ("target", sample.target),
                        ("trigger", *trigger),
                    ];
                    write_sample(out, name, &labels, *count);
                }
            }
        },
    },
];

/// A sample's value, written without the formatting machinery: a scrape at 5,000
/// targets writes a hundred thousand of them.
pub trait SampleValue {
    fn write_to(&self, out: &mut String);
}

impl SampleValue for u64 {
    fn write_to(&self, out: &mut String) {
        out.push_str(itoa::Buffer::new().format(*self));
    }
}

impl SampleValue for u32 {
    fn write_to(&self, out: &mut String) {
        u64::from(*self).write_to(out);
    }
}

impl SampleValue for f64 {
    fn write_to(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

/// One sample line: `name{a="x",b="y"} value`.
pub fn write_sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl SampleValue,
) {
    out.push_str(name);
    out.push('{');
    for (index, (label, text)) in labels.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(label);
        out.push_str("=\"");
        push_escaped(out, text, true);
        out.push('"');
    }
    out.push_str("} ");
    value.write_to(out);
    out.push('\n');
}

/// The text format's escapes: backslash and newline, and in label values the quote.
fn push_escaped(out: &mut String, text: &str, quote: bool) {
    let needs_escape = text
        .bytes()
        .any(|byte| byte == b'\\' || byte == b'\n' || (quote && byte == b'"'));
    if !needs_escape {
        out.push_str(text);
        return;
    }
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rows(Vec<(String, [[u64; TRIGGERS.len()]; 2])>);

    impl TargetRows for Rows {
        fn generation(&self) -> u64 {
            1
        }
        fn len(&self) -> usize {
            self.0.len()
        }
        fn visit(&self, range: Range<usize>, visit: &mut dyn FnMut(&TargetSample<'_>)) {
            for (target, actions) in &self.0[range] {
                visit(&TargetSample {
                    target,
                    evaluated: None,
                    metric_value: None,
                    rules: &[],
                    active_rule: None,
                    forecast_capacity: None,
                    chosen_window: None,
                    write_blocked: Some("failing"),
                    handover: Some("taken_over"),
                    contested: true,
                    drift: 2,
                    actions,
                    overrides: 0b101,
                });
            }
        }
    }

    fn render(rows: &Rows) -> String {
        let mut out = String::new();
        for family in &FAMILIES {
            family.header(&mut out);
            render_rows(family, rows, 0..rows.len(), &mut out);
        }
        out
    }

    #[test]
    fn label_values_are_escaped_and_counters_read_zero_before_they_count() {
        let mut actions = [[0; TRIGGERS.len()]; 2];
        actions[0][1] = 3;
        let text = render(&Rows(vec![("a\"b\\c\nd".into(), actions)]));
        let target = "a\\\"b\\\\c\\nd";
        for line in [
            format!(
                "pc_autoscaler_scaling_actions_total{{direction=\"up\",target=\"{target}\",trigger=\"schedule\"}} 3\n"
            ),
            format!(
                "pc_autoscaler_scaling_actions_total{{direction=\"down\",target=\"{target}\",trigger=\"idle\"}} 0\n"
            ),
            format!(
                "pc_autoscaler_target_write_blocked{{reason=\"failing\",target=\"{target}\"}} 1\n"
            ),
            format!("pc_autoscaler_drift_detected_total{{target=\"{target}\"}} 2\n"),
            format!(
                "pc_autoscaler_target_handover{{state=\"taken_over\",target=\"{target}\"}} 1\n"
            ),
            format!(
                "pc_autoscaler_target_handover{{state=\"left_to_aas\",target=\"{target}\"}} 0\n"
            ),
            format!("pc_autoscaler_target_contested{{target=\"{target}\"}} 1\n"),
            format!("pc_autoscaler_target_override{{kind=\"pin\",target=\"{target}\"}} 1\n"),
            format!("pc_autoscaler_target_override{{kind=\"ceiling\",target=\"{target}\"}} 1\n"),
        ] {
            assert!(text.contains(&line), "{line} missing in:\n{text}");
        }
        // Not evaluated yet: no capacity sample, but the family is announced.
        assert!(!text.contains("pc_autoscaler_target_desired_capacity{"));
        assert!(text.contains("# TYPE pc_autoscaler_target_desired_capacity gauge\n"));
    }

    #[test]
    fn every_family_is_announced_without_targets() {
        let text = render(&Rows(Vec::new()));
        for family in &FAMILIES {
            assert!(text.contains(&format!("# HELP {} ", family.name)), "{text}");
        }
        assert_eq!(text.lines().count(), 2 * FAMILIES.len());
    }
}
