//! `plan` and `run --once` over the wire: the official SDK against the local endpoint
//! in `common::aws_endpoint`, exercising Lambda's semantics and every fault class.

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::aws_endpoint::{Endpoint, Fault};
use common::{
    PUT, aws_config, endpoint_wanting_100, plan_json, plan_json_any_status, run_against_aws,
    run_once, text, tracked_target,
};

#[test]
fn plan_reads_and_explains_without_writing() {
    let endpoint = endpoint_wanting_100();
    endpoint.world().set_config("f", "live", 10);
    let (_, rows) = plan_json(&endpoint, "", &tracked_target("f", "live"));
    assert_eq!(rows[0]["requested"], 10);
    assert_eq!(rows[0]["desired"], 100);
    assert_eq!(rows[0]["reason_code"], "tracking");
    assert_eq!(rows[0]["changes"], true);
    assert!(
        endpoint.world().requests(PUT).is_empty(),
        "plan never writes"
    );
    let (_dir, config) = aws_config(&endpoint.url, "", &tracked_target("f", "live"));
    let table = run_against_aws(&["plan", "--config", config.to_str().expect("utf-8")]);
    assert!(
        text(&table.stdout).contains("tracking concurrency = 70.000"),
        "{}",
        text(&table.stdout)
    );
}

#[test]
fn run_once_applies_waits_for_ready_and_reports() {
    let endpoint = endpoint_wanting_100();
    let output = run_once(&endpoint, "", &tracked_target("f", "live"), &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("f:live: changed 0 -> 100 (READY after "),
        "{}",
        text(&output.stdout)
    );
    let puts = endpoint.world().requests(PUT);
    assert_eq!(
        (puts.len(), puts[0].value, puts[0].status),
        (1, Some(100), 202)
    );
    assert!(
        text(&output.stderr).contains("capacity changed"),
        "one structured event per change"
    );
}

#[test]
fn no_put_when_unchanged_and_no_write_in_dry_run() {
    let endpoint = endpoint_wanting_100();
    endpoint.world().set_config("f", "live", 100);
    let output = run_once(&endpoint, "", &tracked_target("f", "live"), &[]);
    assert!(output.status.success());
    assert!(text(&output.stdout).contains("unchanged at 100"));
    assert!(endpoint.world().requests(PUT).is_empty());

    endpoint.world().set_config("f", "live", 10);
    let output = run_once(
        &endpoint,
        "dry_run = true",
        &tracked_target("f", "live"),
        &[],
    );
    assert!(
        text(&output.stdout).contains("would change 10 -> 100 (dry run)"),
        "{}",
        text(&output.stdout)
    );
    let writes = endpoint
        .world()
        .log
        .iter()
        .filter(|logged| {
            logged.operation.starts_with("Put") || logged.operation.starts_with("Delete")
        })
        .count();
    assert_eq!(writes, 0);
}

#[test]
fn a_throttle_with_retry_after_delays_the_next_write_by_that_long() {
    let endpoint = endpoint_wanting_100();
    endpoint.world().inject(
        PUT,
        [Fault::Throttle {
            retry_after: Some(2),
        }],
    );
    let output = run_once(&endpoint, "", &tracked_target("f", "live"), &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let puts = endpoint.world().requests(PUT);
    assert_eq!(
        puts.iter().map(|put| put.status).collect::<Vec<_>>(),
        vec![429, 202]
    );
    let gap = puts[1].at - puts[0].at;
    assert!(gap >= Duration::from_secs(2), "waited only {gap:?}");
    assert!(
        gap < Duration::from_millis(2_800),
        "waited {gap:?}, much more than asked"
    );
    assert!(
        text(&output.stderr).contains("throttled"),
        "the throttle is logged"
    );
}

#[test]
fn throttles_without_retry_after_back_off_between_growing_floors_and_ceilings() {
    let endpoint = endpoint_wanting_100();
    endpoint
        .world()
        .inject(PUT, (0..4).map(|_| Fault::Throttle { retry_after: None }));
    let output = run_once(&endpoint, "", &tracked_target("f", "live"), &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let puts = endpoint.world().requests(PUT);
    assert_eq!(puts.len(), 5);
    // Equal jitter: retry n waits in [c/2, c) with c = 0.5 s × 2ⁿ (cap 30 s). The floor
    // is exact (a timer never fires early); the ceiling gets slack for a loaded machine
    // running the suite in parallel.
    let backoff = pc_autoscaler::runtime::course::Backoff::default();
    let slack = Duration::from_millis(600);
    for (attempt, pair) in puts.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let attempt = attempt as u32;
        assert!(
            gap >= backoff.floor(attempt),
            "retry {attempt} came after only {gap:?}"
        );
        assert!(
            gap <= backoff.ceiling(attempt) + slack,
            "retry {attempt} waited {gap:?}"
        );
    }
}

#[test]
fn conflicts_lead_to_status_polling_and_exactly_one_successful_put() {
    let endpoint = endpoint_wanting_100();
    endpoint
        .world()
        .inject(PUT, [Fault::Conflict, Fault::Conflict, Fault::Conflict]);
    let output = run_once(&endpoint, "", &tracked_target("f", "live"), &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let world = endpoint.world();
    let statuses: Vec<u16> = world.requests(PUT).iter().map(|put| put.status).collect();
    assert_eq!(statuses, vec![409, 409, 409, 202]);
    // Between conflicts the status is read back before deciding again.
    let order: Vec<&str> = world.log.iter().map(|logged| logged.operation).collect();
    let first_put = order.iter().position(|op| *op == PUT).expect("a put");
    assert_eq!(order[first_put + 1], "GetProvisionedConcurrencyConfig");
}

#[test]
fn an_allocation_in_progress_is_left_alone() {
    let endpoint = endpoint_wanting_100();
    {
        let mut world = endpoint.world();
        world.allocation_delay = Duration::from_secs(60);
        world.set_config("f", "live", 10);
        let config = world
            .function("f")
            .configs
            .get_mut("live")
            .expect("the config");
        config.status = "IN_PROGRESS";
        config.since = std::time::Instant::now();
    }
    let (_, rows) = plan_json(&endpoint, "", &tracked_target("f", "live"));
    assert_eq!(rows[0]["reason_code"], "allocation_in_progress");
    assert_eq!(rows[0]["desired"], 10);
}

#[test]
fn an_invalid_parameter_is_reported_and_not_retried() {
    let endpoint = endpoint_wanting_100();
    endpoint.world().inject(PUT, [Fault::InvalidParameter]);
    let output = run_once(&endpoint, "", &tracked_target("f", "live"), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("FAILED: refused: Injected invalid parameter"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(endpoint.world().requests(PUT).len(), 1);
}

#[test]
fn the_reserved_concurrency_cap_and_the_account_floor_are_respected() {
    let endpoint = Endpoint::start();
    {
        let mut world = endpoint.world();
        // `capped` has 50 reserved, of which version 1 holds 20: live may take 30.
        world.function("capped").reserved = Some(50);
        world.set_config("capped", "1", 20);
        world.set_concurrency("capped", "live", &[700.0], 2);
        // The account: 1000 limit, 50 reserved by `capped`, so 950 unreserved; with
        // account_reserve 100, `open` may take 850 (it wants 1000 / 0.7 → 1429).
        world.set_concurrency("open", "live", &[1_000.0], 2);
    }
    let targets = format!(
        "{}{}",
        tracked_target("capped", "live"),
        tracked_target("open", "live").replace("max = 1000", "max = 5000")
    );
    let output = run_once(&endpoint, "account_reserve = 100", &targets, &[]);
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    assert!(stdout.contains("capped:live: changed 0 -> 30"), "{stdout}");
    assert!(stdout.contains("open:live: changed 0 -> 850"), "{stdout}");
}

#[test]
fn a_weighted_alias_is_blocked_while_other_targets_proceed() {
    let endpoint = endpoint_wanting_100();
    endpoint
        .world()
        .function("canary")
        .aliases
        .insert("live".into(), true);
    let targets = format!(
        "{}{}",
        tracked_target("canary", "live"),
        tracked_target("f", "live")
    );
    let output = run_once(&endpoint, "", &targets, &[]);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("canary:live: BLOCKED: alias has a weighted RoutingConfig"),
        "{stdout}"
    );
    assert!(stdout.contains("f:live: changed 0 -> 100"), "{stdout}");
    assert_eq!(
        output.status.code(),
        Some(1),
        "a blocked target fails run --once"
    );
    assert!(
        endpoint
            .world()
            .requests(PUT)
            .iter()
            .all(|put| put.function.as_deref() == Some("f"))
    );
}

#[test]
fn server_errors_and_a_hung_endpoint_are_reported_without_a_crash() {
    let endpoint = endpoint_wanting_100();
    endpoint.world().inject(
        PUT,
        [Fault::ServerError, Fault::ServerError, Fault::ServerError],
    );
    let output = run_once(&endpoint, "", &tracked_target("f", "live"), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("FAILED: server error (ServiceException)"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        endpoint.world().requests(PUT).len(),
        3,
        "transient write failures are tried 3 times in all"
    );

    // Every read of the config hangs past the 2 s timeout (3 SDK attempts).
    let hung = Endpoint::start();
    hung.world().inject(
        "ListProvisionedConcurrencyConfigs",
        (0..3).map(|_| Fault::Hang(Duration::from_secs(5))),
    );
    let output = run_once(&hung, "", &tracked_target("f", "live"), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("f:live: BLOCKED: cannot read the current config: timed out"),
        "{}",
        text(&output.stdout)
    );
    assert!(!text(&output.stderr).contains("panicked"));
    assert!(
        hung.world().requests(PUT).is_empty(),
        "no write without a readable config"
    );
}

#[test]
fn malformed_answers_are_reported_and_missing_metrics_hold_capacity() {
    let endpoint = Endpoint::start();
    endpoint.world().set_config("f", "live", 40);
    endpoint.world().inject(
        "GetMetricData",
        [Fault::Malformed, Fault::Malformed, Fault::Malformed],
    );
    let (output, rows) = plan_json_any_status(&endpoint, "", &tracked_target("f", "live"));
    assert_eq!(rows[0]["reason_code"], "held_metrics_unreadable");
    assert_eq!(
        rows[0]["desired"], 40,
        "a failed metric read never scales in"
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains("metric read failed"), "{stderr}");
    assert!(stderr.contains("unparsable body"), "{stderr}");
    assert_eq!(output.status.code(), Some(1), "nothing was read: {stderr}");
}

#[test]
fn twelve_hundred_targets_are_read_in_three_metric_calls() {
    let endpoint = Endpoint::start();
    let targets: String = (0..1_200)
        .map(|index| tracked_target(&format!("fn{index}"), "1"))
        .collect();
    plan_json(&endpoint, "max_read_rate = 1000.0", &targets);
    let calls = endpoint.world().requests("GetMetricData");
    assert_eq!(
        calls.iter().map(|call| call.queries).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
}

#[test]
fn metric_pages_are_followed() {
    let endpoint = endpoint_wanting_100();
    endpoint.world().page_size = 1;
    let (_, rows) = plan_json(&endpoint, "", &tracked_target("f", "live"));
    assert_eq!(rows[0]["datapoints"], 2);
    assert_eq!(rows[0]["desired"], 100);
    assert_eq!(endpoint.world().requests("GetMetricData").len(), 2);
}

#[test]
fn scaling_to_zero_deletes_the_config() {
    let endpoint = Endpoint::start();
    endpoint.world().set_config("idle", "live", 5);
    let target = "[[target]]\nfunction = \"idle\"\nqualifier = \"live\"\nmin = 0\nmax = 10\n\
                  tracking = { metric = \"concurrency\", target = 0.7, missing_data = \"zero\", scale_in_cooldown = \"0s\" }\n";
    let output = run_once(&endpoint, "", target, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("idle:live: changed 5 -> 0 (deleted)"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        endpoint
            .world()
            .requests("DeleteProvisionedConcurrencyConfig")
            .len(),
        1
    );
}

#[test]
fn the_iam_policy_allows_exactly_the_calls_made() {
    let endpoint = Endpoint::start();
    {
        let mut world = endpoint.world();
        world.function("reserved").reserved = Some(100);
        world.set_config("reserved", "live", 50);
        world.set_config("idle", "live", 5);
        world.set_concurrency("f", "live", &[70.0], 2);
    }
    // One target Application Auto Scaling manages, taken over.
    endpoint
        .world()
        .scalable_targets
        .push(("f".into(), "live".into(), 1, 200));
    let idle = "[[target]]\nfunction = \"idle\"\nqualifier = \"live\"\nmin = 0\nmax = 10\n\
                tracking = { metric = \"concurrency\", target = 0.7, missing_data = \"zero\", scale_in_cooldown = \"0s\" }\n";
    let targets = format!(
        "{}take_over_aas = true\n{}{idle}",
        tracked_target("f", "live"),
        tracked_target("reserved", "live")
    );
    let state = tempfile::tempdir().expect("a state directory");
    let daemon = format!("state_directory = \"{}\"", state.path().display());
    let output = run_once(&endpoint, &daemon, &targets, &[]);
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );

    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_file("config/iam-policy.json"))
            .expect("the policy exists"),
    )
    .expect("the policy is JSON");
    let allowed: std::collections::BTreeSet<String> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|statement| statement["Action"].as_array().expect("actions").iter())
        .map(|action| action.as_str().expect("an action name").to_owned())
        .collect();
    let used: std::collections::BTreeSet<String> = endpoint
        .world()
        .log
        .iter()
        .map(|logged| {
            let service = match logged.operation {
                "GetMetricData" => "cloudwatch",
                "DescribeScalableTargets" | "RegisterScalableTarget" => "application-autoscaling",
                _ => "lambda",
            };
            format!("{service}:{}", logged.operation)
        })
        .collect();
    let missing: Vec<_> = used.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "the code calls actions the policy lacks: {missing:?}"
    );
    let unused: Vec<_> = allowed.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "the policy grants actions the code never calls: {unused:?}"
    );
}

#[test]
fn a_burst_of_changed_targets_is_spread_at_the_write_rate() {
    let endpoint = Endpoint::start();
    let targets: String = (0..20)
        .map(|index| tracked_target(&format!("burst{index}"), "live"))
        .collect();
    for index in 0..20 {
        endpoint
            .world()
            .set_concurrency(&format!("burst{index}"), "live", &[7.0], 2);
    }
    // 5 writes a second with a burst of 5: the 20th write goes 3 s after the first.
    let output = run_once(
        &endpoint,
        "max_write_rate = 5.0\nmax_read_rate = 1000.0",
        &targets,
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let puts = endpoint.world().requests(PUT);
    assert_eq!(puts.len(), 20);
    let spread = puts[19].at - puts[0].at;
    assert!(
        spread >= Duration::from_millis(2_800),
        "20 writes went out within {spread:?}"
    );
}

#[test]
fn plan_shows_the_forecast_it_reads_from_the_metric_history() {
    // Three days of an hourly batch (100 for 10 minutes of every hour, 10 otherwise),
    // the newest datapoint 2 minutes old, the next batch due 5 minutes from now. `plan`
    // keeps nothing between runs: the forecast comes from the history it reads.
    let endpoint = Endpoint::start();
    let now_minute = chrono::Utc::now().timestamp() / 60;
    let minutes = 3 * 24 * 60;
    let values: Vec<f64> = (0..minutes)
        .map(|index| {
            let minute = now_minute - 2 - (minutes - 1 - index);
            if (minute - now_minute - 5).rem_euclid(60) < 10 {
                100.0
            } else {
                10.0
            }
        })
        .collect();
    {
        let mut world = endpoint.world();
        world.set_config("batch", "live", 15);
        world.set_concurrency("batch", "live", &values, 2);
    }
    let target = "[[target]]\nfunction = \"batch\"\nqualifier = \"live\"\nmin = 1\nmax = 1000\n\
                  tracking = { metric = \"concurrency\", target = 0.7, forecast = \"observe\", \
                  choose_window = \"observe\" }\n";
    let (_, rows) = plan_json(&endpoint, "", target);
    let forecast = rows[0]["forecast"].as_str().unwrap_or_default();
    assert!(
        forecast.starts_with("needs 143: 100.0 expected") && forecast.contains("as 1h ago"),
        "{rows}"
    );
    // Observed only: the decision is the reactive one.
    assert_ne!(rows[0]["reason_code"], "forecast", "{rows}");
    // Every window misses each batch's first 5 minutes alike, so none beats the
    // configured one (`policy::tuning`).
    assert_eq!(rows[0]["window"], "as configured", "{rows}");
}

#[test]
fn a_failed_allocation_is_written_again_by_run_once_and_fails_it_until_init_works() {
    // Lambda left the config FAILED: 20 requested, nothing allocated; the init still fails.
    let endpoint = Endpoint::start();
    let reason = "FUNCTION_ERROR_INIT_FAILURE";
    endpoint.world().set_failed("f", "live", 20, reason);
    endpoint.world().function("f").init_fails = Some(reason.into());
    let target = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 20\nmax = 100\n";

    let (_, rows) = plan_json(&endpoint, "", target);
    let row = &rows[0];
    assert_eq!(
        (
            row["status"].as_str(),
            row["status_reason"].as_str(),
            row["allocated"].as_u64()
        ),
        (Some("FAILED"), Some(reason), Some(0)),
        "{row}"
    );
    assert_eq!(row["changes"], true, "20 requested is not 20 there: {row}");

    let output = run_once(&endpoint, "", target, &[]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .contains("f:live: FAILED: changed 20 -> 20, then FAILED: FUNCTION_ERROR_INIT_FAILURE"),
        "{stdout}"
    );
    assert_eq!(endpoint.world().requests(PUT).len(), 1);

    // The cause fixed: the next run writes it again, and it is READY.
    endpoint.world().function("f").init_fails = None;
    let output = run_once(&endpoint, "", target, &[]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("f:live: changed 20 -> 20 (READY after "),
        "{stdout}"
    );
    let output = run_once(&endpoint, "", target, &[]);
    assert!(text(&output.stdout).contains("f:live: unchanged at 20"));
    assert_eq!(endpoint.world().requests(PUT).len(), 2);
}
