"""No deployed resource is replaced by a refactoring: every environment's logical ids are the
ones main had before compute.py was split (fixtures/logical_ids_before_split.json, written from
main's synthesized templates: {label: {logical id: resource type}}), except those listed here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import App, Names, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_sqs as sqs

from order_infra.logical_ids import unique_id
from tests.infra.infra_support import RUNS, template_json
from tools.checks import SynthReport

BEFORE = json.loads((Path(__file__).parent / "fixtures/logical_ids_before_split.json").read_text())
# The apps that existed before the split (dev-fifo, a variant synthesized for its checks, did not).
APP_LABELS = [label for label, run in RUNS.items() if run.app_module == "app" and label in BEFORE]

# Resources that go on purpose, with the reason: by logical id prefix in every environment
# (the security review, before any deploy; some ids start with the stack's id)...
REMOVED_BY_PREFIX = {
    "DatabaseInstanceSecretAttachment": "RDS manages the master password now (its own secret)",
    "DatabaseInstanceSecret": "RDS manages the master password now (its own secret)",
}
# ... and by exact id per environment. Staging and prod paid for NAT gateways and interface
# endpoints both; NAT alone stays (docs/cost.md), so their interface endpoints and the
# endpoints' security group go.
REMOVED_ON_PURPOSE: dict[str, dict[str, str]] = {label: {} for label in APP_LABELS}
_NAT_ONLY = "interface endpoints dropped: NAT only (docs/cost.md)"
for _label in ("staging", "prod"):
    REMOVED_ON_PURPOSE[_label] = {
        f"NetworkVpc{name}": _NAT_ONLY
        for name in (
            "EcrApi2346E672",
            "EcrDocker3B9231AE",
            "Logs87827AD6",
            "SecretsManager9D032D69",
            "Sqs5F6BD5C0",
        )
    } | {"NetworkEndpointSecurityGroup6DEF6240": _NAT_ONLY}
# The tasks' second egress rule to the database (tcp 5432, the rule the IndirectPort one
# already is): EC2 refuses the duplicate on create (issue 19, test_infra_security_group_rules).
_DUPLICATE_RULE = "the same rule twice: EC2 refuses the duplicate (issue 19)"
for _label in APP_LABELS:
    REMOVED_ON_PURPOSE[_label] |= {
        logical_id: _DUPLICATE_RULE
        for logical_id in BEFORE[_label]
        if re.fullmatch(
            r"ComputeTaskSecurityGroupto\w+DatabaseSecurityGroup[0-9A-F]{8}5432\w+", logical_id
        )
    }
# Resource types added on purpose (a new resource is no replacement), with the reason.
ADDED_ON_PURPOSE: dict[str, str] = {
    "AWS::SecretsManager::Secret": "the application role's secret (the worker's credentials)",
    "AWS::IAM::Role": "the migration's own execution role (only it reads the master secret)",
    "AWS::IAM::Policy": "the migration execution role's policy",
    "AWS::CloudWatch::Alarm": "alarms on-call was missing (tasks, database, worker metrics)",
    "AWS::SNS::Subscription": "the environment's alarm subscriber from the config",
    "AWS::Events::Rule": "failed ECS deployments, published to the alarm topic",
    "AWS::SNS::TopicPolicy": "lets EventBridge publish to the alarm topic",
    "AWS::Logs::LogGroup": "the database's audit logs, staging and prod (issue 19)",
    "AWS::ECS::TaskDefinition": "the credential rotation's task (issue 26; its roles and "
    "policies and its schedule, a rule, are kinds listed above)",
}
# The way out (StatusEvents): its topic, key, example subscriber queues and the lag alarm.
ADDED_ON_PURPOSE.update(
    {
        resource_type: "the status events' topic, subscriber and lag alarm (StatusEvents)"
        for resource_type in (
            "AWS::KMS::Key",
            "AWS::SNS::Topic",
            "AWS::SNS::TopicPolicy",
            "AWS::SNS::Subscription",
            "AWS::SQS::Queue",
            "AWS::SQS::QueuePolicy",
            "AWS::CloudWatch::Alarm",
        )
    }
)
# Issue 26: the custom resource that empties the VPC's default security group (its function
# and the function's role: AWS::IAM::Role above), and prod's database key (AWS::KMS::Key above)
# and Enhanced Monitoring role.
ADDED_ON_PURPOSE["AWS::Lambda::Function"] = "restrict_default_security_group's function"
ADDED_ON_PURPOSE["Custom::VpcRestrictDefaultSG"] = "restrict_default_security_group (issue 26)"


def removed_on_purpose(logical_id: str, stack_id: str, label: str) -> bool:
    if logical_id in REMOVED_ON_PURPOSE[label]:
        return True
    return any(logical_id.removeprefix(stack_id).startswith(p) for p in REMOVED_BY_PREFIX)


def test_every_environment_has_a_before_list() -> None:
    assert sorted(BEFORE) == sorted(APP_LABELS)


@pytest.mark.parametrize("label", APP_LABELS)
def test_logical_ids_are_kept(synthesized: dict[str, SynthReport], label: str) -> None:
    now = {k: v["Type"] for k, v in template_json(synthesized[label])["Resources"].items()}
    before: dict[str, str] = BEFORE[label]
    removed = {k for k in before if k not in now}
    stack_id = "OrderService" + RUNS[label].context["env"]
    assert removed == {k for k in before if removed_on_purpose(k, stack_id, label)}
    changed_type = {k for k in before if k in now and now[k] != before[k]}
    assert changed_type == set()
    added = {k: now[k] for k in now if k not in before}
    assert set(added.values()) <= set(ADDED_ON_PURPOSE), added


def test_unique_id_is_the_cdks_algorithm() -> None:
    # Paths with "Default", "Resource", repeated ids and non-alphanumerics, as the CDK names them.
    stack = Stack(App(), "Order-Service")
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=0, max_azs=1)
    queue = sqs.Queue(stack, "Queue")
    ec2.SecurityGroup(stack, "Default", vpc=vpc)
    constructs = [vpc, queue, *vpc.node.find_all(), *queue.node.find_all()]
    for construct in constructs:
        components = construct.node.path.split("/")
        assert unique_id(components) == Names.unique_id(construct), construct.node.path
