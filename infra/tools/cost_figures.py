"""docs/cost.md's table: the monthly fixed cost of each environment at list prices, with the
one line of config that changes each item, and the cost per million orders from the bench
(tracing's too, for infra/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from order_infra.catalog import GIB, database_class
from order_infra.config import ENVIRONMENTS, EnvironmentConfig
from order_infra.tracing import COLLECTOR_CPU_UNITS, COLLECTOR_MEMORY_MIB

from . import prices as c  # the list prices

H = c.HOURS_PER_MONTH
INTERFACE_ENDPOINTS_COUNT = 5  # network.py's INTERFACE_ENDPOINTS (pinned by a test)
NAT_GIB_PER_MONTH = {"dev": 10, "staging": 20, "prod": 100}  # mostly image pulls and SQS
LOG_GIB_PER_MONTH = {"dev": 2, "staging": 3, "prod": 10}  # worker, flow logs, CI migrations
# Alarm metrics a month (a metric-math alarm pays for each metric it reads), EMF metrics and
# Container Insights' service-level metrics (about 20 for one service with its tasks).
EMF_METRICS = 13  # with the outbox's parked rows and relay faults (issue 21)
CONTAINER_INSIGHTS_METRICS = 20
# Enhanced Monitoring's OS metrics (issue 26) go to CloudWatch Logs: an estimate of about 12 KB
# a sample, one instance (Multi-AZ: the primary only), a sample a minute.
ENHANCED_MONITORING_KB_PER_SAMPLE = 12


@dataclass(frozen=True)
class Item:
    kind: str
    detail: str  # what this environment runs of it
    usd: float
    config_line: str


def alarm_metrics(config: EnvironmentConfig) -> int:
    """Metrics read by the alarms (pinned to the synthesized template by a test)."""
    burstable = database_class(config.db_instance_type).burstable
    # DLQ, oldest, quiet tenants' oldest, unhealthy, healthy, 5-6 RDS, paused
    single = 10 + (1 if burstable else 0)
    # invalid rate: 6 outcomes; lag: 6 outcomes + visible + held; the outbox relay's lag and
    # its parked rows: 1 each
    return single + 6 + 8 + 2


def kms_keys(config: EnvironmentConfig) -> list[str]:
    """The KMS keys an environment's stack creates (pinned to the synthesized templates by a
    test, so a new one shows in docs/cost.md)."""
    keys = ["alarm topic", "status topic"]
    if config.db_storage_key != "aws-managed":
        keys.append("database storage")
    return keys


def secrets(config: EnvironmentConfig) -> list[str]:
    """The secrets an environment's stack creates, RDS's managed master secret included (it is
    billed like any other; pinned to the templates by the same test)."""
    return ["application role", "RDS-managed master user"]


def enhanced_monitoring_gib(config: EnvironmentConfig) -> float:
    seconds = config.db_observability.enhanced_monitoring_seconds
    if not seconds:
        return 0.0
    samples = H * 3600 / seconds
    return samples * ENHANCED_MONITORING_KB_PER_SAMPLE * 1024 / GIB


def items(config: EnvironmentConfig) -> list[Item]:
    azs = len(config.availability_zones)
    copies = 2 if config.db_multi_az else 1
    vcpu, gib = config.task_cpu / 1024, config.task_memory_mib / 1024
    task_hour = vcpu * c.FARGATE_ARM_USD_PER_VCPU_HOUR + gib * c.FARGATE_ARM_USD_PER_GIB_HOUR
    spot = 1 - c.FARGATE_SPOT_DISCOUNT if config.fargate_spot else 1.0
    endpoints = INTERFACE_ENDPOINTS_COUNT * azs if config.interface_endpoints else 0
    logs = LOG_GIB_PER_MONTH[config.name]
    found = [
        Item(
            "NAT gateways",
            f"{config.nat_gateways}, {NAT_GIB_PER_MONTH[config.name]} GiB",
            config.nat_gateways * c.NAT_USD_PER_HOUR * H
            + NAT_GIB_PER_MONTH[config.name] * c.NAT_USD_PER_GIB,
            f"nat_gateways={config.nat_gateways}",
        ),
        Item(
            "Interface endpoints",
            f"{INTERFACE_ENDPOINTS_COUNT} x {azs} AZs" if endpoints else "none",
            endpoints * c.INTERFACE_ENDPOINT_USD_PER_AZ_HOUR * H,
            f"interface_endpoints={config.interface_endpoints}",
        ),
        Item(
            "Public IPv4 addresses",
            f"{config.nat_gateways} NAT + {azs} ALB",
            (config.nat_gateways + azs) * c.PUBLIC_IPV4_USD_PER_HOUR * H,
            f"nat_gateways={config.nat_gateways}",
        ),
        Item(
            "Load balancer",
            "1 LCU",
            (c.ALB_USD_PER_HOUR + c.ALB_USD_PER_LCU_HOUR) * H,
            "(fixed: the /health endpoint)",
        ),
        Item(
            "RDS instance",
            f"db.{config.db_instance_type}" + (" Multi-AZ" if config.db_multi_az else ""),
            c.database_usd_per_hour(config.db_instance_type) * copies * H,
            f'db_instance_type="{config.db_instance_type}", db_multi_az={config.db_multi_az}',
        ),
        Item(
            "RDS storage",
            f"gp3 {config.db_allocated_storage_gib} GiB" + (" x 2" if config.db_multi_az else ""),
            config.db_allocated_storage_gib * c.RDS_GP3_USD_PER_GIB_MONTH * copies,
            f"db_allocated_storage_gib={config.db_allocated_storage_gib}",
        ),
        Item(
            "Fargate (min_tasks, ARM64)",
            f"{config.min_tasks} x {vcpu:g} vCPU / {gib:g} GiB"
            + (" Spot" if config.fargate_spot else ""),
            config.min_tasks * task_hour * spot * H,
            f"min_tasks={config.min_tasks}, task_cpu={config.task_cpu}, "
            f"fargate_spot={config.fargate_spot}",
        ),
        Item(
            "CloudWatch",
            f"{alarm_metrics(config)} alarm metrics, dashboard, "
            f"{EMF_METRICS + CONTAINER_INSIGHTS_METRICS} metrics, {logs} GiB logs",
            alarm_metrics(config) * c.CLOUDWATCH_ALARM_USD_PER_MONTH
            + c.CLOUDWATCH_DASHBOARD_USD_PER_MONTH
            + (EMF_METRICS + CONTAINER_INSIGHTS_METRICS) * c.CLOUDWATCH_METRIC_USD_PER_MONTH
            + logs * (c.CLOUDWATCH_LOGS_USD_PER_GIB + c.CLOUDWATCH_LOGS_STORAGE_USD_PER_GIB_MONTH),
            f'log_messages="{config.log_messages}", log_retention_days={config.log_retention_days}',
        ),
        Item(
            "KMS keys",
            f"{len(kms_keys(config))} keys: " + ", ".join(kms_keys(config)),
            len(kms_keys(config)) * c.KMS_KEY_USD_PER_MONTH,
            f'db_storage_key="{config.db_storage_key}"',
        ),
        Item(
            "Secrets",
            f"{len(secrets(config))} secrets: " + ", ".join(secrets(config)),
            len(secrets(config)) * c.SECRET_USD_PER_MONTH,
            "(fixed)",
        ),
        Item(
            "RDS Performance Insights, Enhanced Monitoring",
            (
                f"7 days of Performance Insights at no charge, Enhanced Monitoring every "
                f"{config.db_observability.enhanced_monitoring_seconds} s: "
                f"{enhanced_monitoring_gib(config):.1f} GiB logs"
            )
            if config.db_observability.off_reason is None
            else "off: config.py says why",
            enhanced_monitoring_gib(config)
            * (c.CLOUDWATCH_LOGS_USD_PER_GIB + c.CLOUDWATCH_LOGS_STORAGE_USD_PER_GIB_MONTH),
            "db_observability=DatabaseObservability(performance_insights=True, "
            "enhanced_monitoring_seconds=60)",
        ),
    ]
    return found


def task_hour_usd(config: EnvironmentConfig) -> float:
    vcpu, gib = config.task_cpu / 1024, config.task_memory_mib / 1024
    spot = 1 - c.FARGATE_SPOT_DISCOUNT if config.fargate_spot else 1.0
    return (vcpu * c.FARGATE_ARM_USD_PER_VCPU_HOUR + gib * c.FARGATE_ARM_USD_PER_GIB_HOUR) * spot


def cost_section() -> str:
    names = list(ENVIRONMENTS)
    by_env = {name: items(ENVIRONMENTS[name]) for name in names}
    lines = [
        "| Item | " + " | ".join(f"{n} (USD)" for n in names) + " | Config line (prod) |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for i, item in enumerate(by_env["prod"]):
        cells = " | ".join(f"{by_env[n][i].usd:,.0f} ({by_env[n][i].detail})" for n in names)
        lines.append(f"| {item.kind} | {cells} | `{item.config_line}` |")
    totals = " | ".join(f"**{sum(x.usd for x in by_env[n]):,.0f}**" for n in names)
    lines.append(f"| **Total a month** | {totals} | |")
    lines.append("")
    lines.append(
        "Each task above min_tasks: "
        + ", ".join(f"{n} ${task_hour_usd(ENVIRONMENTS[n]) * H:,.1f}/month" for n in names)
        + " (scaling adds them only while there is a backlog)."
    )
    return "\n".join(lines)


def per_order_section(results: dict[str, Any]) -> str:
    """What a million orders add, from the bench (us-east-1 list prices, as the bench uses)."""
    sqs = results["sqs_usd_per_million_orders"]
    logs = results.get("log_usd_per_million_orders")
    fargate = results["fargate_usd_per_million_orders"]
    parts = [f"SQS requests ${sqs:.3f}"]
    if "sns_usd_per_million_orders" in results:
        parts.append(f"SNS status events ${results['sns_usd_per_million_orders']:.3f}")
    parts.append(f"Fargate CPU ${fargate:.3f} (the worker with its relay)")
    if logs is not None:
        parts.append(
            f"CloudWatch Logs ${logs:.4f} ({results['log_bytes_per_order']:.1f} bytes/order at "
            "the default LOG_MESSAGES=not-applied; "
            f"{results['log_bytes_per_order_by_profile']['all']:.0f} with every message logged)"
        )
    return "Per million orders (`make bench`): " + ", ".join(parts) + "."


# Traces the worker starts (issue 15's spans): one per poll (`receive`) and one per batch
# (`process`, linked to the producers), each a root, so each sampled one is a recorded trace.
TRICKLE_TRACES_PER_ORDER = 2  # one message per poll and per batch: the most there can be


def traces_per_order(results: dict[str, Any]) -> float:
    """Traces started per order at the bench's batching: its polls and batches per order."""
    return float(1 / messages_per_poll(results) + 1 / results["e2e_mean_batch_messages"])


def messages_per_poll(results: dict[str, Any]) -> float:
    requests = results["sqs_requests_by_action"]
    orders = sum(requests.values()) / results["sqs_requests_per_order"]
    return float(orders / requests["receive_message"])


def tracing_section(results: dict[str, Any]) -> str:
    """What tracing costs per environment: X-Ray per million orders, the collector's share."""
    per_order = traces_per_order(results)
    lines = [
        "| Environment | Sampling | Traces recorded per million orders | X-Ray per million "
        "orders (USD) | Collector in each task |",
        "|---|---|---|---|---|",
    ]
    for name, config in ENVIRONMENTS.items():
        if config.tracing is None:
            lines.append(f"| {name} | off | 0 | 0 | none |")
            continue
        traces = per_order * config.tracing.sampling_ratio * 1e6
        lines.append(
            f"| {name} | {config.tracing.sampling_ratio:.0%} | {traces:,.0f} "
            f"| {traces / 1e6 * c.XRAY_USD_PER_MILLION_TRACES_RECORDED:,.2f} "
            f"| {COLLECTOR_CPU_UNITS} of {config.task_cpu} CPU units, {COLLECTOR_MEMORY_MIB} of "
            f"{config.task_memory_mib} MiB |"
        )
    lines += [
        "",
        f"{per_order:.2f} traces per order at the bench's batching (`make bench`: polls of "
        f"{messages_per_poll(results):.0f}, batches of {results['e2e_mean_batch_messages']:.0f} "
        "messages on average); a trickle, one "
        f"message per poll and per batch, starts {TRICKLE_TRACES_PER_ORDER} "
        f"({TRICKLE_TRACES_PER_ORDER / per_order:.0f} x as many). X-Ray: "
        f"${c.XRAY_USD_PER_MILLION_TRACES_RECORDED:.2f} per million traces recorded beyond "
        f"{c.XRAY_FREE_TRACES_RECORDED_PER_MONTH:,} a month, "
        f"${c.XRAY_USD_PER_MILLION_TRACES_RETRIEVED:.2f} per million retrieved or scanned "
        f"beyond {c.XRAY_FREE_TRACES_RETRIEVED_PER_MONTH:,}; kept 30 days at no charge. The "
        "collector runs within the task's size: no Fargate cost of its own.",
    ]
    return "\n".join(lines)
