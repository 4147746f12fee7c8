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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Tracer

from order_service import tracing
from order_service.errors import ConfigError

DEFAULT_SERVICE_NAME = "order-service"
_PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


@dataclass
class Tracing:
    """A running SDK: its tracer, and `shutdown` to export what is buffered on the way out."""

    provider: TracerProvider
    tracer: Tracer
    _file: IO[str] | None = None

    def shutdown(self) -> None:
        self.provider.shutdown()
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()


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
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER
    out: IO[str] | None = None
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if traces_file:
        path = Path(traces_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("a", encoding="utf-8")
        exporter = ConsoleSpanExporter(out=out, formatter=_json_line)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, provider.get_tracer(tracing.TRACER_NAME), out)
