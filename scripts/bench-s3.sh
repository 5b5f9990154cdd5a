#!/usr/bin/env bash
# The Lambda's S3 path: peak memory on one 200 MB (uncompressed) log file, and throughput beside
# the CLI's on the same files, in one run (BENCHMARKS.md has the results).
#
#   scripts/bench-s3.sh [FILES] [MB]   FILES of the benchmark corpus to read (default 300),
#                                      MB of the one big log file (default 200)
#
# Needs the corpus of scripts/bench.sh (BENCH_DIR, default target/bench-corpus/1G/{raw,gz}).
# Starts moto (scripts/emulators.sh), puts in its S3: one log file of MB megabytes (uncompressed,
# one line of records as CloudTrail writes it) plain and gzip'd, and the first FILES corpus
# files raw and gzip'd. Then the release example crates/lambda/examples/s3_bench.rs reads each
# set through Handler::handle_object with the function's S3 store (GetObject streamed through
# SyncIoBridge, inflate, split, prefilter, evaluate; in-memory state), printing its peak RSS
# (VmHWM), and `sesguard scan --threads 1` reads the same files from disk. moto (Python) serves
# S3 here: its GetObject speed bounds the S3 figures.
# Not for CI (minutes): it refuses to run when CI is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${CI:-}" ]; then
  echo "scripts/bench-s3.sh: not run in CI" >&2
  exit 0
fi
files=${1:-300}
megabytes=${2:-200}
corpus=${BENCH_DIR:-target/bench-corpus}/1G
[ -d "$corpus/raw" ] || { echo "no corpus in $corpus (run scripts/bench.sh first, or set BENCH_DIR)" >&2; exit 1; }

echo "== build (release profile)" >&2
cargo build --release --locked --bin sesguard -p sesguard >&2
cargo build --release --locked -p sesguard-lambda --example s3_bench >&2
bench=target/release/examples/s3_bench
cli=target/release/sesguard

# shellcheck source=scripts/emulators.sh
source scripts/emulators.sh >&2
work=$(mktemp -d "${TMPDIR:-/tmp}/sesguard-bench-s3.XXXXXX")
trap 'rm -rf "$work"; emulators_stop' EXIT
export AWS_ENDPOINT_URL=$SESGUARD_TEST_ENDPOINT

echo "== corpus: one ${megabytes} MB log file, the first $files files raw and gzip'd, into moto S3" >&2
python - "$corpus" "$files" "$megabytes" "$work" <<'PY'
import gzip, os, sys, boto3
corpus, files, megabytes, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s3 = boto3.client("s3")
s3.create_bucket(Bucket="bench")
raw = sorted(os.listdir(f"{corpus}/raw"))[:files]
os.makedirs(f"{work}/raw"); os.makedirs(f"{work}/gz"); os.makedirs(f"{work}/big")
for name in raw:
    for kind, local, key in (("raw", f"{corpus}/raw/{name}", f"raw/{name}"),
                             ("gz", f"{corpus}/gz/{name}.gz", f"gz/{name}.gz")):
        os.link(local, f"{work}/{key}") if os.stat(local).st_dev == os.stat(work).st_dev else open(f"{work}/{key}", "wb").write(open(local, "rb").read())
        s3.upload_file(local, "bench", key)
# One line {"Records":[...]} of at least `megabytes` MB, records of the corpus files in order.
target, size, first = megabytes * 1000 * 1000, 0, True
with open(f"{work}/big/big.json", "wb") as out:
    out.write(b'{"Records":[')
    for name in sorted(os.listdir(f"{corpus}/raw")):
        text = open(f"{corpus}/raw/{name}", "rb").read().strip()
        inner = text[len(b'{"Records":['):-len(b']}')]
        out.write(inner if first else b"," + inner)
        first = False
        size += len(inner)
        if size >= target:
            break
    out.write(b"]}")
with open(f"{work}/big/big.json", "rb") as src, gzip.open(f"{work}/big/big.json.gz", "wb", 6) as dst:
    while chunk := src.read(1 << 20):
        dst.write(chunk)
s3.upload_file(f"{work}/big/big.json", "bench", "big-plain/big.json")
s3.upload_file(f"{work}/big/big.json.gz", "bench", "big-gz/big.json.gz")
PY

mb() { du -bc "$@" | tail -1 | awk '{printf "%.1f", $1 / 1e6}'; }
raw_mb=$(mb "$work"/raw/*)
gz_mb=$(mb "$work"/gz/*)
big_mb=$(mb "$work/big/big.json")
bigz_mb=$(mb "$work/big/big.json.gz")

s3_row() { # label prefix uncompressed-MB
  local out
  out=$("$bench" bench "$2")
  python - "$1" "$3" "$out" <<'PY'
import json, sys
label, mb, out = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
print(f"| {label} | Lambda S3 path (moto S3) | {out['objects']} | {mb:.1f} | {out['records']} | {out['signals']} | "
      f"{out['seconds']:.2f} | {mb / out['seconds']:.1f} | {out['peak_rss_kib'] / 1024:.1f} |")
PY
}
cli_row() { # label uncompressed-MB files...
  local label=$1 size=$2; shift 2
  local start end peak
  start=$(date +%s.%N)
  peak=$( { /usr/bin/time -f '%M' "$cli" scan --quiet --format jsonl --threads 1 "$@" | wc -l >"$work/signals"; } 2>&1 | tail -1)
  end=$(date +%s.%N)
  python - "$label" "$size" "$start" "$end" "$peak" "$(cat "$work/signals")" "$#" <<'PY'
import sys
label, mb, start, end, peak, signals, files = sys.argv[1:]
seconds = float(end) - float(start)
print(f"| {label} | sesguard scan --threads 1 (disk) | {files} | {float(mb):.1f} | | {signals} | {seconds:.2f} | "
      f"{float(mb) / seconds:.1f} | {int(peak) / 1024:.1f} |")
PY
}

echo
echo "| input | reader | files | MB (uncompressed) | records | signals | seconds | MB/s | peak RSS MB |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
s3_row "one ${big_mb} MB log file, plain" big-plain/ "$big_mb"
cli_row "one ${big_mb} MB log file, plain" "$big_mb" "$work/big/big.json"
s3_row "one ${big_mb} MB log file, gzip'd ($bigz_mb MB)" big-gz/ "$big_mb"
cli_row "one ${big_mb} MB log file, gzip'd ($bigz_mb MB)" "$big_mb" "$work/big/big.json.gz"
s3_row "$files corpus files, raw" raw/ "$raw_mb"
cli_row "$files corpus files, raw" "$raw_mb" "$work"/raw/*
s3_row "$files corpus files, gzip'd ($gz_mb MB)" gz/ "$raw_mb"
cli_row "$files corpus files, gzip'd ($gz_mb MB)" "$raw_mb" "$work"/gz/*
