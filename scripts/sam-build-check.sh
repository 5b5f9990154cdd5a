#!/usr/bin/env bash
# `sam build` of template.yaml, offline (issue 4): SAM CLI and cargo-lambda from PyPI, no AWS
# credentials, no Docker. Asserts the package holds an arm64 (aarch64) ELF `bootstrap`, prints
# the time and the size, and removes the build directory.
#
#   scripts/sam-build-check.sh            # from anywhere; non-interactive, CI-safe
#
# It installs what it needs, idempotently (a rerun costs one python start, no pip):
#   - a venv with the pins below, made by scripts/venv.sh as .venv is but separate from it
#     (aws-sam-cli pins its own boto3/botocore range, which must not move moto's);
#   - the Rust target aarch64-unknown-linux-gnu (rustup), which cargo-lambda cross-compiles to
#     with zig (the ziglang wheel cargo-lambda depends on); no apt packages are needed.
#
# Time (2 cores, measured): the first arm64 release build of the dependency tree (AWS SDK,
# aws-lc-sys through zig, thin LTO) 9-11 min on a quiet machine, ~15 min beside other builds;
# pip into a new venv adds 1-1.5 min. With the caches below warm: a fresh clone or a change in
# src/ ~2.5 min (the crate and its LTO link), a rerun with nothing changed ~4 s.
#
# Both the venv and the cargo target directory live outside the work tree, at fixed paths, so
# they are reused between runs and between clones (CI's fresh clone on the same machine starts
# warm). The path matters: cargo-zigbuild's linker wrapper is keyed by the path of the
# cargo-lambda binary, so a venv at another path rebuilds the whole tree.
#   venv:        $SESGUARD_SAM_VENV, default ~/.cache/sesguard/sam-venv (~0.8 GB)
#   target dir:  $SESGUARD_SAM_TARGET_DIR, else $CARGO_TARGET_DIR, default
#                ~/.cache/sesguard/sam-target (~0.7 GB). Not the crate's target/: cargo's lock
#                on it would make this wait behind every other build, and a fresh clone's is
#                empty anyway.
# AWS_REGION defaults to us-east-1 (sam needs a region, never credentials).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/sesguard"
venv="${SESGUARD_SAM_VENV:-$cache/sam-venv}"
pins=("aws-sam-cli==1.170.0" "cargo-lambda==1.9.2")
rust_target=aarch64-unknown-linux-gnu
function_id=SesguardFunction   # the template's logical id of the function

fail() {
  printf 'sam-build-check: FAIL: %s\n' "$*" >&2
  exit 1
}
say() { printf 'sam-build-check: %s\n' "$*"; }

# ---------------------------------------------------------------- tools
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
venv_ensure "$venv" "${pins[@]}" || fail "tool venv $venv"
[ -x "$venv/bin/sam" ] || fail "no sam in $venv/bin"
[ -x "$venv/bin/cargo-lambda" ] || fail "no cargo-lambda in $venv/bin"

if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx "$rust_target"; then
    say "rustup target add $rust_target"
    rustup target add "$rust_target" || fail "rustup target add $rust_target"
  fi
fi

# ---------------------------------------------------------------- build
build_dir=$(mktemp -d "${TMPDIR:-/tmp}/sesguard-sam-build.XXXXXX")
trap 'rm -rf "$build_dir"' EXIT

export CARGO_TARGET_DIR="${SESGUARD_SAM_TARGET_DIR:-${CARGO_TARGET_DIR:-$cache/sam-target}}"
mkdir -p "$CARGO_TARGET_DIR"
# sam finds cargo-lambda (and cargo-lambda finds zig) on PATH.
export PATH="$venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"

say "sam $("$venv/bin/sam" --version | awk '{print $NF}'), cargo-lambda $(cargo-lambda lambda --version | awk '{print $2}'), target dir $CARGO_TARGET_DIR"
start=$(date +%s)
# --cache-dir inside the temporary directory: sam leaves nothing (.aws-sam/) in the work tree.
if ! sam build --template-file template.yaml --build-dir "$build_dir/build" \
  --cache-dir "$build_dir/cache" </dev/null; then
  # sam shows only the first line of cargo-lambda's output: show the compiler's own error.
  say "sam build failed; the same build by cargo-lambda, for its full output:"
  cargo-lambda lambda build --release --arm64 --bin sesguard-lambda </dev/null 2>&1 | tail -n 60 >&2 || true
  fail "sam build failed"
fi
elapsed=$(($(date +%s) - start))

# ---------------------------------------------------------------- assert
bootstrap="$build_dir/build/$function_id/bootstrap"
[ -f "$bootstrap" ] || fail "no $function_id/bootstrap in the sam build output"
[ -x "$bootstrap" ] || fail "$bootstrap is not executable"

# ELF header: magic 7f 45 4c 46, EI_CLASS 2 (64-bit), EI_DATA 1 (little endian),
# e_type (offset 16) 2 = EXEC or 3 = DYN, e_machine (offset 18, LE) 0x00b7 = EM_AARCH64.
read -r -a hdr <<<"$(od -An -v -tx1 -N20 "$bootstrap" | tr -s ' \n' ' ')"
[ "${hdr[0]:-}${hdr[1]:-}${hdr[2]:-}${hdr[3]:-}" = 7f454c46 ] || fail "bootstrap is not an ELF file"
[ "${hdr[4]}" = 02 ] || fail "bootstrap is not a 64-bit ELF (EI_CLASS ${hdr[4]})"
[ "${hdr[5]}" = 01 ] || fail "bootstrap is not little endian (EI_DATA ${hdr[5]})"
case "${hdr[16]}${hdr[17]}" in 0200 | 0300) ;; *) fail "bootstrap is not an executable (e_type ${hdr[17]}${hdr[16]})" ;; esac
[ "${hdr[18]}${hdr[19]}" = b700 ] || fail "bootstrap is not aarch64 (e_machine 0x${hdr[19]}${hdr[18]}, want 0x00b7)"

# provided.al2023 has glibc 2.34: the binary must not need a newer symbol version.
if command -v readelf >/dev/null 2>&1; then
  glibc=$(readelf -V "$bootstrap" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  [ -n "$glibc" ] || fail "readelf found no GLIBC symbol versions in bootstrap"
  [ "$(printf '%s\n2.34\n' "$glibc" | sort -V | tail -n 1)" = 2.34 ] \
    || fail "bootstrap needs glibc $glibc; provided.al2023 has 2.34"
  say "bootstrap needs glibc <= $glibc (provided.al2023: 2.34)"
fi

size=$(wc -c <"$bootstrap")
# The brief's budget for the Lambda binary (arm64): 8 MB, read as 8,000,000 bytes.
max_size=8000000
[ "$size" -le "$max_size" ] || fail "bootstrap is $size bytes, over the $max_size-byte budget"
if command -v file >/dev/null 2>&1; then
  say "$(file -b "$bootstrap")"
fi
say "OK: $function_id/bootstrap is an ELF 64-bit aarch64 executable, $size bytes ($((size / 1024)) KiB); sam build took ${elapsed}s"
