"""The OpenTelemetry SDK, set up only when tracing is on (adapters/trace_context.enabled);
`start_tracing` gives the SDK's handle, or `TracingOff` when it is off: each hands out the
spans (adapters/spans.py) the composition root injects, and stops within a bound.

Everything the SDK reads itself stays its own: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
(the resource), OTEL_TRACES_SAMPLER(_ARG) (the sampler: parent-based always-on by default),
OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION (the exporter) and
OTEL_BSP_* (the batch processor). This module only picks the exporters: OTLP over HTTP with
protobuf when an endpoint is set (the one protocol shipped: grpc would pull in grpcio, a
native wheel of tens of MB, for a sidecar that speaks both), and the JSON-lines file of
TRACES_FILE for a local run.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar

import structlog
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Tracer

from order_service.adapters.spans import NO_SPANS, NoSpans, OtelSpans
from order_service.adapters.trace_context import ENDPOINT_VARIABLES, TRACER_NAME, enabled
from order_service.errors import ConfigError

log = structlog.get_logger("order_service.telemetry")

DEFAULT_SERVICE_NAME = "order-service"
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


class SpanCount(SpanProcessor):
    """Counts the spans handed to the exporters (the sampled ones, as the batch processor takes
    them) and those the exporters accepted: the difference is what was dropped."""

    def __init__(self) -> None:
        self.ended = 0
        self.exported = 0
        self.sinks = 0  # exporters: each gets every sampled span

    def dropped(self) -> int:
        return max(self.ended * self.sinks - self.exported, 0)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context.trace_flags.sampled:
            self.ended += 1


class CountingExporter(SpanExporter):
    """An exporter that counts what its inner exporter accepted."""

    def __init__(self, inner: SpanExporter, count: SpanCount) -> None:
        self._inner, self._count = inner, count

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self._count.exported += len(spans)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


@dataclass
class TracingSdk:
    """A running SDK: its spans, and `stop` to export what is buffered on the way out."""

    provider: TracerProvider
    tracer: Tracer
    _file: IO[str] | None = None
    count: SpanCount = field(default_factory=SpanCount)
    where: tuple[str, ...] = ()  # the traces file and the OTLP endpoints
    on: ClassVar[bool] = True

    def describe(self) -> list[str]:
        """Where the traces go, for a terminal (`order-service dev`)."""
        return [f"traces: {', '.join(self.where)} (README: Tracing)"]

    @property
    def spans(self) -> OtelSpans:
        return OtelSpans(self.tracer)

    async def stop(self, within: float = 5.0) -> None:
        """Exports what is buffered for `within` seconds at most; what could not be sent in
        time is dropped and counted on the log line."""
        done = self.start_shutdown()
        await asyncio.to_thread(done.wait, within)  # the wait itself is bounded
        dropped = self.count.dropped()
        if dropped:
            log.warning(
                "tracing: spans dropped at shutdown", dropped=dropped, within=round(within, 2)
            )

    def shutdown(self) -> None:
        self.provider.shutdown()
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()

    def start_shutdown(self) -> threading.Event:
        """Starts exporting what is buffered and returns the event set when done. The export
        runs in a daemon thread of its own, not the event loop's executor: `asyncio.run` joins
        that one without a bound, the interpreter waits for no daemon thread at exit, and a
        collector refusing, unreachable or slow holds nothing but this thread."""
        done = threading.Event()

        def shut() -> None:
            with contextlib.suppress(Exception):
                self.shutdown()
            done.set()

        threading.Thread(target=shut, name="tracing-shutdown", daemon=True).start()
        return done


class TracingOff:
    """Tracing off: the no-op spans, nothing to export."""

    spans: NoSpans = NO_SPANS
    on = False

    def describe(self) -> list[str]:
        return []

    def shutdown(self) -> None:
        return None

    async def stop(self, within: float = 5.0) -> None:
        return None


Telemetry = TracingSdk | TracingOff


def otlp_protocol(environ: Mapping[str, str]) -> str:
    """The OTLP protocol asked for (the traces-specific variable first); ConfigError for any
    this build does not ship, rather than a worker exporting nothing in silence."""
    for name in _PROTOCOLS:
        value = environ.get(name, "").strip()
        if value:
            if value != "http/protobuf":
                raise ConfigError(
                    f"{name}={value[:30]!r}: this build exports OTLP over http/protobuf only "
                    "(set it to http/protobuf, or point it at a collector that accepts it)"
                )
            return value
    return "http/protobuf"


def _json_line(span: ReadableSpan) -> str:
    line: str = span.to_json(indent=None)
    return line + "\n"


def start_tracing(environ: Mapping[str, str], traces_file: str | None = None) -> Telemetry:
    """The SDK with its exporters, or TracingOff when tracing is off (then nothing is built)."""
    if not enabled(environ, traces_file):
        return TracingOff()
    endpoint = any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)
    if endpoint:
        otlp_protocol(environ)
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    out: IO[str] | None = None
    if traces_file:
        try:
            path = Path(traces_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            out = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"TRACES_FILE: cannot append to {traces_file[:120]!r} ({exc.strerror or exc}); "
                "give a file path in a writable directory"
            ) from None
    # No exit handler of the SDK's own: it would flush again at interpreter exit, without the
    # bound of TracingSdk.stop.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # OTEL_TRACES_SAMPLER
    count = SpanCount()
    count.sinks = int(bool(endpoint)) + int(out is not None)
    provider.add_span_processor(count)
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(CountingExporter(OTLPSpanExporter(), count)))
    if out is not None:
        exporter = ConsoleSpanExporter(out=out, formatter=_json_line)
        provider.add_span_processor(BatchSpanProcessor(CountingExporter(exporter, count)))
    where = [traces_file] if traces_file else []
    where += [
        v
        for k, v in environ.items()
        if k.startswith("OTEL_EXPORTER_OTLP_") and k.endswith("ENDPOINT")
    ]
    return TracingSdk(provider, provider.get_tracer(TRACER_NAME), out, count, tuple(where))
