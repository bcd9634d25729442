//! The fault-injection suite: the real binary against the local AWS endpoint, with
//! faults injected on the wire. Each test asserts what AWS saw, to the request: no
//! wrong write while the fault lasts, and the right write once it clears.

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

use common::aws_endpoint::{Endpoint, Fault};
use common::{
    DELETE, Daemon, PUT, aws_config, binary, daemon_settings, endpoint_wanting_100, free_port,
    plan_json_any_status, put_outcomes, puts_of, run_once, text, tracked_daemon, tracked_target,
    wait_for,
};

/// `f:live`, tracked with `missing_data = "zero"` and `min = 0`: the configuration in
/// which reading a failure as "no load" would delete the capacity.
/// Reactive: the faults below are counted per `GetMetricData`, and a history read at
/// start would take some of them.
const ZERO_TARGET: &str = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 0\nmax = 100\n\
    tracking = { metric = \"concurrency\", target = 0.7, missing_data = \"zero\", scale_in_cooldown = \"0s\", forecast = \"off\", choose_window = \"off\" }\n";

#[test]
fn failed_metric_reads_under_zero_hold_and_the_right_write_follows_once_they_clear() {
    let faults: [(&str, Fault); 3] = [
        ("throttled", Fault::Throttle { retry_after: None }),
        ("server error", Fault::ServerError),
        ("partial", Fault::PartialData),
    ];
    for (name, fault) in faults {
        let endpoint = Endpoint::start();
        endpoint.world().set_config("f", "live", 40);
        // Demand 7 for the last two minutes: at 0.7 the right capacity is 10.
        endpoint
            .world()
            .set_concurrency("f", "live", &[7.0, 7.0], 2);
        endpoint
            .world()
            .inject("GetMetricData", (0..10).map(|_| fault.clone()));
        let output = run_once(&endpoint, "", ZERO_TARGET, &[]);
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{name}: {stdout}");
        assert!(
            endpoint.world().requests(PUT).is_empty()
                && endpoint.world().requests(DELETE).is_empty(),
            "{name}: a failed read must not write: {stdout}"
        );
        let (_, rows) = plan_json_any_status(&endpoint, "", ZERO_TARGET);
        if name != "partial" {
            // The first run consumed its faults; the plan sees the rest.
            assert_eq!(rows[0]["reason_code"], "held_metrics_unreadable", "{name}");
            assert_eq!(rows[0]["desired"], 40, "{name}");
        }

        endpoint.world().faults.clear();
        let output = run_once(&endpoint, "", ZERO_TARGET, &[]);
        assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        assert_eq!(
            put_outcomes(&endpoint),
            vec![(Some(10), 202)],
            "{name}: once the reads work, the scale-in is the right one"
        );
    }
}

#[test]
fn an_idle_function_under_zero_does_scale_to_min() {
    // No datapoints at all because nobody called the function: that is what `zero`
    // is for, and it must still work.
    let endpoint = Endpoint::start();
    endpoint.world().set_config("f", "live", 40);
    let output = run_once(&endpoint, "", ZERO_TARGET, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(endpoint.world().requests(DELETE).len(), 1);
}

#[test]
fn an_access_denied_put_is_retried_and_then_succeeds() {
    let endpoint = endpoint_wanting_100();
    endpoint.world().inject(PUT, [Fault::AccessDenied]);
    let output = run_once(&endpoint, "", &tracked_target("f", "live"), &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        put_outcomes(&endpoint),
        vec![(Some(100), 403), (Some(100), 202)]
    );
    assert!(text(&output.stderr).contains("AccessDeniedException"));
}

#[test]
fn a_missing_unreserved_count_leaves_the_cap_unknown_and_a_floor_is_still_applied() {
    let endpoint = Endpoint::start();
    endpoint.world().withhold_unreserved = true;
    let target = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 20\nmax = 100\n";
    let output = run_once(&endpoint, "", target, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(puts_of(&endpoint, 20).len(), 1, "{}", text(&output.stdout));
}

#[test]
fn no_credentials_is_named_with_the_chain_tried_and_what_to_set() {
    let endpoint = Endpoint::start();
    let targets = format!(
        "{}{}",
        tracked_target("f", "live"),
        tracked_target("g", "live")
    );
    let (_dir, config) = aws_config(&endpoint.url, "", &targets);
    let home = tempfile::tempdir().expect("a temporary directory");
    let mut command = binary();
    for variable in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        command.env_remove(variable);
    }
    let output = command
        .env("HOME", home.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .args(["plan", "--config", config.to_str().expect("utf-8")])
        .output()
        .expect("the binary runs");
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("no usable AWS credentials"), "{stdout}");
    assert!(stdout.contains("no credentials found in chain"), "{stdout}");
    // Once for the shard, in one line, not once a target.
    assert_eq!(
        stdout.matches("no usable AWS credentials").count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|line| line
            .starts_with("shard base: no target could be read: no usable AWS credentials")),
        "{stdout}"
    );
    assert!(stdout.contains("Set AWS_PROFILE"), "{stdout}");
    assert!(
        stderr.contains("nothing could be read from AWS"),
        "{stderr}"
    );
    assert!(
        endpoint.world().log.is_empty(),
        "nothing unsigned reaches AWS"
    );
}

#[test]
fn a_hung_endpoint_keeps_the_daemon_live_and_the_write_follows_when_it_answers() {
    let endpoint = endpoint_wanting_100();
    // Every read of the configs hangs past the 2 s timeout for a while.
    endpoint.world().inject(
        "ListProvisionedConcurrencyConfigs",
        (0..6).map(|_| Fault::Hang(Duration::from_secs(4))),
    );
    let (_dir, _config, daemon) = tracked_daemon(&endpoint, "2s");
    assert!(
        wait_for(Duration::from_secs(10), || daemon
            .probe("/healthz")
            .is_some()),
        "the daemon never listened:\n{}",
        daemon.log()
    );
    for _ in 0..10 {
        assert_eq!(daemon.probe("/healthz"), Some(200), "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        wait_for(Duration::from_secs(30), || !puts_of(&endpoint, 100)
            .is_empty()),
        "{}",
        daemon.log()
    );
    assert_eq!(
        endpoint.world().requests(PUT).len(),
        1,
        "exactly the right write, once"
    );
}

#[test]
fn a_flood_of_schedule_boundaries_loses_none() {
    // 300 targets whose rule starts every 10 s and lasts 5 s: 60 boundaries a second
    // arrive together, far more than any queue the daemon would size for one.
    const TARGETS: usize = 300;
    let endpoint = Endpoint::start();
    endpoint.world().allocation_delay = Duration::from_millis(50);
    let targets: String = (0..TARGETS)
        .map(|index| {
            format!(
                "[[target]]\nfunction = \"fn{index}\"\nqualifier = \"live\"\nmin = 1\nmax = 10\n\
                 [[target.schedule]]\nname = \"pulse\"\ncron = \"*/10 * * * * *\"\nduration = \"5s\"\nmin = 2\n"
            )
        })
        .collect();
    let port = free_port();
    let settings = format!(
        "{}\nmax_write_rate = 1000.0\ncontrol_plane_budget = 1000.0",
        daemon_settings(port, "1h")
    );
    let (_dir, config) = aws_config(&endpoint.url, &settings, &targets);
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    // Every function goes to 2 and back to 1 at least twice: four boundaries each.
    let complete = wait_for(Duration::from_secs(60), || {
        let puts = endpoint.world().requests(PUT);
        (0..TARGETS).all(|index| {
            let name = format!("fn{index}");
            let values: Vec<u32> = puts
                .iter()
                .filter(|put| put.function.as_deref() == Some(name.as_str()) && put.status == 202)
                .filter_map(|put| put.value)
                .collect();
            values.windows(2).filter(|pair| pair[0] != pair[1]).count() >= 3
        })
    });
    assert!(complete, "some boundaries were lost:\n{}", daemon.log());
}

#[test]
fn slow_and_idle_clients_do_not_starve_the_health_check() {
    let endpoint = endpoint_wanting_100();
    let (_dir, _config, mut daemon) = tracked_daemon(&endpoint, "1h");
    daemon.wait_ready();
    // As few file descriptors as a constrained container gives: without a cap on
    // connections, the idle ones below would use them all.
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &daemon.child.id().to_string(), "--nofile=64:64"])
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(limited.success());

    // A slowloris client: a request that never finishes its headers.
    let mut slow = TcpStream::connect(&daemon.address).expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .expect("send a partial request");
    // 500 clients that connect and say nothing.
    let idle: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(&daemon.address).ok())
        .collect();
    assert!(
        idle.len() >= 400,
        "only {} idle connections opened",
        idle.len()
    );
    for _ in 0..10 {
        let _ = slow.write_all(b"X-Slow: 1\r\n");
        assert_eq!(daemon.probe("/healthz"), Some(200), "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(
        daemon.child.try_wait().expect("status").is_none(),
        "the daemon still runs"
    );
}

#[test]
fn aws_unreachable_makes_readyz_503_stops_the_successful_timestamp_and_recovers() {
    let endpoint = endpoint_wanting_100();
    let (_dir, _config, mut daemon) = tracked_daemon(&endpoint, "1s");
    daemon.wait_ready();
    let successful = "pc_autoscaler_last_successful_evaluation_timestamp_seconds";
    let before = daemon.metric(successful).expect("exported");
    assert!(before > 0.0);

    // Every read fails from now on.
    for operation in ["GetMetricData", "ListProvisionedConcurrencyConfigs"] {
        endpoint
            .world()
            .inject(operation, (0..100_000).map(|_| Fault::ServerError));
    }
    assert!(
        wait_for(Duration::from_secs(30), || daemon.probe("/readyz")
            == Some(503)),
        "{}",
        daemon.log()
    );
    let stalled = daemon.metric(successful).expect("exported");
    assert!(
        daemon.metric("pc_autoscaler_passes_total{outcome=\"uninformed\"}") >= Some(3.0),
        "{}",
        daemon.log()
    );
    assert_eq!(
        daemon.probe("/healthz"),
        Some(200),
        "the loop is alive: a restart would not help"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(daemon.metric(successful), Some(stalled));

    endpoint.world().faults.clear();
    assert!(
        wait_for(Duration::from_secs(30), || daemon.probe("/readyz")
            == Some(200)),
        "{}",
        daemon.log()
    );
    assert!(daemon.metric(successful) > Some(stalled));
}
