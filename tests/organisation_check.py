"""The organisation-wide deployment (issue 14): template.yaml's own event bus and forwarder.yaml.

Called by tests/template_check.py (same reporter, same counts); on its own block so that the
checks of other parts of the template stay apart:

1. template.yaml's event bus: its rules carry the detector's patterns (checked with the default
   bus's in template_check.check_patterns); its resource policy, for every combination of the
   OrganizationId / SourceAccountIds parameters, grants events:PutEvents on the bus alone, never
   to "Principal": "*" without the aws:PrincipalOrgID condition, and is absent by default.
2. forwarder.yaml: no code; per region (us-east-1 and another) its rules on the default bus have
   exactly the patterns of `sesguard rules --format eventbridge` (the IAM one in us-east-1 only),
   the CloudTrail state, the detector's bus as target through a role that may only
   events:PutEvents on that bus, a retry policy and an encrypted, alarmed dead-letter queue that
   EventBridge may write to for these rules only.
3. Through moto's EventBridge: every events/ sample put on the default bus of a member account
   (another account id) in us-east-1 and in eu-west-1, with the forwarder's rules, arrives on the
   detector's bus in a third region and is delivered by the detector's bus rules to a queue
   (`filtered-*` never; IAM samples from us-east-1 only), with source, detail-type and detail
   unchanged. moto does not evaluate the bus policy, the role or the rule state (any event put
   is matched): those are the static checks of 1 and 2.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from cfn_template import ROOT, as_list, is_intrinsic, kept_out, load, normalized, of_type, plain, props, target

FORWARDER = Path(os.environ.get("SESGUARD_FORWARDER_TEMPLATE") or ROOT / "forwarder.yaml")
CLOUDTRAIL_STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
# moto's accounts (x-moto-account-id): the detector's (moto's default) and a member's.
DETECTOR_ACCOUNT = "123456789012"
MEMBER_ACCOUNT = "222233334444"
DETECTOR_REGION = "eu-central-1"
MEMBER_REGIONS = ("us-east-1", "eu-west-1")
NO_VALUE = object()


def bus_of(rule):
    """"default", or the logical id of the template's bus an AWS::Events::Rule is on."""
    name = props(rule).get("EventBusName")
    if name in (None, "default"):
        return "default"
    return target(name) or json.dumps(plain(name))


def rule_pattern(rule):
    pattern = plain(props(rule).get("EventPattern"))
    return json.loads(pattern) if isinstance(pattern, str) else pattern


def check_bus_patterns(check, bus, rules, expected):
    """The rules on `bus` carry exactly the patterns `expected` (one rule per pattern)."""
    got = sorted((json.dumps(normalized(rule_pattern(r)), sort_keys=True) for r in rules.values()))
    want = sorted(json.dumps(normalized(p), sort_keys=True) for p in expected)
    check(f"rules on {bus}: one per pattern, each equal to `sesguard rules --format eventbridge`",
          got == want, f"{sorted(rules)} carry {got}, the rules read {want}")


# ------------------------------------------------------------------ conditions


class Conditions:
    """Evaluates a template's Conditions and Fn::If for given parameters and pseudo parameters."""

    def __init__(self, template, parameters=None, region="us-east-1", account=DETECTOR_ACCOUNT):
        self.template = template
        self.values = {k: str(v.get("Default", "")) for k, v in (template.get("Parameters") or {}).items()}
        self.values.update({k: str(v) for k, v in (parameters or {}).items()})
        self.values.update({"AWS::Region": region, "AWS::AccountId": account,
                            "AWS::Partition": "aws", "AWS::StackName": "sesguard"})
        self.cache = {}

    def value(self, v):
        if isinstance(v, dict) and "Ref" in v:
            return self.values[v["Ref"]]
        if isinstance(v, dict) and "Condition" in v:
            return self.condition(v["Condition"])
        if isinstance(v, dict) and len(v) == 1:
            (key, arg), = v.items()
            if key == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
        return v

    def condition(self, name):
        if name not in self.cache:
            self.cache[name] = bool(self.value(self.template["Conditions"][name]))
        return self.cache[name]

    def resolve(self, v):
        """`v` with every Fn::If chosen and AWS::NoValue dropped (other intrinsics kept)."""
        if isinstance(v, list):
            return [x for x in (self.resolve(x) for x in v) if x is not NO_VALUE]
        if isinstance(v, dict):
            if v == {"Ref": "AWS::NoValue"}:
                return NO_VALUE
            if is_intrinsic(v) and "Fn::If" in v:
                name, yes, no = v["Fn::If"]
                return self.resolve(yes if self.condition(name) else no)
            out = {}
            for k, x in v.items():
                x = self.resolve(x)
                if x is not NO_VALUE:
                    out[k] = x
            return out
        return v

    def resources(self):
        """The resources deployed with these parameters, their Fn::If resolved."""
        return {name: self.resolve(r) for name, r in (self.template.get("Resources") or {}).items()
                if "Condition" not in r or self.condition(r["Condition"])}


def sub(value, values):
    """A string or an Fn::Sub of parameters and pseudo parameters, as CloudFormation makes it."""
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for k, v in values.items():
            text = text.replace("${" + k + "}", v)
        return text
    return value


# ------------------------------------------------------------------ 1. the detector's bus


def check_detector_bus(check, template):
    buses = of_type(template.get("Resources") or {}, "AWS::Events::EventBus")
    if not check("template.yaml: one event bus of its own (for the forwarders)", len(buses) == 1,
                 f"{sorted(buses)}"):
        return
    bus_id = next(iter(buses))
    outputs = [target(o.get("Value")) for o in (template.get("Outputs") or {}).values()]
    check(f"{bus_id}: its ARN is an output (forwarder.yaml's DetectorEventBusArn)", bus_id in outputs)
    for name, rule in sorted(of_type(template["Resources"], "AWS::Events::Rule").items()):
        if bus_of(rule) == bus_id:
            check(f"{name}: on {bus_id}, targets the function", [
                target(t.get("Arn")) for t in props(rule).get("Targets") or []] == ["SesguardFunction"])
    org, accounts = "o-abcdefghij", "111122223333,444455556666"
    cases = {
        "defaults": {},
        "OrganizationId": {"OrganizationId": org},
        "SourceAccountIds": {"SourceAccountIds": accounts},
        "both": {"OrganizationId": org, "SourceAccountIds": accounts},
    }
    for case, params in cases.items():
        conditions = Conditions(template, params)
        values = conditions.values
        resources = conditions.resources()
        policy = props(resources[bus_id]).get("Policy")
        if not params:
            check(f"{bus_id} ({case}): no resource policy (this account only: today's deployment)",
                  policy is None, json.dumps(policy))
            continue
        statements = as_list((policy or {}).get("Statement"))
        check(f"{bus_id} ({case}): one statement per parameter given",
              len(statements) == len(params), json.dumps(statements)[:300])
        for st in statements:
            sid = st.get("Sid", "?")
            principal = st.get("Principal")
            cond = (st.get("Condition") or {}).get("StringEquals") or {}
            org_condition = cond.get("aws:PrincipalOrgID") == {"Ref": "OrganizationId"}
            check(f"{bus_id} ({case}) {sid}: no \"Principal\": \"*\" without the organisation condition",
                  st.get("Effect") == "Allow" and (principal not in ("*", {"AWS": "*"}) or org_condition),
                  json.dumps(st))
            bus_arn = (f"arn:aws:events:{values['AWS::Region']}:{values['AWS::AccountId']}:event-bus/"
                       + sub(props(resources[bus_id]).get("Name"), values))
            check(f"{bus_id} ({case}) {sid}: events:PutEvents on this bus only",
                  as_list(st.get("Action")) == ["events:PutEvents"]
                  and [sub(r, values) for r in as_list(st.get("Resource"))] == [bus_arn],
                  json.dumps(st))
            if principal != "*":
                check(f"{bus_id} ({case}) {sid}: the principals are the SourceAccountIds",
                      principal == {"AWS": {"Fn::Split": [",", {"Ref": "SourceAccountIds"}]}},
                      json.dumps(principal))


# ------------------------------------------------------------------ 2. forwarder.yaml


def forwarder_rules(forwarder, region):
    resources = Conditions(forwarder, {"DetectorEventBusArn": "arn:aws:events:eu-central-1:"
                                       f"{DETECTOR_ACCOUNT}:event-bus/sesguard-sesguard"},
                           region=region, account=MEMBER_ACCOUNT).resources()
    return resources, of_type(resources, "AWS::Events::Rule")


def check_forwarder(check, forwarder, expected):
    all_resources = forwarder.get("Resources") or {}
    check("forwarder.yaml: no code (no functions, no transform)",
          "Transform" not in forwarder and not [n for n, r in all_resources.items()
                                                if "Lambda" in r.get("Type", "")
                                                or "Serverless" in r.get("Type", "")])
    for region in MEMBER_REGIONS:
        resources, rules = forwarder_rules(forwarder, region)
        want = [p for p in expected if region == "us-east-1" or p.get("source") != ["aws.iam"]]
        check_bus_patterns(check, f"forwarder.yaml's default bus in {region}"
                           + ("" if region == "us-east-1" else " (no IAM: us-east-1 only)"),
                           rules, want)
        names = sorted(props(r).get("Name", "") for r in rules.values())
        want_names = sorted(["sesguard-forward-ses", "sesguard-forward-servicequotas"]
                            + (["sesguard-forward-iam"] if region == "us-east-1" else []))
        check(f"forwarder.yaml ({region}): rules named as docs/deploy.md's check reads them",
              names == want_names, f"{names}")
        queues = of_type(resources, "AWS::SQS::Queue")
        policies = of_type(resources, "AWS::SQS::QueuePolicy")
        roles = of_type(resources, "AWS::IAM::Role")
        alarms = [props(a) for a in of_type(resources, "AWS::CloudWatch::Alarm").values()]
        for name, rule in sorted(rules.items()):
            p = props(rule)
            where = f"forwarder.yaml {name} ({region})"
            check(f"{where}: State {CLOUDTRAIL_STATE}, default bus",
                  p.get("State") == CLOUDTRAIL_STATE and bus_of(rule) == "default")
            targets = p.get("Targets") or []
            t = targets[0] if len(targets) == 1 else {}
            check(f"{where}: one target, the DetectorEventBusArn, through the template's role",
                  t.get("Arn") == {"Ref": "DetectorEventBusArn"} and target(t.get("RoleArn")) in roles,
                  json.dumps(targets)[:300])
            retry = t.get("RetryPolicy") or {}
            check(f"{where}: retry policy", "MaximumRetryAttempts" in retry
                  and "MaximumEventAgeInSeconds" in retry, json.dumps(retry))
            dlq = target((t.get("DeadLetterConfig") or {}).get("Arn"))
            qp = props(queues.get(dlq, {}))
            check(f"{where}: encrypted SQS dead-letter queue",
                  dlq in queues and (qp.get("SqsManagedSseEnabled") is True or bool(qp.get("KmsMasterKeyId"))),
                  f"{dlq}")
            allowed = any(
                st.get("Effect") == "Allow"
                and (st.get("Principal") or {}).get("Service") == "events.amazonaws.com"
                and as_list(st.get("Action")) == ["sqs:SendMessage"]
                and name in [target(a) for c in (st.get("Condition") or {}).values()
                             for a in as_list(c.get("aws:SourceArn"))]
                for pol in policies.values()
                if dlq in [target(q) for q in as_list(props(pol).get("Queues"))]
                for st in as_list(props(pol).get("PolicyDocument", {}).get("Statement")))
            check(f"{where}: the DLQ lets events.amazonaws.com send for this rule only (SourceArn)", allowed)
            check(f"{where}: an alarm on its DLQ (messages visible > 0)", any(
                a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
                and dlq in [target(d.get("Value")) for d in a.get("Dimensions") or []]
                and a.get("Threshold") == 0 and a.get("ComparisonOperator") == "GreaterThanThreshold"
                for a in alarms))
        for name, pol in sorted(policies.items()):
            for i, st in enumerate(as_list(props(pol).get("PolicyDocument", {}).get("Statement"))):
                principal = st.get("Principal")
                tls_deny = (st.get("Effect") == "Deny"
                            and (st.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport") == "false")
                check(f"forwarder.yaml {name}[{i}] ({region}): a named principal with a condition, "
                      "or a TLS-only deny",
                      tls_deny or (principal not in ("*", {"AWS": "*"}) and bool(st.get("Condition"))))
    # The role: PutEvents on the detector's bus, nothing else, for EventBridge of this account.
    roles = of_type(all_resources, "AWS::IAM::Role")
    others = [n for n, r in all_resources.items() if r.get("Type") in
              ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group")]
    check("forwarder.yaml: one IAM role, no other IAM policy or principal",
          len(roles) == 1 and not others, f"{sorted(roles)} {others}")
    for name, role in roles.items():
        p = props(role)
        trust = as_list((p.get("AssumeRolePolicyDocument") or {}).get("Statement"))
        check(f"forwarder.yaml {name}: only EventBridge of this account may assume it",
              len(trust) == 1 and trust[0].get("Principal") == {"Service": "events.amazonaws.com"}
              and "aws:SourceAccount" in json.dumps(trust[0].get("Condition")), json.dumps(trust))
        statements = [st for pol in p.get("Policies") or []
                      for st in as_list((pol.get("PolicyDocument") or {}).get("Statement"))]
        check(f"forwarder.yaml {name}: its statements allow events:PutEvents on DetectorEventBusArn, nothing else",
              bool(statements) and not p.get("ManagedPolicyArns") and all(
                  st.get("Effect") == "Allow" and as_list(st.get("Action")) == ["events:PutEvents"]
                  and as_list(st.get("Resource")) == [{"Ref": "DetectorEventBusArn"}]
                  and "NotAction" not in st and "NotResource" not in st for st in statements),
              json.dumps(statements))


# ------------------------------------------------------------------ 3. through moto


def check_routing(check, template, forwarder, expected, events_dir: Path):
    import boto3

    endpoint = os.environ.get("SESGUARD_TEST_ENDPOINT")
    if not check("organisation routing: SESGUARD_TEST_ENDPOINT is set", bool(endpoint)):
        return

    def client(service, account, region):
        c = boto3.client(service, endpoint_url=endpoint, region_name=region)

        def header(request, **_):
            request.headers["x-moto-account-id"] = account

        c.meta.events.register("before-send.*.*", header)
        return c

    run = uuid.uuid4().hex[:8]
    events = client("events", DETECTOR_ACCOUNT, DETECTOR_REGION)
    sqs = client("sqs", DETECTOR_ACCOUNT, DETECTOR_REGION)
    bus_name = f"sesguard-org-check-{run}"
    bus_arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
    queue_url = sqs.create_queue(QueueName=f"sesguard-org-check-{run}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    cleanup = []
    try:
        bus_id = next(iter(of_type(template["Resources"], "AWS::Events::EventBus")), None)
        detector_rules = {n: r for n, r in of_type(template["Resources"], "AWS::Events::Rule").items()
                          if bus_of(r) == bus_id}
        check("organisation routing: the detector's bus has rules", bool(detector_rules))
        for i, (name, rule) in enumerate(sorted(detector_rules.items())):
            rule_name = f"{bus_name}-{i}"
            events.put_rule(Name=rule_name, EventBusName=bus_name, State=CLOUDTRAIL_STATE,
                            EventPattern=json.dumps(rule_pattern(rule)))
            events.put_targets(Rule=rule_name, EventBusName=bus_name,
                               Targets=[{"Id": "queue", "Arn": queue_arn}])
            cleanup.append((events, rule_name, bus_name))
        files = sorted(p for p in events_dir.glob("*.json") if p.is_file())
        for region in MEMBER_REGIONS:
            member = client("events", MEMBER_ACCOUNT, region)
            _, rules = forwarder_rules(forwarder, region)
            role = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/sesguard-forwarder"
            for i, (name, rule) in enumerate(sorted(rules.items())):
                rule_name = f"sesguard-forwarder-{run}-{i}"
                member.put_rule(Name=rule_name, EventBusName="default", State=CLOUDTRAIL_STATE,
                                EventPattern=json.dumps(rule_pattern(rule)))
                member.put_targets(Rule=rule_name, EventBusName="default",
                                   Targets=[{"Id": "sesguard-bus", "Arn": bus_arn, "RoleArn": role}])
                cleanup.append((member, rule_name, "default"))
            sent = {}
            for path in files:
                envelope = json.loads(path.read_text(encoding="utf-8"))
                detail = dict(envelope["detail"])
                detail["eventID"] = f"{detail['eventID']}-{region}"
                entry = {"Source": envelope["source"], "DetailType": envelope["detail-type"],
                         "Detail": json.dumps(detail), "EventBusName": "default"}
                result = member.put_events(Entries=[entry])
                if result.get("FailedEntryCount"):
                    check(f"{path.name} ({region}): put_events accepted it", False, json.dumps(result))
                sent[detail["eventID"]] = (path.name, envelope["source"], envelope["detail-type"], detail)
            arrived = {}
            empty = 0
            while empty < 2:
                got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=1).get("Messages", [])
                if not got:
                    empty += 1
                    continue
                for m in got:
                    body = json.loads(m["Body"])
                    arrived.setdefault(body.get("detail", {}).get("eventID"), []).append(body)
                sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
            for event_id, (file, source, detail_type, detail) in sorted(sent.items()):
                bodies = arrived.get(event_id, [])
                if kept_out(file):
                    check(f"{file} from {region}: not forwarded", not bodies, f"{len(bodies)} arrived")
                elif source == "aws.iam" and region != "us-east-1":
                    check(f"{file} from {region}: not forwarded (IAM from us-east-1 only)", not bodies,
                          f"{len(bodies)} arrived")
                else:
                    ok = (len(bodies) == 1 and bodies[0].get("source") == source
                          and bodies[0].get("detail-type") == detail_type and bodies[0].get("detail") == detail)
                    check(f"{file} from {MEMBER_ACCOUNT}/{region}: forwarded to the detector's bus "
                          f"({DETECTOR_ACCOUNT}/{DETECTOR_REGION}) and delivered once, unchanged", ok,
                          f"{len(bodies)} arrived" + (f": {json.dumps(bodies[0])[:300]}" if bodies else ""))
            unknown = set(arrived) - set(sent)
            check(f"from {region}: nothing else arrived", not unknown, f"{unknown}")
            for member_client, rule_name, bus in [c for c in cleanup if c[2] == "default"]:
                member_client.remove_targets(Rule=rule_name, EventBusName=bus, Ids=["sesguard-bus"])
                member_client.delete_rule(Name=rule_name, EventBusName=bus)
            cleanup = [c for c in cleanup if c[2] != "default"]
        print("NOTE moto does not evaluate the bus policy, the forwarder's role or the rule state "
              "(it matches every event put): checked statically above; check the real delivery "
              "after deploying (docs/deploy.md, Deploy across an organisation)", flush=True)
    finally:
        for c, rule_name, bus in cleanup:
            target_id = "queue" if bus != "default" else "sesguard-bus"
            c.remove_targets(Rule=rule_name, EventBusName=bus, Ids=[target_id])
            c.delete_rule(Name=rule_name, EventBusName=bus)
        events.delete_event_bus(Name=bus_name)
        sqs.delete_queue(QueueUrl=queue_url)


def check_organisation(check, template, expected, events_dir: Path):
    """All of the above: `expected` is `sesguard rules --format eventbridge`."""
    check_detector_bus(check, template)
    if not check(f"{FORWARDER.name} exists", FORWARDER.is_file()):
        return
    forwarder = load(FORWARDER)
    check_forwarder(check, forwarder, expected)
    check_routing(check, template, forwarder, expected, events_dir)
