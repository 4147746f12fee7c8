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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, SpanKind, TraceFlags, Tracer, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from order_service.service.ports import Message, Result

TRACER_NAME = "order_service"
MESSAGING_SYSTEM = "aws_sqs"
# The message attributes a producer sets (W3C trace context) and the system attribute an
# X-Ray-instrumented producer's SDK sets: the only ones the worker asks SQS for.
CONTEXT_ATTRIBUTES = ("traceparent", "tracestate")
AWS_TRACE_HEADER = "AWSTraceHeader"

_PROPAGATOR = TraceContextTextMapPropagator()
MAX_TRACESTATE_CHARS = 512  # W3C Trace Context: what a vendor should propagate at least
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


# traceparent: version-trace_id-span_id-flags, lowercase hex (W3C Trace Context, level 1); a
# later version may append fields, version 00 may not, ff is invalid.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def parse_traceparent(value: str, tracestate: str | None = None) -> SpanContext | None:
    """The producer's span context of a W3C `traceparent` (with its `tracestate`), or None when
    it is malformed. The propagator's own extract does the same through a Context per call,
    three times the CPU, once per message of every sampled batch."""
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_hex, span_hex, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if trace_id == 0 or span_id == 0:
        return None
    # A longer tracestate than W3C asks vendors to carry is dropped, not parsed: its members
    # would each be parsed (and each malformed one logged) for every sampled batch.
    if tracestate and len(tracestate) > MAX_TRACESTATE_CHARS:
        tracestate = None
    state = TraceState.from_header([tracestate]) if tracestate else None
    return SpanContext(
        trace_id,
        span_id,
        is_remote=True,
        trace_flags=TraceFlags(int(flags, 16)),
        trace_state=state,
    )


def producer_context(carrier: Mapping[str, str]) -> SpanContext | None:
    """The context a message was sent in: its W3C `traceparent` (with `tracestate`), else its
    `AWSTraceHeader`; None without either (or with only malformed ones)."""
    traceparent = carrier.get("traceparent")
    if traceparent:
        context = parse_traceparent(traceparent, carrier.get("tracestate"))
        if context is not None:
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


def under_unsampled_parent() -> bool:
    """True inside a span that is not sampled (a batch left out at 1%): a child would be
    dropped anyway (parent-based sampling drops it; a trace-id ratio decides as it did for the
    parent, on the same trace id), so the callers take their plain path instead of building a
    span, its context and its attributes for nothing. Outside any span (a root, such as a
    receive or the heartbeat's visibility change): False."""
    context = trace.get_current_span().get_span_context()
    return context.is_valid and not context.trace_flags.sampled


class SpanScope:
    """A started span, current while the `with` block runs, ended on the way out; its
    attributes set only when it is recorded (`attributes` is called then), so that a span the
    sampler drops costs no attribute dict. An exception is recorded on the span, as the SDK's
    `start_as_current_span` does, and propagates."""

    __slots__ = ("_attributes", "_kind", "_name", "_span", "_token", "_tracer")

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        kind: SpanKind,
        attributes: Callable[[], Mapping[str, AttributeValue]],
    ) -> None:
        self._tracer, self._name, self._kind, self._attributes = tracer, name, kind, attributes

    def __enter__(self) -> Span:
        span = self._span = self._tracer.start_span(self._name, kind=self._kind)
        if span.is_recording():
            span.set_attributes(self._attributes())
        self._token = context_api.attach(trace.set_span_in_context(span))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        context_api.detach(self._token)
        span = self._span
        if exc is not None and span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()


def messaging_span(
    tracer: Tracer,
    operation: str,
    operation_type: str,
    destination: str,
    action: str,
    count: int | None = None,
    kind: SpanKind = SpanKind.CLIENT,
) -> SpanScope:
    """`{operation} {destination}` with the messaging attributes; `action` is the SQS API call."""

    def attributes() -> dict[str, str | int]:
        values: dict[str, str | int] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": operation_type,
            "messaging.operation.name": operation,
            "messaging.destination.name": destination,
            "rpc.system": "aws-api",
            "rpc.service": "SQS",
            "rpc.method": action,
        }
        if count is not None:
            values["messaging.batch.message_count"] = count
        return values

    return SpanScope(tracer, f"{operation} {destination}", kind, attributes)


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
            if r.message.group_id is not None:
                attributes["order_service.group_id"] = r.message.group_id
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
    "SpanScope",
    "current_ids",
    "enabled",
    "inject_current",
    "messaging_span",
    "parse_aws_trace_header",
    "parse_traceparent",
    "producer_context",
    "under_unsampled_parent",
]
