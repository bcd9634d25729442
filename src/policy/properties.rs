//! Property tests of the policy's invariants over generated targets, loads and times.

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

use super::test_support::{at, target};
use super::*;

/// Targets of every shape: bounds, a schedule window, tracking with either missing-data mode.
fn any_target() -> impl Strategy<Value = TargetConfig> {
    (0u32..20, 1u32..400, 0u32..100, prop::bool::ANY, 1u32..=10, 5u32..=30, prop::bool::ANY).prop_map(
        |(min, span, rule_min, zero, target_tenths, window, step)| {
            let max = min + span;
            let rule_max = rule_min.max(1) + span;
            target(&format!(
                "min = {min}\nmax = {max}\n[target.tracking]\nmetric = \"concurrency\"\ntarget = {}\n\
                 scale_in_window = \"{window}m\"\nmissing_data = \"{}\"\n{}\
                 [[target.schedule]]\nname = \"w\"\ncron = \"0 */3 * * *\"\nduration = \"90m\"\nmin = {rule_min}\nmax = {rule_max}",
                f64::from(target_tenths) / 10.0,
                if zero { "zero" } else { "hold" },
                if step { "max_scale_in_step = \"50%\"\n" } else { "" },
            ))
        },
    )
}

fn any_caps() -> impl Strategy<Value = Caps> {
    (prop::option::of(0u32..500), prop::option::of(0u32..500)).prop_map(|(reserved, headroom)| {
        Caps {
            reserved_available: reserved,
            account_headroom: headroom,
        }
    })
}

/// A datapoint for each load that is there, a minute apart, the newest 2 minutes
/// before `now`.
fn minutes_before(now: DateTime<Utc>, loads: &[Option<f64>]) -> Vec<Datapoint> {
    loads
        .iter()
        .enumerate()
        .filter_map(|(index, load)| {
            load.map(|value| Datapoint {
                timestamp: now - TimeDelta::minutes(2 + index as i64),
                value,
            })
        })
        .collect()
}

fn start() -> DateTime<Utc> {
    at("2026-06-01T00:00:00Z")
}

proptest! {
    #[test]
    fn desired_respects_bounds_and_caps(
        target in any_target(),
        requested in 0u32..600,
        loads in prop::collection::vec(prop::option::of(0.0f64..500.0), 0..40),
        minute in 0i64..(3 * 24 * 60),
        caps in any_caps(),
    ) {
        let now = start() + TimeDelta::minutes(minute);
        let datapoints = minutes_before(now, &loads);
        let observation = Observation { requested, allocated: requested, status: AllocationStatus::Ready, datapoints, caps, ..Observation::default() };
        let decision = decide(&target, &observation, &PolicyState::default(), now);
        let bounds = schedule::bounds_at(&target, now);
        let reserved = caps.reserved_available.unwrap_or(u32::MAX);
        let headroom = caps.account_headroom.map_or(u32::MAX, |room| requested.saturating_add(room));
        let cap = reserved.min(headroom);
        prop_assert!(decision.desired <= cap);
        prop_assert!(decision.desired <= bounds.max);
        if cap >= bounds.min {
            prop_assert!(decision.desired >= bounds.min, "{decision:?}");
        }
    }

    #[test]
    fn hold_never_scales_in_on_missing_data(
        target in any_target(),
        requested in 0u32..600,
        stale_minutes in 6i64..120,
        minute in 0i64..(3 * 24 * 60),
    ) {
        let mut target = target;
        if let Some(tracking) = target.tracking.as_mut() {
            tracking.missing_data = MissingData::Hold;
        }
        let now = start() + TimeDelta::minutes(minute);
        // Either no datapoint at all, or only one older than `stale_after` (5m).
        let datapoints = if stale_minutes % 2 == 0 { vec![] } else {
            vec![Datapoint { timestamp: now - TimeDelta::minutes(stale_minutes), value: 0.0 }]
        };
        let observation = Observation { requested, allocated: requested, status: AllocationStatus::Ready, datapoints, ..Observation::default() };
        let decision = decide(&target, &observation, &PolicyState::default(), now);
        let bounds = schedule::bounds_at(&target, now);
        prop_assert!(decision.desired >= requested.min(bounds.max), "{decision:?}");
    }

    /// A daemon restarted at minute `restart` (state empty, the window's datapoints read
    /// back from metric history) decides as the one that never stopped, once the
    /// scale-in window is full.
    #[test]
    fn a_restart_decides_as_the_uninterrupted_run(
        target in any_target(),
        loads in prop::collection::vec(prop::option::of(0.0f64..300.0), 60..120),
        restart_offset in 0usize..60,
        start_minute in 0i64..(3 * 24 * 60),
    ) {
        const LAG: i64 = 2;
        let tracking = target.tracking.clone().expect("generated targets track");
        let full_window = (tracking.scale_in_window + tracking.stale_after).num_minutes() as usize + LAG as usize;
        let restart = (full_window + restart_offset).min(loads.len() - 1);
        let origin = start() + TimeDelta::minutes(start_minute);
        let datapoint = |minute: usize| loads[minute].map(|value| Datapoint {
            timestamp: origin + TimeDelta::minutes(minute as i64),
            value,
        });

        let mut state = PolicyState::default();
        let mut requested = 0;
        for minute in LAG as usize..=restart {
            let now = origin + TimeDelta::minutes(minute as i64);
            // Each minute the daemon reads the datapoint that has just become visible.
            let fresh = datapoint(minute - LAG as usize).into_iter().collect::<Vec<_>>();
            let observation = Observation { requested, allocated: requested, status: AllocationStatus::Ready, datapoints: fresh, ..Observation::default() };
            let decision = decide(&target, &observation, &state, now);
            if minute == restart {
                // The restarted daemon: no state, the whole visible history read back.
                let history = (0..=restart - LAG as usize).filter_map(datapoint).collect();
                let cold = Observation { datapoints: history, ..observation.clone() };
                let restarted = decide(&target, &cold, &PolicyState::default(), now);
                prop_assert_eq!(&restarted.desired, &decision.desired);
                prop_assert_eq!(&restarted.reason, &decision.reason);
                prop_assert_eq!(&restarted.state, &decision.state);
            }
            requested = decision.desired;
            state = decision.state;
        }
    }
}

proptest! {
    /// No feedback loop, for every metric kind: constant demand with one spike never
    /// asks for more than the spike alone justifies, and ends where the base demand
    /// alone would put it (within the tolerance).
    #[test]
    fn a_spike_never_ratchets_capacity(
        kind in 0usize..3,
        base in 1.0f64..200.0,
        spike_factor in 1.0f64..10.0,
        spike_minutes in 1usize..10,
        target_tenths in 3u32..=10,
    ) {
        const LAG: usize = 2;
        let metric = ["concurrency", "utilization", "custom"][kind];
        let custom = if metric == "custom" {
            "custom = { namespace = \"App\", name = \"InFlight\" }\n"
        } else {
            ""
        };
        let target_value = f64::from(target_tenths) / 10.0;
        let target = target(&format!(
            "min = 1\nmax = 100000\n[target.tracking]\nmetric = \"{metric}\"\ntarget = {target_value}\n{custom}"
        ));
        let tracking = target.tracking.clone().expect("tracked");
        let spike = base * spike_factor;
        let justified = |demand: f64| tracking::recommend_one(tracking.target, demand).max(1);
        let origin = start();
        let demand = |minute: usize| if (20..20 + spike_minutes).contains(&minute) { spike } else { base };

        let mut state = PolicyState::default();
        let mut requested = justified(base);
        let mut highest = requested;
        for minute in LAG..400 {
            let now = origin + TimeDelta::minutes(minute as i64);
            let seen = minute - LAG;
            let fresh = vec![Datapoint { timestamp: origin + TimeDelta::minutes(seen as i64), value: demand(seen) }];
            let observation = Observation {
                requested,
                allocated: requested,
                status: AllocationStatus::Ready,
                datapoints: fresh,
                last_modified: Some(origin),
                ..Observation::default()
            };
            let decision = decide(&target, &observation, &state, now);
            requested = decision.desired;
            highest = highest.max(requested);
            state = decision.state;
        }
        prop_assert!(highest <= justified(spike), "rose to {highest}, the spike justifies {}", justified(spike));
        let settled = justified(base);
        let slack = (f64::from(settled) * TOLERANCE).floor() as u32;
        prop_assert!(requested >= settled && requested <= settled + slack,
            "ended at {requested}, base demand justifies {settled}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The forecast only raises: at any minute of a repeating load it decides at least
    /// what the reactive policy decides (unless a cap says less), and never more than
    /// the bounds and caps allow.
    #[test]
    fn the_forecast_only_raises_within_bounds_and_caps(
        target in any_target(),
        pattern in prop::collection::vec(0.0f64..300.0, 12),
        hours in 2i64..5,
        extra in 0i64..60,
        caps in any_caps(),
        requested in 0u32..600,
    ) {
        let on = target.with_forecast(ForecastMode::On);
        let off = target.with_forecast(ForecastMode::Off);
        let end = hours * 60 + extra;
        let mut state = PolicyState::default();
        for minute in 0..end {
            let now = start() + TimeDelta::minutes(minute);
            let datapoint = Datapoint {
                timestamp: now,
                value: pattern[usize::try_from((minute / 5) % 12).expect("small")],
            };
            let observation = Observation { requested, allocated: requested, status: AllocationStatus::Ready, datapoints: vec![datapoint], caps, ..Observation::default() };
            state = decide(&on, &observation, &state, now).state;
        }
        let now = start() + TimeDelta::minutes(end);
        let observation = Observation { requested, allocated: requested, status: AllocationStatus::Ready, caps, ..Observation::default() };
        let raised = decide(&on, &observation, &state, now);
        let reactive = decide(&off, &observation, &state, now);
        let bounds = schedule::bounds_at(&target, now);
        let reserved = caps.reserved_available.unwrap_or(u32::MAX);
        let headroom = caps.account_headroom.map_or(u32::MAX, |room| requested.saturating_add(room));
        let cap = reserved.min(headroom);
        prop_assert!(raised.desired <= bounds.max && raised.desired <= cap, "{raised:?}");
        prop_assert!(raised.desired >= reactive.desired.min(cap), "{raised:?}\n{reactive:?}");
    }
}

proptest! {
    /// A FAILED config is capacity that is not there: whatever the load, the metric
    /// read, the caps and the time, the decision is never to leave it as it is while
    /// it wants more than was allocated.
    #[test]
    fn a_failed_config_is_never_left_unchanged_below_what_is_wanted(
        target in any_target(),
        requested in 1u32..600,
        allocated_share in 0u32..=100,
        loads in prop::collection::vec(prop::option::of(0.0f64..500.0), 0..40),
        unreadable in prop::bool::ANY,
        minute in 0i64..(3 * 24 * 60),
        caps in any_caps(),
    ) {
        let now = start() + TimeDelta::minutes(minute);
        let datapoints = minutes_before(now, &loads);
        let allocated = requested * allocated_share / 100;
        let observation = Observation {
            requested,
            allocated,
            status: AllocationStatus::Failed,
            last_modified: Some(now - TimeDelta::minutes(1)),
            datapoints,
            metrics: if unreadable { MetricsRead::Unreadable } else { MetricsRead::Complete },
            caps,
            overrides: Vec::new(),
        };
        let decision = decide(&target, &observation, &PolicyState::default(), now);
        if decision.desired > allocated {
            prop_assert!(decision.changes(&observation), "{decision:?}");
        }
    }
}

fn any_override_kind() -> impl Strategy<Value = overrides::OverrideKind> {
    use overrides::{OverrideKind, Pause};
    prop_oneof![
        (0u32..700).prop_map(OverrideKind::Pin),
        (0u32..700).prop_map(OverrideKind::Floor),
        (0u32..700).prop_map(OverrideKind::Ceiling),
        Just(OverrideKind::Pause(Pause::ScaleIn)),
        Just(OverrideKind::Pause(Pause::ScaleOut)),
        Just(OverrideKind::Pause(Pause::All)),
    ]
}

/// Up to four overrides, each ending between an hour before and an hour after `now`.
fn any_overrides(now: DateTime<Utc>) -> impl Strategy<Value = Vec<overrides::Override>> {
    prop::collection::vec((any_override_kind(), -60i64..60), 0..4).prop_map(move |kinds| {
        kinds
            .into_iter()
            .map(|(kind, minutes)| overrides::Override {
                kind,
                until: now + TimeDelta::minutes(minutes),
                by: "ops".into(),
                reason: "test".into(),
            })
            .collect()
    })
}

proptest! {
    /// Whatever overrides are in force, the target's `max` and Lambda's caps hold; a
    /// pin within them is what is decided; a pause never moves capacity in its
    /// direction; and overrides that have ended change nothing.
    #[test]
    fn overrides_decide_within_the_hard_limits_and_end_by_themselves(
        target in any_target(),
        requested in 0u32..600,
        loads in prop::collection::vec(prop::option::of(0.0f64..500.0), 0..40),
        minute in 0i64..(3 * 24 * 60),
        caps in any_caps(),
        overrides in any_overrides(start() + TimeDelta::hours(36)),
    ) {
        use overrides::{OverrideKind, Pause};
        let now = start() + TimeDelta::hours(36) + TimeDelta::minutes(minute % 60 - 30);
        let datapoints = minutes_before(now, &loads);
        let plain = Observation { requested, allocated: requested, status: AllocationStatus::Ready, datapoints, caps, ..Observation::default() };
        let observation = Observation { overrides: overrides.clone(), ..plain.clone() };
        let decision = decide(&target, &observation, &PolicyState::default(), now);
        let reserved = caps.reserved_available.unwrap_or(u32::MAX);
        let headroom = caps.account_headroom.map_or(u32::MAX, |room| requested.saturating_add(room));
        let cap = reserved.min(headroom).min(target.max.max(decision.bounds.max));
        prop_assert!(decision.desired <= cap, "{decision:?}");

        let in_force: Vec<_> = overrides.iter().filter(|one| one.in_force(now)).collect();
        if in_force.is_empty() {
            let without = decide(&target, &plain, &PolicyState::default(), now);
            prop_assert_eq!(&decision, &without);
        }
        let first_pin = in_force.iter().find_map(|one| match one.kind {
            OverrideKind::Pin(value) => Some(value),
            _ => None,
        });
        let pause = in_force.iter().find_map(|one| match one.kind {
            OverrideKind::Pause(pause) => Some(pause),
            _ => None,
        });
        match (first_pin, pause) {
            (Some(pin), _) => prop_assert_eq!(decision.desired, pin.min(cap)),
            (None, Some(Pause::ScaleIn)) => prop_assert!(decision.desired >= requested.min(cap), "{decision:?}"),
            (None, Some(Pause::ScaleOut)) => prop_assert!(decision.desired <= requested, "{decision:?}"),
            (None, Some(Pause::All)) => prop_assert_eq!(decision.desired, requested.min(cap)),
            (None, None) => {}
        }
        if matches!(decision.reason, Reason::Override { .. }) {
            prop_assert!(!in_force.is_empty());
        }
    }
}
