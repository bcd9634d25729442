//! The deployment files are checked by the tools that consume them: systemd's own
//! verifier and security scorer for the unit, promtool for the scrape config and the
//! alert rules (with their unit tests), and the container files against each other.

mod common;

use std::process::Command;

use common::{repo_file, text};

fn run_tool(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("{program} must be installed (scripts/test.sh installs it): {error}")
        })
}

/// The unit with `ExecStart` pointing at the binary under test, so the verifier finds it.
fn unit_under_test() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let unit = std::fs::read_to_string(repo_file("systemd/pc-autoscaler.service"))
        .expect("the unit exists");
    let path = dir.path().join("pc-autoscaler.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/pc-autoscaler",
            env!("CARGO_BIN_EXE_pc-autoscaler"),
        ),
    )
    .expect("write the unit");
    (dir, path.display().to_string())
}

#[test]
fn the_systemd_unit_verifies() {
    let (_dir, unit) = unit_under_test();
    let output = run_tool("systemd-analyze", &["verify", &unit]);
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let original =
        std::fs::read_to_string(repo_file("systemd/pc-autoscaler.service")).expect("the unit");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "/etc/pc-autoscaler/config.toml",
    ] {
        assert!(original.contains(line), "the unit lacks {line}");
    }
}

#[test]
fn the_systemd_unit_exposure_is_at_most_2() {
    let (_dir, unit) = unit_under_test();
    let output = run_tool("systemd-analyze", &["security", "--offline=true", &unit]);
    let report = text(&output.stdout);
    let exposure: f64 = report
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for pc-autoscaler.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}{}", text(&output.stderr)));
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{report}");
}

#[test]
fn prometheus_files_pass_promtool_and_the_alert_tests() {
    let dir = repo_file("deploy/prometheus");
    let path = |name: &str| dir.join(name).display().to_string();
    for args in [
        vec!["check", "config", &path("scrape.yml")],
        vec!["check", "rules", &path("alerts.yml")],
        vec!["test", "rules", &path("alerts_test.yml")],
    ] {
        let output = run_tool("promtool", &args);
        assert!(
            output.status.success(),
            "promtool {args:?}:\n{}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }
}

#[test]
fn the_container_files_agree_on_port_config_path_and_user() {
    let dockerfile = std::fs::read_to_string(repo_file("Dockerfile")).expect("the Dockerfile");
    let pod =
        std::fs::read_to_string(repo_file("deploy/kubernetes/pod.yaml")).expect("the pod manifest");
    for (what, needle) in [
        ("port", "9464"),
        ("config path", "/etc/pc-autoscaler/config.toml"),
        ("user", "65532"),
    ] {
        assert!(
            dockerfile.contains(needle),
            "the Dockerfile lacks the {what} {needle}"
        );
        assert!(
            pod.contains(needle)
                || (what == "config path" && pod.contains("mountPath: /etc/pc-autoscaler")),
            "the pod lacks the {what} {needle}"
        );
    }
    assert!(
        dockerfile.contains("x86_64-unknown-linux-musl"),
        "the image carries a static musl build"
    );
    for probe in ["path: /healthz", "path: /readyz"] {
        assert!(pod.contains(probe), "the pod lacks the probe {probe}");
    }
    // The pod's embedded config is a valid pc-autoscaler config.
    let embedded: String = pod
        .split("config.toml: |\n")
        .nth(1)
        .and_then(|rest| rest.split("\n---").next())
        .expect("the ConfigMap's config.toml")
        .lines()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let (_dir, path) = common::write_config("pod.toml", &embedded);
    let output = common::run(&["check", "--config", path.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}
