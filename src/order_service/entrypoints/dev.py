"""`order-service dev` (what `make run` calls): the whole system on this machine.

An embedded PostgreSQL and a local SQS endpoint (unless DATABASE_URL / SQS_QUEUE_URL point
elsewhere), migrations, the worker with its HTTP endpoints, and a producer of demo events with
duplicates, out-of-order and invalid ones. With the local endpoint, also the SNS topic of order
status events and a subscribed "downstream" queue, which a stand-in consumer tallies. Progress
every few seconds; a summary on Ctrl-C.
State lives under .local/ (git-ignored).

`make run QUEUE_TYPE=fifo` runs it on a FIFO queue and DLQ (DEV_QUEUE_TYPE): the producer
then sends each order's events in order, grouped by order with the event id as deduplication
id. `make run GROUP_BY=customer` (DEV_GROUP_BY) makes the standard queue a fair queue, one
tenant per customer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import cast

from pydantic import SecretStr

from order_service.adapters.migrations import upgrade_async
from order_service.adapters.outbox import PostgresOutbox
from order_service.adapters.postgres import PostgresStore
from order_service.adapters.sns import sns_client
from order_service.adapters.sqs import SqsQueue, sqs_client
from order_service.adapters.telemetry import Telemetry, start_tracing
from order_service.bootstrap import install_stop_signals, run_worker
from order_service.domain.queue_type import is_fifo_name
from order_service.entrypoints.local_servers import (
    LocalPostgres,
    LocalSqs,
    create_queues,
    create_topic_with_queue,
)
from order_service.errors import ConfigError
from order_service.generator import generate
from order_service.metrics import Metrics
from order_service.producer import GroupBy
from order_service.settings import Settings

STATE_DIR = Path(".local")
DEMO_ORDERS_PER_SECOND = 20


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name) or default
    if value not in allowed:
        raise ConfigError(f"invalid configuration: {name} {value[:20]!r} is not one of {allowed}")
    return value


def run_dev(settings: Settings) -> int:
    fifo = _choice("DEV_QUEUE_TYPE", ("standard", "fifo"), "standard") == "fifo"
    group = _choice("DEV_GROUP_BY", ("none", "order", "customer"), "none")
    group_by = None if group == "none" else cast(GroupBy, group)
    postgres = sqs = None
    updates: dict[str, object] = {}
    try:
        if settings.database_url is None and settings.db_host is None:
            postgres = LocalPostgres(STATE_DIR / "pg")
            uri = postgres.start()
            updates["database_url"] = SecretStr(uri)
            say(f"PostgreSQL (embedded) at {uri}")
        if settings.sqs_queue_url is None:
            sqs = LocalSqs(STATE_DIR / "sqs", port=int(os.environ.get("DEV_SQS_PORT", "4566")))
            sqs.start()
            # The SDK's own variables, so the worker's client code is the production one.
            os.environ["AWS_ENDPOINT_URL_SQS"] = sqs.endpoint
            os.environ["AWS_ENDPOINT_URL_SNS"] = sqs.endpoint  # ministack serves both
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
            say(f"SQS (ministack) at {sqs.endpoint}")
        asyncio.run(
            _main(
                settings, updates, create_local_queues=sqs is not None, fifo=fifo, group_by=group_by
            )
        )
    finally:
        if sqs:
            sqs.stop()
        if postgres:
            postgres.stop()
    say("stopped cleanly")
    return 0


class Downstream:
    """A stand-in for a team that consumes the status events: tallies them by status (each
    `id` once: copies are deduplicated as the contract says)."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url
        self.seen: set[str] = set()
        self.by_status: dict[str, int] = {}

    async def consume(self, region: str, stop: asyncio.Event) -> None:
        async with sqs_client(region) as client:
            while not stop.is_set():
                await self.receive(client, wait=1)

    async def receive(self, client: object, wait: int) -> int:
        response = await client.receive_message(  # type: ignore[attr-defined]
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        )
        messages = response.get("Messages", [])
        for message in messages:
            event = json.loads(message["Body"])
            if event["id"] not in self.seen:
                self.seen.add(event["id"])
                self.by_status[event["status"]] = self.by_status.get(event["status"], 0) + 1
        if messages:
            await client.delete_message_batch(  # type: ignore[attr-defined]
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        return len(messages)


async def _main(
    settings: Settings,
    updates: dict[str, object],
    create_local_queues: bool,
    fifo: bool,
    group_by: GroupBy | None,
) -> None:
    downstream: Downstream | None = None
    if create_local_queues:
        async with sqs_client(settings.aws_region) as client:
            updates["sqs_queue_url"], updates["sqs_dlq_url"] = await create_queues(
                client, "orders", fifo=fifo
            )
            if not settings.order_events_topic_arn and not settings.outbox_cdc:
                async with sns_client(settings.aws_region) as sns:
                    arn, downstream_url = await create_topic_with_queue(sns, client, "order-status")
                updates["order_events_topic_arn"] = arn
                downstream = Downstream(downstream_url)
                say(f"SNS topic {arn} -> downstream queue {downstream_url}")
    settings = settings.model_copy(update=updates)
    queue_url = settings.queue_urls()[0]
    grouped = "order" if is_fifo_name(queue_url) else group_by
    say(
        f"queue {queue_url}: {'fifo' if is_fifo_name(queue_url) else 'standard'}"
        + (f", the producer groups by {grouped}" if grouped else "")
    )
    await upgrade_async(settings.database_dsn())
    say("migrations applied")
    stop = asyncio.Event()
    install_stop_signals(stop)
    metrics = Metrics()
    # One SDK for the worker and the demo producer: a trace runs from a send to its commit.
    telemetry = start_tracing(os.environ, settings.traces_file)
    worker = asyncio.create_task(run_worker(settings, stop, metrics, telemetry))
    say(f"worker: http://127.0.0.1:{settings.health_port}/health  /ready  /metrics")
    for line in telemetry.describe():
        say(line)
    say("producing demo events; Ctrl-C stops everything and prints a summary")
    producer = asyncio.create_task(_produce(settings, stop, telemetry, group_by))
    consumer = (
        asyncio.create_task(downstream.consume(settings.aws_region, stop)) if downstream else None
    )
    await _progress(settings, metrics, stop, downstream)
    await worker
    producer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await producer
    if consumer is not None:
        with contextlib.suppress(Exception):
            await consumer
    await telemetry.stop()
    await _summary(settings, metrics, downstream)
    if settings.traces_file:
        say(f"  spans written to:   {settings.traces_file} (one JSON span per line)")


async def _produce(
    settings: Settings, stop: asyncio.Event, telemetry: Telemetry, group_by: GroupBy | None
) -> None:
    queue_url, dlq_url = settings.queue_urls()
    # A FIFO queue's producer sends each order's events in the lifecycle's order (the
    # contract): none is deferred. On a standard queue the demo shuffles some, as SQS would.
    out_of_order = 0.0 if is_fifo_name(queue_url) else 0.1
    async with sqs_client(settings.aws_region) as client:
        queue = SqsQueue(client, queue_url, dlq_url, spans=telemetry.spans, metrics=Metrics())
        seed = int(time.time())
        while not stop.is_set():
            stream = generate(
                DEMO_ORDERS_PER_SECOND,
                seed=seed,
                invalid_rate=0.02,
                out_of_order_rate=out_of_order,
            )
            await queue.send(queue_url, stream.bodies, group_by=group_by)
            seed += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1)


def _outcomes(metrics: Metrics) -> dict[str, int]:
    return {
        s.labels["outcome"]: int(s.value)
        for family in metrics.messages.collect()
        for s in family.samples
        if s.name.endswith("_total")
    }


async def _progress(
    settings: Settings, metrics: Metrics, stop: asyncio.Event, downstream: Downstream | None
) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 3)
        if not stop.is_set():
            outcomes = " ".join(f"{k}={v}" for k, v in sorted(_outcomes(metrics).items()))
            out = f"; status events downstream: {len(downstream.seen)}" if downstream else ""
            say(f"processed: {outcomes or 'nothing yet'}{out}")


async def _summary(settings: Settings, metrics: Metrics, downstream: Downstream | None) -> None:
    queue_url, dlq_url = settings.queue_urls()
    store = PostgresStore(settings.database_dsn(), pool_size=1)
    await store.connect()
    try:
        counts = await store.counts()
    finally:
        await store.close()
    async with sqs_client(settings.aws_region) as client:
        dlq_depth = await SqsQueue(client, queue_url, dlq_url, metrics=Metrics()).depth(dlq_url)
        if downstream is not None:  # what the relay published before it stopped
            while await downstream.receive(client, wait=1):
                pass
    say("\nsummary")
    say(f"  queue type:         {'fifo' if is_fifo_name(queue_url) else 'standard'}")
    say(f"  orders by status:   {counts['orders_by_status']}")
    if downstream is not None:
        outbox = PostgresOutbox(settings.database_dsn())
        try:
            unpublished = (await outbox.status()).unpublished
        finally:
            await outbox.close()
        events = dict(sorted(downstream.by_status.items()))
        say(f"  status events downstream (each id once): {events}")
        say(f"  outbox rows not yet published: {unpublished} (the next start publishes them)")
    say(f"  events recorded:    {counts['events_by_outcome']}")
    say(f"  messages this run:  {_outcomes(metrics)}")
    say(f"  messages in DLQ:    {dlq_depth[0] + dlq_depth[1]}")
