"""What running the worker costs besides its own CPU: the log bytes per order and the rate at
each logging setting, and the database's CPU per order next to the COPY ceiling's.

Logging profiles, run in the same rounds so that a shared host's drift weighs on each alike:
- default: what prod runs (LOG_LEVEL=INFO, LOG_MESSAGES=not-applied, EMF every 60 s);
- off: LOG_LEVEL=WARNING, LOG_MESSAGES=none (what the main end-to-end figure runs);
- all: a line for every message, the behaviour of LOG_LEVEL=INFO before LOG_MESSAGES (once).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from tests.support.worker import WorkerProcess

from bench import e2e, outbox, persistence
from bench.procstat import PostgresCpu

# CloudWatch Logs ingestion, us-east-1 like the other bench prices (eu-west-1: 0.57).
CLOUDWATCH_LOGS_USD_PER_GB = 0.50
GB = 1024**3
PROFILES: dict[str, dict[str, str]] = {
    "default": {"LOG_LEVEL": "INFO", "LOG_MESSAGES": "not-applied", "EMF_INTERVAL_SECONDS": "60"},
    "off": {"LOG_LEVEL": "WARNING", "LOG_MESSAGES": "none"},
    "all": {"LOG_LEVEL": "INFO", "LOG_MESSAGES": "all"},
}

NewDatabase = Callable[[str], Awaitable[str]]
EnvFor = Callable[[str, str, str], dict[str, str]]  # dsn, queue url, dlq url -> environment


def log_usd_per_million_orders(bytes_per_order: float) -> float:
    return bytes_per_order * 1e6 / GB * CLOUDWATCH_LOGS_USD_PER_GB


async def logging_profiles(
    client: Any,
    fresh: NewDatabase,
    env_for: EnvFor,
    postgres: PostgresCpu,
    bodies: Sequence[str],
    work: Path,
    rounds: int,
) -> dict[str, Any]:
    """Drains `bodies` once per profile and round (all: first round only); log bytes are the
    whole log file of each run (start-up and shutdown lines included) over its orders."""
    runs: dict[str, list[tuple[e2e.WorkerRun, int]]] = {name: [] for name in PROFILES}
    for round_no in range(rounds):
        for name, overrides in PROFILES.items():
            if name == "all" and round_no > 0:
                continue
            url, dlq_url = await e2e.new_queues(client, f"logs-{name}")
            await e2e.prefill(client, url, bodies)
            dsn = await fresh(f"logs_{name}_{round_no}")
            log_path = work / f"worker-logs-{name}-{round_no}.log"
            worker = WorkerProcess({**env_for(dsn, url, dlq_url), **overrides}, log_path)
            try:
                run = await e2e.worker_drain(worker, len(bodies), postgres)
            finally:
                worker.stop()
            runs[name].append((run, log_path.stat().st_size))

    def rate(name: str) -> float:
        return e2e.WorkerRun.combined([r for r, _ in runs[name]]).orders_per_s

    def cpu_ms(name: str) -> float:
        combined = e2e.WorkerRun.combined([r for r, _ in runs[name]])
        return combined.cpu_seconds * 1000 / combined.orders

    def bytes_per_order(name: str) -> float:
        return sum(size for _, size in runs[name]) / sum(r.orders for r, _ in runs[name])

    default_bytes = bytes_per_order("default")
    return {
        "log_bytes_per_order": default_bytes,
        "log_bytes_per_order_by_profile": {name: bytes_per_order(name) for name in PROFILES},
        "log_usd_per_million_orders": log_usd_per_million_orders(default_bytes),
        "e2e_orders_per_s_by_logging": {name: rate(name) for name in PROFILES},
        "logging_default_vs_off": rate("default") / rate("off"),
        # CPU per order is what logging costs the worker; on a shared host it is steadier
        # than the rate, which other jobs' load moves by tens of percent between drains.
        "worker_cpu_ms_per_order_by_logging": {name: cpu_ms(name) for name in PROFILES},
        "logging_profiles": {name: dict(env) for name, env in PROFILES.items()},
        "logging_rounds": rounds,
    }


async def database_cpu(
    fresh: NewDatabase,
    postgres: PostgresCpu,
    bodies: list[str],
    batch: int,
    pool_size: int,
    topic_arn: str,
    rounds: int = 2,
) -> dict[str, Any]:
    """PostgreSQL's CPU (all its processes, from /proc) per order for the worker's persistence
    path and for the COPY ceiling, each with the outbox off and on, on the same events, each
    into a fresh database: what one order costs the database, the figure that sizes an RDS
    class. With the outbox on the worker path's window holds the relay publishing every row
    to `topic_arn` (claims, catch-up passes, each row deleted when published), and a VACUUM
    of order_outbox (bench/outbox.py `relayed_worker_path`): as deployed. `_retained` is the
    same with published rows kept a day (marked, then deleted by the retention's statement in
    the window). In `rounds`, each
    variant in turn on its share of the events, so that a shared host weighs on each alike."""
    variants: dict[str, Callable[[str, list[str]], Awaitable[persistence.Timed]]] = {
        "worker_path": lambda dsn, part: persistence.worker_path(dsn, part, batch, pool_size),
        "worker_path_outbox": lambda dsn, part: outbox.relayed_worker_path(
            dsn, part, batch, pool_size, topic_arn
        ),
        "worker_path_outbox_retained": lambda dsn, part: outbox.relayed_worker_path(
            dsn, part, batch, pool_size, topic_arn, outbox.RETAINING_RELAY_CONFIG
        ),
        "copy_ceiling": lambda dsn, part: persistence.copy_ceiling(dsn, part, pool_size),
        "copy_ceiling_outbox": lambda dsn, part: persistence.copy_ceiling(
            dsn, part, pool_size, outbox=True
        ),
    }
    dsns = {name: await fresh(f"dbcpu_{name}") for name in variants}
    seconds = dict.fromkeys(variants, 0.0)
    orders = dict.fromkeys(variants, 0)
    for part in persistence.slices(bodies, rounds):
        for name, measure in variants.items():
            before = postgres.seconds()
            timed = await measure(dsns[name], list(part))
            seconds[name] += postgres.seconds() - before
            orders[name] += timed.orders
    per_order = {name: seconds[name] * 1000 / orders[name] for name in variants}
    return {
        "db_cpu_ms_per_order": per_order,
        # CPU is counted in 10 ms ticks: a tiny run's can read 0.
        "db_cpu_outbox_vs_off": per_order["worker_path_outbox"] / per_order["worker_path"]
        if per_order["worker_path"]
        else math.inf,
        "db_cpu_orders": len(bodies),
        "db_cpu_rounds": rounds,
        "db_bytes_per_order": await _table_bytes(dsns["worker_path"]) / orders["worker_path"],
    }


async def _table_bytes(dsn: str) -> int:
    """Heap, indexes and TOAST of the three tables the worker writes (one placed event and
    its three lines per order here: later events add an order_events row each)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE")  # what the tables hold once autovacuum has run
        return int(
            await conn.fetchval(
                "SELECT sum(pg_total_relation_size(t))::bigint FROM unnest("
                "ARRAY['orders', 'order_items', 'order_events']::regclass[]) AS t"
            )
        )
    finally:
        await conn.close()
