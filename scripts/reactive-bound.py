#!/usr/bin/env python3
"""How low can a reactive policy go, even with hindsight on the load's cycles? At a given cost.

The idealised policy sees every datapoint the moment CloudWatch publishes it (2 minutes)
and its capacity serves 3 minutes after that (preparation and allocation, as simulate's
model), so capacity at minute t is ceil(peak of demand over [t - 5 - W, t - 5] / target).
It is never refused for an allocation in progress and never waits for a cooldown, so no
real reactive policy with a scale-in window W does better. For each W, the target value
is searched so that it provisions COST unit-hours; the spillover it still has is printed.

Then the same policy gets a floor no forecaster could have: for every minute of the day
(or of the week), a quantile of the demand at that minute over the *whole* trace, future
included, divided by a floor target. Each seasonal forecast (seasonal naive, same-phase
quantiles, Holt-Winters) estimates that profile from the past only, so where even the
hindsight profile does not help, a forecast of the cycle cannot either. For each profile
the floor target is taken from a grid and the tracking target is searched to the same cost;
the best pair is printed.

Usage: python3 scripts/reactive-bound.py TRACE.csv COST_UNIT_HOURS [MEAN_CONCURRENCY]
The trace is requests per step (as simulate's default --trace-kind, 1 s duration),
resampled to minutes by linear interpolation and scaled to the mean (default 50), as
simulate does. It takes about 40 s for Twitter's 79,506 minutes.
"""
import collections
import csv
import datetime
import math
import sys

LAG_MINUTES = 5
WINDOWS = (0, 1, 2, 5, 15, 30, 60, 120, 240)
SEASONAL_WINDOWS = (0, 5)
PERIODS = (("day", 1440), ("week", 10080))
QUANTILES = (0.5, 0.9, 0.99)
FLOOR_TARGETS = (0.5, 0.7, 1, 1.5, 2, 3, 5, 8, 12, 20)


def load(path, mean):
    rows = []
    with open(path) as file:
        for record in csv.DictReader(file):
            time = datetime.datetime.strptime(record["timestamp"], "%Y-%m-%d %H:%M:%S")
            rows.append((time, float(record["value"])))
    start = rows[0][0]
    points = [(int((time - start).total_seconds() // 60), value) for time, value in rows]
    demand = []
    for (first, low), (last, high) in zip(points, points[1:]):
        for minute in range(first, last):
            demand.append(low + (high - low) * (minute - first) / (last - first))
    demand.append(points[-1][1])
    scale = mean / (sum(demand) / len(demand))
    return [value * scale for value in demand], start


def lagged_peaks(demand, window):
    """The peak the idealised policy acts on at each minute: max over [t-5-W, t-5], else 0."""
    peaks = [0.0] * len(demand)
    candidates = collections.deque()  # indices whose values decrease: a sliding maximum
    for minute in range(LAG_MINUTES, len(demand)):
        seen = minute - LAG_MINUTES
        while candidates and demand[candidates[-1]] <= demand[seen]:
            candidates.pop()
        candidates.append(seen)
        while candidates[0] < seen - window:
            candidates.popleft()
        peaks[minute] = demand[candidates[0]]
    return peaks


def hindsight_floor(demand, start, period, quantile):
    """Each minute's same-phase demand quantile over the whole trace (nearest rank)."""
    offset = (start.weekday() * 1440 + start.hour * 60 + start.minute) % period
    by_phase = collections.defaultdict(list)
    for minute, need in enumerate(demand):
        by_phase[(minute + offset) % period].append(need)
    profile = {}
    for phase, values in by_phase.items():
        values.sort()
        profile[phase] = values[min(len(values) - 1, int(quantile * len(values)))]
    return [profile[(minute + offset) % period] for minute in range(len(demand))]


def at_cost(demand, peaks, floor, cost):
    """Search the target that provisions `cost`; return (spillover, provisioned, target)."""

    def capacities(target):
        return [max(math.ceil(peak / target), low) for peak, low in zip(peaks, floor)]

    low, high = 0.02, 20.0
    for _ in range(30):
        middle = math.sqrt(low * high)
        if sum(capacities(middle)) / 60 > cost:
            low = middle
        else:
            high = middle
    capacity = capacities(high)
    spill = sum(max(0.0, need - held) for need, held in zip(demand, capacity)) / 60
    return spill, sum(capacity) / 60, high


def main():
    path, cost = sys.argv[1], float(sys.argv[2])
    mean = float(sys.argv[3]) if len(sys.argv) > 3 else 50.0
    demand, start = load(path, mean)
    print(f"{path}: {len(demand)} minutes, idealised reactive policy at {cost:,.0f} unit-hours")
    no_floor = [0] * len(demand)
    peaks = {window: lagged_peaks(demand, window) for window in WINDOWS}
    for window in WINDOWS:
        spill, provisioned, target = at_cost(demand, peaks[window], no_floor, cost)
        print(f"  window {window:>3} min: target {target:.3f}, spillover {spill:,.0f} unit-hours ({provisioned:,.0f} provisioned)")

    print("with a floor from the whole trace's same-phase quantile (hindsight), best floor target:")
    for name, period in PERIODS:
        for quantile in QUANTILES:
            profile = hindsight_floor(demand, start, period, quantile)
            for window in SEASONAL_WINDOWS:
                best = None
                for floor_target in FLOOR_TARGETS:
                    floor = [math.ceil(value / floor_target) for value in profile]
                    if sum(floor) / 60 > cost:
                        continue  # the floor alone costs more than allowed
                    spill, provisioned, target = at_cost(demand, peaks[window], floor, cost)
                    if provisioned <= cost * 1.001 and (best is None or spill < best[0]):
                        best = (spill, provisioned, target, floor_target)
                if best is None:
                    print(f"  {name} q{quantile} window {window:>3} min: every floor costs more than allowed")
                    continue
                spill, provisioned, target, floor_target = best
                print(f"  {name} q{quantile} window {window:>3} min: floor target {floor_target}, target {target:.3f}, spillover {spill:,.0f} unit-hours ({provisioned:,.0f} provisioned)")


if __name__ == "__main__":
    main()
