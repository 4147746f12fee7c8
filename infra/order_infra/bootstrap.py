"""One-time, per-account delivery bootstrap: GitHub OIDC, one deploy role per environment, ECR.

Deployed by hand once (before CI can push the first image), with the administrator's own
credentials (no CDK bootstrap needed: BootstraplessSynthesizer), then each environment gets its
own `cdk bootstrap --qualifier` whose CloudFormation runs with that environment's execution
policy from here (CICD.md). The main stack imports the repository by name; CI assumes its
environment's role through OIDC, so no long-lived keys exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from .config import (
    DEPLOY_ENVIRONMENTS,
    DEPLOYED_TAG_PREFIX,
    ECR_REPOSITORY_NAME,
    EnvironmentConfig,
)
from .deploy_role import EnvironmentDeployRole
from .image_replication import ImageReplication

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
KEEP_IMAGES = 100  # of any tag: enough to roll back weeks of deploys; older images expire
# Per environment, the images it deployed: its running one and a rollback this many releases
# deep. ECR counts by push time, and a deploy always runs the newest push of the environment's
# history unless it is a rollback, so the running image is always among them.
KEEP_DEPLOYED_IMAGES = 20
UNTAGGED_IMAGE_DAYS = 7


class DeliveryBootstrapStack(Stack):
    """GitHub OIDC provider (or an imported one), a deploy role per environment, ECR repo."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        github_repository: str,
        environments: Sequence[EnvironmentConfig],
        existing_oidc_provider_arn: str | None = None,
        replicate_images_to: Sequence[str] = (),
        images_from_account: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if github_repository.count("/") != 1 or not all(github_repository.split("/")):
            raise ValueError(f"github repository must be owner/name, got {github_repository!r}")
        if not environments:
            raise ValueError("at least one GitHub environment must be allowed to deploy")

        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=ECR_REPOSITORY_NAME,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            image_scan_on_push=True,
            encryption=ecr.RepositoryEncryption.AES_256,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=lifecycle_rules([config.name for config in environments]),
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

        # One account per environment (CICD.md): the image account's registry replicates the
        # repository to the others, which accept it from that account only.
        if replicate_images_to or images_from_account:
            ImageReplication(
                self,
                "ImageReplication",
                repository_name=ECR_REPOSITORY_NAME,
                replicate_to=replicate_images_to,
                source_account=images_from_account,
            )

        # The first environment of the promotion order builds and pushes the image; the later
        # ones deploy the same tag, so they may read the repository but not push to it (also
        # in an account that holds only later environments).
        self.deploy_roles: dict[str, EnvironmentDeployRole] = {}
        for config in environments:
            deploy = EnvironmentDeployRole(
                self,
                f"Deploy-{config.name}",
                config=config,
                github_repository=github_repository,
                oidc_provider_arn=provider_arn,
                repository=self.repository,
                may_push_images=config.name == DEPLOY_ENVIRONMENTS[0],
            )
            self.deploy_roles[config.name] = deploy
            CfnOutput(self, f"DeployRoleArn{config.name.title()}", value=deploy.role.role_arn)
            # Comma-joined: `cdk bootstrap --cloudformation-execution-policies` takes the list.
            CfnOutput(
                self,
                f"ExecutionPolicyArns{config.name.title()}",
                value=",".join(p.managed_policy_arn for p in deploy.execution_policies),
            )
        CfnOutput(self, "RepositoryUri", value=self.repository.repository_uri)


def lifecycle_rules(environments: Sequence[str]) -> list[ecr.LifecycleRule]:
    """Untagged images expire; each environment's deployed images are kept by a rule of their
    own, evaluated before the rule that expires any image (an image a rule matches cannot be
    expired by a later one). The last environment of the promotion order comes first: an image
    deployed to prod and to dev is then counted among prod's, never expired by dev's churn."""
    deployed = [
        ecr.LifecycleRule(
            rule_priority=priority,
            description=f"Keep the {KEEP_DEPLOYED_IMAGES} images {name} deployed last",
            tag_status=ecr.TagStatus.TAGGED,
            tag_prefix_list=[DEPLOYED_TAG_PREFIX.format(env=name)],
            max_image_count=KEEP_DEPLOYED_IMAGES,
        )
        for priority, name in enumerate(reversed(environments), start=2)
    ]
    return [
        ecr.LifecycleRule(
            rule_priority=1,
            description=f"Expire untagged images after {UNTAGGED_IMAGE_DAYS} days",
            tag_status=ecr.TagStatus.UNTAGGED,
            max_image_age=Duration.days(UNTAGGED_IMAGE_DAYS),
        ),
        *deployed,
        ecr.LifecycleRule(
            rule_priority=len(deployed) + 2,
            description=f"Keep the {KEEP_IMAGES} most recent images",
            tag_status=ecr.TagStatus.ANY,
            max_image_count=KEEP_IMAGES,
        ),
    ]
