"""The one image in every environment's account: ECR cross-account replication.

With one AWS account per environment (CICD.md), the image is built and pushed once, in the
account of the first environment (the image account), and ECR replicates the repository to the
registries of the other accounts. Replication rather than a cross-account repository policy:
- each environment pulls from its own account: a task that starts in prod does not depend on
  the image account's registry, its lifecycle rules or anyone who may delete images there;
- each environment's deploy tag (`deployed-<env>-<sha>`, which keeps the running image from
  expiring) is written by that environment's own deploy role into its own repository; with a
  shared repository, prod's role would need write access to the image account;
- the image bytes are the same: replication copies the manifest and its digest, and tags are
  immutable in both repositories.
The source account's registry replicates (CfnReplicationConfiguration, a registry-wide
setting: only the repository of this name); each destination registry accepts replication from
the image account only (CfnRegistryPolicy).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ecr as ecr
from constructs import Construct

ACCOUNT_ID = re.compile(r"\d{12}")


class ImageReplication(Construct):
    """Replicate to `replicate_to` accounts and/or accept replication from `source_account`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repository_name: str,
        replicate_to: Sequence[str] = (),
        source_account: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        for account in [*replicate_to, *([source_account] if source_account else [])]:
            if not ACCOUNT_ID.fullmatch(account):
                raise ValueError(f"image replication: {account!r} is not a 12-digit account id")
        if replicate_to:
            ecr.CfnReplicationConfiguration(
                self,
                "Replication",
                replication_configuration=ecr.CfnReplicationConfiguration.ReplicationConfigurationProperty(
                    rules=[
                        ecr.CfnReplicationConfiguration.ReplicationRuleProperty(
                            destinations=[
                                ecr.CfnReplicationConfiguration.ReplicationDestinationProperty(
                                    region=stack.region, registry_id=account
                                )
                                for account in replicate_to
                            ],
                            repository_filters=[
                                ecr.CfnReplicationConfiguration.RepositoryFilterProperty(
                                    filter=repository_name,
                                    filter_type="PREFIX_MATCH",
                                )
                            ],
                        )
                    ]
                ),
            )
        if source_account:
            ecr.CfnRegistryPolicy(
                self,
                "AcceptReplication",
                policy_text={
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ReplicationFromTheImageAccount",
                            "Effect": "Allow",
                            "Principal": {
                                "AWS": f"arn:{stack.partition}:iam::{source_account}:root"
                            },
                            "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
                            "Resource": (
                                f"arn:{stack.partition}:ecr:{stack.region}:{stack.account}:"
                                f"repository/{repository_name}"
                            ),
                        }
                    ],
                },
            )
