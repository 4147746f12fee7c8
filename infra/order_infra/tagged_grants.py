"""The execution policy's grants where a resource's name is an id: by the `environment` tag.

EC2 (the VPC, its plumbing and the security groups), RDS, Secrets Manager and KMS. Changing or
deleting needs the environment's tag on the resource; a create reaches only the kind of
resource it makes, and what it is created in (a VPC, a subnet) needs the tag; the tag itself
can be set only to the environment's value and never removed (policy_grants.tag_guard).
"""

from __future__ import annotations

from .config import EnvironmentConfig
from .policy_grants import Grant, creates, own_tag, tag_guard, tagged_on_create

# Each EC2 create action and the kind of resource it makes.
EC2_CREATES = {
    "ec2:AllocateAddress": "elastic-ip",
    "ec2:CreateFlowLogs": "vpc-flow-log",
    "ec2:CreateInternetGateway": "internet-gateway",
    "ec2:CreateNatGateway": "natgateway",
    "ec2:CreateRouteTable": "route-table",
    "ec2:CreateSecurityGroup": "security-group",
    "ec2:CreateSubnet": "subnet",
    "ec2:CreateVpc": "vpc",
    "ec2:CreateVpcEndpoint": "vpc-endpoint",
}


def tagged_grants(config: EnvironmentConfig) -> list[Grant]:
    env = config.name
    own = own_tag(env)
    ec2 = "arn:{partition}:ec2:{region}:{account}"
    return [
        # --- EC2: the VPC and its plumbing. Creating is harmless; changing or deleting needs the
        # environment's tag. Security groups are the sensitive part (a rule opens a database).
        Grant(
            "Ec2Describe",
            [
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeFlowLogs",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeNatGateways",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribePrefixLists",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroupRules",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeTags",
                "ec2:DescribeVpcAttribute",
                "ec2:DescribeVpcEndpoints",
                "ec2:DescribeVpcs",
            ],
            ["*"],
        ),
        # Each create on its new resource only: the VPC, subnets, gateways it names need the
        # environment's tag (Ec2CreateInOwnNetwork), so nothing is created inside prod's VPC.
        *creates("Ec2", {action: f"{ec2}:{kind}/*" for action, kind in EC2_CREATES.items()}),
        # Creating inside a VPC names the VPC, subnets, gateways and elastic IPs it uses: only
        # this environment's.
        Grant(
            "Ec2CreateInOwnNetwork",
            [
                "ec2:AllocateAddress",
                "ec2:AssociateRouteTable",
                "ec2:AttachInternetGateway",
                "ec2:CreateFlowLogs",
                "ec2:CreateNatGateway",
                "ec2:CreateRoute",
                "ec2:CreateRouteTable",
                "ec2:CreateSecurityGroup",
                "ec2:CreateSubnet",
                "ec2:CreateVpcEndpoint",
                "ec2:ModifySubnetAttribute",
                "ec2:ModifyVpcAttribute",
            ],
            [
                f"{ec2}:vpc/*",
                f"{ec2}:subnet/*",
                f"{ec2}:internet-gateway/*",
                f"{ec2}:elastic-ip/*",
                f"{ec2}:route-table/*",
            ],
            own,
        ),
        Grant(
            "Ec2ChangeOwn",
            [
                "ec2:AssociateRouteTable",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:CreateRoute",
                "ec2:DeleteFlowLogs",
                "ec2:DeleteInternetGateway",
                "ec2:DeleteNatGateway",
                "ec2:DeleteRoute",
                "ec2:DeleteRouteTable",
                "ec2:DeleteSecurityGroup",
                "ec2:DeleteSubnet",
                "ec2:DeleteVpc",
                "ec2:DeleteVpcEndpoints",
                "ec2:DetachInternetGateway",
                "ec2:DisassociateRouteTable",
                "ec2:ModifySecurityGroupRules",
                "ec2:ModifyVpcEndpoint",
                "ec2:ReleaseAddress",
                "ec2:ReplaceRoute",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
                "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
            ],
            [f"{ec2}:*/*"],
            own,
        ),
        # A rule's own id (security-group-rule/sgr-...) carries no tag of its own.
        Grant(
            "Ec2SecurityGroupRules",
            [
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:ModifySecurityGroupRules",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
            ],
            [f"{ec2}:security-group-rule/*"],
        ),
        *tag_guard(
            "Ec2",
            ["ec2:CreateTags"],
            ["ec2:DeleteTags"],
            f"{ec2}:*/*",
            env,
            create_action_key="ec2:CreateAction",
            create_actions=[a.split(":")[1] for a in EC2_CREATES],
        ),
        # --- RDS: the database, its subnet group and parameter group, by tag.
        Grant(
            "RdsDescribe",
            [
                "rds:DescribeDBEngineVersions",
                "rds:DescribeDBInstances",
                "rds:DescribeDBParameterGroups",
                "rds:DescribeDBParameters",
                "rds:DescribeDBSubnetGroups",
                "rds:DescribeEngineDefaultParameters",
                "rds:ListTagsForResource",
            ],
            ["*"],
        ),
        *creates(
            "Rds",
            {
                "rds:CreateDBInstance": "arn:{partition}:rds:{region}:{account}:db:*",
                "rds:CreateDBParameterGroup": "arn:{partition}:rds:{region}:{account}:pg:*",
                "rds:CreateDBSubnetGroup": "arn:{partition}:rds:{region}:{account}:subgrp:*",
            },
        ),
        # The engine's default option group is AWS's, untagged, and shared by every database.
        Grant(
            "RdsDefaultOptionGroup",
            ["rds:CreateDBInstance", "rds:ModifyDBInstance"],
            ["arn:{partition}:rds:{region}:{account}:og:default:*"],
        ),
        Grant(
            "RdsChangeOwn",
            [
                "rds:CreateDBInstance",  # names its subnet group and parameter group
                "rds:DeleteDBInstance",
                "rds:DeleteDBParameterGroup",
                "rds:DeleteDBSubnetGroup",
                "rds:ModifyDBInstance",
                "rds:ModifyDBParameterGroup",
                "rds:ModifyDBSubnetGroup",
                "rds:RebootDBInstance",
            ],
            [
                f"arn:{{partition}}:rds:{{region}}:{{account}}:{kind}:*"
                for kind in ("db", "pg", "subgrp")
            ],
            own,
        ),
        # DeleteDBInstance's final snapshot and CopyTagsToSnapshot: snapshots are new resources.
        Grant(
            "RdsFinalSnapshot",
            ["rds:CreateDBSnapshot", "rds:AddTagsToResource"],
            ["arn:{partition}:rds:{region}:{account}:snapshot:*"],
        ),
        *tag_guard(
            "Rds",
            ["rds:AddTagsToResource"],
            ["rds:RemoveTagsFromResource"],
            "arn:{partition}:rds:{region}:{account}:*:*",
            env,
        ),
        # --- Secrets Manager: the app secret by tag. The master secret (rds!db-...) is made,
        # tagged and rotated by RDS on CloudFormation's behalf: only through RDS.
        Grant("SecretsRandomPassword", ["secretsmanager:GetRandomPassword"], ["*"]),
        # A new secret is empty of anything prod's; its tags go through the tag guard below.
        Grant(
            "SecretsCreate",
            ["secretsmanager:CreateSecret"],
            ["arn:{partition}:secretsmanager:{region}:{account}:secret:*"],
            tagged_on_create(env),
        ),
        Grant(
            "SecretsChangeOwn",
            [
                "secretsmanager:DeleteSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecret",
            ],
            ["arn:{partition}:secretsmanager:{region}:{account}:secret:*"],
            own,
        ),
        Grant(
            "SecretsOfRdsThroughRds",
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:RotateSecret",
                "secretsmanager:TagResource",
            ],
            ["arn:{partition}:secretsmanager:{region}:{account}:secret:rds!*"],
            {"ForAnyValue:StringEquals": {"aws:CalledVia": ["rds.amazonaws.com"]}},
        ),
        *tag_guard(
            "Secrets",
            ["secretsmanager:TagResource"],
            ["secretsmanager:UntagResource"],
            "arn:{partition}:secretsmanager:{region}:{account}:secret:*",
            env,
        ),
        # RDS's master secret carries no environment tag, so the tag guard would let this
        # role tag another environment's with its own value and then act on it: nothing of
        # the sort on an rds! secret except through RDS.
        Grant(
            "SecretsOfRdsNeverDirectly",
            [
                "secretsmanager:DeleteSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:RotateSecret",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
                "secretsmanager:UpdateSecret",
            ],
            ["arn:{partition}:secretsmanager:{region}:{account}:secret:rds!*"],
            {"ForAllValues:StringNotEquals": {"aws:CalledVia": ["rds.amazonaws.com"]}},
            deny=True,
        ),
        # --- KMS: the topics' keys, by tag. CreateKey takes the key policy and the tags.
        Grant("KmsCreateKey", ["kms:CreateKey"], ["*"]),  # no resource-level permission
        Grant(
            "KmsChangeOwn",
            [
                "kms:DescribeKey",
                "kms:EnableKeyRotation",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
                "kms:PutKeyPolicy",
                "kms:ScheduleKeyDeletion",
                "kms:UpdateKeyDescription",
                # SNS encrypts with the topic's key when CloudFormation publishes nothing, but
                # subscribing an encrypted queue and creating the topic check the key.
                "kms:Decrypt",
                "kms:GenerateDataKey",
            ],
            ["arn:{partition}:kms:{region}:{account}:key/*"],
            own,
        ),
        # Issue 26: RDS encrypts prod's storage with the stack's key through a grant that the
        # caller (CloudFormation) makes, through RDS only.
        Grant(
            "KmsGrantsForRds",
            ["kms:CreateGrant"],
            ["arn:{partition}:kms:{region}:{account}:key/*"],
            {
                **own,
                "StringLike": {"kms:ViaService": "rds.*.amazonaws.com"},
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        ),
        *tag_guard(
            "Kms",
            ["kms:TagResource"],
            ["kms:UntagResource"],
            "arn:{partition}:kms:{region}:{account}:key/*",
            env,
        ),
    ]
