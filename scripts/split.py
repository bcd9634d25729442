#!/usr/bin/env python3
"""Splits pc-autoscaler's spillover above the reactive bound into its causes, for each
shared trace at mean concurrency 50 and for the shared azure-small functions at their
own scale, summed: the tables of the performance page (the split, and each trace against
the goal of issue 42 with the bound, the bound refused as Lambda refuses, and AAS at
equal cost). Each row is `simulate --split` (target 0.7, tracking concurrency, min 1,
the defaults otherwise, as scripts/compare.py).

Usage: python3 scripts/split.py [BINARY]   (default target/release/pc-autoscaler)
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
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from compare import CONFIG  # noqa: E402  (one config for both tables)


def replay(binary, work, name, args):
    out = os.path.join(work, name.replace("/", "_"))
    config = os.path.join(work, "sim.toml")
    subprocess.run(
        [binary, "simulate", "--config", config, "--out", out, "--split", *args],
        check=True,
        capture_output=True,
    )
    with open(os.path.join(out, "report.json")) as file:
        report = json.load(file)
    equal = next(policy for policy in report["policies"] if policy["name"] == "aas-equal-cost")
    return name, (report["split"], equal["spillover_unit_hours"])


def parts(split):
    """(as written, each cause's unit-hours in ladder order, the rest, bound, refused
    bound, labels)."""
    steps = split["steps"]
    spills = [step["spillover_unit_hours"] for step in steps]
    causes = [earlier - later for earlier, later in zip(spills, spills[1:])]
    bound = split["bound"]["spillover_unit_hours"]
    refused = split["refused_bound"]["spillover_unit_hours"]
    labels = [step["cause"] for step in steps[1:]]
    return spills[0], causes, spills[-1] - bound, bound, refused, labels


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/pc-autoscaler")
    jobs = []
    for name in ("elb_request_count", "twitter_volume_aapl", "nyc_taxi"):
        jobs.append((name, ["--trace", os.path.join(SHARED, name + ".csv"), "--mean-concurrency", "50"]))
    for path in sorted(glob.glob(os.path.join(SHARED, "azure-small", "*.csv"))):
        name = "azure/" + os.path.basename(path)[:-4]
        jobs.append((name, ["--trace", path, "--trace-kind", "concurrency"]))
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "sim.toml"), "w") as file:
            file.write(CONFIG)
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
            results = dict(pool.map(lambda job: replay(binary, work, *job), jobs))

    rows = []
    azure = None
    count = 0
    labels = []
    for name, (split, equal) in results.items():
        ours, causes, rest, bound, refused, labels = parts(split)
        values = [ours, *causes, rest, bound, refused, equal]
        if name.startswith("azure/"):
            azure = values if azure is None else [a + b for a, b in zip(azure, values)]
            count += 1
        else:
            window = split["bound"]["window_minutes"]
            rows.append((f"{name} (bound: window {window} min)", values))
    if azure is not None:
        rows.append((f"azure-small, {count} functions summed", azure))

    print("| trace | as written | " + " | ".join(labels) + " | the rest | reactive bound |")
    print("|---" * (len(labels) + 4) + "|")
    for label, values in rows:
        ours, *middle, bound, _, _ = values
        gap = ours - bound

        def share(part):
            part = 0.0 if abs(part) < 0.05 else part
            # Shares of a gap within a tenth of the spillover itself say nothing.
            return f"{part:,.1f} ({100 * part / gap:.0f} %)" if gap > 0.1 * ours else f"{part:,.1f}"

        cells = [f"{ours:,.1f}"] + [share(part) for part in middle] + [f"{bound:,.1f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")

    # The goal: within 1.1 x the bound where the bound is above 0.25 / 1.1 of AAS's
    # spillover at equal cost, at most 0.25 of it elsewhere.
    print()
    print(
        "| trace | pc-autoscaler ÷ AAS at equal cost | bound ÷ AAS | pc-autoscaler ÷ bound"
        " | goal | met | refused bound ÷ AAS | pc-autoscaler ÷ refused bound |"
    )
    print("|---" * 8 + "|")
    for label, values in rows:
        ours, bound, refused, equal = values[0], *values[-3:]
        if equal <= 0:
            continue
        ours_ratio, bound_ratio = ours / equal, bound / equal
        goal = 1.1 * bound_ratio if bound_ratio > 0.25 / 1.1 else 0.25
        met = "yes" if ours_ratio <= goal + 1e-9 else "no"
        print(
            f"| {label} | {ours_ratio:.3f} | {bound_ratio:.3f} | {versus(ours, bound)} | ≤ {goal:.3f}"
            f" | {met} | {refused / equal:.3f} | {versus(ours, refused)} |"
        )


def versus(ours, bound):
    return f"{ours / bound:.2f}" if bound > 0 else "-"


if __name__ == "__main__":
    main()
