"""Just enough of IAM's policy evaluation to ask a synthesized resource policy "may this
service do this, for this source?": explicit deny wins, then any allow; conditions with an
operator this does not know never match (so a test fails rather than passes by accident).

Template values are resolved with a fixed account, region and partition; a resource's `Ref` or
`GetAtt` becomes `<LogicalId>` / `<LogicalId.Attribute>`, which the request names the same way.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

ACCOUNT = "210987654321"
REGION = "eu-west-1"
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws"}


def resolve(value: Any) -> Any:
    """A template value with pseudo parameters, Ref, GetAtt and Fn::Join resolved."""
    if isinstance(value, list):
        return [resolve(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return PSEUDO.get(value["Ref"], f"<{value['Ref']}>")
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p)) for p in parts)
    return {k: resolve(v) for k, v in value.items()}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    services = _listed(principal.get("Service", []))
    return service in services or "*" in _listed(principal.get("AWS", []))


_OPERATORS = {
    "StringEquals": lambda actual, wanted: actual == wanted,
    "ArnEquals": lambda actual, wanted: actual == wanted,
    "StringLike": lambda actual, wanted: fnmatch.fnmatchcase(actual, wanted),
    "ArnLike": lambda actual, wanted: fnmatch.fnmatchcase(actual, wanted),
    "Bool": lambda actual, wanted: actual.lower() == str(wanted).lower(),
}


def _conditions_match(conditions: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, tests in conditions.items():
        compare = _OPERATORS.get(operator)
        if compare is None:
            return False
        for key, wanted in tests.items():
            actual = context.get(key)
            if actual is None or not any(compare(actual, w) for w in _listed(wanted)):
                return False
    return True


def allows(
    policy: Mapping[str, Any], *, service: str, action: str, context: Mapping[str, str]
) -> bool:
    """Whether `policy` lets `service` do `action` in a request carrying `context`."""
    allowed = False
    for statement in resolve(policy)["Statement"]:
        if not _principal_matches(statement.get("Principal", {}), service):
            continue
        if not any(fnmatch.fnmatchcase(action, a) for a in _listed(statement["Action"])):
            continue
        if not _conditions_match(statement.get("Condition", {}), context):
            continue
        if statement["Effect"] == "Deny":
            return False
        allowed = True
    return allowed
