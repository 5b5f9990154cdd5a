#!/usr/bin/env python3
"""Which share of a CloudTrail corpus the forwarders' patterns let through (BENCHMARKS.md,
"Organisation scale"; issue 14).

    .venv/bin/python scripts/org_share.py ./target/debug/sesguard CORPUS_RAW_DIR [MATCHED.jsonl]

Every record of every `{"Records":[...]}` file under CORPUS_RAW_DIR is wrapped as EventBridge
delivers a CloudTrail record (source `aws.<service>`, detail-type by eventType, the record as
`detail`) and matched against each pattern of `sesguard rules --format eventbridge` with moto's
EventBridge pattern matcher (`moto.events.models.EventPattern`: the matcher behind moto's
EventBridge, which tests/template_check.py routes the samples through). Records are classed as
the corpus generator writes them (tools/corpus/src/lib.rs): the SES share is every
`ses.amazonaws.com` record and every Service Quotas call for serviceCode `ses`; the rest is the
benign background (`noise_call`, which writes neither).

Prints JSON: records, days covered, matches per pattern and per class, and the benign records
that match, by eventSource/eventName. With MATCHED.jsonl, writes the matched records there as
EventBridge envelopes (for the DynamoDB call count, crates/lambda/examples/count_calls.rs).
Not run in CI (minutes on the 1 GB corpus).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from moto.events.models import EventPattern

DETAIL_TYPES = {
    "AwsApiCall": "AWS API Call via CloudTrail",
    "AwsConsoleSignIn": "AWS Console Sign In via CloudTrail",
    "AwsServiceEvent": "AWS Service Event via CloudTrail",
    "AwsConsoleAction": "AWS Console Action via CloudTrail",
}


def envelope(record):
    service = str(record.get("eventSource", "")).split(".", 1)[0]
    return {
        "version": "0",
        "id": record.get("eventID"),
        "detail-type": DETAIL_TYPES.get(record.get("eventType"), "AWS API Call via CloudTrail"),
        "source": f"aws.{service}",
        "account": record.get("recipientAccountId"),
        "time": record.get("eventTime"),
        "region": record.get("awsRegion"),
        "resources": [],
        "detail": record,
    }


def ses_share(record):
    source = record.get("eventSource")
    if source == "ses.amazonaws.com":
        return True
    params = record.get("requestParameters") or {}
    return (source == "servicequotas.amazonaws.com" and isinstance(params, dict)
            and str(params.get("serviceCode", "")).lower() == "ses")


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    binary, corpus = sys.argv[1], Path(sys.argv[2])
    out = open(sys.argv[3], "w", encoding="utf-8") if len(sys.argv) == 4 else None
    patterns = json.loads(subprocess.run([binary, "rules", "--format", "eventbridge"], check=True,
                                         capture_output=True, text=True).stdout)
    matchers = [(p["source"][0], EventPattern.load(json.dumps(p))) for p in patterns]
    records = collections.Counter()
    matched = collections.Counter()
    benign_matches = collections.Counter()
    first = last = None
    for path in sorted(corpus.glob("*.json")):
        for record in json.loads(path.read_text(encoding="utf-8"))["Records"]:
            cls = "ses-share" if ses_share(record) else "benign"
            records[cls] += 1
            time = record.get("eventTime")
            first = time if first is None or time < first else first
            last = time if last is None or time > last else last
            event = envelope(record)
            hits = [source for source, m in matchers if m.matches_event(event)]
            for source in hits:
                matched[(cls, source)] += 1
            if hits:
                matched[(cls, "any")] += 1
                if cls == "benign":
                    benign_matches[f"{record.get('eventSource')} {record.get('eventName')}"] += 1
                if out:
                    out.write(json.dumps(event) + "\n")
    if out:
        out.close()
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    days = (parse(last) - parse(first)).total_seconds() / 86400
    print(json.dumps({
        "records": dict(records),
        "days": round(days, 3),
        "first": first,
        "last": last,
        "matched": {f"{cls} {source}": n for (cls, source), n in sorted(matched.items())},
        "benign_matches_by_call": dict(benign_matches.most_common()),
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
