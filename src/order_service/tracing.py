"""Traces across SQS, the batch and PostgreSQL, on the OpenTelemetry API only (the SDK is set up
by adapters/telemetry.py, and only when tracing is on).

Off unless configured the standard way: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), or the local file of `TRACES_FILE`, and
`OTEL_SDK_DISABLED` not true. When off, nothing here runs: the components get no tracer and take
their plain code paths (no span, no context, no attribute dict per message or per call).

The shape follows the messaging semantic conventions: a `receive` span per long poll, a
`process` span per batch (a root: a batch holds messages of many producers) with a link to each
message's producer context and one event per message's outcome, the PostgreSQL statements and the
settle calls (delete, change visibility) and the DLQ copy as its children.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, SpanKind, TraceFlags, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from order_service.service.ports import Message, Result

TRACER_NAME = "order_service"
MESSAGING_SYSTEM = "aws_sqs"
# The message attributes a producer sets (W3C trace context) and the system attribute an
# X-Ray-instrumented producer's SDK sets: the only ones the worker asks SQS for.
CONTEXT_ATTRIBUTES = ("traceparent", "tracestate")
AWS_TRACE_HEADER = "AWSTraceHeader"

_PROPAGATOR = TraceContextTextMapPropagator()
_TRUE = ("true", "1", "yes", "on")
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def enabled(environ: Mapping[str, str], traces_file: str | None = None) -> bool:
    """The one on/off decision: an OTLP endpoint or a traces file, and the SDK not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    return bool(traces_file) or any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


# AWSTraceHeader: Root=1-{8 hex epoch}-{24 hex};Parent={16 hex};Sampled={0|1|?}[;Lineage=...]
_AWS_ROOT = re.compile(r"1-([0-9a-f]{8})-([0-9a-f]{24})")
_HEX16 = re.compile(r"[0-9a-f]{16}")


def parse_aws_trace_header(value: str) -> SpanContext | None:
    """The producer's span context of an X-Ray trace header, or None when it names no parent
    (a header without `Parent` identifies a trace, not a span to link to) or is malformed."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, field = part.strip().partition("=")
        if sep:
            fields[key] = field
    root = _AWS_ROOT.fullmatch(fields.get("Root", "").lower())
    parent = fields.get("Parent", "").lower()
    if root is None or not _HEX16.fullmatch(parent):
        return None
    trace_id, span_id = int(root[1] + root[2], 16), int(parent, 16)
    if trace_id == 0 or span_id == 0:
        return None
    sampled = TraceFlags.SAMPLED if fields.get("Sampled") == "1" else TraceFlags.DEFAULT
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(sampled))


def producer_context(carrier: Mapping[str, str]) -> SpanContext | None:
    """The context a message was sent in: its W3C `traceparent` (with `tracestate`), else its
    `AWSTraceHeader`; None without either (or with only malformed ones)."""
    if "traceparent" in carrier:
        context = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
        if context.is_valid:
            return context
    header = carrier.get(AWS_TRACE_HEADER)
    return parse_aws_trace_header(header) if header else None


def inject_current() -> dict[str, str]:
    """The current context as W3C headers ({} outside a span)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the current span, for log lines; None outside a span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def destination_name(queue_url: str) -> str:
    return queue_url.rstrip("/").rpartition("/")[2]


def messaging_span(
    tracer: Tracer,
    operation: str,
    operation_type: str,
    destination: str,
    action: str,
    count: int | None = None,
    kind: SpanKind = SpanKind.CLIENT,
) -> AbstractContextManager[Span]:
    """`{operation} {destination}` with the messaging attributes; `action` is the SQS API call."""
    attributes: dict[str, str | int] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": operation_type,
        "messaging.operation.name": operation,
        "messaging.destination.name": destination,
        "rpc.system": "aws-api",
        "rpc.service": "SQS",
        "rpc.method": action,
    }
    if count is not None:
        attributes["messaging.batch.message_count"] = count
    return tracer.start_as_current_span(
        f"{operation} {destination}", kind=kind, attributes=attributes
    )


class BatchSpans:
    """The `process` span of a batch, its links and its per-message events."""

    def __init__(self, tracer: Tracer, destination: str) -> None:
        self._tracer = tracer
        self._destination = destination

    @contextmanager
    def process(self, messages: Sequence[Message]) -> Iterator[Span]:
        with messaging_span(
            self._tracer,
            "process",
            "process",
            self._destination,
            "ReceiveMessage",
            len(messages),
            SpanKind.CONSUMER,
        ) as span:
            # Links after the sampling decision: a batch that is not recorded builds none.
            if span.is_recording():
                for message in messages:
                    if message.trace_carrier:
                        context = producer_context(dict(message.trace_carrier))
                        if context is not None:
                            attributes = {"messaging.message.id": message.message_id}
                            span.add_link(context, attributes)
            yield span

    @staticmethod
    def outcomes(span: Span, results: Sequence[Result]) -> None:
        """One `message` event per settled message: its outcome and what it was about."""
        if not span.is_recording():
            return
        for r in results:
            attributes: dict[str, str | int] = {
                "messaging.message.id": r.message.message_id,
                "order_service.receive_count": r.message.receive_count,
                "order_service.outcome": r.outcome.value,
            }
            if r.event is not None:
                attributes["order_service.event_id"] = str(r.event.event_id)
                attributes["order_service.order_id"] = str(r.event.order_id)
            if r.reason:
                attributes["order_service.reason"] = r.reason[:256]
            span.add_event("message", attributes)


__all__ = [
    "AWS_TRACE_HEADER",
    "CONTEXT_ATTRIBUTES",
    "BatchSpans",
    "current_ids",
    "enabled",
    "inject_current",
    "messaging_span",
    "parse_aws_trace_header",
    "producer_context",
]
