"""The execution policy's grants on the stack's services (IAM apart: execution_policy.py).

Every action is named. Where CloudFormation names a resource after the stack
(`OrderService-<env>-...`) or the stack names it, the grant names that prefix; the load
balancer's parts have ids for names and go by the `environment` tag; the rest (EC2, RDS,
secrets, keys) is in tagged_grants.py.
"""

from __future__ import annotations

from .config import RDS_LOG_GROUP, EnvironmentConfig
from .policy_grants import Grant, creates, own_tag, tag_guard
from .tagged_grants import tagged_grants

ELB_CREATES = {
    "elasticloadbalancing:CreateLoadBalancer": "loadbalancer",
    "elasticloadbalancing:CreateTargetGroup": "targetgroup",
    "elasticloadbalancing:CreateListener": "listener",
    "elasticloadbalancing:CreateRule": "listener-rule",
}


def execution_grants(config: EnvironmentConfig) -> list[Grant]:
    """The execution policy's statements, one per (service, scope)."""
    env = config.name
    stack = config.stack_name
    lower = stack.lower()  # names CloudFormation lowercases (S3 buckets)
    own = own_tag(env)
    elb = "arn:{partition}:elasticloadbalancing:{region}:{account}"
    return [
        *tagged_grants(config),
        # --- Named after the stack by CloudFormation (or by the stack itself).
        Grant(
            "OwnQueues",
            [
                "sqs:CreateQueue",
                "sqs:DeleteQueue",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ListQueueTags",
                "sqs:SetQueueAttributes",
                "sqs:TagQueue",
                "sqs:UntagQueue",
            ],
            [f"arn:{{partition}}:sqs:{{region}}:{{account}}:{stack}-*"],
        ),
        Grant(
            "OwnTopics",
            [
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:GetSubscriptionAttributes",
                "sns:GetTopicAttributes",
                "sns:ListSubscriptionsByTopic",
                "sns:ListTagsForResource",
                "sns:SetSubscriptionAttributes",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:TagResource",
                "sns:Unsubscribe",
                "sns:UntagResource",
            ],
            [
                f"arn:{{partition}}:sns:{{region}}:{{account}}:{stack}-*",
                f"arn:{{partition}}:sns:{{region}}:{{account}}:order-service-{env}-*",
            ],
        ),
        Grant(
            "OwnLogGroups",
            [
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:DeleteRetentionPolicy",
                "logs:DescribeLogGroups",
                "logs:ListTagsForResource",
                "logs:PutRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
            ],
            [
                f"arn:{{partition}}:logs:{{region}}:{{account}}:log-group:{stack}-*",
                # The database's audit logs, under RDS's path for its fixed identifier.
                "arn:{partition}:logs:{region}:{account}:log-group:"
                + RDS_LOG_GROUP.format(identifier=config.database_identifier, log="*"),
            ],
        ),
        Grant("LogsDescribe", ["logs:DescribeLogGroups"], ["*"]),
        Grant(
            "OwnAlarmsAndDashboard",
            [
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DeleteDashboards",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:GetDashboard",
                "cloudwatch:ListTagsForResource",
                "cloudwatch:PutDashboard",
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
            ],
            [
                f"arn:{{partition}}:cloudwatch:{{region}}:{{account}}:alarm:{stack}-*",
                f"arn:{{partition}}:cloudwatch::{{account}}:dashboard/{stack}",
            ],
        ),
        Grant(
            "OwnBuckets",
            [
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:DeleteBucketPolicy",
                "s3:GetBucketPolicy",
                "s3:GetBucketTagging",
                "s3:GetEncryptionConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:PutBucketOwnershipControls",
                "s3:PutBucketPolicy",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutBucketTagging",
                "s3:PutBucketVersioning",
                "s3:PutEncryptionConfiguration",
                "s3:PutLifecycleConfiguration",
            ],
            [f"arn:{{partition}}:s3:::{lower}-*"],
        ),
        Grant(
            "OwnCluster",
            [
                "ecs:CreateCluster",
                "ecs:DeleteCluster",
                "ecs:DescribeClusters",
                "ecs:PutClusterCapacityProviders",
                "ecs:TagResource",
                "ecs:UntagResource",
                "ecs:UpdateCluster",
                "ecs:UpdateClusterSettings",
            ],
            [f"arn:{{partition}}:ecs:{{region}}:{{account}}:cluster/{stack}-*"],
        ),
        Grant(
            "OwnService",
            [
                "ecs:CreateService",
                "ecs:DeleteService",
                "ecs:DescribeServices",
                "ecs:TagResource",
                "ecs:UpdateService",
            ],
            [f"arn:{{partition}}:ecs:{{region}}:{{account}}:service/{stack}-*/*"],
        ),
        # Task definitions: RegisterTaskDefinition has no resource-level permission; the
        # families are named by the stack (order-service-<env>-worker / -migrate).
        Grant(
            "TaskDefinitions",
            [
                "ecs:DeregisterTaskDefinition",
                "ecs:DescribeTaskDefinition",
                "ecs:RegisterTaskDefinition",
            ],
            ["*"],
        ),
        Grant(
            "OwnTaskDefinitionTags",
            ["ecs:TagResource", "ecs:UntagResource"],
            [
                f"arn:{{partition}}:ecs:{{region}}:{{account}}:task-definition/order-service-{env}-*:*"
            ],
        ),
        # Load balancer, target group, listener: names are ids chosen by CloudFormation; by tag.
        Grant(
            "ElbDescribe",
            [
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetGroups",
            ],
            ["*"],
        ),
        *creates("Elb", {action: f"{elb}:{kind}/*" for action, kind in ELB_CREATES.items()}),
        Grant(
            "ElbChangeOwn",
            [
                "elasticloadbalancing:CreateListener",  # on its (own) load balancer
                "elasticloadbalancing:CreateRule",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DeleteRule",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
            ],
            ["arn:{partition}:elasticloadbalancing:{region}:{account}:*"],
            own,
        ),
        *tag_guard(
            "Elb",
            ["elasticloadbalancing:AddTags"],
            ["elasticloadbalancing:RemoveTags"],
            f"{elb}:*",
            env,
            create_action_key="elasticloadbalancing:CreateAction",
            create_actions=[a.split(":")[1] for a in ELB_CREATES],
        ),
        Grant(
            "OwnScaling",
            [
                "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingActivities",
                "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:TagResource",
            ],
            ["*"],
            # The scalable target is an ECS service: only this stack's.
            {"StringLike": {"application-autoscaling:ResourceId": [f"service/{stack}-*"]}},
        ),
        Grant(
            "ScalingDescribe",
            [
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingActivities",
                "application-autoscaling:DescribeScalingPolicies",
            ],
            ["*"],
        ),
        # Issue 26: the custom resource that empties the VPC's default security group
        # (network.py, restrict_default_security_group): its function, named after the stack,
        # is created from the CDK asset in this environment's bootstrap bucket and invoked by
        # CloudFormation on create, update and delete.
        Grant(
            "OwnFunctions",
            [
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:GetFunction",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetFunctionRecursionConfig",
                "lambda:GetRuntimeManagementConfig",
                "lambda:InvokeFunction",
                "lambda:ListTags",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
            ],
            [f"arn:{{partition}}:lambda:{{region}}:{{account}}:function:{stack}-*"],
        ),
        Grant(
            "FunctionCodeFromOwnBootstrap",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [f"arn:{{partition}}:s3:::cdk-{config.cdk_qualifier}-assets-{{account}}-{{region}}/*"],
        ),
        Grant(
            "OwnRules",
            [
                "events:DeleteRule",
                "events:DescribeRule",
                "events:PutRule",
                "events:PutTargets",
                "events:RemoveTargets",
                "events:TagResource",
                "events:UntagResource",
            ],
            [f"arn:{{partition}}:events:{{region}}:{{account}}:rule/{stack}-*"],
        ),
    ]
