//! The Grafana dashboard (`deploy/grafana/pc-autoscaler.json`): valid JSON that Grafana
//! imports (schema version, `datasource` and `target` variables), every PromQL
//! expression accepted by `promtool check rules`, and every panel's queries answered
//! with at least one series by a real Prometheus scraping a daemon that has acted,
//! with leader election on (moto's DynamoDB) so the leader panels have data too.

#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::moto::Moto;
use common::prometheus::Prometheus;
use common::{Daemon, aws_config, daemon_settings, free_port, text, wait_for};

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(common::repo_file("deploy/grafana/pc-autoscaler.json"))
        .expect("the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every panel's title and queries, with Grafana's variables as Prometheus sees
/// them: all targets, and a one-minute rate window.
fn queries(dashboard: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|panel| panel["type"] != "row")
        .map(|panel| {
            let exprs = panel["targets"]
                .as_array()
                .expect("each panel has queries")
                .iter()
                .map(|target| {
                    target["expr"]
                        .as_str()
                        .expect("a PromQL expression")
                        .replace("$target", ".*")
                        .replace("$__rate_interval", "1m")
                })
                .collect();
            (panel["title"].as_str().expect("a title").to_owned(), exprs)
        })
        .collect()
}

#[test]
fn the_dashboard_imports_and_every_expression_passes_promtool() {
    let dashboard = dashboard();
    assert!(
        dashboard["schemaVersion"]
            .as_u64()
            .is_some_and(|version| version >= 36)
    );
    assert_eq!(dashboard["uid"], "pc-autoscaler");
    let variables: Vec<(&str, &str)> = dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|variable| {
            (
                variable["name"].as_str().expect("a name"),
                variable["type"].as_str().expect("a type"),
            )
        })
        .collect();
    assert!(
        variables.contains(&("datasource", "datasource")),
        "{variables:?}"
    );
    assert!(variables.contains(&("target", "query")), "{variables:?}");
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{}",
                panel["title"]
            );
        }
    }
    let ids: std::collections::BTreeSet<u64> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|panel| panel["id"].as_u64().expect("an id"))
        .collect();
    assert_eq!(
        ids.len(),
        dashboard["panels"].as_array().map_or(0, Vec::len),
        "unique ids"
    );

    // Each expression as a recording rule: promtool parses and checks it.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (index, expr) in queries(&dashboard)
        .iter()
        .flat_map(|(_, exprs)| exprs)
        .enumerate()
    {
        rules.push_str(&format!(
            "      - record: dashboard:query_{index}\n        expr: '{}'\n",
            expr.replace('\'', "''")
        ));
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("dashboard-rules.yml");
    std::fs::write(&path, &rules).expect("write the rules");
    let output = std::process::Command::new("promtool")
        .args(["check", "rules", path.to_str().expect("utf-8")])
        .output()
        .expect("promtool is installed (scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "{}{}\n{rules}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[test]
fn every_panel_has_data_from_a_real_prometheus_once_the_daemon_has_acted() {
    let endpoint = common::endpoint_wanting_100();
    let moto = Moto::start();
    let port = free_port();
    let settings = format!(
        "{}\n[leader]\ntable = \"leases\"\ncreate_table = true\nendpoint_url = \"{}\"\nlease = \"3s\"\nrenew_every = \"1s\"\n",
        daemon_settings(port, "1s"),
        moto.url
    );
    let target = format!(
        "{}[[target.schedule]]\nname = \"night\"\ncron = \"0 22 * * *\"\nmin = 1\n",
        common::tracked_target("f", "live")
    );
    let (dir, config) = aws_config(&endpoint.url, &settings, &target);
    let address = format!("127.0.0.1:{port}");
    let mut daemon = Daemon::start(&config, &address, &[]);
    daemon.wait_ready();
    daemon.wait_for_put(&endpoint, 100, Duration::from_secs(20));
    // A reload, so that its panel has something to show besides zeros; an override,
    // so that its panel has one.
    daemon.signal("HUP");
    let set = common::binary_for_aws()
        .args(["override", "set", "f:live", "floor", "1", "--for", "1h"])
        .args([
            "--reason",
            "dashboard",
            "--config",
            config.to_str().expect("utf-8"),
        ])
        .output()
        .expect("the binary runs");
    assert!(set.status.success(), "{}", text(&set.stderr));
    let prometheus = Prometheus::start(dir.path(), &[&address]);
    let panels = queries(&dashboard());
    let mut empty: Vec<(String, String)> = Vec::new();
    wait_for(Duration::from_secs(60), || {
        empty = panels
            .iter()
            .flat_map(|(title, exprs)| exprs.iter().map(move |expr| (title.clone(), expr.clone())))
            .filter(|(_, expr)| prometheus.series(expr).unwrap_or(0) == 0)
            .collect();
        empty.is_empty()
    });
    assert!(empty.is_empty(), "queries without a series: {empty:#?}");
}
