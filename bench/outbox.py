"""The outbox's rows of `make bench`: end-to-end throughput with the outbox on (the worker's
relay publishing to a local SNS topic with a subscribed queue) against the same drain with it
off, commit-to-publish latency at half load, and SNS requests per order.

Throughput with the outbox on is timed until every order is processed *and* published (no
unpublished row left), so the relay's work counts. Commit-to-publish is each outbox row's
`published_at` (marked right after SNS accepted it) minus its transaction's commit time
(`track_commit_timestamp`, on in the bench's PostgreSQL, read from the causing event's row):
the same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.database import execute, query
from tests.support.waiting import wait_for
from tests.support.worker import WorkerProcess

from bench import e2e, persistence
from bench.procstat import PostgresCpu, cpu_seconds
from order_service.adapters.outbox import PostgresOutbox
from order_service.adapters.sns import SnsTopic, sns_client
from order_service.entrypoints.local_servers import create_topic_with_queue
from order_service.metrics import Metrics
from order_service.service.ports import PUBLISH_BATCH_MAX, PendingRow
from order_service.service.relay import Relay, RelayConfig
from order_service.settings import Settings

STATUS_EXAMPLES = Path(__file__).parents[1] / "docs" / "contract" / "status-examples"
NOW = datetime.now(UTC)
_DEFAULTS = Settings.model_fields
# The shipped relay (bootstrap.relay_config's inputs at their defaults: no retention, each
# row deleted when published).
RELAY_CONFIG = RelayConfig(
    poll_interval=_DEFAULTS["outbox_poll_interval_seconds"].default,
    retention_seconds=_DEFAULTS["outbox_retention_hours"].default * 3600,
)
# The same with published rows kept a day (OUTBOX_RETENTION_HOURS=24, the default before
# issue 27): each row marked, deleted by the retention's own statement later.
RETAINING_RELAY_CONFIG = dataclasses.replace(RELAY_CONFIG, retention_seconds=24 * 3600)


@dataclass
class OutboxRun:
    run: e2e.WorkerRun  # seconds include the wait for the last row's publication
    sns_requests: float


async def topic(client: Any, region: str = "us-east-1") -> str:
    async with sns_client(region) as sns:
        arn, _ = await create_topic_with_queue(sns, client, f"bench-status-{uuid.uuid4().hex[:8]}")
    return arn


async def unpublished(dsn: str) -> int:
    rows = await query(dsn, "SELECT count(*) n FROM order_outbox WHERE published_at IS NULL")
    return int(rows[0]["n"])


async def worker_drain(
    worker: WorkerProcess, dsn: str, expected: int, postgres: PostgresCpu
) -> OutboxRun:
    """The drain, timed until the last row is published; PostgreSQL's CPU also counts the
    retention of every row and a VACUUM of order_outbox after it (`retire`), so that no cost
    of an outbox row's life moves out of the measured window."""
    run = await e2e.worker_drain(worker, expected, postgres)
    started, cpu0, pg0 = time.perf_counter(), cpu_seconds(worker.pid), postgres.seconds()
    await wait_published(dsn)
    run.seconds += time.perf_counter() - started
    run.cpu_seconds += cpu_seconds(worker.pid) - cpu0  # the relay's tail is the worker's too
    await retire(dsn)
    run.postgres_cpu_seconds += postgres.seconds() - pg0
    metrics = worker.metrics() or {}
    return OutboxRun(run, sum(metrics.get("order_sns_requests_total", {}).values()))


async def retire(dsn: str) -> None:
    """Every row a retention kept deleted by the relay's own retention statement (its age
    limit at 0: what a relay with OUTBOX_RETENTION_HOURS runs that much later; with none, the
    relay deleted each row when it published it), then the table vacuumed (autovacuum's
    work): the end of each row's life, inside the measured window."""
    outbox = PostgresOutbox(dsn)
    try:
        while await outbox.delete_published(0):
            pass
    finally:
        await outbox.close()
    left = await query(dsn, "SELECT count(*) AS n FROM order_outbox")
    if left[0]["n"]:
        raise RuntimeError(f"outbox retention: {left[0]['n']} rows left")
    await execute(dsn, "VACUUM order_outbox")


async def relayed_worker_path(
    dsn: str,
    bodies: list[str],
    batch: int,
    pool_size: int,
    topic_arn: str,
    config: RelayConfig = RELAY_CONFIG,
) -> persistence.Timed:
    """The worker's persistence path with the outbox on and the relay in the same process
    publishing to `topic_arn` as the worker wires it (woken by each commit, the shipped poll
    interval, claims, deletes or marks by `config`), until every row is published; then
    `retire`."""
    outbox = PostgresOutbox(dsn)
    metrics = Metrics()
    try:
        async with sns_client("us-east-1") as client:
            relay = Relay(outbox, SnsTopic(client, topic_arn, metrics), config, metrics)
            stop = asyncio.Event()
            relaying = asyncio.create_task(relay.run(stop))
            try:
                timed = await persistence.worker_path(
                    dsn, bodies, batch, pool_size, outbox_written=relay.wake.set
                )
                await wait_for(
                    lambda: relaying.done() or relay.published >= len(bodies),
                    600, "the relay to publish every row", 0.01,
                )  # fmt: skip
            finally:
                stop.set()
                relay.wake.set()
                await relaying
    finally:
        await outbox.close()
    if relay.published != len(bodies):
        raise RuntimeError(f"relayed worker path: {relay.published} rows published")
    await retire(dsn)
    return timed


async def wait_published(dsn: str) -> None:
    async def none_left() -> bool:
        return await unpublished(dsn) == 0

    await wait_for(none_left, 600, "the outbox to be published", 0.05)


async def commit_to_publish_ms(dsn: str) -> tuple[float, float]:
    # The outbox row's own xmin is the relay's mark by now: the batch's commit is that of the
    # causing event's row (written in the same transaction, never updated).
    rows = await query(
        dsn,
        "SELECT extract(epoch FROM o.published_at - pg_xact_commit_timestamp(e.xmin)) * 1000 "
        "AS ms FROM order_outbox o JOIN order_events e ON e.event_id = "
        "(o.payload->>'event_id')::uuid WHERE o.published_at IS NOT NULL ORDER BY 1",
    )
    values = [float(r["ms"]) for r in rows]
    return e2e._percentile(values, 50), e2e._percentile(values, 99)


# What each of sns_client's hand-written parts replaces, put back on a client of its own: the
# SDK's serializer (adapters/sns_form.py), its response parser (adapters/sns_response.py), its
# User-Agent built at each call (adapters/sns_user_agent.py).
def _sdk_body(client: Any) -> None:
    client._serializer = client._serializer._inner


def _sdk_response(client: Any) -> None:
    endpoint = client._endpoint
    endpoint._response_parser_factory = endpoint._response_parser_factory._inner


def _sdk_user_agent(client: Any) -> None:
    del client._user_agent_creator.to_string  # the class's own, unmemoized


def _sdk_all(client: Any) -> None:
    _sdk_body(client)
    _sdk_response(client)
    _sdk_user_agent(client)


_SDK_PARTS = {
    "sdk_body": _sdk_body,
    "sdk_response": _sdk_response,
    "sdk_user_agent": _sdk_user_agent,
    "sdk_all": _sdk_all,
}


async def sns_client_cpu_us_per_row(rounds: int = 60) -> dict[str, float]:
    """CPU of this process per row published through SnsTopic, in full PublishBatch calls of
    realistic rows (ten at a time, as the relay sends them), against the local endpoint: the
    SDK's share of the relay's cost. One client per variant in alternate rounds, on the same
    rows: `shipped` as sns_client makes it, and one with each hand-written part's SDK original
    put back (`_SDK_PARTS`; `sdk_all`: all of them, what it cost before issue 27)."""
    payload = json.loads((STATUS_EXAMPLES / "order.status.placed.json").read_text())
    rows = [
        PendingRow(uuid.uuid4(), uuid.uuid4(), payload["type"], 1, json.dumps(payload), NOW)
        for _ in range(PUBLISH_BATCH_MAX)
    ]
    names = ["shipped", *_SDK_PARTS]
    cpu = dict.fromkeys(names, 0.0)
    published = dict.fromkeys(names, 0)
    async with contextlib.AsyncExitStack() as stack:
        clients = {n: await stack.enter_async_context(sns_client("us-east-1")) for n in names}
        for name, put_back in _SDK_PARTS.items():
            put_back(clients[name])
        created = await clients["shipped"].create_topic(Name=f"bench-cpu-{uuid.uuid4().hex[:8]}")
        topics = {
            n: SnsTopic(c, created["TopicArn"], metrics=Metrics()) for n, c in clients.items()
        }
        for topic in topics.values():  # connections, caches
            await asyncio.gather(*(topic.publish(rows) for _ in range(4)))
        # The bench's own heap (every run's bodies) out of the collector's sight, as the
        # worker's start-up is (entrypoints/worker.py): else each full collection walks it and
        # lands on whichever variant's allocations trigger it; and each round in another
        # order, so that no variant is always first (seen: a 10% bias on the first).
        gc.collect()
        gc.freeze()
        try:
            for round_no in range(rounds):
                for name in names[round_no % len(names) :] + names[: round_no % len(names)]:
                    started = time.process_time()
                    accepted = await asyncio.gather(*(topics[name].publish(rows) for _ in range(4)))
                    cpu[name] += time.process_time() - started
                    published[name] += sum(len(a.accepted) for a in accepted)
        finally:
            gc.unfreeze()
    if set(published.values()) != {rounds * 4 * len(rows)}:
        raise RuntimeError(f"sns client bench: {published} rows accepted")
    return {name: cpu[name] * 1e6 / published[name] for name in cpu}


def results(
    on: Sequence[OutboxRun],
    off: e2e.WorkerRun,
    latency: tuple[float, float],
    client_us: dict[str, float],
) -> dict[str, Any]:
    combined = e2e.WorkerRun.combined([r.run for r in on])
    return {
        "e2e_outbox_orders_per_s": combined.orders_per_s,
        "e2e_outbox_vs_off": combined.orders_per_s / off.orders_per_s,
        "outbox_commit_to_publish_p50_ms": latency[0],
        "outbox_commit_to_publish_p99_ms": latency[1],
        "sns_requests_per_order": sum(r.sns_requests for r in on) / combined.orders,
        "e2e_outbox_rounds": [r.run.orders_per_s for r in on],
        "outbox_worker_cpu_ms_per_order": combined.cpu_seconds * 1000 / combined.orders,
        "outbox_worker_cpu_vs_off": (combined.cpu_seconds / combined.orders)
        / (off.cpu_seconds / off.orders),
        # With the relay, its retention and a VACUUM of order_outbox (worker_drain).
        "postgres_cpu_ms_per_order_outbox": combined.postgres_cpu_seconds * 1000 / combined.orders,
        "sns_client_cpu_us_per_row": client_us["shipped"],
        **{f"sns_client_cpu_us_per_row_{name}": client_us[name] for name in _SDK_PARTS},
    }
