//! `audit` over the wire against a made-up account on the local endpoint: 50
//! functions, configs on versions and aliases, 14 days of minute metrics, one of each
//! flagged case; the dollars checked to the cent by hand, the starter config through
//! `check`, the read rate respected, every call in the audit policy.

#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::aws_endpoint::{Endpoint, World};
use common::text;

const DAYS: i64 = 14;
const MINUTES: usize = (DAYS * 24 * 60) as usize;
const READ_RATE: f64 = 5.0;

/// 14 days of the four series, ending now: steady `concurrency` against `requested`.
fn history(
    world: &mut World,
    (function, qualifier): (&str, &str),
    concurrency: f64,
    requested: f64,
) {
    let start = chrono::Utc::now().timestamp() / 60 * 60 - 60 * MINUTES as i64;
    let key = (function, qualifier);
    let minutes = || std::iter::repeat_n((), MINUTES);
    world.set_series(
        "ConcurrentExecutions",
        key,
        start,
        minutes().map(|()| concurrency),
    );
    let utilization = (concurrency / requested).min(1.0);
    world.set_series(
        "ProvisionedConcurrencyUtilization",
        key,
        start,
        minutes().map(|()| utilization),
    );
    world.set_series(
        "ProvisionedConcurrencyInvocations",
        key,
        start,
        minutes().map(|()| concurrency * 60.0),
    );
    world.set_series(
        "ProvisionedConcurrencySpilloverInvocations",
        key,
        start,
        minutes().map(|()| 0.0),
    );
}

fn account() -> Endpoint {
    let endpoint = Endpoint::start();
    let mut world = endpoint.world();
    world.shared_limit = Some(15);
    for index in 0..50 {
        let function = world.function(&format!("fn{index:02}"));
        function.memory_mb = Some(1024);
        function.aliases.insert("live".into(), false);
    }
    // Healthy: 7 of 10 used, 1 GB x86: 10 × 1 × 2,628,000 s × $0.0000041667 = $109.50.
    world.set_config("fn00", "live", 10);
    history(&mut world, ("fn00", "live"), 7.0, 10.0);
    // A version no alias routes to (live routes to 3), unused.
    world.set_config("fn01", "1", 5);
    // A weighted alias.
    world.function("fn02").aliases.insert("live".into(), true);
    world.set_config("fn02", "live", 3);
    history(&mut world, ("fn02", "live"), 2.0, 3.0);
    // FAILED.
    world.set_failed("fn03", "live", 4, "FUNCTION_ERROR_INIT_FAILURE");
    history(&mut world, ("fn03", "live"), 3.0, 4.0);
    // Above its reserved concurrency.
    world.set_config("fn04", "live", 5);
    world.function("fn04").reserved = Some(3);
    history(&mut world, ("fn04", "live"), 3.0, 5.0);
    // Managed by Application Auto Scaling.
    world.set_config("fn05", "live", 6);
    world
        .scalable_targets
        .push(("fn05".into(), "live".into(), 1, 20));
    history(&mut world, ("fn05", "live"), 4.0, 6.0);
    // Cheaper on demand: 2 of 10 used.
    world.set_config("fn06", "live", 10);
    history(&mut world, ("fn06", "live"), 2.0, 10.0);
    // Graviton, 2 GB: 4 × 2 × 2,628,000 s × $0.0000033334 = $70.08.
    world.function("fn07").memory_mb = Some(2048);
    world.function("fn07").arm64 = true;
    world.set_config("fn07", "live", 4);
    history(&mut world, ("fn07", "live"), 3.0, 4.0);
    drop(world);
    endpoint
}

#[test]
fn an_account_is_priced_flagged_replayed_and_given_a_starter_config() {
    let endpoint = account();
    let dir = tempfile::tempdir().expect("a directory");
    let out = dir.path().join("out");
    // No config: the SDK's chain, its endpoint variable and `--region`.
    let output = common::binary_for_aws()
        .env("AWS_ENDPOINT_URL", &endpoint.url)
        .args([
            "audit",
            "--region",
            "us-east-1",
            "--out",
            out.to_str().expect("utf-8"),
        ])
        .args(["--read-rate", &READ_RATE.to_string()])
        .output()
        .expect("the binary runs");
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    let line = |config: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(&format!("{config} ")))
            .unwrap_or_else(|| panic!("no line for {config}:\n{stdout}"))
            .to_owned()
    };
    assert!(
        stdout.starts_with("50 functions, 8 with provisioned concurrency (8 configs)"),
        "{stdout}"
    );
    assert!(
        line("fn00:live").contains("$109.50"),
        "{}",
        line("fn00:live")
    );
    assert!(
        line("fn00:live").contains("70.0 %"),
        "{}",
        line("fn00:live")
    );
    assert!(
        line("fn07:live").contains("$70.08"),
        "{}",
        line("fn07:live")
    );
    for (config, flag) in [
        ("fn01:1", "unused"),
        ("fn01:1", "version no alias routes to"),
        ("fn02:live", "weighted alias"),
        ("fn03:live", "FAILED"),
        ("fn04:live", "above reserved (3)"),
        ("fn05:live", "managed by AAS"),
        ("fn06:live", "cheaper on-demand (break-even 60 %)"),
    ] {
        assert!(
            line(config).contains(flag),
            "{config} lacks {flag}: {}",
            line(config)
        );
    }
    assert!(line("fn00:live").trim_end().ends_with("-") || !line("fn00:live").contains("unused"));
    assert!(stdout.contains("static today $"), "{stdout}");
    assert!(
        stdout.contains("unused, to delete (not run): aws lambda delete-provisioned-concurrency-config --function-name fn01 --qualifier 1 --region us-east-1"),
        "{stdout}"
    );
    // The files: a report, a chart, and a starter config `check` accepts.
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("JSON");
    assert_eq!(report["configs"].as_array().map(Vec::len), Some(8));
    let healthy = &report["configs"][0];
    assert_eq!(healthy["function"], "fn00");
    let policies: Vec<&str> = healthy["replayed"]
        .as_array()
        .expect("replayed")
        .iter()
        .filter_map(|one| one["policy"].as_str())
        .collect();
    assert_eq!(
        policies,
        ["static today", "pc-autoscaler", "aas-equal-cost", "oracle"]
    );
    let svg = std::fs::read_to_string(out.join("audit.svg")).expect("audit.svg");
    assert!(
        svg.contains("<svg") && svg.contains("fn01 (unused config)"),
        "{svg}"
    );
    let starter = out.join("audit.toml");
    let checked = common::run(&["check", "--config", starter.to_str().expect("utf-8")]);
    assert!(
        checked.status.success(),
        "{}\n{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
    let starter = std::fs::read_to_string(&starter).expect("audit.toml");
    assert!(
        starter.contains("function = \"fn00\"") && starter.contains("function = \"fn07\""),
        "{starter}"
    );
    assert!(
        starter.contains("# left alone: fn06:live (cheaper on-demand"),
        "{starter}"
    );
    // Read only, within the read rate, and no throttle.
    let world = endpoint.world();
    let writes = [
        "PutProvisionedConcurrencyConfig",
        "DeleteProvisionedConcurrencyConfig",
    ];
    assert!(
        world
            .log
            .iter()
            .all(|logged| !writes.contains(&logged.operation))
    );
    assert!(world.log.iter().all(|logged| logged.status != 429));
    let shared: Vec<std::time::Instant> = world
        .log
        .iter()
        .filter(|logged| {
            ![
                "GetMetricData",
                "GetFunction",
                "DescribeScalableTargets",
                "DescribeScheduledActions",
            ]
            .contains(&logged.operation)
        })
        .map(|logged| logged.at)
        .collect();
    let busiest = shared
        .iter()
        .map(|from| {
            shared
                .iter()
                .filter(|at| **at >= *from && at.duration_since(*from) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        busiest as f64 <= 2.0 * READ_RATE,
        "{busiest} Lambda requests in one second at --read-rate {READ_RATE}"
    );
    // Every call is in the audit policy.
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_file("config/iam-policy-audit.json"))
            .expect("the policy"),
    )
    .expect("JSON");
    let granted: Vec<&str> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|statement| statement["Action"].as_array().expect("actions"))
        .filter_map(|action| action.as_str())
        .collect();
    for logged in &world.log {
        let service = match logged.operation {
            "GetMetricData" => "cloudwatch",
            "DescribeScalableTargets" | "DescribeScalingPolicies" | "DescribeScheduledActions" => {
                "application-autoscaling"
            }
            _ => "lambda",
        };
        let action = format!("{service}:{}", logged.operation);
        assert!(
            granted.contains(&action.as_str()),
            "{action} is not in the audit policy"
        );
    }
}

/// `audit` against `endpoint` with `args`; the output.
fn audit(endpoint: &Endpoint, args: &[&str]) -> std::process::Output {
    common::binary_for_aws()
        .env("AWS_ENDPOINT_URL", &endpoint.url)
        .args(["audit", "--region", "us-east-1", "--read-rate", "1000"])
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn hostile_names_and_values_from_aws_never_panic_inject_or_mislead() {
    let endpoint = Endpoint::start();
    let mut world = endpoint.world();
    let names = [
        "quote\"d",
        "new\nline",
        "<b>markup</b>",
        "esc\u{1b}[31mred",
        "bidi\u{202e}gnp.exe",
        &"x".repeat(65),
        "x;touch${IFS}pwned",
        "inject\n[daemon]\nlisten = \"0.0.0.0:1\"",
    ];
    for name in names {
        world.function(name).aliases.insert("live".into(), false);
        world.set_config(name, "live", 5);
        // The one to delete is unused: it has no history.
        if !name.contains("pwned") {
            history(&mut world, (name, "live"), 3.0, 5.0);
        }
    }
    world.set_config("latest", "$LATEST", 5);
    history(&mut world, ("latest", "$LATEST"), 3.0, 5.0);
    // One healthy function, worth managing, whose series hold values no metric has.
    world
        .function("healthy")
        .aliases
        .insert("live".into(), false);
    world.set_config("healthy", "live", 10);
    history(&mut world, ("healthy", "live"), 7.0, 10.0);
    for (minute, value, metric) in [
        (100, f64::INFINITY, "ConcurrentExecutions"),
        (200, 1e300, "ConcurrentExecutions"),
        (300, -12.0, "ConcurrentExecutions"),
        (100, f64::NAN, "ProvisionedConcurrencyUtilization"),
        (100, -1e6, "ProvisionedConcurrencyInvocations"),
    ] {
        let (_, dimensions) = common::aws_endpoint::concurrency_key("healthy", "live");
        let series = world
            .series
            .get_mut(&(metric.to_owned(), dimensions))
            .expect("the series is set");
        series[minute].1 = value;
    }
    drop(world);
    let dir = tempfile::tempdir().expect("a directory");
    let out = dir.path().join("out");
    let output = audit(&endpoint, &["--out", out.to_str().expect("utf-8")]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.starts_with("10 functions, 10 with provisioned concurrency"),
        "{stdout}"
    );
    for misleading in ["NaN", "inf", "$-", "\u{1b}", "\u{202e}", "\n[daemon]"] {
        assert!(!stdout.contains(misleading), "`{misleading}` in:\n{stdout}");
    }
    // The delete commands quote every name for a shell.
    assert!(
        stdout.contains("--function-name 'x;touch${IFS}pwned'"),
        "{stdout}"
    );
    // audit.toml passes check and has no table a name wrote.
    let starter = std::fs::read_to_string(out.join("audit.toml")).expect("audit.toml");
    let checked = common::run(&[
        "check",
        "--config",
        out.join("audit.toml").to_str().expect("utf-8"),
    ]);
    assert!(
        checked.status.success(),
        "{}\n{starter}",
        text(&checked.stderr)
    );
    assert!(
        starter
            .lines()
            .all(|line| !line.trim_start().starts_with("[daemon]")),
        "{starter}"
    );
    assert!(starter.contains("function = \"healthy\""), "{starter}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("JSON");
    assert!(
        report["static_bill_dollars_a_month"]
            .as_f64()
            .is_some_and(f64::is_finite)
    );
}

#[test]
fn an_out_that_cannot_be_written_is_refused_before_any_read() {
    let endpoint = account();
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").expect("written");
    let output = audit(
        &endpoint,
        &["--out", file.join("out").to_str().expect("utf-8")],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("--out"),
        "{}",
        text(&output.stderr)
    );
    assert!(endpoint.world().log.is_empty(), "nothing is read");
}

#[test]
fn an_account_with_nothing_worth_managing_gets_no_starter_config_check_would_refuse() {
    let endpoint = Endpoint::start();
    let mut world = endpoint.world();
    for index in 0..3 {
        world.function(&format!("plain{index}"));
    }
    world.set_config("old", "1", 4);
    drop(world);
    let dir = tempfile::tempdir().expect("a directory");
    let out = dir.path().join("out");
    let output = audit(&endpoint, &["--out", out.to_str().expect("utf-8")]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("no audit.toml is written"), "{stdout}");
    assert!(out.join("report.json").exists() && !out.join("audit.toml").exists());
}

#[test]
fn every_page_of_a_long_list_is_read() {
    let endpoint = Endpoint::start();
    let mut world = endpoint.world();
    // 1,002 pages of 2: more than any page cap this command ever had.
    world.list_page_size = 2;
    for index in 0..2_004 {
        world.function(&format!("fn{index:04}"));
    }
    world.set_config("fn2003", "live", 3);
    drop(world);
    let output = audit(&endpoint, &[]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.starts_with("2004 functions, 1 with provisioned concurrency"),
        "{stdout}"
    );
    assert_eq!(endpoint.world().requests("ListFunctions").len(), 1_002);
}
