#!/usr/bin/env bash
# The hostile inputs of issue 12, item 8, for measuring `sesguard scan`'s memory and time on
# them (BENCHMARKS.md, "Hostile inputs"):
#
#   scripts/hostile_inputs.sh [DIR]          (default: target/hostile)
#
# writes, made as a stream (nothing is held in memory, a few seconds to a minute):
#   DIR/huge-line.json.gz  one line of 3 GiB: {"Records":[first, a record with a 3 GiB "pad"
#                          string, third]}, then a line holding one record ("after")
#   DIR/numbers.json.gz    a JSON array of 40 million zeros, [0,0,...,0] (80 MB)
#   DIR/next.json          a log file with one record ("next"), scanned after either
# Each record except the padded one is a GetAccount by a long-term key, which fires R1 and R2,
# so the signals show which records were read. Then, for example:
#   /usr/bin/time -v target/release/sesguard scan --format jsonl DIR/huge-line.json.gz DIR/next.json
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-target/hostile}
mkdir -p "$dir"

record() {
  printf '{"eventVersion":"1.09","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/%s","accountId":"111122223333","accessKeyId":"AKIAIOSFODNN7EXAMPLE"},"eventTime":"2026-03-02T09:00:00Z","eventSource":"ses.amazonaws.com","eventName":"GetAccount","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.23","eventID":"%s","recipientAccountId":"111122223333"' "$1" "$1"
}

echo "== $dir/huge-line.json.gz (3 GiB line)" >&2
{
  printf '{"Records":['
  record first
  printf '},'
  record huge
  printf ',"pad":"'
  head -c $((3 << 30)) /dev/zero | tr '\0' a
  printf '"},'
  record third
  printf '}]}\n'
  record after
  printf '}\n'
} | gzip -1 > "$dir/huge-line.json.gz"

echo "== $dir/numbers.json.gz (40 million numbers)" >&2
{
  printf '['
  # 39,999,999 times "0," then the last 0 (yes ends on SIGPIPE: not an error here).
  { yes 0 || true; } | head -n 39999999 | tr '\n' ','
  printf '0]\n'
} | gzip -1 > "$dir/numbers.json.gz"

{
  printf '{"Records":['
  record next
  printf '}]}\n'
} > "$dir/next.json"

ls -l "$dir" >&2
