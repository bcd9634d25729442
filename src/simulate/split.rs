//! Where the spillover of the config as written goes (`simulate --split`): how far it
//! is above the reactive bound's at the same cost, and which causes make up that gap,
//! found by taking them away one at a time.
//!
//! **The reactive bound** is the idealised lagged reactive policy of
//! `scripts/reactive-bound.py`: at each minute, capacity is the peak demand of a window
//! that ends the metric lag plus one allocation earlier, divided by a target, within
//! the bounds in force. It sees the same datapoints as late as every policy does, and
//! its capacity serves as late, but it is never refused during an allocation, never
//! cooled down and never rounds a decision to a tolerance. Its window is the best of
//! [`BOUND_WINDOWS`]; its target, the one up to 1 that provisions what the config as
//! written provisions.
//!
//! **The ladder.** Each step replays the config with one more cause taken away, at the
//! target value that provisions the same unit-hours; what its spillover falls by is
//! that cause's share of the gap:
//! 1. a rise waits for the allocation in flight: Lambda refuses a put meanwhile, the
//!    bound is never refused ([`Allocations::Unrefused`]);
//! 2. quiet reads: a target read every `quiet_read_period` instead of every minute;
//! 3. cooldowns;
//! 4. the forecast (negative where it spares more than it costs);
//! 5. the scale-in window: the chosen or configured one against the bound's.
//!
//! What is left between the last step and the bound is everything else: the 5 %
//! tolerance, whole minutes and whole units. Rises are sized as the bound sizes them,
//! from the window's peak, so "a rise sized too small" shows only through step 1. The
//! order matters where causes overlap: a step is credited with what remains of its
//! effect once the steps above it are gone.
//!
//! **The refused bound** is the same policy on a Lambda that refuses a change while a
//! rise is being allocated, as it refuses every policy: what a reactive policy that
//! sizes each rise from the window's peak can reach without seeing ahead.
//!
//! What it must not do: change what the other rows of `simulate` replay.

use chrono::TimeDelta;
use serde::Serialize;

use super::model::{Allocations, allocation_minutes};
use super::policies::PcAutoscaler;
use super::{AS_WRITTEN, BoundsTimeline, Demand, Options, replay, summarize};
use crate::config::{ForecastMode, MetricKind, TargetConfig};
use crate::policy::cadence::Cadence;

/// The windows the reactive bound tries, in minutes (those of `scripts/reactive-bound.py`).
pub const BOUND_WINDOWS: [usize; 9] = [0, 1, 2, 5, 15, 30, 60, 120, 240];
/// The target values a search may use: those a config can write for concurrency.
const TARGETS: (f64, f64) = (0.01, 1.0);
/// Bisection steps of each equal-cost search.
const SEARCH_STEPS: usize = 40;
/// A search stops once a step provisions within this fraction of the goal.
const COST_TOLERANCE: f64 = 0.002;
/// A step provisioning further than this from the goal is reported as unmatched.
const MATCH_TOLERANCE: f64 = 0.01;

/// The split of one replay: the steps of the ladder and the bound.
#[derive(Debug, Clone, Serialize)]
pub struct Split {
    /// What every step and the bound provision (the config as written's unit-hours).
    pub provisioned_unit_hours: f64,
    /// The config as written, then each cause taken away in turn.
    pub steps: Vec<LadderStep>,
    pub bound: ReactiveBound,
    /// The bound refused during an allocation, as Lambda refuses every policy.
    pub refused_bound: ReactiveBound,
    /// Steps and bounds whose cost no target value up to 1 matches within 1 %.
    pub unmatched: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LadderStep {
    /// What this step takes away (`"as written"` for the first).
    pub cause: &'static str,
    pub target_value: f64,
    pub spillover_unit_hours: f64,
    pub provisioned_unit_hours: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReactiveBound {
    pub window_minutes: usize,
    pub target_value: f64,
    pub spillover_unit_hours: f64,
    pub provisioned_unit_hours: f64,
}

impl Split {
    /// The config as written's spillover above the bound's.
    pub fn gap(&self) -> f64 {
        self.steps[0].spillover_unit_hours - self.bound.spillover_unit_hours
    }

    /// What each cause accounts for, in unit-hours, in ladder order, and what is left.
    pub fn shares(&self) -> (Vec<(&'static str, f64)>, f64) {
        let shares = self
            .steps
            .windows(2)
            .map(|pair| {
                (
                    pair[1].cause,
                    pair[0].spillover_unit_hours - pair[1].spillover_unit_hours,
                )
            })
            .collect();
        let last = self
            .steps
            .last()
            .map_or(0.0, |step| step.spillover_unit_hours);
        (shares, last - self.bound.spillover_unit_hours)
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "--split compares with a bound on concurrency: target `{0}` tracks a custom metric, whose value per unit the bound cannot share"
)]
pub struct NotConcurrency(pub String);

/// A cause the ladder takes away, in ladder order.
#[derive(Debug, Clone, Copy)]
enum Cause {
    AllocationInFlight,
    QuietReads,
    Cooldowns,
    Forecast,
    ScaleInWindow,
}

impl Cause {
    const LADDER: [Cause; 5] = [
        Cause::AllocationInFlight,
        Cause::QuietReads,
        Cause::Cooldowns,
        Cause::Forecast,
        Cause::ScaleInWindow,
    ];

    fn label(self) -> &'static str {
        match self {
            Cause::AllocationInFlight => "a rise waits for the allocation in flight",
            Cause::QuietReads => "quiet reads",
            Cause::Cooldowns => "cooldowns",
            Cause::Forecast => "the forecast",
            Cause::ScaleInWindow => "the scale-in window",
        }
    }

    /// Takes this cause away from `config` and `options`; `window` is the bound's.
    fn take_away(self, config: &mut TargetConfig, options: &mut Options, window: usize) {
        if let Cause::AllocationInFlight = self {
            options.allocations = Allocations::Unrefused;
        }
        if let Cause::QuietReads = self {
            options.cadence = Cadence {
                quiet_read_period: options.cadence.interval,
                ..options.cadence
            };
        }
        let Some(tracking) = &mut config.tracking else {
            return;
        };
        match self {
            Cause::Cooldowns => {
                tracking.scale_in_cooldown = TimeDelta::zero();
                tracking.scale_out_cooldown = TimeDelta::zero();
            }
            Cause::Forecast => tracking.forecast = ForecastMode::Off,
            Cause::ScaleInWindow => {
                // The bound's window ends metric lag + allocation before the minute
                // it serves, ours at the newest datapoint, metric lag old: reaching as
                // far back takes an allocation and a minute more. Without them ours
                // would give capacity back 3 minutes sooner than the bound does.
                let minutes = window + allocation_minutes(1) + 1;
                tracking.choose_window = ForecastMode::Off;
                tracking.scale_in_window = TimeDelta::minutes(minutes as i64);
            }
            Cause::AllocationInFlight | Cause::QuietReads => {}
        }
    }
}

/// Splits the gap between `target`'s config as written, replayed under `options`, and
/// the reactive bound at its cost.
pub fn split(
    target: &TargetConfig,
    demand: &Demand,
    options: &Options,
) -> Result<Split, NotConcurrency> {
    let Some(tracking) = target
        .tracking
        .as_ref()
        .filter(|tracking| !matches!(tracking.metric, MetricKind::Custom(_)))
    else {
        return Err(NotConcurrency(target.name.to_string()));
    };
    let timeline = BoundsTimeline::new(target, demand);
    let (spill, goal) = replay_ours(target, options, demand, &timeline);
    let mut steps = vec![LadderStep {
        cause: "as written",
        target_value: tracking.target,
        spillover_unit_hours: spill,
        provisioned_unit_hours: goal,
    }];
    let bound_at_cost =
        |allocations| bound(demand, &timeline, options.metric_lag, goal, allocations);
    let bound = bound_at_cost(Allocations::Unrefused);
    let refused_bound = bound_at_cost(Allocations::OneAtATime);
    let (mut config, mut options) = (target.clone(), *options);
    for cause in Cause::LADDER {
        cause.take_away(&mut config, &mut options, bound.window_minutes);
        let (target_value, (spill, provisioned)) = at_cost(goal, TARGETS, |value| {
            let mut at = config.clone();
            if let Some(tracking) = &mut at.tracking {
                tracking.target = value;
            }
            replay_ours(&at, &options, demand, &timeline)
        });
        steps.push(LadderStep {
            cause: cause.label(),
            target_value,
            spillover_unit_hours: spill,
            provisioned_unit_hours: provisioned,
        });
    }
    let unmatched = unmatched(&steps, [&bound, &refused_bound], goal);
    Ok(Split {
        provisioned_unit_hours: goal,
        steps,
        bound,
        refused_bound,
        unmatched,
    })
}

/// The (spillover, provisioned) unit-hours of `config` replayed under `options`.
fn replay_ours(
    config: &TargetConfig,
    options: &Options,
    demand: &Demand,
    timeline: &BoundsTimeline,
) -> (f64, f64) {
    let mut policy = PcAutoscaler::new(AS_WRITTEN, config.clone(), options.cadence);
    let played = replay(&mut policy, demand, timeline, options);
    let result = summarize(AS_WRITTEN, None, demand, &played, options);
    (result.spillover_unit_hours, result.provisioned_unit_hours)
}

/// What no target value up to 1 could replay at the goal's cost, said plainly.
fn unmatched(steps: &[LadderStep], bounds: [&ReactiveBound; 2], goal: f64) -> Vec<String> {
    let [bound, refused] = bounds;
    steps
        .iter()
        .map(|step| (step.cause, step.provisioned_unit_hours))
        .chain([
            ("the bound", bound.provisioned_unit_hours),
            ("the refused bound", refused.provisioned_unit_hours),
        ])
        .filter(|(_, provisioned)| (provisioned - goal).abs() > goal * MATCH_TOLERANCE)
        .map(|(what, provisioned)| {
            format!(
                "split: {what} provisions {:+.1} % of the cost (no target value in 0.01..1 comes closer)",
                100.0 * (provisioned / goal - 1.0)
            )
        })
        .collect()
}

/// The target value in `range` whose replay provisions closest to `goal`, and that
/// replay's (spillover, provisioned). Provisioning falls as the target value rises, so
/// bisect, geometrically since values span orders of magnitude.
fn at_cost(
    goal: f64,
    (mut low, mut high): (f64, f64),
    mut replay_at: impl FnMut(f64) -> (f64, f64),
) -> (f64, (f64, f64)) {
    let mut best: Option<(f64, f64, (f64, f64))> = None;
    for _ in 0..SEARCH_STEPS {
        let value = (low * high).sqrt();
        let played = replay_at(value);
        if played.1 > goal {
            low = value;
        } else {
            high = value;
        }
        let error = (played.1 - goal).abs() / goal.max(f64::MIN_POSITIVE);
        if best
            .as_ref()
            .is_none_or(|(best_error, _, _)| error < *best_error)
        {
            best = Some((error, value, played));
        }
        if error <= COST_TOLERANCE {
            break;
        }
    }
    let (_, value, played) = best.expect("the search runs at least once");
    (value, played)
}

/// The reactive bound at `goal` unit-hours, refused during an allocation or not: its
/// best window and the target that pays for it.
fn bound(
    demand: &Demand,
    timeline: &BoundsTimeline,
    metric_lag: usize,
    goal: f64,
    allocations: Allocations,
) -> ReactiveBound {
    let need = &demand.concurrency;
    let (floors, ceilings): (Vec<u32>, Vec<u32>) = timeline
        .per_minute(need.len())
        .map(|bounds| (bounds.min, bounds.max))
        .unzip();
    let lag = metric_lag + allocation_minutes(1);
    BOUND_WINDOWS
        .iter()
        .map(|&window| {
            let peaks = lagged_peaks(need, lag, window);
            let (target_value, (spill, provisioned)) = at_cost(goal, TARGETS, |target| {
                let wanted = (0..need.len()).map(|minute| {
                    let wanted = (peaks[minute] / target - 1e-9).ceil().max(0.0);
                    wanted
                        .min(f64::from(ceilings[minute]))
                        .max(f64::from(floors[minute]))
                });
                let (mut spill, mut provisioned) = (0.0, 0.0);
                for (minute, held) in serving(wanted, allocations).enumerate() {
                    provisioned += held;
                    spill += (need[minute] - held).max(0.0);
                }
                (spill / 60.0, provisioned / 60.0)
            });
            ReactiveBound {
                window_minutes: window,
                target_value,
                spillover_unit_hours: spill,
                provisioned_unit_hours: provisioned,
            }
        })
        // A window whose cost no target up to 1 brings down to the goal is not a
        // policy at this cost; window 0 always is (the same as the floor alone, at worst).
        .filter(|bound| {
            bound.window_minutes == 0
                || bound.provisioned_unit_hours <= goal * (1.0 + MATCH_TOLERANCE)
        })
        .min_by(|one, other| {
            one.spillover_unit_hours
                .total_cmp(&other.spillover_unit_hours)
        })
        .expect("window 0 is always kept")
}

/// The capacity serving each minute when the bound wants `wanted` (indexed by the
/// minute it would serve). Unrefused, that is `wanted` itself. Refused, a rise that
/// serves at minute t was put at t minus one allocation and is in flight until its
/// units are allocated, so no change serves before t plus the allocation it took.
fn serving(
    wanted: impl Iterator<Item = f64>,
    allocations: Allocations,
) -> impl Iterator<Item = f64> {
    let mut held: Option<f64> = None;
    let mut free_at = 0;
    wanted.enumerate().map(move |(minute, wanted)| {
        let now = match held {
            Some(held) if allocations == Allocations::OneAtATime && minute < free_at => held,
            Some(held) if wanted > held => {
                free_at = minute + allocation_minutes((wanted - held) as u32);
                wanted
            }
            _ => wanted,
        };
        held = Some(now);
        now
    })
}

/// The peak demand of the window `[t - lag - window, t - lag]` at each minute `t` (0
/// before any minute is visible): a sliding maximum.
fn lagged_peaks(need: &[f64], lag: usize, window: usize) -> Vec<f64> {
    let mut peaks = vec![0.0; need.len()];
    let mut candidates = std::collections::VecDeque::new();
    for (minute, peak) in peaks.iter_mut().enumerate().skip(lag) {
        let seen = minute - lag;
        while candidates
            .back()
            .is_some_and(|&last: &usize| need[last] <= need[seen])
        {
            candidates.pop_back();
        }
        candidates.push_back(seen);
        while candidates
            .front()
            .is_some_and(|&first| first + window < seen)
        {
            candidates.pop_front();
        }
        *peak = candidates.front().map_or(0.0, |&first| need[first]);
    }
    peaks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lagged_peaks_are_the_window_maximum_seen_late() {
        let need = [1.0, 5.0, 2.0, 3.0, 0.0, 0.0, 0.0];
        assert_eq!(
            lagged_peaks(&need, 2, 1),
            vec![0.0, 0.0, 1.0, 5.0, 5.0, 3.0, 3.0]
        );
        assert_eq!(lagged_peaks(&need, 0, 0), need.to_vec());
    }

    #[test]
    fn bursts_that_climb_for_minutes_wait_for_the_allocation_in_flight() {
        // Two days of a base of 10 with a burst every 2 hours that climbs by 40 a
        // minute for 6 minutes and holds 10 minutes: each rise outruns the allocation
        // that the rise before it started.
        let concurrency: Vec<f64> = (0..2 * 24 * 60)
            .map(|minute| match minute % 120 {
                offset @ 60..66 => 10.0 + 40.0 * f64::from(offset - 59),
                66..76 => 250.0,
                _ => 10.0,
            })
            .collect();
        let demand = Demand {
            name: "bursts".into(),
            start: "2026-01-05T00:00:00Z".parse().expect("valid time"),
            concurrency,
        };
        let target = crate::policy::test_support::target(
            "min = 1\nmax = 1000\n[target.tracking]\nmetric = \"concurrency\"\ntarget = 0.7\n",
        );
        let split = split(&target, &demand, &Options::default()).expect("concurrency is tracked");
        let (shares, rest) = split.shares();
        let waiting = shares[0];
        assert_eq!(waiting.0, "a rise waits for the allocation in flight");
        assert!(waiting.1 > 0.0, "{:?}", split.steps);
        let accounted: f64 = shares.iter().map(|(_, part)| part).sum::<f64>() + rest;
        assert!((accounted - split.gap()).abs() < 1e-6);
        assert!(
            split.bound.provisioned_unit_hours
                <= split.provisioned_unit_hours * (1.0 + MATCH_TOLERANCE)
        );
        // Refused as every policy is, the bound spills more on bursts that climb.
        assert!(
            split.refused_bound.spillover_unit_hours > split.bound.spillover_unit_hours,
            "{:?} against {:?}",
            split.refused_bound,
            split.bound
        );
    }

    #[test]
    fn a_refused_bound_changes_once_an_allocation_is_done() {
        let wanted = [1.0, 5.0, 9.0, 9.0, 12.0, 2.0, 2.0, 30.0];
        let unrefused: Vec<f64> = serving(wanted.into_iter(), Allocations::Unrefused).collect();
        assert_eq!(unrefused, wanted.to_vec());
        // The rise to 5 at minute 1 holds until minute 4; 12 at 4 holds until 7.
        let refused: Vec<f64> = serving(wanted.into_iter(), Allocations::OneAtATime).collect();
        assert_eq!(refused, vec![1.0, 5.0, 5.0, 5.0, 12.0, 12.0, 12.0, 30.0]);
    }

    #[test]
    fn the_search_finds_the_value_that_costs_the_goal() {
        // Cost 100 / value: the goal 40 is met at 2.5.
        let (value, (_, cost)) = at_cost(40.0, (0.01, 100.0), |value| (0.0, 100.0 / value));
        assert!((value - 2.5).abs() < 0.01, "{value}");
        assert!((cost - 40.0).abs() <= 40.0 * COST_TOLERANCE);
    }
}
