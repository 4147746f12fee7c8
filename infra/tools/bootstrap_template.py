"""The CDK bootstrap template of one environment, for teams that keep every environment in one
AWS account (`cdk bootstrap --template cdk-bootstrap/<env>.yaml`, CICD.md).

The stock template's deploy role may create, execute and delete change sets on any stack, and
CloudFormation reuses a stack's stored execution role for whoever may operate on the stack: with
it, dev's credentials could change OrderService-prod through prod's role. This one is the stock
template of the pinned CDK CLI (infra/package-lock.json) with these changes:
- the deploy role acts only on OrderService-<env> and this environment's toolkit stack
  (change sets, stack operations, reads) instead of `*`, without the account-wide
  AWSCloudFormationReadOnlyAccess and without the cross-account pipeline and refactor grants;
- it passes the execution role only to CloudFormation;
- the file-publishing role reads and writes objects of this environment's staging bucket only
  (no ACL, retention or deletion);
- the template accepts only this environment's qualifier;
- no example permissions boundary (`--example-permissions-boundary`: an Allow-all policy);
  the roles of the stack get this environment's boundary from the delivery bootstrap.

Regenerate after a CDK CLI upgrade: `make bootstrap-templates` (needs `npm ci` in infra/);
tests/infra/test_infra_bootstrap_template.py checks the kept files.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from order_infra.config import DEPLOY_ENVIRONMENTS, ENVIRONMENTS, EnvironmentConfig

from .checks import INFRA_DIR

STOCK_TEMPLATE = INFRA_DIR / "node_modules" / "aws-cdk" / "lib" / "api" / "bootstrap"
KEPT_DIR = INFRA_DIR / "cdk-bootstrap"
STACK_ARN = "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/%s/*"
# What `cdk deploy` of an image-tagged stack does with the deploy role: change sets on the
# stack, the stack's reads (events, template, resources), and the toolkit stack's outputs.
STACK_WRITES = (
    "cloudformation:CreateChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:RollbackStack",
    "cloudformation:ContinueUpdateRollback",
    "cloudformation:DeleteStack",
    "cloudformation:UpdateTerminationProtection",
)
STACK_READS = (
    "cloudformation:DescribeChangeSet",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStackResource",
    "cloudformation:DescribeStackResources",
    "cloudformation:DescribeStacks",
    "cloudformation:GetTemplate",
    "cloudformation:GetTemplateSummary",
    "cloudformation:ListChangeSets",
    "cloudformation:ListStackResources",
)
DROPPED_DEPLOY_STATEMENTS = (
    "PipelineCrossAccountArtifactsBucket",  # other accounts' buckets: no CodePipeline here
    "PipelineCrossAccountArtifactsKey",
    "Refactor",  # stack refactoring on any stack
    "CliPermissions",  # DeleteStack and termination protection on any stack: in OwnStacks
)
FILE_PUBLISHING_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:GetBucketLocation",
    "s3:GetEncryptionConfiguration",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:PutObject",
)


def kept_path(env: str) -> Path:
    return KEPT_DIR / f"{env}.yaml"


def toolkit_stack_name(config: EnvironmentConfig) -> str:
    return f"CDKToolkit-{config.cdk_qualifier}"  # CICD.md: --toolkit-stack-name


def sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def environment_template(stock: dict[str, Any], config: EnvironmentConfig) -> dict[str, Any]:
    """The stock template with the deploy and file-publishing roles of this environment only."""
    template = copy.deepcopy(stock)
    resources = template["Resources"]
    own_stacks = [
        sub(STACK_ARN % config.stack_name),
        sub(STACK_ARN % toolkit_stack_name(config)),
    ]
    template["Parameters"]["Qualifier"]["Default"] = config.cdk_qualifier
    template["Parameters"]["Qualifier"]["AllowedValues"] = [config.cdk_qualifier]

    deploy = resources["DeploymentActionRole"]["Properties"]
    deploy.pop("ManagedPolicyArns", None)  # AWSCloudFormationReadOnlyAccess: every stack
    (policy,) = deploy["Policies"]
    statements = []
    for statement in policy["PolicyDocument"]["Statement"]:
        sid = statement.get("Sid")
        if sid in DROPPED_DEPLOY_STATEMENTS:
            continue
        if sid == "DeployPermissions":
            statement = {
                "Sid": "OwnStacks",
                "Effect": "Allow",
                "Action": list(STACK_WRITES + STACK_READS),
                "Resource": own_stacks,
            }
        elif statement.get("Action") == "iam:PassRole":
            statement = {
                **statement,
                "Sid": "PassExecutionRoleToCloudFormation",
                "Condition": {
                    "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
                },
            }
        statements.append(statement)
    statements.append(
        {
            "Sid": "CallerIdentity",  # no resource-level permission exists for it
            "Effect": "Allow",
            "Action": "sts:GetCallerIdentity",
            "Resource": "*",
        }
    )
    policy["PolicyDocument"]["Statement"] = statements

    resources.pop("CdkBoostrapPermissionsBoundaryPolicy")
    template["Conditions"].pop("ShouldCreatePermissionsBoundary")
    template["Parameters"]["UseExamplePermissionsBoundary"]["AllowedValues"] = ["false"]

    publishing = resources["FilePublishingRoleDefaultPolicy"]["Properties"]["PolicyDocument"]
    for statement in publishing["Statement"]:
        if any(str(a).startswith("s3:") for a in statement["Action"]):
            statement["Action"] = list(FILE_PUBLISHING_ACTIONS)
    template["Description"] = (
        f"CDK bootstrap of order-service {config.name} (qualifier {config.cdk_qualifier}): "
        f"deploys {config.stack_name} only. Generated by infra/tools/bootstrap_template.py."
    )
    return template


def render(template: dict[str, Any], cli_version: str) -> str:
    header = (
        "# Generated by infra/tools/bootstrap_template.py from the bootstrap template of\n"
        f"# aws-cdk {cli_version} (infra/package-lock.json). Do not edit: regenerate with\n"
        "# `make bootstrap-templates`.\n"
    )
    body = yaml.safe_dump(template, sort_keys=False, width=100, default_flow_style=False)
    return header + body


def pinned_cli_version() -> str:
    lock = json.loads((INFRA_DIR / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/aws-cdk"]["version"])


def main() -> int:
    stock_path = STOCK_TEMPLATE / "bootstrap-template.yaml"
    if not stock_path.exists():
        print(f"{stock_path} missing: run `npm ci` in infra/ first", file=sys.stderr)
        return 2
    stock = yaml.safe_load(stock_path.read_text())
    KEPT_DIR.mkdir(exist_ok=True)
    for env in DEPLOY_ENVIRONMENTS:
        text = render(environment_template(stock, ENVIRONMENTS[env]), pinned_cli_version())
        kept_path(env).write_text(text)
        print(f"wrote {kept_path(env).relative_to(INFRA_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
