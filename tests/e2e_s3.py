#!/usr/bin/env python3
"""End-to-end test of the S3 path of the `sesguard-lambda` binary against moto.

    python tests/e2e_s3.py <repo root>

Run as tests/e2e_lambda.py (its sibling, whose parts it uses): with the venv python after
`source scripts/emulators.sh`, after `cargo build`.

What it does:
  1. builds in moto the table and signals topic of template.yaml (as e2e_lambda.py), a trail
     bucket whose s3:ObjectCreated:* notifications go to an SQS queue (moto sends them as S3 does:
     keys URL-encoded, after an s3:TestEvent), and gives the function TrailIngestFunction's
     environment (Refs resolved; SESGUARD_TRAIL_BUCKET the test's bucket);
  2. puts CloudTrail log files made of the events/ samples' records (one gzip'd, with a space in
     its key; one plain), a digest file and three poisoned files (not gzip, truncated gzip, not
     JSON); reads the notifications off the queue into one SQS event, and invokes the real binary
     under `cargo lambda watch` with it (`cargo lambda invoke --data-file`);
  3. S1: batchItemFailures names exactly the poisoned files' messages, the log names each of them;
     what arrives on SNS is exactly `sesguard scan` of the two log files;
  4. S2: the same SQS event again (a duplicate delivery): the same failures, nothing published;
  5. S3: GetObject answered 503 SlowDown once (tests/fault_proxy.py in front of moto's S3, through
     AWS_ENDPOINT_URL_S3): the SDK retries, the message succeeds, its signals are published once;
  6. S4: GetObject throttled past the SDK's retries: the message fails (and only it), nothing is
     published; SQS's redelivery (the same event, the throttling over) publishes each signal once.

Prints one line per check and `N passed, M failed` (tests/checks.py); exits 1 on any failure.
"""

import gzip
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3

from cfn_template import TemplateError, load, props
from checks import Checks
from e2e_lambda import (
    SCAN_FLAGS,
    SETTING_FLAGS,
    STACK_PARAMETERS,
    Aws,
    Watch,
    check_envelopes,
    compare_messages,
    log_tail,
    note,
    scan,
)
from fault_proxy import FaultProxy

FUNCTION_ID = "TrailIngestFunction"
TRAIL_VARIABLES = {"SESGUARD_TRAIL_BUCKET", "SESGUARD_TRAIL_BUCKET_OWNER"}
# The heartbeat runs on the EventBridge function; the S3 path only skips its canaries (by the
# role, SESGUARD_HEARTBEAT_ROLE_ARN).
HEARTBEAT_RUN_VARIABLES = {"SESGUARD_HEARTBEAT_REGIONS", "SESGUARD_HEARTBEAT_MAX_DELAY_MINUTES"}
ACCOUNT = "111122223333"
PREFIX = f"AWSLogs/o-e2e0000001/{ACCOUNT}/CloudTrail/us-east-1/2026/03/02/"


def key(name):
    return f"{PREFIX}{ACCOUNT}_CloudTrail_us-east-1_20260302T1000Z_{name}"


class Trail:
    """The trail bucket and its notification queue, in moto."""

    def __init__(self, endpoint, region, sqs):
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
        self.sqs = sqs
        run = uuid.uuid4().hex[:8]
        self.bucket = f"sesguard-e2e-trail-{run}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.queue = sqs.create_queue(QueueName=f"sesguard-e2e-ingest-{run}")["QueueUrl"]
        self.queue_arn = sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": self.queue_arn, "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )

    def put(self, name, data):
        self.s3.put_object(Bucket=self.bucket, Key=name, Body=data)

    def event(self, path):
        """Every waiting notification as the SQS event the event source mapping would send,
        written to `path`; {message id: body}."""
        records, bodies = [], {}
        while True:
            # Received for the rest of the run: with SQS's default 30 s a loaded machine saw the
            # notifications of earlier scenarios come back into a later scenario's batch.
            got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                           VisibilityTimeout=43200).get("Messages", [])
            if not got:
                break
            for m in got:
                bodies[m["MessageId"]] = m["Body"]
                records.append({
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.s3.meta.region_name,
                })
        path.write_text(json.dumps({"Records": records}))
        return bodies


def ids_naming(bodies, fragment):
    """Message ids whose notification names a key containing `fragment` (URL-encoded or not)."""
    from urllib.parse import quote_plus

    return sorted(i for i, b in bodies.items() if fragment in b or quote_plus(fragment) in b)


def log_file(records):
    return json.dumps({"Records": records})


def invoke(checks, watch, data_file, name):
    """The invocation's response (a dict), or None after a failed check."""
    code, output = watch.invoke(data_file)
    if code != 0:
        checks.check(f"{name}: the invocation answered", False, output.strip()[-2000:])
        return None
    try:
        return json.loads(output)
    except ValueError:
        checks.check(f"{name}: the invocation answered a batch response", False, output[-2000:])
        return None


def failures(response):
    return sorted(f.get("itemIdentifier") for f in (response or {}).get("batchItemFailures") or [])


def run(root, checks):
    endpoint = os.environ.get("SESGUARD_TEST_ENDPOINT")
    if not endpoint:
        checks.check("environment", False, "SESGUARD_TEST_ENDPOINT is not set (source scripts/emulators.sh)")
        return
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    template = load(root / "template.yaml")
    try:
        aws = Aws(endpoint, region, template, STACK_PARAMETERS)
        aws.function_environment()
    except TemplateError as err:
        checks.check("template.yaml has the table, topic and function environment to build", False, str(err))
        return
    function = (template.get("Resources") or {}).get(FUNCTION_ID) or {}
    variables = (props(function).get("Environment") or {}).get("Variables") or {}
    checks.check(
        f"template.yaml {FUNCTION_ID}: the EventBridge function's variables plus {sorted(TRAIL_VARIABLES)}, "
        f"less the heartbeat runs' {sorted(HEARTBEAT_RUN_VARIABLES)}",
        # As written (an `!If` to AWS::NoValue, such as the Security Hub product, counts on both).
        set(variables) == (set((props((template.get("Resources") or {}).get("SesguardFunction") or {})
                                .get("Environment") or {}).get("Variables") or {}) - HEARTBEAT_RUN_VARIABLES)
        | TRAIL_VARIABLES,
        f"{sorted(variables)}",
    )
    trail = Trail(endpoint, region, aws.sqs)
    account = boto3.client("sts", endpoint_url=endpoint, region_name=region).get_caller_identity()["Account"]
    common = {k: v for k, v in variables.items() if k not in TRAIL_VARIABLES}
    env = {k: str(v) for k, v in aws.resolve(common, f"{FUNCTION_ID}.Environment.Variables").items()}
    env.update({"SESGUARD_TRAIL_BUCKET": trail.bucket, "SESGUARD_TRAIL_BUCKET_OWNER": account})
    # The Tor exit list in the configuration bucket (issue 17) is read with GetObject too, and
    # the throttling scenarios here throttle every GetObject through the proxy: this test is
    # about the trail's log files (tests/e2e_lambda.py, scenario J, covers the S3 configuration).
    env.pop("SESGUARD_TOR_EXIT_LIST", None)
    SCAN_FLAGS[:] = [a for v, flag in SETTING_FLAGS.items()
                     if v in env and not env[v].startswith("s3://") for a in (flag, env[v])]
    function_env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **env,
        "RUST_LOG": "info",
        "AWS_LAMBDA_LOG_LEVEL": "info",
    }

    workdir = Path(tempfile.mkdtemp(prefix="sesguard-e2e-s3-"))  # outside the watched repo
    samples = sorted((root / "events").glob("*.json"), key=lambda p: p.name)
    records = [json.loads(p.read_text())["detail"] for p in samples]
    half = len(records) // 2
    first, second = workdir / "first.json.gz", workdir / "second.json"
    first.write_bytes(gzip.compress(log_file(records[:half]).encode()))
    second.write_text(log_file(records[half:]))
    trail.put(key("first part.json.gz"), first.read_bytes())
    trail.put(key("second.json"), second.read_bytes())
    trail.put(f"AWSLogs/o-e2e0000001/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/03/02/d.json.gz", b"digest")
    one = gzip.compress(log_file(records[:1]).encode())
    poisoned = {
        "not-gzip.json.gz": b"PK\x03\x04 not a gzip stream",
        "truncated.json.gz": one[: len(one) * 2 // 3],
        "not-json.json": b"<html>403 Forbidden</html>",
    }
    for name, data in poisoned.items():
        trail.put(key(name), data)
    batch = workdir / "batch.json"
    bodies = trail.event(batch)
    poisoned_ids = sorted(i for name in poisoned for i in ids_naming(bodies, name))

    watches = [Watch(root, function_env, workdir, name="watch-s3")]
    proxy = None
    ok = False
    try:
        watch = watches[0]
        ready, why = watch.wait_ready()
        if not checks.check(f"cargo lambda watch listening on 127.0.0.1:{watch.port}", ready, why):
            return

        # ------------------------------------------------------------ S1: one batch
        t0 = time.monotonic()
        response = invoke(checks, watch, batch, "S1")
        note(f"S1: {len(bodies)} messages in {time.monotonic() - t0:.1f} s (includes cargo run)")
        checks.check(
            f"S1: batchItemFailures names exactly the {len(poisoned)} poisoned files' messages "
            f"(of {len(bodies)}: two log files, a digest, the test event)",
            len(poisoned_ids) == len(poisoned) and failures(response) == poisoned_ids,
            f"failed {failures(response)}, poisoned {poisoned_ids}: {json.dumps(response)[:500]}",
        )
        log = watch.log_path.read_text(errors="replace")
        unreported = [n for n in poisoned if n not in log]
        checks.check("S1: the function's log names each poisoned file", not unreported, f"{unreported}")
        got = aws.drain()
        expected = scan(root, [first, second])
        checks.check("S1: sesguard scan of the two log files gives signals", len(expected) > 20, f"{len(expected)}")
        compare_messages(checks, "S1", got, expected)
        check_envelopes(checks, "S1", got, aws.topic)

        # ------------------------------------------------------------ S2: duplicate delivery
        response = invoke(checks, watch, batch, "S2")
        checks.check("S2: the same batch again fails the same messages", failures(response) == poisoned_ids,
                     f"{failures(response)}")
        again = aws.drain()
        checks.check("S2: ... and publishes nothing", not again, f"{len(again)} messages")

        # ------------------------------------------------------------ S3/S4: throttled GetObject
        proxy = FaultProxy(endpoint).start()
        watches.append(Watch(root, {**function_env, "AWS_ENDPOINT_URL_S3": proxy.url}, workdir, name="watch-s3-proxy"))
        slow = watches[-1]
        ready, why = slow.wait_ready()
        if not checks.check("S3: a second watch reaching S3 through the fault proxy", ready, why):
            return
        for scenario, times in (("S3", 1), ("S4", None)):
            other = scenario.replace("S", "44443333220")  # a fresh account: state of its own
            fresh = json.loads(json.dumps(records).replace(ACCOUNT, other))
            for record in fresh:  # new events: new ids
                record["eventID"] = str(uuid.uuid4())
            variant = log_file(fresh)
            local = workdir / f"{scenario}.json.gz"
            local.write_bytes(gzip.compress(variant.encode()))
            trail.put(key(f"{scenario}.json.gz").replace(ACCOUNT, other), local.read_bytes())
            data = workdir / f"{scenario}-batch.json"
            ids = sorted(trail.event(data))
            expected = scan(root, [local])
            rule = proxy.add("s3", "GetObject", "slowdown", times=times)
            mark = proxy.mark()
            response = invoke(checks, slow, data, scenario)
            gets = proxy.entries_since(mark, "s3", "GetObject")
            if times == 1:
                checks.check("S3: GetObject throttled once is retried by the SDK: the message succeeds",
                             response is not None and failures(response) == [] and rule.applied == 1
                             and len(gets) == 2, f"{failures(response)}, {len(gets)} GetObjects")
                compare_messages(checks, "S3", aws.drain(), expected)
                continue
            checks.check("S4: GetObject throttled past the SDK's retries fails the message (only it)",
                         failures(response) == ids and len(ids) == 1 and rule.applied >= 2,
                         f"{failures(response)} of {ids}, {rule.applied} throttled")
            checks.check("S4: ... as a transient failure (sesguard.LogFileUnavailable), publishing nothing",
                         "sesguard.LogFileUnavailable" in slow.log_path.read_text(errors="replace")
                         and not aws.drain())
            proxy.clear()
            response = invoke(checks, slow, data, "S4 redelivery")
            checks.check("S4: SQS's redelivery succeeds", response is not None and failures(response) == [],
                         f"{failures(response)}")
            compare_messages(checks, "S4", aws.drain(), expected)
        ok = checks.failed == 0
    finally:
        for w in watches:
            w.stop()
        if proxy is not None:
            proxy.stop()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for w in watches:
                print(f"  .. {w.name} log (kept in {w.log_path}), last lines:")
                print(log_tail(w.log_path))


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} <repo root>", file=sys.stderr)
        return 2
    root = Path(sys.argv[1]).resolve()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    checks = Checks()
    started = time.monotonic()
    try:
        run(root, checks)
    except Exception as err:  # a crash of the test itself is a failure, not a traceback only
        import traceback

        traceback.print_exc()
        checks.check("e2e run completed", False, f"{type(err).__name__}: {err}")
    print(f"e2e_s3: {time.monotonic() - started:.1f} s")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
