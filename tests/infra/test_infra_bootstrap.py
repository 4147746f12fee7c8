"""The one-time delivery bootstrap stack: ECR repository, GitHub OIDC and the deploy role."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, assertions

import bootstrap_app
from order_infra.checks import SynthReport
from tests.infra.infra_support import template_json


@pytest.fixture(scope="module")
def template(synthesized: dict[str, SynthReport]) -> assertions.Template:
    return assertions.Template.from_json(template_json(synthesized["bootstrap"]))


def test_repository_is_immutable_scanned_and_expiring(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "order-service",
            "ImageTagMutability": "IMMUTABLE",
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "LifecyclePolicy": {
                "LifecyclePolicyText": assertions.Match.string_like_regexp("imageCountMoreThan")
            },
        },
    )
    template.has_resource("AWS::ECR::Repository", {"DeletionPolicy": "Retain"})


def test_github_oidc_provider(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::OIDCProvider",
        {
            "Url": "https://token.actions.githubusercontent.com",
            "ClientIdList": ["sts.amazonaws.com"],
        },
    )


def test_role_trusts_only_the_repository_environments(template: assertions.Template) -> None:
    (role,) = template.find_resources("AWS::IAM::Role").values()
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = statement["Condition"]["StringEquals"]
    assert conditions["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert conditions["token.actions.githubusercontent.com:sub"] == [
        f"repo:example-org/order-service:environment:{env}" for env in ("dev", "staging", "prod")
    ]
    assert "ManagedPolicyArns" not in role["Properties"]


def _statements(template: assertions.Template) -> list[dict[str, Any]]:
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def test_deploy_role_has_no_wildcard_actions(template: assertions.Template) -> None:
    for statement in _statements(template):
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action.split(":")[1], statement
        assert statement["Effect"] == "Allow"


def test_star_resources_only_where_aws_allows_nothing_else(template: assertions.Template) -> None:
    star = set()
    for statement in _statements(template):
        if statement["Resource"] == "*":
            actions = statement["Action"]
            star.update([actions] if isinstance(actions, str) else actions)
    assert star == {
        "ecr:GetAuthorizationToken",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
    }


def test_pass_role_only_to_ecs_tasks(template: assertions.Template) -> None:
    (statement,) = [s for s in _statements(template) if s["Action"] == "iam:PassRole"]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({}, "githubRepository"),
        ({"githubRepository": "no-slash"}, "owner/name"),
        ({"githubRepository": "o/r", "githubEnvironments": "qa"}, "unknown environments"),
    ],
)
def test_bootstrap_app_rejects_bad_context(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_app.build(App(context=context))


def test_deploy_role_can_run_and_stop_the_migration_task_only_in_its_clusters(
    template: assertions.Template,
) -> None:
    by_action = {}
    for statement in _statements(template):
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            by_action[action] = statement
    assert "task/OrderService-" in str(by_action["ecs:StopTask"]["Resource"])
    assert "ecs:cluster" in str(by_action["ecs:RunTask"]["Condition"])
