#!/usr/bin/env python3
"""Writes the project's own load traces, one-minute concurrency, seeded so that the performance page's
forecast figures can be reproduced. Periodic and non-periodic on purpose: the forecast
must help on the first kind and change nothing on the second.

Periodic, 14 days:
  hourly.csv        10 (+ Gaussian noise, sd 1.5), and 90 more (sd 5) for the first 10
                    minutes of every hour: a batch shorter than metric lag + allocation.
  business.csv      5 outside business hours; on weekdays a ramp from 20 to 100 over
                    09:00-09:15 UTC, held until 17:00; 5 % multiplicative noise.
  batch-30m.csv     5 (sd 20 %), and 80 more (sd 10 %) for 5 minutes every 30 minutes.
  batch-2h.csv      the same for 10 minutes every 2 hours, from :15.
  batch-4h.csv      the same for 20 minutes every 4 hours, from :30.
  batch-6h.csv      the same for 15 minutes every 6 hours.
  daily-0200.csv    the same for 30 minutes at 02:00 every day.
  business-ny.csv   10 outside business hours; weekdays 08:00-18:00 New York time (UTC-5)
                    a 30-minute ramp to 100, 60 over lunch; 10 % noise.
Periodic, a single day of history (the four batches above, first day only):
  batch-30m-1d.csv, batch-2h-1d.csv, batch-4h-1d.csv, batch-6h-1d.csv
Not periodic, 14 days:
  flash.csv           10 (10 % noise) and 14 flash crowds at random times: +200 within
                      2 minutes, decaying with a 10-minute time constant.
  random-batches.csv  5 (sd 20 %) and 336 batches of 80 for 10 minutes at random times.

Usage: python3 scripts/own-traces.py DIR
then:  pc-autoscaler simulate --config C --trace DIR/hourly.csv --trace-kind concurrency \\
           --mean-concurrency 50
"""
import datetime
import math
import random
import sys

START = datetime.datetime(2026, 1, 5)  # a Monday
DAY = 24 * 60


def write(path, days, load, rng):
    with open(path, "w") as file:
        file.write("timestamp,value\n")
        for minute in range(days * DAY):
            time = START + datetime.timedelta(minutes=minute)
            file.write(f"{time:%Y-%m-%d %H:%M:%S},{max(0, load(minute, time, rng)):.3f}\n")


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


def batch(period, duration, offset=0):
    def load(minute, _time, rng):
        base = 5 * (1 + rng.gauss(0, 0.2))
        return base + (80 * (1 + rng.gauss(0, 0.1)) if (minute - offset) % period < duration else 0)

    return load


def business_new_york(_minute, time, rng):
    local = time - datetime.timedelta(hours=5)
    hour = local.hour + local.minute / 60
    if local.weekday() < 5 and 8 <= hour < 18:
        level = 10 + 90 * min(1, (hour - 8) / 0.5) * (0.6 if 12 <= hour < 13 else 1)
    else:
        level = 10
    return level * (1 + rng.gauss(0, 0.1))


def flash(starts):
    def load(minute, _time, rng):
        level = 10
        for start in starts:
            if start <= minute < start + 60:
                since = minute - start
                level += 200 * min(1, since / 2) * math.exp(-max(0, since - 2) / 10)
        return level * (1 + rng.gauss(0, 0.1))

    return load


def random_batches(minutes):
    def load(minute, _time, rng):
        return 5 * (1 + rng.gauss(0, 0.2)) + (80 if minute in minutes else 0)

    return load


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    rng = random.Random(11)
    for name, load in (("hourly", hourly), ("business", business)):
        write(f"{out}/{name}.csv", 14, load, rng)
    batches = {
        "batch-30m": batch(30, 5),
        "batch-2h": batch(120, 10, 15),
        "batch-4h": batch(240, 20, 30),
        "batch-6h": batch(360, 15),
    }
    for seed, (name, load) in enumerate(batches.items()):
        write(f"{out}/{name}.csv", 14, load, random.Random(seed))
        write(f"{out}/{name}-1d.csv", 1, load, random.Random(seed))
    write(f"{out}/daily-0200.csv", 14, batch(DAY, 30, 120), random.Random(5))
    write(f"{out}/business-ny.csv", 14, business_new_york, random.Random(6))
    times = random.Random(7)
    starts = sorted(times.randrange(14 * DAY) for _ in range(14))
    write(f"{out}/flash.csv", 14, flash(starts), random.Random(8))
    busy = set()
    for _ in range(14 * 24):
        start = times.randrange(14 * DAY)
        busy.update(range(start, start + 10))
    write(f"{out}/random-batches.csv", 14, random_batches(busy), random.Random(10))


if __name__ == "__main__":
    main()
