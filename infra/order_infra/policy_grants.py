"""IAM statements as data, and the grants that keep the `environment` tag a boundary.

A tag is only a boundary if it cannot be rewritten: tag writes are allowed on the environment's
own resources, or on untagged new ones with the environment's own value, and the `environment`
tag can never be removed (tag_guard). Used by the execution policy and the permissions boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import aws_iam as iam

ENVIRONMENT_TAG = "environment"  # stack.py tags every resource with it

Arn = Callable[[str], str]  # "arn:{partition}:sqs:{region}:{account}:x" -> a concrete ARN


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: Sequence[str]
    resources: Sequence[str]  # templates with {partition}, {region}, {account}, {stack}, ...
    conditions: dict[str, Any] = field(default_factory=dict)
    deny: bool = False


def own_tag(env: str) -> dict[str, Any]:
    return {"StringEquals": {f"aws:ResourceTag/{ENVIRONMENT_TAG}": env}}


def tagged_on_create(env: str) -> dict[str, Any]:
    return {"StringEquals": {f"aws:RequestTag/{ENVIRONMENT_TAG}": env}}


def tag_guard(
    sid: str,
    tag: Sequence[str],
    untag: Sequence[str],
    resource: str,
    env: str,
    *,
    create_action_key: str | None = None,
    create_actions: Sequence[str] = (),
) -> list[Grant]:
    """Tag writes that keep the environment tag a boundary: own resources only, or new ones
    getting this environment's value, and the environment tag is never removed.

    "New" is the service's create action where it has a condition key for it (EC2's
    ec2:CreateAction, ELB's elasticloadbalancing:CreateAction): only at creation. Elsewhere it
    is "no environment tag yet", which an untagged resource of another environment also
    matches: such a service must have none (RDS, KMS: CloudFormation tags every one it makes;
    RDS's master secret: denied in execution_grants.py)."""
    if create_action_key:
        new: dict[str, Any] = {
            "StringEquals": {
                create_action_key: list(create_actions),
                f"aws:RequestTag/{ENVIRONMENT_TAG}": env,
            }
        }
    else:
        new = {"Null": {f"aws:ResourceTag/{ENVIRONMENT_TAG}": "true"}, **tagged_on_create(env)}
    return [
        Grant(
            f"{sid}TagOwn",
            tag,
            [resource],
            {**own_tag(env), "StringEqualsIfExists": {f"aws:RequestTag/{ENVIRONMENT_TAG}": env}},
        ),
        Grant(f"{sid}TagNew", tag, [resource], new),
        Grant(
            f"{sid}UntagOwn",
            untag,
            [resource],
            {
                **own_tag(env),
                "ForAllValues:StringNotEquals": {"aws:TagKeys": [ENVIRONMENT_TAG]},
            },
        ),
    ]


def creates(sid: str, new_resource_of: dict[str, str]) -> list[Grant]:
    """Each create action on the kind of resource it makes, nothing else: the resources it
    names (a VPC, a subnet, a load balancer) need the environment's tag from another grant."""
    return [
        Grant(f"{sid}Create{action.split(':')[1].removeprefix('Create')}", [action], [resource])
        for action, resource in new_resource_of.items()
    ]


def with_arns(conditions: dict[str, Any], arn: Arn) -> dict[str, Any]:
    """The conditions with every ARN template among their values made concrete, as the
    resources are: a condition naming "arn:{partition}:..." literally would never match."""

    def concrete(value: Any) -> Any:
        if isinstance(value, list):
            return [concrete(v) for v in value]
        if isinstance(value, str) and value.startswith("arn:{partition}:"):
            return arn(value)
        return value

    return {
        operator: {key: concrete(value) for key, value in block.items()}
        for operator, block in conditions.items()
    }


def policy_document(grants: Sequence[Grant], arn: Arn) -> iam.PolicyDocument:
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid=grant.sid,
                effect=iam.Effect.DENY if grant.deny else iam.Effect.ALLOW,
                actions=list(grant.actions),
                resources=[r if r == "*" else arn(r) for r in grant.resources],
                conditions=with_arns(grant.conditions, arn) or None,
            )
            for grant in grants
        ]
    )
