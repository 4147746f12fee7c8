"""The composition root: builds the worker from settings and runs it until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from typing import Any

import structlog

from order_service.adapters.cloudwatch_emf import emf_publisher
from order_service.adapters.db_credentials import SecretCredentials
from order_service.adapters.http import build_app, start_http
from order_service.adapters.outbox import PostgresOutbox
from order_service.adapters.postgres import PostgresStore
from order_service.adapters.queue_setup import read_queues
from order_service.adapters.sns import SnsTopic, sns_client
from order_service.adapters.sqs import SqsQueue, sqs_client
from order_service.adapters.telemetry import Telemetry, start_tracing
from order_service.domain.queue_type import QueueType, is_fifo_name
from order_service.metrics import Metrics
from order_service.service.consumer import Consumer, ConsumerConfig
from order_service.service.relay import Relay, RelayConfig
from order_service.service.supervision import ShutdownClock, Supervisor
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


def database_credentials(settings: Settings) -> SecretCredentials | None:
    """The secret the application's connections log in with, when one is configured."""
    if not settings.db_secret_arn:
        return None
    return SecretCredentials(settings.db_secret_arn, settings.aws_region)


def relay_config(settings: Settings, **overrides: Any) -> RelayConfig:
    config = RelayConfig(
        poll_interval=settings.outbox_poll_interval_seconds,
        retention_seconds=settings.outbox_retention_hours * 3600,
    )
    return replace(config, **overrides)


@contextlib.asynccontextmanager
async def outbox_relay(settings: Settings, metrics: Metrics) -> AsyncIterator[Relay]:
    """The relay on its own database connection and an SNS client (AWS_ENDPOINT_URL_SNS)."""
    outbox = PostgresOutbox(settings.database_dsn(), database_credentials(settings))
    try:
        async with sns_client(settings.aws_region) as client:
            topic = SnsTopic(
                client,
                settings.topic_arn(),
                metrics,
                group_by_customer=settings.outbox_group_by_customer,
            )
            yield Relay(outbox, topic, relay_config(settings), metrics)
    finally:
        await outbox.close()


RELAY_STOP_RESERVE_SECONDS = 1.0  # of the grace, for the relay's cancel and the exit after it


def start_relay(tasks: Supervisor, relay: Relay, stop: asyncio.Event, grace: float) -> None:
    """The relay as a side task: it never ends by itself (it backs off from any fault, so
    order intake never waits for it). On `stop` it finishes the round under way and ends;
    what it still waits for when the grace is nearly over is cancelled (its claim ends with
    its connection)."""
    within = max(grace - RELAY_STOP_RESERVE_SECONDS, 0.1)
    tasks.start("outbox-relay", relay.run(stop), stop_within=within)


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    metrics: Metrics | None = None,
    telemetry: Telemetry | None = None,
) -> None:
    """Serves HTTP at once; consumes unless in dummy mode; returns after a clean stop.
    `telemetry`: a caller's running SDK (`order-service dev` shares its one with its demo
    producer); without one the worker starts its own when tracing is configured."""
    metrics = metrics or Metrics()
    if settings.worker_mode == "dummy":
        runner = await start_http(build_app(metrics, {}), settings.health_port)
        log.info("dummy mode: serving /health only", port=settings.health_port)
        await stop.wait()
        await runner.cleanup()
        return

    queue_url, dlq_url = settings.queue_urls()
    tracing = telemetry or start_tracing(os.environ, settings.traces_file)
    stopping = ShutdownClock(stop, settings.shutdown_grace_seconds)
    try:
        await _run_worker(settings, stop, metrics, queue_url, dlq_url, tracing, stopping)
    finally:
        if tracing is not telemetry:  # ours: exported within what is left of the grace
            await tracing.stop(within=stopping.left())
        stopping.close()


async def _run_worker(
    settings: Settings,
    stop: asyncio.Event,
    metrics: Metrics,
    queue_url: str,
    dlq_url: str,
    tracing: Telemetry,
    stopping: ShutdownClock,
) -> None:
    relay_wanted = bool(settings.order_events_topic_arn) and settings.outbox_relay_in_worker
    store = PostgresStore(
        settings.database_dsn(),
        pool_size=settings.db_pool_size,
        outbox=settings.outbox_enabled(),
        spans=tracing.spans,
        credentials=database_credentials(settings),
    )
    async with (
        sqs_client(
            settings.aws_region,
            max_connections=settings.pollers + 4,
            read_timeout=settings.sqs_wait_time_seconds + 10,
        ) as client,
        contextlib.AsyncExitStack() as side,
    ):
        fifo = is_fifo_name(queue_url)
        receive_client = (
            # Without the SDK's retries: it would resend an attempt id after a throttle.
            await side.enter_async_context(
                sqs_client(
                    settings.aws_region,
                    max_connections=settings.pollers,
                    read_timeout=settings.sqs_wait_time_seconds + 10,
                    sdk_retries=0,
                )
            )
            if fifo
            else None
        )
        queue = SqsQueue(
            client, queue_url, dlq_url, metrics, spans=tracing.spans, receive_client=receive_client
        )
        relay = (
            await side.enter_async_context(outbox_relay(settings, metrics))
            if relay_wanted
            else None
        )
        if relay is not None:
            store.on_outbox_written = relay.wake.set

        consumer = Consumer(
            queue,
            store,
            consumer_config(settings, fifo=fifo),
            metrics,
            store_ready=store.probe,
            spans=tracing.spans.batches(queue_url),
            check_schema=store.check_schema,
        )
        queue_type = {"queue_type": QueueType(fifo).name}
        app = build_app(
            metrics,
            {"database": partial(consumer.gate.ready, store.ping), "sqs": queue.ping},
            stuck=consumer.stuck,
            details=lambda: queue_type,
        )
        runner = await start_http(app, settings.health_port)
        log.info(
            "worker started",
            port=settings.health_port,
            queue=queue_url,
            queue_type=queue_type["queue_type"],
            relay=relay is not None,
            tracing=tracing.on,
        )
        # Every side task of the worker is started and watched by one supervisor: the
        # consumer's (pollers, processors, heartbeat, probe), the relay's, the EMF publisher's.
        tasks = Supervisor(stop)
        emf = emf_publisher(metrics.registry, queue_url, settings.emf_interval_seconds)
        if emf is not None:
            tasks.start("emf-publisher", emf.run())
        try:
            # After /health is served: a slow or unreachable endpoint never delays it.
            queue_type["queue_type"], redelivery = await read_queues(queue, settings.redelivery())
            if relay is not None:
                start_relay(tasks, relay, stop, stopping.consumer_grace())
            # Ends with the supervisor's finish: its one exit path (SideTaskCrashed).
            await consumer.run(stop, stopping.consumer_grace(), redelivery, tasks=tasks)
        finally:
            await tasks.cancel_all()  # start-up failed before the consumer ran: none left
            if emf is not None:
                emf.write_last()
            with contextlib.suppress(Exception):
                await store.close(grace=1)
            await runner.cleanup()
    log.info("worker stopped", processed=consumer.processed)
