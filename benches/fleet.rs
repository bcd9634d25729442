//! A fleet in one daemon: 10,000 targets over 20 shards (10 accounts reached through
//! STS `AssumeRole`, 2 Regions each, 500 tagged functions a shard, found by one
//! selector) against the local endpoint, each account and Region with Lambda's shared
//! 15 requests a second enforced, a 60 s interval.
//!
//! Prints: how long discovery and the cold start took until every target was read
//! and written, resident memory (and its peak) and CPU per cycle over the measured
//! minutes (`BENCH_FLEET_MINUTES`, default 3), Lambda requests a second per shard and
//! 429s. The targets are reactive (`forecast` and `choose_window` off): 14 days of
//! minute history for 10,000 series would not fit the local endpoint's memory, and the
//! history's own cost is measured at 5,000 targets by `bench-scale.sh`.
//! `bash scripts/bench-fleet.sh`.

// Benchmarks drive real processes in real time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::aws_endpoint::Endpoint;
use common::{Daemon, free_port, write_config};
use support::usage;

const ACCOUNTS: usize = 10;
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const FUNCTIONS_PER_SHARD: usize = 500;
const INTERVAL_SECONDS: u64 = 60;
const BUDGET: f64 = 6.0;
/// 3.5 at target 0.7: every target wants 5.
const STEADY: f64 = 3.5;

fn account_id(index: usize) -> String {
    format!("{:012}", 100_000_000_000 + index)
}

fn main() {
    let minutes: u64 = std::env::var("BENCH_FLEET_MINUTES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(3);
    let endpoint = Endpoint::start();
    let mut worlds = Vec::new();
    for account in 0..ACCOUNTS {
        for region in REGIONS {
            let world = endpoint.scope(&account_id(account), region);
            {
                let mut world = world.lock().expect("the world lock");
                world.shared_limit = Some(15);
                // Room for every function's 5 above Lambda's unreserved floor.
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
    let port = free_port();
    let mut text = format!(
        "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n[daemon]\nlisten = \"127.0.0.1:{port}\"\n\
         interval = \"{INTERVAL_SECONDS}s\"\ncontrol_plane_budget = {BUDGET}\n",
        endpoint.url
    );
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
    let (_dir, config) = write_config("fleet.toml", &text);
    let started = Instant::now();
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &[]);
    daemon.wait_ready();
    let pid = daemon.child.id();
    let written = |world: &std::sync::Arc<std::sync::Mutex<common::aws_endpoint::World>>| {
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
    };
    let mut peak = 0;
    loop {
        let done: usize = worlds.iter().map(written).sum();
        peak = peak.max(usage(pid).1);
        if done >= ACCOUNTS * REGIONS.len() * FUNCTIONS_PER_SHARD {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "only {done} written:\n{}",
            daemon.log()
        );
        keep_fresh(&worlds);
        std::thread::sleep(Duration::from_secs(5));
    }
    let cold = started.elapsed();
    println!(
        "every one of {} targets discovered, read and written at 5 in {:.0} s",
        ACCOUNTS * REGIONS.len() * FUNCTIONS_PER_SHARD,
        cold.as_secs_f64()
    );
    let requests_before: Vec<usize> = worlds
        .iter()
        .map(|world| world.lock().expect("lock").log.len())
        .collect();
    let (cpu_before, _) = usage(pid);
    let measured = Instant::now();
    while measured.elapsed() < Duration::from_secs(minutes * 60) {
        keep_fresh(&worlds);
        peak = peak.max(usage(pid).1);
        std::thread::sleep(Duration::from_secs(5));
    }
    let (cpu_after, rss) = usage(pid);
    let seconds = measured.elapsed().as_secs_f64();
    let cycles = seconds / INTERVAL_SECONDS as f64;
    println!(
        "measured {minutes} min: resident {:.1} MiB (peak {:.1} MiB), CPU {:.0} ms a cycle ({:.1} % of one core)",
        rss as f64 / 1_048_576.0,
        peak as f64 / 1_048_576.0,
        (cpu_after - cpu_before) * 1000.0 / cycles,
        (cpu_after - cpu_before) * 100.0 / seconds
    );
    let mut throttled = 0;
    let mut busiest: f64 = 0.0;
    for (world, before) in worlds.iter().zip(requests_before) {
        let world = world.lock().expect("lock");
        let lambda = world.log[before..]
            .iter()
            .filter(|logged| {
                logged.operation != "GetMetricData" && logged.operation != "GetResources"
            })
            .count();
        busiest = busiest.max(lambda as f64 / seconds);
        throttled += world
            .log
            .iter()
            .filter(|logged| logged.status == 429)
            .count();
    }
    println!(
        "Lambda requests a second in the busiest shard: {busiest:.2}; 429s in all: {throttled}"
    );
}

/// Extends every series to a minute ago, as CloudWatch's moves on.
fn keep_fresh(worlds: &[std::sync::Arc<std::sync::Mutex<common::aws_endpoint::World>>]) {
    for world in worlds {
        let mut world = world.lock().expect("the world lock");
        for function in 0..FUNCTIONS_PER_SHARD {
            world.extend_concurrency(&format!("f{function:04}"), "live", STEADY, 2, 20);
        }
    }
}
