//! What deciding costs: passes of 5,000 tracked targets (2,500 functions, an alias and
//! a version each) through the shard's state machine, with no I/O, as the daemon makes
//! them every interval. Each target's series holds its whole read window (21 minutes).
//!
//! `cargo bench --bench decide` prints microseconds a target for a pass, reactive and
//! with the forecast and `choose_window` on (their history as read at start).

// Tests and benchmarks drive real processes and servers in real time, not through
// the daemon's injected clock.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use pc_autoscaler::aws::{ProvisionedConfig, Series, SeriesStatus};
use pc_autoscaler::config::{self, FunctionId, TargetName};
use pc_autoscaler::policy::{AllocationStatus, Datapoint, PolicyState};
use pc_autoscaler::runtime::shard::due::Lane;
use pc_autoscaler::runtime::shard::{Event, Now, PassRead, ReadDone, Shard};
use pc_autoscaler::runtime::state::activity::ActivityIds;

const FUNCTIONS: usize = 2_500;
const PASSES: usize = 20;

fn config_text(history: bool) -> String {
    let learns = if history {
        ", forecast = \"on\", choose_window = \"on\""
    } else {
        ""
    };
    // Every target read and decided every pass, as the decisions are what is measured.
    let every_interval = "[daemon]\nquiet_read_period = \"0s\"\n".to_owned();
    every_interval
        + &(0..FUNCTIONS)
        .flat_map(|index| {
            ["live", "7"].map(|qualifier| {
                format!(
                    "[[target]]\nfunction = \"fn{index}\"\nqualifier = \"{qualifier}\"\nmin = 1\nmax = 500\n\
                     tracking = {{ metric = \"concurrency\", target = 0.7{learns} }}\n"
                )
            })
        })
        .collect::<String>()
}

/// A noisy series of `minutes` minutes ending at `end`.
fn series(end: DateTime<Utc>, minutes: i64, seed: usize) -> Vec<Datapoint> {
    (0..minutes)
        .map(|minute| Datapoint {
            timestamp: end - TimeDelta::minutes(minutes - minute),
            value: 3.0 + ((minute as usize * 7 + seed) % 11) as f64 / 10.0,
        })
        .collect()
}

fn measure(history: bool) -> Duration {
    let start: DateTime<Utc> = "2026-11-23T08:59:00Z".parse().expect("a valid time");
    let origin = tokio::time::Instant::now();
    let now = |seconds: u64| Now {
        instant: origin + Duration::from_secs(seconds),
        wall: start + TimeDelta::seconds(seconds as i64),
    };
    let parsed = config::parse(&config_text(history), std::path::Path::new("bench.toml"))
        .expect("the bench config is valid");
    let names: Vec<TargetName> = parsed
        .targets
        .iter()
        .map(|target| target.name.clone())
        .collect();
    let mut shard = Shard::new(ActivityIds::default(), 0, 1);
    let histories: Vec<(TargetName, PolicyState)> = if history {
        parsed
            .targets
            .iter()
            .enumerate()
            .map(|(index, target)| {
                let points = series(start, 14 * 24 * 60, index);
                (
                    target.name.clone(),
                    PolicyState::rebuilt(target, &points, start),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    shard.handle(
        Event::Start {
            settings: parsed.daemon,
            targets: parsed.targets,
            remembered: None,
            snapshots: false,
            reads_overrides: false,
        },
        now(0),
    );
    shard.handle(Event::HistoryRead(histories), now(0));
    for index in 0..FUNCTIONS {
        let ready = ProvisionedConfig {
            requested: 5,
            allocated: 5,
            status: AllocationStatus::Ready,
            ..ProvisionedConfig::default()
        };
        let configs = BTreeMap::from([("live".to_owned(), ready.clone()), ("7".to_owned(), ready)]);
        let function = format!("fn{index}");
        let done = ReadDone::Scan {
            function: FunctionId {
                name: function.clone(),
                account: None,
                reference: function,
            },
            writes_before: 0,
            result: Ok(configs),
        };
        shard.handle(
            Event::Read {
                lane: Lane::Scan,
                done,
            },
            now(0),
        );
    }
    let mut spent = Duration::ZERO;
    for pass in 0..PASSES {
        let at = 60 * (pass as u64 + 1);
        let read: pc_autoscaler::runtime::knowing::evaluate::SeriesByTarget = names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let points = series(now(at).wall, 21, index + pass);
                let complete = Series {
                    points,
                    status: SeriesStatus::Complete,
                };
                (name.clone(), complete)
            })
            .collect();
        shard.handle(Event::Tick, now(at));
        let started = Instant::now();
        let effects = shard.handle(
            Event::MetricsRead(PassRead {
                series: Some(read),
                timed_out: false,
                account: None,
            }),
            now(at),
        );
        spent += started.elapsed();
        std::hint::black_box(effects);
    }
    spent / PASSES as u32
}

fn main() {
    let targets = 2 * FUNCTIONS;
    for (label, history) in [("reactive", false), ("forecast and choose_window on", true)] {
        let pass = measure(history);
        println!(
            "decide: {targets} targets, {label}: {:.1} ms a pass, {:.2} µs a target (mean of {PASSES} passes)",
            pass.as_secs_f64() * 1000.0,
            pass.as_secs_f64() * 1e6 / targets as f64
        );
    }
}
