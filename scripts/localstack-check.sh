#!/usr/bin/env bash
# An independent check of the wire: `check`, `plan` and `run --once --dry-run` with the
# default policy against LocalStack (localstack-core in host mode, no Docker), which no
# one here wrote. Three functions with an alias `live` and 20 minutes of
# ConcurrentExecutions whose peaks need 20, 5 and 10 at target 0.7; the check passes
# when `plan --json` wants exactly those.
#
# Usage: bash scripts/localstack-check.sh [BINARY]   (default target/debug/pc-autoscaler)
#
# Not part of the test command: LocalStack and its Python dependencies take a minute
# to install, and its Lambda in host mode cannot run a function, so it refuses the
# writes themselves ("Could not find version"); the decisions are what is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/debug/pc-autoscaler}
venv=target/localstack-venv
python=${PYTHON313:-$HOME/.pyenv/versions/3.13.0/bin/python3.13}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  # The newest releases of these break localstack-core's imports; these are the last
  # that work with it.
  "$venv/bin/pip" install -q "localstack-core[runtime]" "cbor2<6" "pyopenssl<24.3" \
    "cryptography<44" "service_identity<24.2"
fi
port=4566
GATEWAY_LISTEN=127.0.0.1:$port SERVICES=lambda,cloudwatch DNS_ADDRESS=0 \
  "$venv/bin/python" -m localstack.runtime.main >target/localstack.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 60); do
  curl -sf "http://127.0.0.1:$port/_localstack/health" >/dev/null && break
  sleep 1
done
"$venv/bin/python" scripts/localstack-setup.py
config=$(mktemp --suffix .toml)
{
  printf '[aws]\nendpoint_url = "http://127.0.0.1:%s"\nregion = "us-east-1"\n' "$port"
  for name in ls-a ls-b ls-c; do
    printf '[[target]]\nfunction = "%s"\nqualifier = "live"\nmin = 1\nmax = 100\n' "$name"
    printf 'tracking = { metric = "concurrency", target = 0.7 }\n'
  done
} >"$config"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
"$binary" check --config "$config"
time "$binary" plan --config "$config"
"$binary" run --once --dry-run --config "$config"
wanted=$("$binary" plan --config "$config" --json 2>/dev/null | python3 -c \
  'import json, sys; print(" ".join("%s=%s" % (row["target"], row["desired"]) for row in json.load(sys.stdin)))')
echo "plan wants: $wanted"
[ "$wanted" = "ls-a:live=20 ls-b:live=5 ls-c:live=10" ]
echo "localstack check: passed"
