#!/usr/bin/env python3
"""Replays every trace the performance page's comparison is measured on and prints its table:
the three shared traces and the own ones (scripts/own-traces.py) at mean concurrency 50,
and the shared azure-small functions at their own scale, summed. Target 0.7, tracking
concurrency, min 1, as in tests/simulate_cli.rs.

Usage: python3 scripts/compare.py [BINARY]   (default target/release/pc-autoscaler)
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
        return name, {policy["name"]: policy for policy in json.load(file)["policies"]}


def figures(policies):
    """Spillover and provisioned unit-hours of both policies and of AAS at each's cost."""
    # The config keeps the defaults, so the row as written forecasts and the other is reactive.
    forecast = policies["pc-autoscaler"]
    reactive = policies["pc-autoscaler-reactive"]
    equal_forecast = policies["aas-equal-cost"]
    equal = policies.get("aas-equal-cost-reactive", equal_forecast)
    pick = lambda policy, key: policy[key + "_unit_hours"]
    return [
        pick(reactive, "spillover"),
        pick(reactive, "provisioned"),
        pick(equal, "spillover"),
        pick(forecast, "spillover"),
        pick(forecast, "provisioned"),
        pick(equal_forecast, "spillover"),
    ]


def ratio(spill, baseline):
    return f"{spill / baseline:.3f}" if baseline > 0 else "-"


def row(label, values, stepped_aside):
    spill, cost, equal, f_spill, f_cost, f_equal = values
    forecast = f"{f_spill:,.1f} ({f_cost:,.0f})"
    if stepped_aside:
        forecast = "steps aside: " + forecast
    return (
        f"| {label} | {spill:,.1f} ({cost:,.0f}) | {equal:,.1f} | {ratio(spill, equal)} "
        f"| {forecast} | {f_equal:,.1f} | {ratio(f_spill, f_equal)} |"
    )


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/pc-autoscaler")
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
            results = dict(pool.map(lambda job: replay(binary, work, *job), jobs))

    print("| trace | reactive | AAS at its cost | ratio | with forecast | AAS at its cost | ratio |")
    print("|---|---|---|---|---|---|---|")
    azure = [0.0] * 6
    count = 0
    for name, policies in results.items():
        values = figures(policies)
        if name.startswith("azure/"):
            azure = [total + value for total, value in zip(azure, values)]
            count += 1
            continue
        same = values[0] == values[3] and values[1] == values[4]
        print(row(name, values, same))
    print(row(f"azure-small, {count} functions summed", azure, False))


if __name__ == "__main__":
    main()
