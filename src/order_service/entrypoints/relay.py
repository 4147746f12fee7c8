"""`order-service relay` (the relay alone, e.g. with OUTBOX_RELAY_IN_WORKER=false),
`order-service outbox status` (the lag, the unpublished count, the parked rows) and
`order-service outbox retry` (parked rows back to the relay)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from uuid import UUID

import structlog

from order_service.adapters.cloudwatch_emf import emf_publisher
from order_service.adapters.http import build_app, start_http
from order_service.adapters.outbox import OutboxStatus, PostgresOutbox
from order_service.bootstrap import (
    database_credentials,
    install_stop_signals,
    outbox_relay,
    start_relay,
)
from order_service.errors import ConfigError
from order_service.metrics import Metrics
from order_service.service.supervision import Supervisor
from order_service.settings import Settings

log = structlog.get_logger("order_service.relay")


def run_relay(settings: Settings) -> int:
    async def main() -> None:
        settings.topic_arn()  # refused in one line before anything starts
        stop = asyncio.Event()
        install_stop_signals(stop)
        metrics = Metrics()
        runner = await start_http(build_app(metrics, {}), settings.health_port)
        # Whoever relays reports the lag: under the worker's queue (SQS_QUEUE_URL, as the
        # workers have it), the dimension of the stack's lag alarm.
        emf = emf_publisher(
            metrics.registry, settings.sqs_queue_url or "relay", settings.emf_interval_seconds
        )
        tasks = Supervisor(stop)
        if emf is not None:
            tasks.start("emf-publisher", emf.run())
        try:
            async with outbox_relay(settings, metrics) as relay:
                log.info("relay started", topic=settings.order_events_topic_arn)
                # Nothing to consume: the relay alone, stopped within the grace like a worker's.
                start_relay(tasks, relay, stop, settings.shutdown_grace_seconds)
                await tasks.finish()
                log.info("relay stopped", published=relay.published)
        finally:
            await tasks.cancel_all()
            if emf is not None:
                emf.write_last()
            with contextlib.suppress(Exception):
                await runner.cleanup()

    asyncio.run(main())
    return 0


def print_status(settings: Settings) -> int:
    async def main() -> OutboxStatus:
        outbox = PostgresOutbox(settings.database_dsn(), database_credentials(settings))
        try:
            return await outbox.status()
        finally:
            await outbox.close()

    status = asyncio.run(main())
    last = status.last_published_at
    print(f"unpublished rows:         {status.unpublished}")
    print(f"oldest unpublished (lag): {status.oldest_unpublished_seconds:.1f} s")
    print(f"published rows retained:  {status.published_retained}")
    if last is not None:
        print(f"last published at:        {last.isoformat()}")
    else:
        # The relays' setting is theirs, not this shell's: the lag above says whether they
        # keep up.
        print("last published at:        - (no published row kept: relays delete them when "
              "published unless OUTBOX_RETENTION_HOURS keeps them)")  # fmt: skip
    print(f"parked rows:              {status.parked}")
    if status.parked:
        print(f"rows waiting behind them: {status.waiting_behind_parked}")
        print("SNS refused these for good; fix the cause, then `order-service outbox retry ID`:")
        for row in status.parked_rows:
            print(
                f"  {row.id}  order {row.order_id} #{row.sequence} {row.type}  "
                f"parked {row.parked_at.isoformat()}  {row.reason or ''}"
            )
        if len(status.parked_rows) < status.parked:
            print(f"  ... and {status.parked - len(status.parked_rows)} more")
    sys.stdout.flush()
    return 0


def retry_parked(settings: Settings, ids: Sequence[str], *, every: bool) -> int:
    if every == bool(ids):
        raise ConfigError("give the parked rows' ids (see `order-service outbox status`) or --all")
    try:
        rows = None if every else [UUID(i) for i in ids]
    except ValueError as exc:
        raise ConfigError(f"not a row id: {exc}") from exc

    async def main() -> int:
        outbox = PostgresOutbox(settings.database_dsn(), database_credentials(settings))
        try:
            return await outbox.retry_parked(rows)
        finally:
            await outbox.close()

    retried = asyncio.run(main())
    print(f"parked rows given back to the relay: {retried}")
    return 0
