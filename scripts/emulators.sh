# shellcheck shell=bash
# Local AWS for the tests: a Python venv with the pinned tools, and a moto server on a free
# loopback port. Source it (from scripts/test.sh, or by hand in a bash shell):
#
#   source scripts/emulators.sh     # installs/refreshes .venv, starts moto, exports the env
#   ...                             # tests read SESGUARD_TEST_ENDPOINT & co
#   emulators_stop                  # stops moto (idempotent); call it from your EXIT trap
#
# What it exports: SESGUARD_TEST_ENDPOINT=http://127.0.0.1:<port>, dummy AWS credentials and
# region, SESGUARD_REQUIRE_EMULATORS=1 (tests that need moto fail instead of skipping), and
# .venv/bin on PATH (moto_server, cfn-lint, cargo-lambda, python with boto3).
#
# It chains emulators_stop onto the EXIT trap present when it is sourced; a later `trap ... EXIT`
# replaces that, so the caller's own EXIT trap must call emulators_stop itself.
#
# Failure to set up (pip, no free port, moto not answering) prints why and returns 1, which
# ends a caller running under `set -e`.

_emulators_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_emulators_venv="$_emulators_root/.venv"

# Pinned tools. boto3 is unpinned: moto pins the range it works with. pydantic-ocsf is the OCSF
# validator of tests/ocsf_check.py (the OCSF 1.5.0 schema and models it ships).
_emulators_pins=("moto[server]==5.2.5" "cargo-lambda==1.9.2" "cfn-lint==1.58.0" "boto3" "pydantic-ocsf==3.0.0")

_emulators_fail() {
  printf 'emulators: %s\n' "$*" >&2
  return 1
}

# shellcheck source=scripts/venv.sh
source "$_emulators_root/scripts/venv.sh"

# Create .venv if needed and install the pins, unless the installed versions already match
# (a rerun then costs one python start, no pip). The server extra's dependencies (flask) must
# import too: an extra has no version to compare.
emulators_venv() {
  venv_ensure --import flask --import flask_cors --import boto3 --import ocsf.v1_5_0.events \
    "$_emulators_venv" "${_emulators_pins[@]}"
}

# Start moto_server on a free loopback port and wait until it answers HTTP.
emulators_start() {
  if [ -n "${_emulators_moto_pid:-}" ] && kill -0 "$_emulators_moto_pid" 2>/dev/null; then
    echo "emulators: moto already running (pid $_emulators_moto_pid) at $SESGUARD_TEST_ENDPOINT"
    return 0
  fi
  local py="$_emulators_venv/bin/python" port tries
  [ -x "$_emulators_venv/bin/moto_server" ] || _emulators_fail "no moto_server in $_emulators_venv/bin (run emulators_venv)" || return 1
  _emulators_moto_log=$(mktemp "${TMPDIR:-/tmp}/sesguard-moto.XXXXXX.log") || return 1

  # The OS hands out a free port; moto binds it right after. If something takes it in between,
  # moto exits with "Address already in use" and the loop below reports it with the log.
  port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()') \
    || _emulators_fail "could not find a free loopback port" || return 1

  # moto's app behind a lock: conditional writes atomic, as in DynamoDB (see moto_serial.py).
  "$py" "$_emulators_root/scripts/moto_serial.py" -H 127.0.0.1 -p "$port" >"$_emulators_moto_log" 2>&1 &
  _emulators_moto_pid=$!
  echo "emulators: moto_server pid $_emulators_moto_pid on 127.0.0.1:$port, log $_emulators_moto_log"

  # Readiness: poll moto's own API (it answers only once the server is up), at most 150 tries
  # of <= 0.2 s each, stopping early if the process died.
  tries=0
  until "$py" - "$port" <<'PY' 2>/dev/null; do
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/data.json", timeout=1) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
    if ! kill -0 "$_emulators_moto_pid" 2>/dev/null; then
      echo "emulators: moto_server exited before answering; its log:" >&2
      tail -n 20 "$_emulators_moto_log" >&2
      _emulators_moto_pid=
      return 1
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 150 ]; then
      echo "emulators: moto_server did not answer on 127.0.0.1:$port after $tries tries; its log:" >&2
      tail -n 20 "$_emulators_moto_log" >&2
      emulators_stop
      return 1
    fi
    sleep 0.2
  done
  echo "emulators: moto ready after $tries retries"

  export SESGUARD_TEST_ENDPOINT="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=testing
  export AWS_SECRET_ACCESS_KEY=testing
  export AWS_REGION=us-east-1
  export AWS_DEFAULT_REGION=us-east-1
  export SESGUARD_REQUIRE_EMULATORS=1
  # No session token or profile from the developer's own environment leaks into the tests.
  unset AWS_SESSION_TOKEN AWS_PROFILE
  case ":$PATH:" in
    *":$_emulators_venv/bin:"*) ;;
    *) export PATH="$_emulators_venv/bin:$PATH" ;;
  esac
}

# Stop moto (TERM, then KILL after ~5 s) and remove its log. Safe to call more than once.
emulators_stop() {
  local pid="${_emulators_moto_pid:-}"
  _emulators_moto_pid=
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  fi
  if [ -n "${_emulators_moto_log:-}" ]; then
    rm -f "$_emulators_moto_log"
    _emulators_moto_log=
  fi
  return 0
}

# Chain emulators_stop onto whatever EXIT trap is set now (once). In a function so that
# `set --` does not touch the caller's positional parameters.
# shellcheck disable=SC2120  # $3 is from that `set --`, not an argument
_emulators_chain_trap() {
  local prev
  prev=$(trap -p EXIT)
  if [ -n "$prev" ]; then
    eval "set -- $prev"   # trap -p prints: trap -- 'command' EXIT
    # shellcheck disable=SC2064
    trap "$3
emulators_stop" EXIT
  else
    trap emulators_stop EXIT
  fi
}
if [ -z "${_emulators_trap_set:-}" ]; then
  _emulators_trap_set=1
  _emulators_chain_trap
fi

emulators_venv || return 1
emulators_start || return 1
