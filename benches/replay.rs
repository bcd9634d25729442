//! Replay throughput: a year of one-minute steps through all four policies.
//!
//! `cargo bench --bench replay` prints the time for the four replays alone and for a
//! whole `simulate` run (which adds the equal-cost search, about 30 more replays).

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

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
    let mut ours = policies::PcAutoscaler::new("pc-autoscaler", target.clone());
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
    let mut forecasting = policies::PcAutoscaler::new("pc-autoscaler-forecast", forecasting_target);
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
}
