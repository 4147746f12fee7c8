from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack, assertions
from aws_cdk import aws_ec2 as ec2

from order_infra.health_endpoint import HealthEndpoint

Match = assertions.Match


@pytest.fixture(scope="module")
def template() -> assertions.Template:
    stack = Stack(App(), "Test", env=Environment(region="eu-west-1"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"], nat_gateways=1)
    HealthEndpoint(
        stack,
        "HealthEndpoint",
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        ingress_cidrs=["0.0.0.0/0"],
    )
    return assertions.Template.from_stack(stack)


def test_alb_exposes_only_health(template: assertions.Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "DefaultActions": [
                Match.object_like(
                    {
                        "Type": "fixed-response",
                        "FixedResponseConfig": Match.object_like({"StatusCode": "404"}),
                    }
                )
            ],
        },
    )
    rules = template.find_resources("AWS::ElasticLoadBalancingV2::ListenerRule")
    (rule,) = rules.values()
    conditions = rule["Properties"]["Conditions"]
    paths = [c["PathPatternConfig"]["Values"] for c in conditions if c["Field"] == "path-pattern"]
    assert paths == [["/health"]]
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": "/health", "Port": 8080, "TargetType": "ip"},
    )
