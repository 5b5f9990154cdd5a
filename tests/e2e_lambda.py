#!/usr/bin/env python3
"""End-to-end test of the `sesguard-lambda` binary against moto.

    python tests/e2e_lambda.py <repo root>

Run it with the venv python after `source scripts/emulators.sh` (which exports
SESGUARD_TEST_ENDPOINT, dummy AWS credentials and region, and puts .venv/bin, where
cargo-lambda lives, on PATH) and after `cargo build` (target/debug/sesguard must exist).

What it does:
  1. creates in moto a DynamoDB table (hash key `pk`, TTL on `expires_at`), an SNS topic and
     an SQS queue subscribed to it (raw delivery off, so Subject and MessageAttributes show);
  2. starts `cargo lambda watch --bin sesguard-lambda` on a free loopback port (the real binary,
     built and run by cargo-lambda) with the function's environment pointing at moto;
  3. scenario A: invokes every events/*.json in name order; what arrives on SNS must be exactly
     what `sesguard scan events/ --format jsonl` prints (byte for byte, as a multiset), with a
     sane Subject and MessageAttributes equal to the signal's fields;
  4. scenario B: duplicate deliveries publish nothing new;
  5. scenario C: verify -> delete out of order within the window (one ses-verify-then-delete)
     and in order outside it (none), from tests/scenarios/c*.json in a fresh account;
  6. scenario D: malformed events (tests/scenarios/d*.json) make the invocation fail and
     publish nothing; the function still answers afterwards.

Prints one line per check and `N passed, M failed`; exits 1 on any failure.
"""

import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3

FUNCTION = "sesguard-lambda"
# The first invocation waits for cargo-lambda's `cargo run` (a rebuild if src/ changed since
# `cargo build`); later ones only for the function.
FIRST_INVOKE_TIMEOUT = 1800
INVOKE_TIMEOUT = 120
SCENARIOS = "tests/scenarios"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok


def note(text):
    print(f"  .. {text}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def descendants(root_pid):
    """Pids of every live process below root_pid (from /proc)."""
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: the fields after the last ')' are fixed.
        fields = stat[stat.rfind(")") + 2 :].split()
        children[int(fields[1])].append(int(entry))
    found, todo = [], [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def stop_watch(proc):
    """Stops cargo-lambda watch, its process group, and the function it spawned (which runs in
    a process group of its own)."""
    if proc.poll() is not None:
        return
    spawned = descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except OSError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait(timeout=10)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = [pid for pid in spawned if alive(pid)]
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            left = [pid for pid in left if alive(pid)]
            if left:
                time.sleep(0.1)


def log_tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    | " + ANSI.sub("", l)[:400] for l in text.splitlines()[-lines:])


class Aws:
    def __init__(self, endpoint, region):
        kw = {"endpoint_url": endpoint, "region_name": region}
        self.ddb = boto3.client("dynamodb", **kw)
        self.sns = boto3.client("sns", **kw)
        self.sqs = boto3.client("sqs", **kw)
        run = uuid.uuid4().hex[:8]
        self.table = f"sesguard-e2e-{run}"
        self.ddb.create_table(
            TableName=self.table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.ddb.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        self.ddb.update_time_to_live(
            TableName=self.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        self.topic = self.sns.create_topic(Name=f"sesguard-e2e-{run}")["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName=f"sesguard-e2e-{run}")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.topic}},
                }
            ],
        }
        self.sqs.set_queue_attributes(
            QueueUrl=self.queue, Attributes={"Policy": json.dumps(policy)}
        )
        self.sns.subscribe(
            TopicArn=self.topic,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "false"},
        )

    def drain(self, max_rounds=200):
        """Every SNS envelope in the queue (moto delivers at publish time, so an empty receive
        after the invocations returned means there is no more)."""
        envelopes = []
        for _ in range(max_rounds):
            got = self.sqs.receive_message(
                QueueUrl=self.queue,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                return envelopes
            for message in got:
                envelopes.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"]
                )
        raise RuntimeError(f"queue not empty after {max_rounds} receives")

    def items(self):
        items, kwargs = [], {"TableName": self.table}
        while True:
            page = self.ddb.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class Watch:
    def __init__(self, root, env, workdir):
        self.root = root
        self.port = free_port()
        self.log_path = workdir / "watch.log"
        env_file = workdir / "function.env"
        # The function's environment goes through --env-file: cargo-lambda watch does not hand
        # the AWS_* variables of its own environment to the function.
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                "cargo", "lambda", "watch",
                "--bin", FUNCTION,
                "--invoke-address", "127.0.0.1",
                "--invoke-port", str(self.port),
                # Other work may edit src/ during the run: no rebuild/restart mid-test.
                "--ignore-changes",
                "--env-file", str(env_file),
            ],
            cwd=root,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.invocations = 0

    def wait_ready(self, tries=300):
        for _ in range(tries):
            if self.proc.poll() is not None:
                return False, f"cargo lambda watch exited with {self.proc.returncode}"
            if port_open(self.port):
                return True, ""
            time.sleep(0.2)
        return False, f"nothing listening on 127.0.0.1:{self.port} after {tries} tries"

    def build_failed(self):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return False
        return "could not compile" in text or "error: failed to run" in text

    def invoke(self, data_file):
        """(exit code, combined output) of `cargo lambda invoke`."""
        first = self.invocations == 0
        self.invocations += 1
        timeout = FIRST_INVOKE_TIMEOUT if first else INVOKE_TIMEOUT
        cmd = [
            "cargo", "lambda", "invoke",
            "--invoke-address", "127.0.0.1",
            "--invoke-port", str(self.port),
            "--data-file", str(data_file),
            "--color", "never",
            FUNCTION,
        ]
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(
                cmd, cwd=self.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + timeout
            while True:
                try:
                    proc.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                problem = None
                if self.proc.poll() is not None:
                    problem = f"cargo lambda watch exited with {self.proc.returncode}"
                elif first and self.build_failed():
                    problem = "the function did not build"
                elif time.monotonic() > deadline:
                    problem = f"no answer within {timeout} s"
                if problem:
                    proc.kill()
                    proc.wait()
                    out.seek(0)
                    return None, problem + "\n" + out.read().decode(errors="replace")
            out.seek(0)
            return proc.returncode, ANSI.sub("", out.read().decode(errors="replace"))


def is_error_output(code, output):
    if code not in (0, None):
        return True
    try:
        payload = json.loads(output)
    except ValueError:
        return False
    return isinstance(payload, dict) and ("errorType" in payload or "errorMessage" in payload)


def scan(root, files):
    """Signal lines of `sesguard scan` over files (in the given order)."""
    cmd = [
        str(root / "target/debug/sesguard"), "scan",
        "--config", "sesguard.toml",
        "--format", "jsonl", "--quiet",
        *[str(f) for f in files],
    ]
    run = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
    if run.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {run.returncode}: {run.stderr}")
    return [line for line in run.stdout.splitlines() if line.strip()]


def describe(line):
    try:
        s = json.loads(line)
        return f"{s.get('rule_id')} on {s.get('event_name')} {s.get('event_id')}"
    except ValueError:
        return line[:120]


def compare_messages(checks, name, envelopes, expected_lines):
    got = collections.Counter(e.get("Message", "") for e in envelopes)
    want = collections.Counter(expected_lines)
    missing = want - got
    extra = got - want
    detail = "; ".join(
        [f"missing {describe(l)}" for l in missing.elements()]
        + [f"unexpected {describe(l)}" for l in extra.elements()]
    )
    return checks.check(
        f"{name}: {sum(got.values())} SNS messages == the {sum(want.values())} lines of sesguard scan",
        not missing and not extra,
        detail[:3000],
    )


def check_envelopes(checks, name, envelopes, topic):
    bad_subject, bad_attrs, bad_other = [], [], []
    for envelope in envelopes:
        subject = envelope.get("Subject")
        if not (
            isinstance(subject, str)
            and 0 < len(subject) <= 100
            and all(32 <= ord(c) < 127 for c in subject)
        ):
            bad_subject.append(repr(subject))
        if envelope.get("Type") != "Notification" or envelope.get("TopicArn") != topic:
            bad_other.append(f"{envelope.get('Type')} from {envelope.get('TopicArn')}")
        try:
            signal_ = json.loads(envelope.get("Message", ""))
        except ValueError:
            bad_attrs.append("Message is not JSON")
            continue
        attrs = envelope.get("MessageAttributes") or {}
        for attr, field in (
            ("rule_id", "rule_id"),
            ("severity", "severity"),
            ("account_id", "account_id"),
            ("region", "region"),
        ):
            have = attrs.get(attr, {})
            if have.get("Type") != "String" or have.get("Value") != signal_.get(field):
                bad_attrs.append(
                    f"{describe(envelope['Message'])}: {attr}={have!r}, signal has {signal_.get(field)!r}"
                )
        if set(attrs) != {"rule_id", "severity", "account_id", "region"}:
            bad_attrs.append(f"attributes {sorted(attrs)}")
    checks.check(
        f"{name}: every Subject is printable ASCII, 1-100 characters",
        envelopes and not bad_subject,
        "; ".join(bad_subject[:5]) or "no messages",
    )
    checks.check(
        f"{name}: MessageAttributes rule_id/severity/account_id/region equal the signal's fields",
        envelopes and not bad_attrs,
        "; ".join(bad_attrs[:5]) or "no messages",
    )
    checks.check(
        f"{name}: SNS notifications from the topic",
        envelopes and not bad_other,
        "; ".join(bad_other[:5]) or "no messages",
    )


def invoke_all(checks, watch, files, name, expect_ok=True):
    failures = []
    for f in files:
        code, output = watch.invoke(f)
        if code is None:
            checks.check(f"{name}: invoke {f.name}", False, output.strip()[-2000:])
            raise RuntimeError(f"invocation of {f.name} did not finish")
        if expect_ok and code != 0:
            failures.append(f"{f.name}: exit {code}: {output.strip()[-500:]}")
    if expect_ok:
        checks.check(
            f"{name}: {len(files)} invocations succeeded",
            not failures,
            "; ".join(failures[:5]),
        )


def rules_of(envelopes):
    out = []
    for e in envelopes:
        try:
            out.append(json.loads(e["Message"]))
        except (KeyError, ValueError):
            pass
    return out


def run(root, checks):
    endpoint = os.environ.get("SESGUARD_TEST_ENDPOINT")
    if not endpoint:
        checks.check("environment", False, "SESGUARD_TEST_ENDPOINT is not set (source scripts/emulators.sh)")
        return
    if not shutil.which("cargo-lambda"):
        checks.check("environment", False, "cargo-lambda is not on PATH (source scripts/emulators.sh)")
        return
    if not (root / "target/debug/sesguard").is_file():
        checks.check("environment", False, "target/debug/sesguard missing (run cargo build)")
        return
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    started = time.monotonic()
    aws = Aws(endpoint, region)
    checks.check(f"moto: table {aws.table}, topic and subscribed queue created", True)

    workdir = Path(tempfile.mkdtemp(prefix="sesguard-e2e-"))  # outside the watched repo
    function_env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "SESGUARD_TABLE_NAME": aws.table,
        "SESGUARD_TOPIC_ARN": aws.topic,
        "SESGUARD_CONFIG": "sesguard.toml",
        "RUST_LOG": "info",
        "AWS_LAMBDA_LOG_LEVEL": "info",
    }
    watch = Watch(root, function_env, workdir)
    ok = False
    try:
        ready, why = watch.wait_ready()
        if not checks.check(f"cargo lambda watch listening on 127.0.0.1:{watch.port}", ready, why):
            return
        samples = sorted((root / "events").glob("*.json"), key=lambda p: p.name)
        scenarios = root / SCENARIOS

        # ---------------------------------------------------------------- A: the samples
        t0 = time.monotonic()
        invoke_all(checks, watch, samples, "A")
        note(f"{len(samples)} invocations in {time.monotonic() - t0:.1f} s (the first includes cargo run)")
        got = aws.drain()
        expected = scan(root, [root / "events"])
        checks.check(
            f"A: sesguard scan events/ gives signals of every rule ({len(expected)} lines)",
            len(expected) >= 5
            and {json.loads(l)["rule_id"] for l in expected}
            >= {
                "ses-discovery-long-term-key",
                "ses-enumeration-unseen-user",
                "ses-modification",
                "ses-verify-then-delete",
                "ses-identity-deleted",
            },
            f"{len(expected)} lines",
        )
        compare_messages(checks, "A", got, expected)
        check_envelopes(checks, "A", got, aws.topic)
        by_rule = collections.Counter(s["rule_id"] for s in rules_of(got))
        note("published: " + ", ".join(f"{r} {n}" for r, n in sorted(by_rule.items())))

        items = aws.items()
        no_ttl = [
            i["pk"]["S"]
            for i in items
            if "N" not in i.get("expires_at", {}) or not i["expires_at"]["N"].lstrip("-").isdigit()
        ]
        checks.check(
            f"A: all {len(items)} DynamoDB items carry a numeric expires_at",
            items and not no_ttl,
            ", ".join(no_ttl[:5]) or "table empty",
        )

        # ---------------------------------------------------------------- B: duplicates
        dups = [root / "events/ses-GetAccount.json", root / "events/ses-DeleteIdentity.json"]
        invoke_all(checks, watch, dups, "B")
        got = aws.drain()
        checks.check(
            "B: re-delivered ses-GetAccount.json and ses-DeleteIdentity.json publish nothing",
            not got,
            "; ".join(describe(e.get("Message", "")) for e in got),
        )

        # ---------------------------------------------------------------- C: verify -> delete
        c1 = [scenarios / "c1-1-DeleteIdentity-x-1030.json", scenarios / "c1-2-VerifyEmailIdentity-x-1000.json"]
        c2 = [scenarios / "c2-1-VerifyEmailIdentity-y-1100.json", scenarios / "c2-2-DeleteIdentity-y-1230.json"]
        ids = {f.name: json.loads(f.read_text())["detail"]["eventID"] for f in c1 + c2}

        invoke_all(checks, watch, c1, "C(i)")
        got1 = aws.drain()
        signals1 = rules_of(got1)
        r4 = [s for s in signals1 if s["rule_id"] == "ses-verify-then-delete"]
        delete_id, verify_id = ids[c1[0].name], ids[c1[1].name]
        checks.check(
            "C(i): delete at 10:30 invoked before its verify at 10:00 -> exactly one ses-verify-then-delete",
            len(r4) == 1,
            f"{len(r4)} of them; rules: {sorted(s['rule_id'] for s in signals1)}",
        )
        checks.check(
            "C(i): it is about the delete and names the verify in related_event_ids",
            len(r4) == 1
            and r4[0].get("event_id") == delete_id
            and r4[0].get("related_event_ids") == [verify_id],
            json.dumps({k: r4[0].get(k) for k in ("event_id", "related_event_ids")}) if r4 else "none",
        )

        invoke_all(checks, watch, c2, "C(ii)")
        got2 = aws.drain()
        rules2 = sorted(s["rule_id"] for s in rules_of(got2))
        checks.check(
            "C(ii): verify at 11:00, delete at 12:30 (outside 60 min) -> no ses-verify-then-delete",
            "ses-verify-then-delete" not in rules2,
            f"rules: {rules2}",
        )
        checks.check(
            "C(ii): ses-modification (verify, delete) and ses-identity-deleted (delete) arrive",
            rules2 == sorted(["ses-modification", "ses-modification", "ses-identity-deleted"]),
            f"rules: {rules2}",
        )
        compare_messages(checks, "C", got1 + got2, scan(root, c1 + c2))
        check_envelopes(checks, "C", got1 + got2, aws.topic)

        # ---------------------------------------------------------------- D: malformed
        for bad in sorted(scenarios.glob("d-*.json")):
            code, output = watch.invoke(bad)
            if code is None:
                checks.check(f"D: invoke {bad.name}", False, output.strip()[-2000:])
                return
            checks.check(
                f"D: {bad.name} -> the invocation fails",
                is_error_output(code, output),
                f"exit {code}: {output.strip()[-500:]}",
            )
            checks.check(
                f"D: {bad.name} -> the error says the event is malformed",
                "malformed event" in output,
                output.strip()[-500:],
            )
            got = aws.drain()
            checks.check(
                f"D: {bad.name} -> nothing published",
                not got,
                "; ".join(describe(e.get("Message", "")) for e in got),
            )
        code, output = watch.invoke(root / "events/quiet-awsservice-GetSendQuota.json")
        checks.check(
            "D: the function still answers after the failed invocations",
            code == 0,
            f"exit {code}: {output.strip()[-500:]}",
        )
        checks.check("D: ... and publishes nothing for a quiet event", not aws.drain())
        note(f"scenarios took {time.monotonic() - started:.1f} s")
        ok = checks.failed == 0
    finally:
        stop_watch(watch.proc)
        watch.log.close()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"  .. cargo lambda watch log (kept in {watch.log_path}), last lines:")
            print(log_tail(watch.log_path))


def main():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} <repo root>", file=sys.stderr)
        return 2
    root = Path(sys.argv[1]).resolve()
    # A TERM/HUP (CI timeout, the caller's trap) unwinds through the finally blocks, so the
    # watch server and the function are stopped; Ctrl-C does so already.
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
    print(f"e2e_lambda: {time.monotonic() - started:.1f} s")
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
