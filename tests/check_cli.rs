//! `pc-autoscaler check`: the example passes with a schedule preview, and every kind
//! of bad config fails with exit status 2 and a located, specific message.

mod common;

use common::{repo_file, run, text, write_config};

#[test]
fn the_example_config_is_valid_and_previews_schedules() {
    let path = repo_file("config/example.toml");
    let output = run(&["check", "--config", path.to_str().expect("utf-8 path")]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("valid, 3 targets"), "{stdout}");
    assert!(
        stdout.contains("target checkout (checkout-api:live)"),
        "{stdout}"
    );
    // Three upcoming changes for the scheduled target, each with local and UTC time.
    let changes = stdout
        .lines()
        .filter(|line| line.contains(" UTC  → "))
        .count();
    assert_eq!(changes, 3, "{stdout}");
    assert!(stdout.contains("(Europe/Berlin)"), "{stdout}");
}

#[test]
fn the_config_path_can_come_from_the_environment() {
    let output = common::binary()
        .arg("check")
        .env("PC_AUTOSCALER_CONFIG", repo_file("config/example.toml"))
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
}

const VALID_TARGET: &str =
    "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n";

/// Each case: a config, and the `line:column: key: reason` fragment it must report.
const BAD_CONFIGS: &[(&str, &str, &str)] = &[
    (
        "latest",
        "[[target]]\nfunction = \"f\"\nqualifier = \"$LATEST\"\nmin = 1\nmax = 10\n",
        ":3:13: target[0].qualifier: `$LATEST` cannot have provisioned concurrency",
    ),
    (
        "min-above-max",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 11\nmax = 10\n",
        ":5:7: target[0].max: max (10) is below min (11)",
    ),
    (
        "rule-min-above-max",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target.schedule]]\ncron = \"0 8 * * *\"\nmin = 9\nmax = 3\n",
        ":8:7: target[0].schedule[0].min: the rule's min (9) is above its max (3)",
    ),
    (
        "rule-min-above-target-max",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target.schedule]]\ncron = \"0 8 * * *\"\nmin = 90\n",
        "target[0].schedule[0].min: the rule's min (90) is above the target's max (10); set `max` on the rule too",
    ),
    (
        "target-value",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\ntracking = { metric = \"concurrency\", target = 1.5 }\n",
        ":6:47: target[0].tracking.target: target 1.5 is out of range",
    ),
    (
        "inherited-target-value",
        "[defaults]\ntracking = { metric = \"utilization\", target = 0 }\n[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n",
        ":2:47: defaults.tracking.target: target 0 is out of range",
    ),
    (
        "cron",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target.schedule]]\ncron = \"0 25 * * *\"\nmin = 2\n",
        ":7:8: target[0].schedule[0].cron: `0 25 * * *` is not a cron expression",
    ),
    (
        "cron-fields",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target.schedule]]\ncron = \"0 8 * *\"\nmin = 2\n",
        "target[0].schedule[0].cron: `0 8 * *` has 4 fields",
    ),
    (
        "duration",
        "[daemon]\ninterval = \"sixty\"\n",
        ":2:12: daemon.interval: `sixty` is not a duration",
    ),
    (
        "lead",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target.schedule]]\ncron = \"0 8 * * *\"\nlead = \"5 fortnights\"\nmin = 2\n",
        "target[0].schedule[0].lead: `5 fortnights` is not a duration",
    ),
    (
        "timezone",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target.schedule]]\ncron = \"0 8 * * *\"\ntimezone = \"Europe/Atlantis\"\nmin = 2\n",
        ":8:12: target[0].schedule[0].timezone: `Europe/Atlantis` is not an IANA time zone",
    ),
    (
        "neither-cron-nor-at",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target.schedule]]\nname = \"x\"\nmin = 2\n",
        "target[0].schedule[0]: a rule needs `cron` (recurring) or `at` (one-off)",
    ),
    (
        "both-cron-and-at",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target.schedule]]\ncron = \"0 8 * * *\"\nat = \"2026-11-27T06:00:00\"\nmin = 2\n",
        ":8:6: target[0].schedule[0].at: a rule has either `cron` or `at`, not both",
    ),
    (
        "duplicate-target",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target]]\nfunction = \"arn:aws:lambda:eu-west-1:123456789012:function:f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n",
        ":7:12: target[1].function: `f:live` is already managed by target `f:live`",
    ),
    (
        "unknown-key",
        "[[target]]\nfunction = \"f\"\nqualifer = \"live\"\nmin = 1\nmax = 10\n",
        ":3:1: target[0].qualifer: unknown key `qualifer`; did you mean `qualifier`?",
    ),
    (
        "unknown-section",
        "[deamon]\ninterval = \"60s\"\n",
        ":1:2: deamon: unknown key `deamon`; did you mean `daemon`?",
    ),
    (
        "wrong-type",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = \"two\"\nmax = 10\n",
        ":4:7: target[0].min: invalid type: string \"two\", expected a whole number",
    ),
    ("toml-syntax", "[[target]\nfunction = \"f\"\n", ":1:"),
    (
        "arn-short-account-no-name",
        "[[target]]\nfunction = \"arn:aws:lambda:us-east-1:12345:function\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n",
        ":2:12: target[0].function: `12345` is not an AWS account ID: 12 digits",
    ),
    (
        "arn-no-name",
        "[[target]]\nfunction = \"arn:aws:lambda:us-east-1:123456789012:function\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n",
        "target[0].function: `arn:aws:lambda:us-east-1:123456789012:function` has no function name after `function:`",
    ),
    (
        "arn-partition",
        "[[target]]\nfunction = \"arn:aws:lambda:cn-north-1:123456789012:function:f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n",
        "target[0].function: the ARN's partition `aws` does not match region `cn-north-1` (expected `aws-cn`)",
    ),
    (
        "arn-region",
        "[[target]]\nfunction = \"arn:aws:lambda:useast1:123456789012:function:f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n",
        "target[0].function: `useast1` is not an AWS Region",
    ),
    (
        "arn-region-disagrees",
        "[aws]\nregion = \"eu-west-1\"\n[[target]]\nfunction = \"arn:aws:lambda:us-east-1:123456789012:function:f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n",
        "target[0].function: the function's ARN is in region `us-east-1` but [aws] region is `eu-west-1`",
    ),
    (
        "arn-qualifier-disagrees",
        "[[target]]\nfunction = \"arn:aws:lambda:us-east-1:123456789012:function:f:blue\"\nqualifier = \"green\"\nmin = 1\nmax = 10\n",
        "target[0].function: the function's ARN names qualifier `blue` but `qualifier` is `green`",
    ),
    (
        "function-name-characters",
        "[[target]]\nfunction = \"my function\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n",
        ":2:12: target[0].function: `my function` is not a Lambda function name",
    ),
    (
        "name-with-newline",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nname = \"ok\\nlevel=error msg=forged\"\nmin = 1\nmax = 10\n",
        ":4:8: target[0].name: name contains the control or formatting character U+000A",
    ),
    (
        "name-with-bidi",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nname = \"abc\u{202E}fed\"\nmin = 1\nmax = 10\n",
        "target[0].name: name contains the control or formatting character U+202E",
    ),
    (
        "rule-name-with-nul",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n[[target.schedule]]\nname = \"a\\u0000b\"\ncron = \"0 8 * * *\"\nmin = 2\n",
        "target[0].schedule[0].name: name contains the control or formatting character U+0000",
    ),
    (
        "max-beyond-i32",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 4294967295\n",
        ":5:7: target[0].max: max must be a whole number from 0 to 2147483647",
    ),
    (
        "scale-in-window-zero",
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 10\ntracking = { metric = \"concurrency\", target = 0.7, scale_in_window = \"0s\" }\n",
        "target[0].tracking.scale_in_window: `0s` is out of range: from 1m to 6h",
    ),
    (
        "read-rate-tiny",
        "[daemon]\nmax_read_rate = 1e-30\n",
        ":2:17: daemon.max_read_rate: must be a number of requests per second from 0.01 to 1000",
    ),
    (
        "aws-timeout-a-year",
        "[aws]\ntimeout = \"365d\"\n",
        ":2:11: aws.timeout: `365d` is out of range: from 1s to 5m",
    ),
    (
        "shutdown-grace-long",
        "[daemon]\nshutdown_grace = \"2h\"\n",
        "daemon.shutdown_grace: `2h` is out of range: from 0s to 15m",
    ),
    (
        "leader-without-table",
        "[leader]\nlease = \"15s\"\n",
        "leader: missing required key `table`",
    ),
    (
        "leader-renew-too-slow",
        "[leader]\ntable = \"locks\"\nlease = \"10s\"\nrenew_every = \"5s\"\n",
        ":4:15: leader.renew_every: renew_every (5s) must be under half the lease (10s)",
    ),
    (
        "leader-unknown-backend",
        "[leader]\nbackend = \"etcd\"\ntable = \"locks\"\n",
        ":2:11: leader.backend: `etcd` is not one of \"dynamodb\"",
    ),
    (
        "leader-bad-table-name",
        "[leader]\ntable = \"my table\"\n",
        ":2:9: leader.table: a DynamoDB table name is 3 to 255",
    ),
];

#[test]
fn each_bad_config_fails_with_a_located_specific_error_and_no_panic() {
    for (name, body, expected) in BAD_CONFIGS {
        // Configs that are not about targets get a valid one, so only their own error shows.
        let body = if body.contains("[[target]]") {
            body.to_string()
        } else {
            format!("{body}{VALID_TARGET}")
        };
        let (_dir, path) = write_config(&format!("{name}.toml"), &body);
        let output = run(&["check", "--config", path.to_str().expect("utf-8 path")]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let located = format!("{}{expected}", path.display());
        let located = if expected.starts_with(':') {
            located
        } else {
            expected.to_string()
        };
        assert!(
            stderr.contains(&located),
            "{name}: expected `{located}` in:\n{stderr}"
        );
    }
}

#[test]
fn every_error_is_reported_at_once() {
    let body = "[daemon]\ninterval = \"x\"\nlisen = \"y\"\n\
                [[target]]\nfunction = \"f\"\nqualifier = \"$LATEST\"\nmin = 5\nmax = 1\n\
                [[target]]\nfunction = \"g\"\nqualifier = \"live\"\nmin = 1\nmax = 10\ntracking = { metric = \"speed\", target = 0.5 }\n";
    let (_dir, path) = write_config("many.toml", body);
    let output = run(&["check", "--config", path.to_str().expect("utf-8 path")]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    for expected in [
        "daemon.interval",
        "daemon.lisen",
        "target[0].qualifier",
        "target[0].max",
        "target[1].tracking.metric",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("5 errors in the configuration"), "{stderr}");
}

#[test]
fn twenty_thousand_errors_are_counted_and_the_first_thousand_reported_at_their_lines() {
    let body: String = (0..20_000)
        .map(|index| {
            format!(
                "[[target]]\nfunction = \"f{index}\"\nqualifier = \"live\"\nmin = -1\nmax = 10\n"
            )
        })
        .collect();
    let (_dir, path) = write_config("many.toml", &body);
    let output = run(&["check", "--config", path.to_str().expect("utf-8 path")]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.ends_with(
            "20000 errors in the configuration; the first 1000 are shown, 19000 more are not\n"
        ),
        "{}",
        &stderr[stderr.len().saturating_sub(200)..]
    );
    let located: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains(".min: "))
        .collect();
    assert_eq!(located.len(), 1_000);
    assert!(
        located[0].contains("many.toml:4:7: target[0].min"),
        "{}",
        located[0]
    );
    assert!(
        located[999].contains("many.toml:4999:7: target[999].min"),
        "{}",
        located[999]
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let output = run(&["check", "--config", "/nonexistent/pc-autoscaler.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("cannot read config file /nonexistent/pc-autoscaler.toml")
    );
}

#[test]
fn check_names_the_lease_and_the_iam_actions_it_needs() {
    let (_dir, path) = write_config(
        "leader.toml",
        &format!("[leader]\ntable = \"pc-locks\"\ncreate_table = true\n{VALID_TARGET}"),
    );
    let output = run(&["check", "--config", path.to_str().expect("utf-8 path")]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("DynamoDB table `pc-locks`") && stdout.contains("lease 15s"),
        "{stdout}"
    );
    // Every action `check` names is in the leader policy, and nothing more.
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("config/iam-policy-leader.json")).expect("the policy"),
    )
    .expect("the policy is JSON");
    let granted: std::collections::BTreeSet<&str> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|statement| statement["Action"].as_array().expect("actions"))
        .map(|action| action.as_str().expect("text"))
        .collect();
    let iam_line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("IAM:"))
        .expect("an IAM line");
    let named: std::collections::BTreeSet<&str> = iam_line
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| word.starts_with("dynamodb:"))
        .collect();
    assert_eq!(named, granted, "{stdout}");
}

#[test]
fn check_explains_spread_leases_for_the_configs_shards() {
    let accounts = "[[account]]\nname = \"shop\"\nrole_arn = \"arn:aws:iam::111111111111:role/pc\"\nregions = [\"us-east-1\", \"eu-west-1\"]\n";
    let targets = ["us-east-1", "eu-west-1"]
        .map(|region| format!("[[target]]\nfunction = \"f\"\nqualifier = \"live\"\naccount = \"shop\"\nregion = \"{region}\"\nmin = 1\nmax = 10\n"))
        .concat();
    let (_dir, path) = write_config(
        "spread.toml",
        &format!("[leader]\ntable = \"pc-locks\"\nspread = true\n{accounts}{targets}"),
    );
    let output = run(&["check", "--config", path.to_str().expect("utf-8 path")]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("a lease per shard in DynamoDB table `pc-locks`")
            && stdout.contains(
                "2 item(s) `pc-autoscaler@shop/us-east-1`, `pc-autoscaler@shop/eu-west-1`"
            )
            && stdout.contains("each copy acts only on the shards it holds"),
        "{stdout}"
    );
}

#[test]
fn check_says_what_the_budget_allows_and_names_the_budget_that_would_meet_the_period() {
    let targets: String = (0..1_000)
        .map(|index| {
            format!(
                "[[target]]\nfunction = \"fn{index}\"\nqualifier = \"live\"\nmin = 1\nmax = 5\n"
            )
        })
        .collect();
    let (_dir, path) = write_config(
        "many.toml",
        &format!("[daemon]\ndrift_scan_period = \"2m\"\n{targets}"),
    );
    let output = run(&["check", "--config", path.to_str().expect("utf-8 path")]);
    let report = text(&output.stdout);
    assert!(output.status.success(), "a warning, not an error: {report}");
    assert!(
        report.contains("1000 functions at 2/s: one drift scan of every function takes 500 s"),
        "{report}"
    );
    assert!(
        report.contains("warning: drift_scan_period 2m cannot be met")
            && report.contains("control_plane_budget = 9.5 would meet it"),
        "{report}"
    );
    let few: String = targets.split_inclusive("max = 5\n").take(10).collect();
    let (_dir, path) = write_config("few.toml", &few);
    let report = text(&run(&["check", "--config", path.to_str().expect("utf-8 path")]).stdout);
    assert!(report.contains("drift_scan_period 10m is met"), "{report}");
    assert!(!report.contains("warning:"), "{report}");
}

#[test]
fn the_state_directory_must_be_a_writable_directory() {
    let check = |directory: &std::path::Path| {
        let (_dir, path) = write_config(
            "state.toml",
            &format!(
                "[daemon]\nstate_directory = \"{}\"\n{VALID_TARGET}",
                directory.display()
            ),
        );
        run(&["check", "--config", path.to_str().expect("utf-8 path")])
    };
    let state = tempfile::tempdir().expect("a directory");
    assert!(check(state.path()).status.success());
    let file = state.path().join("a-file");
    std::fs::write(&file, "").expect("a file");
    for missing in [file, state.path().join("absent")] {
        let output = check(&missing);
        assert_eq!(output.status.code(), Some(2));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("daemon.state_directory") && stderr.contains("is not a directory"),
            "{stderr}"
        );
    }
}

#[test]
fn check_names_the_event_bus_and_the_action_its_policy_grants() {
    let (_dir, path) = write_config(
        "events.toml",
        &format!(
            "[events]\nbus = \"arn:aws:events:eu-west-1:123456789012:event-bus/ops\"\n{VALID_TARGET}"
        ),
    );
    let output = run(&["check", "--config", path.to_str().expect("utf-8 path")]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.contains("event-bus/ops"), "{stdout}");
    let policy =
        std::fs::read_to_string(repo_file("config/iam-policy-events.json")).expect("the policy");
    assert!(
        policy.contains("\"events:PutEvents\"") && stdout.contains("IAM: events:PutEvents"),
        "{stdout}"
    );
    for bad in ["", "arn:aws:sqs:eu-west-1:1:queue", "two words"] {
        let (_dir, path) = write_config(
            "bad.toml",
            &format!("[events]\nbus = \"{bad}\"\n{VALID_TARGET}"),
        );
        let output = run(&["check", "--config", path.to_str().expect("utf-8 path")]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        assert!(
            text(&output.stderr).contains("events.bus"),
            "{}",
            text(&output.stderr)
        );
    }
}
