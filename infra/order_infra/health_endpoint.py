"""The ALB that exists for the worker's /health: a target group, a listener that forwards only
GET/HEAD /health, and the bucket of its access logs."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .config import HEALTH_PATH, HEALTH_PORT
from .nag import acknowledge


class HealthEndpoint(Construct):
    """ALB, listener, /health target group (IP targets) and access-log bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        ingress_cidrs: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)

        self.security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=vpc,
            description="order-service ALB: HTTP in, health checks out to the tasks",
            allow_all_outbound=False,
        )
        for cidr in ingress_cidrs:
            self.security_group.add_ingress_rule(
                ec2.Peer.ipv4(cidr), ec2.Port.tcp(80), "HTTP; only /health is forwarded"
            )
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption ALB logs support
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            vpc_subnets=subnets,
            internet_facing=True,
            security_group=self.security_group,
            drop_invalid_header_fields=True,
        )
        self.load_balancer.log_access_logs(self.access_log_bucket, prefix="alb")
        # Everything but GET/HEAD /health gets a fixed 404: /ready and /metrics stay private.
        self.listener = self.load_balancer.add_listener(
            "Http",
            port=80,
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(
                404, content_type="text/plain", message_body="Not Found"
            ),
        )
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "HealthTargets",
            vpc=vpc,
            port=HEALTH_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=Duration.seconds(10),
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
        )
        self.listener.add_action(
            "Health",
            priority=10,
            conditions=[
                elbv2.ListenerCondition.path_patterns([HEALTH_PATH]),
                elbv2.ListenerCondition.http_request_methods(["GET", "HEAD"]),
            ],
            action=elbv2.ListenerAction.forward([self.target_group]),
        )

        acknowledge(
            self.access_log_bucket,
            "AwsSolutions-S1",
            "This bucket receives the ALB access logs; logging its own access would "
            "need another bucket that records reads of logs nobody reads but operators.",
        )
        if "0.0.0.0/0" in ingress_cidrs:
            acknowledge(
                self.security_group,
                "AwsSolutions-EC23",
                "Public ALB on purpose: the listener forwards only GET/HEAD /health "
                "(no data, no auth) and answers a fixed 404 to everything else.",
            )
