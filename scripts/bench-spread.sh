#!/usr/bin/env bash
# Spread leases over three copies: 20,000 targets over 40 shards (20 accounts, 2 Regions)
# on the local endpoint, leases on moto's DynamoDB with the default lease (15 s, renewed
# every 5 s). Prints balancing after a start, a SIGKILL and a join, shards moved, how long
# a moved shard went unwritten, memory and CPU per copy (BENCH_SPREAD_MINUTES, default 2)
# and the lease table's request rate and monthly cost. Needs the moto venv that
# scripts/test.sh installs. Release build; about 15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench spread
