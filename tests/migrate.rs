//! From Application Auto Scaling (AAS) to pc-autoscaler and back, over the wire: AAS
//! served by moto (which takes the `lambda` namespace, its dimension, target tracking,
//! step scaling, scheduled actions with time zones and start and end times, and
//! suspended states), Lambda and CloudWatch by the local endpoint, each reached through
//! the SDK's per-service endpoint variables.
//!
//! The sample account has 10 functions: target tracking at several values, scheduled
//! actions in New York and Berlin (one with a start and an end, one limited to a year),
//! one `at()`, one customized-metric policy and one step policy. `migrate` writes a
//! config that `check` accepts; each rule it wrote fires, over a year and across both
//! clock changes of each zone, at the instants and with the bounds that an evaluator of
//! AAS's documented cron fields (written here, apart from `migrate`) gives its action.

#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use aws_sdk_applicationautoscaling as aas;
use aws_sdk_applicationautoscaling::types::{
    CustomizedMetricSpecification, MetricStatistic, PolicyType, PredefinedMetricSpecification,
    ScalableDimension, ScalableTargetAction, ServiceNamespace, StepAdjustment,
    StepScalingPolicyConfiguration, SuspendedState, TargetTrackingScalingPolicyConfiguration,
};
use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use common::aws_endpoint::Endpoint;
use common::moto::Moto;
use common::{Daemon, binary_for_aws, daemon_settings, free_port, http_get, text, wait_for};

const UTILIZATION: &str = "LambdaProvisionedConcurrencyUtilization";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn client(url: &str) -> aas::Client {
    let credentials =
        aws_credential_types::Credentials::new("AKIDTEST", "test-secret", None, None, "test");
    let config = aas::config::Builder::new()
        .behavior_version(aas::config::BehaviorVersion::latest())
        .region(aas::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(credentials)
        .build();
    aas::Client::from_conf(config)
}

fn resource(function: &str) -> String {
    format!("function:{function}:live")
}

async fn register(client: &aas::Client, function: &str, min: i32, max: i32) {
    client
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Lambda)
        .resource_id(resource(function))
        .scalable_dimension(ScalableDimension::LambdaFunctionProvisionedConcurrency)
        .min_capacity(min)
        .max_capacity(max)
        .send()
        .await
        .expect("moto registers a Lambda scalable target");
}

async fn policy(
    client: &aas::Client,
    function: &str,
    name: &str,
    configuration: TargetTrackingScalingPolicyConfiguration,
) {
    client
        .put_scaling_policy()
        .service_namespace(ServiceNamespace::Lambda)
        .resource_id(resource(function))
        .scalable_dimension(ScalableDimension::LambdaFunctionProvisionedConcurrency)
        .policy_name(name)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(configuration)
        .send()
        .await
        .expect("moto takes a target-tracking policy");
}

fn utilization(
    value: f64,
) -> aws_sdk_applicationautoscaling::types::builders::TargetTrackingScalingPolicyConfigurationBuilder
{
    TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(value)
        .predefined_metric_specification(
            PredefinedMetricSpecification::builder()
                .predefined_metric_type(UTILIZATION.into())
                .build()
                .expect("a predefined metric"),
        )
}

/// A scheduled action as the sample writes it.
#[derive(Debug, Clone)]
struct Action {
    function: &'static str,
    name: &'static str,
    schedule: &'static str,
    zone: &'static str,
    window: (Option<&'static str>, Option<&'static str>),
    min: u32,
    max: u32,
}

const ACTIONS: [Action; 7] = [
    Action {
        function: "f01",
        name: "weekday-morning",
        schedule: "cron(0 8 ? * MON-FRI *)",
        zone: "America/New_York",
        window: (None, None),
        min: 10,
        max: 50,
    },
    Action {
        function: "f01",
        name: "weekday-evening",
        schedule: "cron(0 20 ? * MON-FRI *)",
        zone: "America/New_York",
        window: (None, None),
        min: 1,
        max: 50,
    },
    Action {
        function: "f02",
        name: "summer",
        schedule: "cron(30 9 * * ? *)",
        zone: "Europe/Berlin",
        window: (Some("2027-03-01T00:00:00Z"), Some("2027-11-30T00:00:00Z")),
        min: 5,
        max: 30,
    },
    Action {
        function: "f04",
        name: "launch",
        schedule: "at(2027-01-15T06:00:00)",
        zone: "America/New_York",
        window: (None, None),
        min: 20,
        max: 40,
    },
    Action {
        function: "f08",
        name: "berlin-open",
        schedule: "cron(0 7 ? * 2-6 *)",
        zone: "Europe/Berlin",
        window: (None, None),
        min: 3,
        max: 9,
    },
    Action {
        function: "f08",
        name: "berlin-close",
        schedule: "cron(15 19 ? * 2-6 *)",
        zone: "Europe/Berlin",
        window: (None, None),
        min: 0,
        max: 9,
    },
    Action {
        function: "f09",
        name: "first-of-month-2027",
        schedule: "cron(0 12 1 * ? 2027)",
        zone: "UTC",
        window: (None, None),
        min: 2,
        max: 8,
    },
];

fn instant(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 time")
}

async fn scheduled(client: &aas::Client, action: &Action) {
    let time = |text: &str| aws_smithy_types::DateTime::from_secs(instant(text).timestamp());
    client
        .put_scheduled_action()
        .service_namespace(ServiceNamespace::Lambda)
        .resource_id(resource(action.function))
        .scalable_dimension(ScalableDimension::LambdaFunctionProvisionedConcurrency)
        .scheduled_action_name(action.name)
        .schedule(action.schedule)
        .timezone(action.zone)
        .set_start_time(action.window.0.map(time))
        .set_end_time(action.window.1.map(time))
        .scalable_target_action(
            ScalableTargetAction::builder()
                .min_capacity(action.min as i32)
                .max_capacity(action.max as i32)
                .build(),
        )
        .send()
        .await
        .expect("moto takes a scheduled action");
}

/// The sample account's AAS settings.
async fn sample(client: &aas::Client) {
    for (index, function) in [
        "f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09", "f10",
    ]
    .into_iter()
    .enumerate()
    {
        register(client, function, 1, 10 * (index as i32 + 1)).await;
    }
    policy(
        client,
        "f01",
        "track-half",
        utilization(0.5).build().expect("a policy"),
    )
    .await;
    policy(
        client,
        "f02",
        "track-70",
        utilization(0.7)
            .scale_in_cooldown(600)
            .scale_out_cooldown(60)
            .build()
            .expect("a policy"),
    )
    .await;
    policy(
        client,
        "f03",
        "track-90",
        utilization(0.9)
            .disable_scale_in(true)
            .build()
            .expect("a policy"),
    )
    .await;
    policy(
        client,
        "f09",
        "track-60",
        utilization(0.6).build().expect("a policy"),
    )
    .await;
    policy(
        client,
        "f10",
        "track-75",
        utilization(0.75).build().expect("a policy"),
    )
    .await;
    let custom = CustomizedMetricSpecification::builder()
        .namespace("MyApp")
        .metric_name("QueueDepth")
        .statistic(MetricStatistic::Average)
        .build();
    policy(
        client,
        "f05",
        "queue-depth",
        TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(100.0)
            .customized_metric_specification(custom)
            .build()
            .expect("a policy"),
    )
    .await;
    client
        .put_scaling_policy()
        .service_namespace(ServiceNamespace::Lambda)
        .resource_id(resource("f06"))
        .scalable_dimension(ScalableDimension::LambdaFunctionProvisionedConcurrency)
        .policy_name("steps")
        .policy_type(PolicyType::StepScaling)
        .step_scaling_policy_configuration(
            StepScalingPolicyConfiguration::builder()
                .adjustment_type(
                    aws_sdk_applicationautoscaling::types::AdjustmentType::ChangeInCapacity,
                )
                .step_adjustments(
                    StepAdjustment::builder()
                        .metric_interval_lower_bound(0.0)
                        .scaling_adjustment(2)
                        .build()
                        .expect("a step"),
                )
                .build(),
        )
        .send()
        .await
        .expect("moto takes a step policy");
    for action in &ACTIONS {
        scheduled(client, action).await;
    }
}

/// The binary against `endpoint` for Lambda and CloudWatch and `moto` for AAS.
fn binary(endpoint: &Endpoint, moto: &Moto) -> std::process::Command {
    let mut command = binary_for_aws();
    command
        .env("AWS_ENDPOINT_URL", &endpoint.url)
        .env("AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING", &moto.url);
    command
}

/// When AAS fires `action` from `from` to `to`: each minute whose wall-clock time in
/// the action's zone matches its six cron fields (minutes, hours, day of month, month,
/// day of week 1–7 from Sunday or SUN–SAT, year), or its `at()`, within its start and
/// end. Written from AAS's documentation, apart from `migrate`.
fn aas_fires(action: &Action, (from, to): (DateTime<Utc>, DateTime<Utc>)) -> Vec<DateTime<Utc>> {
    let zone: Tz = action.zone.parse().expect("a zone");
    let (start, end) = (action.window.0.map(instant), action.window.1.map(instant));
    let within = |at: DateTime<Utc>| {
        at >= from
            && at < to
            && start.is_none_or(|start| at >= start)
            && end.is_none_or(|end| at <= end)
    };
    if let Some(at) = action
        .schedule
        .strip_prefix("at(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let local = NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S").expect("an at()");
        let at = zone
            .from_local_datetime(&local)
            .single()
            .expect("the sample's at() is no clock change")
            .with_timezone(&Utc);
        return [at].into_iter().filter(|at| within(*at)).collect();
    }
    let inner = action
        .schedule
        .strip_prefix("cron(")
        .and_then(|rest| rest.strip_suffix(')'))
        .expect("a cron()");
    let fields: Vec<&str> = inner.split_whitespace().collect();
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let mut fires = Vec::new();
    let mut minute = from;
    while minute < to {
        let local = minute.with_timezone(&zone);
        let matches = matches_field(fields[0], local.minute(), &[], 0)
            && matches_field(fields[1], local.hour(), &[], 0)
            && matches_field(fields[2], local.day(), &[], 1)
            && matches_field(fields[3], local.month(), &MONTHS, 1)
            && matches_field(
                fields[4],
                local.weekday().num_days_from_sunday() + 1,
                &DAYS,
                1,
            )
            && matches_field(fields[5], local.year() as u32, &[], 0);
        if matches && within(minute) {
            fires.push(minute);
        }
        minute += TimeDelta::minutes(1);
    }
    fires
}

/// Whether `value` is in a cron field: `*`, `?`, numbers, names (`names[0]` is
/// `first`), ranges, lists and steps.
fn matches_field(field: &str, value: u32, names: &[&str], first: u32) -> bool {
    let number = |text: &str| {
        names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
            .map(|index| index as u32 + first)
            .or_else(|| text.parse().ok())
            .expect("a number or a name")
    };
    field.split(',').any(|part| {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().expect("a step")),
            None => (part, 1),
        };
        let (low, high) = match range {
            "*" | "?" => (0, u32::MAX),
            range => match range.split_once('-') {
                Some((low, high)) => (number(low), number(high)),
                None => (number(range), number(range)),
            },
        };
        value >= low && value <= high && (value - low.min(value)).is_multiple_of(step)
    })
}

/// Every instant from `from` to `to` at which the migrated rule named `action.name`
/// starts, with the bounds it sets, from the library's own schedule.
fn rule_fires(
    config: &pc_autoscaler::config::Config,
    action: &Action,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Vec<(DateTime<Utc>, u32, u32)> {
    let target = config
        .targets
        .iter()
        .find(|target| target.function.name == action.function)
        .unwrap_or_else(|| panic!("{} is carried over", action.function));
    let rule = target
        .schedules
        .iter()
        .find(|rule| rule.name == action.name)
        .unwrap_or_else(|| panic!("{} has the rule {}", action.function, action.name));
    let mut alone = target.clone();
    alone.schedules = vec![rule.clone()];
    let mut fires = Vec::new();
    let mut cursor = from - TimeDelta::seconds(1);
    while let Some(at) = pc_autoscaler::policy::schedule::next_boundary(&alone, cursor) {
        if at >= to {
            break;
        }
        let bounds = pc_autoscaler::policy::schedule::bounds_at(&alone, at);
        fires.push((at, bounds.min, bounds.max));
        cursor = at;
    }
    fires
}

#[test]
fn migrate_carries_the_sample_over_exactly_and_check_accepts_it() {
    let moto = Moto::start();
    let endpoint = Endpoint::start();
    runtime().block_on(sample(&client(&moto.url)));
    {
        // Two days of history for two of the tracked targets, a daily wave.
        let mut world = endpoint.world();
        let start = Utc::now().timestamp() / 60 * 60 - 2 * 24 * 3600;
        for function in ["f01", "f02"] {
            world.function(function);
            let wave = (0..2 * 24 * 60).map(|minute| {
                let hour = f64::from(minute % (24 * 60)) / 60.0;
                20.0 + 15.0 * (hour / 24.0 * std::f64::consts::TAU).sin()
            });
            world.set_series("ConcurrentExecutions", (function, "live"), start, wave);
        }
        for index in 3..=10 {
            world.function(&format!("f{index:02}"));
        }
    }
    // The config that names the state directory the takeover records go to.
    let dir = tempfile::tempdir().expect("a directory");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("the state directory");
    let base = dir.path().join("base.toml");
    std::fs::write(
        &base,
        format!("[daemon]\nstate_directory = \"{}\"\n", state.display()),
    )
    .expect("the base config");
    let out = dir.path().join("migrated.toml");
    let output = binary(&endpoint, &moto)
        .args([
            "migrate",
            "--region",
            "us-east-1",
            "--days",
            "2",
            "--read-rate",
            "1000",
        ])
        .args(["--config", base.to_str().expect("a path")])
        .args(["--out", out.to_str().expect("a path")])
        .output()
        .expect("migrate runs");
    let report = text(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        text(&output.stderr)
    );
    assert!(
        report.contains("10 targets from Application Auto Scaling, 0 left out"),
        "{report}"
    );
    // The replay of the targets with history: AAS's bill and spill beside the config's.
    for function in ["f01:live", "f02:live"] {
        let line = report
            .lines()
            .find(|line| line.starts_with(function))
            .unwrap_or_else(|| panic!("{function} replayed:\n{report}"));
        assert_eq!(line.matches('%').count(), 2, "{line}");
    }
    let written = std::fs::read_to_string(&out).expect("the config is written");

    // What was carried, and what is a comment saying why not.
    for carried in [
        "tracking = { metric = \"utilization\", target = 0.5 }",
        "tracking = { metric = \"utilization\", target = 0.7, scale_in_cooldown = \"600s\", scale_out_cooldown = \"60s\" }",
        "disable_scale_in = true",
        "timezone = \"America/New_York\"",
        "timezone = \"Europe/Berlin\"",
        "at = \"2027-01-15T06:00:00\"",
        "start = \"2027-03-01T00:00:00Z\"\nend = \"2027-11-30T00:00:00Z\"",
        "take_over_aas = true",
    ] {
        assert!(
            written.contains(carried),
            "{carried} missing in:\n{written}"
        );
    }
    for comment in [
        "# policy `queue-depth` is not carried over: it tracks MyApp/QueueDepth",
        "# step scaling policy `steps`",
    ] {
        assert!(
            written.contains(comment),
            "{comment} missing in:\n{written}"
        );
    }

    // `check` accepts it as written.
    let check = binary(&endpoint, &moto)
        .args(["check", "--config", out.to_str().expect("a path")])
        .output()
        .expect("check runs");
    assert!(check.status.success(), "{}\n{written}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains("valid, 10 targets"),
        "{}",
        text(&check.stdout)
    );

    // Each rule fires when its action does, with its bounds, over 2027: both clock
    // changes of New York (14 March, 7 November) and of Berlin (28 March, 31 October).
    let config = pc_autoscaler::config::parse(&written, &out).expect("it parses");
    let year = (
        instant("2027-01-01T00:00:00Z"),
        instant("2028-01-01T00:00:00Z"),
    );
    for action in &ACTIONS {
        let expected: Vec<(DateTime<Utc>, u32, u32)> = aas_fires(action, year)
            .into_iter()
            .map(|at| (at, action.min, action.max))
            .collect();
        assert!(!expected.is_empty(), "{} fires in 2027", action.name);
        let fires = rule_fires(&config, action, year);
        assert_eq!(fires, expected, "{} ({})", action.name, action.schedule);
    }
    // The clock changes shift the UTC instants: 08:00 in New York is 13:00 UTC in
    // winter and 12:00 UTC in summer.
    let morning = aas_fires(&ACTIONS[0], year);
    let hours: std::collections::BTreeSet<u32> = morning.iter().map(|at| at.hour()).collect();
    assert_eq!(hours, [12, 13].into_iter().collect());
}

/// A config for the daemon against `endpoint` (no `[aws] endpoint_url`: the SDK's
/// per-service variables route AAS to moto), with `target`'s extra keys.
fn daemon_config(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    let text = format!(
        "[aws]\nregion = \"us-east-1\"\ntimeout = \"2s\"\n\
         [daemon]\n{}\nstate_directory = \"{}\"\nactivity_log = \"{}\"\n\
         [[target]]\nfunction = \"f01\"\nqualifier = \"live\"\nmin = 20\nmax = 100\n{extra}",
        daemon_settings(port, "1s"),
        dir.join("state").display(),
        dir.join("activities.jsonl").display(),
    );
    std::fs::create_dir_all(dir.join("state")).expect("the state directory");
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("the config is written");
    path
}

fn start(endpoint: &Endpoint, moto: &Moto, config: &std::path::Path, port: u16) -> Daemon {
    let address = format!("127.0.0.1:{port}");
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.url.as_str()),
        (
            "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING",
            moto.url.as_str(),
        ),
    ];
    let mut daemon = Daemon::start(config, &address, &env);
    daemon.wait_ready();
    daemon
}

/// The scalable target of f01 as AAS describes it.
fn described(client: &aas::Client) -> aas::types::ScalableTarget {
    runtime().block_on(async {
        let output = client
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Lambda)
            .resource_ids(resource("f01"))
            .send()
            .await
            .expect("moto describes");
        output.scalable_targets()[0].clone()
    })
}

fn status(daemon: &Daemon) -> String {
    http_get(&daemon.address, "/status")
        .map(|(_, body)| body)
        .unwrap_or_default()
}

#[test]
fn a_target_aas_manages_is_left_alone_taken_over_when_asked_and_handed_back_exactly() {
    let moto = Moto::start();
    let endpoint = Endpoint::start();
    endpoint.world().set_config("f01", "live", 5);
    let aas = client(&moto.url);
    // AAS scales it dynamically; its scheduled scaling is suspended, explicitly.
    runtime().block_on(async {
        register(&aas, "f01", 1, 100).await;
        aas.register_scalable_target()
            .service_namespace(ServiceNamespace::Lambda)
            .resource_id(resource("f01"))
            .scalable_dimension(ScalableDimension::LambdaFunctionProvisionedConcurrency)
            .suspended_state(
                SuspendedState::builder()
                    .dynamic_scaling_in_suspended(false)
                    .dynamic_scaling_out_suspended(false)
                    .scheduled_scaling_suspended(true)
                    .build(),
            )
            .send()
            .await
            .expect("a suspended state");
    });
    let before = described(&aas);
    let dir = tempfile::tempdir().expect("a directory");
    let port = free_port();

    // Without take_over_aas: decided, reported, never written.
    let config = daemon_config(dir.path(), port, "");
    let daemon = start(&endpoint, &moto, &config, port);
    let left = wait_for(Duration::from_secs(15), || {
        status(&daemon).contains("managed by Application Auto Scaling")
    });
    assert!(left, "{}\n{}", status(&daemon), daemon.log());
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        endpoint.world().requests(common::PUT).is_empty(),
        "no write while AAS manages it"
    );
    assert_eq!(
        daemon.metric("pc_autoscaler_target_handover{state=\"left_to_aas\",target=\"f01:live\"}"),
        Some(1.0)
    );
    assert_eq!(described(&aas), before, "nothing of AAS changed");
    drop(daemon);

    // With it: the state recorded, all of AAS's scaling suspended, then the write.
    let config = daemon_config(dir.path(), port, "take_over_aas = true\n");
    let daemon = start(&endpoint, &moto, &config, port);
    daemon.wait_for_put(&endpoint, 20, Duration::from_secs(20));
    let suspended = described(&aas)
        .suspended_state()
        .cloned()
        .expect("a suspended state");
    assert_eq!(
        (
            suspended.dynamic_scaling_in_suspended(),
            suspended.dynamic_scaling_out_suspended(),
            suspended.scheduled_scaling_suspended()
        ),
        (Some(true), Some(true), Some(true))
    );
    let journal = std::fs::read_to_string(dir.path().join("activities.jsonl")).unwrap_or_default();
    let position = |kind: &str| {
        journal
            .lines()
            .position(|line| line.contains(&format!("\"kind\":\"{kind}\"")))
            .unwrap_or_else(|| panic!("no {kind} activity in:\n{journal}"))
    };
    assert!(
        position("handover") < position("write"),
        "the suspension comes first:\n{journal}"
    );
    assert_eq!(
        daemon.metric("pc_autoscaler_target_handover{state=\"taken_over\",target=\"f01:live\"}"),
        Some(1.0)
    );
    drop(daemon);

    // Rolled back: AAS as it was, byte for byte; the daemon leaves the target alone.
    let rollback = binary(&endpoint, &moto)
        .args([
            "migrate",
            "--rollback",
            "--config",
            config.to_str().expect("a path"),
        ])
        .output()
        .expect("rollback runs");
    assert!(
        rollback.status.success(),
        "{}\n{}",
        text(&rollback.stdout),
        text(&rollback.stderr)
    );
    assert!(
        text(&rollback.stdout).contains("f01:live (base): restored"),
        "{}",
        text(&rollback.stdout)
    );
    assert_eq!(format!("{:?}", described(&aas)), format!("{before:?}"));
    let puts = endpoint.world().requests(common::PUT).len();
    endpoint.world().set_config("f01", "live", 5);
    let daemon = start(&endpoint, &moto, &config, port);
    let handed_back = wait_for(Duration::from_secs(15), || {
        status(&daemon).contains("handed back")
    });
    assert!(handed_back, "{}", status(&daemon));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        endpoint.world().requests(common::PUT).len(),
        puts,
        "no write after the rollback"
    );
    assert_eq!(
        format!("{:?}", described(&aas)),
        format!("{before:?}"),
        "not taken again"
    );
}

#[test]
fn a_target_someone_else_keeps_lowering_is_reported_contested_and_only_raised() {
    let endpoint = Endpoint::start();
    endpoint.world().set_config("f", "live", 5);
    let port = free_port();
    let settings = format!(
        "{}\ndrift_scan_period = \"1s\"",
        daemon_settings(port, "1s")
    );
    let targets = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 5\nmax = 50\n";
    let (_dir, config) = common::aws_config(&endpoint.url, &settings, targets);
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    // Another writer sets 2 again and again; the daemon raises it back each time.
    let contested = wait_for(Duration::from_secs(30), || {
        if endpoint
            .world()
            .function("f")
            .configs
            .get("live")
            .is_some_and(|config| config.requested == 5)
        {
            endpoint.world().set_config("f", "live", 2);
        }
        std::thread::sleep(Duration::from_millis(500));
        daemon.metric("pc_autoscaler_target_contested{target=\"f:live\"}") == Some(1.0)
    });
    assert!(contested, "{}", daemon.log());
    let activities = http_get(&daemon.address, "/activities?target=f:live")
        .map(|(_, body)| body)
        .unwrap_or_default();
    assert!(
        activities.contains("\"kind\":\"contested\""),
        "{activities}"
    );
    assert!(
        activities.contains("5 → 2"),
        "the values seen, with their times: {activities}"
    );
    // Raised by the other writer: never lowered while contested.
    let puts = endpoint.world().requests(common::PUT).len();
    endpoint.world().set_config("f", "live", 9);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        endpoint.world().requests(common::PUT).len(),
        puts,
        "{}",
        daemon.log()
    );
    assert!(status(&daemon).contains("contested"), "{}", status(&daemon));
}

#[test]
fn snap_start_and_aas_are_named_with_what_to_do_in_check_plan_and_status() {
    let endpoint = Endpoint::start();
    {
        let mut world = endpoint.world();
        world.function("java").snap_start = true;
        world.function("managed");
        world
            .scalable_targets
            .push(("managed".into(), "live".into(), 1, 10));
    }
    let targets = "[[target]]\nfunction = \"java\"\nqualifier = \"live\"\nmin = 3\nmax = 10\n\
                   [[target]]\nfunction = \"managed\"\nqualifier = \"live\"\nmin = 3\nmax = 10\n";
    let (_dir, config) = common::aws_config(&endpoint.url, "", targets);
    let config = config.to_str().expect("a path").to_owned();

    let check = common::run_against_aws(&["check", "--config", &config, "--aws"]);
    let report = text(&check.stdout);
    assert_eq!(
        check.status.code(),
        Some(1),
        "{report}{}",
        text(&check.stderr)
    );
    assert!(
        report.contains("java:live: error: SnapStart is on for this version"),
        "{report}"
    );
    assert!(
        report.contains("managed:live: note: managed by Application Auto Scaling"),
        "{report}"
    );

    let (_, rows) = common::plan_json_any_status(&endpoint, "", targets);
    let row = |target: &str| {
        rows.as_array()
            .and_then(|rows| rows.iter().find(|row| row["target"] == target))
            .cloned()
            .unwrap_or_else(|| panic!("{target} in {rows}"))
    };
    assert!(
        row("java:live")["blocked"]
            .as_str()
            .is_some_and(|why| why.contains("turn SnapStart off"))
    );
    let managed = row("managed:live");
    assert_eq!(managed["desired"], 3, "what it would do is shown");
    assert_eq!(managed["changes"], false);
    assert!(
        managed["left_alone"]
            .as_str()
            .is_some_and(|why| why.contains("take_over_aas"))
    );

    // The daemon, whose write Lambda refuses: the cause and the fix in /status.
    let port = free_port();
    let settings = daemon_settings(port, "1s");
    let (_dir, config) = common::aws_config(&endpoint.url, &settings, targets);
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    let named = wait_for(Duration::from_secs(15), || {
        status(&daemon).contains("turn SnapStart off")
    });
    assert!(named, "{}", status(&daemon));
    assert!(
        endpoint
            .world()
            .requests(common::PUT)
            .iter()
            .all(|put| put.function.as_deref() == Some("java"))
    );
}

#[test]
fn audit_and_migrate_take_a_config_without_targets_and_check_and_plan_refuse_it() {
    let moto = Moto::start();
    let endpoint = Endpoint::start();
    let dir = tempfile::tempdir().expect("a directory");
    let settings = dir.path().join("settings.toml");
    std::fs::write(
        &settings,
        "[aws]\nregion = \"us-east-1\"\n[daemon]\ninterval = \"30s\"\n",
    )
    .expect("a config");
    let settings = settings.to_str().expect("a path");
    let out = dir.path().join("migrated.toml");
    // Nothing in AAS: nothing to write.
    let empty = binary(&endpoint, &moto)
        .args([
            "migrate",
            "--config",
            settings,
            "--out",
            out.to_str().expect("a path"),
        ])
        .output()
        .expect("it runs");
    assert!(empty.status.success(), "{}", text(&empty.stderr));
    assert!(text(&empty.stdout).contains("nothing written"));
    assert!(!out.exists());
    runtime().block_on(register(&client(&moto.url), "f01", 1, 10));
    let runs = [
        vec!["audit", "--config", settings, "--days", "1"],
        vec![
            "migrate",
            "--config",
            settings,
            "--days",
            "0",
            "--out",
            out.to_str().expect("a path"),
        ],
    ];
    for args in runs {
        let output = binary(&endpoint, &moto)
            .args(&args)
            .output()
            .expect("it runs");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    assert!(
        text(&std::fs::read(&out).expect("written")).contains("[defaults]\ntake_over_aas = true")
    );
    for args in [
        vec!["check", "--config", settings],
        vec!["plan", "--config", settings],
    ] {
        let output = binary(&endpoint, &moto)
            .args(&args)
            .output()
            .expect("it runs");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(text(&output.stderr).contains("no [[target]] or [[selector]] is configured"));
    }
}

#[test]
fn with_leader_the_records_live_in_the_lease_table_and_rollback_reads_them_there() {
    let moto = Moto::start();
    let endpoint = Endpoint::start();
    endpoint.world().set_config("f01", "live", 5);
    let aas = client(&moto.url);
    runtime().block_on(register(&aas, "f01", 1, 100));
    let before = described(&aas);
    let dir = tempfile::tempdir().expect("a directory");
    let port = free_port();
    let source = format!(
        "[aws]\nregion = \"us-east-1\"\ntimeout = \"2s\"\n[daemon]\n{}\n\
         [leader]\ntable = \"pc-locks\"\ncreate_table = true\nendpoint_url = \"{}\"\nlease = \"4s\"\nrenew_every = \"1s\"\n\
         [[target]]\nfunction = \"f01\"\nqualifier = \"live\"\nmin = 20\nmax = 100\ntake_over_aas = true\n",
        daemon_settings(port, "1s"),
        moto.url
    );
    let config = dir.path().join("config.toml");
    std::fs::write(&config, source).expect("the config is written");
    let daemon = start(&endpoint, &moto, &config, port);
    daemon.wait_for_put(&endpoint, 20, Duration::from_secs(30));
    drop(daemon);
    let item = runtime().block_on(async {
        let credentials =
            aws_credential_types::Credentials::new("AKIDTEST", "test-secret", None, None, "test");
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::new()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .endpoint_url(&moto.url)
                .credentials_provider(credentials)
                .build(),
        );
        dynamodb
            .get_item()
            .table_name("pc-locks")
            .key(
                "id",
                aws_sdk_dynamodb::types::AttributeValue::S("pc-autoscaler#handovers".into()),
            )
            .send()
            .await
            .expect("moto answers")
            .item
    });
    assert!(item.is_some(), "the record is an item of the lease table");
    assert!(!dir.path().join("state").exists());
    let rollback = binary(&endpoint, &moto)
        .args([
            "migrate",
            "--rollback",
            "--config",
            config.to_str().expect("a path"),
        ])
        .output()
        .expect("rollback runs");
    assert!(
        rollback.status.success(),
        "{}\n{}",
        text(&rollback.stdout),
        text(&rollback.stderr)
    );
    // moto leaves out a state never set; AAS itself always answers all three.
    let flags = |target: &aas::types::ScalableTarget| {
        let state = target.suspended_state();
        [
            state.and_then(|state| state.dynamic_scaling_in_suspended()),
            state.and_then(|state| state.dynamic_scaling_out_suspended()),
            state.and_then(|state| state.scheduled_scaling_suspended()),
        ]
        .map(|flag| flag.unwrap_or(false))
    };
    assert_eq!(flags(&described(&aas)), flags(&before));
    assert_eq!(flags(&before), [false; 3]);
}
