//! The series that exist once per target, kept as one small row per target and written
//! straight into the text format at a scrape.
//!
//! Why not the `prometheus` crate's vectors: a labelled child there costs about 660
//! bytes (label pairs as protobuf strings, a hash entry, an `Arc`), and a scrape copies
//! every series once more into protobuf before encoding. At 5,000 targets that was about
//! 75,000 children: some 47 MiB held for ever and 25 MiB more at every scrape, most of
//! the daemon's memory. A row here is a few dozen bytes.
//!
//! What it must not do: hold anything but the values it exports, or take its lock for
//! longer than one row's update or one scrape's writing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::config::ForecastMode;
use crate::policy::{MetricData, TRIGGERS};
use crate::runtime::actuator::WriteBlocked;

/// Directions of a scaling action, the `direction` label.
const DIRECTIONS: [&str; 2] = ["up", "down"];

/// What the last evaluation of a target saw and decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluated {
    pub desired: u32,
    pub requested: u32,
    pub allocated: u32,
    pub min: u32,
    pub max: u32,
    pub allocation_failed: bool,
    pub metric_data: MetricData,
}

#[derive(Debug, Default)]
struct Row {
    evaluated: Option<Evaluated>,
    /// The tracking metric's label and its newest value.
    metric_value: Option<(&'static str, f64)>,
    /// Each schedule rule of the target and whether it is in force.
    rules: Vec<(String, bool)>,
    forecast_capacity: Option<u32>,
    /// The scale-in window the history chose, in seconds (`policy::tuning`).
    chosen_window: Option<u32>,
    /// `Some` once registered: `Some(None)` exports every reason at 0.
    write_blocked: Option<Option<WriteBlocked>>,
    drift_detected: Option<u64>,
    /// By direction and trigger; a combination is exported from its first action.
    scaling_actions: [[u64; TRIGGERS.len()]; DIRECTIONS.len()],
}

/// Every target's row, by target name (so a scrape lists targets in order).
#[derive(Debug, Default)]
pub struct TargetSeries {
    rows: Mutex<BTreeMap<String, Row>>,
}

impl TargetSeries {
    fn update<R>(&self, target: &str, change: impl FnOnce(&mut Row) -> R) -> R {
        let mut rows = self.rows.lock().expect("no update panics while holding it");
        match rows.get_mut(target) {
            Some(row) => change(row),
            None => change(rows.entry(target.to_owned()).or_default()),
        }
    }

    /// Exports the series alerts watch at 0 (write blocks, drift) and each rule's flag;
    /// values already there stay.
    pub fn register(&self, target: &str, rules: &[&str]) {
        self.update(target, |row| {
            row.write_blocked.get_or_insert(None);
            row.drift_detected.get_or_insert(0);
            for rule in rules {
                if !row.rules.iter().any(|(name, _)| name == rule) {
                    row.rules.push(((*rule).to_owned(), false));
                }
            }
        });
    }

    pub fn evaluated(
        &self,
        target: &str,
        evaluated: Evaluated,
        metric_value: Option<(&'static str, f64)>,
        active_rule: Option<&str>,
    ) {
        self.update(target, |row| {
            row.evaluated = Some(evaluated);
            if metric_value.is_some() {
                row.metric_value = metric_value;
            }
            for (name, active) in &mut row.rules {
                *active = active_rule == Some(name.as_str());
            }
        });
    }

    /// `None`: the forecast has nothing to say (the series goes).
    pub fn set_forecast(&self, target: &str, capacity: Option<u32>) {
        self.update(target, |row| row.forecast_capacity = capacity);
    }

    /// `None`: the configured window is kept (the series goes).
    pub fn set_chosen_window(&self, target: &str, seconds: Option<u32>) {
        self.update(target, |row| row.chosen_window = seconds);
    }

    pub fn set_write_blocked(&self, target: &str, blocked: Option<WriteBlocked>) {
        self.update(target, |row| row.write_blocked = Some(blocked));
    }

    pub fn count_drift(&self, target: &str) {
        self.update(target, |row| {
            *row.drift_detected.get_or_insert(0) += 1;
        });
    }

    pub fn drift_count(&self, target: &str) -> u64 {
        let rows = self.rows.lock().expect("no update panics while holding it");
        rows.get(target)
            .and_then(|row| row.drift_detected)
            .unwrap_or(0)
    }

    /// One accepted change; `trigger` is one of [`TRIGGERS`], `up` its direction.
    pub fn count_scaling_action(&self, target: &str, up: bool, trigger: &str) {
        let direction = usize::from(!up);
        let trigger = TRIGGERS
            .iter()
            .position(|known| *known == trigger)
            .expect("a trigger is one of TRIGGERS");
        self.update(target, |row| row.scaling_actions[direction][trigger] += 1);
    }

    /// After a reload that keeps the target: drops the rules it no longer has, the
    /// metric value if the metric changed, the forecast and the chosen window if it no
    /// longer computes them (`learns`: its `forecast` and `choose_window` modes).
    pub fn keep(
        &self,
        target: &str,
        rules: &[&str],
        metric: Option<&str>,
        learns: Option<(ForecastMode, ForecastMode)>,
    ) {
        self.update(target, |row| {
            row.rules.retain(|(name, _)| rules.contains(&name.as_str()));
            if row
                .metric_value
                .is_some_and(|(label, _)| Some(label) != metric)
            {
                row.metric_value = None;
            }
            let (forecast, choose_window) = learns.unwrap_or_default();
            if forecast == ForecastMode::Off {
                row.forecast_capacity = None;
            }
            if choose_window == ForecastMode::Off {
                row.chosen_window = None;
            }
        });
    }

    pub fn forget(&self, target: &str) {
        self.rows
            .lock()
            .expect("no update panics while holding it")
            .remove(target);
    }

    /// Appends every family in the text exposition format. A family with no series is
    /// left out, as the `prometheus` crate does.
    pub fn render(&self, out: &mut String) {
        let rows = self.rows.lock().expect("no update panics while holding it");
        let families: [Family<'_>; 13] = [
            Family {
                name: "pc_autoscaler_target_desired_capacity",
                help: "Provisioned concurrency the policy wants for the target.",
                kind: "gauge",
                write: &evaluated(|evaluated| evaluated.desired.into()),
            },
            Family {
                name: "pc_autoscaler_target_requested_capacity",
                help: "Provisioned concurrency requested from Lambda.",
                kind: "gauge",
                write: &evaluated(|evaluated| evaluated.requested.into()),
            },
            Family {
                name: "pc_autoscaler_target_allocated_capacity",
                help: "Provisioned concurrency allocated and usable.",
                kind: "gauge",
                write: &evaluated(|evaluated| evaluated.allocated.into()),
            },
            Family {
                name: "pc_autoscaler_target_allocation_failed",
                help: "1 while the target's provisioned concurrency config is FAILED.",
                kind: "gauge",
                write: &evaluated(|evaluated| evaluated.allocation_failed.into()),
            },
            Family {
                name: "pc_autoscaler_target_bound",
                help: "Capacity bound in force (bound is min or max).",
                kind: "gauge",
                write: &|out, name, target, row| {
                    if let Some(evaluated) = &row.evaluated {
                        sample(
                            out,
                            name,
                            &[("bound", "min"), ("target", target)],
                            evaluated.min,
                        );
                        sample(
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
                write: &|out, name, target, row| {
                    if let Some(evaluated) = &row.evaluated {
                        for state in MetricData::ALL {
                            let labels = [("state", state.label()), ("target", target)];
                            sample(
                                out,
                                name,
                                &labels,
                                u32::from(state == evaluated.metric_data),
                            );
                        }
                    }
                },
            },
            Family {
                name: "pc_autoscaler_target_metric_value",
                help: "Newest demand read for the target: concurrency (for metric concurrency and utilization) or the custom metric's value.",
                kind: "gauge",
                write: &|out, name, target, row| {
                    if let Some((metric, value)) = row.metric_value {
                        sample(out, name, &[("metric", metric), ("target", target)], value);
                    }
                },
            },
            Family {
                name: "pc_autoscaler_target_schedule_active",
                help: "1 for the schedule rule in force, 0 for the target's other rules.",
                kind: "gauge",
                write: &|out, name, target, row| {
                    for (rule, active) in &row.rules {
                        sample(
                            out,
                            name,
                            &[("rule", rule), ("target", target)],
                            u32::from(*active),
                        );
                    }
                },
            },
            Family {
                name: "pc_autoscaler_target_forecast_capacity",
                help: "The capacity the forecast says the next horizon needs (forecast = \"observe\" or \"on\"); absent while the past does not predict the present.",
                kind: "gauge",
                write: &single(|row| row.forecast_capacity.map(u64::from)),
            },
            Family {
                name: "pc_autoscaler_target_chosen_scale_in_window_seconds",
                help: "The scale-in window the target's history chose, at equal cost (choose_window = \"on\" uses it, \"observe\" shows it); absent while the configured window is kept.",
                kind: "gauge",
                write: &single(|row| row.chosen_window.map(u64::from)),
            },
            Family {
                name: "pc_autoscaler_target_write_blocked",
                help: "1 while the target's decision cannot be written, by reason (refused: Lambda refused the value; failing: writes keep failing).",
                kind: "gauge",
                write: &|out, name, target, row| {
                    if let Some(blocked) = row.write_blocked {
                        for reason in WriteBlocked::ALL {
                            let labels = [("reason", reason.label()), ("target", target)];
                            sample(out, name, &labels, u32::from(blocked == Some(reason)));
                        }
                    }
                },
            },
            Family {
                name: "pc_autoscaler_drift_detected_total",
                help: "Changes of a target's provisioned concurrency that the daemon did not make, found by a drift scan.",
                kind: "counter",
                write: &single(|row| row.drift_detected),
            },
            Family {
                name: "pc_autoscaler_scaling_actions_total",
                help: "Accepted capacity changes, by direction (up, down) and trigger (tracking, schedule, target_bounds, caps, idle, forecast).",
                kind: "counter",
                write: &|out, name, target, row| {
                    for (direction, counts) in DIRECTIONS.iter().zip(&row.scaling_actions) {
                        for (trigger, count) in TRIGGERS.iter().zip(counts) {
                            if *count > 0 {
                                let labels = [
                                    ("direction", *direction),
                                    ("target", target),
                                    ("trigger", *trigger),
                                ];
                                sample(out, name, &labels, *count);
                            }
                        }
                    }
                },
            },
        ];
        for family in &families {
            let start = out.len();
            let _ = write!(
                out,
                "# HELP {} {}\n# TYPE {} {}\n",
                family.name,
                escape(family.help, false),
                family.name,
                family.kind
            );
            let header = out.len();
            for (target, row) in rows.iter() {
                (family.write)(out, family.name, target, row);
            }
            if out.len() == header {
                out.truncate(start);
            }
        }
    }
}

/// Writes one target's samples of a family: output, family name, target, its row.
type WriteSeries<'a> = &'a dyn Fn(&mut String, &str, &str, &Row);

struct Family<'a> {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    write: WriteSeries<'a>,
}

/// A family with one sample per target, labelled by the target alone, where `pick`
/// finds a value in the target's row.
fn single(pick: impl Fn(&Row) -> Option<u64>) -> impl Fn(&mut String, &str, &str, &Row) {
    move |out, name, target, row| {
        if let Some(value) = pick(row) {
            sample(out, name, &[("target", target)], value);
        }
    }
}

/// [`single`] of a value of the last evaluation.
fn evaluated(pick: fn(&Evaluated) -> u64) -> impl Fn(&mut String, &str, &str, &Row) {
    single(move |row| row.evaluated.as_ref().map(pick))
}

/// One sample line: `name{a="x",b="y"} value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    out.push('{');
    for (index, (label, value)) in labels.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let _ = write!(out, "{label}=\"{}\"", escape(value, true));
    }
    let _ = writeln!(out, "}} {value}");
}

/// The text format's escapes: backslash and newline, and in label values the quote.
fn escape(text: &str, quote: bool) -> std::borrow::Cow<'_, str> {
    let needs_escape = text.contains(['\\', '\n']) || (quote && text.contains('"'));
    if !needs_escape {
        return text.into();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' if quote => escaped.push_str("\\\""),
            other => escaped.push(other),
        }
    }
    escaped.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_empty_families_left_out() {
        let series = TargetSeries::default();
        series.register("a\"b\\c", &["rule\nx"]);
        let mut text = String::new();
        series.render(&mut text);
        assert!(
            text.contains(
                "pc_autoscaler_target_schedule_active{rule=\"rule\\nx\",target=\"a\\\"b\\\\c\"} 0\n"
            ),
            "{text}"
        );
        // Not evaluated yet: no capacity family at all, not even its help.
        assert!(!text.contains("desired_capacity"), "{text}");
        assert!(text.contains("# TYPE pc_autoscaler_drift_detected_total counter\n"));
        series.forget("a\"b\\c");
        let mut text = String::new();
        series.render(&mut text);
        assert!(text.is_empty(), "{text}");
    }

    #[test]
    fn a_chosen_window_is_shown_until_the_target_stops_choosing() {
        let series = TargetSeries::default();
        series.set_chosen_window("t", Some(2_700));
        let rendered = || {
            let mut text = String::new();
            series.render(&mut text);
            text
        };
        let text = rendered();
        assert!(
            text.contains(
                "pc_autoscaler_target_chosen_scale_in_window_seconds{target=\"t\"} 2700\n"
            ),
            "{text}"
        );
        series.keep("t", &[], None, Some((ForecastMode::On, ForecastMode::Off)));
        assert!(!rendered().contains("chosen_scale_in_window"));
    }
}
