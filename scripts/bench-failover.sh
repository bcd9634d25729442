#!/usr/bin/env bash
# Leader failover time over 20 SIGKILLs and 20 SIGTERMs of the leader, with the default
# lease (15 s, renewed every 5 s), three copies on moto's DynamoDB. About 8 minutes.
# Needs the moto venv that scripts/test.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench failover
