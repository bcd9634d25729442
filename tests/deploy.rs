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
            "/usr/bin/pc-autoscaler",
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
        "ExecStartPre=/usr/bin/pc-autoscaler check --config /etc/pc-autoscaler/config.toml",
        "ExecReload=/usr/bin/pc-autoscaler check --config /etc/pc-autoscaler/config.toml\nExecReload=/bin/kill -HUP $MAINPID",
        "User=pc-autoscaler",
    ] {
        assert!(original.contains(line), "the unit lacks {line}");
    }
}

#[test]
fn the_systemd_unit_bounds_start_stop_and_open_files() {
    let unit = std::fs::read_to_string(repo_file("systemd/pc-autoscaler.service"))
        .expect("the unit exists");
    for setting in [
        "TimeoutStartSec=",
        "TimeoutStopSec=",
        "LimitNOFILE=",
        "WatchdogSec=",
    ] {
        assert!(unit.contains(setting), "the unit lacks {setting}");
    }
    // The stop timeout covers the default grace (20 s); a longer configured grace is
    // asked for by the daemon itself (EXTEND_TIMEOUT_USEC, tested in tests/daemon.rs).
    let stop: u64 = unit
        .lines()
        .find_map(|line| line.strip_prefix("TimeoutStopSec="))
        .and_then(|value| value.trim_end_matches('s').parse().ok())
        .expect("TimeoutStopSec in seconds");
    let default_grace = pc_autoscaler::config::DaemonSettings::default().shutdown_grace;
    assert!(stop > default_grace.as_secs(), "TimeoutStopSec={stop}s");
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
        dockerfile.contains("FROM scratch") && dockerfile.contains("target/package/image-root"),
        "the image is the static build staged by scripts/package.sh, on nothing else"
    );
    assert!(
        pod.contains("livenessProbe:\n            httpGet: { path: /healthz"),
        "the liveness probe is /healthz"
    );
    // Its own Deployment of two copies, never a sidecar that the app's replica count
    // would multiply; readiness ("able to take over") gates only its own rollout.
    assert!(pod.contains("kind: Deployment") && pod.contains("replicas: 2"));
    assert!(pod.contains("readinessProbe:\n            httpGet: { path: /readyz"));
    let images: Vec<&str> = pod
        .lines()
        .filter(|line| line.trim_start().starts_with("image:"))
        .collect();
    assert_eq!(images.len(), 1, "no app container rides along: {images:?}");
    assert!(images[0].contains("pc-autoscaler"));
    assert!(pod.contains("[leader]"), "the copies elect a leader");
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

/// The image's command, as its `ENTRYPOINT` and `CMD` lines write it.
fn image_command(dockerfile: &str) -> Vec<String> {
    let json_line = |prefix: &str| -> Vec<String> {
        let line = dockerfile
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("the Dockerfile has {prefix}"));
        serde_json::from_str(line).expect("exec form: a JSON array")
    };
    let mut command = json_line("ENTRYPOINT ");
    command.extend(json_line("CMD "));
    command
}

#[test]
fn the_image_bakes_no_config_refuses_to_start_without_one_and_listens_for_its_probes() {
    let dockerfile = std::fs::read_to_string(repo_file("Dockerfile")).expect("the Dockerfile");
    assert!(
        !dockerfile.contains("COPY config"),
        "no example config is baked into the image"
    );
    assert!(dockerfile.contains("ENV PC_AUTOSCALER_LISTEN=0.0.0.0:9464"));
    let command = image_command(&dockerfile);
    assert_eq!(command[0], "/usr/bin/pc-autoscaler");
    // The image's command, as the image would run it with nothing mounted: the config
    // path does not exist, so it refuses to start.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let args: Vec<String> = command[1..]
        .iter()
        .map(|arg| {
            arg.replace(
                "/etc/pc-autoscaler",
                &dir.path().join("etc").display().to_string(),
            )
        })
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_pc-autoscaler"))
        .args(&args)
        .env("PC_AUTOSCALER_LISTEN", "127.0.0.1:0")
        .env_remove("PC_AUTOSCALER_CONFIG")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("cannot read config file"));
}

#[test]
fn the_iam_policy_grants_what_the_daemon_calls_and_only_on_placeholders() {
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("config/iam-policy.json")).expect("the IAM policy"),
    )
    .expect("the IAM policy is JSON");
    let statements = policy["Statement"].as_array().expect("statements");
    let mut granted = Vec::new();
    for statement in statements {
        let actions: Vec<&str> = statement["Action"]
            .as_array()
            .expect("a list of actions")
            .iter()
            .map(|action| action.as_str().expect("text"))
            .collect();
        let resources: Vec<&str> = match &statement["Resource"] {
            serde_json::Value::String(one) => vec![one.as_str()],
            many => many
                .as_array()
                .expect("a resource list")
                .iter()
                .map(|resource| resource.as_str().expect("text"))
                .collect(),
        };
        for action in &actions {
            assert!(!action.contains('*'), "wildcard action {action}");
            // Application Auto Scaling's scalable targets are not named by ARN.
            let account_wide = [
                "lambda:GetAccountSettings",
                "cloudwatch:GetMetricData",
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:RegisterScalableTarget",
            ];
            if !account_wide.contains(action) {
                for resource in &resources {
                    assert!(
                        resource
                            .starts_with("arn:aws:lambda:REGION:ACCOUNT_ID:function:FUNCTION_NAME"),
                        "{action} on {resource}: function actions are scoped to placeholders a user must edit"
                    );
                }
            }
        }
        granted.extend(actions);
    }
    // Selectors' discovery (`ListFunctions`, `GetResources`) is granted by
    // config/iam-policy-fleet-member.json, which tests/accounts.rs checks; what only
    // `migrate` reads, by config/iam-policy-audit.json (tests/migrate.rs).
    let discovery = [
        "ListFunctions",
        "GetResources",
        "DescribeScalingPolicies",
        "DescribeScheduledActions",
    ];
    for api in pc_autoscaler::metrics::APIS
        .into_iter()
        .filter(|api| !discovery.contains(api))
    {
        let action = format!("{}:{api}", common_service(api));
        assert!(
            granted.contains(&action.as_str()),
            "the daemon calls {api} but the policy lacks {action}"
        );
    }
}

/// The IAM service prefix of an API `Instrumented` names.
fn common_service(api: &str) -> &'static str {
    match api {
        "GetMetricData" => "cloudwatch",
        "GetResources" => "tag",
        api if api.contains("Scal") => "application-autoscaling",
        _ => "lambda",
    }
}
