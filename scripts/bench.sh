#!/usr/bin/env bash
# Scan throughput, side by side in one run (BENCHMARKS.md has the results and the notes).
#
#   scripts/bench.sh [SIZE] [RUNS]      SIZE of raw JSON to generate (default 1G), RUNS per row
#                                       (default 5; jq gets JQ_RUNS, default 3)
#
# Generates a deterministic CloudTrail corpus with the workspace tool tools/corpus (raw and
# .json.gz, kept in target/bench-corpus/ for the next run), builds release, then times on the same
# files: sesguard on raw and on .gz with --threads 1 and the default thread count (and raw with
# --threads 1 --no-mmap), `gzip -dc` of the .gz to /dev/null, and the jq one-liner on raw; each RUNS
# times after a warm-up read, reporting the median wall time, CPU time (user + system) and peak RSS
# (/usr/bin/time -f %M), and a markdown table of ratios. Then the Lambda: its init time
# (scripts/init_time.py, release build) and the size of the arm64 bootstrap `sam build` makes
# (scripts/sam-build-check.sh).
# Too slow for CI, which runs only the tests: it refuses to run when CI is set.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${CI:-}" ]; then
  echo "scripts/bench.sh: not run in CI (it takes minutes); CI runs the tests only" >&2
  exit 0
fi

size=${1:-1G}
runs=${2:-5}
jq_runs=${JQ_RUNS:-3}
corpus=${BENCH_DIR:-target/bench-corpus}/$size
timer=/usr/bin/time
if [ ! -x "$timer" ]; then
  echo "scripts/bench.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2
  exit 1
fi

echo "== build (release profile)" >&2
cargo build --release --locked --bin sesguard --bin sesguard-lambda >&2
# The corpus generator is a workspace tool (tools/corpus), not a binary of the sesguard package.
cargo build --release --locked -p sesguard-corpus >&2
bin=target/release/sesguard
corpus_bin=target/release/sesguard-corpus

if [ ! -f "$corpus/.complete" ]; then
  echo "== generate $size corpus in $corpus" >&2
  rm -rf "$corpus"
  "$corpus_bin" --out "$corpus" --size "$size" >&2
  touch "$corpus/.complete"
fi
raw_bytes=$(find "$corpus/raw" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
gz_bytes=$(find "$corpus/gz" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
files=$(find "$corpus/raw" -type f | wc -l)
cpus=$(nproc)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results

median() { sort -g | awk '{a[NR] = $1} END {print ((NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

# measure KEY LABEL RUNS COMMAND...: appends "KEY|LABEL|wall|cpu|rss_kb|runs" to $results.
measure() {
  local key=$1 label=$2 n=$3
  shift 3
  : > "$tmp/walls"; : > "$tmp/cpus"; : > "$tmp/rss"
  for ((i = 1; i <= n; i++)); do
    if ! "$timer" -f '%e %U %S %M' -o "$tmp/time" "$@" > /dev/null 2> "$tmp/stderr"; then
      echo "scripts/bench.sh: $label failed:" >&2
      cat "$tmp/stderr" >&2
      exit 1
    fi
    read -r wall user sys rss < <(tail -n 1 "$tmp/time")
    echo "$wall" >> "$tmp/walls"
    echo "$user $sys" | awk '{print $1 + $2}' >> "$tmp/cpus"
    echo "$rss" >> "$tmp/rss"
    printf '   %-34s run %d: %6.2f s wall, %6.2f s cpu, %7d KB\n' "$label" "$i" "$wall" \
      "$(tail -n 1 "$tmp/cpus")" "$rss" >&2
  done
  echo "$key|$label|$(median < "$tmp/walls")|$(median < "$tmp/cpus")|$(sort -n "$tmp/rss" | tail -n 1)|$n" >> "$results"
}

echo "== warm the page cache" >&2
cat "$corpus"/raw/* "$corpus"/gz/* > /dev/null

echo "== measure ($runs runs each, medians)" >&2
measure raw1 "sesguard scan raw, --threads 1" "$runs" "$bin" scan --quiet --threads 1 "$corpus/raw"
measure raw1read "sesguard scan raw, --threads 1 --no-mmap" "$runs" "$bin" scan --quiet --threads 1 --no-mmap "$corpus/raw"
measure raw "sesguard scan raw, --threads $cpus" "$runs" "$bin" scan --quiet "$corpus/raw"
measure gz1 "sesguard scan .gz, --threads 1" "$runs" "$bin" scan --quiet --threads 1 "$corpus/gz"
measure gz "sesguard scan .gz, --threads $cpus" "$runs" "$bin" scan --quiet "$corpus/gz"
measure gzip "gzip -dc .gz > /dev/null" "$runs" \
  sh -c 'find "$1" -type f -print0 | sort -z | xargs -0 gzip -dc' sh "$corpus/gz"
if [ -x /usr/bin/jq ]; then
  measure jq "jq one-liner on raw" "$jq_runs" \
    sh -c 'find "$1" -type f -print0 | sort -z | xargs -0 /usr/bin/jq -c '\''.Records[] | select(.eventSource=="ses.amazonaws.com")'\''' \
    sh "$corpus/raw"
fi
# The signals must not depend on the thread count.
"$bin" scan --quiet --threads 1 "$corpus/raw" > "$tmp/one.jsonl"
"$bin" scan --quiet "$corpus/raw" > "$tmp/many.jsonl"
"$bin" scan --quiet "$corpus/gz" > "$tmp/gz.jsonl"
"$bin" scan --quiet --no-mmap "$corpus/raw" > "$tmp/read.jsonl"
cmp -s "$tmp/one.jsonl" "$tmp/many.jsonl" && cmp -s "$tmp/one.jsonl" "$tmp/gz.jsonl" &&
  cmp -s "$tmp/one.jsonl" "$tmp/read.jsonl" ||
  { echo "scripts/bench.sh: signals differ between thread counts, raw and .gz, or mapped and read files" >&2; exit 1; }
signals=$(wc -l < "$tmp/one.jsonl")

get() { awk -F'|' -v k="$1" -v f="$2" '$1 == k {print $f}' "$results"; }
lambda_bytes=$(stat -c %s target/release/sesguard-lambda)

echo "== Lambda init time (release build, 21 cold starts against a local runtime API)" >&2
python3 scripts/init_time.py target/release/sesguard-lambda 21 > "$tmp/init" 2>&1 ||
  { cat "$tmp/init" >&2; exit 1; }
init_ms=$(sed -nE 's/^median init time: ([0-9.]+) ms.*/\1/p' "$tmp/init")

echo "== arm64 bootstrap (sam build, as deployed)" >&2
scripts/sam-build-check.sh > "$tmp/sam" 2>&1 || { cat "$tmp/sam" >&2; exit 1; }
arm64_bytes=$(sed -nE 's/.*bootstrap is an ELF 64-bit aarch64 executable, ([0-9]+) bytes.*/\1/p' "$tmp/sam")

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')
echo
echo "Corpus: $files CloudTrail log files, $raw_bytes bytes raw ($(awk -v b="$raw_bytes" 'BEGIN {printf "%.2f", b / 1e9}') GB), $gz_bytes bytes .json.gz; $signals signals."
echo "Machine: $cpus CPUs ($cpu_model), $mem; $(uname -sr); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| measurement | median wall s | median CPU s | raw MB/s (wall) | peak RSS MB | runs |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
while IFS='|' read -r key label wall cpu rss n; do
  awk -v l="$label" -v w="$wall" -v c="$cpu" -v r="$rss" -v b="$raw_bytes" -v n="$n" \
    'BEGIN {printf "| %s | %.2f | %.2f | %.0f | %.1f | %d |\n", l, w, c, b / w / 1e6, r / 1024, n}'
done < "$results"
echo
echo "| goal | measured | met |"
echo "| --- | --- | --- |"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
row() { echo "| $1 | $2 | $(awk -v ok="$3" 'BEGIN {print (ok ? "yes" : "no")}') |"; }
r1=$(awk -v b="$raw_bytes" -v w="$(get raw1 3)" 'BEGIN {printf "%.2f", b / w / 1e9}')
r1cpu=$(awk -v b="$raw_bytes" -v w="$(get raw1 4)" 'BEGIN {printf "%.2f", b / w / 1e9}')
row "raw JSON ≥ 1 GB/s on one core (--threads 1)" "$r1 GB/s wall, $r1cpu GB/s per CPU second" "$(awk -v r="$r1" 'BEGIN {print (r >= 1)}')"
speedup=$(ratio "$(get raw1 3)" "$(get raw 3)")
row "second core used with several files" "$speedup× faster with $cpus threads than 1 (CPU $(get raw 4) s vs $(get raw1 4) s)" "$(awk -v r="$speedup" 'BEGIN {print (r >= 1.3)}')"
g=$(ratio "$(get gz 3)" "$(get gzip 3)")
g1=$(ratio "$(get gz1 3)" "$(get gzip 3)")
row ".json.gz scan time ≤ gzip -dc" "$g× gzip -dc ($g1× with --threads 1)" "$(awk -v r="$g" 'BEGIN {print (r <= 1)}')"
if [ -n "$(get jq 3)" ]; then
  j=$(ratio "$(get jq 3)" "$(get raw 3)")
  j1=$(ratio "$(get jq 3)" "$(get raw1 3)")
  row "≥ 20× faster than the jq one-liner" "$j× ($j1× with --threads 1)" "$(awk -v r="$j" 'BEGIN {print (r >= 20)}')"
fi
maxrss=$(sort -t'|' -k5 -n "$results" | awk -F'|' '$1 ~ /^(raw|gz)/ {m = $5 > m ? $5 : m} END {printf "%.1f", m / 1024}')
row "peak RSS ≤ 100 MB" "$maxrss MB (largest sesguard row)" "$(awk -v r="$maxrss" 'BEGIN {print (r <= 100)}')"
row "sesguard-lambda ≤ 8 MB for arm64 (sam build's bootstrap)" "$(awk -v b="$arm64_bytes" 'BEGIN {printf "%.2f MB", b / 1e6}') arm64 ($(awk -v b="$lambda_bytes" 'BEGIN {printf "%.2f MB", b / 1e6}') x86_64)" "$(awk -v b="$arm64_bytes" 'BEGIN {print (b <= 8e6)}')"
row "Lambda init ≤ 20 ms (process start to first runtime API request, median)" "$init_ms ms (x86_64 release)" "$(awk -v m="$init_ms" 'BEGIN {print (m <= 20)}')"
