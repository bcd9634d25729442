//! The book's metric reference (`docs/src/reference/metrics.md`), rendered from the
//! families themselves: the registry's, the shard totals' and the per-target ones,
//! each with the `HELP`, `TYPE` and label names a scrape shows. A test keeps the page
//! in step. What it must not do: describe a family by hand.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::per_target::{FAMILIES, TargetRows, TargetSample, render_rows};
use super::{Decided, Metrics, ShardTotals, render_shard_totals};
use crate::policy::{MetricData, TRIGGERS};

/// One target whose every optional value is there, so each family shows its labels.
struct Example;

impl TargetRows for Example {
    fn generation(&self) -> u64 {
        1
    }
    fn len(&self) -> usize {
        1
    }
    fn visit(&self, _: std::ops::Range<usize>, visit: &mut dyn FnMut(&TargetSample<'_>)) {
        let rules = [];
        visit(&TargetSample {
            target: "t",
            evaluated: Some(Decided {
                desired: 1,
                requested: 1,
                allocated: 1,
                min: 0,
                max: 1,
                allocation_failed: false,
                metric_data: MetricData::Fresh,
            }),
            metric_value: Some(("concurrency", 1.0)),
            rules: &rules,
            active_rule: None,
            forecast_capacity: Some(1),
            chosen_window: Some(60),
            write_blocked: None,
            handover: Some("taken_over"),
            contested: false,
            drift: 0,
            actions: &[[0; TRIGGERS.len()]; 2],
            overrides: 0,
        });
    }
}

/// Every family a daemon with `[leader]` (spread or not) and a fleet exports, as a
/// Markdown table.
pub fn markdown() -> String {
    let metrics = Metrics::new();
    let _ = metrics.register_leader("copy-a");
    let _ = metrics.register_spread("copy-a", &crate::config::Config::without_targets());
    let shard = ["base", "us-east-1"];
    metrics.shards.ready.with_label_values(&shard).set(1);
    metrics
        .shards
        .cloudwatch_metrics
        .with_label_values(&shard)
        .inc();
    metrics.shards.discovered.with_label_values(&shard).set(0);
    metrics.shards.skipped.with_label_values(&shard).set(0);
    metrics
        .shards
        .discoveries
        .with_label_values(&["base", "us-east-1", "success"])
        .inc_by(0);
    let mut text = String::new();
    metrics.render_registry(&mut text);
    render_shard_totals(ShardTotals::default(), &mut text);
    for family in &FAMILIES {
        family.header(&mut text);
        render_rows(family, &Example, 0..1, &mut text);
    }
    table(&text)
}

/// The families of a scrape's text: name → (type, label names, help).
fn table(text: &str) -> String {
    let mut families: BTreeMap<String, (String, Vec<String>, String)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            families.entry(name.to_owned()).or_default().2 = help.replace("\\\\", "\\");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            families.entry(name.to_owned()).or_default().0 = kind.to_owned();
        } else if let Some((series, _)) = line.split_once('{') {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| series.strip_suffix(suffix))
                .filter(|base| families.contains_key(*base))
                .unwrap_or(series);
            let Some((_, labels, _)) = families.get_mut(family) else {
                continue;
            };
            let names = line[series.len() + 1..]
                .split(',')
                .filter_map(|pair| pair.split_once('=').map(|(name, _)| name.trim_matches('}')))
                .filter(|name| *name != "le");
            for name in names {
                if !labels.iter().any(|known| known == name) {
                    labels.push(name.to_owned());
                }
            }
        }
    }
    let mut out = String::from("| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n");
    for (name, (kind, labels, help)) in families {
        let labels = if labels.is_empty() {
            "-".to_owned()
        } else {
            labels
                .iter()
                .map(|label| format!("`{label}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| `{name}` | {kind} | {labels} | {} |",
            help.replace('|', "\\|")
        );
    }
    out
}
