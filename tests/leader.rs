//! Leader election end to end: three copies of the real binary share a lease on a real
//! DynamoDB API (moto in server mode), each through a TCP proxy the test can cut, and
//! act on the local Lambda and CloudWatch endpoint ([`common::fleet`]).

#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::aws_endpoint::Endpoint;
use common::fleet::{Fleet, Spec, Timing};
use common::{http_get, tracked_target, wait_for};

const LEASE: Duration = Duration::from_secs(3);
const RENEW_EVERY: Duration = Duration::from_secs(1);
const INTERVAL: Duration = Duration::from_secs(1);
const TIMING: Timing = Timing {
    lease: LEASE,
    renew_every: RENEW_EVERY,
    interval: INTERVAL,
    spread: false,
};

fn three(
    targets: impl Fn(&str) -> String,
    third_args: &'static [&'static str],
) -> Vec<Spec<'static>> {
    ["a", "b", "c"]
        .into_iter()
        .map(|name| Spec {
            name,
            targets: targets(name),
            settings: "",
            args: if name == "c" { third_args } else { &[] },
        })
        .collect()
}

fn three_tracked() -> Vec<Spec<'static>> {
    three(|_| tracked_target("f", "live"), &[])
}

/// A target without metrics or schedules: `min`, whatever the time.
fn fixed(min: u32) -> String {
    format!(
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nname = \"fixed\"\nmin = {min}\nmax = 50\n"
    )
}

/// `f:live` peaked at 70: at target 0.7 the tracked target wants 100.
fn endpoint_wanting_100() -> Endpoint {
    common::endpoint_wanting_100()
}

/// From now on `f:live` wants 200.
fn want_200(fleet: &Fleet) {
    fleet
        .endpoint
        .world()
        .set_concurrency("f", "live", &[50.0, 140.0], 2);
}

#[test]
fn one_copy_of_three_acts_and_a_killed_leader_is_replaced_within_lease_plus_renew() {
    let fleet = Fleet::start(endpoint_wanting_100(), TIMING, &three_tracked());
    let (leader, _) = fleet.wait_for_leader(None, Duration::from_secs(30));
    assert!(
        wait_for(Duration::from_secs(15), || fleet
            .puts()
            .iter()
            .any(|(_, value, _)| *value == Some(100))),
        "{}",
        fleet.logs()
    );
    // Two leases with every copy alive: one leader, no change, one caller of AWS.
    std::thread::sleep(LEASE * 2);
    assert_eq!(fleet.leaders(), vec![leader], "{}", fleet.logs());
    assert_eq!(fleet.transitions_to_leader(), 1.0, "{}", fleet.logs());
    assert_eq!(
        fleet.callers(),
        BTreeSet::from([fleet.copies[leader].name.clone()]),
        "standbys must read and write nothing"
    );
    for (index, copy) in fleet.copies.iter().enumerate() {
        assert_eq!(
            copy.daemon.probe("/readyz"),
            Some(200),
            "copy {index} is ready whatever its role"
        );
        let (_, body) = http_get(&copy.daemon.address, "/metrics").expect("metrics answer");
        assert!(body.contains("pc_autoscaler_leader_lease_age_seconds{identity="));
        common::promtool_check_metrics(&body);
    }

    fleet.copies[leader].daemon.signal("KILL");
    let killed = Instant::now();
    want_200(&fleet);
    let (successor, seen) = fleet.wait_for_leader(Some(leader), Duration::from_secs(15));
    let takeover = seen - killed;
    assert!(
        takeover <= LEASE + RENEW_EVERY,
        "takeover took {takeover:?}, more than lease + renew_every\n{}",
        fleet.logs()
    );
    let successor_name = fleet.copies[successor].name.clone();
    assert!(
        wait_for(Duration::from_secs(15), || fleet.puts().iter().any(
            |(caller, value, _)| *caller == successor_name && *value == Some(200)
        )),
        "the new leader acts on the pending scale-out\n{}",
        fleet.logs()
    );
    let leader_name = fleet.copies[leader].name.clone();
    assert!(
        fleet
            .puts()
            .iter()
            .all(|(caller, _, _)| *caller == leader_name || *caller == successor_name)
    );
}

#[test]
fn a_stopped_leader_releases_the_lease_and_a_standby_takes_over_within_renew_every() {
    let mut fleet = Fleet::start(endpoint_wanting_100(), TIMING, &three_tracked());
    let (leader, _) = fleet.wait_for_leader(None, Duration::from_secs(30));
    fleet.copies[leader].daemon.signal("TERM");
    let stopped = Instant::now();
    let (_, seen) = fleet.wait_for_leader(Some(leader), Duration::from_secs(10));
    let takeover = seen - stopped;
    assert!(
        takeover <= RENEW_EVERY + Duration::from_secs(1),
        "takeover took {takeover:?}\n{}",
        fleet.logs()
    );
    let old = &mut fleet.copies[leader].daemon;
    let status = old.child.wait().expect("the old leader exits");
    assert!(status.success(), "{}", old.log());
    assert!(
        old.log().contains("released the leader lease"),
        "{}",
        old.log()
    );
}

#[test]
fn a_leader_cut_off_from_dynamodb_stops_writing_within_half_a_lease() {
    let fleet = Fleet::start(endpoint_wanting_100(), TIMING, &three_tracked());
    let (leader, _) = fleet.wait_for_leader(None, Duration::from_secs(30));
    assert!(
        wait_for(Duration::from_secs(15), || !fleet.puts().is_empty()),
        "{}",
        fleet.logs()
    );
    fleet.copies[leader].proxy.cut();
    let cut = Instant::now();
    // Once the window has closed, give the cut leader a reason to write.
    std::thread::sleep(LEASE / 2 + Duration::from_millis(100));
    want_200(&fleet);
    let (successor, _) = fleet.wait_for_leader(Some(leader), Duration::from_secs(15));
    let successor_name = fleet.copies[successor].name.clone();
    assert!(
        wait_for(Duration::from_secs(15), || fleet.puts().iter().any(
            |(caller, value, _)| *caller == successor_name && *value == Some(200)
        )),
        "{}",
        fleet.logs()
    );
    let leader_name = &fleet.copies[leader].name;
    let late: Vec<_> = fleet
        .puts()
        .into_iter()
        .filter(|(caller, _, at)| caller == leader_name && *at > cut + LEASE / 2)
        .collect();
    assert!(
        late.is_empty(),
        "the cut leader wrote {late:?}\n{}",
        fleet.logs()
    );
    // Its HTTP side is not cut: it says it stands by, and stays alive.
    assert!(!fleet.is_leader(leader));
    assert!(fleet.copies[leader].daemon.log().contains("stepped down"));
    assert_eq!(fleet.copies[leader].daemon.probe("/healthz"), Some(200));
    fleet.copies[leader].proxy.restore();
}

#[test]
fn with_different_configs_only_the_leaders_acts() {
    let specs: Vec<Spec<'_>> = [("a", 5), ("b", 7), ("c", 9)]
        .into_iter()
        .map(|(name, min)| Spec {
            name,
            targets: fixed(min),
            settings: "",
            args: &[],
        })
        .collect();
    let mut fleet = Fleet::start(Endpoint::start(), TIMING, &specs);
    let wanted = |name: &str| match name {
        "a" => Some(5),
        "b" => Some(7),
        _ => Some(9),
    };
    let (leader, _) = fleet.wait_for_leader(None, Duration::from_secs(30));
    let leader_name = fleet.copies[leader].name.clone();
    assert!(
        wait_for(Duration::from_secs(15), || !fleet.puts().is_empty()),
        "{}",
        fleet.logs()
    );
    fleet.copies[leader].daemon.signal("TERM");
    let _ = fleet.copies[leader].daemon.child.wait();
    let (successor, _) = fleet.wait_for_leader(Some(leader), Duration::from_secs(10));
    let successor_name = fleet.copies[successor].name.clone();
    assert!(
        wait_for(Duration::from_secs(15), || fleet
            .puts()
            .iter()
            .any(|(caller, _, _)| *caller == successor_name)),
        "{}",
        fleet.logs()
    );
    let puts = fleet.puts();
    for (caller, value, _) in &puts {
        assert!(
            *caller == leader_name || *caller == successor_name,
            "{caller} wrote while standing by: {puts:?}"
        );
        assert_eq!(
            *value,
            wanted(caller),
            "each leader writes its own config: {puts:?}"
        );
    }
}

#[test]
fn a_copy_whose_wall_clock_is_an_hour_ahead_changes_nothing() {
    // The lease compares only each copy's own monotonic clock; the wall clock only
    // stamps `renewed_at` for people. Fixed targets act the same at any time of day.
    let fleet = Fleet::start(
        Endpoint::start(),
        TIMING,
        &three(|_| fixed(5), &["--clock-ahead", "1h"]),
    );
    let (leader, _) = fleet.wait_for_leader(None, Duration::from_secs(30));
    std::thread::sleep(LEASE * 2);
    assert_eq!(fleet.leaders(), vec![leader], "{}", fleet.logs());
    assert_eq!(fleet.transitions_to_leader(), 1.0, "{}", fleet.logs());
    assert_eq!(
        fleet.callers(),
        BTreeSet::from([fleet.copies[leader].name.clone()])
    );
    fleet.copies[leader].daemon.signal("KILL");
    let killed = Instant::now();
    let (_, seen) = fleet.wait_for_leader(Some(leader), Duration::from_secs(15));
    assert!(
        seen - killed <= LEASE + RENEW_EVERY,
        "takeover took {:?}\n{}",
        seen - killed,
        fleet.logs()
    );
}

#[test]
fn a_new_leader_scans_the_surging_function_first_from_the_snapshot_it_finds() {
    // 60 functions, each at 5 with demand 3.5 (needs 5). At the default budget (2/s)
    // a cold start reads them in 30 s, the one last by name last.
    let names: Vec<String> = (0..60).map(|index| format!("fn{index:02}")).collect();
    let endpoint = Endpoint::start();
    {
        let mut world = endpoint.world();
        for name in &names {
            world.set_config(name, "live", 5);
            world.set_concurrency(name, "live", &[3.5], 2);
        }
    }
    let targets: String = names
        .iter()
        .map(|name| tracked_target(name, "live"))
        .collect();
    let mut fleet = Fleet::start(endpoint, TIMING, &three(|_| targets.clone(), &[]));
    let (leader, _) = fleet.wait_for_leader(None, Duration::from_secs(30));
    // The first snapshot is kept 10 s into the tenure, the next when every function
    // has been read.
    let saved = "pc_autoscaler_snapshot_saves_total{outcome=\"success\"}";
    assert!(
        wait_for(Duration::from_secs(60), || fleet.copies[leader]
            .daemon
            .metric(saved)
            .is_some_and(|saves| saves >= 2.0)),
        "the leader kept no snapshot of its cold start\n{}",
        fleet.logs()
    );

    // The surge and the kill at once: fn59 now needs 100.
    fleet
        .endpoint
        .world()
        .set_concurrency("fn59", "live", &[3.5, 70.0], 2);
    fleet.copies[leader].daemon.signal("KILL");
    let killed = Instant::now();
    let (successor, _) = fleet.wait_for_leader(Some(leader), Duration::from_secs(15));
    let successor = fleet.copies[successor].name.clone();
    let put = |fleet: &Fleet| {
        fleet
            .endpoint
            .world()
            .requests(common::PUT)
            .into_iter()
            .find(|put| {
                put.function.as_deref() == Some("fn59")
                    && put.value == Some(100)
                    && put.status == 202
                    && put.caller.as_deref() == Some(successor.as_str())
            })
    };
    assert!(
        wait_for(Duration::from_secs(30), || put(&fleet).is_some()),
        "the new leader never scaled fn59 out\n{}",
        fleet.logs()
    );
    let took = put(&fleet).expect("seen above").at - killed;
    let bound = LEASE + RENEW_EVERY + INTERVAL + Duration::from_secs(5);
    assert!(
        took <= bound,
        "the put came {took:?} after the kill, over lease + renew_every + interval + 5 s\n{}",
        fleet.logs()
    );
    fleet.restart(leader);
}

#[test]
fn an_override_set_while_one_copy_leads_is_honoured_by_the_next_after_a_kill() {
    let fleet = Fleet::start(endpoint_wanting_100(), TIMING, &three_tracked());
    let (leader, _) = fleet.wait_for_leader(None, Duration::from_secs(30));
    let put = |fleet: &Fleet, caller: &str, value: u32| {
        fleet
            .puts()
            .iter()
            .any(|(by, put, _)| by == caller && *put == Some(value))
    };
    let leader_name = fleet.copies[leader].name.clone();
    assert!(
        wait_for(Duration::from_secs(15), || put(&fleet, &leader_name, 100)),
        "{}",
        fleet.logs()
    );
    // The CLI writes the pin to the lease table, through the leader's own config.
    let set = common::binary_for_aws()
        .args(["override", "set", "f:live", "pin", "30", "--for", "1h"])
        .args(["--reason", "load test", "--config"])
        .arg(&fleet.copies[leader].config)
        .output()
        .expect("the binary runs");
    assert!(set.status.success(), "{}", common::text(&set.stderr));
    // The setter is the caller's AWS identity (moto's STS names its one user).
    assert!(
        common::text(&set.stdout).contains("by arn:aws:"),
        "{}",
        common::text(&set.stdout)
    );
    assert!(
        wait_for(Duration::from_secs(10), || put(&fleet, &leader_name, 30)),
        "{}",
        fleet.logs()
    );

    // Demand doubles as the leader dies: without the pin the next leader would put 200.
    fleet.copies[leader].daemon.signal("KILL");
    want_200(&fleet);
    let (successor, _) = fleet.wait_for_leader(Some(leader), Duration::from_secs(15));
    let pinned = "pc_autoscaler_target_override{kind=\"pin\",target=\"f:live\"}";
    assert!(
        wait_for(Duration::from_secs(10), || fleet.copies[successor]
            .daemon
            .metric(pinned)
            == Some(1.0)),
        "{}",
        fleet.logs()
    );
    std::thread::sleep(RENEW_EVERY * 3);
    let successor_name = fleet.copies[successor].name.clone();
    assert!(
        !put(&fleet, &successor_name, 200),
        "the pin was not honoured\n{}",
        fleet.logs()
    );
}
