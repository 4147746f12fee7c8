"""The OpenTelemetry SDK, set up only when tracing is on (order_service.tracing.enabled).

Everything the SDK reads itself stays its own: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
(the resource), OTEL_TRACES_SAMPLER(_ARG) (the sampler: parent-based always-on by default),
OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION (the exporter) and
OTEL_BSP_* (the batch processor). This module only picks the exporters: OTLP over HTTP with
protobuf when an endpoint is set (the one protocol shipped: grpc would pull in grpcio, a
native wheel of tens of MB, for a sidecar that speaks both), and the JSON-lines file of
TRACES_FILE for a local run.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Tracer

from order_service import tracing
from order_service.errors import ConfigError

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
class Tracing:
    """A running SDK: its tracer, and `shutdown` to export what is buffered on the way out."""

    provider: TracerProvider
    tracer: Tracer
    _file: IO[str] | None = None
    count: SpanCount = field(default_factory=SpanCount)

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


def start_tracing(environ: Mapping[str, str], traces_file: str | None = None) -> Tracing | None:
    """The SDK with its exporters, or None when tracing is off (then nothing is built)."""
    if not tracing.enabled(environ, traces_file):
        return None
    endpoint = any(environ.get(name, "").strip() for name in tracing.ENDPOINT_VARIABLES)
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
    # bound of Tracing.shutdown_within.
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
    return Tracing(provider, provider.get_tracer(tracing.TRACER_NAME), out, count)
