//! Replay throughput: a year of one-minute steps through all four policies.
//!
//! `cargo bench --bench replay` prints the time for the four replays alone and for a
//! whole `simulate` run (which adds the equal-cost search, about 30 more replays), and
//! the memory the forecast's history takes for 5,000 targets with 14 days each: the
//! `PolicyState` the daemon keeps per forecasting target, rebuilt as at a start.

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

mod support;

use pc_autoscaler::config;
use pc_autoscaler::simulate::{self, BoundsTimeline, Demand, Options, policies};

const CONFIG: &str = "[[target]]\nfunction = \"f\"\nqualifier = \"live\"\nmin = 1\nmax = 100000\n\
                      tracking = { metric = \"concurrency\", target = 0.7 }\n\
                      [[target.schedule]]\nname = \"peak\"\ncron = \"0 8 * * MON-FRI\"\ntimezone = \"Europe/Berlin\"\nduration = \"10h\"\nlead = \"5m\"\nmin = 40\nmax = 400\n";

fn main() {
    let config = config::parse(CONFIG, std::path::Path::new("bench.toml"))
        .expect("the bench config is valid");
    let target = &config.targets[0];
    let week = simulate::trace::synthetic_week("2026-01-05T00:00:00Z".parse().expect("valid time"));
    let year = Demand {
        name: "synthetic-year".into(),
        start: week.start,
        concurrency: week
            .concurrency
            .iter()
            .copied()
            .cycle()
            .take(365 * 24 * 60)
            .collect(),
    };
    let options = Options::default();
    let minutes = year.concurrency.len();

    let started = Instant::now();
    let timeline = BoundsTimeline::new(target, &year);
    let mut ours =
        policies::PcAutoscaler::new("pc-autoscaler", target.clone(), Options::default().cadence);
    let mut aas = policies::ApplicationAutoScaling::new("aas", 0.7);
    let mut aas_other = policies::ApplicationAutoScaling::new("aas-equal-cost", 0.6);
    let mut oracle = policies::Oracle::new(&year.concurrency);
    let runs: [&mut dyn policies::Replayed; 4] = [&mut ours, &mut aas, &mut aas_other, &mut oracle];
    for policy in runs {
        black_box(simulate::replay(policy, &year, &timeline, &options));
    }
    let four = started.elapsed();

    // The same policy with the forecast on: the history kept and scored every minute.
    let mut forecasting_target = target.clone();
    if let Some(tracking) = &mut forecasting_target.tracking {
        tracking.forecast = pc_autoscaler::config::ForecastMode::On;
    }
    let started = Instant::now();
    let mut forecasting = policies::PcAutoscaler::new(
        "pc-autoscaler-forecast",
        forecasting_target,
        Options::default().cadence,
    );
    black_box(simulate::replay(
        &mut forecasting,
        &year,
        &timeline,
        &options,
    ));
    let forecast = started.elapsed();

    let started = Instant::now();
    let outcome = simulate::run(target, year, &options, &mut || {}).expect("the target tracks");
    let whole = started.elapsed();
    black_box(outcome);

    println!("replay: {minutes} one-minute steps (365 days)");
    println!(
        "  four policies, one replay each:   {:>8.1} ms",
        four.as_secs_f64() * 1e3
    );
    println!(
        "  the forecast policy alone:        {:>8.1} ms ({:.0} ns a minute)",
        forecast.as_secs_f64() * 1e3,
        forecast.as_secs_f64() * 1e9 / minutes as f64
    );
    println!(
        "  whole simulate (with equal-cost search): {:>8.1} ms",
        whole.as_secs_f64() * 1e3
    );
    println!(
        "  per policy-minute:                {:>8.1} ns",
        four.as_secs_f64() * 1e9 / (4 * minutes) as f64
    );
    history_memory(target);
}

/// Resident memory of this process, in bytes.
fn resident() -> u64 {
    support::usage(std::process::id()).1
}

/// The states of 5,000 forecasting targets, each rebuilt from 14 days of one-minute
/// datapoints (a daily cycle with noise), as the daemon holds them after a start.
fn history_memory(target: &pc_autoscaler::config::TargetConfig) {
    const TARGETS: usize = 5_000;
    let mut forecasting = target.clone();
    if let Some(tracking) = &mut forecasting.tracking {
        tracking.forecast = pc_autoscaler::config::ForecastMode::On;
    }
    let start: chrono::DateTime<chrono::Utc> = "2026-01-05T00:00:00Z".parse().expect("valid time");
    let minutes = 14 * 24 * 60;
    let mut rng = fastrand::Rng::with_seed(1);
    let datapoints: Vec<pc_autoscaler::policy::Datapoint> = (0..minutes)
        .map(|minute| pc_autoscaler::policy::Datapoint {
            timestamp: start + chrono::TimeDelta::minutes(minute),
            value: 50.0
                + 40.0 * ((minute % 1440) as f64 / 1440.0 * std::f64::consts::TAU).sin()
                + rng.f64() * 10.0,
        })
        .collect();
    let now = start + chrono::TimeDelta::minutes(minutes);
    let before = resident();
    let started = Instant::now();
    let states: Vec<_> = (0..TARGETS)
        .map(|_| pc_autoscaler::policy::PolicyState::rebuilt(&forecasting, &datapoints, now))
        .collect();
    let took = started.elapsed();
    let grown = resident().saturating_sub(before);
    black_box(&states);
    println!(
        "  forecast history, {TARGETS} targets x 14 days: {:.1} MiB resident ({:.0} B a target), rebuilt in {:.1} s",
        grown as f64 / 1_048_576.0,
        grown as f64 / TARGETS as f64,
        took.as_secs_f64()
    );
}
