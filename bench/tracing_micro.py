"""The tracing code's own CPU per order, in one process, without the noise of a shared host's
end-to-end drains: the worker's traced calls for a batch (receives of 10, the `process` span
with its links, five statement spans, the outcome events, the delete), with the SDK, its batch
processor and the OTLP/HTTP exporter sending to a sink of its own process, each profile in a
fresh interpreter (the SDK is process-wide). process_time counts the exporter's thread too.

The SQS client and the database are left out (a canned ReceiveMessage response, no queries):
what is measured is what tracing adds, the figure to set against the worker's CPU per order
with tracing off (bench/tracing.py). It is a microbenchmark to find where tracing's CPU goes,
not a replacement for the end-to-end rows.

    python -m bench.tracing_micro [--batches 3000] [--batch 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROFILES = {
    "off": {},
    "sampled_100": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    "sampled_1": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    },
}
STATEMENTS = ("lock_keys", "recorded_event_ids", "load_orders", "write_batch", "commit")


def _message() -> dict[str, Any]:
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    return {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": secrets.token_hex(60),
        "Body": "{}",
        "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {"traceparent": {"DataType": "String", "StringValue": traceparent}},
    }


class _CannedSqs:
    def __init__(self) -> None:
        self.response = {"Messages": [_message() for _ in range(10)]}

    async def receive_message(self, **_: Any) -> dict[str, Any]:
        return self.response

    async def delete_message_batch(self, **_: Any) -> dict[str, Any]:
        return {}


async def _measure(batches: int, size: int) -> float:
    """CPU microseconds per order of `batches` batches of `size`, after a warm-up."""
    from order_service.adapters.sqs import SqsQueue
    from order_service.adapters.telemetry import start_tracing
    from order_service.domain.events import EventType, OrderEvent
    from order_service.domain.lifecycle import Outcome
    from order_service.metrics import Metrics
    from order_service.service.ports import Result

    running = start_tracing(os.environ)
    dsn = "postgresql://app@db:5432/orders"
    queue = SqsQueue(
        _CannedSqs(),
        "http://sqs/000/orders",
        "http://sqs/000/dlq",
        spans=running.spans,
        metrics=Metrics(),
    )
    statements = running.spans.database(dsn)  # what PostgresStore(dsn, spans=...) runs under
    spans = running.spans.batches("http://sqs/000/orders")
    event = OrderEvent(uuid.uuid4(), EventType.PLACED, datetime.now(UTC), uuid.uuid4(), None)

    async def batch() -> None:
        messages = []
        for _ in range(size // 10):
            messages += await queue.receive(10, 1)
        with spans.process(messages) as span:
            for name in STATEMENTS:
                with statements.statement(name):
                    pass
            span.outcomes([Result(m, Outcome.APPLIED, None, event) for m in messages])
            await queue.delete(messages)

    for _ in range(200):
        await batch()
    started = time.process_time()
    for _ in range(batches):
        await batch()
    running.shutdown()  # what is still buffered is exported: a cost of these orders
    return (time.process_time() - started) * 1e6 / (batches * (size // 10 * 10))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="bench.tracing_micro", description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=30, help="messages per batch (10s)")
    parser.add_argument("--profile", choices=list(PROFILES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile:  # the child: one profile in this interpreter
        print(json.dumps(asyncio.run(_measure(args.batches, args.batch))))
        return {}
    root = Path(__file__).parents[1]
    sink = subprocess.Popen(
        [sys.executable, "-m", "tests.support.otlp_receiver", "0"],
        stdout=subprocess.PIPE, cwd=root,
    )  # fmt: skip
    assert sink.stdout is not None
    endpoint = f"http://127.0.0.1:{int(sink.stdout.readline())}"
    results: dict[str, float] = {}
    try:
        for name, overrides in PROFILES.items():
            env = {**os.environ, **overrides, "PYTHONPATH": str(root)}
            if name != "off":
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
            out = subprocess.run(
                [sys.executable, "-m", "bench.tracing_micro", "--profile", name,
                 "--batches", str(args.batches), "--batch", str(args.batch)],
                env=env, cwd=root, check=True, capture_output=True, text=True,
            )  # fmt: skip
            results[name] = float(out.stdout.strip().splitlines()[-1])
    finally:
        sink.terminate()
        sink.wait(10)
    for name, us in results.items():
        added = us - results["off"]
        print(f"{name:12s} {us:7.2f} us/order in the traced calls ({added:+.2f} us over off)")
    return results


if __name__ == "__main__":
    main()
