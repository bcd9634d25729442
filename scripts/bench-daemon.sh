#!/usr/bin/env bash
# Resident memory and CPU time per cycle of the daemon with 1,000 targets against the
# local test endpoint (release build). Takes about two minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench daemon
