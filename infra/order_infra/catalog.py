"""What the config's instance classes are: memory, vCPUs, burstable or not, and the list prices
that docs/cost.md is computed from. One table, so alarms, capacity and cost agree.

Prices: eu-west-1 (Ireland), on-demand, USD, as listed by AWS in 2025; 730 hours a month.
Check them against the AWS Pricing Calculator before a budget decision.
"""

from __future__ import annotations

from dataclasses import dataclass

REGION_PRICED = "eu-west-1"
HOURS_PER_MONTH = 730
GIB = 1024**3
# RDS for PostgreSQL's default: max_connections = LEAST(DBInstanceClassMemory / 9531392, 5000).
# DBInstanceClassMemory is the class's memory minus what RDS keeps for the OS and its agents:
# taken as 90% here, which is why the figures are estimates (SHOW max_connections is the truth).
RDS_MAX_CONNECTIONS_DIVISOR = 9_531_392
RDS_USABLE_MEMORY_SHARE = 0.9
# Connections RDS holds whatever the application does: superuser_reserved_connections (3) and
# the rdsadmin sessions (monitoring, up to 3 seen).
RDS_RESERVED_CONNECTIONS = 6


@dataclass(frozen=True, kw_only=True)
class DatabaseClass:
    memory_gib: float
    vcpus: int
    burstable: bool
    usd_per_hour: float  # single-AZ; Multi-AZ (one standby) is twice this
    baseline_cpu_share: float = 1.0  # burstable classes: the share of a vCPU sustained

    @property
    def max_connections(self) -> int:
        usable = self.memory_gib * GIB * RDS_USABLE_MEMORY_SHARE
        return min(int(usable / RDS_MAX_CONNECTIONS_DIVISOR), 5000)


DATABASE_CLASSES: dict[str, DatabaseClass] = {
    "t4g.micro": DatabaseClass(
        memory_gib=1, vcpus=2, burstable=True, usd_per_hour=0.018, baseline_cpu_share=0.10
    ),
    "t4g.small": DatabaseClass(
        memory_gib=2, vcpus=2, burstable=True, usd_per_hour=0.036, baseline_cpu_share=0.20
    ),
    "t4g.medium": DatabaseClass(
        memory_gib=4, vcpus=2, burstable=True, usd_per_hour=0.072, baseline_cpu_share=0.20
    ),
    "m7g.large": DatabaseClass(memory_gib=8, vcpus=2, burstable=False, usd_per_hour=0.183),
    "m7g.xlarge": DatabaseClass(memory_gib=16, vcpus=4, burstable=False, usd_per_hour=0.366),
    "m7g.2xlarge": DatabaseClass(memory_gib=32, vcpus=8, burstable=False, usd_per_hour=0.732),
    "r7g.large": DatabaseClass(memory_gib=16, vcpus=2, burstable=False, usd_per_hour=0.262),
}


def database_class(instance_type: str) -> DatabaseClass:
    try:
        return DATABASE_CLASSES[instance_type]
    except KeyError:
        raise ValueError(
            f"unknown database class {instance_type!r}: add it to infra/order_infra/catalog.py"
        ) from None


# Everything else docs/cost.md prices (eu-west-1, USD).
RDS_GP3_USD_PER_GIB_MONTH = 0.127  # doubled for Multi-AZ
RDS_BACKUP_USD_PER_GIB_MONTH = 0.095  # beyond the free amount (= the allocated storage)
FARGATE_ARM_USD_PER_VCPU_HOUR = 0.03238
FARGATE_ARM_USD_PER_GIB_HOUR = 0.00356
FARGATE_SPOT_DISCOUNT = 0.70  # typical; Spot prices move
NAT_USD_PER_HOUR = 0.048
NAT_USD_PER_GIB = 0.048
INTERFACE_ENDPOINT_USD_PER_AZ_HOUR = 0.011
INTERFACE_ENDPOINT_USD_PER_GIB = 0.01
ALB_USD_PER_HOUR = 0.0252
ALB_USD_PER_LCU_HOUR = 0.008
PUBLIC_IPV4_USD_PER_HOUR = 0.005
CLOUDWATCH_LOGS_USD_PER_GIB = 0.57  # ingestion (us-east-1: 0.50)
CLOUDWATCH_LOGS_STORAGE_USD_PER_GIB_MONTH = 0.03
CLOUDWATCH_ALARM_USD_PER_MONTH = 0.10  # standard resolution, per metric in the alarm
CLOUDWATCH_DASHBOARD_USD_PER_MONTH = 3.0
CLOUDWATCH_METRIC_USD_PER_MONTH = 0.30  # custom metrics (EMF, Container Insights)
KMS_KEY_USD_PER_MONTH = 1.0
SECRET_USD_PER_MONTH = 0.40
SQS_USD_PER_MILLION_REQUESTS = 0.40
# AWS X-Ray, per trace (aws.amazon.com/xray/pricing as read in 2026; one rate on the page):
# recorded, and retrieved or scanned, each beyond its monthly free tier.
XRAY_USD_PER_MILLION_TRACES_RECORDED = 5.0
XRAY_USD_PER_MILLION_TRACES_RETRIEVED = 0.50
XRAY_FREE_TRACES_RECORDED_PER_MONTH = 100_000
XRAY_FREE_TRACES_RETRIEVED_PER_MONTH = 1_000_000
