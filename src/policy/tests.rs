//! Unit tests of `decide`: one rule per test, numbers worked out in the comments.

use chrono::{DateTime, TimeDelta, Utc};

use super::test_support::{at, noisy_days, target};
use super::*;

const NOW: &str = "2026-06-01T12:00:00Z";

fn tracked(extra: &str) -> TargetConfig {
    target(&format!(
        "min = 1\nmax = 1000\n[target.tracking]\nmetric = \"concurrency\"\ntarget = 0.5\n{extra}"
    ))
}

/// Datapoints of `values`, the last one `lag` minutes before `now`, one a minute.
fn points(now: DateTime<Utc>, lag: i64, values: &[f64]) -> Vec<Datapoint> {
    let count = values.len() as i64;
    values
        .iter()
        .enumerate()
        .map(|(index, value)| Datapoint {
            timestamp: now - TimeDelta::minutes(lag + count - 1 - index as i64),
            value: *value,
        })
        .collect()
}

fn observe(requested: u32, datapoints: Vec<Datapoint>) -> Observation {
    Observation {
        requested,
        allocated: requested,
        status: AllocationStatus::Ready,
        datapoints,
        ..Observation::default()
    }
}

fn decide_now(target: &TargetConfig, observation: &Observation) -> Decision {
    decide(target, observation, &PolicyState::default(), at(NOW))
}

#[test]
fn scales_out_at_once_to_peak_over_target() {
    // Peak concurrency 40 at target 0.5 needs ceil(40 / 0.5) = 80.
    let now = at(NOW);
    let decision = decide_now(&tracked(""), &observe(10, points(now, 2, &[10.0, 40.0])));
    assert_eq!(decision.desired, 80);
    assert_eq!(
        decision.reason,
        Reason::Tracking {
            metric: "concurrency",
            value: 40.0
        }
    );
}

#[test]
fn scale_in_waits_for_the_window_peak() {
    // 15 minutes ago the load was 50 (→ 100); it is 10 now (→ 20). With a 15-minute
    // window the old peak still counts: hold at 100.
    let now = at(NOW);
    let mut values = vec![50.0];
    values.extend(std::iter::repeat_n(10.0, 13));
    let decision = decide_now(&tracked(""), &observe(100, points(now, 2, &values)));
    assert_eq!(decision.desired, 100);
    assert_eq!(
        decision.reason,
        Reason::WithinTolerance { recommended: 100 }
    );
    // One minute later the 50 has left the window: scale in to 20.
    let mut values = vec![50.0];
    values.extend(std::iter::repeat_n(10.0, 15));
    let decision = decide_now(&tracked(""), &observe(100, points(now, 2, &values)));
    assert_eq!(decision.desired, 20);
}

#[test]
fn scale_in_to_an_intermediate_peak_is_explained_as_stabilizing() {
    // Peak in the window is 30 (→ 60) but the newest is 10 (→ 20): scale in only to 60.
    let now = at(NOW);
    let decision = decide_now(&tracked(""), &observe(100, points(now, 2, &[30.0, 10.0])));
    assert_eq!(decision.desired, 60);
    assert_eq!(
        decision.reason,
        Reason::ScaleInStabilizing { window_peak: 60 }
    );
}

#[test]
fn changes_within_five_percent_are_skipped() {
    // 51 / 0.5 = 102 is within 5 % of 100: no write.
    let now = at(NOW);
    let decision = decide_now(&tracked(""), &observe(100, points(now, 2, &[51.0])));
    assert_eq!(decision.desired, 100);
    assert!(!decision.changes(&observe(100, vec![])));
    // 53 / 0.5 = 106 is not.
    let decision = decide_now(&tracked(""), &observe(100, points(now, 2, &[53.0])));
    assert_eq!(decision.desired, 106);
}

#[test]
fn cooldowns_count_from_the_last_change() {
    let now = at(NOW);
    let target = tracked("scale_in_cooldown = \"5m\"\nscale_out_cooldown = \"1m\"");
    let mut observation = observe(100, points(now, 2, &[10.0]));
    observation.last_modified = Some(now - TimeDelta::minutes(4));
    let decision = decide_now(&target, &observation);
    assert_eq!(decision.desired, 100);
    assert_eq!(
        decision.reason,
        Reason::ScaleInCooldown {
            until: now + TimeDelta::minutes(1)
        }
    );
    observation.last_modified = Some(now - TimeDelta::minutes(5));
    assert_eq!(decide_now(&target, &observation).desired, 20);

    let mut observation = observe(10, points(now, 2, &[50.0]));
    observation.last_modified = Some(now - TimeDelta::seconds(30));
    let decision = decide_now(&target, &observation);
    assert_eq!(
        decision.reason,
        Reason::ScaleOutCooldown {
            until: now + TimeDelta::seconds(30)
        }
    );
    assert_eq!(decision.desired, 10);
}

#[test]
fn scale_in_steps_are_limited() {
    let now = at(NOW);
    // From 100 at most 50 % per step: 50, although 20 is recommended.
    let decision = decide_now(
        &tracked("max_scale_in_step = \"50%\""),
        &observe(100, points(now, 2, &[10.0])),
    );
    assert_eq!(decision.desired, 50);
    assert_eq!(
        decision.reason,
        Reason::ScaleInStepLimited { recommended: 20 }
    );
    let decision = decide_now(
        &tracked("max_scale_in_step = 30"),
        &observe(100, points(now, 2, &[10.0])),
    );
    assert_eq!(decision.desired, 70);
}

#[test]
fn scale_in_can_be_disabled() {
    let now = at(NOW);
    let decision = decide_now(
        &tracked("disable_scale_in = true"),
        &observe(100, points(now, 2, &[10.0])),
    );
    assert_eq!(decision.desired, 100);
    assert_eq!(decision.reason, Reason::ScaleInDisabled { recommended: 20 });
}

#[test]
fn missing_or_stale_data_holds_capacity() {
    let now = at(NOW);
    let decision = decide_now(&tracked(""), &observe(100, vec![]));
    assert_eq!(
        (decision.desired, decision.reason),
        (100, Reason::HeldForMissingData)
    );
    // The newest point is 6 minutes old, beyond stale_after = 5m.
    let decision = decide_now(&tracked(""), &observe(100, points(now, 6, &[1.0])));
    assert_eq!(
        (decision.desired, decision.reason),
        (
            100,
            Reason::HeldForStaleMetrics {
                newest: now - TimeDelta::minutes(6)
            }
        )
    );
}

#[test]
fn an_unreadable_read_holds_in_every_missing_data_mode() {
    for mode in ["hold", "zero"] {
        let target = tracked(&format!("missing_data = \"{mode}\""));
        for datapoints in [vec![], points(at(NOW), 2, &[1.0])] {
            let observation = Observation {
                metrics: MetricsRead::Unreadable,
                ..observe(100, datapoints)
            };
            let decision = decide_now(&target, &observation);
            assert_eq!(
                (decision.desired, decision.reason),
                (100, Reason::HeldForUnreadableMetrics),
                "missing_data = {mode}"
            );
        }
    }
}

#[test]
fn zero_holds_on_stale_data_and_shrinks_only_when_the_window_is_empty() {
    let target = tracked("missing_data = \"zero\"");
    let now = at(NOW);
    // Data 6 minutes ago (stale), within the 15-minute window: hold, not zero.
    let decision = decide_now(&target, &observe(100, points(now, 6, &[40.0])));
    assert_eq!(decision.desired, 100);
    assert!(matches!(
        decision.reason,
        Reason::HeldForStaleMetrics { .. }
    ));
    // Nothing in the window of a complete read: idle, down to min.
    let decision = decide_now(&target, &observe(100, vec![]));
    assert_eq!(
        (decision.desired, decision.reason),
        (1, Reason::TargetFloor)
    );
}

#[test]
fn missing_data_as_zero_lets_an_idle_function_shrink_to_nothing() {
    let target = target(
        "min = 0\nmax = 50\n[target.tracking]\nmetric = \"custom\"\ntarget = 10\nmissing_data = \"zero\"\n\
         custom = { namespace = \"AWS/SQS\", name = \"ApproximateNumberOfMessagesVisible\" }",
    );
    let decision = decide_now(&target, &observe(5, vec![]));
    assert_eq!(decision.desired, 0);
    // 45 messages at 10 per unit: 5 units.
    let decision = decide_now(&target, &observe(0, points(at(NOW), 2, &[45.0])));
    assert_eq!(decision.desired, 5);
}

#[test]
fn utilization_tracks_absolute_demand_whatever_is_allocated() {
    let target =
        target("min = 1\nmax = 1000\ntracking = { metric = \"utilization\", target = 0.5 }");
    // Concurrency 4 at target utilization 0.5: ceil(4 / 0.5) = 8, with 10 or 40 allocated.
    for allocated in [10, 40] {
        let observation = Observation {
            allocated,
            ..observe(10, points(at(NOW), 2, &[4.0]))
        };
        assert_eq!(decide_now(&target, &observation).desired, 8);
    }
    // Demand above capacity (spillover counts in ConcurrentExecutions): 30 → 60.
    let decision = decide_now(&target, &observe(10, points(at(NOW), 2, &[30.0])));
    assert_eq!(decision.desired, 60);
}

#[test]
fn bounds_win_over_tracking_and_say_which_rule() {
    let target = target(
        "min = 2\nmax = 30\ntracking = { metric = \"concurrency\", target = 0.5 }\n\
         [[target.schedule]]\nname = \"peak\"\ncron = \"0 8 * * *\"\nduration = \"10h\"\nmin = 50\nmax = 60",
    );
    let now = at(NOW);
    let decision = decide_now(&target, &observe(10, points(now, 2, &[1.0])));
    assert_eq!(
        (decision.desired, decision.reason),
        (50, Reason::ScheduleFloor("peak".into()))
    );
    let decision = decide_now(&target, &observe(10, points(now, 2, &[100.0])));
    assert_eq!(
        (decision.desired, decision.reason),
        (60, Reason::ScheduleCeiling("peak".into()))
    );
    let evening = at("2026-06-01T20:00:00Z");
    let decision = decide(
        &target,
        &observe(10, points(evening, 2, &[100.0])),
        &PolicyState::default(),
        evening,
    );
    assert_eq!(
        (decision.desired, decision.reason),
        (30, Reason::TargetCeiling)
    );
}

#[test]
fn without_tracking_capacity_is_the_active_min() {
    let target = target(
        "min = 3\nmax = 30\n[[target.schedule]]\nname = \"peak\"\ncron = \"0 8 * * *\"\nduration = \"10h\"\nmin = 12",
    );
    assert_eq!(decide_now(&target, &observe(0, vec![])).desired, 12);
    let evening = at("2026-06-01T20:00:00Z");
    let decision = decide(
        &target,
        &observe(12, vec![]),
        &PolicyState::default(),
        evening,
    );
    assert_eq!(
        (decision.desired, decision.reason),
        (3, Reason::TargetFloor)
    );
}

#[test]
fn caps_win_over_bounds() {
    let now = at(NOW);
    let mut observation = observe(10, points(now, 2, &[100.0]));
    observation.caps.reserved_available = Some(150);
    assert_eq!(
        decide_now(&tracked(""), &observation).reason,
        Reason::CappedByReservedConcurrency { cap: 150 }
    );
    observation.caps.account_headroom = Some(40);
    let decision = decide_now(&tracked(""), &observation);
    assert_eq!(
        (decision.desired, decision.reason),
        (50, Reason::CappedByAccountHeadroom { cap: 50 })
    );
}

#[test]
fn nothing_changes_while_an_allocation_is_in_progress() {
    let mut observation = observe(10, points(at(NOW), 2, &[100.0]));
    observation.status = AllocationStatus::InProgress;
    let decision = decide_now(&tracked(""), &observation);
    assert_eq!(
        (decision.desired, decision.reason),
        (10, Reason::AllocationInProgress)
    );
}

#[test]
fn state_keeps_the_window_and_forgets_older_points() {
    let now = at(NOW);
    let first = decide_now(&tracked(""), &observe(10, points(now, 2, &[50.0])));
    // 30 minutes later the old point is gone: 15m window + 5m staleness allowance.
    let later = now + TimeDelta::minutes(30);
    let second = decide(
        &tracked(""),
        &observe(100, points(later, 2, &[10.0])),
        &first.state,
        later,
    );
    assert_eq!(second.state.datapoints().count(), 1);
    assert_eq!(second.desired, 20);
}

#[test]
fn a_hold_at_exactly_the_forecast_floor_names_the_forecast() {
    // Five hours of an hourly batch (100 for the first 10 minutes of each hour, 10
    // otherwise) at target 0.5: at 04:55 the forecast needs ceil(100 / 0.5) = 200 for
    // 05:00, while reaction alone recommends 20. Capacity is 200 and was changed a
    // minute ago: the scale-in cooldown would hold anyway, but it is the forecast that
    // keeps 200 once the cooldown ends, so the forecast is the reason.
    let target = tracked("scale_in_cooldown = \"10m\"\nforecast = \"on\"");
    let start = at("2026-06-01T00:00:00Z");
    let mut state = PolicyState::default();
    for minute in 0..4 * 60 + 55 {
        let now = start + TimeDelta::minutes(minute);
        let value = if minute % 60 < 10 { 100.0 } else { 10.0 };
        let observation = observe(200, points(now, 0, &[value]));
        state = decide(&target, &observation, &state, now).state;
    }
    let now = start + TimeDelta::minutes(4 * 60 + 55);
    let mut observation = observe(200, points(now, 1, &[10.0]));
    observation.last_modified = Some(now - TimeDelta::minutes(1));
    let decision = decide(&target, &observation, &state, now);
    assert_eq!(decision.desired, 200);
    assert_eq!(decision.recommendation, Some(20));
    assert!(
        matches!(decision.reason, Reason::Forecast { expected, .. } if expected == 100.0),
        "{decision:?}"
    );
}

#[test]
fn with_choose_window_on_tracking_aims_with_the_window_the_history_chose() {
    // On noise a longer window at a higher target spills less at the same cost. With
    // `choose_window = "on"`, tracking uses the choice; observed, it is shown and not
    // used, so the recommendation is the configured pair's (that of it off).
    let now = at(NOW);
    let history = noisy_days(now);
    let latest = observe(100, history[history.len() - 20..].to_vec());
    let decide_with = |mode: &str| {
        let target = tracked(&format!("choose_window = \"{mode}\""));
        let state = PolicyState::rebuilt(&target, &history, now);
        decide(&target, &latest, &state, now)
    };
    let (on, observed, off) = (
        decide_with("on"),
        decide_with("observe"),
        decide_with("off"),
    );
    // The forecast alone chooses nothing: it only ever raises the floor.
    let forecast_only = tracked("forecast = \"on\"\nchoose_window = \"off\"");
    let state = PolicyState::rebuilt(&forecast_only, &history, now);
    let forecasting = decide(&forecast_only, &latest, &state, now);
    assert_eq!(forecasting.tuned, None);
    assert_eq!(forecasting.recommendation, off.recommendation);
    let tuned = on.tuned.expect("the history chose a window");
    assert!(tuned.window_minutes > 15 && tuned.target > 0.5, "{tuned:?}");
    assert_eq!(observed.tuned, Some(tuned));
    assert_eq!(off.tuned, None);
    assert_eq!(observed.recommendation, off.recommendation);
    let configured_peak = history[history.len() - 15..]
        .iter()
        .map(|point| point.value)
        .fold(0.0, f64::max);
    assert_eq!(
        off.recommendation,
        Some(tracking::recommend_one(0.5, configured_peak))
    );
    // The chosen window holds at least the configured window's peak, at its target.
    let chosen = on.recommendation.expect("tracked");
    assert!(
        chosen >= tracking::recommend_one(tuned.target, configured_peak),
        "{on:?}"
    );
    assert_ne!(on.recommendation, off.recommendation);
}

#[test]
fn the_chosen_window_is_the_same_watched_minute_by_minute_or_rebuilt() {
    let target = tracked("choose_window = \"on\"");
    let now = at(NOW);
    let history = noisy_days(now);
    let mut watched = PolicyState::default();
    let mut last = None;
    for point in &history {
        let decision = decide(
            &target,
            &observe(100, vec![*point]),
            &watched,
            point.timestamp,
        );
        watched = decision.state;
        last = Some(decision.tuned);
    }
    let rebuilt = PolicyState::rebuilt(&target, &history, now);
    let latest = observe(100, history[history.len() - 1..].to_vec());
    let decision = decide(&target, &latest, &rebuilt, now);
    assert!(decision.tuned.is_some());
    assert_eq!(last, Some(decision.tuned));
}

#[test]
fn a_chosen_window_longer_than_the_configured_one_reads_the_demand_history() {
    // 10 a minute for 90 minutes but 60 forty minutes ago: the configured 15-minute
    // window sees 10 (→ 20 at target 0.5), a 60-minute one sees 60 (→ 120). The minutes
    // kept cover only the configured window; the rest is the demand history's.
    let target = tracked("choose_window = \"observe\"");
    let tracking = target.tracking.as_ref().expect("tracked");
    let now = at(NOW);
    let values: Vec<f64> = (0..90)
        .map(|minute| if minute == 90 - 41 { 60.0 } else { 10.0 })
        .collect();
    let state = PolicyState::rebuilt(&target, &points(now, 0, &values), now);
    let peak = |window_minutes: i64| {
        let aim = Aim {
            window: TimeDelta::minutes(window_minutes),
            target: 0.5,
        };
        match tracking::recommend(tracking, aim, &state, now) {
            Tracked::Fresh(found) => found.window_peak,
            _ => panic!("the newest datapoint is fresh"),
        }
    };
    assert_eq!(peak(15), 20);
    assert_eq!(peak(60), 120);
}
