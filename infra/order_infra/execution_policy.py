"""What CloudFormation may do for one environment's stack, and the boundary of every role it makes.

`cdk bootstrap --cloudformation-execution-policies` gets the execution policy instead of
AdministratorAccess. Where all three environments share one AWS account, a dev stack must not be
able to touch prod (issue 25), so every action is named (no `service:*`) and every write reaches
only this environment's resources:
- by name where CloudFormation names a resource after the stack (`OrderService-<env>-...`:
  queues, topics, log groups, alarms, roles, the cluster) or the stack names it itself;
- by the `environment` tag (aws:ResourceTag) where the name is an id (security groups, KMS
  keys, secrets, the database, the load balancer); the tag cannot be rewritten or removed
  (policy_grants.tag_guard), and a create reaches only the kind of resource it makes.
Every role the stack creates must carry the environment's permissions boundary
(iam:PermissionsBoundary on CreateRole), and the stack applies it to each role it makes
(stack.py): a role cannot be given more than the boundary, whatever its own policy says.
"""

from __future__ import annotations

import json

from aws_cdk import aws_iam as iam
from constructs import Construct

from .config import EnvironmentConfig
from .execution_grants import execution_grants
from .permissions_boundary import PERMISSIONS_BOUNDARY_NAME, boundary_grants
from .policy_grants import Arn, Grant, policy_document

EXECUTION_POLICY_NAME = "order-service-{env}-cfn-execution-{part}"
MANAGED_POLICY_MAX_CHARS = 6144  # IAM's quota, whitespace not counted
POLICY_BUDGET = 5500  # room for the {"Version":..,"Statement":[..]} frame and long partitions


def iam_grants(config: EnvironmentConfig, boundary_arn: str) -> list[Grant]:
    """The stack's own roles (names prefixed with the stack), each under the boundary."""
    roles = f"arn:{{partition}}:iam::{{account}}:role/{config.stack_name}-*"
    boundary = {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}}
    return [
        Grant(
            "OwnRolesUnderTheBoundary",
            ["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            [roles],
            boundary,
        ),
        Grant(
            "OwnRoles",
            [
                "iam:DeleteRole",
                "iam:DeleteRolePolicy",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:ListRolePolicies",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
            ],
            [roles],
        ),
        # An inline policy is capped by the boundary, which the role cannot shed (no
        # DeleteRolePermissionsBoundary here).
        Grant("OwnRolePolicies", ["iam:PutRolePolicy"], [roles], boundary),
        Grant(
            "PassOwnRolesToTheirServices",
            ["iam:PassRole"],
            [roles],
            {
                "StringEquals": {
                    "iam:PassedToService": [
                        "ecs-tasks.amazonaws.com",
                        "events.amazonaws.com",  # the credential rotation's schedule
                        "vpc-flow-logs.amazonaws.com",
                        # Issue 26: the default security group's custom resource function,
                        # and prod's Enhanced Monitoring role (RDS passes it to its monitoring
                        # service; which name its check uses is not documented: both).
                        "lambda.amazonaws.com",
                        "monitoring.rds.amazonaws.com",
                        "rds.amazonaws.com",
                    ]
                }
            },
        ),
        Grant(
            "ServiceLinkedRoles",
            ["iam:CreateServiceLinkedRole"],
            ["arn:{partition}:iam::{account}:role/aws-service-role/*"],
            {
                "StringEquals": {
                    "iam:AWSServiceName": [
                        "ecs.amazonaws.com",
                        "ecs.application-autoscaling.amazonaws.com",
                        "elasticloadbalancing.amazonaws.com",
                        "rds.amazonaws.com",
                    ]
                }
            },
        ),
        Grant(
            "BootstrapVersion",
            ["ssm:GetParameters"],
            [
                f"arn:{{partition}}:ssm:{{region}}:{{account}}:parameter/cdk-bootstrap/{config.cdk_qualifier}/version"
            ],
        ),
    ]


class EnvironmentExecutionPolicy(Construct):
    """The execution policy of one environment's CDK bootstrap and its roles' boundary."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, arn: Arn
    ) -> None:
        super().__init__(scope, construct_id)
        env = config.name
        boundary = boundary_grants(config)
        self.boundary = iam.ManagedPolicy(
            self,
            "PermissionsBoundary",
            managed_policy_name=PERMISSIONS_BOUNDARY_NAME.format(env=env),
            description=f"The most any role of {config.stack_name} may do: its own resources",
            document=policy_document(boundary, arn),
        )
        boundary_arn = arn(
            "arn:{partition}:iam::{account}:policy/" + PERMISSIONS_BOUNDARY_NAME.format(env=env)
        )
        execution = execution_grants(config) + iam_grants(config, boundary_arn)
        # A managed policy holds at most 6,144 characters: the grants go into as many as they
        # need, all passed to `cdk bootstrap --cloudformation-execution-policies`.
        self.grants: list[tuple[iam.ManagedPolicy, list[Grant]]] = [(self.boundary, boundary)]
        self.policies: list[iam.ManagedPolicy] = []
        for index, part in enumerate(split_by_size(execution, config.region), start=1):
            policy = iam.ManagedPolicy(
                self,
                f"CloudFormationExecution{index}",
                managed_policy_name=EXECUTION_POLICY_NAME.format(env=env, part=index),
                description=f"CloudFormation of {config.stack_name} (cdk bootstrap "
                f"--qualifier {config.cdk_qualifier}), part {index}: named actions on its own "
                "resources only",
                document=policy_document(part, arn),
            )
            self.policies.append(policy)
            self.grants.append((policy, part))


def rendered_size(grant: Grant, region: str) -> int:
    """Characters of the statement as IAM counts them (no whitespace), for a 12-digit account."""
    statement = {
        "Sid": grant.sid,
        "Effect": "Allow",
        "Action": list(grant.actions),
        "Resource": [
            r.format(partition="aws", region=region, account="123456789012")
            for r in grant.resources
        ],
        "Condition": grant.conditions,
    }
    return len(json.dumps(statement, separators=(",", ":")))


def split_by_size(grants: list[Grant], region: str) -> list[list[Grant]]:
    parts: list[list[Grant]] = [[]]
    size = 0
    for grant in grants:
        grant_size = rendered_size(grant, region)
        if parts[-1] and size + grant_size > POLICY_BUDGET:
            parts.append([])
            size = 0
        parts[-1].append(grant)
        size += grant_size
    return parts
