#!/usr/bin/env python3
"""Checks template.yaml against the code and against a real EventBridge implementation.

Usage (scripts/test.sh runs it with the venv's python, after sourcing scripts/emulators.sh):

    python tests/template_check.py ./target/debug/sesguard [events-dir]

1. The EventBridge rules' patterns are exactly `sesguard rules --format eventbridge` (the patterns
   derived from the rules' own trigger lists), and the rules have the state that delivers
   read-only CloudTrail events.
2. Every file in events/ is put on moto's EventBridge with the template's patterns as rules and an
   SQS queue as target: `filtered-*` files must not arrive, every other file must arrive once; every
   call a pattern names (the IAM ones included) must arrive in at least one sample.
3. The deployment is what the code expects and is secure: table key schema and TTL attribute,
   environment variables, IAM least privilege (the DynamoDB/SNS actions are the ones the adapters
   call, no wildcards), encryption of topic, queues and table, a DLQ on every rule target, an
   on-failure destination, alarms that can publish to the (encrypted) topic.

4. The organisation-wide deployment (issue 14, tests/organisation_check.py): the template's own
   event bus and its policy, forwarder.yaml (patterns, IAM in us-east-1 only, role, DLQ, alarm),
   and the events/ samples routed by moto from a member account's default bus to that bus.

Prints one line per check and ends with `N passed, M failed` (tests/checks.py; the counts also go
to the file SESGUARD_CHECKS_REPORT names, if set); exits 1 on any failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

# The CloudFormation-aware loading and the Ref/GetAtt helpers, shared with e2e_lambda.py.
from cfn_template import (NARROWED_OUT, ROOT, as_list, kept_out, load, normalized, of_type, pattern_call_names, plain,
                          props, target)
# The pass/fail reporter, shared with e2e_lambda.py.
from checks import Checks
# The organisation-wide deployment (issue 14): the detector's bus and forwarder.yaml.
from organisation_check import bus_of, check_bus_patterns, check_organisation

# SESGUARD_TEMPLATE: check another template (used to prove that the checks fail on a bad one).
TEMPLATE = Path(os.environ.get("SESGUARD_TEMPLATE") or ROOT / "template.yaml")
CLOUDTRAIL_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
ENV_VARS = {
    "SESGUARD_TABLE_NAME",
    "SESGUARD_TOPIC_ARN",
    "SESGUARD_LEARNING_DAYS",
    "SESGUARD_FORGET_DAYS",
    "SESGUARD_SEQUENCE_WINDOW_MINUTES",
    "SESGUARD_DEDUP_MINUTES",
    "SESGUARD_SANDBOX_EXIT_REGIONS",
    "SESGUARD_SANDBOX_EXIT_WINDOW_MINUTES",
    "SESGUARD_CHAIN_WINDOW_HOURS",
    "SESGUARD_SIGNAL_FORMAT",
    "SESGUARD_CONFIG",
    # issue 17: the configuration and the Tor exit list in S3 (with the default parameters)
    "SESGUARD_CONFIG_REFRESH_SECONDS",
    "SESGUARD_TOR_EXIT_LIST",
    # issue 17: the pipeline heartbeat (on by default)
    "SESGUARD_HEARTBEAT_ROLE_ARN",
    "SESGUARD_HEARTBEAT_REGIONS",
    "SESGUARD_HEARTBEAT_MAX_DELAY_MINUTES",
}
# The heartbeat's runs are the EventBridge function's; the S3 path only skips the canary.
HEARTBEAT_RUN_VARS = {"SESGUARD_HEARTBEAT_REGIONS", "SESGUARD_HEARTBEAT_MAX_DELAY_MINUTES"}
# The one action allowed on Resource "*": SES's account-level reads take no resource ARN, and the
# heartbeat's canary is one of them (held to the heartbeat's regions by aws:RequestedRegion).
STAR_RESOURCE_ACTIONS = {"ses:GetSendQuota"}


def star_allowed(st) -> bool:
    """A Resource "*" statement the template may have: the heartbeat's canary action alone,
    held to regions."""
    return (set(as_list(st.get("Action"))) == STAR_RESOURCE_ACTIONS
            and "aws:RequestedRegion" in ((st.get("Condition") or {}).get("StringEquals") or {}))
# Operations of the SDK clients, as the Rust SDK's fluent builders name them.
DYNAMODB_OPERATIONS = {
    "get_item": "GetItem",
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "query": "Query",
    "scan": "Scan",
    "batch_get_item": "BatchGetItem",
    "batch_write_item": "BatchWriteItem",
    "transact_get_items": "TransactGetItems",
    "transact_write_items": "TransactWriteItems",
    "describe_table": "DescribeTable",
}
SNS_OPERATIONS = {"publish": "Publish", "publish_batch": "PublishBatch"}

checks = Checks()
check = checks.check  # check(what, ok, detail=""): one line per check, counted for the report


# ------------------------------------------------------------------ helpers


def iam_statements(resources):
    """(where, statement) for every identity-based policy statement in the template."""
    out = []
    for name, res in resources.items():
        p = props(res)
        kind = res.get("Type")
        if kind == "AWS::IAM::Role":
            for pol in p.get("Policies") or []:
                for i, st in enumerate(as_list(pol.get("PolicyDocument", {}).get("Statement"))):
                    out.append((f"{name}/{pol.get('PolicyName')}[{i}]", st))
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for i, st in enumerate(as_list(p.get("PolicyDocument", {}).get("Statement"))):
                out.append((f"{name}[{i}]", st))
    return out


def role_actions_on(statements, resource_id):
    """Actions allowed on the resource `resource_id` (by Ref/GetAtt) by `statements`."""
    actions = set()
    for _, st in statements:
        if st.get("Effect") != "Allow":
            continue
        if any(target(r) == resource_id for r in as_list(st.get("Resource"))):
            actions.update(as_list(st.get("Action")))
    return actions


def rust_operations(path: Path, table: dict) -> set:
    """SDK operations a Rust source file calls (`.put_item()` ...), as IAM action suffixes."""
    text = path.read_text(encoding="utf-8")
    found = set()
    for snake, camel in table.items():
        if re.search(rf"\.{snake}\(\)", text):
            found.add(camel)
    return found


# ------------------------------------------------------------------ 1. patterns


def check_patterns(resources, binary: str):
    out = subprocess.run(
        [binary, "rules", "--format", "eventbridge"], check=True, capture_output=True, text=True
    ).stdout
    expected = json.loads(out)
    check("`sesguard rules --format eventbridge` prints a JSON array of patterns",
          isinstance(expected, list) and len(expected) >= 1, out[:200])
    all_rules = of_type(resources, "AWS::Events::Rule")
    # The same patterns on each bus: the default bus, and sesguard's own bus (issue 14).
    buses = sorted({bus_of(r) for r in all_rules.values()}, key=lambda b: b != "default")
    for bus in buses[1:]:
        check_bus_patterns(check, bus, {n: r for n, r in all_rules.items() if bus_of(r) == bus}, expected)
    rules = {n: r for n, r in all_rules.items() if bus_of(r) == "default"}
    by_source = {}
    for name, rule in rules.items():
        pattern = plain(props(rule).get("EventPattern"))
        if isinstance(pattern, str):  # a JSON string is legal CloudFormation too
            pattern = json.loads(pattern)
        for source in as_list((pattern or {}).get("source")):
            by_source.setdefault(source, []).append((name, pattern))
    check(f"the template has one EventBridge rule per pattern on the default bus ({len(expected)})",
          len(rules) == len(expected),
          f"found {sorted(rules)}")
    for pattern in expected:
        sources = pattern.get("source", [])
        source = sources[0] if sources else "?"
        matches = by_source.get(source, [])
        ok = len(matches) == 1 and normalized(matches[0][1]) == normalized(pattern)
        detail = ""
        if not matches:
            detail = f"no rule for source {source}"
        elif not ok:
            detail = (f"{matches[0][0]} has {json.dumps(matches[0][1], sort_keys=True)}, "
                      f"the rules read {json.dumps(pattern, sort_keys=True)}")
        check(f"rule for {source}: EventPattern equals the pattern derived from the rules", ok, detail)
    for name, rule in sorted(all_rules.items()):
        p = props(rule)
        check(f"{name}: State {CLOUDTRAIL_STATE} (else no Get*/List* event is delivered)",
              p.get("State") == CLOUDTRAIL_STATE,
              f"State is {p.get('State')!r}")
        check(f"{name}: on the default event bus or the template's own bus",
              (bus_of(rule) == "default" or bus_of(rule) in of_type(resources, "AWS::Events::EventBus"))
              and "ScheduleExpression" not in p,
              f"EventBusName {p.get('EventBusName')!r}")
    return [plain(props(r)["EventPattern"]) for _, r in sorted(rules.items())]


# ------------------------------------------------------------------ 2. events through moto


def granting_twin(envelope):
    """A copy of an IAM policy sample (new eventID) whose policy grants SES sending."""
    twin = json.loads(json.dumps(envelope))
    detail = twin["detail"]
    detail["eventID"] = f"{detail['eventID']}-grant"
    params = detail.get("requestParameters") or {}
    if "policyArn" in params:
        params["policyArn"] = "arn:aws:iam::aws:policy/AmazonSESFullAccess"
    if "policyDocument" in params:
        params["policyDocument"] = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "SES:SendRawEmail", "Resource": "*"}]})
    return twin


def check_events(patterns, events_dir: Path):
    import boto3

    endpoint = os.environ.get("SESGUARD_TEST_ENDPOINT")
    if not check("SESGUARD_TEST_ENDPOINT is set (source scripts/emulators.sh)", bool(endpoint)):
        return
    events = boto3.client("events", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    run = uuid.uuid4().hex[:8]
    queue_url = sqs.create_queue(QueueName=f"sesguard-template-check-{run}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    rule_names = []
    try:
        for i, pattern in enumerate(patterns):
            name = f"sesguard-template-check-{run}-{i}"
            events.put_rule(Name=name, EventBusName="default", State=CLOUDTRAIL_STATE,
                            EventPattern=json.dumps(pattern))
            events.put_targets(Rule=name, EventBusName="default",
                               Targets=[{"Id": "queue", "Arn": queue_arn}])
            rule_names.append(name)

        files = sorted(p for p in events_dir.glob("*.json") if p.is_file())
        check(f"{events_dir} holds sample events", len(files) > 0)
        samples = [(path.name, json.loads(path.read_text(encoding="utf-8"))) for path in files]
        # Each sample the narrowing keeps out, made to grant SES sending, must pass: the calls
        # without a granting sample of their own (AttachGroupPolicy, ...) are shown to arrive.
        samples += [(f"{name} made to grant sending", granting_twin(envelope))
                    for name, envelope in samples if name in NARROWED_OUT]
        sent = {}
        calls = {}  # file name -> (EventBridge source, eventName)
        for name, envelope in samples:
            path = Path(name)
            entry = {
                "Source": envelope["source"],
                "DetailType": envelope["detail-type"],
                "Detail": json.dumps(envelope["detail"]),
                "Resources": envelope.get("resources", []),
                "EventBusName": "default",
            }
            if envelope.get("time"):
                entry["Time"] = envelope["time"]
            result = events.put_events(Entries=[entry])
            if result.get("FailedEntryCount"):
                check(f"{path.name}: put_events accepted it", False, json.dumps(result["Entries"]))
            sent[path.name] = envelope["detail"]["eventID"]
            calls[path.name] = (envelope["source"], envelope["detail"].get("eventName"))

        arrived = {}
        empty_polls = 0
        while empty_polls < 2:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=1).get("Messages", [])
            if not got:
                empty_polls += 1
                continue
            for message in got:
                body = json.loads(message["Body"])
                event_id = body.get("detail", {}).get("eventID")
                arrived[event_id] = arrived.get(event_id, 0) + 1
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])

        for name, event_id in sent.items():
            count = arrived.get(event_id, 0)
            if kept_out(name):
                check(f"{name}: filtered out by the rules", count == 0,
                      f"arrived {count} time(s)")
            else:
                check(f"{name}: delivered by the rules", count == 1,
                      "did not arrive" if count == 0 else f"arrived {count} times")
        unknown = set(arrived) - set(sent.values())
        check("nothing else arrived in the queue", not unknown, f"unexpected eventIDs {unknown}")

        # Every call the rules deliver is shown to arrive by a sample of its own.
        delivered = {calls[name] for name, event_id in sent.items() if arrived.get(event_id)}
        for pattern in patterns:
            for source in as_list(pattern.get("source")):
                names = pattern_call_names(pattern.get("detail"))
                missing = sorted(n for n in names if (source, n) not in delivered)
                check(f"rule for {source}: each of its {len(names)} calls arrives from a sample in "
                      f"{events_dir.name}/", names and not missing, f"no sample delivered for {missing}")
    finally:
        for name in rule_names:
            events.remove_targets(Rule=name, EventBusName="default", Ids=["queue"])
            events.delete_rule(Name=name, EventBusName="default")
        sqs.delete_queue(QueueUrl=queue_url)


# ------------------------------------------------------------------ 3. deployment & security


def check_deployment(template):
    resources = template.get("Resources", {})
    queues = of_type(resources, "AWS::SQS::Queue")
    topics = of_type(resources, "AWS::SNS::Topic")
    tables = of_type(resources, "AWS::DynamoDB::Table")
    functions = of_type(resources, "AWS::Serverless::Function")
    rules = of_type(resources, "AWS::Events::Rule")
    keys = of_type(resources, "AWS::KMS::Key")
    statements = iam_statements(resources)

    # -- function
    # The detector, and the Tor exit list fetcher (issue 17; on with the default parameters).
    check("functions: SesguardFunction and TorExitListFunction",
          sorted(functions) == ["SesguardFunction", "TorExitListFunction"], f"{list(functions)}")
    fn = props(functions.get("SesguardFunction", {}))
    meta = functions.get("SesguardFunction", {}).get("Metadata") or {}
    check("function: provided.al2023, arm64, handler bootstrap",
          fn.get("Runtime") == "provided.al2023" and fn.get("Architectures") == ["arm64"]
          and fn.get("Handler") == "bootstrap",
          f"{fn.get('Runtime')} {fn.get('Architectures')} {fn.get('Handler')}")
    check("function: built by rust-cargolambda from the sesguard-lambda binary",
          meta.get("BuildMethod") == "rust-cargolambda"
          and (meta.get("BuildProperties") or {}).get("Binary") == "sesguard-lambda",
          json.dumps(meta))
    variables = set(((fn.get("Environment") or {}).get("Variables") or {}).keys())
    check("function: environment variables exactly those the Lambda reads", variables == ENV_VARS,
          f"extra {sorted(variables - ENV_VARS)}, missing {sorted(ENV_VARS - variables)}")
    # SESGUARD_SIGNAL_FORMAT: the names the Lambda accepts (src/output.rs), today's JSON by
    # default (issue 18); any other value would stop the function at cold start.
    signal_format = (template.get("Parameters") or {}).get("SignalFormat") or {}
    check("function: SignalFormat takes sesguard (the default) or ocsf, as SESGUARD_SIGNAL_FORMAT",
          signal_format.get("Default") == "sesguard"
          and signal_format.get("AllowedValues") == ["sesguard", "ocsf"]
          and target(((fn.get("Environment") or {}).get("Variables") or {}).get("SESGUARD_SIGNAL_FORMAT"))
          == "SignalFormat",
          json.dumps(signal_format))
    logging = fn.get("LoggingConfig") or {}
    log_group = resources.get(target(logging.get("LogGroup")) or "", {})
    check("function: JSON log format", logging.get("LogFormat") == "JSON")
    check("function: log group with retention", props(log_group).get("RetentionInDays") is not None)
    check("function: no SAM policies/templates (role written out)", not fn.get("Policies"))
    # The function reads IAM events (grants, SMTP users); it calls no IAM API.
    iam_actions = sorted({a for _, st in statements for a in as_list(st.get("Action"))
                          if isinstance(a, str) and a.lower().startswith("iam:")})
    check("function: its role may call no IAM API (it only reads IAM events)", not iam_actions,
          f"{iam_actions}")
    role_id = target(fn.get("Role"))
    role = resources.get(role_id or "", {})
    check("function: own IAM role without managed policies",
          role.get("Type") == "AWS::IAM::Role" and not props(role).get("ManagedPolicyArns"),
          f"Role {fn.get('Role')}")

    # -- on-failure destination of the async invocations
    invoke_configs = [props(r) for r in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
                      if target(props(r).get("FunctionName")) == "SesguardFunction"]
    ic = invoke_configs[0] if invoke_configs else {}
    on_failure = target(((ic.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"))
    check("function: EventInvokeConfig with an SQS OnFailure destination", on_failure in queues,
          f"destination {on_failure}")
    check("function: async retry count set", isinstance(ic.get("MaximumRetryAttempts"), int),
          f"{ic.get('MaximumRetryAttempts')!r}")
    check("function role may sqs:SendMessage to the OnFailure queue",
          "sqs:SendMessage" in role_actions_on(statements, on_failure))

    # -- EventBridge targets: DLQ, retry policy, permission
    policies = of_type(resources, "AWS::SQS::QueuePolicy")
    permissions = [props(r) for r in of_type(resources, "AWS::Lambda::Permission").values()]
    for name, rule in sorted(rules.items()):
        targets = props(rule).get("Targets") or []
        check(f"{name}: targets the function",
              len(targets) == 1 and target(targets[0].get("Arn")) == "SesguardFunction",
              json.dumps(plain(targets))[:200])
        for t in targets:
            retry = t.get("RetryPolicy") or {}
            check(f"{name}: target has a RetryPolicy",
                  "MaximumRetryAttempts" in retry and "MaximumEventAgeInSeconds" in retry,
                  json.dumps(plain(retry)))
            dlq = target((t.get("DeadLetterConfig") or {}).get("Arn"))
            check(f"{name}: target has an SQS dead-letter queue", dlq in queues, f"{dlq}")
            allowed = False
            for pol in policies.values():
                pp = props(pol)
                if dlq not in [target(q) for q in as_list(pp.get("Queues"))]:
                    continue
                for st in as_list(pp.get("PolicyDocument", {}).get("Statement")):
                    principal = (st.get("Principal") or {}).get("Service")
                    arns = [target(a) for cond in (st.get("Condition") or {}).values()
                            for a in as_list(cond.get("aws:SourceArn"))]
                    if (st.get("Effect") == "Allow" and principal == "events.amazonaws.com"
                            and "sqs:SendMessage" in as_list(st.get("Action")) and name in arns):
                        allowed = True
            check(f"{name}: DLQ policy lets events.amazonaws.com send for this rule (SourceArn)", allowed)
        check(f"{name}: Lambda permission for events.amazonaws.com with this rule as SourceArn",
              any(p.get("Principal") == "events.amazonaws.com"
                  and target(p.get("SourceArn")) == name
                  and target(p.get("FunctionName")) == "SesguardFunction" for p in permissions))

    # -- table: what the DynamoDB adapter expects
    check("one DynamoDB table", len(tables) == 1, f"{list(tables)}")
    for name, table in tables.items():
        p = props(table)
        check(f"{name}: key schema is exactly pk (S, HASH)",
              plain(p.get("KeySchema")) == [{"AttributeName": "pk", "KeyType": "HASH"}]
              and plain(p.get("AttributeDefinitions")) == [{"AttributeName": "pk", "AttributeType": "S"}],
              json.dumps(plain(p.get("KeySchema"))))
        check(f"{name}: on-demand", p.get("BillingMode") == "PAY_PER_REQUEST")
        ttl = p.get("TimeToLiveSpecification") or {}
        check(f"{name}: TTL on expires_at",
              ttl.get("AttributeName") == "expires_at" and ttl.get("Enabled") is True,
              json.dumps(plain(ttl)))
        check(f"{name}: point-in-time recovery",
              (p.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") is True)
        check(f"{name}: encrypted (SSE)", (p.get("SSESpecification") or {}).get("SSEEnabled") is True)
        used = {f"dynamodb:{op}" for op in rust_operations(ROOT / "crates/lambda/src/aws/dynamodb.rs", DYNAMODB_OPERATIONS)}
        granted = role_actions_on(statements, name)
        check(f"{name}: the role grants exactly the item actions crates/lambda/src/aws/dynamodb.rs calls",
              granted == used,
              f"granted {sorted(granted)}, the adapter calls {sorted(used)}")

    # -- topics: encrypted, TLS only; the function publishes signals only, the alarms health only
    signal_topic = target((fn.get("Environment") or {}).get("Variables", {}).get("SESGUARD_TOPIC_ARN"))
    check("function: SESGUARD_TOPIC_ARN names a topic of the template", signal_topic in topics,
          f"{signal_topic}")
    topic_policies = [props(tp) for tp in of_type(resources, "AWS::SNS::TopicPolicy").values()]

    def policy_statements(topic):
        return [st for tp in topic_policies if topic in [target(t) for t in as_list(tp.get("Topics"))]
                for st in as_list(tp.get("PolicyDocument", {}).get("Statement"))]

    def key_statements(topic):
        key_id = target(props(topics[topic]).get("KmsMasterKeyId"))
        return as_list(props(keys.get(key_id, {})).get("KeyPolicy", {}).get("Statement"))

    def cloudwatch_scoped(st):
        """CloudWatch as the principal, held to this account's alarms."""
        cond = st.get("Condition") or {}
        return ((st.get("Principal") or {}).get("Service") == "cloudwatch.amazonaws.com"
                and "aws:SourceAccount" in (cond.get("StringEquals") or {})
                and ":alarm:" in json.dumps(plain((cond.get("ArnLike") or {}).get("aws:SourceArn"))))

    for name, topic in sorted(topics.items()):
        key = props(topic).get("KmsMasterKeyId")
        check(f"{name}: KMS-encrypted topic with a key of the template", target(key) in keys,
              f"KmsMasterKeyId {json.dumps(plain(key))}")
        tls = any(st.get("Effect") == "Deny" and st.get("Principal") == "*"
                  and "sns:Publish" in as_list(st.get("Action"))
                  and (st.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport") == "false"
                  for st in policy_statements(name))
        check(f"{name}: topic policy denies requests without TLS", tls)
        for st in key_statements(name):
            if (st.get("Principal") or {}).get("Service") == "cloudwatch.amazonaws.com":
                check(f"{name}: its key lets only this account's alarms use it (SourceAccount, SourceArn)",
                      cloudwatch_scoped(st), json.dumps(plain(st)))
    keys_used = [target(props(t).get("KmsMasterKeyId")) for t in topics.values()]
    check("each topic has a key of its own", len(keys_used) == len(set(keys_used)), f"{keys_used}")
    if signal_topic in topics:
        used = {f"sns:{op}" for op in rust_operations(ROOT / "crates/lambda/src/aws/sns.rs", SNS_OPERATIONS)}
        granted = role_actions_on(statements, signal_topic)
        check(f"{signal_topic}: the role grants exactly the actions crates/lambda/src/aws/sns.rs calls",
              granted == used, f"granted {sorted(granted)}, the sink calls {sorted(used)}")
        key_id = target(props(topics[signal_topic]).get("KmsMasterKeyId"))
        kms_ok = any(
            st.get("Effect") == "Allow"
            and {"kms:GenerateDataKey", "kms:Decrypt"} <= set(as_list(st.get("Action")))
            and (key_id is not None and key_id in [target(r) for r in as_list(st.get("Resource"))]
                 or bool(st.get("Condition")))
            for _, st in statements)
        check(f"{signal_topic}: the role may kms:GenerateDataKey and kms:Decrypt for the topic key", kms_ok)
        only_function = any(
            st.get("Effect") == "Deny" and st.get("Principal") == "*"
            and "sns:Publish" in as_list(st.get("Action"))
            and [target(a) for a in as_list(
                (st.get("Condition") or {}).get("ArnNotEquals", {}).get("aws:PrincipalArn"))]
            == ["SesguardFunctionRole"]
            for st in policy_statements(signal_topic))
        check(f"{signal_topic}: topic policy denies Publish to all but the function's role", only_function)
        check(f"{signal_topic}: its key grants CloudWatch nothing (alarms have their own topic and key)",
              not any((st.get("Principal") or {}).get("Service") == "cloudwatch.amazonaws.com"
                      for st in key_statements(signal_topic)))
    health = sorted({target(x) for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
                     for x in as_list(props(a).get("AlarmActions"))})
    check("alarms publish to a health topic, not the signals topic",
          bool(health) and signal_topic not in health and all(h in topics for h in health), f"{health}")
    for name in health:
        if name in topics:
            check(f"{name}: its key lets this account's alarms publish (customer managed key)",
                  any(cloudwatch_scoped(st) and {"kms:Decrypt", "kms:GenerateDataKey*"}
                      <= set(as_list(st.get("Action"))) for st in key_statements(name)))
            check(f"{name}: topic policy lets this account's alarms publish",
                  any(st.get("Effect") == "Allow" and cloudwatch_scoped(st)
                      and "sns:Publish" in as_list(st.get("Action")) for st in policy_statements(name)))
            check(f"{name}: the function's role may not publish to it",
                  not role_actions_on(statements, name))
    check("function: reserved concurrency from the ReservedConcurrency parameter",
          target(fn.get("ReservedConcurrentExecutions")) == "ReservedConcurrency",
          json.dumps(plain(fn.get("ReservedConcurrentExecutions"))))
    for name, queue in sorted(queues.items()):
        p = props(queue)
        check(f"{name}: encrypted queue",
              p.get("SqsManagedSseEnabled") is True or bool(p.get("KmsMasterKeyId")))

    # -- IAM: no wildcards
    check("IAM policies are written out in the template", len(statements) > 0)
    for where, st in statements:
        actions = as_list(st.get("Action"))
        resources_ = as_list(st.get("Resource"))
        check(f"IAM {where}: no NotAction/NotResource",
              "NotAction" not in st and "NotResource" not in st and "NotPrincipal" not in st)
        check(f"IAM {where} ({st.get('Sid', '')}): no wildcard action",
              bool(actions) and not any("*" in a for a in actions if isinstance(a, str)), f"{actions}")
        star = any(r == "*" for r in resources_)
        kms_conditioned = all(isinstance(a, str) and a.startswith("kms:") for a in actions) and bool(
            st.get("Condition"))
        check(f"IAM {where} ({st.get('Sid', '')}): no wildcard resource (but ses:GetSendQuota's, held to regions)",
              bool(resources_) and (not star or kms_conditioned or star_allowed(st)), f"{resources_}")
    for name, pol in sorted(policies.items()):
        for i, st in enumerate(as_list(props(pol).get("PolicyDocument", {}).get("Statement"))):
            principal = st.get("Principal")
            check(f"{name}[{i}]: queue policy names a principal, a condition, no wildcard action",
                  principal not in ("*", {"AWS": "*"}) and bool(st.get("Condition"))
                  and not any("*" in a for a in as_list(st.get("Action"))))
    for name, key in sorted(keys.items()):
        for i, st in enumerate(as_list(props(key).get("KeyPolicy", {}).get("Statement"))):
            principal = st.get("Principal") or {}
            is_root = isinstance(principal, dict) and "root" in json.dumps(plain(principal.get("AWS", "")))
            wildcard = any("*" in a and a != "kms:GenerateDataKey*" for a in as_list(st.get("Action")))
            check(f"{name}[{i}]: key policy grants a named principal; only the account may kms:*",
                  principal not in ("*", {"AWS": "*"}) and (is_root or not wildcard))

    # -- alarms
    alarms = [props(a) for a in of_type(resources, "AWS::CloudWatch::Alarm").values()]

    def alarm_for(metric, dimension_target):
        for a in alarms:
            dims = [target(d.get("Value")) for d in a.get("Dimensions") or []]
            if (a.get("MetricName") == metric and dimension_target in dims
                    and any(target(x) in topics for x in as_list(a.get("AlarmActions")))
                    and a.get("Threshold") == 0 and a.get("ComparisonOperator") == "GreaterThanThreshold"):
                return True
        return False

    check("alarm: function Errors > 0 -> topic", alarm_for("Errors", "SesguardFunction"))
    check("alarm: function Throttles > 0 -> topic", alarm_for("Throttles", "SesguardFunction"))
    # (alarm_for accepts any topic of the template; which one is checked above: the health topic)
    for name in sorted(queues):
        if name in REDRIVE_QUEUES:
            # A redrive queue holds messages while it is drained: its alarm is on their age.
            check(f"alarm: oldest message in {name} older than its drain time -> topic",
                  any(a.get("MetricName") == "ApproximateAgeOfOldestMessage"
                      and [target(d.get("Value")) for d in a.get("Dimensions") or []] == [name]
                      and any(target(x) in topics for x in as_list(a.get("AlarmActions")))
                      for a in alarms))
            continue
        check(f"alarm: messages visible in {name} > 0 -> topic",
              alarm_for("ApproximateNumberOfMessagesVisible", name))
    check_redrive(resources, statements)

    # -- parameters and outputs
    params = template.get("Parameters", {})
    want = {"LearningDays": 7, "ForgetDays": 28, "SequenceWindowMinutes": 60, "DedupMinutes": 60,
            "SandboxExitRegions": 3, "SandboxExitWindowMinutes": 5, "ChainWindowHours": 24,
            "LogLevel": "INFO", "AlertEmail": "", "HealthAlertEmail": "", "ReservedConcurrency": 10}
    got = {k: params.get(k, {}).get("Default") for k in want}
    check("parameters with their defaults", got == want, f"{got}")
    outputs = {target(o.get("Value")) for o in (template.get("Outputs") or {}).values()}
    needed = set(topics) | set(tables) | set(queues) | {"SesguardFunction"}
    check("outputs: both topics, table, every queue, function", needed <= outputs,
          f"missing {sorted(needed - outputs)}")


# ------------------------------------------------------------------ redrive (issue 17)

# Each redrive queue and the queue it redrives (its dead-letter queue: a message that still
# fails goes back there, and SQS's move task takes only dead-letter queues as sources).
REDRIVE_QUEUES = {"FailureRedriveQueue": "FunctionFailureQueue", "RuleRedriveQueue": "RuleDeadLetterQueue"}
REDRIVE_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


def check_redrive(resources, statements):
    mappings = [props(m) for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()]
    for queue, source in sorted(REDRIVE_QUEUES.items()):
        p = props(resources.get(queue, {}))
        redrive = p.get("RedrivePolicy") or {}
        check(f"redrive: {queue} sends what still fails back to {source}",
              target(redrive.get("deadLetterTargetArn")) == source
              and isinstance(redrive.get("maxReceiveCount"), int), json.dumps(plain(redrive)))
        check(f"redrive: {queue}'s visibility timeout is at least six times the function's timeout",
              (p.get("VisibilityTimeout") or 0) >= 6 * 30, f"{p.get('VisibilityTimeout')}")
        esm = [m for m in mappings if target(m.get("EventSourceArn")) == queue]
        check(f"redrive: the function consumes {queue} with ReportBatchItemFailures",
              len(esm) == 1 and target(esm[0].get("FunctionName")) == "SesguardFunction"
              and esm[0].get("FunctionResponseTypes") == ["ReportBatchItemFailures"],
              json.dumps(plain(esm))[:300])
        granted = role_actions_on(statements, queue)
        check(f"redrive: the role may only receive, delete and read attributes on {queue}",
              granted == REDRIVE_ACTIONS, f"{sorted(granted)}")


# ------------------------------------------------------------------ 4. S3 ingestion (optional)

TRAIL_PARAMETERS = {
    "TrailBucketName": "org-trail-logs",
    "TrailBucketAccountId": "999988887777",
    "TrailKmsKeyArn": "arn:aws:kms:us-east-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "TrailTopicArn": "arn:aws:sns:us-east-1:999988887777:org-trail",
}
TRAIL_RESOURCES = {"TrailIngestFunction", "TrailIngestLogGroup", "TrailIngestEventSourceMapping",
                   "TrailIngestFunctionRole", "TrailIngestQueue", "TrailIngestDeadLetterQueue",
                   "TrailIngestQueuePolicy", "TrailIngestDeadLetterQueueAlarm", "TrailIngestQueueAgeAlarm"}
# What the S3 path's role may do beyond the EventBridge function's rights on the state, the
# signals and its logs: (action, the resource as written, the condition key it must carry).
TRAIL_GRANTS = {
    ("s3:GetObject", "arn:${AWS::Partition}:s3:::${TrailBucketName}/${TrailKeyPrefix}*", None),
    ("kms:Decrypt", "TrailKmsKeyArn", "kms:ViaService"),
    ("sqs:ReceiveMessage", "TrailIngestQueue", None),
    ("sqs:DeleteMessage", "TrailIngestQueue", None),
    ("sqs:GetQueueAttributes", "TrailIngestQueue", None),
}


def condition_values(template, parameters):
    """Each condition of the template, evaluated with `parameters` (else the Defaults)."""
    params = template.get("Parameters") or {}

    def value(v):
        if isinstance(v, dict) and len(v) == 1:
            (key, arg), = v.items()
            if key == "Ref":
                return str(parameters.get(arg, params.get(arg, {}).get("Default", "")))
            if key == "Fn::Equals":
                return value(arg[0]) == value(arg[1])
            if key == "Fn::Not":
                return not value(arg[0])
            if key == "Fn::And":
                return all(value(a) for a in arg)
            if key == "Fn::Or":
                return any(value(a) for a in arg)
            if key == "Condition":
                return value(template["Conditions"][arg])
        return v

    return {name: value(c) for name, c in (template.get("Conditions") or {}).items()}


NO_VALUE = object()


def with_parameters(template, parameters):
    """The template as deployed with `parameters`: resources and outputs whose Condition is false
    dropped, each Fn::If replaced by its branch, AWS::NoValue removed."""
    conditions = condition_values(template, parameters)

    def walk(v):
        if isinstance(v, list):
            return [x for x in (walk(x) for x in v) if x is not NO_VALUE]
        if isinstance(v, dict):
            if len(v) == 1 and "Fn::If" in v:
                name, yes, no = v["Fn::If"]
                return walk(yes if conditions[name] else no)
            if v == {"Ref": "AWS::NoValue"}:
                return NO_VALUE
            return {k: x for k, x in ((k, walk(x)) for k, x in v.items()) if x is not NO_VALUE}
        return v

    out = dict(template)
    for section in ("Resources", "Outputs"):
        out[section] = {name: walk(r) for name, r in (template.get(section) or {}).items()
                        if conditions.get(r.get("Condition"), True)}
    return out


def check_trail_ingestion(template):
    off = with_parameters(template, {}).get("Resources", {})
    check("S3 ingestion: off by default (no TrailBucketName, none of its resources)",
          not TRAIL_RESOURCES & set(off), f"{sorted(TRAIL_RESOURCES & set(off))}")
    on_template = with_parameters(template, TRAIL_PARAMETERS)
    on = on_template.get("Resources", {})
    check("S3 ingestion: TrailBucketName adds its resources", TRAIL_RESOURCES <= set(on),
          f"missing {sorted(TRAIL_RESOURCES - set(on))}")
    if not TRAIL_RESOURCES <= set(on):
        return
    fn = props(on["TrailIngestFunction"])
    meta = on["TrailIngestFunction"].get("Metadata") or {}
    check("S3 ingestion: the same sesguard-lambda binary, arm64, provided.al2023",
          (meta.get("BuildProperties") or {}).get("Binary") == "sesguard-lambda"
          and fn.get("Architectures") == ["arm64"] and fn.get("Runtime") == "provided.al2023")
    variables = set(((fn.get("Environment") or {}).get("Variables") or {}).keys())
    want = (ENV_VARS - HEARTBEAT_RUN_VARS) | {"SESGUARD_TRAIL_BUCKET", "SESGUARD_TRAIL_BUCKET_OWNER"}
    check("S3 ingestion: environment variables exactly those the Lambda reads", variables == want,
          f"extra {sorted(variables - want)}, missing {sorted(want - variables)}")
    check("S3 ingestion: reserved concurrency from TrailReservedConcurrency",
          target(fn.get("ReservedConcurrentExecutions")) == "TrailReservedConcurrency")
    mappings = [props(m) for m in of_type(on, "AWS::Lambda::EventSourceMapping").values()
                if target(props(m).get("FunctionName")) == "TrailIngestFunction"]
    esm = mappings[0] if len(mappings) == 1 else {}
    check("S3 ingestion: one SQS event source mapping from TrailIngestQueue",
          target(esm.get("EventSourceArn")) == "TrailIngestQueue", json.dumps(plain(esm))[:200])
    check("S3 ingestion: partial batch responses (ReportBatchItemFailures)",
          "ReportBatchItemFailures" in as_list(esm.get("FunctionResponseTypes")))
    queue = props(on["TrailIngestQueue"])
    redrive = queue.get("RedrivePolicy") or {}
    check("S3 ingestion: queue and dead-letter queue encrypted",
          all(props(on[q]).get("SqsManagedSseEnabled") is True or props(on[q]).get("KmsMasterKeyId")
              for q in ("TrailIngestQueue", "TrailIngestDeadLetterQueue")))
    check("S3 ingestion: failed notifications go to the dead-letter queue after a few receives",
          target(redrive.get("deadLetterTargetArn")) == "TrailIngestDeadLetterQueue"
          and 1 <= int(redrive.get("maxReceiveCount") or 0) <= 10, json.dumps(plain(redrive)))
    check("S3 ingestion: visibility timeout at least 6 x the function timeout",
          int(queue.get("VisibilityTimeout") or 30) >= 6 * int(fn.get("Timeout") or 3))
    alarms = [props(a) for a in of_type(on, "AWS::CloudWatch::Alarm").values()]
    check("S3 ingestion: alarm on the dead-letter queue -> the health topic",
          any(a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
              and [target(d.get("Value")) for d in a.get("Dimensions") or []] == ["TrailIngestDeadLetterQueue"]
              and a.get("Threshold") == 0 and [target(x) for x in as_list(a.get("AlarmActions"))] == ["HealthTopic"]
              for a in alarms))

    # The queue policy: the trail bucket (of its account) and the trail's topic send, nobody else.
    statements = as_list(props(on["TrailIngestQueuePolicy"]).get("PolicyDocument", {}).get("Statement"))
    senders = {(st.get("Principal") or {}).get("Service"): st for st in statements}
    s3_st = senders.get("s3.amazonaws.com") or {}
    cond = s3_st.get("Condition") or {}
    check("S3 ingestion: the bucket may send, held to its ARN and account (SourceArn, SourceAccount)",
          as_list(s3_st.get("Action")) == ["sqs:SendMessage"]
          and "aws:SourceArn" in (cond.get("ArnEquals") or {})
          and "aws:SourceAccount" in (cond.get("StringEquals") or {}), json.dumps(plain(s3_st)))
    sns_st = senders.get("sns.amazonaws.com") or {}
    check("S3 ingestion: the trail's SNS topic may send, held to its ARN",
          target(((sns_st.get("Condition") or {}).get("ArnEquals") or {}).get("aws:SourceArn")) == "TrailTopicArn")
    check("S3 ingestion: only the bucket and the topic may send",
          set(senders) == {"s3.amazonaws.com", "sns.amazonaws.com"}, f"{sorted(map(str, senders))}")
    without_topic = with_parameters(template, {k: v for k, v in TRAIL_PARAMETERS.items() if k != "TrailTopicArn"})
    check("S3 ingestion: no topic statement without TrailTopicArn",
          len(as_list(props(without_topic["Resources"]["TrailIngestQueuePolicy"])
                      .get("PolicyDocument", {}).get("Statement"))) == 1)

    # The role: the EventBridge function's rights (less its on-failure queue) plus the list.
    def grants(role):
        out = set()
        for pol in props(on[role]).get("Policies") or []:
            for st in as_list(pol.get("PolicyDocument", {}).get("Statement")):
                check(f"{role}: statement {st.get('Sid')} allows named actions on named resources",
                      st.get("Effect") == "Allow" and not any("*" in a for a in as_list(st.get("Action")))
                      and ("*" not in as_list(st.get("Resource")) or star_allowed(st)) and "NotAction" not in st)
                for action in as_list(st.get("Action")):
                    for resource in as_list(st.get("Resource")):
                        where = target(resource) or (resource.get("Fn::Sub") if isinstance(resource, dict) else resource)
                        where = json.dumps(where, sort_keys=True) if isinstance(where, (list, dict)) else where
                        keys = {k for c in (st.get("Condition") or {}).values() for k in c}
                        out.add((action, where, next(iter(sorted(keys)), None)))
        return out

    # (less the heartbeat's canary call: the S3 path makes no heartbeat)
    base = {g for g in grants("SesguardFunctionRole")
            if g[0] != "sqs:SendMessage" and not g[0].startswith("logs:")
            and g[1] not in REDRIVE_QUEUES and g[0] not in STAR_RESOURCE_ACTIONS}
    trail = {g for g in grants("TrailIngestFunctionRole") if not g[0].startswith("logs:")}
    check("S3 ingestion: its role grants exactly the EventBridge function's rights plus s3:GetObject on "
          "the trail prefix, kms:Decrypt of the trail key through S3, and the queue's receive/delete/attributes",
          trail == base | TRAIL_GRANTS,
          f"extra {sorted(map(str, trail - base - TRAIL_GRANTS))}, missing {sorted(map(str, (base | TRAIL_GRANTS) - trail))}")
    logs = {g[1] for g in grants("TrailIngestFunctionRole") if g[0].startswith("logs:")}
    check("S3 ingestion: its role writes only its own log group", logs == {"TrailIngestLogGroup"}, f"{logs}")
    without_key = with_parameters(template, {k: v for k, v in TRAIL_PARAMETERS.items() if k != "TrailKmsKeyArn"})
    on = without_key["Resources"]
    check("S3 ingestion: no kms:Decrypt of a trail key without TrailKmsKeyArn",
          not any(g[1] == "TrailKmsKeyArn" for g in grants("TrailIngestFunctionRole")))
    on = on_template["Resources"]
    deny = [st for st in as_list(props(on["SignalTopicPolicy"]).get("PolicyDocument", {}).get("Statement"))
            if st.get("Effect") == "Deny" and "ArnNotEquals" in (st.get("Condition") or {})]
    roles = [target(a) for st in deny for a in as_list(st["Condition"]["ArnNotEquals"].get("aws:PrincipalArn"))]
    check("S3 ingestion: its role may publish signals (the topic policy excepts it)",
          roles == ["SesguardFunctionRole", "TrailIngestFunctionRole"], f"{roles}")


# ------------------------------------------------------------------ 5. settings at run time (issue 17)

TOR_KEY = "tor-exit-list.txt"
CONFIG_PARAMETERS = {"ConfigKey": "sesguard.toml"}


def s3_grants(resources, role):
    """(action, resource as written, condition) of every s3: action a role allows."""
    out = []
    for pol in props(resources.get(role, {})).get("Policies") or []:
        for st in as_list(pol.get("PolicyDocument", {}).get("Statement")):
            if st.get("Effect") != "Allow":
                continue
            for action in as_list(st.get("Action")):
                if isinstance(action, str) and action.lower().startswith("s3:"):
                    for resource in as_list(st.get("Resource")):
                        out.append((action, json.dumps(resource, sort_keys=True), st.get("Condition")))
    return out


def object_key(resource_json):
    """The object key of an `arn:...:s3:::${Bucket}/<key>` resource (None for a bucket ARN)."""
    text = json.loads(resource_json)
    if isinstance(text, dict) and "Fn::Sub" in text:
        sub = text["Fn::Sub"]
        text = sub[0] if isinstance(sub, list) else sub
    if not isinstance(text, str) or "/" not in text.split(":::", 1)[-1]:
        return None
    return text.split(":::", 1)[-1].split("/", 1)[1]


def check_runtime_config(template):
    code = (ROOT / "src/lambda").glob("*.rs")
    source = "\n".join(p.read_text(encoding="utf-8") for p in code)
    params = template.get("Parameters") or {}
    check("runtime config: TorExitListUrl defaults to the Tor Project's bulk exit list over HTTPS",
          params.get("TorExitListUrl", {}).get("Default") == "https://check.torproject.org/torbulkexitlist")
    check("runtime config: ConfigKey empty by default (the packaged sesguard.toml, as before)",
          params.get("ConfigKey", {}).get("Default") == "")

    default = with_parameters(template, {})["Resources"]
    # -- the bucket: encrypted, versioned, public access blocked, TLS only
    bucket = props(default.get("ConfigBucket", {}))
    check("config bucket: created when ConfigBucketName is empty", "ConfigBucket" in default)
    sse = [r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
           for r in as_list((bucket.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration"))]
    check("config bucket: encrypted at rest (SSE)", bool(sse) and all(a in ("AES256", "aws:kms", "aws:kms:dsse") for a in sse), f"{sse}")
    check("config bucket: versioned", (bucket.get("VersioningConfiguration") or {}).get("Status") == "Enabled")
    block = bucket.get("PublicAccessBlockConfiguration") or {}
    check("config bucket: every public access blocked",
          all(block.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")),
          json.dumps(block))
    policies = [props(p) for p in of_type(default, "AWS::S3::BucketPolicy").values()
                if target(props(p).get("Bucket")) == "ConfigBucket"]
    tls = [st for p in policies for st in as_list(p.get("PolicyDocument", {}).get("Statement"))
           if st.get("Effect") == "Deny"
           and ((st.get("Condition") or {}).get("Bool") or {}).get("aws:SecureTransport") in ("false", False)]
    covered = {target(r) or json.dumps(r) for st in tls for r in as_list(st.get("Resource"))}
    check("config bucket: its policy denies every request without TLS, on the bucket and its objects",
          len(tls) == 1 and "s3:*" in as_list(tls[0].get("Action")) and len(covered) == 2, f"{tls}")
    given = with_parameters(template, {"ConfigBucketName": "my-config-bucket", **CONFIG_PARAMETERS})["Resources"]
    check("config bucket: an existing one by ConfigBucketName (none created, no policy put on it)",
          "ConfigBucket" not in given and not of_type(given, "AWS::S3::BucketPolicy"))

    # -- least privilege: the detectors read exactly the two objects, write nothing
    for parameters, label in (({}, "defaults"), (CONFIG_PARAMETERS, "ConfigKey set")):
        resources = with_parameters(template, {**TRAIL_PARAMETERS, **parameters})["Resources"]
        for role in ("SesguardFunctionRole", "TrailIngestFunctionRole"):
            grants = s3_grants(resources, role)
            config_bucket = [g for g in grants if "Trail" not in g[1]]
            objects = sorted(object_key(g[1]) for g in config_bucket if g[0] == "s3:GetObject")
            want = sorted([TOR_KEY] + (["${ConfigKey}"] if parameters else []))
            check(f"{role} ({label}): s3:GetObject on exactly the config objects {want}", objects == want, f"{config_bucket}")
            lists = [g for g in config_bucket if g[0] == "s3:ListBucket"]
            prefixes = [((g[2] or {}).get("StringEquals") or {}).get("s3:prefix") for g in lists]
            check(f"{role} ({label}): s3:ListBucket only for those keys (an s3:prefix condition)",
                  len(lists) == 1 and sorted(as_list(prefixes[0]), key=json.dumps) == sorted(
                      [TOR_KEY] + ([{"Ref": "ConfigKey"}] if parameters else []), key=json.dumps),
                  f"{lists}")
            writes = [g for g in config_bucket if g[0] not in ("s3:GetObject", "s3:ListBucket")]
            check(f"{role} ({label}): cannot write or delete in the configuration bucket", not writes, f"{writes}")
    off = with_parameters(template, {"TorExitListUrl": ""})
    off_resources = off["Resources"]
    check("runtime config: neither ConfigKey nor TorExitListUrl -> the detector's role has no S3 right",
          not s3_grants(off_resources, "SesguardFunctionRole"), f"{s3_grants(off_resources, 'SesguardFunctionRole')}")
    variables = (props(off_resources["SesguardFunction"]).get("Environment") or {}).get("Variables") or {}
    check("runtime config: ... and the packaged sesguard.toml, no SESGUARD_TOR_EXIT_LIST (the function as before)",
          variables.get("SESGUARD_CONFIG") == "sesguard.toml" and "SESGUARD_TOR_EXIT_LIST" not in variables, f"{variables}")
    tor_names = {"TorExitListFunction", "TorExitListFunctionRole", "TorExitListSchedule",
                 "TorExitListScheduleRole", "TorExitListAgeAlarm", "TorExitListLogGroup"}
    check("Tor list: TorExitListUrl empty -> no fetcher, schedule or alarm", not tor_names & set(off_resources),
          f"{sorted(tor_names & set(off_resources))}")
    check("Tor list: its resources with the default parameters", tor_names <= set(default),
          f"missing {sorted(tor_names - set(default))}")
    if not tor_names <= set(default):
        return

    # -- the fetcher: its own role, writes only the list
    fetcher = props(default["TorExitListFunction"])
    check("Tor list: the fetcher is the sesguard-tor-fetch binary (crates/lambda) with its own role",
          (default["TorExitListFunction"].get("Metadata") or {}).get("BuildProperties", {}).get("Binary") == "sesguard-tor-fetch"
          and 'name = "sesguard-tor-fetch"' in (ROOT / "crates/lambda/Cargo.toml").read_text()
          and target(fetcher.get("Role")) == "TorExitListFunctionRole")
    fetcher_env = set(((fetcher.get("Environment") or {}).get("Variables") or {}))
    check("Tor list: the fetcher's environment (the variables sesguard-tor-fetch reads)",
          fetcher_env == {"SESGUARD_TOR_SOURCE_URL", "SESGUARD_TOR_EXIT_LIST"}
          and '"SESGUARD_TOR_SOURCE_URL"' in source, f"{sorted(fetcher_env)}")
    grants = s3_grants(default, "TorExitListFunctionRole")
    keys = {(g[0], object_key(g[1])) for g in grants if g[0] != "s3:ListBucket"}
    check("Tor list: the fetcher may s3:PutObject and s3:GetObject the list's key only",
          keys == {("s3:PutObject", TOR_KEY), ("s3:GetObject", TOR_KEY)}, f"{grants}")
    lists = [g for g in grants if g[0] == "s3:ListBucket"]
    check("Tor list: the fetcher's s3:ListBucket is held to the list's key",
          len(lists) == 1 and ((lists[0][2] or {}).get("StringEquals") or {}).get("s3:prefix") == TOR_KEY, f"{lists}")
    other = [(w, st) for w, st in iam_statements(default) if w.startswith("TorExitListFunctionRole")
             and not any(isinstance(a, str) and (a.startswith("s3:") or a.startswith("logs:")) for a in as_list(st.get("Action")))]
    check("Tor list: the fetcher's role has no other right (no table, topic, queue)", not other, f"{other}")
    schedule = props(default["TorExitListSchedule"])
    check("Tor list: scheduled hourly, invoking the fetcher",
          schedule.get("ScheduleExpression") == "rate(1 hour)"
          and target((schedule.get("Target") or {}).get("Arn")) == "TorExitListFunction")
    invoke = [st for w, st in iam_statements(default) if w.startswith("TorExitListScheduleRole")]
    check("Tor list: the schedule's role may only invoke the fetcher",
          len(invoke) == 1 and as_list(invoke[0].get("Action")) == ["lambda:InvokeFunction"]
          and [target(r) for r in as_list(invoke[0].get("Resource"))] == ["TorExitListFunction"], f"{invoke}")
    trust = as_list(props(default["TorExitListScheduleRole"]).get("AssumeRolePolicyDocument", {}).get("Statement"))
    check("Tor list: only EventBridge Scheduler of this account assumes the schedule's role",
          len(trust) == 1 and (trust[0].get("Principal") or {}).get("Service") == "scheduler.amazonaws.com"
          and "aws:SourceAccount" in ((trust[0].get("Condition") or {}).get("StringEquals") or {}))

    # -- alarms: on metrics the code emits, to the health topic
    alarms = {props(a).get("MetricName"): props(a) for a in of_type(default, "AWS::CloudWatch::Alarm").values()}
    for metric, threshold in (("ConfigRejected", 0), ("ConfigUnreadable", 0), ("TorExitListAgeSeconds", 86400)):
        alarm = alarms.get(metric) or {}
        check(f"alarm: {metric} > {threshold} -> the health topic (a metric the function emits)",
              alarm.get("Namespace") == "sesguard" and alarm.get("Threshold") == threshold
              and alarm.get("ComparisonOperator") == "GreaterThanThreshold"
              and [target(a) for a in as_list(alarm.get("AlarmActions"))] == ["HealthTopic"]
              and f'"{metric}"' in source, json.dumps(alarm)[:300])


SECURITY_HUB_PRODUCT = (
    "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}:product/${AWS::AccountId}/default"
)
SECURITY_HUB_FUNCTIONS = {"SesguardFunction": "SesguardFunctionRole", "TrailIngestFunction": "TrailIngestFunctionRole"}


def check_security_hub(template):
    """EnableSecurityHub (issue 18): off by default; on, both functions (each publishes signals)
    get SESGUARD_SECURITY_HUB_PRODUCT_ARN and one statement: securityhub:BatchImportFindings on
    the account's own default product, nothing else of Security Hub."""
    param = (template.get("Parameters") or {}).get("EnableSecurityHub") or {}
    check("Security Hub: EnableSecurityHub is false by default, true or false",
          param.get("Default") == "false" and param.get("AllowedValues") == ["true", "false"],
          json.dumps(param))

    def hub_statements(resources):
        return [(where, st) for where, st in iam_statements(resources)
                if any(str(a).lower().startswith("securityhub:") for a in as_list(st.get("Action")))]

    def variable(resources, function):
        fn = props(resources.get(function, {}))
        return ((fn.get("Environment") or {}).get("Variables") or {}).get("SESGUARD_SECURITY_HUB_PRODUCT_ARN")

    for parameters in ({}, TRAIL_PARAMETERS):
        off = with_parameters(template, parameters)["Resources"]
        check(f"Security Hub: off by default, no statement and no variable ({len(parameters)} other parameters)",
              not hub_statements(off)
              and all(variable(off, f) is None for f in SECURITY_HUB_FUNCTIONS),
              f"{[w for w, _ in hub_statements(off)]}")
    on = with_parameters(template, {**TRAIL_PARAMETERS, "EnableSecurityHub": "true"})["Resources"]
    statements = hub_statements(on)
    for function, role in SECURITY_HUB_FUNCTIONS.items():
        mine = [st for where, st in statements if where.startswith(f"{role}/")]
        check(f"Security Hub: {role} gains exactly securityhub:BatchImportFindings on the account's default product",
              len(mine) == 1 and mine[0].get("Effect") == "Allow"
              and as_list(mine[0].get("Action")) == ["securityhub:BatchImportFindings"]
              and as_list(mine[0].get("Resource")) == [{"Fn::Sub": SECURITY_HUB_PRODUCT}]
              and not mine[0].get("Condition") and "NotAction" not in mine[0],
              json.dumps(plain(mine))[:300])
        check(f"Security Hub: {function} gets SESGUARD_SECURITY_HUB_PRODUCT_ARN, the same product",
              variable(on, function) == {"Fn::Sub": SECURITY_HUB_PRODUCT}, json.dumps(plain(variable(on, function))))
    check("Security Hub: no other role gains a Security Hub action",
          {w.split("/")[0] for w, _ in statements} == set(SECURITY_HUB_FUNCTIONS.values()),
          f"{sorted({w.split('/')[0] for w, _ in statements})}")


HEARTBEAT_RESOURCES = {"HeartbeatSchedule", "HeartbeatScheduleRole", "HeartbeatRunsAlarm",
                       "HeartbeatCanaryFailedAlarm"}


def check_heartbeat(template):
    """The pipeline heartbeat (issue 17, item 4): on by default every 15 minutes in the stack's
    region; the schedule invokes the detector with the request it recognises; its role alone may
    call ses:GetSendQuota, on "*" held to the heartbeat's regions; alarms on runs that stop and
    canary calls that fail, on metrics the function emits; HeartbeatMinutes 0 removes it all."""
    params = template.get("Parameters") or {}
    got = {k: (params.get(k) or {}).get("Default") for k in ("HeartbeatMinutes", "HeartbeatRegions", "HeartbeatMaxDelayMinutes")}
    check("heartbeat: parameters HeartbeatMinutes 15, HeartbeatRegions empty (the home region), HeartbeatMaxDelayMinutes 30",
          got == {"HeartbeatMinutes": 15, "HeartbeatRegions": "", "HeartbeatMaxDelayMinutes": 30}, f"{got}")
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src").rglob("*.rs"))
    request = re.search(r'pub const REQUEST: &str = r#"(.*?)"#;', (ROOT / "src/heartbeat.rs").read_text())
    marker = re.search(r'pub const MARKER: &str = "(.*?)";', (ROOT / "src/heartbeat.rs").read_text())
    caller = (ROOT / "crates/lambda/src/aws/ses.rs").read_text()
    check("heartbeat: the canary call is GetSendQuota with the marker the detector looks for",
          marker is not None and "heartbeat::MARKER" in caller and "Action=GetSendQuota" in caller
          and 'CALL: &str = "GetSendQuota"' in (ROOT / "src/heartbeat.rs").read_text())

    for parameters, regions in (({}, {"Ref": "AWS::Region"}),
                                ({"HeartbeatRegions": "us-east-1,eu-west-1"}, {"Ref": "HeartbeatRegions"})):
        resources = with_parameters(template, {**TRAIL_PARAMETERS, **parameters})["Resources"]
        label = "default regions" if not parameters else "HeartbeatRegions set"
        check(f"heartbeat ({label}): its resources", HEARTBEAT_RESOURCES <= set(resources),
              f"missing {sorted(HEARTBEAT_RESOURCES - set(resources))}")
        if not HEARTBEAT_RESOURCES <= set(resources):
            return
        variables = (props(resources["SesguardFunction"]).get("Environment") or {}).get("Variables") or {}
        check(f"heartbeat ({label}): the detector knows its own role, the regions and the delay",
              target(variables.get("SESGUARD_HEARTBEAT_ROLE_ARN")) == "SesguardFunctionRole"
              and variables.get("SESGUARD_HEARTBEAT_REGIONS") == regions
              and target(variables.get("SESGUARD_HEARTBEAT_MAX_DELAY_MINUTES")) == "HeartbeatMaxDelayMinutes"
              and '"SESGUARD_HEARTBEAT_REGIONS"' in source and '"SESGUARD_HEARTBEAT_MAX_DELAY_MINUTES"' in source,
              json.dumps(plain({k: v for k, v in variables.items() if "HEARTBEAT" in k})))
        trail = (props(resources["TrailIngestFunction"]).get("Environment") or {}).get("Variables") or {}
        check(f"heartbeat ({label}): the S3 path knows the canary's role (to skip it), and makes no heartbeat",
              target(trail.get("SESGUARD_HEARTBEAT_ROLE_ARN")) == "SesguardFunctionRole"
              and not HEARTBEAT_RUN_VARS & set(trail))
        canary = [(w, st) for w, st in iam_statements(resources)
                  if any(str(a).lower().startswith("ses:") for a in as_list(st.get("Action")))]
        check(f"heartbeat ({label}): only the detector's role may call SES, and only ses:GetSendQuota",
              [w.split("/")[0] for w, _ in canary] == ["SesguardFunctionRole"]
              and all(as_list(st.get("Action")) == ["ses:GetSendQuota"] for _, st in canary),
              json.dumps(plain(canary))[:300])
        st = canary[0][1] if canary else {}
        held = ((st.get("Condition") or {}).get("StringEquals") or {}).get("aws:RequestedRegion")
        check(f"heartbeat ({label}): its Resource \"*\" is held to the heartbeat's regions (aws:RequestedRegion)",
              as_list(st.get("Resource")) == ["*"] and st.get("Effect") == "Allow"
              and held == {"Fn::Split": [",", regions]}, json.dumps(plain(st))[:300])
        schedule = props(resources["HeartbeatSchedule"])
        tgt = schedule.get("Target") or {}
        check(f"heartbeat ({label}): every HeartbeatMinutes, invoking the detector with the request it recognises",
              schedule.get("ScheduleExpression") == {"Fn::Sub": "rate(${HeartbeatMinutes} minutes)"}
              and target(tgt.get("Arn")) == "SesguardFunction" and request is not None
              and json.loads(tgt.get("Input") or "null") == json.loads(request.group(1))
              and (schedule.get("FlexibleTimeWindow") or {}).get("Mode") == "OFF",
              json.dumps(plain(schedule))[:300])
        invoke = [st for w, st in iam_statements(resources) if w.startswith("HeartbeatScheduleRole")]
        check(f"heartbeat ({label}): the schedule's role may only invoke the detector",
              len(invoke) == 1 and as_list(invoke[0].get("Action")) == ["lambda:InvokeFunction"]
              and [target(r) for r in as_list(invoke[0].get("Resource"))] == ["SesguardFunction"], f"{invoke}")
        trust = as_list(props(resources["HeartbeatScheduleRole"]).get("AssumeRolePolicyDocument", {}).get("Statement"))
        check(f"heartbeat ({label}): only EventBridge Scheduler of this account assumes the schedule's role",
              len(trust) == 1 and (trust[0].get("Principal") or {}).get("Service") == "scheduler.amazonaws.com"
              and "aws:SourceAccount" in ((trust[0].get("Condition") or {}).get("StringEquals") or {}))
        alarms = {props(a).get("MetricName"): props(a) for a in of_type(resources, "AWS::CloudWatch::Alarm").values()}
        runs = alarms.get("HeartbeatRuns") or {}
        check(f"heartbeat ({label}): alarm when runs stop (no HeartbeatRuns, missing data breaching) -> the health topic",
              runs.get("Namespace") == "sesguard" and runs.get("ComparisonOperator") == "LessThanThreshold"
              and runs.get("Threshold") == 1 and runs.get("TreatMissingData") == "breaching"
              and [target(a) for a in as_list(runs.get("AlarmActions"))] == ["HealthTopic"]
              and '"HeartbeatRuns"' in source, json.dumps(runs)[:300])
        failed = alarms.get("HeartbeatCanaryFailed") or {}
        check(f"heartbeat ({label}): alarm on a failed canary call -> the health topic",
              failed.get("Namespace") == "sesguard" and failed.get("Threshold") == 0
              and failed.get("ComparisonOperator") == "GreaterThanThreshold"
              and [target(a) for a in as_list(failed.get("AlarmActions"))] == ["HealthTopic"]
              and '"HeartbeatCanaryFailed"' in source, json.dumps(failed)[:300])
    every_minute = with_parameters(template, {"HeartbeatMinutes": "1"})["Resources"]
    check("heartbeat: HeartbeatMinutes 1 is rate(1 minute) (EventBridge Scheduler's singular)",
          props(every_minute["HeartbeatSchedule"]).get("ScheduleExpression") == "rate(1 minute)")
    off = with_parameters(template, {**TRAIL_PARAMETERS, "HeartbeatMinutes": "0"})["Resources"]
    off_vars = {name: set(((props(off[name]).get("Environment") or {}).get("Variables") or {}))
                for name in ("SesguardFunction", "TrailIngestFunction")}
    check("heartbeat: HeartbeatMinutes 0 -> no schedule, alarms, SES right or heartbeat variable",
          not HEARTBEAT_RESOURCES & set(off)
          and not any(str(a).startswith("ses:") for _, st in iam_statements(off) for a in as_list(st.get("Action")))
          and not any("HEARTBEAT" in v for vs in off_vars.values() for v in vs),
          f"{sorted(HEARTBEAT_RESOURCES & set(off))} {off_vars}")


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    binary = sys.argv[1]
    events_dir = Path(sys.argv[2]) if len(sys.argv) == 3 else ROOT / "events"
    template = load(TEMPLATE)
    check("template.yaml is a SAM template", template.get("Transform") == "AWS::Serverless-2016-10-31")
    patterns = check_patterns(template.get("Resources", {}), binary)
    check_events(patterns, events_dir)
    # The deployment as created with the default parameters (the optional S3 ingestion off);
    # check_trail_ingestion checks it on.
    check_deployment(with_parameters(template, {}))
    check_trail_ingestion(template)
    # Issue 17: the configuration bucket, the Tor exit list fetcher, their rights and alarms.
    check_runtime_config(template)
    check_security_hub(template)
    # Issue 17, item 4: the pipeline heartbeat's schedule, rights and alarms.
    check_heartbeat(template)
    # Issue 14: the detector's own bus, forwarder.yaml, and the routing between them.
    expected = json.loads(subprocess.run([binary, "rules", "--format", "eventbridge"], check=True,
                                         capture_output=True, text=True).stdout)
    check_organisation(check, template, expected, events_dir)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
