"""One-time, per-account delivery bootstrap: GitHub OIDC, the CI deploy role, the ECR repository.

Deployed by hand once (before CI can push the first image); the main stack imports the
repository by name and CI assumes the role through OIDC, so no long-lived keys exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from .config import CDK_BOOTSTRAP_QUALIFIER, ECR_REPOSITORY_NAME, STACK_NAME_PREFIX
from .nag import acknowledge

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
DEPLOY_ROLE_NAME = "order-service-github-deploy"
KEEP_IMAGES = 100  # enough to roll back weeks of deploys; older images expire
UNTAGGED_IMAGE_DAYS = 7


class DeliveryBootstrapStack(Stack):
    """GitHub OIDC provider (or an imported one), least-privilege deploy role, ECR repo."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        github_repository: str,
        github_environments: Sequence[str],
        existing_oidc_provider_arn: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if github_repository.count("/") != 1 or not all(github_repository.split("/")):
            raise ValueError(f"github repository must be owner/name, got {github_repository!r}")
        if not github_environments:
            raise ValueError("at least one GitHub environment must be allowed to deploy")

        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=ECR_REPOSITORY_NAME,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            image_scan_on_push=True,
            encryption=ecr.RepositoryEncryption.AES_256,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    rule_priority=1,
                    description=f"Expire untagged images after {UNTAGGED_IMAGE_DAYS} days",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(UNTAGGED_IMAGE_DAYS),
                ),
                ecr.LifecycleRule(
                    rule_priority=2,
                    description=f"Keep the {KEEP_IMAGES} most recent images",
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=KEEP_IMAGES,
                ),
            ],
        )

        if existing_oidc_provider_arn:  # only one provider per URL may exist in an account
            provider_arn = existing_oidc_provider_arn
        else:
            provider = iam.OidcProviderNative(
                self,
                "GitHubOidc",
                url=GITHUB_OIDC_URL,
                client_ids=["sts.amazonaws.com"],
                removal_policy=RemovalPolicy.RETAIN,
            )
            provider_arn = provider.oidc_provider_arn

        # Only workflow jobs bound to one of the named GitHub environments of this repository
        # (which prod guards with a required approval) may assume the role.
        self.deploy_role = iam.Role(
            self,
            "DeployRole",
            role_name=DEPLOY_ROLE_NAME,
            description="GitHub Actions: CDK deploy, ECR push, one-off migration task",
            max_session_duration=Duration.hours(1),
            assumed_by=iam.WebIdentityPrincipal(
                provider_arn,
                conditions={
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                        f"{GITHUB_OIDC_HOST}:sub": [
                            f"repo:{github_repository}:environment:{name}"
                            for name in github_environments
                        ],
                    }
                },
            ),
        )
        self._grant_deploy(self.deploy_role)

        CfnOutput(self, "DeployRoleArn", value=self.deploy_role.role_arn)
        CfnOutput(self, "RepositoryUri", value=self.repository.repository_uri)

    def _arn(self, template: str) -> str:
        return template.format(partition=self.partition, account=self.account, region=self.region)

    def _acknowledge_wildcard(self, policy: Construct, template: str, reason: str) -> None:
        # cdk-nag names a finding after the resource with tokens in its <Ref> notation.
        partition = "<AWS::Partition>" if Token.is_unresolved(self.partition) else self.partition
        resource = template.format(
            partition=partition, account="<AWS::AccountId>", region=self.region
        )
        acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource}]", reason)

    def _grant_deploy(self, role: iam.Role) -> None:
        stacks = f"{STACK_NAME_PREFIX}-*"
        wildcards = {
            "stack": f"arn:{{partition}}:cloudformation:{{region}}:{{account}}:stack/{stacks}/*",
            "task_definition": (
                "arn:{partition}:ecs:{region}:{account}:task-definition/order-service-*-migrate:*"
            ),
            "cluster": f"arn:{{partition}}:ecs:{{region}}:{{account}}:cluster/{stacks}",
            "task": f"arn:{{partition}}:ecs:{{region}}:{{account}}:task/{stacks}/*",
            "service": f"arn:{{partition}}:ecs:{{region}}:{{account}}:service/{stacks}/*",
            "task_roles": f"arn:{{partition}}:iam::{{account}}:role/{stacks}",
            "migration_logs": (
                f"arn:{{partition}}:logs:{{region}}:{{account}}:log-group:{stacks}"
                ":log-stream:migrate/*"
            ),
        }
        arn = {name: self._arn(template) for name, template in wildcards.items()}

        # CDK deploy: the CLI only assumes the roles `cdk bootstrap` created; they do the rest.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeCdkBootstrapRoles",
                actions=["sts:AssumeRole"],
                resources=[
                    self._arn(
                        f"arn:{{partition}}:iam::{{account}}:role/cdk-{CDK_BOOTSTRAP_QUALIFIER}"
                        f"-{kind}-role-{{account}}-{{region}}"
                    )
                    for kind in ("deploy", "file-publishing")
                ],
            )
        )
        # Image push to the one repository (push needs the pull actions too).
        self.repository.grant_push(role)
        self.repository.grant_read(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DescribeImageScan",
                actions=["ecr:DescribeImages", "ecr:DescribeImageScanFindings"],
                resources=[self.repository.repository_arn],
            )
        )
        # The migration: read the stack outputs, register the migration task definition with
        # the new image, run it in the service's cluster, wait for it and print its logs.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadServiceStackOutputs",
                actions=["cloudformation:DescribeStacks"],
                resources=[arn["stack"]],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="TaskDefinitionRevisions",
                actions=["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RunMigrationTask",
                actions=["ecs:RunTask"],
                resources=[arn["task_definition"]],
                conditions={"ArnLike": {"ecs:cluster": arn["cluster"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WatchTasksAndService",
                # StopTask: the migration runner stops a migration that outlived its timeout.
                actions=["ecs:DescribeTasks", "ecs:DescribeServices", "ecs:StopTask"],
                resources=[arn["task"], arn["service"]],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassTaskRolesToEcs",
                actions=["iam:PassRole"],
                resources=[arn["task_roles"]],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadMigrationLogs",
                actions=["logs:GetLogEvents"],
                resources=[arn["migration_logs"]],
            )
        )

        policy = role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, ecs:RegisterTaskDefinition and "
            "ecs:DescribeTaskDefinition support no resource-level permissions.",
        )
        reasons = {
            "stack": "Stack names are per environment (OrderService-<env>) and stack ARNs end "
            "in a generated id; read-only DescribeStacks for the outputs.",
            "task_definition": "Each deploy registers a new revision of the migration family "
            "(order-service-<env>-migrate:<n>); RunTask is limited to the service clusters.",
            "task": "Task ids are generated at RunTask; DescribeTasks is read-only and limited "
            "to the service clusters (OrderService-<env>-...).",
            "service": "Service names are generated by CloudFormation inside the "
            "OrderService-<env> clusters; DescribeServices is read-only.",
            "task_roles": "The task and execution roles get generated names prefixed with the "
            "stack name; PassRole is limited to ecs-tasks.amazonaws.com.",
            "migration_logs": "Log group names are generated inside the OrderService-<env> "
            "stacks; read-only access to the migrate/ log streams.",
        }
        for name, reason in reasons.items():
            self._acknowledge_wildcard(policy, wildcards[name], reason)
