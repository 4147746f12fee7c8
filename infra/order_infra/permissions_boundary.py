"""The permissions boundary of every role an environment's stack makes.

The most a task role, an execution role, the flow log's role or the rotation schedule's role can
ever do, whatever its own policy says: what the worker, the migration, the credential rotation
and the flow log need, on this environment's own queues, topics, keys, secrets, log groups and
tasks. The execution policy refuses to create a role
without it (iam:PermissionsBoundary) and the stack applies it to every role (stack.py).
"""

from __future__ import annotations

from .config import ROTATE_FAMILY_SUFFIX, EnvironmentConfig
from .policy_grants import ENVIRONMENT_TAG, Grant, own_tag

PERMISSIONS_BOUNDARY_NAME = "order-service-{env}-boundary"


def boundary_grants(config: EnvironmentConfig) -> list[Grant]:
    """The most a role of this environment's stack can ever do: what its tasks and the flow log
    need, on this environment's resources only."""
    env = config.name
    stack = config.stack_name
    own = own_tag(env)
    return [
        Grant(
            "OwnQueues",
            [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
            ],
            [f"arn:{{partition}}:sqs:{{region}}:{{account}}:{stack}-*"],
        ),
        Grant(
            "OwnTopics",
            ["sns:Publish"],
            [
                f"arn:{{partition}}:sns:{{region}}:{{account}}:{stack}-*",
                f"arn:{{partition}}:sns:{{region}}:{{account}}:order-service-{env}-*",
            ],
        ),
        Grant(
            "OwnKeys",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            ["arn:{partition}:kms:{region}:{account}:key/*"],
            own,
        ),
        Grant(
            "OwnSecrets",
            ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            ["arn:{partition}:secretsmanager:{region}:{account}:secret:*"],
            own,
        ),
        # The credential rotation's task writes a new version of the application secret.
        Grant(
            "RotateOwnSecrets",
            ["secretsmanager:PutSecretValue"],
            ["arn:{partition}:secretsmanager:{region}:{account}:secret:*"],
            own,
        ),
        # The rotation schedule's role (EventBridge) starts the rotation task, tags it, and
        # hands the task its own roles.
        Grant(
            "RunOwnRotationTask",
            ["ecs:RunTask"],
            [
                "arn:{partition}:ecs:{region}:{account}:task-definition/"
                f"order-service-{env}-{ROTATE_FAMILY_SUFFIX}:*"
            ],
        ),
        Grant(
            "TagOwnTasks",
            ["ecs:TagResource"],
            [f"arn:{{partition}}:ecs:{{region}}:{{account}}:task/{stack}-*/*"],
        ),
        Grant(
            "PassOwnTaskRoles",
            ["iam:PassRole"],
            [f"arn:{{partition}}:iam::{{account}}:role/{stack}-*"],
            {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
        ),
        # The master secret is RDS's (rds!db-<id>); RDS tags it with the instance it serves,
        # whose identifier is fixed.
        Grant(
            "OwnDatabaseMasterSecret",
            ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            ["arn:{partition}:secretsmanager:{region}:{account}:secret:rds!*"],
            {
                "StringEquals": {
                    "secretsmanager:ResourceTag/aws:rds:primaryDBInstanceArn": (
                        f"arn:{{partition}}:rds:{{region}}:{{account}}:db:"
                        f"{config.database_identifier}"
                    )
                }
            },
        ),
        Grant(
            "OwnLogs",
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [f"arn:{{partition}}:logs:{{region}}:{{account}}:log-group:{stack}-*"],
        ),
        Grant(
            "PullImages",
            [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            ["arn:{partition}:ecr:{region}:{account}:repository/*"],
        ),
        # Issue 26, prod's Enhanced Monitoring role: RDS's own group, one stream per instance.
        Grant(
            "DatabaseOsMetrics",
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
                "logs:PutRetentionPolicy",
            ],
            [
                "arn:{partition}:logs:{region}:{account}:log-group:RDSOSMetrics",
                "arn:{partition}:logs:{region}:{account}:log-group:RDSOSMetrics:log-stream:*",
            ],
        ),
        # Issue 26, the custom resource that empties the VPC's default security group: its
        # function's logs, and the rules of a default group. A default group is made by EC2
        # with its VPC and carries no tag (every group the stack makes does): untagged only.
        Grant(
            "OwnFunctionLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            [f"arn:{{partition}}:logs:{{region}}:{{account}}:log-group:/aws/lambda/{stack}-*"],
        ),
        Grant(
            "DefaultSecurityGroupRules",
            [
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
            ],
            ["arn:{partition}:ec2:{region}:{account}:security-group/*"],
            {"Null": {f"aws:ResourceTag/{ENVIRONMENT_TAG}": "true"}},
        ),
        # No resource-level permissions exist for these.
        Grant(
            "NoResourceLevel",
            ["ecr:GetAuthorizationToken", "logs:DescribeLogGroups", "xray:PutTraceSegments"],
            ["*"],
        ),
    ]
