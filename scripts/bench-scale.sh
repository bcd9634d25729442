#!/usr/bin/env bash
# The daemon at account scale: 5,000 targets over 2,500 functions against the local
# endpoint with Lambda's shared 15 requests/s limit enforced, 60 s interval, 10 minutes
# measured after the cold start (release build). Takes about 20 minutes;
# BENCH_SCALE_MINUTES=3 shortens the measured part.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench scale
