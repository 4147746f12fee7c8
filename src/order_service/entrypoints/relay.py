"""`order-service relay` (the relay alone, e.g. with OUTBOX_RELAY_IN_WORKER=false) and
`order-service outbox status` (the lag and the unpublished count)."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import structlog

from order_service.adapters.http import build_app, start_http
from order_service.adapters.outbox import OutboxStatus, PostgresOutbox
from order_service.bootstrap import install_stop_signals, outbox_relay
from order_service.metrics import Metrics
from order_service.settings import Settings

log = structlog.get_logger("order_service.relay")


def run_relay(settings: Settings) -> int:
    async def main() -> None:
        settings.topic_arn()  # refused in one line before anything starts
        stop = asyncio.Event()
        install_stop_signals(stop)
        metrics = Metrics()
        runner = await start_http(build_app(metrics, {}), settings.health_port)
        try:
            async with outbox_relay(settings, metrics) as relay:
                log.info("relay started", topic=settings.order_events_topic_arn)
                await relay.run(stop)
                log.info("relay stopped", published=relay.published)
        finally:
            with contextlib.suppress(Exception):
                await runner.cleanup()

    asyncio.run(main())
    return 0


def print_status(settings: Settings) -> int:
    async def main() -> OutboxStatus:
        outbox = PostgresOutbox(settings.database_dsn())
        try:
            return await outbox.status()
        finally:
            await outbox.close()

    status = asyncio.run(main())
    last = status.last_published_at
    print(f"unpublished rows:         {status.unpublished}")
    print(f"oldest unpublished (lag): {status.oldest_unpublished_seconds:.1f} s")
    print(f"published rows retained:  {status.published_retained}")
    print(f"last published at:        {last.isoformat() if last else '-'}")
    sys.stdout.flush()
    return 0
