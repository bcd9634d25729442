//! The state directory treated as hostile ground, against the real binary and the local
//! endpoint: a link planted in it is replaced, never written through; `override set`s
//! at once lose nothing; a store that cannot be read at a start scales nothing in; an
//! override edited by hand beyond the limits is refused and said; a directory others
//! may write is warned of; a forged snapshot costs its bytes and no more.

#![allow(clippy::disallowed_methods)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::aws_endpoint::Endpoint;
use common::{Daemon, PUT, aws_config, daemon_settings, free_port, http_get, text, wait_for};

/// A config against `endpoint` keeping its state in `state`, with `targets`.
fn config_in(
    endpoint: &Endpoint,
    state: &Path,
    port: u16,
    targets: &str,
) -> (tempfile::TempDir, PathBuf) {
    let settings = format!(
        "{}\nstate_directory = \"{}\"",
        daemon_settings(port, "1s"),
        state.display()
    );
    aws_config(&endpoint.url, &settings, targets)
}

const TARGET: &str = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 1000\n\
     tracking = { metric = \"concurrency\", target = 0.7, scale_in_cooldown = \"0s\", scale_in_window = \"1m\", forecast = \"off\", choose_window = \"off\" }\n";

fn override_cli(config: &Path, args: &[&str]) -> std::process::Output {
    common::binary_for_aws()
        .arg("override")
        .args(args)
        .args(["--config", config.to_str().expect("utf-8 path")])
        .env("USER", "operator")
        .output()
        .expect("the binary runs")
}

fn secret(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, b"root's secret").expect("written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("0600");
    path
}

#[test]
fn a_link_planted_in_the_state_directory_is_replaced_never_written_through() {
    let endpoint = Endpoint::start();
    let state = tempfile::tempdir().expect("a state directory");
    let elsewhere = tempfile::tempdir().expect("another directory");
    let (_dir, config) = config_in(&endpoint, state.path(), free_port(), TARGET);
    // Where earlier builds wrote their temporary file.
    let temporary = secret(elsewhere.path(), "a");
    std::os::unix::fs::symlink(&temporary, state.path().join("overrides.json.tmp"))
        .expect("a link");
    let set = |config: &Path| {
        override_cli(
            config,
            &["set", "f:live", "pin", "5", "--for", "1h", "--reason", "x"],
        )
    };
    let output = set(&config);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        std::fs::read(&temporary).expect("readable"),
        b"root's secret"
    );
    let store_path = state.path().join("overrides.json");
    let kept = std::fs::symlink_metadata(&store_path).expect("there");
    assert!(kept.is_file(), "the store is a file of its own");
    assert_eq!(kept.permissions().mode() & 0o777, 0o600);
    let listed = override_cli(&config, &["list"]);
    assert!(text(&listed.stdout).contains("f:live  pin 5"));
    // A link in place of the store itself is not read through; clearing every
    // override replaces it.
    let store = secret(elsewhere.path(), "b");
    std::fs::remove_file(&store_path).expect("removed");
    std::os::unix::fs::symlink(&store, &store_path).expect("a link");
    let output = set(&config);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("is a link; it is not followed"));
    let cleared = override_cli(&config, &["clear", "--all"]);
    assert!(cleared.status.success(), "{}", text(&cleared.stderr));
    assert!(
        std::fs::symlink_metadata(&store_path)
            .expect("there")
            .is_file()
    );
    assert_eq!(std::fs::read(&store).expect("readable"), b"root's secret");

    // The daemon's snapshot, the same way.
    let snapshot = secret(elsewhere.path(), "c");
    std::os::unix::fs::symlink(&snapshot, state.path().join("snapshot.json.tmp")).expect("a link");
    let port = free_port();
    let (_dir, config) = config_in(&endpoint, state.path(), port, TARGET);
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    let saved = wait_for(Duration::from_secs(30), || {
        std::fs::symlink_metadata(state.path().join("snapshot.json"))
            .is_ok_and(|kept| kept.is_file())
    });
    assert!(saved, "{}", daemon.log());
    assert_eq!(
        std::fs::read(&snapshot).expect("readable"),
        b"root's secret"
    );
}

#[test]
fn override_sets_at_once_lose_nothing() {
    let endpoint = Endpoint::start();
    let state = tempfile::tempdir().expect("a state directory");
    let targets: String = (0..30)
        .map(|index| {
            format!(
                "[[target]]\nfunction = \"f{index}\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n"
            )
        })
        .collect();
    let (_dir, config) = config_in(&endpoint, state.path(), free_port(), &targets);
    let writers: Vec<_> = (0..5)
        .map(|writer| {
            let config = config.clone();
            std::thread::spawn(move || {
                (0..6)
                    .map(|set| {
                        let target = format!("f{}:live", writer * 6 + set);
                        let output = override_cli(
                            &config,
                            &[
                                "set", &target, "pin", "3", "--for", "1h", "--reason", "load",
                            ],
                        );
                        (target, output.status.success(), text(&output.stderr))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let sets: Vec<(String, bool, String)> = writers
        .into_iter()
        .flat_map(|writer| writer.join().expect("the writer ran"))
        .collect();
    let listed = text(&override_cli(&config, &["list"]).stdout);
    for (target, succeeded, stderr) in &sets {
        assert!(succeeded, "{target}: {stderr}");
        assert!(
            listed.contains(&format!("  {target}  pin 3")),
            "{target} was set, and lost:\n{listed}"
        );
    }
    assert_eq!(listed.lines().count(), 30, "{listed}");
}

#[test]
fn a_start_while_the_store_cannot_be_read_scales_nothing_in_until_it_can() {
    let endpoint = Endpoint::start();
    endpoint.world().set_config("f", "live", 20);
    endpoint.world().set_concurrency("f", "live", &[2.0], 2);
    let state = tempfile::tempdir().expect("a state directory");
    let store = state.path().join("overrides.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&store)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let port = free_port();
    let (_dir, config) = config_in(&endpoint, state.path(), port, TARGET);
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        endpoint.world().requests(PUT).is_empty(),
        "a start that could not read the overrides scaled in:\n{}",
        daemon.log()
    );
    let (_, status) = http_get(&daemon.address, "/status").expect("status answers");
    assert!(
        status.contains("pause scale-in") && status.contains("has not been read since the start"),
        "{status}"
    );
    // Once the store reads, the pause it may have held is known not to be there.
    std::fs::remove_file(&store).expect("removed");
    std::fs::write(&store, "{\"version\": 1, \"overrides\": []}").expect("written");
    daemon.wait_for_put(&endpoint, 3, Duration::from_secs(15));
}

#[test]
fn an_override_edited_beyond_the_limits_is_refused_and_said() {
    let endpoint = common::endpoint_wanting_100();
    let state = tempfile::tempdir().expect("a state directory");
    let now = chrono::Utc::now();
    let store = serde_json::json!({
        "version": 1,
        "overrides": [
            { "id": "forever", "scope": { "target": "f:live" }, "kind": "pin 50",
              "until": "9999-12-31T00:00:00Z", "set_at": now, "by": "mallory", "reason": "mine" },
            { "id": "unknown", "scope": "all", "kind": "hover 5",
              "until": now + chrono::TimeDelta::hours(1), "set_at": now, "by": "x", "reason": "y" },
        ]
    });
    std::fs::write(state.path().join("overrides.json"), store.to_string()).expect("written");
    let port = free_port();
    let (_dir, config) = config_in(&endpoint, state.path(), port, TARGET);
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_for_put(&endpoint, 100, Duration::from_secs(20));
    assert!(
        common::puts_of(&endpoint, 50).is_empty(),
        "the pin was applied"
    );
    let (_, activities) = http_get(&daemon.address, "/activities").expect("activities answer");
    assert!(
        activities.contains("refused: pin 50 ends more than 30 days ahead")
            && activities.contains("refused: `hover 5` is not an override"),
        "{activities}"
    );
    let listed = text(&override_cli(&config, &["list"]).stdout);
    assert!(
        listed.contains("(not applied: pin 50 ends more than 30 days ahead")
            && listed.contains("(not applied: `hover 5` is not an override"),
        "{listed}"
    );
}

#[test]
fn check_and_the_daemon_warn_of_a_state_directory_others_may_write() {
    let endpoint = Endpoint::start();
    let state = tempfile::tempdir().expect("a state directory");
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o777)).expect("0777");
    let port = free_port();
    let (_dir, config) = config_in(&endpoint, state.path(), port, TARGET);
    let checked = common::run(&["check", "--config", config.to_str().expect("utf-8")]);
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    assert!(
        text(&checked.stderr).contains("may be written by others than its owner")
            && text(&checked.stderr).contains("mode 777"),
        "{}",
        text(&checked.stderr)
    );
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    assert!(
        daemon
            .log()
            .contains("others than its owner may write the state directory"),
        "{}",
        daemon.log()
    );
}

/// The daemon's peak resident memory so far, in KiB.
fn peak_kib(daemon: &Daemon) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id()))
        .expect("the daemon runs")
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_forged_snapshot_costs_its_bytes_and_no_more_and_one_from_the_future_is_refused() {
    let endpoint = common::endpoint_wanting_100();
    let state = tempfile::tempdir().expect("a state directory");
    // 15 MiB of made-up functions, for other targets.
    let functions: Vec<serde_json::Value> = (0..118_000)
        .map(|index| {
            serde_json::json!({ "function": format!("made-up-{index}"), "configs": [
                { "qualifier": "live", "requested": 5, "status": "READY", "last_modified": null }
            ], "weighted": null })
        })
        .collect();
    let forged = serde_json::json!({
        "version": 1, "fingerprint": "0000000000000000", "written_at": chrono::Utc::now(),
        "functions": functions,
    });
    let bytes = forged.to_string();
    assert!(
        bytes.len() > 14 * 1024 * 1024 && bytes.len() < 16 * 1024 * 1024,
        "{} bytes",
        bytes.len()
    );
    std::fs::write(state.path().join("snapshot.json"), bytes).expect("written");
    let port = free_port();
    let (_dir, config) = config_in(&endpoint, state.path(), port, TARGET);
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_for_put(&endpoint, 100, Duration::from_secs(20));
    assert!(
        daemon.log().contains("written for other targets"),
        "{}",
        daemon.log()
    );
    let peak = peak_kib(&daemon);
    assert!(peak < 64 * 1024, "peak resident {peak} KiB");
    drop(daemon);

    // Dated in 2100, for these very targets.
    let parsed = pc_autoscaler::config::load(&config).expect("the config is valid");
    let ahead = serde_json::json!({
        "version": 1,
        "fingerprint": pc_autoscaler::runtime::state::snapshot::fingerprint(&parsed.targets),
        "written_at": "2100-01-01T00:00:00Z",
        "functions": [],
    });
    std::fs::write(state.path().join("snapshot.json"), ahead.to_string()).expect("written");
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    assert!(
        wait_for(Duration::from_secs(20), || daemon
            .log()
            .contains("ahead of this host's clock")),
        "{}",
        daemon.log()
    );
}
