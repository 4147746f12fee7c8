"""What prod's database adds for its operators (issue 26): a storage key of the stack's own and
the role of Enhanced Monitoring. database.py decides where they apply."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from .nag import acknowledge

# Where Enhanced Monitoring writes: RDS's own log group, one stream per instance.
OS_METRICS_LOG_GROUP = "RDSOSMetrics"
MONITORING_PRINCIPAL = "monitoring.rds.amazonaws.com"


def storage_key(scope: Construct, construct_id: str, *, database_identifier: str) -> kms.Key:
    """The key of the instance's storage, its snapshots and Performance Insights. Retained:
    a snapshot outlives the stack, and is unreadable without its key."""
    return kms.Key(
        scope,
        construct_id,
        description=f"{database_identifier}: storage, snapshots and Performance Insights",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
    )


def monitoring_role(scope: Construct, construct_id: str) -> iam.Role:
    """Enhanced Monitoring's role, with what AWS's AmazonRDSEnhancedMonitoringRole grants, on
    RDSOSMetrics only (the managed policy names every RDS* group): an inline policy, so the
    environment's permissions boundary can be checked against it (permissions_boundary.py)."""
    stack = Stack.of(scope)
    where = f"logs:{stack.region}:{stack.account}:log-group:{OS_METRICS_LOG_GROUP}"
    group = f"arn:{stack.partition}:{where}"
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(MONITORING_PRINCIPAL),
        description="RDS Enhanced Monitoring: the instance's OS metrics into RDSOSMetrics",
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:PutRetentionPolicy"], resources=[group]
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            resources=[f"{group}:log-stream:*"],
        )
    )
    # cdk-nag names the resource as it resolves it: the region and partition are literals.
    partition = RegionInfo.get(stack.region).partition or "aws"
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::arn:{partition}:logs:{stack.region}:<AWS::AccountId>"
        f":log-group:{OS_METRICS_LOG_GROUP}:log-stream:*]",
        "RDS names one stream per instance by its resource id (db-...), known only once the "
        "instance exists; the role reaches the RDSOSMetrics group and nothing else.",
    )
    return role
