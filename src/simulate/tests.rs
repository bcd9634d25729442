//! Hand-checked scenarios for the model and the baselines. Each test works its
//! expected numbers out in comments: target 0.5, metric lag 2 minutes, allocation of
//! an increase ready 3 minutes after the put (2 of preparation + 1 of allocation).

use chrono::{DateTime, Utc};

use super::policies::{ApplicationAutoScaling, PcAutoscaler, Reading};
use super::*;
use crate::policy::test_support::target;

fn start() -> DateTime<Utc> {
    "2026-01-05T00:00:00Z".parse().expect("valid time")
}

fn demand(values: Vec<f64>) -> Demand {
    Demand {
        name: "test".into(),
        start: start(),
        concurrency: values,
    }
}

fn tracked(extra: &str) -> TargetConfig {
    target(&format!(
        "min = 1\nmax = 1000\n[target.tracking]\nmetric = \"concurrency\"\ntarget = 0.5\n{extra}"
    ))
}

fn replay_with(
    policy: &mut dyn Replayed,
    target: &TargetConfig,
    demand: &Demand,
) -> (Replay, PolicyResult) {
    let timeline = BoundsTimeline::new(target, demand);
    let options = Options::default();
    let replay = replay(policy, demand, &timeline, &options);
    let result = summarize("p", None, demand, &replay, &options);
    (replay, result)
}

#[test]
fn a_step_increase_is_met_after_lag_plus_allocation() {
    // Demand 10 then 50 from minute 10. Start at ceil(10 / 0.5) = 20. Minute 10's
    // datapoint is read at minute 12: put ceil(50 / 0.5) = 100, usable at minute 15.
    // Minutes 10..=14 spill 50 - 20 = 30 each: 150 unit-minutes = 2.5 unit-hours.
    let target = tracked("");
    let load = demand([vec![10.0; 10], vec![50.0; 20]].concat());
    let (replay, result) = replay_with(
        &mut PcAutoscaler::new("pc-autoscaler", target.clone(), Options::default().cadence),
        &target,
        &load,
    );
    assert_eq!(replay.usable[14], 20);
    assert_eq!(replay.usable[15], 100);
    assert_eq!(replay.puts, 1);
    assert!((result.spillover_unit_hours - 2.5).abs() < 1e-9);
    assert_eq!(result.scale_out_reaction_minutes_p50, 5.0);
}

#[test]
fn application_auto_scaling_ignores_a_burst_shorter_than_three_minutes() {
    // Demand 10 with 30 at minutes 10 and 11. Capacity 20: utilization 1.0 for two
    // datapoints only, so the 3-datapoint alarm never fires. Spill: 2 × 10 = 20
    // unit-minutes. pc-autoscaler reads minute 10 at minute 12 and puts 60.
    let target = tracked("");
    let mut values = vec![10.0; 30];
    values[10] = 30.0;
    values[11] = 30.0;
    let load = demand(values);
    let (replay, result) =
        replay_with(&mut ApplicationAutoScaling::new("aas", 0.5), &target, &load);
    assert_eq!(replay.puts, 0);
    assert!((result.spillover_unit_hours - 20.0 / 60.0).abs() < 1e-9);
    let (ours, _) = replay_with(
        &mut PcAutoscaler::new("pc-autoscaler", target.clone(), Options::default().cadence),
        &target,
        &load,
    );
    assert_eq!(ours.requested[12], 60);
}

#[test]
fn application_auto_scaling_scales_out_after_three_datapoints() {
    // Demand 10 then 50 from minute 10; capacity 20 saturates (utilization 1.0).
    // Datapoints of minutes 10, 11, 12 are read at 12, 13, 14: at 14 the alarm fires,
    // put ceil(20 × 1.0 / 0.5) = 40, usable at minute 17.
    let target = tracked("");
    let load = demand([vec![10.0; 10], vec![50.0; 20]].concat());
    let (replay, _) = replay_with(&mut ApplicationAutoScaling::new("aas", 0.5), &target, &load);
    assert_eq!(replay.requested[13], 20);
    assert_eq!(replay.requested[14], 40);
    assert_eq!(replay.usable[16], 20);
    assert_eq!(replay.usable[17], 40);
}

#[test]
fn a_drop_to_zero_scales_in_once_the_window_has_passed() {
    // Demand 50 for 30 minutes, then 0: capacity 100. The last 50 (minute 29) leaves
    // the 15-minute window when the newest datapoint is minute 44, read at minute 46:
    // then scale in to the target's min, 1, at once (a decrease takes effect at once).
    let target = tracked("");
    let load = demand([vec![50.0; 30], vec![0.0; 30]].concat());
    let (replay, _) = replay_with(
        &mut PcAutoscaler::new("pc-autoscaler", target.clone(), Options::default().cadence),
        &target,
        &load,
    );
    assert_eq!(replay.usable[45], 100);
    assert_eq!(replay.usable[46], 1);
    assert_eq!(replay.puts, 1);
}

#[test]
fn a_schedule_window_is_provisioned_lead_minutes_early() {
    // No load; a rule at 01:00 for 30 minutes with min 40 and lead 5 minutes starts at
    // minute 55: put 40, usable at 58. It ends at minute 85: back to min 1 at once.
    let target = tracked(
        "[[target.schedule]]\nname = \"w\"\nat = \"2026-01-05T01:00:00\"\nduration = \"30m\"\nlead = \"5m\"\nmin = 40",
    );
    let load = demand(vec![0.0; 120]);
    let (ours, _) = replay_with(
        &mut PcAutoscaler::new("pc-autoscaler", target.clone(), Options::default().cadence),
        &target,
        &load,
    );
    assert_eq!(
        (
            ours.usable[57],
            ours.usable[58],
            ours.usable[84],
            ours.usable[85]
        ),
        (1, 40, 40, 1)
    );
    let (aas, _) = replay_with(&mut ApplicationAutoScaling::new("aas", 0.5), &target, &load);
    assert_eq!((aas.usable[57], aas.usable[58], aas.usable[85]), (1, 40, 1));
}

#[test]
fn percentiles_use_the_nearest_rank() {
    assert_eq!(percentile(&[], 0.5), 0.0);
    assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
    assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.95), 4.0);
}

/// Two weeks of one-minute demand from `load(minute, rng)`, seeded.
fn seeded(seed: u64, load: impl Fn(usize, &mut fastrand::Rng) -> f64) -> Demand {
    let mut rng = fastrand::Rng::with_seed(seed);
    demand(
        (0..14 * 24 * 60)
            .map(|minute| load(minute, &mut rng).max(0.0))
            .collect(),
    )
}

/// Spillover unit-hours of the reactive policy and of the same with the forecast on.
fn reactive_and_forecast(load: &Demand) -> (PolicyResult, PolicyResult) {
    let run = |mode: &str| {
        let target = tracked(&format!("forecast = \"{mode}\""));
        replay_with(
            &mut PcAutoscaler::new("p", target.clone(), Options::default().cadence),
            &target,
            load,
        )
        .1
    };
    (run("off"), run("on"))
}

#[test]
fn the_forecast_is_ready_for_an_hourly_batch_that_reaction_misses() {
    // 10 ± noise, and 100 for the first 10 minutes of every hour: shorter than lag +
    // allocation, so a reactive policy is late for every batch.
    let load = seeded(3, |minute, rng| {
        10.0 + rng.f64() * 3.0 + if minute % 60 < 10 { 90.0 } else { 0.0 }
    });
    let (reactive, forecast) = reactive_and_forecast(&load);
    assert!(
        forecast.spillover_unit_hours < 0.05 * reactive.spillover_unit_hours,
        "reactive {reactive:?}\nforecast {forecast:?}"
    );
}

#[test]
fn the_forecast_steps_aside_where_bursts_do_not_repeat() {
    // The same batches at random times: no period predicts them.
    let mut rng = fastrand::Rng::with_seed(9);
    let starts: Vec<usize> = (0..300).map(|_| rng.usize(0..14 * 24 * 60)).collect();
    let load = seeded(4, |minute, rng| {
        let burst = starts
            .iter()
            .any(|start| (0..10).contains(&minute.wrapping_sub(*start)));
        10.0 + rng.f64() * 3.0 + if burst { 90.0 } else { 0.0 }
    });
    let (reactive, forecast) = reactive_and_forecast(&load);
    assert!(
        forecast.spillover_unit_hours <= reactive.spillover_unit_hours * 1.02
            && forecast.provisioned_unit_hours <= reactive.provisioned_unit_hours * 1.02,
        "reactive {reactive:?}\nforecast {forecast:?}"
    );
}

#[test]
fn on_an_hourly_batch_the_forecast_spills_under_a_quarter_of_aas_at_its_own_cost() {
    let load = Demand {
        concurrency: seeded(5, |minute, rng| {
            10.0 + rng.f64() * 3.0 + if minute % 60 < 10 { 90.0 } else { 0.0 }
        })
        .concurrency[..3 * 24 * 60]
            .to_vec(),
        ..demand(Vec::new())
    };
    let target = tracked("");
    let outcome = run(&target, load, &Options::default(), &mut || {}).expect("it tracks");
    let spill = |name: &str| {
        spillover(&outcome, name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", outcome.report.policies))
    };
    // The config as written forecasts (the default); its baseline is AAS at its cost.
    let ratio = spill("pc-autoscaler") / spill("aas-equal-cost");
    assert!(ratio <= 0.25, "{ratio}: {}", render_table(&outcome.report));
    assert_eq!(outcome.usable.len(), outcome.report.policies.len());
}

/// The spillover unit-hours of the policy `name` in a whole simulation's report.
fn spillover(outcome: &Simulation, name: &str) -> Option<f64> {
    outcome
        .report
        .policies
        .iter()
        .find(|policy| policy.name == name)
        .map(|policy| policy.spillover_unit_hours)
}

/// Four days of one-minute demand that no period predicts, of one of six shapes:
/// heavy-tailed noise; random bursts of 3, 10 or 60 minutes; flash crowds that decay
/// over about an hour; a level that wanders. Events fall at seeded random minutes.
fn not_repeating(shape: usize, seed: u64) -> Demand {
    const MINUTES: usize = 4 * 24 * 60;
    let mut rng = fastrand::Rng::with_seed(seed);
    let events: Vec<usize> = (0..MINUTES / 240).map(|_| rng.usize(0..MINUTES)).collect();
    let mut level = 30.0_f64;
    let concurrency = (0..MINUTES)
        .map(|minute| {
            let since_event = events
                .iter()
                .filter_map(|event| minute.checked_sub(*event))
                .min()
                .unwrap_or(usize::MAX);
            let burst = |minutes: usize, height: f64| {
                if since_event < minutes { height } else { 0.0 }
            };
            match shape {
                0 => 20.0 + 60.0 * rng.f64().powi(4),
                1 => 10.0 + 3.0 * rng.f64() + burst(3, 150.0),
                2 => 10.0 + 3.0 * rng.f64() + burst(10, 90.0),
                3 => 20.0 + 5.0 * rng.f64() + burst(60, 60.0),
                4 => 10.0 + 3.0 * rng.f64() + 200.0 * (-(since_event as f64) / 20.0).exp(),
                _ => {
                    level = (level * (1.0 + 0.2 * (rng.f64() - 0.5))).clamp(5.0, 200.0);
                    level * (1.0 + 0.2 * rng.f64())
                }
            }
        })
        .collect();
    Demand {
        concurrency,
        ..demand(Vec::new())
    }
}

#[test]
fn on_loads_that_do_not_repeat_the_forecast_policy_spills_no_more_than_reaction_at_equal_cost() {
    // The forecast steps aside on these, but the window choice does not: it must not
    // cost more than the 2 % of spillover the issue allows, measured as each policy's
    // spillover ÷ Application Auto Scaling's at that policy's own cost (target 0.7).
    let target =
        target("min = 1\nmax = 1000\n[target.tracking]\nmetric = \"concurrency\"\ntarget = 0.7\n");
    let mut worse = Vec::new();
    for shape in 0..6 {
        for seed in 0..2 {
            let outcome = run(
                &target,
                not_repeating(shape, seed),
                &Options::default(),
                &mut || {},
            )
            .expect("it tracks");
            let spill = |name: &str| {
                spillover(&outcome, name)
                    .unwrap_or_else(|| panic!("no {name} in {:?}", outcome.report.policies))
            };
            // As written, the target forecasts and chooses its window (the defaults).
            let forecast_baseline = spill("aas-equal-cost");
            let reactive_baseline =
                spillover(&outcome, "aas-equal-cost-reactive").unwrap_or(forecast_baseline);
            assert!(
                reactive_baseline > 0.0 && forecast_baseline > 0.0,
                "shape {shape} seed {seed}: {}",
                render_table(&outcome.report)
            );
            let reactive = spill("pc-autoscaler-reactive") / reactive_baseline;
            let forecast = spill("pc-autoscaler") / forecast_baseline;
            if forecast > reactive * 1.02 + 1e-6 {
                worse.push(format!(
                    "shape {shape} seed {seed}: {forecast} > {reactive}\n{}",
                    render_table(&outcome.report)
                ));
            }
        }
    }
    assert!(worse.is_empty(), "{}", worse.join("\n"));
}

#[test]
fn with_one_day_of_history_the_forecast_follows_a_batch_every_four_hours() {
    // 20 minutes of 80 over a base of 5 at 00:00, 04:00, …, 20:00 of one day. A day
    // is never seen twice in a day, but the 4-hour period is from 08:00: the batches
    // of 12:00, 16:00 and 20:00 are foreseen, those of 00:00 to 08:00 cannot be.
    let mut load = seeded(6, |minute, rng| {
        5.0 + rng.f64() + if minute % 240 < 20 { 80.0 } else { 0.0 }
    });
    load.concurrency.truncate(24 * 60);
    let (reactive, forecast) = reactive_and_forecast(&load);
    assert!(
        forecast.spillover_unit_hours < 0.6 * reactive.spillover_unit_hours,
        "reactive {reactive:?}\nforecast {forecast:?}"
    );
}

#[test]
fn quiet_reads_miss_no_minute_of_the_forecasts_history() {
    // Two days held at a floor of 40 for a demand of 1 to 30, with a surge every 6
    // hours: mostly quiet, read every 10 minutes. Every minute still reaches the
    // forecast's history, so it is the one a read every minute builds.
    let target = target(
        "min = 40\nmax = 1000\n[target.tracking]\nmetric = \"concurrency\"\ntarget = 0.5\nforecast = \"on\"",
    );
    let load = seeded(7, |minute, rng| {
        if minute % 360 < 20 {
            30.0
        } else {
            1.0 + rng.f64()
        }
    });
    let load = Demand {
        concurrency: load.concurrency[..2 * 1440].to_vec(),
        ..load
    };
    let quiet = Options::default().cadence;
    let every = Cadence {
        quiet_read_period: quiet.interval,
        ..quiet
    };
    let mut adaptive = PcAutoscaler::new("p", target.clone(), quiet);
    let mut always = PcAutoscaler::new("p", target.clone(), every);
    replay_with(&mut adaptive, &target, &load);
    replay_with(&mut always, &target, &load);
    let (
        Reading {
            metrics_requested: read,
            ..
        },
        Reading {
            metrics_requested: all,
            ..
        },
    ) = (adaptive.reading(), always.reading());
    assert!(read * 3 < all, "{read} reads of {all}");
    assert_eq!(adaptive.state().demand(), always.state().demand());
}
