//! The daemon's footprint: 1,000 tracked targets against the local test endpoint, one
//! evaluation every 5 s for 60 s; prints resident memory and CPU time per cycle.
//!
//! `bash scripts/bench-daemon.sh` (or `cargo bench --bench daemon`).

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::aws_endpoint::Endpoint;
use common::{Daemon, aws_config, free_port};
use support::usage;

const TARGETS: usize = 1_000;
const INTERVAL_SECONDS: u64 = 5;
const RUN_SECONDS: u64 = 60;
/// Lambda requests per second: the highest `control_plane_budget` allows, far above the
/// default of 2, so that the cold start (one read per function) is over in seconds.
const READ_RATE: f64 = 1_000.0;
const WRITE_RATE: f64 = 1_000.0;

fn main() {
    let endpoint = Endpoint::start();
    let mut targets = String::new();
    for index in 0..TARGETS {
        let function = format!("bench{index}");
        endpoint
            .world()
            .set_concurrency(&function, "1", &[10.0 + (index % 50) as f64; 20], 2);
        targets.push_str(&format!(
            "[[target]]\nfunction = \"{function}\"\nqualifier = \"1\"\nmin = 1\nmax = 500\ntracking = {{ metric = \"concurrency\", target = 0.7 }}\n"
        ));
    }
    let port = free_port();
    let settings = format!(
        "listen = \"127.0.0.1:{port}\"\ninterval = \"{INTERVAL_SECONDS}s\"\ncontrol_plane_budget = {READ_RATE:?}\nmax_write_rate = {WRITE_RATE:?}"
    );
    let (_dir, config) = aws_config(&endpoint.url, &settings, &targets);
    let mut daemon = Daemon::start(
        &config,
        &format!("127.0.0.1:{port}"),
        &[("RUST_LOG", "warn")],
    );
    daemon.wait_ready();
    let pid = daemon.child.id();
    let evaluations = |daemon: &Daemon| {
        (
            daemon
                .metric("pc_autoscaler_evaluation_duration_seconds_count")
                .unwrap_or(0.0),
            daemon
                .metric("pc_autoscaler_evaluation_duration_seconds_sum")
                .unwrap_or(0.0),
        )
    };

    // Warm-up: the first pass writes every target; measure the steady state after it.
    let started = Instant::now();
    while evaluations(&daemon).0 < 2.0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the daemon did not complete two evaluations"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (count_before, sum_before) = evaluations(&daemon);
    let (cpu_before, _) = usage(pid);
    let mut peak_rss = 0;
    let measure_start = Instant::now();
    while measure_start.elapsed() < Duration::from_secs(RUN_SECONDS) {
        peak_rss = peak_rss.max(usage(pid).1);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (cpu_after, rss) = usage(pid);
    let peak_rss = peak_rss.max(rss);
    let (count_after, sum_after) = evaluations(&daemon);
    let cycles = count_after - count_before;
    drop(daemon);

    let requests = endpoint.world().log.len();
    println!(
        "daemon: {TARGETS} targets, interval {INTERVAL_SECONDS}s, control_plane_budget {READ_RATE}/s, max_write_rate {WRITE_RATE}/s, measured over {RUN_SECONDS}s ({cycles} cycles)"
    );
    println!(
        "  resident memory:        {:.1} MiB (peak {:.1} MiB)",
        rss as f64 / 1_048_576.0,
        peak_rss as f64 / 1_048_576.0
    );
    println!(
        "  CPU time per cycle:     {:.0} ms",
        (cpu_after - cpu_before) * 1000.0 / cycles.max(1.0)
    );
    println!(
        "  evaluation wall time:   {:.0} ms per cycle",
        (sum_after - sum_before) * 1000.0 / cycles.max(1.0)
    );
    println!("  endpoint requests:      {requests} in all");
}
