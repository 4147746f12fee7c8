"""The composition root: builds the worker from settings and runs it until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog

from order_service.adapters.cloudwatch_emf import start_emf
from order_service.adapters.http import build_app, start_http
from order_service.adapters.postgres import PostgresStore
from order_service.adapters.sqs import SqsQueue, sqs_client
from order_service.metrics import Metrics
from order_service.service.consumer import Consumer, ConsumerConfig
from order_service.settings import Settings

log = structlog.get_logger("order_service.worker")


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def consumer_config(settings: Settings) -> ConsumerConfig:
    return ConsumerConfig(
        pollers=settings.pollers,
        processors=settings.processors,
        max_in_flight=settings.max_in_flight,
        batch_max_messages=settings.batch_max_messages,
        wait_time_seconds=settings.sqs_wait_time_seconds,
        visibility_timeout=settings.sqs_visibility_timeout,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
        message_logs=settings.log_messages,
    )


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

        async def database_ready() -> None:
            await store.connect()
            await store.ping()

        app = build_app(metrics, {"database": database_ready, "sqs": queue.ping})
        runner = await start_http(app, settings.health_port)
        log.info("worker started", port=settings.health_port, queue=queue_url)
        consumer = Consumer(
            queue, store, consumer_config(settings), metrics, store_ready=database_ready
        )
        emf = start_emf(metrics.registry, queue_url, settings.emf_interval_seconds)
        try:
            await consumer.run(stop, settings.shutdown_grace_seconds)
        finally:
            if emf is not None:
                await emf.stop()
            with contextlib.suppress(Exception):
                await store.close()
            await runner.cleanup()
    log.info("worker stopped", processed=consumer.processed)
