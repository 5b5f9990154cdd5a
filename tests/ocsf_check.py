"""`sesguard scan --format ocsf` against the OCSF 1.5.0 schema (issue 18).

    python tests/ocsf_check.py ./target/debug/sesguard

Every signal of `events/`, of the test scenarios and of a hostile event is printed as an OCSF
Detection Finding, and every finding must pass the validator:

- the OCSF 1.5.0 models of `pydantic-ocsf` (pinned in scripts/test.sh; built from the OCSF
  1.5.0 schema export it ships), in strict mode: required attributes, types, enum values;
- no attribute the schema does not define, at any depth (those models keep unknown attributes
  aside instead of rejecting them, so this walks every object and rejects any), except the
  `cloud` profile's `cloud` when `metadata.profiles` declares it (validated as the Cloud object)
  and the free-form `unmapped`;
- the Detection Finding's constants: class_uid 2004, category_uid 2, type_uid = class_uid * 100 +
  activity_id, metadata.version 1.5.0, the severity caption of severity_id.

The validator must be able to fail: broken findings (a required attribute missing, a wrong type,
an unknown enum value, an attribute the schema does not have, a wrong class) are rejected.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile

from pydantic import BaseModel, ValidationError

from checks import Checks

from ocsf.v1_5_0 import objects as ocsf_objects
from ocsf.v1_5_0.events import DetectionFinding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEVERITIES = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal"}
# Attributes a profile adds to the class, and the object that validates each.
PROFILE_ATTRIBUTES = {"cloud": {"cloud": ocsf_objects.Cloud}}


def unknown_attributes(model, path: str, out: list[str]) -> list[str]:
    """Paths of the attributes the schema does not define (pydantic-ocsf keeps them as extras)."""
    if isinstance(model, BaseModel):
        for name in (model.model_extra or {}):
            out.append(f"{path}.{name}")
        for name in type(model).model_fields:
            if path == "" and name == "unmapped":
                continue  # free-form by definition
            unknown_attributes(getattr(model, name), f"{path}.{name}", out)
    elif isinstance(model, list):
        for i, item in enumerate(model):
            unknown_attributes(item, f"{path}[{i}]", out)
    return out


def problems(line: str) -> list[str]:
    """Why `line` is not a valid OCSF 1.5.0 Detection Finding (empty when it is)."""
    try:
        finding = json.loads(line)
    except json.JSONDecodeError as err:
        return [f"not JSON: {err}"]
    try:
        model = DetectionFinding.model_validate_json(line, strict=True)
    except ValidationError as err:
        return [f"schema: {e['loc']}: {e['msg']}" for e in err.errors()]
    found: list[str] = []
    profiles = finding.get("metadata", {}).get("profiles") or []
    for name in list(model.model_extra or {}):
        validator = next(
            (attrs[name] for p, attrs in PROFILE_ATTRIBUTES.items() if p in profiles and name in attrs),
            None,
        )
        if validator is None:
            found.append(f"unknown attribute .{name} (no declared profile defines it)")
            continue
        try:
            unknown_attributes(validator.model_validate_json(json.dumps(finding[name]), strict=True), f".{name}", found)
        except ValidationError as err:
            found += [f"schema: {name}.{e['loc']}: {e['msg']}" for e in err.errors()]
    for name in list(model.model_extra or {}):
        del model.model_extra[name]
    found += [f"unknown attribute {p}" for p in unknown_attributes(model, "", [])]
    if finding.get("class_uid") != 2004:
        found.append(f"class_uid {finding.get('class_uid')!r}, not 2004 (Detection Finding)")
    if finding.get("category_uid") != 2:
        found.append(f"category_uid {finding.get('category_uid')!r}, not 2 (Findings)")
    if finding.get("type_uid") != 2004 * 100 + (finding.get("activity_id") or 0):
        found.append(f"type_uid {finding.get('type_uid')!r} is not class_uid * 100 + activity_id")
    if finding.get("metadata", {}).get("version") != "1.5.0":
        found.append(f"metadata.version {finding.get('metadata', {}).get('version')!r}")
    if finding.get("severity") != SEVERITIES.get(finding.get("severity_id")):
        found.append(f"severity {finding.get('severity')!r} is not the caption of severity_id")
    return found


def scan(binary: str, fmt: str, *paths: str) -> list[str]:
    # Exit 1 is expected for the scenarios that hold malformed events: the rest is printed.
    run = subprocess.run(
        [binary, "scan", "--quiet", "--format", fmt, *paths],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    if run.returncode not in (0, 1):
        raise SystemExit(f"sesguard scan {' '.join(paths)} exited {run.returncode}: {run.stderr}")
    return [line for line in run.stdout.splitlines() if line.strip()]


def hostile_event(directory: str) -> str:
    """A record whose attacker-chosen strings are as bad as they get: line breaks, markdown,
    bidirectional overrides, a NUL, a 5 MB identity."""
    record = {
        "eventVersion": "1.08", "eventSource": "ses.amazonaws.com", "eventName": "VerifyEmailIdentity",
        "eventTime": "2026-03-02T09:00:00Z", "eventID": "hostile-1", "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333", "sourceIPAddress": "ses.amazonaws.com",
        "userAgent": "**[click](http://evil.example)**\n# heading",
        "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                         "arn": "arn:aws:iam::111122223333:user/\u202ex\r\nBcc: y"},
        "requestParameters": {"emailAddress": "é" + "a" * (5 * 1024 * 1024) + "@example.com\u0000"},
    }
    path = os.path.join(directory, "hostile.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f)
    return path


def main() -> int:
    binary = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/sesguard")
    checks = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [
            ("events/", 30),
            ("tests/scenarios/", 1),
            (hostile_event(tmp), 1),
        ]
        good = None
        for path, at_least in inputs:
            name = "a hostile event" if os.path.isabs(path) else path
            findings = scan(binary, "ocsf", path)
            signals = scan(binary, "jsonl", path)
            checks.check(
                f"{name}: one finding per signal ({len(findings)}), at least {at_least}",
                len(findings) == len(signals) and len(findings) >= at_least,
                f"{len(findings)} findings, {len(signals)} signals",
            )
            ids = [json.loads(f).get("finding_info", {}).get("uid") for f in findings]
            checks.check(
                f"{name}: finding_info.uid is the signal_id, in order",
                ids == [json.loads(s)["signal_id"] for s in signals],
            )
            bad = [(i, p) for i, f in enumerate(findings) if (p := problems(f))]
            checks.check(
                f"{name}: every finding is a valid OCSF 1.5.0 Detection Finding",
                not bad,
                "; ".join(f"finding {i}: {p[:3]}" for i, p in bad[:3]),
            )
            if good is None and findings:
                good = json.loads(findings[0])
    if good is None:
        checks.check("a finding to break", False, "scan printed none")
        return checks.finish()

    def broken(edit) -> str:
        finding = copy.deepcopy(good)
        edit(finding)
        return json.dumps(finding)

    cases = {
        "finding_info.uid missing": lambda f: f["finding_info"].pop("uid"),
        "time as text": lambda f: f.update(time="2026-03-02T09:40:00Z"),
        "severity_id 42 (no such severity)": lambda f: f.update(severity_id=42),
        "an attribute OCSF does not have (actor.user.arn)": lambda f: f["evidences"][0]["actor"]["user"].update(arn="x"),
        "a top-level attribute of no declared profile": lambda f: f.update(signal_id="x"),
        "cloud without the cloud profile declared": lambda f: f["metadata"].update(profiles=[]),
        "cloud.provider missing": lambda f: f["cloud"].pop("provider"),
        "class_uid 2001 (Security Finding)": lambda f: f.update(class_uid=2001),
        "severity caption of another severity_id": lambda f: f.update(severity="Low"),
    }
    for what, edit in cases.items():
        found = problems(broken(edit))
        checks.check(f"rejected: {what}", bool(found), "the validator accepted it")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
