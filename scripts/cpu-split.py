#!/usr/bin/env python3
"""Splits a `perf record --call-graph dwarf` profile of the daemon into what its CPU
time was spent on: Lambda requests, metric reads, decisions, scrapes, and the rest.

Usage: python3 scripts/cpu-split.py PERF_DATA [CYCLES]

Each sample is given to the first bucket whose marker appears anywhere in its stack,
in the order below (a scrape's formatting is a scrape even when it runs inside the
HTTP server; a decision is a decision even when a read's result set it off). With
CYCLES (the number of passes the profile covered), milliseconds a cycle are printed
too, from the sample rate.
"""

import re
import subprocess
import sys
from collections import Counter

BUCKETS = [
    ("scrape", ["daemon::http::Scrape", "metrics::per_target", "render_registry",
                "render_shard_totals", "TextEncoder", "prometheus::"]),
    ("decisions (the shard's state machine)", ["runtime::shard::", "policy::",
                                                "runtime::evaluate"]),
    ("metric reads", ["aws::cloudwatch", "aws_sdk_cloudwatch", "runtime::series",
                      "Instrumented<M>", "MetricsApi"]),
    ("Lambda requests", ["aws::lambda", "aws_sdk_lambda", "runtime::control",
                         "runtime::scheduler", "driver::read_task", "Control<L>"]),
    ("AWS HTTP connections (both clients)", ["hyper", "aws_smithy", "h2::"]),
    ("runtime and the rest", [""]),
]


def samples(path):
    script = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,tid,period,ip,sym"],
        check=True, capture_output=True, text=True,
    ).stdout
    stack = []
    for line in script.splitlines():
        if not line.strip():
            if stack:
                yield stack
            stack = []
        elif line.startswith((" ", "\t")):
            stack.append(line.strip())
        else:
            stack = []
    if stack:
        yield stack


def without_generics(frame):
    """A frame's symbol without what is inside `<...>`: a task's future type names
    everything it holds, which says nothing of where the time went."""
    out, depth = [], 0
    for character in frame:
        if character == "<":
            depth += 1
        elif character == ">" and depth > 0:
            depth -= 1
        elif depth == 0:
            out.append(character)
    return "".join(out)


def bucket(stack):
    text = "\n".join(without_generics(frame) for frame in stack)
    for name, markers in BUCKETS:
        if any(marker in text for marker in markers):
            return name
    return BUCKETS[-1][0]


def main():
    path = sys.argv[1]
    cycles = float(sys.argv[2]) if len(sys.argv) > 2 else None
    rate = 199.0
    header = subprocess.run(["perf", "report", "-i", path, "--header-only"],
                            capture_output=True, text=True).stdout
    found = re.search(r"sample_freq\D+(\d+)", header)
    if found:
        rate = float(found.group(1))
    counts = Counter(bucket(stack) for stack in samples(path))
    total = sum(counts.values())
    print(f"{total} samples at {rate:.0f} Hz ({total / rate:.1f} s of CPU)")
    for name, _ in BUCKETS:
        share = counts[name] / total if total else 0.0
        line = f"  {name:<40} {counts[name]:>7}  {100 * share:5.1f} %"
        if cycles:
            line += f"  {counts[name] / rate / cycles * 1000:8.1f} ms a cycle"
        print(line)


if __name__ == "__main__":
    main()
