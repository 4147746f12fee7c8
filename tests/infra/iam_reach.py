"""Whether an IAM statement of a template can reach a given resource: the test's model of IAM.

Deliberately on the cautious side: a statement reaches a resource if one of its Resource
patterns matches the ARN and none of its conditions rules the resource out. Only conditions on
the resource itself can rule it out (its tags, by aws:ResourceTag/<key> or
<service>:ResourceTag/<key>), plus aws:CalledVia (what a service does on the caller's behalf is
the service's choice, not the caller's) and ec2:/elasticloadbalancing:CreateAction (true only
for a resource being created). Every other condition key (the request's tags, the
passed-to service, ...) is taken as one the caller can satisfy.

An action reaches only resources of its own service (sts:AssumeRole: IAM roles), and reading
metadata (Describe*, List*, Get* other than a secret's value) does not count: a dev role may
see that prod's stack exists, never change it or read its secrets.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

SERVICE_MEDIATED = ("aws:calledvia", "aws:calledviafirst", "aws:calledvialast")
# Set only when the request creates the resource (tags given in a create call): never true for
# a resource that exists.
CREATION_ONLY = ("ec2:createaction", "elasticloadbalancing:createaction")
ARN_SERVICE_OF_ACTION = {"sts": "iam"}
READS_THAT_COUNT = ("secretsmanager:GetSecretValue",)
# Actions that only make a new resource, never act on an existing one: authorised on the id of
# what they make (and on what they make it in, which is judged separately); a name that exists
# already fails (CreateSecret: ResourceExistsException, CreateDBInstance: DBInstanceAlreadyExists).
NEW_RESOURCE_ONLY = (
    "secretsmanager:CreateSecret",
    "ec2:AllocateAddress",
    "ec2:CreateFlowLogs",
    "ec2:CreateInternetGateway",
    "ec2:CreateNatGateway",
    "ec2:CreateRouteTable",
    "ec2:CreateSecurityGroup",
    "ec2:CreateSubnet",
    "ec2:CreateVpc",
    "ec2:CreateVpcEndpoint",
    "rds:CreateDBInstance",
    "rds:CreateDBParameterGroup",
    "rds:CreateDBSubnetGroup",
    "rds:CreateDBSnapshot",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:CreateListener",  # also authorised on its load balancer
    "elasticloadbalancing:CreateRule",  # also authorised on its listener
)


@dataclass(frozen=True)
class Target:
    arn: str
    tags: dict[str, str] = field(default_factory=dict)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_match(pattern: str, value: str) -> bool:
    """IAM wildcards: * any run of characters, ? one character (also across ':' and '/')."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def action_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def tag_of(key: str, target: Target) -> tuple[bool, str | None]:
    """(is a resource-tag key, the target's value)."""
    lowered = key.lower()
    if "resourcetag/" not in lowered:
        return False, None
    tag = key.split("/", 1)[1]
    return True, target.tags.get(tag)


def condition_allows(conditions: dict[str, Any], target: Target) -> bool:
    for operator, block in conditions.items():
        base = operator.split(":")[-1]
        if_exists = base.endswith("IfExists")
        base = base.removesuffix("IfExists")
        for key, expected in block.items():
            if key.lower() in SERVICE_MEDIATED + CREATION_ONLY:
                return False
            is_tag, actual = tag_of(key, target)
            if not is_tag:
                continue  # the caller's side of the request: assume it can be satisfied
            values = [str(v) for v in as_list(expected)]
            if base == "Null":
                present = actual is not None
                if (values == ["true"] and present) or (values == ["false"] and not present):
                    return False
                continue
            if actual is None:
                if if_exists:
                    continue
                return False
            if base in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif base in ("StringLike", "ArnLike"):
                ok = any(iam_match(v, actual) for v in values)
            elif base in ("StringNotEquals", "ArnNotEquals"):
                ok = actual not in values
            elif base in ("StringNotLike", "ArnNotLike"):
                ok = not any(iam_match(v, actual) for v in values)
            else:
                ok = True
            if not ok:
                return False
    return True


def acts_on(pattern: str, target: Target) -> bool:
    """Whether an action (pattern) can change the target or read a secret of it."""
    service, _, name = pattern.partition(":")
    if service == "*":
        return True
    arn_service = target.arn.split(":")[2]
    if ARN_SERVICE_OF_ACTION.get(service.lower(), service.lower()) != arn_service:
        return False
    if any(action_matches(pattern, read) for read in READS_THAT_COUNT):
        return True
    if any(pattern.lower() == new.lower() for new in NEW_RESOURCE_ONLY):
        return False  # a statement naming it with other actions is judged by those
    return not name.startswith(("Describe", "List", "Get"))


def reaches(statement: dict[str, Any], target: Target) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if not any(acts_on(str(a), target) for a in as_list(statement.get("Action", []))):
        return False
    if "NotResource" in statement:
        return True  # everything but a list: assume the worst
    resources = [str(r) for r in as_list(statement.get("Resource", []))]
    if not any(iam_match(pattern, target.arn) for pattern in resources):
        return False
    return condition_allows(statement.get("Condition", {}), target)


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in as_list(document.get("Statement", [])) if isinstance(s, dict)]


def certainly_applies(conditions: dict[str, Any]) -> bool:
    """Whether a Deny's conditions hold for a caller acting directly (not through a service):
    only "not called via <service>" is judged; any other condition might not hold, so the
    Deny is not counted on (cautious again)."""
    for operator, block in conditions.items():
        for key in block:
            if key.lower() not in SERVICE_MEDIATED or "StringNotEquals" not in operator:
                return False
    return True


def denied(statement: dict[str, Any], target: Target, denies: list[dict[str, Any]]) -> bool:
    """Whether every action of an Allow that acts on the target is denied for it."""
    acting = [str(a) for a in as_list(statement["Action"]) if acts_on(str(a), target)]
    for deny in denies:
        resources = [str(r) for r in as_list(deny.get("Resource", []))]
        if not any(iam_match(pattern, target.arn) for pattern in resources):
            continue
        if not certainly_applies(deny.get("Condition", {})):
            continue
        patterns = [str(a) for a in as_list(deny["Action"])]
        acting = [a for a in acting if not any(action_matches(p, a) for p in patterns)]
    return not acting


def reaching_statements(documents: list[dict[str, Any]], target: Target) -> list[dict[str, Any]]:
    """The Allow statements of one principal's policies that reach the target, its Denies
    taken into account."""
    every = [s for d in documents for s in statements(d)]
    denies = [s for s in every if s.get("Effect") == "Deny"]
    return [s for s in every if reaches(s, target) and not denied(s, target, denies)]
