//! Operators' overrides end to end: the CLI writes the store, the real daemon reads it
//! once a pass and acts on it against the local AWS endpoint; bad input is refused
//! with exit status 2 and leaves the store as it was.

#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::aws_endpoint::Endpoint;
use common::{Daemon, aws_config, daemon_settings, free_port, http_get, puts_of, text, wait_for};

const TRACKED: &str = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 1000\n\
                       tracking = { metric = \"concurrency\", target = 0.7, scale_in_cooldown = \"0s\", scale_in_window = \"1m\" }\n";

fn override_cli(config: &Path, args: &[&str]) -> std::process::Output {
    common::binary_for_aws()
        .arg("override")
        .args(args)
        .args(["--config", config.to_str().expect("utf-8 path")])
        .env("USER", "operator")
        .output()
        .expect("the binary runs")
}

/// `override ARGS` against `config`, which must succeed; its output.
fn set(config: &Path, args: &str) -> String {
    let args: Vec<&str> = args.split(' ').collect();
    let output = override_cli(config, &args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// A daemon every second that has scaled `f:live` to 100, keeping its state (and so the
/// overrides) in its own directory; the directories live as long as the first value.
fn daemon_at_100() -> ([tempfile::TempDir; 2], Endpoint, std::path::PathBuf, Daemon) {
    let endpoint = common::endpoint_wanting_100();
    let state = tempfile::tempdir().expect("a state directory");
    let port = free_port();
    let settings = format!(
        "{}\nstate_directory = \"{}\"",
        daemon_settings(port, "1s"),
        state.path().display()
    );
    let (dir, config) = aws_config(&endpoint.url, &settings, TRACKED);
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_for_put(&endpoint, 100, Duration::from_secs(20));
    ([state, dir], endpoint, config, daemon)
}

#[test]
fn a_pin_set_by_the_cli_is_written_in_the_next_pass_and_shown() {
    let (_dirs, endpoint, config, daemon) = daemon_at_100();
    let shown = set(&config, "set f:live pin 30 --for 1h --reason load");
    assert!(shown.contains("pin 30"), "{shown}");
    daemon.wait_for_put(&endpoint, 30, Duration::from_secs(5));
    let (_, status) = http_get(&daemon.address, "/status").expect("status answers");
    assert!(
        status.contains("override: pin 30 until") && status.contains("by operator: load"),
        "{status}"
    );
    assert_eq!(
        daemon.metric("pc_autoscaler_target_override{kind=\"pin\",target=\"f:live\"}"),
        Some(1.0)
    );
    let shown = common::run(&["status", "--url", &format!("http://{}", daemon.address)]);
    let shown = text(&shown.stdout);
    assert!(
        shown.contains("override: pin 30") && shown.contains("m left)"),
        "{shown}"
    );
    let listed = set(&config, "list");
    assert!(listed.contains("f:live  pin 30"), "{listed}");
    let (_, activities) = http_get(&daemon.address, "/activities").expect("activities answer");
    assert!(activities.contains("set: pin 30"), "{activities}");

    // Cleared: decided as before at once, 100 again.
    let before = puts_of(&endpoint, 100).len();
    set(&config, "clear f:live");
    assert!(
        wait_for(Duration::from_secs(5), || puts_of(&endpoint, 100).len()
            > before),
        "{}",
        daemon.log()
    );
}

#[test]
fn pause_scale_in_holds_while_demand_falls_and_scale_in_follows_its_end() {
    let (_dirs, endpoint, config, daemon) = daemon_at_100();
    set(
        &config,
        "set f:live pause scale-in --for 6s --reason incident",
    );
    // Give the daemon a pass to read it, then let demand fall: 7 wants 10.
    std::thread::sleep(Duration::from_millis(1_500));
    endpoint.world().set_concurrency("f", "live", &[7.0], 2);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        puts_of(&endpoint, 10).is_empty(),
        "scaled in during the pause:\n{}",
        daemon.log()
    );
    daemon.wait_for_put(&endpoint, 10, Duration::from_secs(10));
    let (_, activities) = http_get(&daemon.address, "/activities").expect("activities answer");
    assert!(activities.contains("ended: pause scale-in"), "{activities}");
}

#[test]
fn bad_override_input_exits_2_and_leaves_the_store_as_it_was() {
    // `f` has 20 reserved: a pin or floor above it is refused (`GetFunction`).
    let endpoint = Endpoint::start();
    endpoint.world().function("f").reserved = Some(20);
    let state = tempfile::tempdir().expect("a state directory");
    let settings = format!("state_directory = \"{}\"", state.path().display());
    let (_dir, config) = aws_config(&endpoint.url, &settings, TRACKED);
    set(&config, "set f:live floor 5 --for 1h --reason launch");
    let store = state.path().join("overrides.json");
    let kept = std::fs::read(&store).expect("the store");
    for (args, reason) in [
        (
            vec![
                "set",
                "nope:live",
                "pin",
                "5",
                "--for",
                "1h",
                "--reason",
                "x",
            ],
            "not a target",
        ),
        (
            vec![
                "set",
                "f:live",
                "pin",
                "5",
                "--until",
                "2020-01-01T00:00:00Z",
                "--reason",
                "x",
            ],
            "not ahead",
        ),
        (
            vec![
                "set", "f:live", "pin", "5", "--for", "31days", "--reason", "x",
            ],
            "30 days",
        ),
        (
            vec![
                "set", "f:live", "pin", "1001", "--for", "1h", "--reason", "x",
            ],
            "above the max",
        ),
        (
            vec![
                "set", "f:live", "floor", "21", "--for", "1h", "--reason", "x",
            ],
            "above the reserved concurrency",
        ),
        (
            vec!["set", "f:live", "hold", "5", "--for", "1h", "--reason", "x"],
            "not an override",
        ),
        (
            vec!["set", "f:live", "pin", "5", "--for", "1h", "--reason", " "],
            "reason",
        ),
        (vec!["clear", "nothing-by-this-name"], "no override"),
    ] {
        let output = override_cli(&config, &args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(reason),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert_eq!(
            std::fs::read(&store).expect("the store"),
            kept,
            "{args:?} changed the store"
        );
    }
    // Without a store to keep them in, overrides are refused too.
    let (_dir, bare) = common::write_config("bare.toml", TRACKED);
    let output = override_cli(&bare, &["list"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
}

#[test]
fn plan_and_run_once_decide_with_the_overrides_in_force_and_plan_lists_them() {
    let endpoint = common::endpoint_wanting_100();
    let state = tempfile::tempdir().expect("a state directory");
    let settings = format!("state_directory = \"{}\"", state.path().display());
    let (_dir, config) = aws_config(&endpoint.url, &settings, TRACKED);
    set(&config, "set f:live ceiling 40 --for 1h --reason budget");
    let path = config.to_str().expect("utf-8 path");
    let plan = common::run_against_aws(&["plan", "--config", path]);
    let shown = text(&plan.stdout);
    assert!(plan.status.success(), "{shown}{}", text(&plan.stderr));
    assert!(shown.contains("override: ceiling 40 until"), "{shown}");
    assert!(
        shown.contains("f:live  ceiling 40") && shown.contains("by operator: budget"),
        "{shown}"
    );
    let once = common::run_against_aws(&["run", "--once", "--config", path]);
    assert!(
        once.status.success(),
        "{}{}",
        text(&once.stdout),
        text(&once.stderr)
    );
    assert_eq!(puts_of(&endpoint, 40).len(), 1, "{}", text(&once.stdout));
    assert!(puts_of(&endpoint, 100).is_empty());

    // A store that cannot be read: run --once writes nothing and fails.
    std::fs::write(state.path().join("overrides.json"), "{ not json").expect("written");
    let once = common::run_against_aws(&["run", "--once", "--config", path]);
    assert!(!once.status.success());
    assert!(
        text(&once.stdout).contains("nothing was written"),
        "{}",
        text(&once.stdout)
    );
    assert_eq!(puts_of(&endpoint, 40).len(), 1);
}

/// A config against a fresh endpoint keeping its overrides in a state directory, with
/// `targets`; the directories live as long as the first value.
fn store_config(targets: &str) -> ([tempfile::TempDir; 2], Endpoint, std::path::PathBuf) {
    let endpoint = Endpoint::start();
    let state = tempfile::tempdir().expect("a state directory");
    let settings = format!("state_directory = \"{}\"", state.path().display());
    let (dir, config) = aws_config(&endpoint.url, &settings, targets);
    ([state, dir], endpoint, config)
}

#[test]
fn who_set_an_override_is_kept_bounded_whatever_user_says() {
    let ([state, _dir], _endpoint, config) = store_config(TRACKED);
    // Near the largest one variable the kernel passes: nine of them were more than the
    // store's 1 MiB when `$USER` was kept whole.
    let huge = "u".repeat(120_000);
    for _ in 0..9 {
        let output = common::binary_for_aws()
            .args([
                "override", "set", "f:live", "pause", "scale-in", "--for", "1h",
            ])
            .args([
                "--reason",
                "load",
                "--config",
                config.to_str().expect("utf-8"),
            ])
            .env("USER", &huge)
            .output()
            .expect("the binary runs");
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let listed = set(&config, "list");
    assert_eq!(listed.lines().count(), 9, "{listed}");
    let stored = std::fs::read_to_string(state.path().join("overrides.json")).expect("the store");
    assert!(stored.len() < 16 * 1024, "{} bytes", stored.len());
}

#[test]
fn a_glob_question_mark_is_one_character_as_in_selector_globs() {
    let targets =
        "[[target]]\nname = \"café\"\nfunction = \"a\"\nqualifier = \"live\"\nmin = 1\nmax = 9\n";
    let ([_state, _dir], _endpoint, config) = store_config(targets);
    let shown = set(&config, "set --glob caf? pin 3 --for 1h --reason r");
    assert!(shown.contains("glob caf?"), "{shown}");
}

#[test]
fn the_most_overrides_kept_is_bad_input_and_clear_all_empties_a_store_that_no_longer_reads() {
    let ([state, _dir], _endpoint, config) = store_config(TRACKED);
    let now = chrono::Utc::now();
    let full: Vec<serde_json::Value> = (0..500)
        .map(|index| {
            serde_json::json!({ "id": format!("{index:08x}"), "scope": "all", "kind": "floor 1",
                "until": now + chrono::TimeDelta::hours(1), "set_at": now, "by": "x", "reason": "y" })
        })
        .collect();
    let store = state.path().join("overrides.json");
    let list = serde_json::json!({ "version": 1, "overrides": full });
    std::fs::write(&store, list.to_string()).expect("written");
    let refused = override_cli(
        &config,
        &["set", "f:live", "pin", "3", "--for", "1h", "--reason", "r"],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("500 overrides are in force"));
    // A store over its size limit cannot be read, and so cannot be cleared one by one.
    std::fs::write(&store, " ".repeat(2 * 1024 * 1024)).expect("written");
    assert_eq!(override_cli(&config, &["list"]).status.code(), Some(1));
    let cleared = override_cli(&config, &["clear", "--all"]);
    assert!(cleared.status.success(), "{}", text(&cleared.stderr));
    assert!(set(&config, "list").starts_with("no override in force"));
}

#[test]
fn a_floor_over_a_thousand_targets_reads_no_thousand_functions_first() {
    let targets: String = (0..1_000)
        .map(|index| {
            format!(
                "[[target]]\nfunction = \"f{index}\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n"
            )
        })
        .collect();
    let ([_state, _dir], endpoint, config) = store_config(&targets);
    let shown = set(&config, "set --all floor 1 --for 1h --reason r");
    assert!(
        shown.contains("reserved concurrency of the 1000 functions"),
        "{shown}"
    );
    assert!(endpoint.world().requests("GetFunction").is_empty());
}
