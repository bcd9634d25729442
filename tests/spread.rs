//! Spread leases end to end (`[leader] spread = true`): copies of the real binary
//! share a lease per shard on moto's DynamoDB, each through a proxy the test can cut,
//! and act on three accounts × two Regions of the local endpoint, which tells
//! accounts apart by the `AssumeRole` key a request is signed with and copies apart by
//! their SDK app id.

#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::aws_endpoint::Endpoint;
use common::fleet::{Fleet, Spec, Timing};
use common::{PUT, http_get, text, wait_for};

const LEASE: Duration = Duration::from_secs(3);
const RENEW_EVERY: Duration = Duration::from_secs(1);
const INTERVAL: Duration = Duration::from_secs(1);
const TIMING: Timing = Timing {
    lease: LEASE,
    renew_every: RENEW_EVERY,
    interval: INTERVAL,
    spread: true,
};
/// One balancing cycle is one lease.
const CYCLE: Duration = LEASE;

const ACCOUNTS: [(&str, &str); 3] = [
    ("a", "111111111111"),
    ("b", "222222222222"),
    ("c", "333333333333"),
];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// (account name, account id, Region) of every shard.
fn shards() -> Vec<(&'static str, &'static str, &'static str)> {
    ACCOUNTS
        .iter()
        .flat_map(|(name, id)| REGIONS.iter().map(move |region| (*name, *id, *region)))
        .collect()
}

/// `f:live` in every shard peaked at 70: at target 0.7 it wants 100.
fn endpoint() -> Endpoint {
    let endpoint = Endpoint::start();
    for (_, id, region) in shards() {
        want(&endpoint, id, region, 70.0);
    }
    endpoint
}

/// From now on `f:live` in the shard peaks at `peak` (wants `peak / 0.7`).
fn want(endpoint: &Endpoint, id: &str, region: &str, peak: f64) {
    let world = endpoint.scope(id, region);
    let mut world = world.lock().expect("the world lock is not poisoned");
    world.function("f").aliases.insert("live".into(), false);
    world.set_concurrency("f", "live", &[50.0, peak], 2);
}

fn config() -> String {
    let mut text = String::new();
    for (name, id) in ACCOUNTS {
        text.push_str(&format!(
            "[[account]]\nname = \"{name}\"\nrole_arn = \"arn:aws:iam::{id}:role/pc-autoscaler\"\nregions = [\"us-east-1\", \"eu-west-1\"]\n"
        ));
    }
    for (name, _, region) in shards() {
        text.push_str(&format!(
            "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\naccount = \"{name}\"\nregion = \"{region}\"\nmin = 1\nmax = 1000\n\
             tracking = {{ metric = \"concurrency\", target = 0.7, forecast = \"off\", choose_window = \"off\" }}\n"
        ));
    }
    text
}

fn copies(names: &[&'static str]) -> Vec<Spec<'static>> {
    names
        .iter()
        .map(|name| Spec {
            name,
            targets: config(),
            settings: "",
            args: &[],
        })
        .collect()
}

/// The shards copy `index` says it holds.
fn held(fleet: &Fleet, index: usize) -> Vec<(&'static str, &'static str)> {
    shards()
        .into_iter()
        .filter(|(name, _, region)| {
            fleet.copies[index].daemon.metric(&format!(
                "pc_autoscaler_shard_lease_held{{account=\"{name}\",region=\"{region}\"}}"
            )) == Some(1.0)
        })
        .map(|(name, _, region)| (name, region))
        .collect()
}

fn counts(fleet: &Fleet, indices: &[usize]) -> Vec<usize> {
    indices
        .iter()
        .map(|index| held(fleet, *index).len())
        .collect()
}

/// Successful puts of one shard as (caller, value, when), in order.
fn puts(fleet: &Fleet, id: &str, region: &str) -> Vec<(String, Option<u32>, Instant)> {
    let world = fleet.endpoint.scope(id, region);
    let world = world.lock().expect("the world lock is not poisoned");
    world
        .requests(PUT)
        .into_iter()
        .filter(|put| put.status == 202)
        .map(|put| (put.caller.unwrap_or_default(), put.value, put.at))
        .collect()
}

/// One writer per shard: once a copy wrote a shard after another, the other never
/// writes it again within a lease (a copy that lost a shard wrote nothing stale).
fn assert_one_writer_per_shard(fleet: &Fleet) {
    for (_, id, region) in shards() {
        let puts = puts(fleet, id, region);
        for (index, (later, _, at)) in puts.iter().enumerate() {
            for (earlier, _, before) in &puts[..index] {
                if earlier == later {
                    continue;
                }
                let between = puts[..index]
                    .iter()
                    .any(|(caller, _, when)| caller == later && when < before);
                assert!(
                    !(between && at.duration_since(*before) < LEASE),
                    "{id}/{region}: {later} wrote, then {earlier}, then {later} again within a lease: {puts:?}\n{}",
                    fleet.logs()
                );
            }
        }
    }
}

/// Waits until the copies at `indices` hold `expected` shards each; returns how long.
fn settle(fleet: &Fleet, indices: &[usize], expected: &[usize], limit: Duration) -> Duration {
    let start = Instant::now();
    assert!(
        wait_for(limit, || counts(fleet, indices) == expected),
        "not {expected:?} within {limit:?}: {:?}\n{}",
        counts(fleet, indices),
        fleet.logs()
    );
    start.elapsed()
}

fn granted(fleet: &Fleet, indices: &[usize]) -> f64 {
    indices
        .iter()
        .filter_map(|index| {
            fleet.copies[*index]
                .daemon
                .metric("pc_autoscaler_shard_lease_changes_total{change=\"granted\"}")
        })
        .sum()
}

#[test]
fn three_copies_share_six_shards_and_hand_them_over_on_stop_join_and_kill() {
    let mut fleet = Fleet::start(endpoint(), TIMING, &copies(&["a", "b", "c"]));
    settle(&fleet, &[0, 1, 2], &[2, 2, 2], Duration::from_secs(40));
    // Every shard is written to 100 (by whichever copy held it then: the first copy
    // up took every shard and handed them out one a cycle).
    for (name, id, region) in shards() {
        assert!(
            wait_for(Duration::from_secs(15), || puts(&fleet, id, region)
                .iter()
                .any(|(_, value, _)| *value == Some(100))),
            "{name}/{region}\n{}",
            fleet.logs()
        );
    }
    // Each copy says which shards it holds (once each has started them from their
    // snapshots and read their metrics); `leases` reads the table.
    for index in 0..3 {
        let held: Vec<String> = held(&fleet, index)
            .iter()
            .map(|(name, region)| format!("{name}/{region}"))
            .collect();
        let address = &fleet.copies[index].daemon.address;
        let says = |path: &str| http_get(address, path).unwrap_or_default();
        assert!(
            wait_for(Duration::from_secs(10), || {
                let (status, body) = says("/readyz");
                status == 200 && body.contains(&format!("shards held: {}", held.join(", ")))
            }),
            "{:?} {held:?}",
            says("/readyz")
        );
        let (_, body) = says("/status");
        let status: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(status["shards_held"], serde_json::json!(held), "{body}");
    }
    let output = common::run_against_aws(&[
        "leases",
        "--config",
        fleet.copies[0].config.to_str().expect("utf-8"),
    ]);
    let table = text(&output.stdout);
    assert!(output.status.success(), "{table}{}", text(&output.stderr));
    for index in 0..3 {
        for (name, region) in held(&fleet, index) {
            let row = table
                .lines()
                .find(|line| line.starts_with(&format!("{name}/{region} ")))
                .unwrap_or_else(|| panic!("no row for {name}/{region}:\n{table}"));
            assert!(
                row.split_whitespace().nth(1) == Some(fleet.copies[index].name.as_str()),
                "{row}"
            );
        }
    }

    // Settled: nothing moves over two cycles.
    let granted_at_start = granted(&fleet, &[0, 1, 2]);
    std::thread::sleep(CYCLE * 2);
    assert_eq!(counts(&fleet, &[0, 1, 2]), [2, 2, 2]);
    assert_eq!(granted(&fleet, &[0, 1, 2]), granted_at_start);

    // SIGTERM: the stopped copy's shards are held by the others within renew + 1 s.
    fleet.copies[0].daemon.signal("TERM");
    let handed = Instant::now();
    assert!(
        wait_for(RENEW_EVERY + Duration::from_secs(1), || counts(
            &fleet,
            &[1, 2]
        )
        .iter()
        .sum::<usize>()
            == 6),
        "{:?}\n{}",
        counts(&fleet, &[1, 2]),
        fleet.logs()
    );
    let handed = handed.elapsed();
    let _ = fleet.copies[0].daemon.child.wait();

    // It joins again: handed one shard a cycle until it has its share of two.
    let granted_before = granted(&fleet, &[1, 2]);
    fleet.restart(0);
    let joined = settle(&fleet, &[0, 1, 2], &[2, 2, 2], CYCLE * 4 + RENEW_EVERY * 4);
    assert_eq!(
        granted(&fleet, &[1, 2]) - granted_before,
        2.0,
        "{}",
        fleet.logs()
    );

    // A fourth copy joins: one shard moves to it (2/2/1/1), within a cycle and a read.
    let granted_before = granted(&fleet, &[0, 1, 2]);
    fleet.add(&copies(&["d"])[0]);
    let fourth = Instant::now();
    assert!(
        wait_for(CYCLE * 2 + RENEW_EVERY * 2, || {
            let mut counts = counts(&fleet, &[0, 1, 2, 3]);
            counts.sort_unstable();
            counts == [1, 1, 2, 2]
        }),
        "{:?}\n{}",
        counts(&fleet, &[0, 1, 2, 3]),
        fleet.logs()
    );
    let fourth = fourth.elapsed();
    std::thread::sleep(CYCLE);
    assert_eq!(granted(&fleet, &[0, 1, 2]) - granted_before, 1.0);
    let _ = fleet.copies[3].daemon.child.kill();
    let _ = fleet.copies[3].daemon.child.wait();
    fleet.copies.pop();
    settle(&fleet, &[0, 1, 2], &[2, 2, 2], CYCLE * 3 + RENEW_EVERY * 4);

    // SIGKILL mid-surge: the killed copy's shards are taken and the surge written
    // within lease + renew + interval + 5 s.
    let victim = 1;
    let victim_shards = held(&fleet, victim);
    for (name, region) in &victim_shards {
        let id = ACCOUNTS
            .iter()
            .find(|(n, _)| n == name)
            .expect("an account")
            .1;
        want(&fleet.endpoint, id, region, 140.0);
    }
    let _ = fleet.copies[victim].daemon.child.kill();
    let killed = Instant::now();
    let limit = LEASE + RENEW_EVERY + INTERVAL + Duration::from_secs(5);
    for (name, region) in &victim_shards {
        let id = ACCOUNTS
            .iter()
            .find(|(n, _)| n == name)
            .expect("an account")
            .1;
        assert!(
            wait_for(limit.saturating_sub(killed.elapsed()), || {
                puts(&fleet, id, region).iter().any(|(caller, value, at)| {
                    *value == Some(200) && *at > killed && *caller != fleet.copies[victim].name
                })
            }),
            "{name}/{region}: the surge was not written within {limit:?}\n{}",
            fleet.logs()
        );
    }
    let surge_written = killed.elapsed();
    assert_eq!(counts(&fleet, &[0, 2]), [3, 3]);

    // An override set through one copy's config is honoured by whichever holds each
    // target.
    let set = common::binary_for_aws()
        .args(["override", "set", "--all", "pin", "30", "--for", "1h"])
        .args(["--reason", "load test", "--config"])
        .arg(&fleet.copies[0].config)
        .output()
        .expect("the binary runs");
    assert!(set.status.success(), "{}", text(&set.stderr));
    for (name, id, region) in shards() {
        assert!(
            wait_for(Duration::from_secs(10), || puts(&fleet, id, region)
                .iter()
                .any(|(_, value, _)| *value == Some(30))),
            "{name}/{region} was not pinned\n{}",
            fleet.logs()
        );
    }
    assert_one_writer_per_shard(&fleet);
    eprintln!(
        "handed over on SIGTERM in {handed:?}; a joiner balanced in {joined:?}; a fourth copy had its shard in {fourth:?}; a kill's surge written in {surge_written:?}"
    );
}

#[test]
fn a_stopped_process_writes_nothing_stale_and_a_lost_table_stops_every_write() {
    let fleet = Fleet::start(endpoint(), TIMING, &copies(&["a", "b"]));
    settle(&fleet, &[0, 1], &[3, 3], Duration::from_secs(40));
    for (_, id, region) in shards() {
        assert!(wait_for(Duration::from_secs(15), || puts(
            &fleet, id, region
        )
        .iter()
        .any(|(_, value, _)| *value == Some(100))));
    }

    // SIGSTOP for longer than a lease: the other copy takes its shards; after
    // SIGCONT it writes nothing before it holds a lease again.
    let frozen = held(&fleet, 0);
    fleet.copies[0].daemon.signal("STOP");
    for (_, id, region) in shards() {
        want(&fleet.endpoint, id, region, 140.0);
    }
    assert!(
        wait_for(LEASE * 3, || counts(&fleet, &[1]) == [6]),
        "{}",
        fleet.logs()
    );
    fleet.copies[0].daemon.signal("CONT");
    settle(&fleet, &[0, 1], &[3, 3], CYCLE * 5 + RENEW_EVERY * 4);
    assert!(!frozen.is_empty());
    assert_one_writer_per_shard(&fleet);

    // DynamoDB out of reach for longer than a lease: every copy stops writing within
    // lease / 2 and nothing is scaled in; all resume when it is back.
    for (_, id, region) in shards() {
        assert!(wait_for(Duration::from_secs(15), || puts(
            &fleet, id, region
        )
        .iter()
        .any(|(_, value, _)| *value == Some(200))));
    }
    for copy in &fleet.copies {
        copy.proxy.cut();
    }
    let cut = Instant::now();
    std::thread::sleep(LEASE / 2 + Duration::from_millis(300));
    let quiet_from = Instant::now();
    for (_, id, region) in shards() {
        want(&fleet.endpoint, id, region, 210.0);
    }
    std::thread::sleep(LEASE * 2);
    let mut during: BTreeMap<String, usize> = BTreeMap::new();
    for (_, id, region) in shards() {
        for (caller, value, at) in puts(&fleet, id, region) {
            assert!(value >= Some(100), "scaled in to {value:?}");
            if at > quiet_from {
                *during.entry(caller).or_default() += 1;
            }
        }
    }
    assert!(
        during.is_empty(),
        "writes later than lease / 2 after the cut ({:?}): {during:?}",
        cut.elapsed()
    );
    for copy in &fleet.copies {
        copy.proxy.restore();
    }
    for (name, id, region) in shards() {
        assert!(
            wait_for(LEASE * 4 + Duration::from_secs(10), || puts(
                &fleet, id, region
            )
            .iter()
            .any(|(_, value, _)| *value == Some(300))),
            "{name}/{region} was not written after DynamoDB came back\n{}",
            fleet.logs()
        );
    }
    assert_one_writer_per_shard(&fleet);
}
