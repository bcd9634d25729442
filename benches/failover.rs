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
//! contend. Prints p50 and max of each. `bash scripts/bench-failover.sh` (about 8
//! minutes); `BENCH_FAILOVERS` sets the count (20).

#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::aws_endpoint::Endpoint;
use common::fleet::{Fleet, Spec, Timing};

const TIMING: Timing = Timing {
    lease: Duration::from_secs(15),
    renew_every: Duration::from_secs(5),
};

fn main() {
    let failovers: usize = std::env::var("BENCH_FAILOVERS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(20);
    let target =
        "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nname = \"fixed\"\nmin = 5\nmax = 50\n";
    let specs: Vec<Spec<'_>> = ["a", "b", "c"]
        .into_iter()
        .map(|name| Spec {
            name,
            targets: target.to_owned(),
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
