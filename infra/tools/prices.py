"""The list prices docs/cost.md is computed from (cost_figures.py), one table.

Prices: eu-west-1 (Ireland), on-demand, USD, as listed by AWS in 2025; 730 hours a month.
Check them against the AWS Pricing Calculator before a budget decision.
"""

from __future__ import annotations

REGION_PRICED = "eu-west-1"
HOURS_PER_MONTH = 730

# RDS instances, single-AZ; Multi-AZ (one standby) is twice this. Every class of
# order_infra/catalog.py has its price (tests/infra/test_tools_layout.py checks).
DATABASE_USD_PER_HOUR: dict[str, float] = {
    "t4g.micro": 0.018,
    "t4g.small": 0.036,
    "t4g.medium": 0.072,
    "m7g.large": 0.183,
    "m7g.xlarge": 0.366,
    "m7g.2xlarge": 0.732,
    "r7g.large": 0.262,
}


def database_usd_per_hour(instance_type: str) -> float:
    if instance_type not in DATABASE_USD_PER_HOUR:
        raise ValueError(f"no price for db.{instance_type}: add it to infra/tools/prices.py")
    return DATABASE_USD_PER_HOUR[instance_type]


# Everything else docs/cost.md prices.
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
