#!/usr/bin/env bash
# A fleet in one daemon: 10,000 targets over 20 shards (10 accounts through STS
# AssumeRole, 2 Regions each) against the local endpoint, Lambda's 15 requests/s enforced
# per account and Region, 60 s interval, 3 minutes measured after every target is written
# (BENCH_FLEET_MINUTES changes that). Release build; about 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench fleet
