"""`order-service send`: a synthetic stream of order events, or a JSONL file, into the queue."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from order_service.adapters.sqs import SqsQueue, sqs_client
from order_service.adapters.telemetry import start_tracing
from order_service.domain.queue_type import is_fifo_name
from order_service.generator import generate
from order_service.metrics import Metrics
from order_service.settings import Settings


async def send(settings: Settings, args: argparse.Namespace) -> int:
    queue_url, dlq_url = settings.queue_urls()
    if args.file:
        text = await asyncio.to_thread(Path(args.file).read_text)
        bodies = [line for line in text.splitlines() if line.strip()]
    else:
        bodies = generate(
            args.orders,
            seed=args.seed,
            duplicate_rate=args.duplicate_rate,
            out_of_order_rate=args.out_of_order_rate,
            invalid_rate=args.invalid_rate,
        ).bodies
    # Traced (OTEL_EXPORTER_OTLP_ENDPOINT ...), each batch of 10 is a `send` span and its
    # messages carry its context: the producer end of the worker's traces.
    telemetry = start_tracing(os.environ, settings.traces_file)
    try:
        async with sqs_client(settings.aws_region) as client:
            queue = SqsQueue(client, queue_url, dlq_url, spans=telemetry.spans, metrics=Metrics())
            await queue.send(queue_url, bodies, group_by=args.group_by)
    finally:
        await asyncio.to_thread(telemetry.shutdown)
    grouped = "order" if is_fifo_name(queue_url) else args.group_by
    groups = f", grouped by {grouped}" if grouped else ""
    print(f"sent {len(bodies)} messages to {queue_url}{groups}", file=sys.stderr)
    return 0
