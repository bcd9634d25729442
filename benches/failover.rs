//! Leader failover time over forced failovers, with the default lease (15 s, renewed
//! every 5 s): three copies of the release binary share a lease on moto's DynamoDB.
//!
//! - SIGKILL: from the kill until another copy reports itself leader. The bound is
//!   `lease + renew_every` (a standby reads the lease every `renew_every / 2` and takes
//!   it once one version has stood a full lease on its own clock).
//! - SIGTERM: the leader releases the lease on its way out; the bound is
//!   `renew_every + 1 s`.
//!
//! The stopped copy is started again after each failover, so three copies always
//! contend. Prints p50 and max of each. `bash scripts/bench-failover.sh`;
//! `BENCH_FAILOVERS` sets the count (20; 0 skips this part).
//!
//! Then a surge at the kill ([`surge`]): 2,500 functions with a tracked target each,
//! Lambda's shared 15/s enforced by the endpoint, a 20 s interval. Once the leader's
//! cold start is over and kept in its snapshot, 100 targets spread over the names
//! surge (each now needs 100, not 5) at the moment the leader is SIGKILLed. Prints, from
//! the kill, p50, p99 and max of the new leader's puts for them, with the snapshot and
//! with it deleted, beside the cold start's length. `BENCH_SURGE_BUDGET` sets
//! `control_plane_budget` (12, so that the cold start is over in 4 minutes);
//! `BENCH_SURGE=with` or `without` runs one of the two.

#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::aws_endpoint::Endpoint;
use common::fleet::{Fleet, Spec, Timing};
use common::wait_for;

const TIMING: Timing = Timing {
    lease: Duration::from_secs(15),
    renew_every: Duration::from_secs(5),
    interval: Duration::from_secs(1),
    spread: false,
};

fn from_env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let failovers: usize = from_env("BENCH_FAILOVERS", 20);
    if failovers > 0 {
        takeovers(failovers);
    }
    let budget: f64 = from_env("BENCH_SURGE_BUDGET", 12.0);
    // `BENCH_SURGE=with` or `without` runs one of the two.
    let which: String = from_env("BENCH_SURGE", "both".to_owned());
    for keep_snapshot in [true, false] {
        if which == "both" || (which == "with") == keep_snapshot {
            surge(budget, keep_snapshot);
        }
    }
}

fn takeovers(failovers: usize) {
    let target =
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nname = \"fixed\"\nmin = 5\nmax = 50\n";
    let specs: Vec<Spec<'_>> = ["a", "b", "c"]
        .into_iter()
        .map(|name| Spec {
            name,
            targets: target.to_owned(),
            settings: "",
            args: &[],
        })
        .collect();
    let mut fleet = Fleet::start(Endpoint::start(), TIMING, &specs);
    let limit = TIMING.lease * 3;
    for (signal, bound) in [
        ("KILL", TIMING.lease + TIMING.renew_every),
        ("TERM", TIMING.renew_every + Duration::from_secs(1)),
    ] {
        let mut times = Vec::with_capacity(failovers);
        for round in 0..failovers {
            let (leader, _) = fleet.wait_for_leader(None, limit);
            // A moment in the tenure that differs from round to round, relative to the
            // renew period.
            std::thread::sleep(Duration::from_millis(300 + 700 * (round as u64 % 7)));
            fleet.copies[leader].daemon.signal(signal);
            let stopped = Instant::now();
            let (_, seen) = fleet.wait_for_leader(Some(leader), limit);
            let took = seen - stopped;
            eprintln!("SIG{signal} {:>2}: {:.2} s", round + 1, took.as_secs_f64());
            times.push(took);
            let _ = fleet.copies[leader].daemon.child.wait();
            fleet.restart(leader);
        }
        times.sort();
        let p50 = times[times.len() / 2];
        let max = times[times.len() - 1];
        println!(
            "SIG{signal}: {} failovers, takeover p50 {:.2} s, max {:.2} s (bound {:.0} s){}",
            times.len(),
            p50.as_secs_f64(),
            max.as_secs_f64(),
            bound.as_secs_f64(),
            if max <= bound {
                ""
            } else {
                "  ABOVE THE BOUND"
            }
        );
    }
    let puts = fleet.puts().len();
    println!("puts of the fixed target over the run: {puts} (each new leader writes once at most)");
}

const FUNCTIONS: usize = 2_500;
const SURGING: usize = 100;
const SURGE_TIMING: Timing = Timing {
    lease: Duration::from_secs(15),
    renew_every: Duration::from_secs(5),
    interval: Duration::from_secs(20),
    spread: false,
};

/// 100 targets surge as the leader is killed; how long after the kill the new leader
/// puts each one's new capacity.
fn surge(budget: f64, keep_snapshot: bool) {
    let name = |index: usize| format!("fn{index:04}");
    let endpoint = Endpoint::start();
    {
        let mut world = endpoint.world();
        world.shared_limit = Some(15);
        // 2,500 functions at 5, and 100 surging to 100: far above the endpoint's
        // default account, as the scale bench.
        world.account_limit = 1_000_000;
        for index in 0..FUNCTIONS {
            world.set_config(&name(index), "live", 5);
            world.set_concurrency(&name(index), "live", &[3.5], 2);
        }
    }
    let targets: String = (0..FUNCTIONS)
        .map(|index| common::tracked_target(&name(index), "live"))
        .collect();
    let settings = format!("control_plane_budget = {budget}");
    let specs: Vec<Spec<'_>> = ["a", "b", "c"]
        .into_iter()
        .map(|copy| Spec {
            name: copy,
            targets: targets.clone(),
            settings: &settings,
            args: &[],
        })
        .collect();
    let started = Instant::now();
    let fleet = Fleet::start(endpoint, SURGE_TIMING, &specs);
    let (leader, _) = fleet.wait_for_leader(None, Duration::from_secs(60));
    // The snapshot is kept at once when the cold start has read every function: after
    // the first pass, once no target is unknown.
    let mut extended = Instant::now();
    let known = wait_for(Duration::from_secs(3_600), || {
        extend_every_minute(&fleet, &mut extended, &[]);
        let daemon = &fleet.copies[leader].daemon;
        daemon
            .metric("pc_autoscaler_passes_total{outcome=\"informed\"}")
            .is_some_and(|passes| passes >= 1.0)
            && daemon
                .metric("pc_autoscaler_targets_unknown")
                .is_some_and(|unknown| unknown == 0.0)
    });
    assert!(known, "the cold start did not end\n{}", fleet.logs());
    let cold_start = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));

    let surging: Vec<String> = (0..SURGING)
        .map(|index| name(index * (FUNCTIONS / SURGING) + FUNCTIONS / SURGING - 1))
        .collect();
    {
        let mut world = fleet.endpoint.world();
        for function in &surging {
            world.set_concurrency(function, "live", &[3.5, 70.0], 2);
        }
    }
    fleet.copies[leader].daemon.signal("KILL");
    let killed = Instant::now();
    if !keep_snapshot {
        forget_snapshot(&fleet.moto.url);
    }
    let killed_name = fleet.copies[leader].name.clone();
    let put_at = |fleet: &Fleet| -> Vec<Duration> {
        let world = fleet.endpoint.world();
        surging
            .iter()
            .filter_map(|function| {
                world
                    .requests(common::PUT)
                    .into_iter()
                    .find(|put| {
                        put.function.as_ref() == Some(function)
                            && put.value == Some(100)
                            && put.status == 202
                            && put.caller.as_ref() != Some(&killed_name)
                    })
                    .map(|put| put.at - killed)
            })
            .collect()
    };
    wait_for(Duration::from_secs(1_800), || {
        extend_every_minute(&fleet, &mut extended, &surging);
        put_at(&fleet).len() == SURGING
    });
    let mut times = put_at(&fleet);
    times.sort();
    let quantile = |q: f64| {
        times
            .get(((times.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, Duration::as_secs_f64)
    };
    let bound = SURGE_TIMING.lease
        + SURGE_TIMING.renew_every
        + SURGE_TIMING.interval
        + Duration::from_secs(5);
    println!(
        "surge on {SURGING} of {FUNCTIONS} functions at the kill, budget {budget}/s, {}: \
         cold start {:.0} s; from the kill to the new leader's put p50 {:.1} s, p99 {:.1} s, \
         max {:.1} s ({} of {SURGING} put; bound lease + renew_every + interval + 5 s = {:.0} s)",
        if keep_snapshot {
            "with the snapshot"
        } else {
            "snapshot deleted"
        },
        cold_start.as_secs_f64(),
        quantile(0.5),
        quantile(0.99),
        quantile(1.0),
        times.len(),
        bound.as_secs_f64(),
    );
}

/// Every series goes on as CloudWatch's would, a minute at a time, so that none goes
/// stale: 70 for the `surging` functions, 3.5 for the rest.
fn extend_every_minute(fleet: &Fleet, extended: &mut Instant, surging: &[String]) {
    if extended.elapsed() < Duration::from_secs(60) {
        return;
    }
    let mut world = fleet.endpoint.world();
    for index in 0..FUNCTIONS {
        let function = format!("fn{index:04}");
        let value = if surging.contains(&function) {
            70.0
        } else {
            3.5
        };
        world.extend_concurrency(&function, "live", value, 2, 0);
    }
    *extended = Instant::now();
}

/// Deletes the snapshot's head item, so that the next leader finds none: moto's own
/// boto3, from the venv `scripts/test.sh` installs.
fn forget_snapshot(moto_url: &str) {
    let script = format!(
        "import boto3\n\
         boto3.client('dynamodb', endpoint_url='{moto_url}', region_name='us-east-1', \
         aws_access_key_id='test', aws_secret_access_key='test').delete_item(\
         TableName='pc-autoscaler-lease', Key={{'id': {{'S': 'pc-autoscaler#snapshot'}}}})\n"
    );
    let status = std::process::Command::new(common::repo_file("target/moto-venv/bin/python"))
        .args(["-c", &script])
        .status()
        .expect("python runs");
    assert!(status.success(), "the snapshot could not be deleted");
}
