#!/usr/bin/env bash
# A local Lambda in one command: starts moto on a free port, creates the table, topic and a
# queue subscribed to it (as template.yaml defines them), runs the real function under
# `cargo lambda watch`, invokes it with each EVENT_FILE (default: every sample in events/),
# prints the messages SNS received, and stops everything it started.
#
#   scripts/try-lambda.sh [EVENT_FILE ...]
#
# Needs python3 and the package registry once (the venv with moto and cargo-lambda, in .venv/).
set -euo pipefail
# Event files relative to where the user is, before moving to the repository.
files=()
for arg in "$@"; do
  case $arg in
    /*) files+=("$arg") ;;
    *) files+=("$PWD/$arg") ;;
  esac
done
cd "$(dirname "$0")/.."
# shellcheck source=scripts/emulators.sh
source scripts/emulators.sh >&2  # the venv, moto on a free port; stopped when this script exits
.venv/bin/python scripts/try_lambda.py ${files[@]+"${files[@]}"}
