//! The daemon end to end: the real binary against the local AWS endpoint, with a real
//! Prometheus server scraping it, signals, schedule boundaries and systemd notifications.

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::aws_endpoint::{Endpoint, Fault};
use common::{Daemon, PUT, aws_config, daemon_settings, free_port, http_get, puts_of, wait_for};

fn fixed_target(min: u32) -> String {
    format!(
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nname = \"fixed\"\nmin = {min}\nmax = 50\n"
    )
}

#[test]
fn serves_health_and_metrics_and_a_real_prometheus_scrapes_it() {
    let endpoint = Endpoint::start();
    endpoint.world().set_concurrency("f", "live", &[35.0], 2);
    let port = free_port();
    let target = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nname = \"tracked\"\nmin = 1\nmax = 100\n\
                  tracking = { metric = \"concurrency\", target = 0.7 }\n\
                  [[target.schedule]]\nname = \"night\"\ncron = \"0 22 * * *\"\nmin = 1\n";
    let (dir, config) = aws_config(&endpoint.url, &daemon_settings(port, "1s"), target);
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    assert_eq!(
        http_get(&daemon.address, "/healthz").map(|(status, _)| status),
        Some(200)
    );
    assert!(
        wait_for(Duration::from_secs(10), || !puts_of(&endpoint, 50)
            .is_empty()),
        "{}",
        daemon.log()
    );

    let (_, body) = http_get(&daemon.address, "/metrics").expect("metrics answer");
    common::promtool_check_metrics(&body);

    // A real Prometheus server scrapes the daemon; its query API returns the series.
    let prometheus = common::prometheus::Prometheus::start(dir.path(), &[&daemon.address]);
    let series = [
        "pc_autoscaler_build_info",
        "pc_autoscaler_target_desired_capacity",
        "pc_autoscaler_target_requested_capacity",
        "pc_autoscaler_target_allocated_capacity",
        "pc_autoscaler_target_metric_value",
        "pc_autoscaler_target_bound",
        "pc_autoscaler_target_schedule_active",
        "pc_autoscaler_scaling_actions_total",
        "pc_autoscaler_aws_requests_total",
        "pc_autoscaler_aws_request_duration_seconds_count",
        "pc_autoscaler_evaluation_duration_seconds_count",
        "pc_autoscaler_last_evaluation_timestamp_seconds",
        "process_resident_memory_bytes",
    ];
    let mut missing: Vec<&str> = series.to_vec();
    wait_for(Duration::from_secs(30), || {
        missing.retain(|name| prometheus.series(name).unwrap_or(0) == 0);
        missing.is_empty()
    });
    drop(prometheus);
    assert!(
        missing.is_empty(),
        "Prometheus has no series for {missing:?}"
    );
    let desired = daemon.metric("pc_autoscaler_target_desired_capacity{target=\"tracked\"}");
    assert_eq!(desired, Some(50.0), "35 at target 0.7 is 50");
}

#[test]
fn a_schedule_boundary_a_minute_ahead_produces_the_put_within_seconds() {
    let endpoint = Endpoint::start();
    let port = free_port();
    let boundary = chrono::Utc::now() + chrono::TimeDelta::seconds(60);
    let rule = format!(
        "[[target.schedule]]\nname = \"soon\"\nat = \"{}\"\nduration = \"10m\"\nmin = 7\n",
        boundary.format("%Y-%m-%dT%H:%M:%S")
    );
    // A one-hour interval: only the boundary can cause the second put.
    let (_dir, config) = aws_config(
        &endpoint.url,
        &daemon_settings(port, "1h"),
        &format!("{}{rule}", fixed_target(2)),
    );
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    let boundary_instant =
        Instant::now() + (boundary - chrono::Utc::now()).to_std().unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(90), || !puts_of(&endpoint, 7)
            .is_empty()),
        "{}",
        daemon.log()
    );
    let put = puts_of(&endpoint, 7)[0].at;
    let late = put.saturating_duration_since(boundary_instant);
    let early = boundary_instant.saturating_duration_since(put);
    assert!(
        early < Duration::from_secs(1),
        "put {early:?} before the boundary"
    );
    assert!(
        late < Duration::from_secs(3),
        "put {late:?} after the boundary"
    );
}

#[test]
fn sighup_applies_a_valid_change_and_survives_a_broken_file() {
    let endpoint = Endpoint::start();
    let port = free_port();
    let settings = daemon_settings(port, "1h");
    let (_dir, config) = aws_config(&endpoint.url, &settings, &fixed_target(2));
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    assert!(wait_for(Duration::from_secs(10), || !puts_of(&endpoint, 2)
        .is_empty()));

    let valid = std::fs::read_to_string(&config)
        .expect("read config")
        .replace("min = 2", "min = 3");
    std::fs::write(&config, valid).expect("write config");
    daemon.signal("HUP");
    assert!(wait_for(Duration::from_secs(10), || daemon.metric(
        "pc_autoscaler_config_reloads_total{outcome=\"success\"}"
    ) == Some(1.0)));
    // The reload re-evaluates at once (the interval restarts), so min 3 is applied.
    assert!(
        wait_for(Duration::from_secs(10), || !puts_of(&endpoint, 3)
            .is_empty()),
        "{}",
        daemon.log()
    );

    std::fs::write(&config, "[[target]\nthis is not toml").expect("write config");
    daemon.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(10), || daemon.metric(
            "pc_autoscaler_config_reloads_total{outcome=\"failure\"}"
        ) == Some(1.0)),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.child.try_wait().expect("status").is_none(),
        "the daemon keeps running"
    );
    assert_eq!(
        http_get(&daemon.address, "/healthz").map(|(status, _)| status),
        Some(200)
    );
    assert_eq!(
        daemon.metric("pc_autoscaler_target_bound{bound=\"min\",target=\"fixed\"}"),
        Some(3.0)
    );
    assert!(
        daemon
            .log()
            .contains("reload failed; the previous configuration stays in force")
    );
}

#[test]
fn sigterm_during_an_in_flight_write_exits_zero_after_the_write_completes() {
    let endpoint = Endpoint::start();
    endpoint
        .world()
        .inject(PUT, [Fault::Hang(Duration::from_millis(1_500))]);
    let port = free_port();
    let (_dir, config) = aws_config(
        &endpoint.url,
        &daemon_settings(port, "1h"),
        &fixed_target(4),
    );
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    // Ready means the first evaluation is done; its put may still be on its way to the
    // wire. Signal once the endpoint holds it, hanging.
    let deadline = Instant::now() + Duration::from_secs(10);
    while endpoint.world().faults_left(PUT) > 0 {
        assert!(
            Instant::now() < deadline,
            "the put never arrived: {}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    daemon.signal("TERM");
    let status = daemon.child.wait().expect("the daemon exits");
    let exited = Instant::now();
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    let puts = puts_of(&endpoint, 4);
    assert_eq!(
        puts.len(),
        1,
        "the in-flight write completed: {}",
        daemon.log()
    );
    assert!(puts[0].at <= exited);
}

#[test]
fn tells_systemd_it_is_ready_and_alive() {
    let endpoint = Endpoint::start();
    let port = free_port();
    let (dir, config) = aws_config(
        &endpoint.url,
        &daemon_settings(port, "1h"),
        &fixed_target(1),
    );
    let socket_path = dir.path().join("notify.sock");
    let socket =
        std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let socket_text = socket_path.to_str().expect("utf-8 path");
    let daemon = Daemon::start(
        &config,
        &format!("127.0.0.1:{port}"),
        &[("NOTIFY_SOCKET", socket_text), ("WATCHDOG_USEC", "1000000")],
    );
    let mut seen = Vec::new();
    let mut buffer = [0u8; 256];
    let mut receive_until = |seen: &mut Vec<String>, done: &dyn Fn(&[String]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && !done(seen) {
            if let Ok(length) = socket.recv(&mut buffer) {
                seen.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
            }
        }
    };
    receive_until(&mut seen, &|seen| {
        seen.iter().any(|m| m == "READY=1") && seen.iter().any(|m| m == "WATCHDOG=1")
    });
    assert!(
        seen.iter().any(|m| m == "READY=1"),
        "no READY=1 in {seen:?}"
    );
    assert!(
        seen.iter().any(|m| m == "WATCHDOG=1"),
        "no WATCHDOG=1 in {seen:?}"
    );
    // On SIGTERM the daemon asks systemd for its grace period (20 s) plus 10 s.
    daemon.signal("TERM");
    receive_until(&mut seen, &|seen| {
        seen.iter().any(|m| m.starts_with("STOPPING=1"))
    });
    assert!(
        seen.iter()
            .any(|m| m == "STOPPING=1\nEXTEND_TIMEOUT_USEC=30000000"),
        "no stop-time extension in {seen:?}"
    );
}

#[test]
fn status_and_activities_agree_with_what_aws_saw() {
    let endpoint = common::endpoint_wanting_100();
    let (_dir, _config, mut daemon) = common::tracked_daemon(&endpoint, "1s");
    daemon.wait_ready();
    daemon.wait_for_put(&endpoint, 100, Duration::from_secs(20));
    // The allocation settles on the endpoint; the read-back sees it.
    let (_, body) = http_get(&daemon.address, "/activities?target=f%3Alive").expect("an answer");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let activities = answer["activities"].as_array().expect("a list");
    let writes: Vec<&serde_json::Value> = activities
        .iter()
        .filter(|activity| activity["kind"] == "write")
        .collect();
    let puts = endpoint.world().requests(PUT);
    assert_eq!(
        writes.len(),
        puts.len(),
        "one write activity per put: {activities:?}"
    );
    assert_eq!(writes[0]["from"], 0);
    assert_eq!(writes[0]["to"], 100);
    assert!(
        writes[0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("tracking concurrency = 70")),
        "{activities:?}"
    );

    let settled = wait_for(Duration::from_secs(20), || {
        let (_, body) = http_get(&daemon.address, "/status").expect("an answer");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let status = &answer["targets"][0];
        status["target"] == "f:live"
            && status["requested"] == 100
            && status["desired"] == 100
            && status["allocation"] == "READY"
            && status["last_activity"]["outcome"]
                .as_str()
                .is_some_and(|outcome| outcome.starts_with("READY after"))
    });
    assert!(
        settled,
        "{}",
        http_get(&daemon.address, "/status")
            .map(|(_, body)| body)
            .unwrap_or_default()
    );

    // Bad parameters are refused, not ignored.
    assert_eq!(
        http_get(&daemon.address, "/activities?since=yesterday").map(|(status, _)| status),
        Some(400)
    );

    // The same for people, in one command.
    let output = common::run(&["status", "--url", &format!("http://{}", daemon.address)]);
    let report = common::text(&output.stdout);
    assert!(output.status.success(), "{}", common::text(&output.stderr));
    assert!(
        report.contains("f:live") && report.contains("tracking concurrency = 70"),
        "{report}"
    );
    assert!(
        report.contains("0 → 100") && report.contains("READY after"),
        "{report}"
    );
    // What the reads cost, counted and priced.
    assert!(report.contains("\nCloudWatch: "), "{report}");
    let (_, body) = http_get(&daemon.address, "/status").expect("an answer");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        answer["cloudwatch"]["metrics_requested"].as_u64() > Some(0),
        "{body}"
    );
}

#[test]
fn the_activity_log_keeps_history_across_a_restart() {
    let endpoint = Endpoint::start();
    let port = free_port();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("activity.jsonl");
    let settings = format!(
        "{}\nactivity_log = \"{}\"",
        daemon_settings(port, "1s"),
        log.display()
    );
    let (_config_dir, config) = aws_config(&endpoint.url, &settings, &fixed_target(5));
    let address = format!("127.0.0.1:{port}");
    let mut daemon = Daemon::start(&config, &address, &[]);
    daemon.wait_ready();
    daemon.wait_for_put(&endpoint, 5, Duration::from_secs(20));
    let outcome_logged = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.contains("READY after"))
    });
    assert!(outcome_logged, "{}", daemon.log());
    daemon.signal("TERM");
    let _ = daemon.child.wait();

    // The function already has 5: the new daemon writes nothing, and still knows why
    // it has 5.
    let mut daemon = Daemon::start(&config, &address, &[]);
    daemon.wait_ready();
    let (_, body) = http_get(&address, "/activities?target=fixed").expect("an answer");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let write = &answer["activities"][0];
    assert_eq!(
        (write["kind"].as_str(), write["to"].as_u64()),
        (Some("write"), Some(5)),
        "{body}"
    );
    assert!(
        write["outcome"]
            .as_str()
            .is_some_and(|outcome| outcome.starts_with("READY after")),
        "{body}"
    );
    assert_eq!(endpoint.world().requests(PUT).len(), 1);
}

#[test]
fn a_failed_allocation_is_reported_retried_within_its_backoff_and_cleared_when_ready() {
    let endpoint = Endpoint::start();
    let reason = "FUNCTION_ERROR_INIT_FAILURE";
    endpoint.world().set_failed("f", "live", 5, reason);
    endpoint.world().function("f").init_fails = Some(reason.into());
    let port = free_port();
    let (_dir, config) = aws_config(
        &endpoint.url,
        &daemon_settings(port, "1s"),
        &fixed_target(5),
    );
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    let gauge = "pc_autoscaler_target_allocation_failed{target=\"fixed\"}";
    // The config is written again at once (5 requested, 0 there), fails again.
    daemon.wait_for_put(&endpoint, 5, Duration::from_secs(20));
    let first = puts_of(&endpoint, 5)[0].at;
    let status = || {
        let (_, body) = http_get(&daemon.address, "/status").expect("an answer");
        let mut answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        answer["targets"][0].take()
    };
    // Once the write's allocation FAILED too, the next attempt is due.
    assert!(
        wait_for(Duration::from_secs(30), || status()["next_attempt"]
            .is_string()),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.metric(gauge), Some(1.0));
    let shown = status();
    assert_eq!(shown["status_reason"], reason, "{shown}");
    assert_eq!(
        shown["last_activity"]["outcome"], "FAILED: FUNCTION_ERROR_INIT_FAILURE",
        "{shown}"
    );
    let report = common::text(
        &common::run(&["status", "--url", &format!("http://{}", daemon.address)]).stdout,
    );
    assert!(
        report.contains("allocation FAILED: FUNCTION_ERROR_INIT_FAILURE"),
        "{report}"
    );

    // Fixed: the next attempt comes within the first backoff (60 to 75 s after the
    // failure), no sooner than a minute after the last write, and is READY.
    endpoint.world().function("f").init_fails = None;
    assert!(
        wait_for(Duration::from_secs(120), || daemon.metric(gauge)
            == Some(0.0)),
        "{}",
        daemon.log()
    );
    let puts = puts_of(&endpoint, 5);
    assert_eq!(puts.len(), 2, "{puts:?}");
    let gap = puts[1].at - first;
    assert!(
        gap >= Duration::from_secs(60) && gap <= Duration::from_secs(90),
        "{gap:?}"
    );
    assert_eq!(
        endpoint.world().function("f").configs["live"].status,
        "READY"
    );
}

#[test]
fn a_snapshot_is_kept_at_shutdown_and_a_bad_one_means_a_logged_cold_start() {
    let state = tempfile::tempdir().expect("a state directory");
    let kept = state.path().join("snapshot.json");
    // A daemon that scales f:live to 100, told to stop: it keeps what it knows.
    let start = |endpoint: &Endpoint| {
        let port = free_port();
        let settings = format!(
            "{}\nstate_directory = \"{}\"",
            daemon_settings(port, "1s"),
            state.path().display()
        );
        let (dir, config) = aws_config(
            &endpoint.url,
            &settings,
            &common::tracked_target("f", "live"),
        );
        (
            dir,
            Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]),
        )
    };
    let stop = |mut daemon: Daemon| {
        daemon.signal("TERM");
        let status = daemon.child.wait().expect("the daemon exits");
        assert!(status.success(), "{}", daemon.log());
        daemon.log()
    };
    let endpoint = common::endpoint_wanting_100();
    let (_dir, daemon) = start(&endpoint);
    daemon.wait_for_put(&endpoint, 100, Duration::from_secs(20));
    stop(daemon);
    let good = std::fs::read_to_string(&kept).expect("a snapshot was kept");
    assert!(good.contains("\"requested\":100"), "{good}");

    let endpoint = common::endpoint_wanting_100();
    let (_dir, daemon) = start(&endpoint);
    daemon.wait_for_put(&endpoint, 100, Duration::from_secs(20));
    assert!(
        daemon.log().contains("a snapshot orders the first scans"),
        "{}",
        daemon.log()
    );
    stop(daemon);

    // Each bad snapshot is named in the log, and the start goes on as a cold one.
    let good = std::fs::read_to_string(&kept).expect("a snapshot was kept");
    let bad = [
        (good[..good.len() / 2].to_owned(), "does not decode"),
        (
            good.replacen("\"version\":1", "\"version\":7", 1),
            "of version 7",
        ),
        (
            good.replacen("\"fingerprint\":\"", "\"fingerprint\":\"0", 1),
            "written for other targets",
        ),
    ];
    for (text, reason) in bad {
        std::fs::write(&kept, &text).expect("the snapshot is replaced");
        let endpoint = common::endpoint_wanting_100();
        let (_dir, daemon) = start(&endpoint);
        daemon.wait_for_put(&endpoint, 100, Duration::from_secs(20));
        let log = daemon.log();
        assert!(
            log.contains("the snapshot is not used") && log.contains(reason),
            "{reason}: {log}"
        );
        stop(daemon);
    }

    // A save that fails (here the snapshot's place is taken by a directory, so the
    // rename that would replace it fails, as a full disk fails a write) is logged, and
    // leaves no temporary file behind. Writing to a new temporary file and renaming it
    // is what keeps the snapshot before it whole (`state::files`'s unit tests).
    std::fs::remove_file(&kept).expect("removed");
    std::fs::create_dir_all(kept.join("taken")).expect("a directory");
    let endpoint = common::endpoint_wanting_100();
    endpoint.world().set_concurrency("f", "live", &[140.0], 2);
    let (_dir, daemon) = start(&endpoint);
    daemon.wait_for_put(&endpoint, 200, Duration::from_secs(20));
    let log = stop(daemon);
    assert!(log.contains("the snapshot was not saved"), "{log}");
    let left: Vec<_> = std::fs::read_dir(state.path())
        .expect("readable")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_surge_on_a_quiet_target_is_put_within_the_interval_through_the_account_sentinel() {
    // Three targets held at their floor of 20 for a demand of 1: quiet after their
    // first reads, each read every 10 minutes. The endpoint's account series is the
    // sum of its functions', as Lambda's is.
    let endpoint = Endpoint::start();
    let targets: String = ["q0", "q1", "q2"]
        .iter()
        .map(|function| {
            endpoint.world().set_config(function, "live", 20);
            endpoint
                .world()
                .set_concurrency(function, "live", &[1.0; 30], 2);
            format!(
                "[[target]]\nfunction = \"{function}\"\nqualifier = \"live\"\nmin = 20\nmax = 500\n\
                 tracking = {{ metric = \"concurrency\", target = 0.7 }}\n"
            )
        })
        .collect();
    let port = free_port();
    let (_dir, config) = aws_config(&endpoint.url, &daemon_settings(port, "2s"), &targets);
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    let reads = |reason: &str| {
        let (_, body) = http_get(&daemon.address, "/metrics").expect("an answer");
        let series = format!("pc_autoscaler_metric_reads_total{{reason=\"{reason}\"}} ");
        body.lines()
            .find_map(|line| line.strip_prefix(&series)?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        wait_for(Duration::from_secs(20), || reads("first_reads") >= 9.0),
        "{}",
        daemon.log()
    );
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(reads("quiet_period_over"), 0.0);
    assert!(endpoint.world().requests(PUT).is_empty());
    // One of them surges: the newest datapoint of q1 is 70.
    let mut values = vec![1.0; 29];
    values.push(70.0);
    endpoint.world().set_concurrency("q1", "live", &values, 2);
    let surged = Instant::now();
    assert!(
        wait_for(Duration::from_secs(7), || !puts_of(&endpoint, 100)
            .is_empty()),
        "no put of 100 within interval + 5 s:\n{}",
        daemon.log()
    );
    assert!(surged.elapsed() <= Duration::from_secs(7));
    assert!(reads("sentinel") >= 1.0, "{}", daemon.log());
    let puts = endpoint.world().requests(PUT);
    assert!(
        puts.iter().all(|put| put.function.as_deref() == Some("q1")),
        "only the surging target is written: {puts:?}"
    );
}
