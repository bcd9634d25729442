//! `pc-autoscaler simulate` end to end: the real binary replays the shared traces and
//! the synthetic default, and the report shows pc-autoscaler ahead of Application
//! Auto Scaling at equal cost.

mod common;

use common::{run, shared_trace, text, write_config};

const TARGET_07: &str = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 100000\n\
                         tracking = { metric = \"concurrency\", target = 0.7 }\n";

fn simulate(trace: Option<&str>) -> serde_json::Value {
    let mut args = Vec::new();
    if let Some(name) = trace {
        let path = shared_trace(name);
        assert!(
            path.exists(),
            "{} is missing: ../shared/traces must sit beside the project",
            path.display()
        );
        args.extend([
            "--trace".to_owned(),
            path.display().to_string(),
            "--mean-concurrency".to_owned(),
            "50".to_owned(),
        ]);
    }
    simulate_with(args)
}

/// `simulate` of `TARGET_07` with `extra` arguments: its report.json, checked for the
/// table's policies and the chart.
fn simulate_with(extra: Vec<String>) -> serde_json::Value {
    let (dir, config) = write_config("sim.toml", TARGET_07);
    let out = dir.path().join("out");
    let mut args = vec![
        "simulate".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
        "--out".to_owned(),
        out.display().to_string(),
    ];
    args.extend(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    for name in [
        "pc-autoscaler",
        "pc-autoscaler-reactive",
        "aas-target-tracking",
        "aas-equal-cost",
        "oracle",
    ] {
        assert!(stdout.contains(name), "{stdout}");
    }
    let chart = std::fs::read_to_string(out.join("chart.svg")).expect("chart.svg is written");
    assert!(
        chart.starts_with("<svg") && chart.contains("worst hour"),
        "chart.svg looks wrong"
    );
    let json = std::fs::read_to_string(out.join("report.json")).expect("report.json is written");
    serde_json::from_str(&json).expect("report.json is JSON")
}

fn policy<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["policies"]
        .as_array()
        .expect("policies is a list")
        .iter()
        .find(|policy| policy["name"] == name)
        .unwrap_or_else(|| panic!("no policy {name} in {report}"))
}

fn number(value: &serde_json::Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

/// The bar: pc-autoscaler as configured (the forecast and the window choice on,
/// the defaults) spills at most half of what Application Auto Scaling spills at the
/// same cost (or under 0.1 % of demand), and the oracle least.
fn assert_beats_baseline(report: &serde_json::Value) {
    let ours = policy(report, "pc-autoscaler");
    let equal = policy(report, "aas-equal-cost");
    let oracle = policy(report, "oracle");
    let ours_spill = number(ours, "spillover_unit_hours");
    let equal_spill = number(equal, "spillover_unit_hours");
    assert!(
        ours_spill <= 0.5 * equal_spill || number(ours, "spillover_pct") < 0.1,
        "pc-autoscaler spills {ours_spill} unit-hours, aas-equal-cost {equal_spill}"
    );
    let cost_gap =
        (number(equal, "provisioned_unit_hours") / number(ours, "provisioned_unit_hours") - 1.0)
            .abs();
    assert!(cost_gap <= 0.01, "equal cost missed by {cost_gap}");
    for other in report["policies"].as_array().expect("a list") {
        assert!(number(oracle, "spillover_unit_hours") <= number(other, "spillover_unit_hours"));
    }
    assert_eq!(
        number(ours, "conflicts"),
        0.0,
        "the policy waits for allocations instead of colliding"
    );
}

#[test]
fn nyc_taxi_at_mean_concurrency_50() {
    let report = simulate(Some("nyc_taxi.csv"));
    assert_eq!(report["minutes"], 309_571);
    assert_beats_baseline(&report);
}

#[test]
fn twitter_bursts_at_mean_concurrency_50() {
    let report = simulate(Some("twitter_volume_aapl.csv"));
    assert_beats_baseline(&report);
    // Bursts do not repeat, so no period forecasts them, but the history still chooses
    // a shorter window at a lower target (measured 0.384 with it, 0.469 reactive).
    let reactive = number(
        policy(&report, "pc-autoscaler-reactive"),
        "spillover_unit_hours",
    ) / number(reactive_baseline(&report), "spillover_unit_hours");
    let ratio = forecast_ratio(&report);
    assert!(ratio <= 0.95 * reactive, "{ratio} against {reactive}");
}

/// Application Auto Scaling at the reactive policy's cost.
fn reactive_baseline(report: &serde_json::Value) -> &serde_json::Value {
    // Present only when the reactive policy's cost differs from the config's.
    report["policies"]
        .as_array()
        .expect("policies is a list")
        .iter()
        .find(|policy| policy["name"] == "aas-equal-cost-reactive")
        .unwrap_or_else(|| policy(report, "aas-equal-cost"))
}

/// The config's spillover (the forecast and the window choice on) ÷ Application Auto
/// Scaling's at its cost.
fn forecast_ratio(report: &serde_json::Value) -> f64 {
    number(policy(report, "pc-autoscaler"), "spillover_unit_hours")
        / number(policy(report, "aas-equal-cost"), "spillover_unit_hours")
}

#[test]
fn elb_requests_at_mean_concurrency_50() {
    let report = simulate(Some("elb_request_count.csv"));
    assert_beats_baseline(&report);
    // The bar, met by the window the history chooses: a noisy load is held
    // longer at a higher target for the same cost (measured 0.196; reactive 0.281).
    let ratio = forecast_ratio(&report);
    assert!(ratio <= 0.25, "{ratio}");
}

/// The real serverless functions of `../shared/traces/azure-small` (one day each, at
/// their own scale of 0.5 to 2 mean concurrency): summed over all of them, each policy
/// spills well under what Application Auto Scaling spills at its cost, and the forecast
/// never adds spillover to a function, nor much cost to the whole.
#[test]
fn real_functions_at_their_own_small_scale() {
    let folder = shared_trace("azure-small");
    let mut traces: Vec<_> = std::fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("{}: {error}", folder.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    traces.sort();
    assert!(traces.len() >= 40, "{} traces", traces.len());
    let (mut reactive, mut forecast) = ([0.0; 3], [0.0; 3]);
    for trace in &traces {
        let report = simulate_with(vec![
            "--trace".to_owned(),
            trace.display().to_string(),
            "--trace-kind".to_owned(),
            "concurrency".to_owned(),
        ]);
        let ours = policy(&report, "pc-autoscaler-reactive");
        let with_forecast = policy(&report, "pc-autoscaler");
        let equal = reactive_baseline(&report);
        let equal_to_forecast = policy(&report, "aas-equal-cost");
        let (spill, forecast_spill) = (
            number(ours, "spillover_unit_hours"),
            number(with_forecast, "spillover_unit_hours"),
        );
        assert!(
            forecast_spill <= spill * 1.02 + 0.01,
            "{}: the forecast spills {forecast_spill} unit-hours, the reactive policy {spill}",
            trace.display()
        );
        for (sums, row, baseline) in [
            (&mut reactive, ours, equal),
            (&mut forecast, with_forecast, equal_to_forecast),
        ] {
            sums[0] += number(row, "spillover_unit_hours");
            sums[1] += number(row, "provisioned_unit_hours");
            sums[2] += number(baseline, "spillover_unit_hours");
        }
    }
    // Measured: 0.54 reactive, 0.48 with the forecast, at +3.5 % cost.
    let ratio = |sums: [f64; 3]| sums[0] / sums[2];
    assert!(ratio(reactive) <= 0.6, "{reactive:?}");
    assert!(ratio(forecast) <= 0.55, "{forecast:?}");
    assert!(
        forecast[1] <= 1.05 * reactive[1],
        "{reactive:?} {forecast:?}"
    );
}

#[test]
fn the_synthetic_week_runs_with_nothing_but_a_config() {
    let report = simulate(None);
    assert_eq!(report["trace"], "synthetic-week");
    assert_eq!(report["minutes"], 7 * 24 * 60);
    assert_beats_baseline(&report);
    // Each pc-autoscaler row says what it ran: the config as written (the defaults),
    // and the reactive policy beside it.
    assert_eq!(
        policy(&report, "pc-autoscaler")["runs"],
        serde_json::json!({ "forecast": "on", "window": "chosen" })
    );
    assert_eq!(
        policy(&report, "pc-autoscaler-reactive")["runs"],
        serde_json::json!({ "forecast": "off", "window": "fixed" })
    );
    assert!(policy(&report, "aas-equal-cost").get("runs").is_none());
}

#[test]
fn the_example_config_simulates_its_first_target() {
    let config = common::repo_file("config/example.toml");
    let output = run(&["simulate", "--config", config.to_str().expect("utf-8 path")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("trace synthetic-week: 10080 minutes"));
}

#[test]
fn an_unknown_target_or_trace_is_a_clear_error() {
    let (_dir, config) = write_config("sim.toml", TARGET_07);
    let config = config.display().to_string();
    let output = run(&["simulate", "--config", &config, "--target", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("no target named `nope` in the config (targets: f:live)")
    );
    let output = run(&[
        "simulate",
        "--config",
        &config,
        "--trace",
        "/nonexistent.csv",
    ]);
    assert!(text(&output.stderr).contains("cannot read trace /nonexistent.csv"));
}

#[test]
fn every_bad_flag_or_trace_is_a_clear_error_with_exit_2() {
    let (dir, config) = write_config("sim.toml", TARGET_07);
    let config = config.display().to_string();
    let millennia = dir.path().join("millennia.csv");
    std::fs::write(
        &millennia,
        "timestamp,value\n1000-01-01 00:00:00,1\n9999-12-31 00:00:00,2\n",
    )
    .expect("write trace");
    let millennia = millennia.display().to_string();
    let cases: &[(&[&str], &str)] = &[
        (&["--start", "+262142-12-31T00:00:00Z"], "--start"),
        (&["--duration-ms", "NaN"], "--duration-ms NaN"),
        (&["--duration-ms=-1"], "--duration-ms -1"),
        (&["--mean-concurrency=-5"], "--mean-concurrency -5"),
        (&["--mean-concurrency", "inf"], "--mean-concurrency inf"),
        (&["--memory-mb", "NaN"], "--memory-mb NaN"),
        (&["--metric-lag", "100000"], "--metric-lag 100000"),
        (&["--trace", &millennia], "a replay covers at most 732 days"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["simulate", "--config", &config];
        args.extend_from_slice(flags);
        let output = run(&args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}

#[test]
fn a_metric_lag_of_zero_lets_every_policy_act() {
    let (_dir, config) = write_config("sim.toml", TARGET_07);
    let out = tempfile::tempdir().expect("temp dir");
    let output = run(&[
        "simulate",
        "--config",
        &config.display().to_string(),
        "--metric-lag",
        "0",
        "--out",
        &out.path().display().to_string(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json = std::fs::read_to_string(out.path().join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    for name in ["pc-autoscaler", "aas-target-tracking", "aas-equal-cost"] {
        assert!(
            number(policy(&report, name), "puts") > 0.0,
            "{name} never acted with --metric-lag 0"
        );
    }
}

#[test]
fn sweep_draws_the_frontier_of_every_policy_with_the_oracle_point() {
    let (dir, config) = write_config("sim.toml", TARGET_07);
    let out = dir.path().join("out");
    let output = run(&[
        "simulate",
        "--config",
        config.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--sweep",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let svg = std::fs::read_to_string(out.join("frontier.svg")).expect("frontier.svg is written");
    assert!(svg.starts_with("<svg") && svg.contains("spillover against cost"));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("JSON");
    let curves = report["frontier"]["curves"].as_array().expect("curves");
    let names: Vec<&str> = curves
        .iter()
        .map(|curve| curve["policy"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        names,
        [
            "pc-autoscaler",
            // TARGET_07 keeps the defaults, so the row as written forecasts.
            "pc-autoscaler-reactive",
            "aas-target-tracking"
        ]
    );
    for curve in curves {
        let points = curve["points"].as_array().expect("points");
        assert_eq!(points.len(), 8);
        // A higher target value never costs more.
        let costs: Vec<f64> = points
            .iter()
            .map(|point| number(point, "cost_usd"))
            .collect();
        assert!(
            costs.windows(2).all(|pair| pair[1] <= pair[0] * 1.01),
            "{costs:?}"
        );
    }
    assert_eq!(number(&report["frontier"]["oracle"], "spillover_pct"), 0.0);
}

#[test]
fn split_replays_each_cause_at_the_cost_of_the_config_as_written() {
    let report = simulate_with(vec!["--split".to_owned()]);
    let split = &report["split"];
    let steps = split["steps"].as_array().expect("steps is a list");
    let causes: Vec<&str> = steps
        .iter()
        .map(|step| step["cause"].as_str().expect("a cause"))
        .collect();
    assert_eq!(
        causes,
        [
            "as written",
            "a rise waits for the allocation in flight",
            "quiet reads",
            "cooldowns",
            "the forecast",
            "the scale-in window"
        ]
    );
    let goal = number(split, "provisioned_unit_hours");
    let ours = policy(&report, "pc-autoscaler");
    assert_eq!(goal, number(ours, "provisioned_unit_hours"));
    assert_eq!(
        number(&steps[0], "spillover_unit_hours"),
        number(ours, "spillover_unit_hours")
    );
    // Each step is replayed at the same cost, or the report says it could not be.
    let unmatched = split["unmatched"].to_string();
    for step in steps {
        let off = (number(step, "provisioned_unit_hours") / goal - 1.0).abs();
        let cause = step["cause"].as_str().expect("a cause");
        assert!(off <= 0.01 || unmatched.contains(cause), "{cause}: {off}");
    }
    for bound in [&split["bound"], &split["refused_bound"]] {
        assert!(number(bound, "provisioned_unit_hours") <= goal * 1.01);
        assert!(number(bound, "target_value") <= 1.0);
        assert!(
            number(bound, "spillover_unit_hours")
                >= number(policy(&report, "oracle"), "spillover_unit_hours")
        );
    }
}

#[test]
fn split_of_a_custom_metric_is_a_clear_error() {
    let (_dir, config) = write_config(
        "sim.toml",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 0\nmax = 50\n\
         [target.tracking]\nmetric = \"custom\"\ntarget = 10\n\
         custom = { namespace = \"AWS/SQS\", name = \"ApproximateNumberOfMessagesVisible\", dimensions = { QueueName = \"q\" }, stat = \"Maximum\" }\n",
    );
    let output = run(&[
        "simulate",
        "--config",
        &config.display().to_string(),
        "--split",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("--split compares with a bound on concurrency"),
        "{}",
        text(&output.stderr)
    );
}
