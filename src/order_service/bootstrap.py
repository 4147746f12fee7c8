"""The composition root: builds the worker from settings and runs it until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from typing import Any

import structlog

from order_service.adapters.cloudwatch_emf import start_emf
from order_service.adapters.db_credentials import SecretCredentials
from order_service.adapters.http import build_app, start_http
from order_service.adapters.outbox import PostgresOutbox
from order_service.adapters.postgres import PostgresStore
from order_service.adapters.sns import SnsTopic, sns_client
from order_service.adapters.sqs import QueueSetup, SqsQueue, sqs_client
from order_service.adapters.telemetry import Telemetry, start_tracing
from order_service.domain.queue_type import QueueType, is_fifo_name, pairing_problem
from order_service.domain.redelivery import RedeliveryPolicy
from order_service.errors import ConfigError, QueueUnavailable, StoreUnavailable
from order_service.metrics import Metrics
from order_service.service.consumer import Consumer, ConsumerConfig, ConsumerCrashed
from order_service.service.relay import Relay, RelayConfig
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


async def read_queues(queue: SqsQueue, policy: RedeliveryPolicy) -> tuple[str, RedeliveryPolicy]:
    """The queues' types and the redrive policy, read once at start-up: (the main queue's type
    as /ready says it, the policy for this run). The queue's maxReceiveCount wins at run time:
    it is what SQS applies. A main queue and a DLQ of different types stop start-up
    (ConfigError); unreadable, their names say the types (SQS requires .fifo on a FIFO one)."""
    try:
        setup = await asyncio.wait_for(queue.describe(), 10)
    except (QueueUnavailable, TimeoutError) as exc:
        log.warning("could not read the queues' attributes", error=str(exc))
        setup = QueueSetup(QueueType(queue.fifo), QueueType(queue.dlq_fifo), None)
        count: int | None = policy.max_receive_count
    else:
        count = setup.max_receive_count
        log.info("queues", queue_type=setup.queue.describe(), dlq_type=setup.dlq.describe())
    problem = pairing_problem(queue.queue_url, setup.queue, queue.dlq_url, setup.dlq)
    if problem is None and setup.queue.fifo != queue.fifo:
        problem = f"SQS_QUEUE_URL {queue.queue_url}: FifoQueue does not match its name"
    if problem is not None:
        raise ConfigError(problem)
    return setup.queue.describe(), _with_receive_count(policy, count)


def _with_receive_count(policy: RedeliveryPolicy, count: int | None) -> RedeliveryPolicy:
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


async def consume_with_relay(
    consume: Coroutine[Any, Any, None], relay: Relay | None, stop: asyncio.Event, grace: float
) -> None:
    """The relay as a supervised side task. It never ends by itself (it backs off from any
    fault): if it does, the worker stops (cleanly, handing its messages back) and exits
    non-zero. On `stop` the relay finishes the round under way and ends; what it still waits
    for when the grace is nearly over is cancelled (its claim ends with its connection)."""
    if relay is None:
        await consume
        return
    relay_task = asyncio.create_task(relay.run(stop), name="outbox-relay")
    relay_bound = asyncio.create_task(_end_within(relay_task, stop, grace), name="relay-grace")
    consume_task = asyncio.create_task(consume, name="consumer")
    try:
        await asyncio.wait({relay_task, consume_task}, return_when=asyncio.FIRST_COMPLETED)
        if relay_task.done() and not consume_task.done() and not stop.is_set():
            error = None if relay_task.cancelled() else relay_task.exception()
            log.error("worker task ended unexpectedly; stopping", task="outbox-relay", error=error)
            stop.set()
            await consume_task
            raise ConsumerCrashed("worker task outbox-relay ended unexpectedly")
        await consume_task
        stop.set()  # the consumer ended by itself: so does the relay
        await relay_bound
    finally:
        for task in (relay_task, relay_bound, consume_task):
            task.cancel()
        # Bounded: a cancel that a blackholed connection never answers is not waited for.
        await asyncio.wait({relay_task, relay_bound, consume_task}, timeout=0.5)


RELAY_STOP_RESERVE_SECONDS = 1.0  # of the grace, for the relay's cancel and the exit after it


async def _end_within(relay: asyncio.Task[None], stop: asyncio.Event, grace: float) -> None:
    await stop.wait()
    within = max(grace - RELAY_STOP_RESERVE_SECONDS, 0.1)
    done, _ = await asyncio.wait({relay}, timeout=within)
    if not done:
        log.warning("outbox relay still busy at the end of the grace; cancelled", within=within)
        relay.cancel()
        await asyncio.wait({relay}, timeout=0.5)


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


# What the worker keeps of its shutdown grace for what follows the consumer's own stop: the
# relay's last claim, closing the pool, and the spans still buffered. Everything ends within
# SHUTDOWN_GRACE_SECONDS of the stop signal, whatever the database or a collector is doing.
SHUTDOWN_TAIL_SECONDS = 3.0


class ShutdownClock:
    """When the stop came, and how much of the grace is left."""

    def __init__(self, stop: asyncio.Event, grace: float) -> None:
        self.grace = grace
        self.tail = min(SHUTDOWN_TAIL_SECONDS, grace / 4)
        self._stopped_at: float | None = None
        self._watch = asyncio.create_task(self._wait(stop), name="shutdown-clock")

    async def _wait(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopped_at = time.monotonic()
        log.info("stopping", grace_seconds=self.grace)

    def consumer_grace(self) -> float:
        """The consumer's share: the grace less the tail."""
        return self.grace - self.tail

    def left(self) -> float:
        """Seconds left until the grace ends (all of the tail before a stop: a crash)."""
        if self._stopped_at is None:
            return self.tail
        return max(self._stopped_at + self.grace - time.monotonic(), 0.0)

    def close(self) -> None:
        self._watch.cancel()


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
        )
        queue_type = {"queue_type": QueueType(fifo).name}

        async def database_ready() -> None:
            # While paused, the probe's verdict (what failed and what fixes it); otherwise a
            # cheap round trip, so that /ready never runs a write of its own.
            fault = consumer.gate.fault
            if fault is not None:
                raise StoreUnavailable(f"{fault}; {fault.action}", kind=fault.kind)
            await store.ping()

        app = build_app(
            metrics,
            {"database": database_ready, "sqs": queue.ping},
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
        emf = start_emf(metrics.registry, queue_url, settings.emf_interval_seconds)
        try:
            # After /health is served: a slow or unreachable endpoint never delays it.
            queue_type["queue_type"], redelivery = await read_queues(queue, settings.redelivery())
            await consume_with_relay(
                consumer.run(stop, stopping.consumer_grace(), redelivery),
                relay,
                stop,
                stopping.consumer_grace(),
            )
        finally:
            if emf is not None:
                await emf.stop()
            with contextlib.suppress(Exception):
                await store.close(grace=1)
            await runner.cleanup()
    log.info("worker stopped", processed=consumer.processed)
