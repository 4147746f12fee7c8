"""docs/capacity.md's figures, computed from bench/results.json, the config and the catalog."""

from __future__ import annotations

from typing import Any

from order_infra.catalog import DATABASE_CLASSES, RDS_RESERVED_CONNECTIONS, database_class
from order_infra.config import ENVIRONMENTS, EnvironmentConfig

# The worker's DB_POOL_SIZE default (pinned to Settings by tests/infra/test_docs_figures.py).
WORKER_DB_POOL_SIZE = 4
MIGRATION_CONNECTIONS = 1  # the one-off migration task: alembic on one connection
DEPLOYMENT_MAX_PERCENT = 200  # the service's maximumPercent: a rolling deploy doubles tasks
PLANNING_SHARE = 0.5  # stated task rates stay below half of what one task measures
DATABASE_CPU_SHARE = 0.6  # plan a writer to 60% CPU at peak (alarm at 80%)
EVENTS_PER_ORDER = 3  # placed, paid, shipped: the usual lifecycle
PARTITION_ROWS = 200_000_000  # order_events rows past which time partitions pay off
AVERAGE_RATES = (10, 100, 1000)  # orders/s averaged over a day, for the growth figures


def worker_ms_per_order(results: dict[str, Any]) -> float:
    """The worker's CPU per order as deployed: with its outbox relay publishing (the stack
    always configures the status topic), where the bench has measured it."""
    return float(results.get("outbox_worker_cpu_ms_per_order", results["worker_cpu_ms_per_order"]))


def task_ceiling(results: dict[str, Any], vcpus: float) -> float:
    """Orders/s one task of `vcpus` can carry: its vCPUs over the bench's worker CPU per
    order. Not the end-to-end rate: that one is bounded by the local SQS endpoint and by the
    other jobs on the bench's host, neither of which a Fargate task shares."""
    return vcpus * 1000 / worker_ms_per_order(results)


def database_ms_per_order(results: dict[str, Any]) -> float:
    """PostgreSQL CPU per order as deployed, from the end-to-end drain with the outbox on:
    the worker's writes, the relay's claims and marks, the retention's deletes and a VACUUM
    of order_outbox (the stack always configures the status topic), where the bench has
    measured it."""
    return float(
        results.get("postgres_cpu_ms_per_order_outbox", results["postgres_cpu_ms_per_order"])
    )


def database_orders_per_s(results: dict[str, Any], instance_type: str) -> float:
    """Sustained orders/s of one writer at DATABASE_CPU_SHARE of its CPU (a burstable class at
    its baseline: above it, credits run down)."""
    spec = database_class(instance_type)
    share = spec.baseline_cpu_share if spec.burstable else DATABASE_CPU_SHARE
    return spec.vcpus * share * 1000 / database_ms_per_order(results)


def connections_at_surge(config: EnvironmentConfig) -> int:
    """Every task of a deployment at max_tasks (old and new side by side), each with its pool,
    plus a migration task and what RDS reserves."""
    tasks = config.max_tasks * DEPLOYMENT_MAX_PERCENT // 100
    return tasks * WORKER_DB_POOL_SIZE + MIGRATION_CONNECTIONS + RDS_RESERVED_CONNECTIONS


def _f(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def bench_section(results: dict[str, Any]) -> str:
    db = results.get("db_cpu_ms_per_order", {})
    lines = [
        f"From `bench/results.json` ({results['finished_at']}, {results['machine']['cpus']} x "
        f"{results['machine']['cpu']}, PostgreSQL {results['machine']['postgresql']}):",
        "",
        "| Measurement | Value |",
        "|---|---|",
        f"| End to end, one worker process (orders/s, {results['endpoint']}) "
        f"| {_f(results['e2e_orders_per_s'])} |",
        f"| Worker CPU (ms/order), with its relay | {worker_ms_per_order(results):.3f} |",
        f"| PostgreSQL CPU, end-to-end drain, outbox off (ms/order) "
        f"| {results['postgres_cpu_ms_per_order']:.3f} |",
    ]
    if "postgres_cpu_ms_per_order_outbox" in results:
        off, on = results["postgres_cpu_ms_per_order"], database_ms_per_order(results)
        lines.append(
            f"| PostgreSQL CPU, end-to-end drain as deployed: outbox on, relayed, retained "
            f"and vacuumed (ms/order; the writer ceilings below) | {on:.3f} ({on / off:.2f} x "
            "off) |"
        )
    if db:
        lines += [
            f"| PostgreSQL CPU, worker's persistence path (ms/order) | {db['worker_path']:.3f} |",
            f"| PostgreSQL CPU, COPY ceiling (ms/order) | {db['copy_ceiling']:.3f} |",
            f"| Persistence path vs COPY, database CPU | "
            f"{db['worker_path'] / db['copy_ceiling']:.2f} x |",
        ]
    if "worker_path_outbox" in db:
        lines += [
            f"| PostgreSQL CPU, persistence path with the outbox, relayed (ms/order) "
            f"| {db['worker_path_outbox']:.3f} ({db['worker_path_outbox'] / db['worker_path']:.2f}"
            " x off) |",
            f"| PostgreSQL CPU, COPY ceiling with the outbox rows (ms/order) "
            f"| {db['copy_ceiling_outbox']:.3f} |",
        ]
    if "worker_path_outbox_retained" in db:
        retained = db["worker_path_outbox_retained"]
        lines.append(
            "| PostgreSQL CPU, persistence path with the outbox, published rows kept a day "
            f"(`OUTBOX_RETENTION_HOURS=24`; ms/order) | {retained:.3f} "
            f"({retained / db['worker_path']:.2f} x off) |"
        )
    lines += [
        f"| Persistence path vs COPY, rate | {results['persistence_vs_copy']:.2f} x |",
        "",
        "| Environment | Task | Task ceiling (orders/s) | Stated rate (orders/s) "
        "| Fleet at max_tasks (orders/s) | Writer | Writer sustains (orders/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, config in ENVIRONMENTS.items():
        vcpus = config.task_cpu / 1024
        fleet = config.max_tasks * config.task_orders_per_second
        lines.append(
            f"| {name} | {vcpus:g} vCPU | {_f(task_ceiling(results, vcpus))} "
            f"| {config.task_orders_per_second} | {_f(fleet)} | db.{config.db_instance_type} "
            f"| {_f(database_orders_per_s(results, config.db_instance_type))} |"
        )
    return "\n".join(lines)


def connections_section() -> str:
    lines = [
        "| Environment | Tasks in a deploy at max | Connections | max_connections (about) "
        "| Alarm at | Headroom |",
        "|---|---|---|---|---|---|",
    ]
    for name, config in ENVIRONMENTS.items():
        spec = database_class(config.db_instance_type)
        used = connections_at_surge(config)
        tasks = config.max_tasks * DEPLOYMENT_MAX_PERCENT // 100
        lines.append(
            f"| {name} | {tasks} x {WORKER_DB_POOL_SIZE} | {used} | {spec.max_connections} "
            f"| {int(spec.max_connections * 0.8)} | {spec.max_connections / used:.1f} x |"
        )
    return "\n".join(lines)


def triggers_section(results: dict[str, Any]) -> str:
    prod = ENVIRONMENTS["prod"]
    current = database_orders_per_s(results, prod.db_instance_type)
    larger = [
        (name, database_orders_per_s(results, name))
        for name, spec in DATABASE_CLASSES.items()
        if not spec.burstable
    ]
    fleet = prod.max_tasks * prod.task_orders_per_second
    lines = [
        f"- **A larger class** when prod's peak passes {_f(current)} orders/s (db."
        f"{prod.db_instance_type} at {DATABASE_CPU_SHARE:.0%} CPU), or the `DatabaseCpu` alarm "
        "fires at a peak that is not a backlog drain. Sustained orders/s per class at "
        f"{DATABASE_CPU_SHARE:.0%} CPU: "
        + ", ".join(f"db.{n} {_f(v)}" for n, v in larger)
        + ". Change `db_instance_type` (a Multi-AZ modification fails over once, about a "
        "minute).",
        f"- **max_tasks** before that: prod's fleet at max_tasks carries {_f(fleet)} orders/s "
        f"at the stated rate; the writer sustains {_f(current)}. Raising `max_tasks` stays "
        "cheap while the connections table above keeps a headroom above 1.5 x.",
        "- **Aurora PostgreSQL** when a failover must take well under a minute (Aurora: about "
        "30 s; Multi-AZ RDS: one to two minutes), storage passes 1 TiB (gp3 beyond that needs "
        "provisioned IOPS tuning), or read traffic (reporting) appears: readers share the "
        "storage. It does not add write capacity: one writer either way.",
        f"- **Partition `order_events` by time** (monthly, on `occurred_at`) when it passes "
        f"{PARTITION_ROWS / 1e6:,.0f} M rows or retention becomes a requirement. At "
        f"{EVENTS_PER_ORDER} events per order that is, at an average of "
        + "; ".join(
            f"{rate:,} orders/s: {PARTITION_ROWS / (rate * EVENTS_PER_ORDER * 86_400):,.0f} days"
            for rate in AVERAGE_RATES
        )
        + ". Dropping a month's partition replaces a DELETE that bloats the table. The primary "
        "key becomes (event_id, occurred_at): a redelivery carries the same occurred_at, so "
        "duplicates are still caught by the key.",
        *_storage_trigger(results, prod),
        "- **Past one writer**: shard by `order_id` (a hash to one of N databases, one queue "
        "consumer group each) when even the largest class planned is not enough; nothing in "
        "the worker's per-order ordering crosses orders, so shards are independent.",
    ]
    return "\n".join(lines)


def _storage_trigger(results: dict[str, Any], prod: EnvironmentConfig) -> list[str]:
    per_order = results.get("db_bytes_per_order")
    if per_order is None:
        return []
    # Each later event (paid, shipped) adds an order_events row; the placed order's rows,
    # lines included, are what the bench measures.
    days = [
        prod.db_max_allocated_storage_gib * 1024**3 / (per_order * rate * 86_400)
        for rate in AVERAGE_RATES
    ]
    return [
        f"- **Storage**: the bench's tables take {per_order:,.0f} bytes per placed order "
        f"(indexes included; paid and shipped events add rows). prod's "
        f"{prod.db_max_allocated_storage_gib} GiB ceiling (`db_max_allocated_storage_gib`) "
        "lasts, at an average of "
        + "; ".join(
            f"{r:,} orders/s: {d:,.0f} days" for r, d in zip(AVERAGE_RATES, days, strict=True)
        )
        + ": raise the ceiling, or partition and drop old months, before the `DatabaseStorage` "
        "alarm. Aurora's storage grows to 128 TiB by itself. `order_outbox` is not in that "
        "figure: its rows are deleted when published, so it holds the relay's backlog only; "
        "with `OUTBOX_RETENTION_HOURS` it holds about rate x hours x 3,600 rows of under 1 KB "
        "with their indexes (a status event per applied event), e.g. 100 orders/s at 3 events "
        "each for 24 h: under 26 GB."
    ]
