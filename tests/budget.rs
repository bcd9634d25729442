//! The control-plane budget over the wire: the real daemon against the local endpoint,
//! asserting the Lambda requests it sends. Steady state reads nothing but drift scans;
//! a foreign change is found and corrected; a conflict makes the daemon read before it
//! writes again; a throttle pauses the whole budget; a scale-out does not wait behind
//! a queue of drift scans.

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use chrono::Timelike;

use common::aws_endpoint::{Endpoint, Fault, Logged};
use common::{Daemon, PUT, aws_config, daemon_settings, free_port, puts_of, wait_for};

/// APIs that count against Lambda's shared limit.
/// Whether a request counts against Lambda's shared 15 a second: not `GetFunction`
/// (its own limit), CloudWatch's or Application Auto Scaling's.
fn shared(logged: &Logged) -> bool {
    !matches!(
        logged.operation,
        "GetFunction" | "GetMetricData" | "DescribeScalableTargets"
    )
}

fn fixed(function: &str, min: u32) -> String {
    format!("[[target]]\nfunction = \"{function}\"\nqualifier = \"live\"\nmin = {min}\nmax = 50\n")
}

fn start(endpoint: &Endpoint, daemon: &str, targets: &str) -> (tempfile::TempDir, Daemon) {
    let port = free_port();
    let settings = format!("{}\n{daemon}", daemon_settings(port, "1s"));
    let (dir, config) = aws_config(&endpoint.url, &settings, targets);
    let daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    (dir, daemon)
}

#[test]
fn steady_state_reads_lambda_only_for_drift_scans() {
    let endpoint = Endpoint::start();
    {
        let mut world = endpoint.world();
        world.set_config("f", "live", 5);
        world.set_config("f", "7", 4);
        world.set_concurrency("f", "live", &[3.5; 5], 2);
    }
    let targets = format!(
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 50\n\
         tracking = {{ metric = \"concurrency\", target = 0.7 }}\n\
         [[target]]\nfunction = \"f\"\nqualifier = \"7\"\nmin = 4\nmax = 50\n{}",
        "[[target]]\nfunction = \"g\"\nqualifier = \"live\"\nmin = 0\nmax = 50\n"
    );
    let (_dir, mut daemon) = start(
        &endpoint,
        "drift_scan_period = \"3s\"\nrefresh_period = \"1h\"",
        &targets,
    );
    daemon.wait_ready();
    std::thread::sleep(Duration::from_secs(10));
    let world = endpoint.world();
    let count = |operation: &str| world.requests(operation).len();
    // Two functions, one scan each at start and then every 3 s: about 2 × (1 + 10/3).
    let scans = count("ListProvisionedConcurrencyConfigs");
    assert!(
        (6..=12).contains(&scans),
        "{scans} scans:\n{:#?}",
        world.log
    );
    // Slow facts once each: one GetFunction per function (its own limit), one
    // ListAliases per function with an alias target, the account once.
    assert_eq!(count("GetFunction"), 2);
    assert_eq!(count("ListAliases"), 2);
    assert_eq!(count("GetAccountSettings"), 1);
    // Application Auto Scaling once, at start (then every discovery period).
    assert_eq!(count("DescribeScalableTargets"), 1);
    // Nothing else: no per-target reads, no writes (everything is as it should be).
    assert_eq!(count("GetProvisionedConcurrencyConfig"), 0);
    assert_eq!(count(PUT), 0);
    assert!(
        count("GetMetricData") >= 8,
        "one batched metric read a second"
    );
    let shared_requests = world.log.iter().filter(|logged| shared(logged)).count();
    assert_eq!(shared_requests, scans + 2 + 1);
}

#[test]
fn a_foreign_reset_is_found_by_the_drift_scan_and_corrected() {
    let endpoint = Endpoint::start();
    endpoint.world().set_config("f", "live", 5);
    let (_dir, mut daemon) = start(&endpoint, "drift_scan_period = \"2s\"", &fixed("f", 5));
    daemon.wait_ready();
    assert!(wait_for(Duration::from_secs(10), || {
        daemon.metric("pc_autoscaler_targets_unknown") == Some(0.0)
    }));
    // A deploy resets the capacity behind the daemon's back.
    let reset = Instant::now();
    endpoint.world().set_config("f", "live", 1);
    assert!(
        wait_for(Duration::from_secs(10), || !puts_of(&endpoint, 5)
            .is_empty()),
        "{}",
        daemon.log()
    );
    let world = endpoint.world();
    let put = world.requests(PUT)[0].clone();
    assert!(
        put.at - reset <= Duration::from_millis(2_000 + 1_500),
        "corrected {:?} after the reset: more than one drift period",
        put.at - reset
    );
    // The scan that found it came right before the put.
    let before: Vec<&str> = world
        .log
        .iter()
        .filter(|logged| logged.at <= put.at && shared(logged))
        .map(|logged| logged.operation)
        .collect();
    assert_eq!(
        &before[before.len() - 2..],
        ["ListProvisionedConcurrencyConfigs", PUT]
    );
    drop(world);
    assert_eq!(
        daemon.metric("pc_autoscaler_drift_detected_total{target=\"f:live\"}"),
        Some(1.0)
    );
    assert!(
        daemon
            .log()
            .contains("drift: the capacity was changed by someone else")
    );
}

#[test]
fn a_conflict_makes_the_daemon_read_the_function_before_writing_again() {
    let endpoint = Endpoint::start();
    endpoint.world().inject(PUT, [Fault::Conflict]);
    let (_dir, mut daemon) = start(&endpoint, "", &fixed("f", 10));
    daemon.wait_ready();
    assert!(
        wait_for(Duration::from_secs(15), || !puts_of(&endpoint, 10)
            .is_empty()),
        "{}",
        daemon.log()
    );
    let world = endpoint.world();
    let shared: Vec<(&str, u16)> = world
        .log
        .iter()
        .filter(|logged| shared(logged))
        .map(|logged| (logged.operation, logged.status))
        .collect();
    let conflict = shared
        .iter()
        .position(|request| *request == (PUT, 409))
        .expect("the conflict");
    // Other chores queued before the conflict (a refresh) may take a turn first; what
    // matters is that the function is read again before the next write.
    let next_put = conflict
        + 1
        + shared[conflict + 1..]
            .iter()
            .position(|request| request.0 == PUT)
            .expect("the write that follows");
    assert!(
        shared[conflict + 1..next_put].contains(&("ListProvisionedConcurrencyConfigs", 200)),
        "the cache is not trusted after a 409: {shared:?}"
    );
    assert_eq!(world.requests(PUT).len(), 2, "{shared:?}");
}

#[test]
fn a_throttle_pauses_the_whole_budget_for_retry_after() {
    let endpoint = Endpoint::start();
    endpoint.world().inject(
        PUT,
        [Fault::Throttle {
            retry_after: Some(2),
        }],
    );
    let targets: String = (0..6).map(|index| fixed(&format!("f{index}"), 3)).collect();
    let (_dir, mut daemon) = start(
        &endpoint,
        "control_plane_budget = 1000.0\nmax_write_rate = 2.0",
        &targets,
    );
    daemon.wait_ready();
    assert!(
        wait_for(Duration::from_secs(20), || puts_of(&endpoint, 3).len() == 6),
        "{}",
        daemon.log()
    );
    let world = endpoint.world();
    let throttle = world
        .log
        .iter()
        .find(|logged| logged.status == 429)
        .expect("the throttle")
        .at;
    // Requests already on the wire may still answer; nothing is sent in the pause.
    let during: Vec<&Logged> = world
        .log
        .iter()
        .filter(|logged| shared(logged))
        .filter(|logged| {
            logged.at > throttle + Duration::from_millis(300)
                && logged.at < throttle + Duration::from_millis(1_900)
        })
        .collect();
    assert!(during.is_empty(), "sent during the pause: {during:#?}");
    drop(world);
    assert_eq!(
        daemon.metric("pc_autoscaler_control_plane_throttled_total{priority=\"scale_out\"}"),
        Some(1.0)
    );
}

#[test]
fn a_scale_out_does_not_wait_behind_the_drift_scans() {
    // 40 functions to scan at 2 requests a second: the scans queue for 20 s. The
    // first target's floor rises at a boundary a few seconds in.
    let endpoint = Endpoint::start();
    let now = chrono::Utc::now();
    let boundary = now + chrono::TimeDelta::seconds(6);
    let cron = format!("{} * * * * *", boundary.format("%S"));
    let mut targets = format!(
        "{}[[target.schedule]]\nname = \"rise\"\ncron = \"{cron}\"\nduration = \"30s\"\nmin = 20\n",
        fixed("first", 1)
    );
    for index in 0..40 {
        targets.push_str(&fixed(&format!("queued{index}"), 0));
    }
    let (_dir, mut daemon) = start(&endpoint, "control_plane_budget = 2.0", &targets);
    daemon.wait_ready();
    assert!(
        wait_for(Duration::from_secs(20), || !puts_of(&endpoint, 20)
            .is_empty()),
        "{}",
        daemon.log()
    );
    // Long enough for more scans to follow, were any still queued.
    std::thread::sleep(Duration::from_secs(2));
    let world = endpoint.world();
    let put = world
        .requests(PUT)
        .into_iter()
        .find(|logged| logged.value == Some(20))
        .expect("the scale-out");
    let scans_after = world
        .requests("ListProvisionedConcurrencyConfigs")
        .into_iter()
        .filter(|logged| logged.at > put.at)
        .count();
    let scans: Vec<Duration> = world
        .requests("ListProvisionedConcurrencyConfigs")
        .iter()
        .map(|logged| logged.at - world.log[0].at)
        .collect();
    assert!(
        scans_after > 0,
        "the scan queue was still full at the put ({:?}): {scans:?}",
        put.at - world.log[0].at
    );
    // The put goes from its own bucket, not after the scans' queue, which would hold
    // it until about 14 s after the boundary. What may delay it: the wake (whole
    // seconds and a 500 ms tick in tokio-cron-scheduler, the heartbeat's second as
    // backstop), one token at 2/s, and a loaded machine (1.9 s seen under the full
    // suite on 2 cores; 0.1 to 1.0 s alone). 5 s still tells the two apart.
    let (wall, monotonic) = (chrono::Utc::now(), Instant::now());
    let put_wall = wall - chrono::TimeDelta::from_std(monotonic - put.at).expect("short");
    let boundary = boundary.with_nanosecond(0).expect("a whole second");
    let after = (put_wall - boundary).num_milliseconds();
    assert!(
        (0..=5_000).contains(&after),
        "the scale-out went {after} ms after its boundary"
    );
}
