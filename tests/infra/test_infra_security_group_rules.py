"""No security-group rule twice, whatever construct wrote it (issue 19).

EC2 identifies a rule by its group, direction, protocol, ports and peer: a second resource for
the same rule fails the create (`InvalidPermission.Duplicate`), and if it did not, deleting one
of the two later would delete the live rule. CDK deduplicates only within one construct's calls,
so two constructs (or an `allow_from` and an `add_egress_rule`) can still write the same rule;
this reads the template as EC2 would.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.infra.infra_support import RUNS, template_json
from tools.checks import SynthReport

RuleKey = tuple[str, str, str, int | None, int | None, str]
# The peer of a rule, by direction: exactly one of these is set.
PEERS = {
    "ingress": ("CidrIp", "CidrIpv6", "SourceSecurityGroupId", "SourcePrefixListId"),
    "egress": ("CidrIp", "CidrIpv6", "DestinationSecurityGroupId", "DestinationPrefixListId"),
}
PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "-1": "all"}
STANDALONE = {
    "AWS::EC2::SecurityGroupIngress": "ingress",
    "AWS::EC2::SecurityGroupEgress": "egress",
}
INLINE = {"SecurityGroupIngress": "ingress", "SecurityGroupEgress": "egress"}


def _reference(value: Any) -> str:
    """A group or peer: a literal, or the logical id that `Ref` / `GetAtt .GroupId` names."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        if attribute == "GroupId":
            return str(logical_id)
    raise AssertionError(f"cannot tell which group {value!r} is")


def _port(value: Any, resources: dict[str, Any]) -> int:
    """A port as EC2 sees it: a literal, or a database's `Endpoint.Port` (its Port property)."""
    if isinstance(value, int | str):
        return int(value)
    logical_id, attribute = value["Fn::GetAtt"]
    database = resources[logical_id]
    assert (database["Type"], attribute) == ("AWS::RDS::DBInstance", "Endpoint.Port"), value
    return int(database["Properties"]["Port"])


def _key(group: str, direction: str, rule: dict[str, Any], resources: dict[str, Any]) -> RuleKey:
    protocol = str(rule["IpProtocol"]).lower()
    protocol = PROTOCOLS.get(protocol, protocol)
    (peer,) = [_reference(rule[name]) for name in PEERS[direction] if name in rule]
    if protocol == "all":  # every port
        return (group, direction, protocol, None, None, peer)
    return (
        group,
        direction,
        protocol,
        _port(rule["FromPort"], resources),
        _port(rule["ToPort"], resources),
        peer,
    )


def rule_keys(template: dict[str, Any]) -> list[RuleKey]:
    """Every rule of the template: inline in a security group or a resource of its own."""
    resources: dict[str, Any] = template["Resources"]
    keys = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] in STANDALONE:
            group = _reference(props["GroupId"])
            keys.append(_key(group, STANDALONE[resource["Type"]], props, resources))
        elif resource["Type"] == "AWS::EC2::SecurityGroup":
            for field, direction in INLINE.items():
                for rule in props.get(field, []):
                    keys.append(_key(logical_id, direction, rule, resources))
    return keys


def duplicates(template: dict[str, Any]) -> list[RuleKey]:
    return [key for key, count in Counter(rule_keys(template)).items() if count > 1]


@pytest.mark.parametrize("label", [label for label, run in RUNS.items() if run.app_module == "app"])
def test_no_security_group_rule_is_described_twice(
    synthesized: dict[str, SynthReport], label: str
) -> None:
    template = template_json(synthesized[label])  # every environment, dev-dummy too
    assert rule_keys(template)  # the templates do have rules to compare
    assert duplicates(template) == []


def test_the_tasks_reach_the_database_by_exactly_one_rule_each_way(
    synthesized: dict[str, SynthReport],
) -> None:
    keys = rule_keys(template_json(synthesized["prod"]))
    to_database = [k for k in keys if k[2:5] == ("tcp", 5432, 5432)]
    assert sorted(k[1] for k in to_database) == ["egress", "ingress"]


# The comparison itself: one rule written in the two ways the templates use must be one rule.
_RESOURCES: dict[str, Any] = {
    "Db": {"Type": "AWS::RDS::DBInstance", "Properties": {"Port": "5432"}},
    "Tasks": {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "SecurityGroupEgress": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 5432,
                    "ToPort": 5432,
                    "DestinationSecurityGroupId": {"Fn::GetAtt": ["DbGroup", "GroupId"]},
                }
            ]
        },
    },
    "TasksToDb": {
        "Type": "AWS::EC2::SecurityGroupEgress",
        "Properties": {
            "GroupId": {"Fn::GetAtt": ["Tasks", "GroupId"]},
            "IpProtocol": "6",
            "FromPort": {"Fn::GetAtt": ["Db", "Endpoint.Port"]},
            "ToPort": {"Fn::GetAtt": ["Db", "Endpoint.Port"]},
            "DestinationSecurityGroupId": {"Ref": "DbGroup"},
            "Description": "a different description is still the same rule",
        },
    },
}


def test_an_inline_rule_and_a_resource_for_the_same_rule_are_one_rule() -> None:
    assert duplicates({"Resources": _RESOURCES}) == [
        ("Tasks", "egress", "tcp", 5432, 5432, "DbGroup")
    ]


def test_another_port_or_peer_is_another_rule() -> None:
    resources = {**_RESOURCES, "TasksToDb": _with(_RESOURCES["TasksToDb"], ToPort=5433)}
    assert duplicates({"Resources": resources}) == []
    resources = {**_RESOURCES, "TasksToDb": _with(_RESOURCES["TasksToDb"], CidrIp="10.0.0.0/8")}
    resources["TasksToDb"]["Properties"].pop("DestinationSecurityGroupId")
    assert duplicates({"Resources": resources}) == []


def _with(resource: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {**resource, "Properties": {**resource["Properties"], **props}}
