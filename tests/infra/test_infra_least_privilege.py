"""Issue 25: with every environment in one account, nothing of dev's can reach prod.

The dev principals are dev's GitHub deploy role, dev's CloudFormation execution policies and
permissions boundary (delivery bootstrap), the roles of the dev stack, and the roles of dev's
kept CDK bootstrap template. Their statements are evaluated against prod's stack, secrets,
roles and security groups (iam_reach.py: cautious, a condition it cannot judge counts as met).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from order_infra.config import DEPLOY_ENVIRONMENTS, ENVIRONMENTS, RDS_LOG_GROUP
from order_infra.policy_grants import ENVIRONMENT_TAG
from tests.infra.iam_reach import (
    Target,
    action_matches,
    as_list,
    reaches,
    reaching_statements,
    statements,
)
from tools.bootstrap_template import kept_path, toolkit_stack_name
from tools.checks import SynthReport
from tools.policy_scan import SAMPLE_ACCOUNT, IamPolicy, iam_policies, load_template

REGION = ENVIRONMENTS["dev"].region
PREFIX = f"arn:aws:{{service}}:{REGION}:{SAMPLE_ACCOUNT}"


def policies_of(path: Path) -> list[IamPolicy]:
    return list(iam_policies(load_template(path), path.name, REGION))


def env_principals(synthesized: dict[str, SynthReport], env: str) -> dict[str, list[IamPolicy]]:
    """Every principal of an environment with the policies it holds, wherever defined: the
    GitHub role, the CloudFormation execution role (all its execution policies), the most a
    stack role may hold (the boundary), each policy of the stack and of the kept template."""
    (bootstrap,) = synthesized["bootstrap"].templates.values()
    (stack,) = synthesized[env].templates.values()
    delivery = [p for p in policies_of(bootstrap) if p.name.startswith(f"Deploy{env}")]
    groups = {
        "github role": [p for p in delivery if "RoleDefaultPolicy" in p.name],
        "execution role": [p for p in delivery if "CloudFormationExecution" in p.name],
        "boundary": [p for p in delivery if "PermissionsBoundary" in p.name],
    }
    assert all(groups.values()), groups
    for policy in policies_of(stack) + policies_of(kept_path(env)):
        groups[f"{policy.source}:{policy.name}"] = [policy]
    return groups


def all_policies(synthesized: dict[str, SynthReport]) -> list[IamPolicy]:
    found = [p for r in synthesized.values() for t in r.templates.values() for p in policies_of(t)]
    return found + [p for env in DEPLOY_ENVIRONMENTS for p in policies_of(kept_path(env))]


@dataclass(frozen=True)
class Sensitive:
    what: str
    target: Target


def sensitive_resources(env: str) -> list[Sensitive]:
    """Representative ARNs of an environment's stacks, secrets, roles, security groups, its
    database and the database's audit trail."""
    config = ENVIRONMENTS[env]
    tag = {ENVIRONMENT_TAG: env}
    iam = f"arn:aws:iam::{SAMPLE_ACCOUNT}:role"
    cfn = PREFIX.format(service="cloudformation")
    secret = PREFIX.format(service="secretsmanager")
    database = f"{PREFIX.format(service='rds')}:db:{config.database_identifier}"
    audit_logs = RDS_LOG_GROUP.format(identifier=config.database_identifier, log="postgresql")
    q = config.cdk_qualifier
    return [
        Sensitive("stack", Target(f"{cfn}:stack/{config.stack_name}/0a1b2c3d", tag)),
        Sensitive("toolkit stack", Target(f"{cfn}:stack/{toolkit_stack_name(config)}/0a1b")),
        Sensitive("app secret", Target(f"{secret}:secret:DatabaseAppSecret2E50FD00-AbCdEf", tag)),
        Sensitive(
            "master secret",
            Target(
                f"{secret}:secret:rds!db-0a1b2c3d-4e5f-AbCdEf",
                {"aws:rds:primaryDBInstanceArn": database},
            ),
        ),
        Sensitive("task role", Target(f"{iam}/{config.stack_name}-ComputeTaskRole-AbCdEf", tag)),
        Sensitive("github role", Target(f"{iam}/order-service-github-deploy-{env}")),
        *(
            Sensitive(
                f"{kind} role", Target(f"{iam}/cdk-{q}-{kind}-role-{SAMPLE_ACCOUNT}-{REGION}")
            )
            for kind in ("deploy", "cfn-exec", "file-publishing", "image-publishing", "lookup")
        ),
        Sensitive(
            "security group",
            Target(f"{PREFIX.format(service='ec2')}:security-group/sg-0123456789abcdef0", tag),
        ),
        Sensitive("database", Target(database, tag)),
        Sensitive(
            "audit log group",
            Target(f"{PREFIX.format(service='logs')}:log-group:{audit_logs}", tag),
        ),
        # Resources CloudFormation cannot tag: the tag guard must not let another environment
        # claim them with its own tag.
        Sensitive(
            "untagged listener",
            Target(f"{PREFIX.format(service='elasticloadbalancing')}:listener/app/lb/0a/1b"),
        ),
        Sensitive(
            "untagged endpoint",
            Target(f"{PREFIX.format(service='ec2')}:vpc-endpoint/vpce-0123456789abcdef0"),
        ),
    ]


def reaching(
    principals: dict[str, list[IamPolicy]], target: Target
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (principal, statement)
        for principal, policies in principals.items()
        for statement in reaching_statements([p.document for p in policies], target)
    ]


@pytest.mark.parametrize(
    ("env", "other"),
    [(e, o) for e in DEPLOY_ENVIRONMENTS for o in DEPLOY_ENVIRONMENTS if e != o],
)
def test_no_principal_of_one_environment_reaches_another_environment(
    synthesized: dict[str, SynthReport], env: str, other: str
) -> None:
    principals = env_principals(synthesized, env)
    assert len(principals) > 8  # the GitHub role, the execution role, the stack's, the kept
    for sensitive in sensitive_resources(other):
        assert reaching(principals, sensitive.target) == [], (env, other, sensitive.what)


def test_the_model_sees_what_the_stock_bootstrap_and_old_policy_allowed() -> None:
    """The check above can fail: the stock deploy role and `ec2:*` on `*` reach prod."""
    prod = {s.what: s.target for s in sensitive_resources("prod")}
    stock_change_sets = {
        "Effect": "Allow",
        "Action": ["cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet"],
        "Resource": "*",
    }
    assert reaches(stock_change_sets, prod["stack"])
    assert reaches({"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}, prod["security group"])
    own_tag_only = {
        "Effect": "Allow",
        "Action": "ec2:AuthorizeSecurityGroupIngress",
        "Resource": "*",
        "Condition": {"StringEquals": {f"aws:ResourceTag/{ENVIRONMENT_TAG}": "dev"}},
    }
    assert not reaches(own_tag_only, prod["security group"])
    dev = {s.what: s.target for s in sensitive_resources("dev")}
    assert reaches(own_tag_only, dev["security group"])
    # A tag on an untagged resource of another environment, then a change under that tag:
    # what the tag guard must prevent.
    claim = {
        "Effect": "Allow",
        "Action": "elasticloadbalancing:AddTags",
        "Resource": "*",
        "Condition": {"Null": {f"aws:ResourceTag/{ENVIRONMENT_TAG}": "true"}},
    }
    assert reaches(claim, prod["untagged listener"])


# Actions that must never be granted on every resource without a condition.
NEVER_UNCONDITIONED_ON_STAR = (
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:ModifySecurityGroupRules",
    "ec2:DeleteSecurityGroup",
    "secretsmanager:GetSecretValue",
    "cloudformation:CreateChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DeleteChangeSet",
    "iam:PassRole",
)


def test_no_statement_grants_sensitive_actions_on_star_without_a_condition(
    synthesized: dict[str, SynthReport],
) -> None:
    policies = all_policies(synthesized)
    assert any("Bootstrap" in p.source or p.source.endswith(".yaml") for p in policies)
    offending = []
    for policy in policies:
        for statement in statements(policy.document):
            if statement.get("Effect") != "Allow" or statement.get("Condition"):
                continue
            if "*" not in as_list(statement.get("Resource", [])):
                continue
            for pattern in as_list(statement.get("Action", [])):
                hits = [a for a in NEVER_UNCONDITIONED_ON_STAR if action_matches(pattern, a)]
                offending += [(policy.source, policy.name, hit) for hit in hits]
    assert offending == []


@pytest.mark.parametrize("env", DEPLOY_ENVIRONMENTS)
def test_every_role_of_the_stack_carries_the_environments_boundary(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    (path,) = synthesized[env].templates.values()
    roles = [r for r in load_template(path)["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert roles
    for role in roles:
        boundary = str(role["Properties"].get("PermissionsBoundary"))
        assert f"policy/order-service-{env}-boundary" in boundary, role


@pytest.mark.parametrize("env", DEPLOY_ENVIRONMENTS)
def test_the_boundary_admits_every_action_the_stack_grants_its_roles(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    """A role's policy beyond its boundary fails at run time (AccessDenied), not at deploy."""
    from order_infra.permissions_boundary import boundary_grants

    allowed = [a for grant in boundary_grants(ENVIRONMENTS[env]) for a in grant.actions]
    (path,) = synthesized[env].templates.values()
    granted = {
        action
        for policy in policies_of(path)
        for statement in statements(policy.document)
        for action in as_list(statement["Action"])
    }
    assert granted
    assert sorted(a for a in granted if not any(action_matches(p, a) for p in allowed)) == []


def _allowed(policies: list[IamPolicy], action: str, target: Target) -> bool:
    """Whether the principal holding these policies may do this one action on the target."""
    narrowed = [
        {
            **policy.document,
            "Statement": [
                {**s, "Action": [a for a in as_list(s["Action"]) if action_matches(a, action)]}
                for s in statements(policy.document)
                if "Action" in s and any(action_matches(a, action) for a in as_list(s["Action"]))
            ],
        }
        for policy in policies
    ]
    return bool(reaching_statements(narrowed, target))


def _stack_resources(synthesized: dict[str, SynthReport], env: str, kind: str) -> dict[str, Any]:
    (path,) = synthesized[env].templates.values()
    resources = load_template(path)["Resources"]
    return {k: r for k, r in resources.items() if r["Type"] == kind}


@pytest.mark.parametrize("env", DEPLOY_ENVIRONMENTS)
def test_the_boundary_admits_reading_the_own_databases_master_secret(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    """The migration's execution role reads the master secret RDS tags with its instance; the
    instance has a fixed identifier (issue 19), which the boundary's condition must name, or
    the first migration fails with AccessDenied."""
    (instance,) = _stack_resources(synthesized, env, "AWS::RDS::DBInstance").values()
    database = f"{PREFIX.format(service='rds')}:db:{instance['Properties']['DBInstanceIdentifier']}"
    master = Target(
        f"{PREFIX.format(service='secretsmanager')}:secret:rds!db-0a1b2c3d-4e5f-AbCdEf",
        {"aws:rds:primaryDBInstanceArn": database},
    )
    boundary = env_principals(synthesized, env)["boundary"]
    assert _allowed(boundary, "secretsmanager:GetSecretValue", master)


@pytest.mark.parametrize("env", DEPLOY_ENVIRONMENTS)
def test_the_execution_policy_manages_every_log_group_of_the_stack(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    """Named groups too: the database's audit logs (issue 19) live under RDS's own path,
    /aws/rds/instance/<identifier>/, not under the stack's name."""
    groups = _stack_resources(synthesized, env, "AWS::Logs::LogGroup")
    assert groups
    execution = env_principals(synthesized, env)["execution role"]
    stack = ENVIRONMENTS[env].stack_name
    for logical_id, group in groups.items():
        name = group["Properties"].get("LogGroupName", f"{stack}-{logical_id}-AbCdEf012345")
        target = Target(f"{PREFIX.format(service='logs')}:log-group:{name}", {ENVIRONMENT_TAG: env})
        for action in ("logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource"):
            assert _allowed(execution, action, target), (name, action)
