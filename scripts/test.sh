#!/usr/bin/env bash
# The single test command (README, .ci/run): formatting, lints, and every test.
# It installs what it needs itself; run it from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# Runs a Python check script and adds its passed checks to $passed, from the counts that
# tests/checks.py writes to $SESGUARD_CHECKS_REPORT (not from its output). A failed check makes
# the script exit 1, which ends this one (set -e); the failed count is checked all the same.
python_checks() {
  local counts ok failed
  : >"$report"
  SESGUARD_CHECKS_REPORT="$report" .venv/bin/python "$@"
  if [ ! -s "$report" ]; then
    echo "$1 wrote no counts to SESGUARD_CHECKS_REPORT (tests/checks.py: Checks.finish)" >&2
    exit 1
  fi
  counts=$(.venv/bin/python -c \
    'import json, sys; r = json.load(open(sys.argv[1])); print(r["passed"], r["failed"])' "$report")
  read -r ok failed <<<"$counts"
  if [ "$failed" != 0 ]; then
    echo "$1: $failed failed" >&2
    exit 1
  fi
  passed=$((passed + ok))
}

step "toolchain"
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "emulators (.venv: moto, cfn-lint, cargo-lambda; moto_server on a free port)"
# shellcheck source=scripts/emulators.sh
source scripts/emulators.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
log=$(mktemp)
report=$(mktemp)
trap 'rm -f "$log" "$report"; emulators_stop' EXIT
cargo test --all-targets --locked 2>&1 | tee "$log"
passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')

step "cfn-lint template.yaml"
cfn-lint template.yaml
passed=$((passed + 1))

step "cfn-lint forwarder.yaml (issue 14: the organisation's forwarders)"
cfn-lint forwarder.yaml
passed=$((passed + 1))

step "template.yaml, forwarder.yaml: patterns = rules, events/ through EventBridge (moto), security"
python_checks tests/template_check.py ./target/debug/sesguard

step "scan --format ocsf: every signal of events/ and the scenarios is a valid OCSF 1.5.0 Detection Finding"
python_checks tests/ocsf_check.py ./target/debug/sesguard

step "end to end: the real sesguard-lambda under cargo lambda watch, against moto"
python_checks tests/e2e_lambda.py "$PWD"

step "scripts/try-lambda.sh: a local Lambda in one command publishes what scan prints"
# Its own moto (a second one beside the suite's), the function under cargo lambda watch (built
# above by the end-to-end test), one sample event.
try_err=$(mktemp)
if ! try_out=$(scripts/try-lambda.sh events/ses-DeleteIdentity.json 2>"$try_err"); then
  cat "$try_err" >&2
  exit 1
fi
expected=$(./target/debug/sesguard scan --quiet --format jsonl events/ses-DeleteIdentity.json | sort)
got=$(printf '%s\n' "$try_out" | grep '^{' | sort || true)
if [ -z "$expected" ] || [ "$got" != "$expected" ]; then
  echo "try-lambda.sh printed other signals than sesguard scan of the same event:" >&2
  diff <(printf '%s\n' "$expected") <(printf '%s\n' "$got") >&2 || true
  exit 1
fi
rm -f "$try_err"
passed=$((passed + 1))

step "end to end, S3 path: log files in moto S3, SQS events to the real sesguard-lambda"
python_checks tests/e2e_s3.py "$PWD"

step "sam build (offline): the arm64 bootstrap users deploy"
# Cold (new machine), 10-15 min: the whole dependency tree cross-compiled for arm64; warm
# (~/.cache/sesguard, kept between runs and clones), 2-3 min after a change in src/.
scripts/sam-build-check.sh
passed=$((passed + 1))

step "without the s3 feature, scan s3://… says how to turn it on"
cargo build --release --locked --quiet --bin sesguard
set +e
no_s3=$(./target/release/sesguard scan s3://trail-bucket/AWSLogs/ 2>&1)
code=$?
set -e
if [ "$code" != 2 ] || ! printf '%s' "$no_s3" | grep -q -- '--features s3'; then
  echo "scan s3:// without the s3 feature: exit $code, $no_s3" >&2
  exit 1
fi
passed=$((passed + 1))

step "without the s3 feature, config check/push s3://… say how to turn it on (issue 17)"
set +e
no_s3=$(./target/release/sesguard config check s3://config-bucket/sesguard.toml 2>&1)
code=$?
set -e
if [ "$code" != 2 ] || ! printf '%s' "$no_s3" | grep -q -- '--features s3'; then
  echo "config check s3:// without the s3 feature: exit $code, $no_s3" >&2
  exit 1
fi
passed=$((passed + 1))

step "README commands"
# The newcomer's first command must show signals from events/.
out=$(cargo run --release --locked --quiet -- scan events/ --quiet)
count=$(printf '%s\n' "$out" | grep -c '"rule_id"' || true)
if [ "$count" -lt 5 ]; then
  echo "scan events/ printed $count signals; expected the sample attack to give at least 5" >&2
  exit 1
fi
# ... and the whole attack as one abuse chain (events/README.md).
chains=$(printf '%s\n' "$out" | grep -c '"rule_id":"ses-abuse-chain"' || true)
if [ "$chains" != 1 ]; then
  echo "scan events/ printed $chains ses-abuse-chain signals; expected the sample attack to give 1" >&2
  exit 1
fi
echo "scan events/: $count signals, $chains ses-abuse-chain"

echo
echo "tests: $passed passed, 0 failed"
