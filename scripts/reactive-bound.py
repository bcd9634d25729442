#!/usr/bin/env python3
"""How low can a purely reactive policy go? An idealised one, at a given cost.

The idealised policy sees every datapoint the moment CloudWatch publishes it (2 minutes)
and its capacity serves 3 minutes after that (preparation and allocation, as simulate's
model), so capacity at minute t is ceil(peak of demand over [t - 5 - W, t - 5] / target).
It is never refused for an allocation in progress and never waits for a cooldown, so no
real reactive policy with a scale-in window W does better. For each W, the target value
is searched so that it provisions COST unit-hours; the spillover it still has is printed.

Usage: python3 scripts/reactive-bound.py TRACE.csv COST_UNIT_HOURS [MEAN_CONCURRENCY]
The trace is requests per step (as simulate's default --trace-kind, 1 s duration),
resampled to minutes by linear interpolation and scaled to the mean (default 50), as
simulate does.
"""
import collections
import csv
import datetime
import math
import sys

LAG_MINUTES = 5


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
    return [value * scale for value in demand]


def replay(demand, window, target):
    """Spillover and provisioned unit-hours of the idealised policy."""
    spill = provisioned = 0.0
    peaks = collections.deque()  # indices whose values decrease: a sliding maximum
    for minute, need in enumerate(demand):
        seen = minute - LAG_MINUTES
        capacity = 0
        if seen >= 0:
            while peaks and demand[peaks[-1]] <= demand[seen]:
                peaks.pop()
            peaks.append(seen)
            while peaks[0] < seen - window:
                peaks.popleft()
            capacity = math.ceil(demand[peaks[0]] / target)
        spill += max(0.0, need - capacity)
        provisioned += capacity
    return spill / 60, provisioned / 60


def main():
    path, cost = sys.argv[1], float(sys.argv[2])
    mean = float(sys.argv[3]) if len(sys.argv) > 3 else 50.0
    demand = load(path, mean)
    print(f"{path}: {len(demand)} minutes, idealised reactive policy at {cost:,.0f} unit-hours")
    for window in (5, 15, 30, 60, 120, 240):
        low, high = 0.05, 3.0
        for _ in range(30):
            middle = (low + high) / 2
            if replay(demand, window, middle)[1] > cost:
                low = middle
            else:
                high = middle
        spill, provisioned = replay(demand, window, high)
        print(f"  window {window:>3} min: target {high:.3f}, spillover {spill:,.0f} unit-hours ({provisioned:,.0f} provisioned)")


if __name__ == "__main__":
    main()
