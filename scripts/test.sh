#!/usr/bin/env bash
# The single test command (README, .ci/run): formatting, lints, and every test.
# It installs what it needs itself; run it from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --all-targets --locked

step "README commands"
# The newcomer's first command must show signals from events/.
out=$(cargo run --release --locked --quiet -- scan events/ --quiet)
count=$(printf '%s\n' "$out" | grep -c '"rule_id"' || true)
if [ "$count" -lt 5 ]; then
  echo "scan events/ printed $count signals; expected the sample attack to give at least 5" >&2
  exit 1
fi
echo "scan events/: $count signals"
