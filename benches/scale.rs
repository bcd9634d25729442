//! The daemon at account scale: 5,000 targets over 2,500 functions against the local
//! endpoint with Lambda's real shared limit enforced (15 requests a second, then
//! `TooManyRequestsException` with `Reason: CallerRateLimitExceeded`), a 60 s
//! interval, measured for 10 minutes after the cold start.
//!
//! First, `plan` on 1,200 targets over 1,200 functions (the worst case: one List per
//! target) at the default read rate, timed. Then the daemon.
//!
//! Prints: Lambda requests per minute by API, 429s, cold start until every target is
//! known, scale-out latency from a metric jump to the put (p50/p99 over 150 targets,
//! while drift scans run), drift correction time, resident memory and CPU per cycle.
//!
//! `bash scripts/bench-scale.sh` (about 20 minutes). `BENCH_SCALE_MINUTES` shortens
//! the measured part and `BENCH_SCALE_BUDGET` raises the budget to shorten the cold
//! start (for quick memory measurements); `BENCH_SCALE_HEAPTRACK=FILE` runs the daemon
//! under heaptrack. `BENCH_SCALE_FORECAST=1` turns the forecast and `choose_window` on
//! for every target, with 14 days of one-minute history in CloudWatch, and also times
//! the history read at start (`plan` is left out). While measured, `/metrics` is
//! scraped every 15 s, as Prometheus would. `BENCH_SCALE_PERF=FILE` records a CPU
//! profile of the measured part with `perf` (`python3 scripts/cpu-split.py FILE`
//! splits it into Lambda requests, metric reads, decisions and scrapes).
//! `BENCH_SCALE_QUIET` is the share of functions whose targets are quiet (held at a
//! floor above what their demand needs; default 0.78, see [`QUIET_SHARE`]): it prints
//! what the CloudWatch reads cost a target-month.

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::aws_endpoint::Endpoint;
use common::{Daemon, aws_config, binary_for_aws, free_port};
use support::{resident_parts, usage};

const FUNCTIONS: usize = 2_500;
/// Each function has an alias target and a version target.
const QUALIFIERS: [&str; 2] = ["live", "7"];
const INTERVAL_SECONDS: u64 = 60;
/// The default `control_plane_budget`; `BENCH_SCALE_BUDGET` overrides it, which
/// shortens the cold start for quick memory measurements.
const BUDGET: f64 = 6.0;
const LAMBDA_SHARED_LIMIT: u32 = 15;
/// Steady demand 3.5 at target 0.7: 5 is right, and is what every target has.
const STEADY: f64 = 3.5;
const STEADY_CAPACITY: u32 = 5;
/// A quiet target's demand: 1, held at its floor of 5 (it could take 2.5 more before
/// it nears its target), so it is read every `quiet_read_period`.
const QUIET: f64 = 1.0;
/// The share of functions whose targets are quiet, `BENCH_SCALE_QUIET` overriding it:
/// the 44 functions of the shared Azure traces are quiet 78 % of their minutes, as
/// their CloudWatch cost shows ($0.131 a target-month between $0.044 all quiet and
/// $0.438 all read every interval).
const QUIET_SHARE: f64 = 0.78;
/// A jump to 70: 100 is right.
const JUMP: f64 = 70.0;
const JUMP_CAPACITY: u32 = 100;
const JUMPS_PER_WAVE: usize = 50;
const DRIFTED: usize = 20;
/// `plan` is measured on this many targets, one per function.
const PLAN_TARGETS: usize = 1_200;
/// What CloudWatch holds of each series in `BENCH_SCALE_FORECAST` mode: the 14 days
/// the daemon reads at start.
const HISTORY_MINUTES: i64 = 14 * 24 * 60;

fn percentile(sorted: &[f64], share: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((share * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// For each `(function, since)`: seconds from `since` to the first put of `value` to
/// `function:qualifier` at or after it, sorted; functions never put are left out.
fn delays(
    endpoint: &Endpoint,
    changed: &[(String, Instant)],
    qualifier: &str,
    value: u32,
) -> Vec<f64> {
    let mut delays: Vec<f64> = changed
        .iter()
        .filter_map(|(function, since)| {
            put_after(endpoint, function, qualifier, value, *since)
                .map(|put| (put - *since).as_secs_f64())
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    delays
}

/// The first put of `value` to `function:qualifier` at or after `since`.
fn put_after(
    endpoint: &Endpoint,
    function: &str,
    qualifier: &str,
    value: u32,
    since: Instant,
) -> Option<Instant> {
    endpoint
        .world()
        .log
        .iter()
        .find(|logged| {
            logged.operation == "PutProvisionedConcurrencyConfig"
                && logged.function.as_deref() == Some(function)
                && logged.qualifier.as_deref() == Some(qualifier)
                && logged.value == Some(value)
                && logged.status < 300
                && logged.at >= since
        })
        .map(|logged| logged.at)
}

/// Runs `plan` on the version targets of the first `PLAN_TARGETS` functions, at the
/// default `--read-rate`, and returns its wall time in seconds.
fn time_plan(endpoint: &Endpoint) -> f64 {
    let targets: String = (0..PLAN_TARGETS)
        .map(|index| {
            format!(
                "[[target]]\nfunction = \"fn{index}\"\nqualifier = \"7\"\nmin = 1\nmax = 500\n\
                 tracking = {{ metric = \"concurrency\", target = 0.7 }}\n"
            )
        })
        .collect();
    let (_dir, config) = aws_config(&endpoint.url, "", &targets);
    let started = Instant::now();
    let output = binary_for_aws()
        .env("RUST_LOG", "warn")
        .args(["plan", "--config"])
        .arg(&config)
        .output()
        .expect("plan runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "plan failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    seconds
}

/// Re-anchors every target's `ConcurrentExecutions` series at the current minute, as
/// CloudWatch's would move on: steady demand, or, for the jumped aliases, steady demand
/// with the jump as the newest datapoint (the jump is sustained). Without it the series
/// go stale after `stale_after` and the daemon rightly holds every target. With
/// `forecast`, the steady series keep their 14 days and grow a minute at a time.
fn refresh_series(endpoint: &Endpoint, jumped: &[(String, Instant)], forecast: bool, quiet: f64) {
    let mut world = endpoint.world();
    for index in 0..FUNCTIONS {
        let function = format!("fn{index}");
        let demand = base_demand(index, quiet);
        for qualifier in QUALIFIERS {
            if forecast {
                world.extend_concurrency(&function, qualifier, demand, 2, HISTORY_MINUTES);
            } else {
                world.set_concurrency(&function, qualifier, &[demand; 30], 2);
            }
        }
    }
    for (function, _) in jumped {
        let index: usize = function[2..].parse().expect("fnN");
        world.set_concurrency(function, "live", &jump_values(index, quiet), 2);
    }
}

/// Whether function `index`'s targets are quiet: the first `quiet` of every hundred.
fn is_quiet(index: usize, quiet: f64) -> bool {
    ((index % 100) as f64) < quiet * 100.0
}

fn base_demand(index: usize, quiet: f64) -> f64 {
    if is_quiet(index, quiet) {
        QUIET
    } else {
        STEADY
    }
}

/// Half an hour of the function's own demand, then the jump as the newest datapoint.
fn jump_values(index: usize, quiet: f64) -> Vec<f64> {
    let mut values = vec![base_demand(index, quiet); 29];
    values.push(JUMP);
    values
}

fn main() {
    let minutes: u64 = std::env::var("BENCH_SCALE_MINUTES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10);
    let budget: f64 = std::env::var("BENCH_SCALE_BUDGET")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(BUDGET);
    let forecast = std::env::var("BENCH_SCALE_FORECAST").is_ok_and(|value| value == "1");
    let quiet: f64 = std::env::var("BENCH_SCALE_QUIET")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(QUIET_SHARE);
    let forecast_setting = if forecast {
        ", forecast = \"on\", choose_window = \"on\""
    } else {
        ""
    };
    let endpoint = Endpoint::start();
    let mut targets = String::new();
    {
        let mut world = endpoint.world();
        world.allocation_delay = Duration::from_secs(2);
        world.shared_limit = Some(LAMBDA_SHARED_LIMIT);
        for index in 0..FUNCTIONS {
            let function = format!("fn{index}");
            world
                .function(&function)
                .aliases
                .insert("live".into(), false);
            let min = if is_quiet(index, quiet) {
                STEADY_CAPACITY
            } else {
                1
            };
            for qualifier in QUALIFIERS {
                world.set_config(&function, qualifier, STEADY_CAPACITY);
                targets.push_str(&format!(
                    "[[target]]\nfunction = \"{function}\"\nqualifier = \"{qualifier}\"\nmin = {min}\nmax = 500\n\
                     tracking = {{ metric = \"concurrency\", target = 0.7, scale_in_window = \"15m\"{forecast_setting} }}\n"
                ));
            }
        }
        // The account must have room for every target at 5 and the jumps.
        world.account_limit = 1_000_000;
    }
    refresh_series(&endpoint, &[], forecast, quiet);
    let plan_seconds = if forecast {
        f64::NAN
    } else {
        time_plan(&endpoint)
    };
    refresh_series(&endpoint, &[], forecast, quiet);
    let mut refreshed = Instant::now();
    let daemon_from = endpoint.world().log.len();
    let plan_throttled = endpoint.world().log[..daemon_from]
        .iter()
        .filter(|logged| logged.status == 429)
        .count();

    let port = free_port();
    let settings = format!(
        "listen = \"127.0.0.1:{port}\"\ninterval = \"{INTERVAL_SECONDS}s\"\ncontrol_plane_budget = {budget:?}\naccount_reserve = 0"
    );
    let (_dir, config) = aws_config(&endpoint.url, &settings, &targets);
    let started = Instant::now();
    // `BENCH_SCALE_HEAPTRACK=FILE` runs the daemon under heaptrack, writing its raw
    // trace to FILE (`heaptrack_interpret < FILE | gzip`, then `heaptrack_print`).
    let heaptrack = std::env::var("BENCH_SCALE_HEAPTRACK").ok();
    let mut environment = vec![("RUST_LOG", "warn")];
    if let Some(trace) = &heaptrack {
        environment.push(("LD_PRELOAD", "/usr/lib/heaptrack/libheaptrack_preload.so"));
        environment.push(("DUMP_HEAPTRACK_OUTPUT", trace));
    }
    let mut daemon = Daemon::start(&config, &format!("127.0.0.1:{port}"), &environment);
    daemon.wait_ready();
    let ready_after = started.elapsed();

    // Cold start: until every target's state is known (and so decided), and with
    // `forecast`, until every history has been read.
    let mut history_loaded = None;
    while daemon.metric("pc_autoscaler_targets_unknown") != Some(0.0) || history_loaded.is_none() {
        if history_loaded.is_none()
            && daemon.metric("pc_autoscaler_forecast_history_pending") == Some(0.0)
        {
            history_loaded = Some(started.elapsed());
        }
        if refreshed.elapsed() >= Duration::from_secs(60) {
            refresh_series(&endpoint, &[], forecast, quiet);
            refreshed = Instant::now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1_800),
            "targets still unknown after 30 minutes:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let cold_start = started.elapsed();
    let measured_from = Instant::now();
    let log_from = endpoint.world().log.len();
    let pid = daemon.child.id();
    let (cpu_before, _) = usage(pid);
    let passes = |daemon: &Daemon| {
        daemon
            .metric("pc_autoscaler_passes_total{outcome=\"informed\"}")
            .unwrap_or(0.0)
    };
    let passes_before = passes(&daemon);
    let requested = |daemon: &Daemon| {
        daemon
            .metric("pc_autoscaler_cloudwatch_metrics_requested_total{account=\"base\",region=\"us-east-1\"}")
            .unwrap_or(0.0)
    };
    let requested_before = requested(&daemon);
    let mut peak_rss = 0;
    let profile = std::env::var("BENCH_SCALE_PERF").ok().map(|file| {
        std::process::Command::new("perf")
            .args([
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "199",
                "--call-graph",
                "dwarf,32768",
                "-o",
            ])
            .arg(&file)
            .args(["-p", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("perf runs")
    });
    let mut scraped = Instant::now();
    let mut scrapes = 0u32;

    // Three waves of metric jumps, a third, half and two thirds into the run, and one
    // foreign reset of 20 targets at the start, so that a whole drift period (10 min)
    // fits in the default run to find them.
    let run = Duration::from_secs(minutes * 60);
    let waves: Vec<Duration> = [1.0 / 3.0, 0.5, 2.0 / 3.0]
        .iter()
        .map(|share| run.mul_f64(*share))
        .collect();
    let drift_at = Duration::ZERO;
    let mut jumped: Vec<(String, Instant)> = Vec::new();
    let mut drifted: Vec<(String, Instant)> = Vec::new();
    let mut next_wave = 0;
    while measured_from.elapsed() < run {
        let elapsed = measured_from.elapsed();
        if refreshed.elapsed() >= Duration::from_secs(60) {
            refresh_series(&endpoint, &jumped, forecast, quiet);
            refreshed = Instant::now();
        }
        if next_wave < waves.len() && elapsed >= waves[next_wave] {
            let mut world = endpoint.world();
            let now = Instant::now();
            for offset in 0..JUMPS_PER_WAVE {
                let index = next_wave * 500 + offset * 7;
                let function = format!("fn{index}");
                // The jump is in the newest datapoint CloudWatch can return.
                world.set_concurrency(&function, "live", &jump_values(index, quiet), 2);
                jumped.push((function, now));
            }
            drop(world);
            // Every series moves on to the same newest minute, as CloudWatch publishes a
            // minute for every function (and the account's sum) together; otherwise the
            // account's newest minute would hold the jumped functions alone.
            refresh_series(&endpoint, &jumped, forecast, quiet);
            refreshed = Instant::now();
            next_wave += 1;
        }
        if drifted.is_empty() && elapsed >= drift_at {
            let mut world = endpoint.world();
            let now = Instant::now();
            for offset in 0..DRIFTED {
                let function = format!("fn{}", 2_000 + offset * 11);
                world.set_config(&function, "7", 1);
                drifted.push((function, now));
            }
        }
        if scraped.elapsed() >= Duration::from_secs(15) {
            // The whole page is read, as a Prometheus scrape would.
            let _ = daemon.metric("pc_autoscaler_build_info");
            scraped = Instant::now();
            scrapes += 1;
        }
        peak_rss = peak_rss.max(usage(pid).1);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (cpu_after, rss) = usage(pid);
    if let Some(mut perf) = profile {
        // SIGINT lets perf write its file out.
        // SAFETY: `kill` only sends a signal to the child this bench started.
        unsafe {
            libc::kill(perf.id() as i32, libc::SIGINT);
        }
        let _ = perf.wait();
    }
    let (rss_anon, rss_file) = resident_parts(pid);
    let peak_rss = peak_rss.max(rss);
    let cycles = passes(&daemon) - passes_before;
    let metrics_requested = requested(&daemon) - requested_before;
    let elapsed_minutes = measured_from.elapsed().as_secs_f64() / 60.0;

    let latencies = delays(&endpoint, &jumped, "live", JUMP_CAPACITY);
    let corrections = delays(&endpoint, &drifted, "7", STEADY_CAPACITY);
    let drift_counted = daemon
        .log()
        .matches("drift: the capacity was changed by someone else")
        .count();
    drop(daemon);

    let world = endpoint.world();
    let mut by_api: BTreeMap<&str, usize> = BTreeMap::new();
    let mut throttled = 0;
    for logged in &world.log[log_from..] {
        *by_api.entry(logged.operation).or_default() += 1;
        if logged.status == 429 {
            throttled += 1;
        }
    }
    let history_calls = world.log[daemon_from..log_from]
        .iter()
        .filter(|logged| logged.operation == "GetMetricData")
        .count();
    let cold_throttled = world.log[daemon_from..log_from]
        .iter()
        .filter(|logged| logged.status == 429)
        .count();
    let shared: usize = by_api
        .iter()
        .filter(|(api, _)| !matches!(**api, "GetFunction" | "GetMetricData"))
        .map(|(_, count)| count)
        .sum();

    println!(
        "scale: {} targets over {FUNCTIONS} functions, interval {INTERVAL_SECONDS}s, control_plane_budget {budget}/s, \
         Lambda shared limit {LAMBDA_SHARED_LIMIT}/s enforced, measured {elapsed_minutes:.1} min after the cold start",
        FUNCTIONS * QUALIFIERS.len()
    );
    if !forecast {
        println!(
            "  plan on {PLAN_TARGETS} targets over {PLAN_TARGETS} functions, default read rate: {plan_seconds:.1} s ({plan_throttled} 429s)"
        );
    }
    println!(
        "  READY=1 after            {:.1} s",
        ready_after.as_secs_f64()
    );
    println!(
        "  cold start, every target known and decided: {:.0} s ({cold_throttled} 429s)",
        cold_start.as_secs_f64()
    );
    if forecast {
        println!(
            "  forecast history read:    {:.0} s ({history_calls} GetMetricData calls in the cold start, the passes' own included)",
            history_loaded.unwrap_or_default().as_secs_f64()
        );
    }
    println!("  requests per minute by API:");
    for (api, count) in &by_api {
        println!("    {api:<40} {:>8.1}", *count as f64 / elapsed_minutes);
    }
    println!(
        "  shared-limit requests:    {:.2}/s (budget {budget}/s)",
        shared as f64 / (elapsed_minutes * 60.0)
    );
    println!("  429s received:            {throttled}");
    println!(
        "  informed passes:          {cycles} in {elapsed_minutes:.1} min (one per interval: {:.0})",
        elapsed_minutes * 60.0 / INTERVAL_SECONDS as f64
    );
    println!(
        "  scale-out, jump to put:   p50 {:.1} s, p99 {:.1} s, max {:.1} s ({} of {} targets)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len(),
        jumped.len()
    );
    println!(
        "  drift corrected:          p50 {:.0} s, max {:.0} s ({} of {DRIFTED}; {drift_counted} drift log lines)",
        percentile(&corrections, 0.5),
        corrections.last().copied().unwrap_or(f64::NAN),
        corrections.len()
    );
    println!(
        "  resident memory:          {:.1} MiB (peak {:.1} MiB; at the end {:.1} MiB heap and stacks, {:.1} MiB code)",
        rss as f64 / 1_048_576.0,
        peak_rss as f64 / 1_048_576.0,
        rss_anon as f64 / 1_048_576.0,
        rss_file as f64 / 1_048_576.0
    );
    println!(
        "  CPU time per cycle:       {:.0} ms (with {scrapes} scrapes of /metrics)",
        (cpu_after - cpu_before) * 1000.0 / cycles.max(1.0)
    );
    // $0.01 per 1,000 metrics; a month of 730 hours.
    let target_months = (FUNCTIONS * QUALIFIERS.len()) as f64 * elapsed_minutes / (730.0 * 60.0);
    println!(
        "  CloudWatch:               {metrics_requested:.0} metrics requested, ${:.3} a target-month ({:.0} % of targets quiet)",
        metrics_requested * 0.01 / 1000.0 / target_months,
        quiet * 100.0
    );
}
