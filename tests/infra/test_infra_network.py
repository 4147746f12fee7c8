from __future__ import annotations

import pytest
from aws_cdk import App, Environment, RemovalPolicy, Stack, assertions
from aws_cdk import aws_logs as logs

from order_infra.network import INTERFACE_ENDPOINTS, Network


def _network(*, azs: list[str], nat: int, endpoints: bool) -> assertions.Template:
    stack = Stack(App(), "Test", env=Environment(region="eu-west-1"))
    Network(
        stack,
        "Network",
        cidr="10.0.0.0/16",
        availability_zones=azs,
        nat_gateways=nat,
        interface_endpoints=endpoints,
        flow_log_retention=logs.RetentionDays.ONE_WEEK,
        removal_policy=RemovalPolicy.DESTROY,
    )
    return assertions.Template.from_stack(stack)


@pytest.fixture(scope="module")
def small() -> assertions.Template:
    return _network(azs=["eu-west-1a", "eu-west-1b"], nat=1, endpoints=False)


@pytest.fixture(scope="module")
def large() -> assertions.Template:
    return _network(azs=["eu-west-1a", "eu-west-1b", "eu-west-1c"], nat=3, endpoints=True)


def test_three_tiers_per_az(small: assertions.Template, large: assertions.Template) -> None:
    small.resource_count_is("AWS::EC2::Subnet", 6)
    large.resource_count_is("AWS::EC2::Subnet", 9)
    small.resource_count_is("AWS::EC2::NatGateway", 1)
    large.resource_count_is("AWS::EC2::NatGateway", 3)


def test_azs_are_literal_not_looked_up(large: assertions.Template) -> None:
    for az in ("eu-west-1a", "eu-west-1b", "eu-west-1c"):
        large.has_resource_properties("AWS::EC2::Subnet", {"AvailabilityZone": az})


def test_flow_logs_capture_all_traffic(small: assertions.Template) -> None:
    small.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    small.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 7})


def test_s3_gateway_always_interface_endpoints_as_option(
    small: assertions.Template, large: assertions.Template
) -> None:
    small.resource_count_is("AWS::EC2::VPCEndpoint", 1)
    large.resource_count_is("AWS::EC2::VPCEndpoint", 1 + len(INTERFACE_ENDPOINTS))
    large.has_resource_properties(
        "AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Interface", "PrivateDnsEnabled": True}
    )
