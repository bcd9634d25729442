#!/usr/bin/env bash
# The whole test suite, from a fresh clone: formatting, lints, the packages
# (scripts/package.sh on the static musl build: the .deb, the image, the tarball, man
# pages and completions), and every test, those of the packages included. Installs
# what the tests need first (Debian packages: prometheus with promtool, systemd-analyze,
# musl-tools, python3-venv, buildah, lintian, man-db; the rustup musl target; moto from
# PyPI in target/moto-venv for the DynamoDB lease tests), so a new machine needs
# nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v buildah >/dev/null || missing+=(buildah)
command -v lintian >/dev/null || missing+=(lintian)
command -v man >/dev/null || missing+=(man-db)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add x86_64-unknown-linux-musl >/dev/null

# moto in server mode serves DynamoDB, STS, EventBridge and SQS to the tests (tests/common/moto.rs).
moto_venv=target/moto-venv
moto_pins=("moto[dynamodb,events]==5.2.5" "flask==3.1.3" "flask-cors==6.0.5")
if [ "$(cat "$moto_venv/pins" 2>/dev/null)" != "${moto_pins[*]}" ]; then
  echo "== installing ${moto_pins[*]} into $moto_venv"
  rm -rf "$moto_venv"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check "${moto_pins[@]}"
  echo "${moto_pins[*]}" > "$moto_venv/pins"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

echo "== packages on the static musl build (profile static-check: release without LTO, opt-level 1)"
PROFILE=static-check bash scripts/package.sh
static_binary=target/x86_64-unknown-linux-musl/static-check/pc-autoscaler
if ! ldd "$static_binary" 2>&1 | grep -qE "statically linked|not a dynamic executable"; then
  echo "error: $static_binary is dynamically linked:" >&2
  ldd "$static_binary" >&2 || true
  exit 1
fi
"$static_binary" check --config config/example.toml >/dev/null
"$static_binary" simulate --config config/example.toml >/dev/null
echo "static binary: $(du -h "$static_binary" | cut -f1), runs check and simulate"

echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --lib --bins --tests 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
