"""The delivery bootstrap stack: ECR repository, GitHub OIDC, a deploy role per environment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, assertions

import bootstrap_app
from order_infra.bootstrap import KEEP_DEPLOYED_IMAGES, KEEP_IMAGES
from order_infra.config import DEPLOY_ENVIRONMENTS, DEPLOYED_TAG_PREFIX, ENVIRONMENTS
from tests.infra.infra_support import template_json
from tools.checks import SynthReport


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


def _lifecycle_rules(template: assertions.Template) -> list[dict[str, Any]]:
    (repository,) = template.find_resources("AWS::ECR::Repository").values()
    text = repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]
    return sorted(json.loads(text)["rules"], key=lambda rule: rule["rulePriority"])


def test_the_images_environments_run_are_kept_before_any_image_expires(
    template: assertions.Template,
) -> None:
    # Issue 19: "keep the newest 100 of any tag" expired the image an environment ran once 100
    # newer ones were pushed; a task replacement then failed with CannotPullContainerError.
    rules = _lifecycle_rules(template)
    assert [r["selection"]["tagStatus"] for r in rules][-1] == "any"  # evaluated last
    assert rules[-1]["selection"]["countNumber"] == KEEP_IMAGES
    kept = {
        rule["selection"]["tagPrefixList"][0]: rule
        for rule in rules
        if rule["selection"]["tagStatus"] == "tagged"
    }
    prefixes = [DEPLOYED_TAG_PREFIX.format(env=env) for env in DEPLOY_ENVIRONMENTS]
    assert sorted(kept) == sorted(prefixes)
    for rule in kept.values():
        assert rule["selection"]["tagPrefixList"] == [rule["selection"]["tagPrefixList"][0]]
        assert rule["selection"]["countType"] == "imageCountMoreThan"
        assert rule["selection"]["countNumber"] == KEEP_DEPLOYED_IMAGES >= 10  # a rollback
        assert rule["action"] == {"type": "expire"}
    # An image deployed to several environments counts among the later one's (prod's): dev's
    # many deploys never expire the image prod runs.
    assert [r["selection"]["tagPrefixList"][0] for r in rules if r in kept.values()] == list(
        reversed(prefixes)
    )


def test_github_oidc_provider(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::OIDCProvider",
        {
            "Url": "https://token.actions.githubusercontent.com",
            "ClientIdList": ["sts.amazonaws.com"],
        },
    )


ENVS = list(DEPLOY_ENVIRONMENTS)


def _roles(template: assertions.Template) -> dict[str, dict[str, Any]]:
    """The deploy roles by environment (their names end in -<env>)."""
    roles = template.find_resources(
        "AWS::IAM::Role",
        {"Properties": {"RoleName": assertions.Match.string_like_regexp("github-deploy")}},
    )
    return {r["Properties"]["RoleName"].rsplit("-", 1)[1]: r for r in roles.values()}


def _statements(template: assertions.Template, env: str) -> list[dict[str, Any]]:
    (policy,) = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if f"Deploy{env}" in str(p["Properties"]["Roles"])
    ]
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_one_deploy_role_per_environment(template: assertions.Template) -> None:
    assert sorted(_roles(template)) == sorted(ENVS)


@pytest.mark.parametrize("env", ENVS)
def test_each_role_trusts_exactly_its_own_environment(
    template: assertions.Template, env: str
) -> None:
    role = _roles(template)[env]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = statement["Condition"]
    assert set(conditions) == {"StringEquals"}
    assert conditions["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": (
            f"repo:example-org/order-service:environment:{env}"
        ),
    }
    assert "ManagedPolicyArns" not in role["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_no_role_can_reach_another_environment(template: assertions.Template, env: str) -> None:
    own = ENVIRONMENTS[env]
    others = [ENVIRONMENTS[e] for e in ENVS if e != env]
    for statement in _statements(template, env):
        text = json.dumps(statement["Resource"]) + json.dumps(statement.get("Condition", {}))
        for other in others:
            assert f"cdk-{other.cdk_qualifier}-" not in text, statement
            assert f"{other.stack_name}-" not in text and f"{other.stack_name}/" not in text
            assert f"order-service-{other.name}-" not in text
        if "sts:AssumeRole" in _actions(statement):
            # Exactly the deploy and file-publishing roles: a wildcard would admit the lookup
            # role, which reads the whole account.
            roles = json.dumps(statement["Resource"])
            assert "*" not in roles, statement
            for kind in ("deploy", "file-publishing"):
                assert f"role/cdk-{own.cdk_qualifier}-{kind}-role-" in roles
            assert len(statement["Resource"]) == 2
    for statement in _statements(template, env):
        if statement["Resource"] != "*":
            assert "OrderService-*" not in json.dumps(statement["Resource"])


@pytest.mark.parametrize("env", ENVS)
def test_deploy_role_has_no_wildcard_actions(template: assertions.Template, env: str) -> None:
    for statement in _statements(template, env):
        for action in _actions(statement):
            assert "*" not in action.split(":")[1], statement
        assert statement["Effect"] == "Allow"


@pytest.mark.parametrize("env", ENVS)
def test_star_resources_only_where_aws_allows_nothing_else(
    template: assertions.Template, env: str
) -> None:
    star = set()
    for statement in _statements(template, env):
        if statement["Resource"] == "*":
            star.update(_actions(statement))
    expected = {"ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"}
    if env == DEPLOY_ENVIRONMENTS[0]:  # the image builder logs in to ECR
        expected.add("ecr:GetAuthorizationToken")
    assert star == expected


LAYER_UPLOAD = {"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}


def test_only_the_first_environment_pushes_images(template: assertions.Template) -> None:
    pushers = {
        env
        for env in ENVS
        if any(LAYER_UPLOAD & set(_actions(s)) for s in _statements(template, env))
    }
    assert pushers == {DEPLOY_ENVIRONMENTS[0]}


@pytest.mark.parametrize("env", ENVS)
def test_every_environment_may_tag_the_image_it_deploys(
    template: assertions.Template, env: str
) -> None:
    # A known manifest under a new tag (tags are immutable): deploy-environment.yml.
    (statement,) = [s for s in _statements(template, env) if s.get("Sid") == "TagDeployedImage"]
    assert set(_actions(statement)) == {"ecr:BatchGetImage", "ecr:PutImage"}
    assert "Repository" in json.dumps(statement["Resource"])


@pytest.mark.parametrize("env", ENVS)
def test_pass_role_only_to_ecs_tasks(template: assertions.Template, env: str) -> None:
    (statement,) = [s for s in _statements(template, env) if s["Action"] == "iam:PassRole"]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


def _execution_statements(template: assertions.Template, env: str) -> list[dict[str, Any]]:
    policies = template.find_resources(
        "AWS::IAM::ManagedPolicy",
        {
            "Properties": {
                "ManagedPolicyName": assertions.Match.string_like_regexp(
                    f"^order-service-{env}-cfn-execution-[0-9]+$"
                )
            }
        },
    ).values()
    assert policies
    return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("env", ENVS)
def test_execution_policy_is_scoped_to_the_environments_stack(
    template: assertions.Template, env: str
) -> None:
    stack_roles = f"role/{ENVIRONMENTS[env].stack_name}-*"
    for statement in _execution_statements(template, env):
        actions = _actions(statement)
        for action in actions:
            assert "*" not in action, statement  # every action named, no service:*
        if any(a.startswith("iam:") and a != "iam:CreateServiceLinkedRole" for a in actions):
            assert stack_roles in json.dumps(statement["Resource"]), statement


@pytest.mark.parametrize("env", ENVS)
def test_a_role_is_created_only_with_the_environments_boundary(
    template: assertions.Template, env: str
) -> None:
    granting = [
        s
        for s in _execution_statements(template, env)
        if {"iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"}
        & set(_actions(s))
    ]
    assert granting
    for statement in granting:
        (boundary,) = statement["Condition"]["StringEquals"].values()
        assert f"policy/order-service-{env}-boundary" in json.dumps(boundary)
    removers = {"iam:DeleteRolePermissionsBoundary", "iam:AttachRolePolicy"}
    for statement in _execution_statements(template, env):
        assert not removers & set(_actions(statement)), statement


@pytest.mark.parametrize("env", ENVS)
def test_execution_policies_fit_the_managed_policy_quota(
    template: assertions.Template, env: str
) -> None:
    from order_infra.execution_policy import MANAGED_POLICY_MAX_CHARS
    from tools.policy_scan import resolve

    policies = template.find_resources("AWS::IAM::ManagedPolicy").values()
    for policy in policies:
        document = resolve(policy["Properties"]["PolicyDocument"], "ap-southeast-7")
        assert len(json.dumps(document, separators=(",", ":"))) < MANAGED_POLICY_MAX_CHARS


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({}, "githubRepository"),
        ({"githubRepository": "no-slash"}, "owner/name"),
        ({"githubRepository": "o/r", "githubEnvironments": "qa"}, "unknown environments"),
        ({"githubRepository": "o/r", "githubEnvironments": ","}, "at least one"),
    ],
)
def test_bootstrap_app_rejects_bad_context(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_app.build(App(context=context))


@pytest.mark.parametrize("env", ENVS)
def test_deploy_role_can_run_and_stop_the_migration_task_only_in_its_clusters(
    template: assertions.Template, env: str
) -> None:
    by_action = {}
    for statement in _statements(template, env):
        for action in _actions(statement):
            by_action[action] = statement
    assert f"task/OrderService-{env}-" in str(by_action["ecs:StopTask"]["Resource"])
    assert f"cluster/OrderService-{env}-" in str(by_action["ecs:RunTask"]["Condition"])


def test_bootstrap_needs_no_cdk_bootstrap(template: assertions.Template) -> None:
    # Deployed with an administrator's credentials before any (scoped) CDK bootstrap exists.
    assert "BootstrapVersion" not in template.to_json().get("Parameters", {})


# CloudFormation resource namespace -> IAM service prefix.
SERVICE_OF = {
    "ApplicationAutoScaling": "application-autoscaling",
    "CloudWatch": "cloudwatch",
    "EC2": "ec2",
    "ECS": "ecs",
    "ElasticLoadBalancingV2": "elasticloadbalancing",
    "Events": "events",
    "KMS": "kms",
    "Lambda": "lambda",
    "Logs": "logs",
    "RDS": "rds",
    "S3": "s3",
    "SNS": "sns",
    "SQS": "sqs",
    "SecretsManager": "secretsmanager",
}


@pytest.mark.parametrize("env", ENVS)
def test_execution_policy_covers_every_resource_of_the_stack(
    synthesized: dict[str, SynthReport], env: str
) -> None:
    resources = template_json(synthesized[env])["Resources"].values()
    # A custom resource (Custom::...) is CloudFormation invoking its function: lambda.
    namespaces = {
        "Lambda" if r["Type"].startswith("Custom::") else r["Type"].split("::")[1]
        for r in resources
    } - {"IAM"}  # IAM: own roles
    assert namespaces <= set(SERVICE_OF), namespaces - set(SERVICE_OF)
    bootstrap = assertions.Template.from_json(template_json(synthesized["bootstrap"]))
    granted = {
        action.split(":")[0]
        for statement in _execution_statements(bootstrap, env)
        for action in _actions(statement)
    }
    assert {SERVICE_OF[n] for n in namespaces} <= granted


def _account_template(context: dict[str, str]) -> dict[str, Any]:
    stack = bootstrap_app.build(App(context={"githubRepository": "o/r", **context}))
    return dict(assertions.Template.from_stack(stack).to_json())


def test_the_image_account_replicates_the_repository_to_the_other_accounts() -> None:
    template = _account_template(
        {"githubEnvironments": "dev", "replicateImagesTo": "222222222222,333333333333"}
    )
    (replication,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ECR::ReplicationConfiguration"
    ]
    (rule,) = replication["Properties"]["ReplicationConfiguration"]["Rules"]
    assert [d["RegistryId"] for d in rule["Destinations"]] == ["222222222222", "333333333333"]
    assert {d["Region"] for d in rule["Destinations"]} == {ENVIRONMENTS["dev"].region}
    assert rule["RepositoryFilters"] == [{"Filter": "order-service", "FilterType": "PREFIX_MATCH"}]


def test_an_environments_account_accepts_images_from_the_image_account_only() -> None:
    template = _account_template(
        {"githubEnvironments": "prod", "imagesFromAccount": "111111111111"}
    )
    (policy,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::ECR::RegistryPolicy"
    ]
    (statement,) = policy["Properties"]["PolicyText"]["Statement"]
    principal = json.dumps(statement["Principal"])
    assert ":iam::111111111111:root" in principal
    assert sorted(statement["Action"]) == ["ecr:CreateRepository", "ecr:ReplicateImage"]
    assert "repository/order-service" in json.dumps(statement["Resource"])
    # prod, alone in its account, is still not the image builder: it may not push layers.
    text = json.dumps(template)
    for action in LAYER_UPLOAD:
        assert action not in text
    assert "AWS::ECR::ReplicationConfiguration" not in text
    # It tags the image it deploys in its own account's repository (the replicated copy), and
    # that repository's lifecycle keeps prod's deployed images before it expires any image.
    (repository_id,) = [
        name for name, r in template["Resources"].items() if r["Type"] == "AWS::ECR::Repository"
    ]
    (tagging,) = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "TagDeployedImage"
    ]
    assert tagging["Resource"] == {"Fn::GetAtt": [repository_id, "Arn"]}
    rules = _lifecycle_rules(assertions.Template.from_json(template))
    assert [r["selection"].get("tagPrefixList") for r in rules] == [
        None,
        [DEPLOYED_TAG_PREFIX.format(env="prod")],
        None,
    ]
    assert rules[-1]["selection"]["tagStatus"] == "any"


def test_a_bad_account_id_is_refused() -> None:
    with pytest.raises(ValueError, match="12-digit account id"):
        _account_template({"replicateImagesTo": "12345"})


def test_no_arn_template_is_left_unformatted(synthesized: dict[str, SynthReport]) -> None:
    # Grants are written with {partition}, {region}, {account}; one left in a policy (in a
    # condition, say) never matches a real ARN, and IAM accepts it without a word.
    for label, report in synthesized.items():
        for path in report.templates.values():
            text = path.read_text()
            for placeholder in ("{partition}", "{region}", "{account}"):
                assert placeholder not in text, (label, path.name, placeholder)
