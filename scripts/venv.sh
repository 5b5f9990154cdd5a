# shellcheck shell=bash
# The tool venvs of the test scripts, made one way. Source it, then:
#
#   venv_ensure [--import MODULE]... DIR PIN...
#
# creates the venv DIR if needed and pip-installs the PINs ("name==version", or a bare "name"
# for any version; extras such as "moto[server]" are checked by name), unless the installed
# versions already match and every --import MODULE imports: a rerun then costs one python
# start, no pip. --import covers what a version cannot show (an extra's dependencies).
# On failure it prints why and returns 1.

_venv_fail() {
  printf 'venv: %s\n' "$*" >&2
  return 1
}

# Prints what DIR lacks and fails, or succeeds silently. Arguments: DIR IMPORTS PIN..., IMPORTS
# being the --import modules joined by spaces.
_venv_lacks() {
  local dir=$1
  shift
  "$dir/bin/python" - "$@" <<'PY' 2>&1
import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

imports, pins = sys.argv[1].split(), sys.argv[2:]
for spec in pins:
    name, _, want = spec.partition("==")
    name = name.split("[")[0]
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(f"{name} is not installed")
    if want and have != want:
        sys.exit(f"{name} is {have}, want {want}")
for module in imports:
    try:
        importlib.import_module(module)
    except Exception as err:  # an extra's half-installed dependency fails in many ways
        sys.exit(f"import {module} fails: {type(err).__name__}: {err}")
PY
}

venv_ensure() {
  local imports=() dir why
  while [ "${1:-}" = --import ]; do
    [ -n "${2:-}" ] || _venv_fail "venv_ensure: --import needs a module name" || return 1
    imports+=("$2")
    shift 2
  done
  [ "$#" -ge 2 ] || _venv_fail "usage: venv_ensure [--import MODULE]... DIR PIN..." || return 1
  dir=$1
  shift

  if [ ! -x "$dir/bin/python" ]; then
    echo "venv: creating $dir"
    mkdir -p "$(dirname "$dir")" || _venv_fail "cannot create $(dirname "$dir")" || return 1
    python3 -m venv "$dir" || _venv_fail "python3 -m venv $dir failed" || return 1
  fi
  # Keep git from seeing the venv, should it sit in a work tree (SESGUARD_SAM_VENV may point
  # anywhere).
  [ -f "$dir/.gitignore" ] || printf '*\n' >"$dir/.gitignore"

  if why=$(_venv_lacks "$dir" "${imports[*]-}" "$@"); then
    echo "venv: $dir already has $*"
    return 0
  fi
  why=${why##*$'\n'}   # the last line: a traceback ends with the error
  echo "venv: installing $* into $dir (${why:-its python does not run})"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
    || _venv_fail "pip install $* into $dir failed" || return 1
  # pip can succeed and still leave a pin unmet (a conflict it only warns about).
  if ! why=$(_venv_lacks "$dir" "${imports[*]-}" "$@"); then
    why=${why##*$'\n'}
    _venv_fail "after pip install into $dir: ${why:-its python does not run}"
    return 1
  fi
}
