#!/usr/bin/env python3
"""Writes the two periodic load traces README's forecast figures were measured on:
14 days of one-minute concurrency, seeded, so the figures can be reproduced.

  hourly.csv    10 (+ Gaussian noise, sd 1.5), and 90 more (sd 5) for the first 10
                minutes of every hour: a batch shorter than metric lag + allocation.
  business.csv  5 outside business hours; on weekdays a ramp from 20 to 100 over
                09:00-09:15, held until 17:00; 5 % multiplicative noise.

Usage: python3 scripts/periodic-traces.py DIR
then:  pc-autoscaler simulate --config C --trace DIR/hourly.csv --trace-kind concurrency \\
           --mean-concurrency 50
"""
import datetime
import random
import sys

START = datetime.datetime(2026, 1, 5)  # a Monday
MINUTES = 14 * 24 * 60


def hourly(minute, _time, rng):
    base = 10 + rng.gauss(0, 1.5)
    return base + (90 + rng.gauss(0, 5) if minute % 60 < 10 else 0)


def business(_minute, time, rng):
    hour = time.hour + time.minute / 60
    if time.weekday() < 5 and 9 <= hour < 17:
        level = 20 + 80 * min(1, (hour - 9) / 0.25)
    else:
        level = 5
    return level * (1 + rng.gauss(0, 0.05))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    rng = random.Random(11)
    for name, load in (("hourly", hourly), ("business", business)):
        with open(f"{out}/{name}.csv", "w") as file:
            file.write("timestamp,value\n")
            for minute in range(MINUTES):
                time = START + datetime.timedelta(minutes=minute)
                file.write(f"{time:%Y-%m-%d %H:%M:%S},{max(0, load(minute, time, rng)):.3f}\n")


if __name__ == "__main__":
    main()
