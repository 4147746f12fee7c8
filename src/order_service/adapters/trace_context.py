"""Trace context on the OpenTelemetry API: the one on/off decision, the producers' contexts
parsed from what a message carries, the current context for what is sent on, and the log
lines' trace ids. Part of the tracing adapter, with adapters/spans.py (the spans) and
adapters/telemetry.py (the SDK).

Off unless configured the standard way: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), or the local file of `TRACES_FILE`, and
`OTEL_SDK_DISABLED` not true. `enabled` is asked here and in adapters/telemetry.py only: the
rest of the code gets the no-op spans when tracing is off, and never asks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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


def under_unsampled_parent() -> bool:
    """True inside a span that is not sampled (a batch left out at 1%): a child would be
    dropped anyway (parent-based sampling drops it; a trace-id ratio decides as it did for the
    parent, on the same trace id), so the callers take their plain path instead of building a
    span, its context and its attributes for nothing. Outside any span (a root, such as a
    receive or the heartbeat's visibility change): False."""
    context = trace.get_current_span().get_span_context()
    return context.is_valid and not context.trace_flags.sampled


def add_trace_ids(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """The current span's trace_id and span_id, so that a line leads to its trace."""
    ids = current_ids()
    if ids is not None:
        event["trace_id"], event["span_id"] = ids
    return event


def log_processors(
    environ: Mapping[str, str], traces_file: str | None = None
) -> list[structlog.typing.Processor]:
    """What the log configuration adds for tracing: the trace ids when it is on; nothing when
    it is off, so that no line looks for a span."""
    return [add_trace_ids] if enabled(environ, traces_file) else []
