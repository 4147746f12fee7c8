"""The composition root: builds the worker from settings and runs it until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import replace
from typing import Any

import structlog

from order_service.adapters.cloudwatch_emf import start_emf
from order_service.adapters.http import build_app, start_http
from order_service.adapters.postgres import PostgresStore
from order_service.adapters.sqs import SqsQueue, sqs_client
from order_service.domain.redelivery import RedeliveryPolicy
from order_service.errors import QueueUnavailable, StoreUnavailable
from order_service.metrics import Metrics
from order_service.service.consumer import Consumer, ConsumerConfig
from order_service.settings import Settings

log = structlog.get_logger("order_service.worker")


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def consumer_config(settings: Settings, **overrides: Any) -> ConsumerConfig:
    config = ConsumerConfig(
        pollers=settings.pollers,
        processors=settings.processors,
        max_in_flight=settings.max_in_flight,
        batch_max_messages=settings.batch_max_messages,
        wait_time_seconds=settings.sqs_wait_time_seconds,
        redelivery=settings.redelivery(),
        message_logs=settings.log_messages,
    )
    return replace(config, **overrides)


async def redelivery_of(queue: SqsQueue, policy: RedeliveryPolicy) -> RedeliveryPolicy:
    """The queue's maxReceiveCount wins at run time: it is what SQS applies."""
    try:
        count = await asyncio.wait_for(queue.max_receive_count(), 10)
    except (QueueUnavailable, TimeoutError) as exc:
        log.warning("could not read the queue's redrive policy", error=str(exc))
        return policy
    if count is None:
        log.warning("the queue has no redrive policy: deferred events are retried until expiry")
        return policy
    if count != policy.max_receive_count:
        log.warning(
            "the queue's maxReceiveCount differs from this build's; the queue's applies",
            queue=count,
            expected=policy.max_receive_count,
        )
    return replace(policy, max_receive_count=count)


async def run_worker(
    settings: Settings, stop: asyncio.Event, metrics: Metrics | None = None
) -> None:
    """Serves HTTP at once; consumes unless in dummy mode; returns after a clean stop."""
    metrics = metrics or Metrics()
    if settings.worker_mode == "dummy":
        runner = await start_http(build_app(metrics, {}), settings.health_port)
        log.info("dummy mode: serving /health only", port=settings.health_port)
        await stop.wait()
        await runner.cleanup()
        return

    queue_url, dlq_url = settings.queue_urls()
    store = PostgresStore(settings.database_dsn(), pool_size=settings.db_pool_size)
    async with sqs_client(
        settings.aws_region,
        max_connections=settings.pollers + 4,
        read_timeout=settings.sqs_wait_time_seconds + 10,
    ) as client:
        queue = SqsQueue(client, queue_url, dlq_url, metrics)

        consumer = Consumer(
            queue, store, consumer_config(settings), metrics, store_ready=store.probe
        )

        async def database_ready() -> None:
            # While paused, the probe's verdict (what failed and what fixes it); otherwise a
            # cheap round trip, so that /ready never runs a write of its own.
            fault = consumer.gate.fault
            if fault is not None:
                raise StoreUnavailable(f"{fault}; {fault.action}", kind=fault.kind)
            await store.ping()

        app = build_app(
            metrics, {"database": database_ready, "sqs": queue.ping}, stuck=consumer.stuck
        )
        runner = await start_http(app, settings.health_port)
        log.info("worker started", port=settings.health_port, queue=queue_url)
        emf = start_emf(metrics.registry, queue_url, settings.emf_interval_seconds)
        try:
            # After /health is served: a slow or unreachable endpoint never delays it.
            consumer.use_redelivery(await redelivery_of(queue, settings.redelivery()))
            await consumer.run(stop, settings.shutdown_grace_seconds)
        finally:
            if emf is not None:
                await emf.stop()
            with contextlib.suppress(Exception):
                await store.close(grace=1)
            await runner.cleanup()
    log.info("worker stopped", processed=consumer.processed)
