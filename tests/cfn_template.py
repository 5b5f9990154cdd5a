"""template.yaml as plain Python data, for the Python tests (template_check.py, e2e_lambda.py).

The CloudFormation short forms (`!Ref`, `!GetAtt`, `!Sub`, ...) are read by cfn-lint's YAML loader
into their long forms (`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`, ...); `load` returns the template
as plain dicts and lists. `Resolver` turns the intrinsic functions the tests meet into values (a
`Ref` to a resource the test created, a parameter's default, a pseudo parameter, a `Fn::Sub` of
those) and fails, naming the value, on anything else.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


# Samples of events/ that name a call the rules read but that the event patterns keep out: IAM
# policy writes whose policy cannot grant SES sending (the narrowing of
# src/rules/full_access_granted.rs; the rule dismisses them too, and `sesguard scan` gives them no
# signal). Named here, not derived from the patterns, so the check can fail.
NARROWED_OUT = frozenset({
    "quiet-iam-AttachGroupPolicy-AdministratorAccess.json",
    "quiet-iam-AttachRolePolicy-CloudWatchReadOnlyAccess.json",
    "quiet-iam-AttachUserPolicy-AmazonSESReadOnlyAccess.json",
    "quiet-iam-PutGroupPolicy-star.json",
})


def kept_out(sample_name: str) -> bool:
    """Whether the sample of events/ named so must not pass the event patterns."""
    return sample_name.startswith("filtered-") or sample_name in NARROWED_OUT


def pattern_call_names(detail) -> list:
    """The eventNames an event pattern's `detail` names, in it or in its `$or` alternatives."""
    detail = detail or {}
    names = list(as_list(detail.get("eventName")))
    for alternative in as_list(detail.get("$or")):
        names.extend(as_list((alternative or {}).get("eventName")))
    return names


def plain(value):
    """The cfn-lint node classes as plain dicts/lists (json round trip)."""
    return json.loads(json.dumps(value))


def load(path=TEMPLATE) -> dict:
    """The template at `path`, intrinsic functions in their long forms, as plain data."""
    return plain(cfn_yaml.load(str(path)))


def normalized(value):
    """A JSON value with every list sorted, so comparisons ignore list order."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((normalized(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def target(value):
    """The logical id a {Ref} / {Fn::GetAtt} points at, else None."""
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt":
            if isinstance(arg, list) and arg:
                return arg[0]
            if isinstance(arg, str):
                return arg.split(".", 1)[0]
    return None


def of_type(resources, type_name):
    return {name: r for name, r in resources.items() if r.get("Type") == type_name}


def props(resource):
    return resource.get("Properties") or {}


class TemplateError(Exception):
    """The template lacks what a test builds from it, or holds what the test cannot build."""


def the_one(template, type_name):
    """(logical id, resource) of the template's only resource of `type_name` that is always
    deployed (optional parts, under a Condition, are not counted); raises otherwise."""
    found = {name: r for name, r in of_type(template.get("Resources") or {}, type_name).items()
             if "Condition" not in r}
    if len(found) != 1:
        raise TemplateError(
            f"template.yaml must define exactly one {type_name} resource, it defines "
            f"{len(found)}: {sorted(found)}"
        )
    return next(iter(found.items()))


def is_intrinsic(value):
    """Whether `value` is an intrinsic function call ({"Ref": ...}, {"Fn::...": ...})."""
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    key = next(iter(value))
    return key == "Ref" or key.startswith("Fn::")


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")

# What `{"Ref": "AWS::NoValue"}` resolves to: the key (or list item) holding it is dropped.
NO_VALUE = object()


class Resolver:
    """Resolves intrinsic functions against what a test created.

    refs: logical id -> the value `Ref` gives (a table's name, a topic's ARN, a key's id);
    attributes: "LogicalId.Attribute" -> the value `Fn::GetAtt` gives;
    pseudo: AWS::Region, AWS::AccountId, AWS::Partition, AWS::StackName ... values;
    parameters: parameter name -> the value given at deployment.
    A `Ref` to a template parameter not given gives the parameter's Default (as CloudFormation
    passes it: a string). Anything else raises TemplateError.
    """

    def __init__(self, template, refs=None, attributes=None, pseudo=None, parameters=None):
        self.parameters = template.get("Parameters") or {}
        unknown = sorted(set(parameters or {}) - set(self.parameters))
        if unknown:
            raise TemplateError(f"no such template parameters: {unknown}")
        # Parameter values given (as a deployment would), the rest take their Default.
        self.given = {k: str(v) for k, v in (parameters or {}).items()}
        self.refs = dict(refs or {})
        self.attributes = dict(attributes or {})
        self.pseudo = dict(pseudo or {})
        self.conditions = template.get("Conditions") or {}

    def condition(self, name, where):
        """A template Condition's value, with the parameters given (else their Default)."""
        if name not in self.conditions:
            raise TemplateError(f"{where}: no Condition {name}")

        def value(v):
            if isinstance(v, dict) and len(v) == 1:
                (key, arg), = v.items()
                if key == "Ref":
                    return self.ref(arg, where)
                if key == "Condition":
                    return self.condition(arg, where)
                if key == "Fn::Equals":
                    return str(value(arg[0])) == str(value(arg[1]))
                if key == "Fn::Not":
                    return not value(arg[0])
                if key == "Fn::And":
                    return all(value(a) for a in arg)
                if key == "Fn::Or":
                    return any(value(a) for a in arg)
            return v

        return bool(value(self.conditions[name]))

    def ref(self, name, where):
        if name in self.refs:
            return self.refs[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.given:
            return self.given[name]
        if name in self.parameters and "Default" in self.parameters[name]:
            default = self.parameters[name]["Default"]
            return default if isinstance(default, str) else json.dumps(default)
        raise TemplateError(f"{where}: cannot resolve Ref {name} (nothing the test created)")

    def get_att(self, arg, where):
        key = ".".join(arg) if isinstance(arg, list) else str(arg)
        if key in self.attributes:
            return self.attributes[key]
        raise TemplateError(f"{where}: cannot resolve Fn::GetAtt {key}")

    def sub(self, arg, where):
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        extra = {k: self(v, f"{where}/{k}") for k, v in extra.items()}

        def one(match):
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                return str(self.get_att(name.split(".", 1), where))
            return str(self.ref(name, where))

        return _SUB_VARIABLE.sub(one, text)

    def __call__(self, value, where="value"):
        if isinstance(value, list):
            items = (self(v, f"{where}[{i}]") for i, v in enumerate(value))
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if is_intrinsic(value):
            (key, arg), = value.items()
            if key == "Ref" and arg == "AWS::NoValue":
                return NO_VALUE
            if key == "Fn::If":
                name, yes, no = arg
                return self(yes if self.condition(name, where) else no, where)
            if key == "Ref":
                return self.ref(arg, where)
            if key == "Fn::GetAtt":
                return self.get_att(arg, where)
            if key == "Fn::Sub":
                return self.sub(arg, where)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self(parts, where))
            raise TemplateError(f"{where}: {key} is not resolved by the tests")
        resolved = {k: self(v, f"{where}.{k}") for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}
