#!/usr/bin/env python3
"""Replays every trace the performance page's comparison is measured on and prints its table:
the three shared traces and the own ones (scripts/own-traces.py) at mean concurrency 50,
and the shared azure-small functions at their own scale, summed, with those clearly worse
than AAS at its cost. Target 0.7, tracking concurrency, min 1, as in tests/simulate_cli.rs.

Usage: python3 scripts/compare.py [BINARY] [--before OLD_BINARY]
       (default target/release/pc-autoscaler)

With --before, both binaries replay every trace in the same run, and a second table gives
each trace and each Azure function on its own: the ratio to AAS at equal cost before and
after, so that a change that helps one load and hurts another shows. An old binary comes
from, for example, `git worktree add /tmp/old <commit>` and `cargo build --release` there.
"""
import concurrent.futures
import glob
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "traces")
CONFIG = """[[target]]
function = "f"
qualifier = "live"
min = 1
max = 100000
tracking = { metric = "concurrency", target = 0.7 }
"""


def replay(binary, work, name, args):
    out = os.path.join(work, name.replace("/", "_"))
    config = os.path.join(work, "sim.toml")
    subprocess.run(
        [binary, "simulate", "--config", config, "--out", out, *args],
        check=True,
        capture_output=True,
    )
    with open(os.path.join(out, "report.json")) as file:
        report = json.load(file)
    return name, ({policy["name"]: policy for policy in report["policies"]}, report["demand_unit_hours"])


def clearly_worse(policies, demand):
    """The issue's test of one function against AAS at equal cost: more spillover than
    AAS's × 1.05 plus 1 % of demand."""
    spill = policies["pc-autoscaler"]["spillover_unit_hours"]
    return spill > policies["aas-equal-cost"]["spillover_unit_hours"] * 1.05 + 0.01 * demand


def figures(policies):
    """Spillover and provisioned unit-hours of both rows and of AAS at each's cost, and
    the CloudWatch cost a target-month of the row as written."""
    # The config keeps the defaults, so the row as written forecasts and the other is reactive.
    ours = policies["pc-autoscaler"]
    reactive = policies["pc-autoscaler-reactive"]
    equal = policies["aas-equal-cost"]
    equal_reactive = policies.get("aas-equal-cost-reactive", equal)
    pick = lambda policy, key: policy[key + "_unit_hours"]
    return [
        pick(ours, "spillover"),
        pick(ours, "provisioned"),
        pick(equal, "spillover"),
        ours["cloudwatch_usd_per_month"],
        pick(reactive, "spillover"),
        pick(reactive, "provisioned"),
        pick(equal_reactive, "spillover"),
    ]


def ratio(spill, baseline):
    return f"{spill / baseline:.3f}" if baseline > 0 else "-"


def row(label, values, stepped_aside):
    spill, cost, equal, cloudwatch, r_spill, r_cost, r_equal = values
    ours = f"{spill:,.1f} ({cost:,.0f})"
    if stepped_aside:
        ours = "steps aside: " + ours
    return (
        f"| {label} | {ours} | {equal:,.1f} | {ratio(spill, equal)} | {cloudwatch:.3f} "
        f"| {r_spill:,.1f} ({r_cost:,.0f}) | {r_equal:,.1f} | {ratio(r_spill, r_equal)} |"
    )


def replay_all(binary):
    """Every trace through `binary`: {name: (policies by name, demand unit-hours)}."""
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "sim.toml"), "w") as file:
            file.write(CONFIG)
        own = os.path.join(work, "own")
        os.mkdir(own)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/own-traces.py"), own], check=True)
        jobs = []
        for name in ("elb_request_count", "twitter_volume_aapl", "nyc_taxi"):
            path = os.path.join(SHARED, name + ".csv")
            jobs.append((name, ["--trace", path, "--mean-concurrency", "50"]))
        for path in sorted(glob.glob(os.path.join(own, "*.csv"))):
            name = "own/" + os.path.basename(path)[:-4]
            args = ["--trace", path, "--trace-kind", "concurrency", "--mean-concurrency", "50"]
            jobs.append((name, args))
        for path in sorted(glob.glob(os.path.join(SHARED, "azure-small", "*.csv"))):
            name = "azure/" + os.path.basename(path)[:-4]
            jobs.append((name, ["--trace", path, "--trace-kind", "concurrency"]))
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            return dict(pool.map(lambda job: replay(binary, work, *job), jobs))


def equal_cost_ratio(policies):
    spill = policies["pc-autoscaler"]["spillover_unit_hours"]
    equal = policies["aas-equal-cost"]["spillover_unit_hours"]
    return spill / equal if equal > 0 else None


def before_and_after(before, after):
    """Each trace and each Azure function: the ratio to AAS at equal cost, both binaries."""
    print("\n| trace | before | after | change |")
    print("|---|---|---|---|")
    better = worse = 0
    for name, (policies, _) in after.items():
        old, new = equal_cost_ratio(before[name][0]), equal_cost_ratio(policies)
        if old is None or new is None:
            print(f"| {name} | - | - | AAS spills nothing |")
            continue
        change = new - old
        # Within 1 % of the ratio (or 0.001) is the same: rounding to whole units moves it that much.
        if abs(change) > max(0.01 * old, 0.001):
            better, worse = better + (change < 0), worse + (change > 0)
        print(f"| {name} | {old:.3f} | {new:.3f} | {change:+.3f} |")
    print(f"\nbetter: {better}, worse: {worse}, the same within 1 %: {len(after) - better - worse}")


def main():
    args = sys.argv[1:]
    before_binary = None
    if "--before" in args:
        at = args.index("--before")
        before_binary = args[at + 1]
        del args[at : at + 2]
    binary = args[0] if args else os.path.join(ROOT, "target/release/pc-autoscaler")
    results = replay_all(binary)

    print("| trace | pc-autoscaler | AAS at its cost | ratio | CloudWatch $ a month | pc-autoscaler-reactive | AAS at its cost | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    azure = [0.0] * 7
    count = 0
    worse = []
    for name, (policies, demand) in results.items():
        values = figures(policies)
        if name.startswith("azure/"):
            if clearly_worse(policies, demand):
                worse.append(name[len("azure/"):])
            azure = [total + value for total, value in zip(azure, values)]
            count += 1
            continue
        same = values[0] == values[4] and values[1] == values[5]
        print(row(name, values, same))
    azure[3] /= max(count, 1)  # CloudWatch: a target-month, averaged
    print(row(f"azure-small, {count} functions summed", azure, False))
    print(f"\nazure-small functions clearly worse than AAS at equal cost (spillover above AAS's x 1.05 + 1 % of demand): {len(worse)} of {count} {' '.join(worse)}")
    if before_binary:
        before_and_after(replay_all(before_binary), results)


if __name__ == "__main__":
    main()
