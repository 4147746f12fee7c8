"""The tracing code's own CPU per order, in one process, without the noise of a shared host's
end-to-end drains: the worker's traced calls for a batch (receives of 10, the `process` span
with its links, five statement spans, the outcome events, the delete), with the SDK, its batch
processor and the OTLP/HTTP exporter sending to a sink of its own process, each profile in a
fresh interpreter (the SDK is process-wide). process_time counts the exporter's thread too.
Each traced profile's figure is then split: the traced calls alone (no exporter), and the OTLP
request their spans make (the exporter's encoding, on its thread in the worker).

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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

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


class _Kept(SpanProcessor):
    """Keeps every ended span, for the breakdown's encoding (no exporter, no thread)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.ended = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)
        self.ended += 1


def _traced_batch(spans: Any, size: int) -> Callable[[], Awaitable[None]]:
    """One batch's traced calls on the worker's spans (`running.spans` of start_tracing)."""
    from order_service.adapters.sqs import SqsQueue
    from order_service.domain.events import EventType, OrderEvent
    from order_service.domain.lifecycle import Outcome
    from order_service.metrics import Metrics
    from order_service.service.ports import Result

    queue = SqsQueue(
        _CannedSqs(), "http://sqs/000/orders", "http://sqs/000/dlq", spans=spans, metrics=Metrics()
    )
    statements = spans.database("postgresql://app@db:5432/orders")  # PostgresStore's
    batches = spans.batches("http://sqs/000/orders")
    event = OrderEvent(uuid.uuid4(), EventType.PLACED, datetime.now(UTC), uuid.uuid4(), None)

    async def batch() -> None:
        messages = []
        for _ in range(size // 10):
            messages += await queue.receive(10, 1)
        with batches.process(messages) as span:
            for name in STATEMENTS:
                with statements.statement(name):
                    pass
            span.outcomes([Result(m, Outcome.APPLIED, None, event) for m in messages])
            await queue.delete(messages)

    return batch


async def _measure(batches: int, size: int) -> dict[str, float]:
    """CPU microseconds per order of `batches` batches of `size`, after a warm-up."""
    from order_service.adapters.telemetry import start_tracing

    running = start_tracing(os.environ)
    batch = _traced_batch(running.spans, size)
    for _ in range(200):
        await batch()
    started = time.process_time()
    for _ in range(batches):
        await batch()
    running.shutdown()  # what is still buffered is exported: a cost of these orders
    return {"total": (time.process_time() - started) * 1e6 / (batches * (size // 10 * 10))}


async def _parts(batches: int, size: int) -> dict[str, float]:
    """Where `_measure`'s figure goes, per order: the traced calls themselves (the SDK's spans,
    links and events, in the worker's thread), and the OTLP request built from their spans
    (the exporter's encoding and serialising, in the batch processor's thread); the rest of
    `total` is the batch processor and the HTTP requests."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from order_service.adapters.spans import OtelSpans

    kept = _Kept()
    provider = TracerProvider()  # OTEL_TRACES_SAMPLER, as in the worker
    provider.add_span_processor(kept)
    batch = _traced_batch(OtelSpans(provider.get_tracer("bench")), size)
    for _ in range(200):
        await batch()
    kept.spans.clear()
    kept.ended = 0
    orders = batches * (size // 10 * 10)
    encoded = 0.0
    started = time.process_time()
    for i in range(batches):
        await batch()
        # Encoded as the batch processor would (its default export batch, 512 spans), then
        # dropped: spans kept all along would make the collector's work grow with the run.
        if len(kept.spans) >= 512 or i == batches - 1:
            encoding = time.process_time()
            encode_spans(kept.spans).SerializePartialToString()
            kept.spans.clear()
            encoded += time.process_time() - encoding
    traced = time.process_time() - started - encoded
    spans = kept.ended
    return {
        "traced_calls": traced * 1e6 / orders,
        "otlp_encoding": encoded * 1e6 / orders,
        "spans_per_order": spans / orders,
    }


async def _profile(batches: int, size: int, traced: bool) -> dict[str, float]:
    from order_service.entrypoints.worker import tune_garbage_collector

    tune_garbage_collector()  # the collector as the worker runs it
    figures = await _measure(batches, size)
    return figures | (await _parts(batches, size) if traced else {})


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(prog="bench.tracing_micro", description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=30, help="messages per batch (10s)")
    parser.add_argument("--profile", choices=list(PROFILES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profile:  # the child: one profile in this interpreter
        traced = args.profile != "off"
        print(json.dumps(asyncio.run(_profile(args.batches, args.batch, traced))))
        return {}
    root = Path(__file__).parents[1]
    sink = subprocess.Popen(
        [sys.executable, "-m", "tests.support.otlp_receiver", "0"],
        stdout=subprocess.PIPE, cwd=root,
    )  # fmt: skip
    assert sink.stdout is not None
    endpoint = f"http://127.0.0.1:{int(sink.stdout.readline())}"
    results: dict[str, dict[str, float]] = {}
    try:
        for name, overrides in PROFILES.items():
            # This tree's sources first, whatever the installed package points at.
            path = os.pathsep.join([str(root / "src"), str(root)])
            env = {**os.environ, **overrides, "PYTHONPATH": path}
            if name != "off":
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
            out = subprocess.run(
                [sys.executable, "-m", "bench.tracing_micro", "--profile", name,
                 "--batches", str(args.batches), "--batch", str(args.batch)],
                env=env, cwd=root, check=True, capture_output=True, text=True,
            )  # fmt: skip
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        sink.terminate()
        sink.wait(10)
    for name, figures in results.items():
        us = figures["total"]
        added = us - results["off"]["total"]
        line = f"{name:12s} {us:7.2f} us/order in the traced calls ({added:+.2f} us over off)"
        if "traced_calls" in figures:
            rest = us - figures["traced_calls"] - figures["otlp_encoding"]
            line += (
                f": calls {figures['traced_calls']:.2f}, OTLP encoding "
                f"{figures['otlp_encoding']:.2f}, batch processor and HTTP {rest:.2f} "
                f"({figures['spans_per_order']:.3f} spans/order)"
            )
        print(line)
    return results


if __name__ == "__main__":
    main()
