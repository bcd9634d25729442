//! A fleet spread over three copies (`[leader] spread = true`, the default lease of
//! 15 s renewed every 5 s): 20,000 targets over 40 shards (20 accounts reached through
//! STS `AssumeRole`, 2 Regions each, 500 tagged functions a shard, found by one
//! selector) against the local endpoint, Lambda's shared 15 requests a second
//! enforced per account and Region, a 60 s interval; the leases on moto's DynamoDB.
//!
//! Prints: how long the three copies took to balance after a common start, after a
//! SIGKILL of one and after it joins again, and how many shards moved each time; how
//! long a moved shard had no writer (the granter's fence closing to the taker acting
//! on it, from the copies' logs); memory and CPU per copy over the measured minutes
//! (`BENCH_SPREAD_MINUTES`, default 2); the lease table's requests a second and their
//! cost a month at DynamoDB's on-demand price. The targets are reactive, as in
//! `bench-fleet.sh`. `bash scripts/bench-spread.sh`.

// Benchmarks drive real processes in real time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::aws_endpoint::{Endpoint, World};
use common::fleet::{Fleet, Spec, Timing};
use support::usage;

const ACCOUNTS: usize = 20;
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const SHARDS: usize = ACCOUNTS * 2;
const FUNCTIONS_PER_SHARD: usize = 500;
/// 3.5 at target 0.7: every target wants 5.
const STEADY: f64 = 3.5;
const TIMING: Timing = Timing {
    lease: Duration::from_secs(15),
    renew_every: Duration::from_secs(5),
    interval: Duration::from_secs(60),
    spread: true,
};
/// DynamoDB on demand, us-east-1: per million read and write request units. A
/// consistent read of an item under 4 KB is one read unit, a write under 1 KB one
/// write unit.
const USD_PER_MILLION_READS: f64 = 0.125;
const USD_PER_MILLION_WRITES: f64 = 0.625;
const SECONDS_PER_MONTH: f64 = 30.0 * 86_400.0;

fn account_id(index: usize) -> String {
    format!("{:012}", 200_000_000_000 + index)
}

type Worlds = Vec<Arc<Mutex<World>>>;

fn main() {
    let minutes: u64 = std::env::var("BENCH_SPREAD_MINUTES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2);
    let endpoint = Endpoint::start();
    let worlds = worlds(&endpoint);
    let specs: Vec<Spec<'_>> = ["a", "b", "c"]
        .into_iter()
        .map(|name| Spec {
            name,
            targets: config(),
            settings: "control_plane_budget = 6",
            args: &[],
        })
        .collect();
    let started = Instant::now();
    let mut fleet = Fleet::start(endpoint, TIMING, &specs);
    let all = [0, 1, 2];
    let took = balanced(&fleet, &all, started);
    println!(
        "start: balanced {:?} in {:.1} s, {} shard(s) handed over on the way",
        counts(&fleet, &all),
        took.as_secs_f64(),
        sum(&fleet, &all, "granted")
    );
    let mut peak = [0u64; 3];
    while written(&worlds) < SHARDS * FUNCTIONS_PER_SHARD {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "only {} written:\n{}",
            written(&worlds),
            fleet.logs()
        );
        sample_peaks(&fleet, &mut peak);
        keep_fresh(&worlds);
        std::thread::sleep(Duration::from_secs(5));
    }
    println!(
        "every one of {} targets discovered, read and written at 5 in {:.0} s",
        SHARDS * FUNCTIONS_PER_SHARD,
        started.elapsed().as_secs_f64()
    );
    measure(&fleet, &worlds, minutes, &mut peak);

    // SIGKILL: the others take its shards once their leases expire, then hold 20 each.
    let killed_shards = held(&fleet, 0);
    let taken_before = sum(&fleet, &[1, 2], "taken");
    let _ = fleet.copies[0].daemon.child.kill();
    let _ = fleet.copies[0].daemon.child.wait();
    let killed = Instant::now();
    let killed_at = Utc::now();
    let took = balanced(&fleet, &[1, 2], killed);
    let gaps = acting_after(&fleet, &killed_shards, killed_at);
    println!(
        "SIGKILL of a copy holding {}: the others hold {:?} after {:.1} s, {} shard(s) taken; its shards unwritten for {}",
        killed_shards.len(),
        counts(&fleet, &[1, 2]),
        took.as_secs_f64(),
        sum(&fleet, &[1, 2], "taken") - taken_before,
        spread_of(&gaps)
    );

    // It joins again: handed one shard a cycle by the most loaded copy.
    let granted_before = sum(&fleet, &[1, 2], "granted");
    let joined_at = Utc::now();
    fleet.restart(0);
    let joined = Instant::now();
    let took = balanced(&fleet, &all, joined);
    let gaps = handover_gaps(&fleet, joined_at);
    println!(
        "a copy joins: balanced {:?} after {:.1} s, {} shard(s) moved, one a cycle ({} s); a moved shard unwritten for {}",
        counts(&fleet, &all),
        took.as_secs_f64(),
        sum(&fleet, &[1, 2], "granted") - granted_before,
        TIMING.lease.as_secs(),
        spread_of(&gaps)
    );
}

/// Every shard's world: 500 tagged functions with the alias, their series fresh.
fn worlds(endpoint: &Endpoint) -> Worlds {
    let mut worlds = Vec::new();
    for account in 0..ACCOUNTS {
        for region in REGIONS {
            let world = endpoint.scope(&account_id(account), region);
            {
                let mut world = world.lock().expect("the world lock");
                world.shared_limit = Some(15);
                world.account_limit = 10_000;
                world.list_page_size = 100;
                for function in 0..FUNCTIONS_PER_SHARD {
                    let name = format!("f{function:04}");
                    let entry = world.function(&name);
                    entry.tags.insert("team".into(), "fleet".into());
                    entry.aliases.insert("live".into(), false);
                    world.extend_concurrency(&name, "live", STEADY, 2, 20);
                }
            }
            worlds.push(world);
        }
    }
    worlds
}

fn config() -> String {
    let mut text = String::new();
    for account in 0..ACCOUNTS {
        text.push_str(&format!(
            "[[account]]\nname = \"a{account}\"\nrole_arn = \"arn:aws:iam::{}:role/pc\"\nregions = [\"us-east-1\", \"eu-west-1\"]\n",
            account_id(account)
        ));
    }
    text.push_str(
        "[[selector]]\nname = \"fleet\"\ntags = { team = \"fleet\" }\nqualifier = \"live\"\nmin = 1\nmax = 1000\n\
         tracking = { metric = \"concurrency\", target = 0.7, forecast = \"off\", choose_window = \"off\" }\n",
    );
    text
}

/// The shards (`account/region`) copy `index` holds, from its `/readyz` (a scrape of
/// `/metrics` at 7,000 targets would cost the copy more than the rest of its work).
fn held(fleet: &Fleet, index: usize) -> Vec<String> {
    let Some((_, body)) = common::http_get(&fleet.copies[index].daemon.address, "/readyz") else {
        return Vec::new();
    };
    body.lines()
        .find_map(|line| line.strip_prefix("shards held: "))
        .filter(|held| *held != "none")
        .map(|held| held.split(", ").map(str::to_owned).collect())
        .unwrap_or_default()
}

fn counts(fleet: &Fleet, indices: &[usize]) -> Vec<usize> {
    indices
        .iter()
        .map(|index| held(fleet, *index).len())
        .collect()
}

/// Waits until the copies hold every shard, at most one apart; how long from `from`.
fn balanced(fleet: &Fleet, indices: &[usize], from: Instant) -> Duration {
    loop {
        let counts = counts(fleet, indices);
        let (min, max) = (counts.iter().min(), counts.iter().max());
        if counts.iter().sum::<usize>() == SHARDS
            && max.zip(min).is_some_and(|(max, min)| max - min <= 1)
        {
            return from.elapsed();
        }
        assert!(
            from.elapsed() < Duration::from_secs(900),
            "not balanced: {counts:?}\n{}",
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `pc_autoscaler_shard_lease_changes_total{change}` summed over the copies.
fn sum(fleet: &Fleet, indices: &[usize], change: &str) -> f64 {
    metric_sum(
        fleet,
        indices,
        &format!("pc_autoscaler_shard_lease_changes_total{{change=\"{change}\"}}"),
    )
}

fn metric_sum(fleet: &Fleet, indices: &[usize], series: &str) -> f64 {
    indices
        .iter()
        .filter_map(|index| fleet.copies[*index].daemon.metric(series))
        .sum()
}

fn written(worlds: &Worlds) -> usize {
    worlds
        .iter()
        .map(|world| {
            let world = world.lock().expect("the world lock");
            world
                .functions
                .values()
                .filter(|function| {
                    function
                        .configs
                        .get("live")
                        .is_some_and(|config| config.requested == 5)
                })
                .count()
        })
        .sum()
}

fn sample_peaks(fleet: &Fleet, peak: &mut [u64; 3]) {
    for (index, copy) in fleet.copies.iter().enumerate() {
        peak[index] = peak[index].max(usage(copy.daemon.child.id()).1);
    }
}

/// Memory and CPU per copy, and the lease table's requests, over `minutes`.
fn measure(fleet: &Fleet, worlds: &Worlds, minutes: u64, peak: &mut [u64; 3]) {
    let pids: Vec<u32> = fleet
        .copies
        .iter()
        .map(|copy| copy.daemon.child.id())
        .collect();
    let cpu_before: Vec<f64> = pids.iter().map(|pid| usage(*pid).0).collect();
    let lease = |kind: &str| {
        metric_sum(
            fleet,
            &[0, 1, 2],
            &format!("pc_autoscaler_lease_requests_total{{kind=\"{kind}\"}}"),
        )
    };
    let (reads_before, writes_before) = (lease("read"), lease("write"));
    let measured = Instant::now();
    while measured.elapsed() < Duration::from_secs(minutes * 60) {
        keep_fresh(worlds);
        sample_peaks(fleet, peak);
        std::thread::sleep(Duration::from_secs(5));
    }
    let seconds = measured.elapsed().as_secs_f64();
    let cycles = seconds / TIMING.interval.as_secs_f64();
    for (index, pid) in pids.iter().enumerate() {
        let (cpu, rss) = usage(*pid);
        println!(
            "copy {} ({} shards): resident {:.1} MiB (peak {:.1} MiB), CPU {:.0} ms a cycle ({:.2} % of one core)",
            fleet.copies[index].name,
            held(fleet, index).len(),
            rss as f64 / 1_048_576.0,
            peak[index] as f64 / 1_048_576.0,
            (cpu - cpu_before[index]) * 1000.0 / cycles,
            (cpu - cpu_before[index]) * 100.0 / seconds
        );
    }
    let reads = (lease("read") - reads_before) / seconds;
    let writes = (lease("write") - writes_before) / seconds;
    let usd = (reads * USD_PER_MILLION_READS + writes * USD_PER_MILLION_WRITES) * SECONDS_PER_MONTH
        / 1_000_000.0;
    println!(
        "lease table: {reads:.1} reads and {writes:.1} writes a second from the three copies, ${usd:.2} a month on demand"
    );
}

/// Extends every series to a minute ago, as CloudWatch's moves on.
fn keep_fresh(worlds: &Worlds) {
    for world in worlds {
        let mut world = world.lock().expect("the world lock");
        for function in 0..FUNCTIONS_PER_SHARD {
            world.extend_concurrency(&format!("f{function:04}"), "live", STEADY, 2, 20);
        }
    }
}

/// (time, shard) of each log line with `message` at or after `since`, over the copies.
fn log_times(fleet: &Fleet, message: &str, since: DateTime<Utc>) -> Vec<(DateTime<Utc>, String)> {
    let mut found = Vec::new();
    for copy in &fleet.copies {
        for line in copy
            .daemon
            .log()
            .lines()
            .filter(|line| line.contains(message))
        {
            let time = line
                .split_whitespace()
                .next()
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok());
            let shard = line
                .split("shard=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next());
            if let (Some(time), Some(shard)) = (time, shard) {
                let time = time.with_timezone(&Utc);
                if time >= since {
                    found.push((time, shard.to_owned()));
                }
            }
        }
    }
    found
}

const ACTING: &str = "acting on the shard from its snapshot";

/// From `since` to when another copy acted on each of `shards`.
fn acting_after(fleet: &Fleet, shards: &[String], since: DateTime<Utc>) -> Vec<f64> {
    let acting = log_times(fleet, ACTING, since);
    shards
        .iter()
        .filter_map(|shard| {
            let at = acting
                .iter()
                .filter(|(_, on)| on == shard)
                .map(|(at, _)| *at)
                .min()?;
            Some((at - since).num_milliseconds() as f64 / 1000.0)
        })
        .collect()
}

/// For each shard granted since `since`: from the granter's fence closing to the
/// taker acting on it.
fn handover_gaps(fleet: &Fleet, since: DateTime<Utc>) -> Vec<f64> {
    let acting = log_times(fleet, ACTING, since);
    let mut next_acting: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    for (at, shard) in acting {
        next_acting.entry(shard).or_default().push(at);
    }
    log_times(fleet, "handing the shard over", since)
        .into_iter()
        .filter_map(|(granted, shard)| {
            let taken = next_acting
                .get(&shard)?
                .iter()
                .filter(|at| **at >= granted)
                .min()?;
            Some((*taken - granted).num_milliseconds() as f64 / 1000.0)
        })
        .collect()
}

fn spread_of(seconds: &[f64]) -> String {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    match (sorted.get(sorted.len() / 2), sorted.last()) {
        (Some(median), Some(max)) => {
            format!("median {median:.1} s, max {max:.1} s over {}", sorted.len())
        }
        _ => "(none seen)".to_owned(),
    }
}
