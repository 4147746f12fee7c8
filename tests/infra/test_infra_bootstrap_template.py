"""The kept CDK bootstrap templates (infra/cdk-bootstrap/<env>.yaml, one account for all)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from order_infra.config import DEPLOY_ENVIRONMENTS, ENVIRONMENTS
from tests.infra.iam_reach import Target, action_matches, as_list, reaches
from tools.bootstrap_template import (
    STACK_READS,
    STACK_WRITES,
    kept_path,
    pinned_cli_version,
    toolkit_stack_name,
)
from tools.policy_scan import load_template

ACCOUNT, REGION = "123456789012", "eu-west-1"


def resources(env: str) -> dict[str, Any]:
    return dict(load_template(kept_path(env))["Resources"])


def sub(value: Any) -> str:
    """A Fn::Sub ARN with the sample account and region, or the value as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = str(value["Fn::Sub"])
        for name, real in (
            ("AWS::Partition", "aws"),
            ("AWS::AccountId", ACCOUNT),
            ("AWS::Region", REGION),
        ):
            text = text.replace("${" + name + "}", real)
        return text
    return json.dumps(value)


def deploy_statements(env: str) -> list[dict[str, Any]]:
    (policy,) = resources(env)["DeploymentActionRole"]["Properties"]["Policies"]
    out = []
    for statement in policy["PolicyDocument"]["Statement"]:
        resolved = dict(statement)
        resolved["Resource"] = [sub(r) for r in as_list(statement["Resource"])]
        out.append(resolved)
    return out


def stack_arn(name: str) -> str:
    return f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/0a1b2c3d"


@pytest.mark.parametrize("env", DEPLOY_ENVIRONMENTS)
def test_the_deploy_role_changes_only_its_own_stack_and_toolkit(env: str) -> None:
    config = ENVIRONMENTS[env]
    own = [stack_arn(config.stack_name), stack_arn(toolkit_stack_name(config))]
    others = [
        stack_arn(name)
        for other in DEPLOY_ENVIRONMENTS
        if other != env
        for name in (ENVIRONMENTS[other].stack_name, toolkit_stack_name(ENVIRONMENTS[other]))
    ] + [stack_arn("SomeoneElsesStack")]
    statements = deploy_statements(env)
    for action in STACK_WRITES + STACK_READS:
        granting = [
            s for s in statements if any(action_matches(p, action) for p in as_list(s["Action"]))
        ]
        assert granting, action
        for arn in own:
            assert any(reaches(s, Target(arn)) for s in granting), (action, arn)
        for arn in others:
            assert not any(reaches(s, Target(arn)) for s in granting), (action, arn)


@pytest.mark.parametrize("env", DEPLOY_ENVIRONMENTS)
def test_the_deploy_role_holds_nothing_account_wide(env: str) -> None:
    role = resources(env)["DeploymentActionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role  # AWSCloudFormationReadOnlyAccess: every stack
    for statement in deploy_statements(env):
        if "*" in statement["Resource"]:
            assert as_list(statement["Action"]) == ["sts:GetCallerIdentity"], statement
        if "iam:PassRole" in as_list(statement["Action"]):
            assert statement["Resource"] == [sub({"Fn::Sub": "${CloudFormationExecutionRole.Arn}"})]
            assert statement["Condition"] == {
                "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
            }


@pytest.mark.parametrize("env", DEPLOY_ENVIRONMENTS)
def test_the_file_publishing_role_writes_only_this_environments_bucket(env: str) -> None:
    template = resources(env)
    policy = template["FilePublishingRoleDefaultPolicy"]["Properties"]["PolicyDocument"]
    for statement in policy["Statement"]:
        actions = as_list(statement["Action"])
        if not any(a.startswith("s3:") for a in actions):
            continue
        assert all("*" not in a for a in actions), actions  # no PutObject* (ACLs, retention)
        assert "s3:DeleteObject" not in actions
        assert statement["Resource"] == [
            {"Fn::Sub": "${StagingBucket.Arn}"},
            {"Fn::Sub": "${StagingBucket.Arn}/*"},
        ]
    bucket = template["StagingBucket"]["Properties"]["BucketName"]
    assert "Qualifier" in json.dumps(bucket)  # cdk-<qualifier>-assets-...: one per environment


@pytest.mark.parametrize("env", DEPLOY_ENVIRONMENTS)
def test_each_template_accepts_only_its_own_qualifier(env: str) -> None:
    qualifier = load_template(kept_path(env))["Parameters"]["Qualifier"]
    assert qualifier["AllowedValues"] == [ENVIRONMENTS[env].cdk_qualifier]


def test_the_templates_come_from_the_pinned_cdk_cli() -> None:
    for env in DEPLOY_ENVIRONMENTS:
        header = kept_path(env).read_text().splitlines()[1]
        assert f"aws-cdk {pinned_cli_version()} " in header, (env, header)


def test_the_apps_synthesizer_accepts_the_templates_bootstrap_version() -> None:
    from aws_cdk import DefaultStackSynthesizer

    for env in DEPLOY_ENVIRONMENTS:
        outputs = load_template(kept_path(env))["Outputs"]
        version = int(outputs["BootstrapVersion"]["Value"])
        assert version >= 6  # DefaultStackSynthesizer's minimum for its roles
        parameter = resources(env)["CdkBootstrapVersion"]["Properties"]["Value"]
        assert int(parameter) == version
        assert DefaultStackSynthesizer.DEFAULT_DEPLOY_ROLE_ARN.startswith("arn:${AWS::Partition}")


@pytest.mark.parametrize("env", DEPLOY_ENVIRONMENTS)
def test_cfn_lint_finds_no_error_in_the_kept_template(env: str) -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(kept_path(env), config=ManualArgs(regions=[REGION]))
    assert [str(m) for m in matches if m.rule.id.startswith("E")] == []
