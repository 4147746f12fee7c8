"""The tracing port's two implementations: `OtelSpans`, on the OpenTelemetry API, and `NoSpans`,
which the composition root injects when tracing is off. The consuming loop (through the port,
service/ports.py `BatchSpans`) and the SQS and PostgreSQL adapters call them unconditionally;
whether tracing is on is known here, in adapters/trace_context.py and adapters/telemetry.py
only (tests/unit/test_layers.py checks it).

The shape follows the messaging semantic conventions: a `receive` span per long poll, a
`process` span per batch (a root: a batch holds messages of many producers) with a link to each
message's producer context and one event per message's outcome, the PostgreSQL statements and
the settle calls (delete, change visibility) and the DLQ copy as its children.

What off costs: `NoSpans` hands out one shared do-nothing span and builds no context, no
attribute dict, per message or per call. Within a batch the sampler left out, `OtelSpans` does
the same for the batch's children: they would be dropped anyway.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from order_service.adapters.trace_context import (
    AWS_TRACE_HEADER,
    CONTEXT_ATTRIBUTES,
    MESSAGING_SYSTEM,
    inject_current,
    producer_context,
    under_unsampled_parent,
)
from order_service.domain.queue_type import queue_name
from order_service.service.ports import Message, Result

Carrier = tuple[tuple[str, str], ...]
Kind = Literal["client", "producer"]
_KINDS = {"client": SpanKind.CLIENT, "producer": SpanKind.PRODUCER}
# Each statement's span: (db.query.summary, which is also the span's name; db.operation.name).
STATEMENT_SPANS = {
    "lock_keys": ("SELECT pg_advisory_xact_lock", "SELECT"),
    "recorded_event_ids": ("SELECT order_events", "SELECT"),
    "load_orders": ("SELECT orders", "SELECT"),
    "catch_up_orders": ("INSERT order_outbox UPDATE orders", "INSERT"),
    "write_batch": ("INSERT orders order_items order_events order_outbox", "INSERT"),
    "commit": ("COMMIT", "COMMIT"),
    "quarantine": ("INSERT quarantined_messages", "INSERT"),
}


class NoSpan:
    """The span of tracing off, and of a batch's child the sampler would drop: one shared
    instance, a context manager that is its own span and records nothing."""

    __slots__ = ()

    def __enter__(self) -> NoSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        return None

    def outcomes(self, results: Sequence[Result]) -> None:
        return None

    def context_headers(self) -> dict[str, str]:
        return {}


NO_SPAN = NoSpan()


class SpanScope:
    """A started span, current while the `with` block runs, ended on the way out; its
    attributes set only when it is recorded (`attributes` is called then), so that a span the
    sampler drops costs no attribute dict. An exception is recorded on the span, as the SDK's
    `start_as_current_span` does, and propagates."""

    __slots__ = ("_attributes", "_kind", "_name", "_token", "_tracer", "span")

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        kind: SpanKind,
        attributes: Callable[[], Mapping[str, AttributeValue]],
    ) -> None:
        self._tracer, self._name, self._kind, self._attributes = tracer, name, kind, attributes

    def __enter__(self) -> SpanScope:
        span = self.span = self._tracer.start_span(self._name, kind=self._kind)
        if span.is_recording():
            span.set_attributes(self._attributes())
        self._token = context_api.attach(trace.set_span_in_context(span))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        context_api.detach(self._token)
        span = self.span
        if exc is not None and span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.span.set_attribute(key, value)

    def context_headers(self) -> dict[str, str]:
        """This span's context as W3C headers (it is the current one inside the block)."""
        return inject_current()


def _messaging_attributes(
    operation: str, operation_type: str, destination: str, action: str, count: int | None
) -> Callable[[], dict[str, AttributeValue]]:
    def attributes() -> dict[str, AttributeValue]:
        values: dict[str, AttributeValue] = {
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

    return attributes


class ProcessScope(SpanScope):
    """The `process` span of a batch: a link to each message's producer and, once settled, one
    `message` event per outcome."""

    __slots__ = ("_messages",)

    def __init__(self, tracer: Tracer, destination: str, messages: Sequence[Message]) -> None:
        attributes = _messaging_attributes(
            "process", "process", destination, "ReceiveMessage", len(messages)
        )
        super().__init__(tracer, f"process {destination}", SpanKind.CONSUMER, attributes)
        self._messages = messages

    def __enter__(self) -> ProcessScope:
        super().__enter__()
        span = self.span
        # Links after the sampling decision: a batch that is not recorded builds none.
        if span.is_recording():
            for message in self._messages:
                if message.trace_carrier:
                    context = producer_context(dict(message.trace_carrier))
                    if context is not None:
                        span.add_link(context, {"messaging.message.id": message.message_id})
        return self

    def outcomes(self, results: Sequence[Result]) -> None:
        """One `message` event per settled message: its outcome and what it was about."""
        span = self.span
        if not span.is_recording():
            return
        for r in results:
            attributes: dict[str, AttributeValue] = {
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


class OtelBatchSpans:
    """The port (service/ports.py BatchSpans) on OpenTelemetry: one queue's `process` spans."""

    def __init__(self, tracer: Tracer, destination: str) -> None:
        self._tracer = tracer
        self._destination = destination

    def process(self, messages: Sequence[Message]) -> ProcessScope:
        return ProcessScope(self._tracer, self._destination, messages)


class DatabaseSpans:
    """A database's spans: its statements, its probe, and the context its outbox rows keep."""

    def __init__(self, tracer: Tracer, attributes: Mapping[str, AttributeValue]) -> None:
        self._tracer = tracer
        self._attributes = attributes

    def statement(self, name: str) -> SpanScope | NoSpan:
        # A batch left out by the sampler gets no statement spans: they would be dropped.
        if under_unsampled_parent():
            return NO_SPAN
        summary, operation = STATEMENT_SPANS[name]
        return SpanScope(
            self._tracer,
            summary,
            SpanKind.CLIENT,
            lambda: {
                **self._attributes,
                "db.operation.name": operation,
                "db.query.summary": summary,
            },
        )

    def probe(self) -> SpanScope:
        # One trace per probe (start-up, a paused worker's checks), its statements inside.
        return SpanScope(self._tracer, "probe", SpanKind.INTERNAL, lambda: self._attributes)

    def traceparent(self) -> str | None:
        """The batch's context (its `process` span), kept with the outbox rows it writes so
        that the relay's messages carry it onward."""
        return inject_current().get("traceparent")


class OtelSpans:
    """Tracing on: spans on the tracer of a running SDK (adapters/telemetry.py)."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def batches(self, queue_url: str) -> OtelBatchSpans:
        return OtelBatchSpans(self.tracer, queue_name(queue_url))

    def messaging(
        self,
        operation: str,
        operation_type: str,
        queue_url: str,
        action: str,
        count: int | None = None,
        kind: Kind = "client",
    ) -> SpanScope | NoSpan:
        """`{operation} {queue}` with the messaging attributes; `action` is the SQS API call.
        Within a batch left out by the sampler (delete, visibility, DLQ copy): no span."""
        if under_unsampled_parent():
            return NO_SPAN
        destination = queue_name(queue_url)
        return SpanScope(
            self.tracer,
            f"{operation} {destination}",
            _KINDS[kind],
            _messaging_attributes(operation, operation_type, destination, action, count),
        )

    def receive_attributes(self, system: Sequence[str]) -> dict[str, list[str]]:
        """What a receive asks SQS for: the `system` attributes and the producers' contexts
        (the W3C attributes a producer sets, the X-Ray header its SDK sets)."""
        return {
            "MessageSystemAttributeNames": [*system, AWS_TRACE_HEADER],
            "MessageAttributeNames": list(CONTEXT_ATTRIBUTES),
        }

    def carriers(self, received: Sequence[Mapping[str, Any]]) -> Iterable[Carrier]:
        """The producer's context of each received SQS message, in order."""
        return [_sqs_carrier(m) for m in received]

    def current_context(self) -> dict[str, str]:
        """The current context as W3C headers ({} outside a span)."""
        return inject_current()

    def database(self, dsn: str) -> DatabaseSpans:
        return DatabaseSpans(self.tracer, database_attributes(dsn))


class NoSpans:
    """Tracing off: every span is NO_SPAN, no context is asked of SQS or sent on. Stands for
    the port (`process`) and for a database's spans (`statement`, `probe`) alike."""

    __slots__ = ()

    def batches(self, queue_url: str) -> NoSpans:
        return self

    def process(self, messages: Sequence[Message]) -> NoSpan:
        return NO_SPAN

    def messaging(
        self,
        operation: str,
        operation_type: str,
        queue_url: str,
        action: str,
        count: int | None = None,
        kind: Kind = "client",
    ) -> NoSpan:
        return NO_SPAN

    def receive_attributes(self, system: Sequence[str]) -> dict[str, list[str]]:
        return {"MessageSystemAttributeNames": list(system)}

    def carriers(self, received: Sequence[Mapping[str, Any]]) -> Iterable[Carrier]:
        return itertools.repeat(())

    def current_context(self) -> dict[str, str]:
        return {}

    def database(self, dsn: str) -> NoSpans:
        return self

    def statement(self, name: str) -> NoSpan:
        return NO_SPAN

    def probe(self) -> NoSpan:
        return NO_SPAN

    def traceparent(self) -> str | None:
        return None


NO_SPANS = NoSpans()
Spans = OtelSpans | NoSpans  # what the adapters take


def _sqs_carrier(message: Mapping[str, Any]) -> Carrier:
    """The producer's context of a received message: the W3C attributes it carries, and the
    X-Ray header SQS sets as a system attribute."""
    carrier = [
        (name, value["StringValue"])
        for name, value in message.get("MessageAttributes", {}).items()
        if name in CONTEXT_ATTRIBUTES and "StringValue" in value
    ]
    header = message.get("Attributes", {}).get(AWS_TRACE_HEADER)
    if header:
        carrier.append((AWS_TRACE_HEADER, header))
    return tuple(carrier)


def database_attributes(dsn: str) -> dict[str, AttributeValue]:
    """The database conventions' connection attributes, read from the DSN once (no query)."""
    attributes: dict[str, AttributeValue] = {
        "db.system.name": "postgresql",
        "db.system": "postgresql",
    }
    parts = urlsplit(dsn)
    name = unquote(parts.path.lstrip("/"))
    if name:
        attributes["db.namespace"] = name
    if "," in parts.netloc:  # several hosts: which one answers is not known here
        return attributes
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return attributes
    if host:
        attributes["server.address"] = host
        attributes["server.port"] = port or 5432
    elif socket_dir := parse_qs(parts.query).get("host", [""])[-1]:
        attributes["server.address"] = socket_dir  # a Unix socket's directory
    return attributes
