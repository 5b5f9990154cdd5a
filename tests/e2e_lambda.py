#!/usr/bin/env python3
"""End-to-end test of the `sesguard-lambda` binary against moto.

    python tests/e2e_lambda.py <repo root>

Run it with the venv python after `source scripts/emulators.sh` (which exports
SESGUARD_TEST_ENDPOINT, dummy AWS credentials and region, and puts .venv/bin, where
cargo-lambda lives, on PATH) and after `cargo build` (target/debug/sesguard must exist).

What it does:
  1. builds in moto what template.yaml defines (tests/cfn_template.py reads it): the
     AWS::DynamoDB::Table from its own properties (key schema, billing mode, TTL attribute,
     point-in-time recovery, SSE), the AWS::SNS::Topic with its attributes and the KMS key it
     names, and the function's environment from its Environment.Variables (Refs resolved to what
     the test created, parameters to their defaults except STACK_PARAMETERS); a template without
     them fails the run. An SQS queue subscribed to the topic (raw delivery off, so Subject and
     MessageAttributes show) reads what is published;
  2. starts `cargo lambda watch --bin sesguard-lambda` on a free loopback port (the real binary,
     built and run by cargo-lambda) with the function's environment pointing at moto;
  3. scenario A: invokes every events/*.json in name order; what arrives on SNS must be exactly
     what `sesguard scan --input-order events/ --format jsonl` (with the function's settings) prints (byte for
     byte, as a multiset: signals of every rule, one ses-abuse-chain), with a sane Subject and
     MessageAttributes equal to the signal's fields;
  4. scenario B: duplicate deliveries publish nothing new;
  5. scenario C: verify -> delete out of order within the window (one ses-verify-then-delete)
     and in order outside it (none), from tests/scenarios/c*.json in a fresh account;
  6. scenario D: malformed events (tests/scenarios/d*.json) make the invocation fail and
     publish nothing; the function still answers afterwards.
  Faults (docs/operations.md, "Failure modes"): a second `cargo lambda watch` whose DynamoDB and SNS calls go
  through tests/fault_proxy.py (AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SNS; the rest goes
  to moto directly), with SESGUARD_CLAIM_LEASE_SECONDS=2. Each scenario invokes a variant of
  events/ses-DeleteIdentity.json (two signals) in an account of its own, plays Lambda's retries
  itself (bounded; an "in flight" answer within the lease is retried), and ends with: exactly one
  SNS message per signal (equal to `sesguard scan`), one more duplicate delivery publishing
  nothing, the same delete two hours later signalling again (no state left behind suppresses a
  future true signal), every claim marked published:
  7. scenario E: DynamoDB throttled (ThrottlingException / ProvisionedThroughputExceeded on
     every UpdateItem), then 5xx on the signal claim (PutItem): both invocations fail after the
     SDK's own retries, naming the call, publishing nothing, writing no claim; the third succeeds;
  8. scenario F: SNS Publish answers 5xx: the invocation fails, the claims stay pending, the
     retry (after the lease) publishes each signal once;
  9. scenario G: a crash between claim and publish: the proxy holds the Publish, the test waits
     for the proxy to report it, SIGKILLs the sesguard-lambda process, checks that nothing was
     published and the claims are pending, starts a new `cargo lambda watch` and retries until the
     retry takes the claims over (after the lease) and publishes;
 10. scenario H: SNS's answer to a Publish is lost (moto took it, the proxy drops the response):
     at most one extra copy, byte-identical (same signal_id); a duplicate delivery adds none.
 11. scenario I: a DynamoDB UpdateItem that never answers (held by the proxy): the SDK's attempt
     and operation timeouts end the invocation well before the function's own timeout, as a
     transient state error (errorType sesguard.StateUnavailable); the retry publishes once.
  E-I add about 40 s (the restarted watch, the SDK's backoff and timeouts, one lease).
 12. scenario J (issue 17, before E-I): SESGUARD_CONFIG=s3://<the template's ConfigBucket, in
     moto>/e2e/sesguard.toml with SESGUARD_CONFIG_REFRESH_SECONDS=1: a suppression pushed to the
     bucket reaches the warm function (polled: fresh events until one is suppressed, with a
     deadline; the same process throughout); a bad file is rejected (the log names file and
     entry, ConfigRejected is emitted) and the last good one stays in force; a second watch
     started on an invalid file fails its invocation with errorType sesguard.ConfigError.
 13. scenario K (issue 17, the pipeline heartbeat, on the first watch after D): the function's
     role (the template's SesguardFunctionRole, created in moto) and regions come from the
     template. The canary as CloudTrail records it (that role, the marker in the user agent),
     made two hours ago, publishes nothing; a heartbeat run (the schedule's request) calls
     GetSendQuota on moto and publishes one sesguard-pipeline-blind; a second run none; a fresh
     canary nothing; the next run one sesguard-pipeline-restored; the EMF line counts the runs
     and no failed canary call.

Prints one line per check and `N passed, M failed` (tests/checks.py; the counts also go to the
file SESGUARD_CHECKS_REPORT names, if set); exits 1 on any failure.
"""

import collections
import datetime
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

from cfn_template import Resolver, TemplateError, load, normalized, props, target, the_one
from checks import Checks
from fault_proxy import FaultProxy

FUNCTION = "sesguard-lambda"
# The first invocation waits for cargo-lambda's `cargo run` (a rebuild if src/ changed since
# `cargo build`); later ones only for the function.
FIRST_INVOKE_TIMEOUT = 1800
INVOKE_TIMEOUT = 120
SCENARIOS = "tests/scenarios"
# The stack parameters the test "deploys" with (the others take the template's Default). The
# samples are one morning's events, all inside the default 7-day learning period, in which
# ses-enumeration-unseen-user stays silent; scenario A checks its first sightings.
STACK_PARAMETERS = {"LearningDays": 0}
# The function's setting variables and the `sesguard scan` options that mean the same.
SETTING_FLAGS = {
    "SESGUARD_CONFIG": "--config",
    "SESGUARD_LEARNING_DAYS": "--learning-days",
    "SESGUARD_FORGET_DAYS": "--forget-days",
    "SESGUARD_SEQUENCE_WINDOW_MINUTES": "--sequence-window-minutes",
    "SESGUARD_DEDUP_MINUTES": "--dedup-minutes",
    "SESGUARD_SANDBOX_EXIT_REGIONS": "--sandbox-exit-regions",
    "SESGUARD_SANDBOX_EXIT_WINDOW_MINUTES": "--sandbox-exit-window-minutes",
    "SESGUARD_CHAIN_WINDOW_HOURS": "--chain-window-hours",
    "SESGUARD_TOR_EXIT_LIST": "--tor-exit-list",
}
SCAN_FLAGS: list = []  # set by run() from the function's environment
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


# Properties of the template's table and topic the test builds in moto, and those it leaves out
# on purpose (anything else in the template is an error: the test would otherwise run against a
# table or topic unlike the deployed one without saying so).
TABLE_IGNORED = {
    "TableName": "each run makes its own unique name (the stack lets CloudFormation name it)",
    "DeletionProtectionEnabled": "the test tables are throw-away",
    "ContributorInsightsSpecification": "a CloudWatch feature the function never sees",
}
TOPIC_IGNORED = {
    "TopicName": "each run makes its own unique name",
    "Subscription": "the test subscribes its own queue",
}


class Aws:
    """The table, topic (with its KMS key) and the function's environment, as template.yaml
    defines them, in moto; plus an SQS queue subscribed to the topic to read what is published.

    Intrinsic functions are resolved against what the test created (cfn_template.Resolver):
    `Ref` to the table gives its name, to the topic its ARN, to the key its id; `Ref` to a
    parameter its Default; pseudo parameters come from moto (account) and the test (region,
    stack name). Anything the resolver cannot resolve fails the run naming the property."""

    def __init__(self, endpoint, region, template, parameters):
        kw = {"endpoint_url": endpoint, "region_name": region}
        self.ddb = boto3.client("dynamodb", **kw)
        self.sns = boto3.client("sns", **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.kms = boto3.client("kms", **kw)
        self.template = template
        run = uuid.uuid4().hex[:8]
        self.name = f"sesguard-e2e-{run}"
        account = boto3.client("sts", **kw).get_caller_identity()["Account"]
        self.region, self.account = region, account
        self.resolve = Resolver(
            template,
            pseudo={
                "AWS::Region": region,
                "AWS::AccountId": account,
                "AWS::Partition": "aws",
                "AWS::StackName": self.name,
                "AWS::URLSuffix": "amazonaws.com",
            },
            parameters=parameters,
        )
        # What was taken from the template, for the check lines.
        self.table_built, self.topic_built = [], []
        self.table_id, table = the_one(template, "AWS::DynamoDB::Table")
        # The signals topic: the one the function's SESGUARD_TOPIC_ARN names (the template's
        # other topic is for its health alarms).
        _, function = the_one(template, "AWS::Serverless::Function")
        variables = (props(function).get("Environment") or {}).get("Variables") or {}
        self.topic_id = target(variables.get("SESGUARD_TOPIC_ARN"))
        topic = (template.get("Resources") or {}).get(self.topic_id)
        if not topic or topic.get("Type") != "AWS::SNS::Topic":
            raise TemplateError(f"SESGUARD_TOPIC_ARN names {self.topic_id}, not an AWS::SNS::Topic")
        # The configuration bucket (issue 17): the functions' SESGUARD_TOR_EXIT_LIST (and, with
        # ConfigKey, SESGUARD_CONFIG) name objects in it.
        self.s3 = boto3.client("s3", **kw)
        # The detector's role (issue 17: the heartbeat knows its own canaries by it).
        self.role_arn = boto3.client("iam", **kw).create_role(
            RoleName=self.name,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
        )["Role"]["Arn"]
        self.resolve.attributes["SesguardFunctionRole.Arn"] = self.role_arn
        self.config_bucket = None
        if "ConfigBucket" in (template.get("Resources") or {}):
            self.config_bucket = self.name
            self.s3.create_bucket(Bucket=self.config_bucket)
            self.resolve.refs["ConfigBucket"] = self.config_bucket
        self.table = self.create_table(table)
        self.resolve.refs[self.table_id] = self.table
        self.resolve.attributes[f"{self.table_id}.Arn"] = self.ddb.describe_table(TableName=self.table)["Table"]["TableArn"]
        self.topic = self.create_topic(topic)
        self.resolve.refs[self.topic_id] = self.topic
        self.resolve.attributes[f"{self.topic_id}.TopicArn"] = self.topic
        self.queue = self.sqs.create_queue(QueueName=self.name)["QueueUrl"]
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

    # ------------------------------------------------------------ table
    def create_table(self, resource):
        where = f"{self.table_id}.Properties"
        # Left-out properties are not resolved either (a TableName may !Sub the stack name).
        p = self.resolve({k: v for k, v in props(resource).items() if k not in TABLE_IGNORED}, where)
        handled = {
            "AttributeDefinitions", "KeySchema", "BillingMode", "ProvisionedThroughput",
            "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "TableClass", "Tags",
            "StreamSpecification", "SSESpecification", "TimeToLiveSpecification",
            "PointInTimeRecoverySpecification",
        }
        unknown = set(p) - handled - set(TABLE_IGNORED)
        if unknown:
            raise TemplateError(f"{where}: the e2e test does not build {sorted(unknown)} (tests/e2e_lambda.py, Aws.create_table)")
        if not p.get("KeySchema") or not p.get("AttributeDefinitions"):
            raise TemplateError(f"{where}: no KeySchema/AttributeDefinitions")
        kwargs = {
            "TableName": self.name,
            "AttributeDefinitions": p["AttributeDefinitions"],
            "KeySchema": p["KeySchema"],
            "BillingMode": p.get("BillingMode", "PROVISIONED"),
        }
        for same in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "TableClass", "Tags"):
            if same in p:
                kwargs[same] = p[same]
        if "StreamSpecification" in p:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
        sse = p.get("SSESpecification")
        if sse:
            # CloudFormation says SSEEnabled, the API Enabled.
            kwargs["SSESpecification"] = {
                "Enabled": bool(sse.get("SSEEnabled")),
                **{k: sse[k] for k in ("SSEType", "KMSMasterKeyId") if k in sse},
            }
        self.ddb.create_table(**kwargs)
        self.ddb.get_waiter("table_exists").wait(
            TableName=self.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        self.key_attribute = next(k["AttributeName"] for k in p["KeySchema"] if k["KeyType"] == "HASH")
        self.table_built.append(f"key {self.key_attribute}")
        self.table_built.append(kwargs["BillingMode"])
        ttl = p.get("TimeToLiveSpecification")
        self.ttl_attribute = None
        if ttl and ttl.get("Enabled"):
            self.ttl_attribute = ttl["AttributeName"]
            self.ddb.update_time_to_live(
                TableName=self.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": self.ttl_attribute},
            )
            self.table_built.append(f"TTL {self.ttl_attribute}")
        pitr = (p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
        if pitr:
            self.ddb.update_continuous_backups(
                TableName=self.name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
            self.table_built.append("PITR")
        if sse and sse.get("SSEEnabled"):
            self.table_built.append("SSE")
        self.table_props = p
        return self.name

    def table_differences(self):
        """What moto reports for the table that differs from the template's properties."""
        p, out = self.table_props, []
        desc = self.ddb.describe_table(TableName=self.table)["Table"]
        if normalized(desc.get("KeySchema")) != normalized(p["KeySchema"]):
            out.append(f"KeySchema {desc.get('KeySchema')}")
        if normalized(desc.get("AttributeDefinitions")) != normalized(p["AttributeDefinitions"]):
            out.append(f"AttributeDefinitions {desc.get('AttributeDefinitions')}")
        billing = (desc.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        if billing != p.get("BillingMode", "PROVISIONED"):
            out.append(f"BillingMode {billing}")
        ttl = self.ddb.describe_time_to_live(TableName=self.table)["TimeToLiveDescription"]
        if self.ttl_attribute and (ttl.get("TimeToLiveStatus") != "ENABLED" or ttl.get("AttributeName") != self.ttl_attribute):
            out.append(f"TTL {ttl}")
        if (p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled"):
            backups = self.ddb.describe_continuous_backups(TableName=self.table)["ContinuousBackupsDescription"]
            status = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
            if status != "ENABLED":
                out.append(f"PITR {status}")
        if (p.get("SSESpecification") or {}).get("SSEEnabled"):
            status = (desc.get("SSEDescription") or {}).get("Status")
            if status != "ENABLED":
                out.append(f"SSE {status}")
        return out

    # ------------------------------------------------------------ topic
    def create_key(self, key_id):
        """The template's AWS::KMS::Key `key_id`, in moto; its id (what Ref gives)."""
        resources = self.template.get("Resources") or {}
        resource = resources.get(key_id)
        if not resource or resource.get("Type") != "AWS::KMS::Key":
            raise TemplateError(f"{self.topic_id}: KmsMasterKeyId names {key_id}, not an AWS::KMS::Key")
        p = self.resolve(props(resource), f"{key_id}.Properties")
        kwargs = {}
        if "KeyPolicy" in p:
            kwargs["Policy"] = json.dumps(p["KeyPolicy"])
        for same in ("Description", "KeyUsage", "KeySpec"):
            if same in p:
                kwargs[same] = p[same]
        key = self.kms.create_key(**kwargs)["KeyMetadata"]
        if p.get("EnableKeyRotation"):
            self.kms.enable_key_rotation(KeyId=key["KeyId"])
        self.resolve.refs[key_id] = key["KeyId"]
        self.resolve.attributes[f"{key_id}.Arn"] = key["Arn"]
        self.resolve.attributes[f"{key_id}.KeyId"] = key["KeyId"]
        self.topic_built.append(f"its key {key_id} created in moto" + (" with rotation" if p.get("EnableKeyRotation") else ""))
        return key["KeyId"]

    def create_topic(self, resource):
        where = f"{self.topic_id}.Properties"
        raw = props(resource)
        key_ref = target(raw.get("KmsMasterKeyId"))
        if key_ref and key_ref not in self.resolve.refs:
            self.create_key(key_ref)
        p = self.resolve({k: v for k, v in raw.items() if k not in TOPIC_IGNORED}, where)
        handled = {
            "DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication",
            "SignatureVersion", "TracingConfig", "ArchivePolicy", "Tags",
        }
        unknown = set(p) - handled - set(TOPIC_IGNORED)
        if unknown:
            raise TemplateError(f"{where}: the e2e test does not build {sorted(unknown)} (tests/e2e_lambda.py, Aws.create_topic)")
        attributes = {}
        for name in handled - {"Tags"}:
            if name in p:
                value = p[name]
                attributes[name] = (
                    json.dumps(value) if isinstance(value, dict)
                    else str(value).lower() if isinstance(value, bool) else str(value)
                )
        name = self.name + (".fifo" if attributes.get("FifoTopic") == "true" else "")
        kwargs = {"Name": name, "Attributes": attributes}
        if p.get("Tags"):
            kwargs["Tags"] = p["Tags"]
        arn = self.sns.create_topic(**kwargs)["TopicArn"]
        self.topic_attributes = attributes
        self.topic_built[:0] = [
            f"{k}={key_ref if k == 'KmsMasterKeyId' and key_ref else v}" for k, v in sorted(attributes.items())
        ]
        return arn

    def topic_differences(self):
        have = self.sns.get_topic_attributes(TopicArn=self.topic)["Attributes"]
        return [
            f"{k}: {have.get(k)!r}, template {v!r}"
            for k, v in sorted(self.topic_attributes.items())
            if have.get(k) != v
        ]

    # ------------------------------------------------------------ function
    def function_environment(self):
        """The function's Environment.Variables from the template, resolved: (logical id, dict)."""
        function_id, function = the_one(self.template, "AWS::Serverless::Function")
        variables = (props(function).get("Environment") or {}).get("Variables")
        if not isinstance(variables, dict) or not variables:
            raise TemplateError(f"{function_id}: no Environment.Variables")
        resolved = self.resolve(variables, f"{function_id}.Environment.Variables")
        return function_id, {k: str(v) for k, v in resolved.items()}

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

    def claims(self, signal_ids):
        """signal id -> `status` of its claim item (`signal#<id>`), None when there is none."""
        out = {}
        for signal_id in signal_ids:
            item = self.ddb.get_item(
                TableName=self.table,
                Key={self.key_attribute: {"S": f"signal#{signal_id}"}},
                ConsistentRead=True,
            ).get("Item")
            out[signal_id] = item.get("status", {}).get("S") if item else None
        return out

    def items(self):
        items, kwargs = [], {"TableName": self.table}
        while True:
            page = self.ddb.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class Watch:
    def __init__(self, root, env, workdir, name="watch"):
        self.root = root
        self.name = name
        self.port = free_port()
        self.log_path = workdir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.log"
        env_file = self.log_path.with_suffix(".env")
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

    def stop(self):
        stop_watch(self.proc)
        self.log.close()

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

    def functions(self):
        """Pids of the function processes (`sesguard-lambda`) cargo lambda watch spawned."""
        out = []
        for pid in descendants(self.proc.pid):
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
            if comm == FUNCTION[:15]:
                out.append(pid)
        return out

    def start_invoke(self, data_file):
        """Starts `cargo lambda invoke` in the background; `finish` waits for it."""
        first = self.invocations == 0
        self.invocations += 1
        cmd = [
            "cargo", "lambda", "invoke",
            "--invoke-address", "127.0.0.1",
            "--invoke-port", str(self.port),
            "--data-file", str(data_file),
            "--color", "never",
            FUNCTION,
        ]
        out = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            cmd, cwd=self.root, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        return {"proc": proc, "out": out, "first": first, "started": time.monotonic()}

    def finish(self, invocation, timeout=None):
        """(exit code, combined output) of a started invocation; (None, why) when it did not
        answer in time (the first invocation of a watch may wait for cargo run's build)."""
        proc, out, first = invocation["proc"], invocation["out"], invocation["first"]
        if timeout is None:
            timeout = FIRST_INVOKE_TIMEOUT if first else INVOKE_TIMEOUT
        deadline = invocation["started"] + timeout
        try:
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
        finally:
            out.close()

    def invoke(self, data_file):
        """(exit code, combined output) of `cargo lambda invoke`."""
        return self.finish(self.start_invoke(data_file))


def is_error_output(code, output):
    if code not in (0, None):
        return True
    try:
        payload = json.loads(output)
    except ValueError:
        return False
    return isinstance(payload, dict) and ("errorType" in payload or "errorMessage" in payload)


def scan(root, files):
    """Signal lines of `sesguard scan --input-order` over files: evaluated in the given order, as
    the function evaluates what it is given (`scan` otherwise reorders by event time, and then a
    first-sighting or dedup signal may name another event of the same group)."""
    cmd = [
        str(root / "target/debug/sesguard"), "scan", "--input-order",
        *SCAN_FLAGS,
        "--format", "jsonl", "--quiet",
        *[str(f) for f in files],
    ]
    run = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
    if run.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {run.returncode}: {run.stderr}")
    return [line for line in run.stdout.splitlines() if line.strip()]


def rule_ids(root):
    """Every rule id, from `sesguard rules --format json`."""
    out = subprocess.run(
        [str(root / "target/debug/sesguard"), "rules", "--format", "json"],
        cwd=root, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return [rule["rule_id"] for rule in json.loads(out)]


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


# ------------------------------------------------------------------ fault scenarios

# The claim lease of the function instances behind the proxy: a retry within it is answered "in
# flight" (another invocation may still be publishing), after it the retry takes the claim over.
FAULT_LEASE_SECONDS = 2
IN_FLIGHT = "being published by another invocation"
# Lambda's own retries of a failed event, played by the test: bounded in count and time.
RETRY_ATTEMPTS = 20
RETRY_SECONDS = 90
RETRY_PAUSE = 0.5
SAMPLE = "events/ses-DeleteIdentity.json"  # two signals: ses-modification, ses-identity-deleted
SAMPLE_ACCOUNT = "111122223333"
LATER = 2 * 3600  # "a future true signal": the same delete two hours later (dedup window 60 min)
# A stalled call must end well before the function's 30 s timeout: the SDK's operation timeout
# is 8 s (crates/lambda/src/aws/mod.rs); the margin is for a loaded machine.
STALL_BOUND_SECONDS = 25


def variant(source, dest, account, tag, shift=0):
    """A copy of a sample event made in `account` on identity `<tag>@example.net`, with fresh
    ids, `shift` seconds later: no state of another scenario can touch it."""
    text = source.read_text()
    if SAMPLE_ACCOUNT not in text:
        raise RuntimeError(f"{source} is not in account {SAMPLE_ACCOUNT}")
    envelope = json.loads(text.replace(SAMPLE_ACCOUNT, account))
    detail = envelope["detail"]
    envelope["id"] = str(uuid.uuid4())
    detail["eventID"] = str(uuid.uuid4())
    detail["requestID"] = str(uuid.uuid4())
    parameters = detail.get("requestParameters") or {}
    if "identity" in parameters:
        parameters["identity"] = f"{tag}@example.net"
    if shift:
        when = datetime.datetime.strptime(detail["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        when += datetime.timedelta(seconds=shift)
        detail["eventTime"] = envelope["time"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    dest.write_text(json.dumps(envelope, indent=2))
    return dest


def signal_ids(lines):
    return [json.loads(line)["signal_id"] for line in lines]


def running(pid):
    """Alive and not a zombie (a SIGKILLed child stays a pid until its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def wait_until(condition, seconds, interval=0.1):
    """Polls condition() until it holds or `seconds` pass; its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Faults:
    """Scenarios E-H: the function (a new cargo lambda watch) reaches DynamoDB and SNS through
    the fault proxy, with a claim lease of FAULT_LEASE_SECONDS. Each scenario uses its own
    account and identity (a variant of SAMPLE), so the state of the others cannot interfere."""

    def __init__(self, checks, root, aws, proxy, env, workdir, watches):
        self.checks = checks
        self.check = checks.check
        self.root = root
        self.aws = aws
        self.proxy = proxy
        self.env = env
        self.workdir = workdir
        self.watches = watches
        self.watch = None

    def start_watch(self, name):
        self.watch = Watch(self.root, self.env, self.workdir, name=name)
        self.watches.append(self.watch)
        ready, why = self.watch.wait_ready()
        return self.check(f"{name}: cargo lambda watch (via the fault proxy) listening on 127.0.0.1:{self.watch.port}", ready, why)

    def events(self, letter, number):
        account = f"7777000000{number:02d}"
        tag = f"e2e-fault-{letter.lower()}"
        source = self.root / SAMPLE
        first = variant(source, self.workdir / f"{letter}-1.json", account, tag)
        later = variant(source, self.workdir / f"{letter}-2-later.json", account, tag, shift=LATER)
        return first, later

    def invoke(self, name, data_file):
        code, output = self.watch.invoke(data_file)
        if code is None:
            self.check(f"{name}: the invocation answers", False, output.strip()[-2000:])
            raise RuntimeError(f"{name}: invocation of {data_file.name} did not finish")
        return code, output

    def forwarded_publishes(self, position):
        return [
            e for e in self.proxy.entries_since(position, "sns", "Publish")
            if e["outcome"] in ("forwarded", "drop", "hold-released")
        ]

    def fails(self, name, data_file, rule, call):
        """One invocation while `rule` injects faults: it must fail, after the SDK's own
        retries, with the failed call named, and publish nothing."""
        position = self.proxy.mark()
        code, output = self.invoke(name, data_file)
        self.check(f"{name} -> the invocation fails", is_error_output(code, output), f"exit {code}: {output.strip()[-500:]}")
        self.check(
            f"{name} -> the SDK retried the call before giving up (faulted attempts >= 2)",
            rule.applied >= 2,
            f"{rule.applied} faulted attempt(s)",
        )
        self.check(
            f"{name} -> the error names {call} and the injected fault",
            call in output and "fault_proxy" in output,
            output.strip()[-500:],
        )
        got = self.aws.drain()
        forwarded = self.forwarded_publishes(position)
        self.check(
            f"{name} -> nothing published",
            not got and not forwarded,
            f"{len(got)} SNS messages, {len(forwarded)} Publish calls reached moto",
        )
        note(f"{name}: {rule.applied} faulted attempts ({', '.join(sorted(set(e['outcome'] for e in self.proxy.entries_since(position))))})")

    def retry_until_ok(self, name, data_file):
        """Re-invokes as Lambda would retry the event (an "in flight" answer within the lease
        is expected and retried) until an invocation succeeds; bounded in count and time."""
        outcomes, last = [], ""
        deadline = time.monotonic() + RETRY_SECONDS
        while len(outcomes) < RETRY_ATTEMPTS and time.monotonic() < deadline:
            code, output = self.watch.invoke(data_file)
            if code is not None and not is_error_output(code, output):
                outcomes.append("ok")
                break
            last = output
            if code is None or IN_FLIGHT not in output:
                outcomes.append("error")
                break
            outcomes.append("in flight")
            time.sleep(RETRY_PAUSE)  # the pause between retries, not a synchronisation
        ok = outcomes[-1:] == ["ok"]
        note(f"{name}: retries: {', '.join(outcomes)}")
        self.check(
            f"{name}: a retry succeeds within {RETRY_ATTEMPTS} attempts / {RETRY_SECONDS} s",
            ok,
            f"outcomes {outcomes}; last: {last.strip()[-500:]}",
        )
        return ok

    def exactly_once(self, name, got, expected):
        compare_messages(self.checks, name, got, expected)
        counts = collections.Counter(s.get("signal_id") for s in rules_of(got))
        ids = signal_ids(expected)
        self.check(
            f"{name}: exactly one SNS message per signal ({len(ids)} signals)",
            len(ids) > 0 and all(counts[i] == 1 for i in ids) and set(counts) == set(ids),
            f"copies per signal_id {dict(counts)}, expected {ids}",
        )

    def claims_are(self, name, ids, status, what):
        claims = self.aws.claims(ids)
        self.check(
            f"{name}: {what}",
            len(ids) > 0 and all(v == status for v in claims.values()),
            f"claims {claims}",
        )

    def afterwards(self, name, first, later):
        """The end state: a duplicate delivery publishes nothing, the same call two hours later
        signals again (nothing the failures left behind suppresses it), no claim is pending."""
        code, output = self.invoke(name, first)
        got = self.aws.drain()
        self.check(
            f"{name}: one more duplicate delivery succeeds and publishes nothing",
            code == 0 and not is_error_output(code, output) and not got,
            f"exit {code}, {len(got)} messages: {'; '.join(describe(e.get('Message', '')) for e in got)} {output.strip()[-300:]}",
        )
        expected_first = scan(self.root, [first])
        expected_all = scan(self.root, [first, later])
        expected_later = list((collections.Counter(expected_all) - collections.Counter(expected_first)).elements())
        code, output = self.invoke(name, later)
        got = self.aws.drain()
        self.check(f"{name}: the same delete 2 h later -> the invocation succeeds", code == 0 and not is_error_output(code, output), output.strip()[-500:])
        self.exactly_once(f"{name}: the same delete 2 h later (a future true signal)", got, expected_later)
        self.claims_are(name, signal_ids(expected_all), "published", "every claim of the scenario is marked published")

    # ---------------------------------------------------------------- E
    def dynamodb(self):
        first, later = self.events("E", 1)
        expected = scan(self.root, [first])
        rule = self.proxy.add("dynamodb", "UpdateItem", ["throttle", "provisioned"])
        self.fails("E: 1st attempt, DynamoDB UpdateItem throttled", first, rule, "DynamoDB UpdateItem")
        self.proxy.clear()
        rule = self.proxy.add("dynamodb", "PutItem", ["http500", "http503"], match='"signal#')
        self.fails("E: 2nd attempt, DynamoDB PutItem (the signal claim) 5xx", first, rule, "DynamoDB PutItem")
        self.proxy.clear()
        self.claims_are("E", signal_ids(expected), None, "no claim was written by the failed attempts")
        position = self.proxy.mark()
        if self.retry_until_ok("E: 3rd attempt (Lambda's last retry)", first):
            self.exactly_once("E: after the retry", self.aws.drain(), expected)
        seen = {(e["service"], e["action"]) for e in self.proxy.entries_since(position)}
        self.check(
            "E: the function's DynamoDB and SNS calls went through the proxy (AWS_ENDPOINT_URL_DYNAMODB/_SNS honoured)",
            ("dynamodb", "UpdateItem") in seen and ("dynamodb", "PutItem") in seen and ("sns", "Publish") in seen,
            f"seen {sorted(seen)}",
        )
        self.afterwards("E", first, later)

    # ---------------------------------------------------------------- F
    def sns(self):
        first, later = self.events("F", 2)
        expected = scan(self.root, [first])
        rule = self.proxy.add("sns", "Publish", ["http500", "http503"])
        self.fails("F: 1st attempt, SNS Publish 5xx", first, rule, "SNS Publish")
        self.proxy.clear()
        self.claims_are("F", signal_ids(expected), "pending", "the claims stay pending")
        if self.retry_until_ok("F: Lambda's retry", first):
            self.exactly_once("F: after the retry", self.aws.drain(), expected)
        self.afterwards("F", first, later)

    # ---------------------------------------------------------------- G
    def crash(self):
        first, later = self.events("G", 3)
        expected = scan(self.root, [first])
        rule = self.proxy.add("sns", "Publish", "hold")
        position = self.proxy.mark()
        invocation = self.watch.start_invoke(first)
        timeout = FIRST_INVOKE_TIMEOUT if invocation["first"] else INVOKE_TIMEOUT
        deadline = time.monotonic() + timeout
        # Event-based: the proxy sets `hit` when the Publish arrives (between claim and publish).
        while not rule.hit.wait(0.5):
            if invocation["proc"].poll() is not None or self.watch.proc.poll() is not None or time.monotonic() > deadline:
                break
        if not self.check("G: the SNS Publish (made after the claims) arrives at the proxy and is held", rule.hit.is_set(),
                          "the invocation ended or timed out first"):
            self.watch.finish(invocation, timeout=10)
            return False
        pids = self.watch.functions()
        self.check("G: one sesguard-lambda process under cargo lambda watch", len(pids) == 1,
                   f"pids {pids} among {descendants(self.watch.proc.pid)}")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        gone = wait_until(lambda: not any(running(pid) for pid in pids), 10)
        abandoned = rule.abandoned.wait(10)
        self.check("G: SIGKILL ends the function; its held Publish is dropped, never forwarded", bool(pids) and gone and abandoned,
                   f"gone {gone}, abandoned {abandoned}")
        self.watch.stop()  # the crashed container; the hold rule still catches any late Publish
        code, output = self.watch.finish(invocation, timeout=30)
        self.check("G: the interrupted invocation did not succeed", code is None or is_error_output(code, output),
                   f"exit {code}: {output.strip()[-300:]}")
        got = self.aws.drain()
        forwarded = self.forwarded_publishes(position)
        self.check("G: nothing published", not got and not forwarded,
                   f"{len(got)} SNS messages, {len(forwarded)} Publish calls reached moto")
        self.proxy.clear()
        self.claims_are("G", signal_ids(expected), "pending", "the claims stay pending after the crash")
        if not self.start_watch("G: restarted"):
            return False
        if self.retry_until_ok("G: Lambda's retry, on the restarted function", first):
            self.exactly_once("G: after the retry", self.aws.drain(), expected)
        self.afterwards("G", first, later)
        return True

    # ---------------------------------------------------------------- H
    def lost_answer(self):
        first, _ = self.events("H", 4)
        expected = scan(self.root, [first])
        rule = self.proxy.add("sns", "Publish", "drop", times=1)
        self.retry_until_ok("H: SNS's answer to the 1st Publish lost", first)
        self.proxy.clear()
        got = self.aws.drain()
        self.check("H: the proxy forwarded one Publish to moto and dropped its answer", rule.applied == 1,
                   f"{rule.applied} dropped")
        counts = collections.Counter(s.get("signal_id") for s in rules_of(got))
        self.check(
            "H: every signal arrives; every copy is the signal itself (same signal_id and body)",
            set(e.get("Message") for e in got) == set(expected),
            f"{len(got)} messages, copies per signal_id {dict(counts)}",
        )
        self.check(
            "H: at most one extra copy (docs/operations.md: subscribers de-duplicate on signal_id)",
            counts and max(counts.values()) <= 2 and sum(counts.values()) <= len(expected) + 1,
            f"copies per signal_id {dict(counts)}",
        )
        note(f"H: copies per signal: {sorted(counts.values())}")
        code, output = self.invoke("H", first)
        got = self.aws.drain()
        self.check(
            "H: one more duplicate delivery succeeds and publishes nothing",
            code == 0 and not is_error_output(code, output) and not got,
            f"exit {code}, {len(got)} messages",
        )

    # ---------------------------------------------------------------- I
    def stall(self):
        first, later = self.events("I", 5)
        expected = scan(self.root, [first])
        rule = self.proxy.add("dynamodb", "UpdateItem", "hold")
        position = self.proxy.mark()
        t0 = time.monotonic()
        code, output = self.invoke("I", first)
        took = time.monotonic() - t0
        self.check("I: a DynamoDB call that never answers -> the invocation fails", is_error_output(code, output),
                   f"exit {code}: {output.strip()[-500:]}")
        # The SDK's own timeouts (crates/lambda/src/aws/mod.rs) end it, not the function's 30 s timeout.
        self.check(f"I: ... ended by the SDK's timeouts before the function's 30 s timeout ({took:.1f} s)",
                   took < STALL_BOUND_SECONDS, f"took {took:.1f} s")
        self.check("I: ... as a transient state error naming the timeout (errorType sesguard.StateUnavailable)",
                   "sesguard.StateUnavailable" in output and "timeout" in output.lower(), output.strip()[-500:])
        def outcomes():
            return [e["outcome"] for e in self.proxy.entries_since(position, "dynamodb", "UpdateItem")]

        # The proxy sees each abandoned connection within a poll of it (bounded wait).
        wait_until(lambda: outcomes() and all(o == "hold-abandoned" for o in outcomes()), 5)
        self.check("I: the SDK retried the stalled call (held attempts >= 2, each abandoned, none forwarded)",
                   rule.applied >= 2 and len(outcomes()) == rule.applied and all(o == "hold-abandoned" for o in outcomes()),
                   f"{rule.applied} held; outcomes {outcomes()}")
        self.proxy.clear()
        got = self.aws.drain()
        self.check("I: nothing published", not got, f"{len(got)} SNS messages")
        if self.retry_until_ok("I: Lambda's retry", first):
            self.exactly_once("I: after the retry", self.aws.drain(), expected)
        self.afterwards("I", first, later)

    def run(self):
        t0 = time.monotonic()
        if not self.start_watch("faults"):
            return
        for letter, scenario in (
            ("E", self.dynamodb), ("F", self.sns), ("I", self.stall), ("G", self.crash), ("H", self.lost_answer),
        ):
            t1 = time.monotonic()
            if scenario() is False:  # G without its restarted function: H cannot run
                return
            note(f"{letter} took {time.monotonic() - t1:.1f} s")
        note(f"E-I took {time.monotonic() - t0:.1f} s, with two cargo lambda watch starts")


# ------------------------------------------------------------------ settings at run time (issue 17)

# A config change must reach a warm function within this long (SESGUARD_CONFIG_REFRESH_SECONDS=1).
CONFIG_DEADLINE = 60
CONFIG_ACCOUNT = "777700000090"
SUPPRESSED = "ses-identity-deleted"
KEPT = "ses-modification"


HEARTBEAT_REQUEST = '{"sesguard": "heartbeat"}'


def canary_event(role_arn, region, at, account):
    """The heartbeat's GetSendQuota as EventBridge delivers CloudTrail's record of it: a session
    of `role_arn`, the marker in the user agent, made at `at` (a UTC datetime)."""
    when = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    name = role_arn.rsplit("/", 1)[-1]
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ses", "account": account, "time": when, "region": region, "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole", "principalId": f"AROAEXAMPLE:{name}",
                "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{name}",
                "accountId": account, "accessKeyId": "ASIAEXAMPLEHEARTBEAT",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE", "arn": role_arn,
                                      "accountId": account, "userName": name},
                    "attributes": {"creationDate": when, "mfaAuthenticated": "false"},
                },
            },
            "eventTime": when, "eventSource": "ses.amazonaws.com", "eventName": "GetSendQuota",
            "awsRegion": region, "sourceIPAddress": "203.0.113.10",
            "userAgent": "sesguard-heartbeat/0.1.0",
            "requestParameters": None, "responseElements": None,
            "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": True,
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
            "eventCategory": "Management",
        },
    }


def heartbeat_scenario(checks, aws, watch, function_env, workdir):
    """K: the pipeline heartbeat through the real binary: canaries recorded and never a rule's,
    one blind signal per outage, one restored signal, the canary call answered by moto."""
    check = checks.check
    role = function_env.get("SESGUARD_HEARTBEAT_ROLE_ARN")
    regions = (function_env.get("SESGUARD_HEARTBEAT_REGIONS") or "").split(",")
    if not check("K: the template gives the function its own role and the heartbeat's regions",
                 role == aws.role_arn and regions == [aws.region], f"{role} {regions}"):
        return
    region, account = regions[0], aws.account
    request = workdir / "K-heartbeat.json"
    request.write_text(HEARTBEAT_REQUEST)
    log_before = len(Path(watch.log_path).read_text(errors="replace"))

    def invoke(name, path):
        code, output = watch.invoke(path)
        ok = code == 0 and not is_error_output(code, output)
        check(f"K: {name} -> the invocation succeeds", ok, f"exit {code}: {output.strip()[-500:]}")
        return rules_of(aws.drain())

    def canary(name, at):
        path = workdir / f"K-{name}.json"
        path.write_text(json.dumps(canary_event(role, region, at, account)))
        return path

    now = datetime.datetime.now(datetime.timezone.utc)
    got = invoke("a canary made two hours ago", canary("old", now - datetime.timedelta(hours=2)))
    check("K: ... publishes nothing (no first sighting of the role: no rule reads the canary)", not got,
          f"{[s['rule_id'] for s in got]}")
    got = invoke("a heartbeat run", request)
    blind = [s for s in got if s["rule_id"] == "sesguard-pipeline-blind"]
    check(f"K: ... publishes one sesguard-pipeline-blind for {region} (high), the last canary two hours old",
          len(got) == 1 and len(blind) == 1 and blind[0].get("region") == region
          and blind[0].get("severity") == "high"
          and (blind[0].get("details") or {}).get("last_seen") == (now - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
          json.dumps(got)[:600])
    got = invoke("a second heartbeat run", request)
    check("K: ... publishes nothing (one blind signal per outage)", not got, f"{[s['rule_id'] for s in got]}")
    got = invoke("a fresh canary", canary("fresh", datetime.datetime.now(datetime.timezone.utc)))
    check("K: ... publishes nothing", not got, f"{[s['rule_id'] for s in got]}")
    got = invoke("the next heartbeat run", request)
    check(f"K: ... publishes one sesguard-pipeline-restored for {region} (info)",
          [(s["rule_id"], s.get("region"), s.get("severity")) for s in got]
          == [("sesguard-pipeline-restored", region, "info")], json.dumps(got)[:600])
    log = Path(watch.log_path).read_text(errors="replace")[log_before:]
    runs = re.findall(r'\{"_aws".*?"HeartbeatRuns":1[^\n]*', log)
    check("K: each run emits HeartbeatRuns, and moto answered every GetSendQuota (HeartbeatCanaryFailed 0)",
          len(runs) == 3 and all('"HeartbeatCanaryFailed":0' in r for r in runs), "\n".join(runs)[-600:] or log[-600:])


def config_scenarios(checks, root, aws, function_env, workdir, watches):
    """J: the configuration in S3 (SESGUARD_CONFIG=s3://..., refreshed every second). A change
    reaches the warm function without a restart; a bad file is rejected, named in the log, and
    the last good one stays in force; a function whose file is invalid since its cold start fails
    its invocations with errorType sesguard.ConfigError."""
    check = checks.check
    bucket = aws.config_bucket
    if not check("J: template.yaml defines the configuration bucket (ConfigBucket)", bool(bucket)):
        return
    key = "e2e/sesguard.toml"

    def push(text):
        aws.s3.put_object(Bucket=bucket, Key=key, Body=text.encode())

    push("dedup_minutes = 60\n")
    env = {**function_env, "SESGUARD_CONFIG": f"s3://{bucket}/{key}", "SESGUARD_CONFIG_REFRESH_SECONDS": "1"}
    watch = Watch(root, env, workdir, name="config")
    watches.append(watch)
    ready, why = watch.wait_ready()
    if not check(f"J: cargo lambda watch with SESGUARD_CONFIG=s3://{bucket}/{key}", ready, why):
        return
    source = root / SAMPLE
    counter = iter(range(1000))

    def rules_for_new_event():
        """Invokes a fresh variant of SAMPLE (its own identity, so no dedup); the rule ids it
        published, or None if the invocation failed."""
        n = next(counter)
        event = variant(source, workdir / f"J-{n}.json", CONFIG_ACCOUNT, f"e2e-config-{n}")
        code, output = watch.invoke(event)
        if code is None or is_error_output(code, output):
            return None, output
        return sorted(s["rule_id"] for s in rules_of(aws.drain())), output

    got, output = rules_for_new_event()
    check(f"J: with the first file both {KEPT} and {SUPPRESSED} are published",
          got is not None and KEPT in got and SUPPRESSED in got, f"{got}: {output.strip()[-300:]}")
    pids = watch.functions()

    push(f'[[suppressions]]\nrule = "{SUPPRESSED}"\nreason = "e2e: a change at run time"\n')
    t0 = time.monotonic()
    history = []

    def suppressed():
        got, _ = rules_for_new_event()
        history.append(got)
        return got is not None and KEPT in got and SUPPRESSED not in got

    took = wait_until(suppressed, CONFIG_DEADLINE, interval=0.2) and time.monotonic() - t0
    check(f"J: a new suppression in S3 applies to the warm function without a restart ({took or 0:.1f} s, "
          f"{len(history)} invocations)", bool(took), f"rules per invocation: {history[-5:]}")
    check("J: ... the same function process throughout (no cold start)",
          bool(pids) and watch.functions() == pids, f"before {pids}, after {watch.functions()}")

    log_before = len(Path(watch.log_path).read_text(errors="replace"))
    push('[[suppressions]]\nrule = "ses-no-such-rule"\n')

    def rejected():
        rules_for_new_event()
        text = Path(watch.log_path).read_text(errors="replace")[log_before:]
        return "configuration rejected" in text and text

    log = wait_until(rejected, CONFIG_DEADLINE, interval=0.2)
    check("J: a bad file is rejected; the log names the file and the entry",
          bool(log) and f"s3://{bucket}/{key}: suppression 1: unknown rule" in log, (log or "")[-500:])
    check("J: ... and the ConfigRejected metric is emitted (EMF)", bool(log) and '"ConfigRejected":1' in log)
    got, output = rules_for_new_event()
    check(f"J: ... the last good file stays in force ({SUPPRESSED} still suppressed, {KEPT} published)",
          got is not None and KEPT in got and SUPPRESSED not in got, f"{got}: {output.strip()[-300:]}")
    watch.stop()

    # A cold start with an invalid file: every invocation fails, typed, and publishes nothing.
    bad_key = "e2e/invalid.toml"
    aws.s3.put_object(Bucket=bucket, Key=bad_key, Body=b'[[suppressions]]\nrule = "ses-no-such-rule"\n')
    watch = Watch(root, {**env, "SESGUARD_CONFIG": f"s3://{bucket}/{bad_key}"}, workdir, name="config-invalid")
    watches.append(watch)
    ready, why = watch.wait_ready()
    if not check("J: cargo lambda watch with an invalid file in S3", ready, why):
        return
    event = variant(source, workdir / "J-cold.json", CONFIG_ACCOUNT, "e2e-config-cold")
    code, output = watch.invoke(event)
    check("J: a cold start with an invalid file -> the invocation fails with errorType sesguard.ConfigError",
          is_error_output(code, output) and "sesguard.ConfigError" in output, f"exit {code}: {output.strip()[-500:]}")
    # cargo lambda invoke wraps the message in a box over several lines: compare without spaces.
    squashed = re.sub(r"[\s\u2502]+", "", output)
    check("J: ... naming the file and the entry",
          f"s3://{bucket}/{bad_key}:suppression1:unknownrule" in squashed, output.strip()[-500:])
    check("J: ... and publishes nothing", not aws.drain())
    watch.stop()


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
    template = load(root / "template.yaml")
    try:
        aws = Aws(endpoint, region, template, STACK_PARAMETERS)
        function_id, template_env = aws.function_environment()
    except TemplateError as err:
        checks.check("template.yaml has the table, topic and function environment to build", False, str(err))
        return
    checks.check(
        f"moto: table {aws.table} built from template.yaml {aws.table_id} ({', '.join(aws.table_built)})",
        not aws.table_differences(),
        "; ".join(aws.table_differences()),
    )
    checks.check(
        f"moto: topic built from template.yaml {aws.topic_id} ({', '.join(aws.topic_built)}), SQS queue subscribed",
        not aws.topic_differences(),
        "; ".join(aws.topic_differences()),
    )
    # The names the function reads are constants of src/lambda/env.rs; every variable the template
    # sets must be one of them, and the table and topic must reach the function through them.
    read = set(re.findall(r'pub const \w+: &str = "(SESGUARD_\w+)"', (root / "src/lambda/env.rs").read_text()))
    unread = sorted(set(template_env) - read)
    checks.check(
        f"function environment: the {len(template_env)} variables of {function_id} in template.yaml "
        "(names the function reads; the table name and topic ARN among the values)",
        not unread and aws.table in template_env.values() and aws.topic in template_env.values(),
        f"not read by src/lambda/env.rs: {unread}; values {template_env}",
    )

    # The oracle, `sesguard scan`, runs with the settings the function gets.
    SCAN_FLAGS[:] = [
        arg
        for variable, flag in SETTING_FLAGS.items()
        # An s3:// object (the Tor exit list in the configuration bucket, not written in moto:
        # the function uses none) has no `scan` flag.
        if variable in template_env and not template_env[variable].startswith("s3://")
        for arg in (flag, template_env[variable])
    ]
    note(f"deployed with {STACK_PARAMETERS}; sesguard scan {' '.join(SCAN_FLAGS)}")

    workdir = Path(tempfile.mkdtemp(prefix="sesguard-e2e-"))  # outside the watched repo
    function_env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **template_env,
        "RUST_LOG": "info",
        "AWS_LAMBDA_LOG_LEVEL": "info",
    }
    watches = [Watch(root, function_env, workdir)]
    watch = watches[0]
    proxy = None
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
        every_rule = rule_ids(root)
        expected_rules = collections.Counter(json.loads(l)["rule_id"] for l in expected)
        checks.check(
            f"A: sesguard scan events/ gives signals of every rule ({len(expected)} lines, "
            f"{len(every_rule)} rules)",
            len(every_rule) >= 12 and set(expected_rules) == set(every_rule),
            f"missing {sorted(set(every_rule) - set(expected_rules))}",
        )
        checks.check(
            "A: ... and exactly one ses-abuse-chain (the leaked key's attack)",
            expected_rules["ses-abuse-chain"] == 1,
            f"{expected_rules['ses-abuse-chain']} of them",
        )
        compare_messages(checks, "A", got, expected)
        check_envelopes(checks, "A", got, aws.topic)
        by_rule = collections.Counter(s["rule_id"] for s in rules_of(got))
        note("published: " + ", ".join(f"{r} {n}" for r, n in sorted(by_rule.items())))

        items = aws.items()
        ttl = aws.ttl_attribute
        no_ttl = [
            i[aws.key_attribute]["S"]
            for i in items
            if "N" not in i.get(ttl, {}) or not i[ttl]["N"].lstrip("-").isdigit()
        ]
        checks.check(
            f"A: all {len(items)} DynamoDB items carry a numeric {ttl} (the template's TTL attribute)",
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
            checks.check(
                f"D: {bad.name} -> Lambda reports errorType sesguard.MalformedEvent",
                "sesguard.MalformedEvent" in output,
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
        note(f"scenarios A-D took {time.monotonic() - started:.1f} s")

        # ---------------------------------------------------------------- K: heartbeat
        heartbeat_scenario(checks, aws, watch, function_env, workdir)
        watch.stop()

        # ---------------------------------------------------------------- J: config in S3
        t0 = time.monotonic()
        config_scenarios(checks, root, aws, function_env, workdir, watches)
        note(f"J took {time.monotonic() - t0:.1f} s")

        # ---------------------------------------------------------------- E-H: faults
        proxy = FaultProxy(endpoint).start()
        fault_env = {
            **function_env,
            # The general AWS_ENDPOINT_URL stays moto; these two win over it for their service.
            "AWS_ENDPOINT_URL_DYNAMODB": proxy.url,
            "AWS_ENDPOINT_URL_SNS": proxy.url,
            "SESGUARD_CLAIM_LEASE_SECONDS": str(FAULT_LEASE_SECONDS),
        }
        Faults(checks, root, aws, proxy, fault_env, workdir, watches).run()
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
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
