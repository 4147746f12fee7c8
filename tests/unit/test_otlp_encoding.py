"""The in-place OTLP encoder gives the same bytes as the SDK's, for spans of every shape the
worker makes and the value types the SDK accepts."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from order_service import tracing
from order_service.adapters.otlp_encoding import encode_spans


def _spans() -> list:
    exporter = InMemorySpanExporter()
    providers = [
        TracerProvider(resource=Resource({"service.name": "a", "n": 1}), sampler=ALWAYS_ON),
        TracerProvider(resource=Resource({}, schema_url="https://opentelemetry.io/schemas/1")),
    ]
    for provider in providers:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracers = [
        providers[0].get_tracer("order_service"),
        providers[0].get_tracer("other", "1.2", schema_url="https://s", attributes={"x": "y"}),
        providers[1].get_tracer("order_service"),
    ]
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "v"), ("k", "1")]),
    )
    local = SpanContext(1, 2, is_remote=False)
    for tracer in tracers:
        with tracing.messaging_span(tracer, "process", "process", "q", "ReceiveMessage", 3) as s:
            s.add_link(remote, {"messaging.message.id": "m-0"})
            s.add_link(local)
            s.add_event("message", {"order_service.receive_count": 2, "ok": True, "f": 0.5})
            s.add_event("empty")
            s.set_attribute("seq", ["a", "b"])
            s.set_attribute("nums", (1, 2))
            s.set_attribute("raw", b"\x00\x01")
            with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
                child.set_status(Status(StatusCode.ERROR, "boom"))
            with tracer.start_as_current_span("ok") as child:
                child.set_status(Status(StatusCode.OK))
    with tracers[0].start_as_current_span("from remote", context=_context(remote)):
        pass
    return list(exporter.get_finished_spans())


def _context(span_context: SpanContext):  # type: ignore[no-untyped-def]
    from opentelemetry import trace

    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


def test_the_bytes_are_the_sdk_encoders():
    spans = _spans()
    assert len(spans) == 10
    ours = encode_spans(spans).SerializeToString()
    assert ours == sdk_encode(spans).SerializeToString()
    assert (
        encode_spans(spans[3:5]).SerializeToString() == sdk_encode(spans[3:5]).SerializeToString()
    )
    assert encode_spans([]).SerializeToString() == sdk_encode([]).SerializeToString()


def test_the_worker_exporter_uses_it(monkeypatch):
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    from order_service.adapters import otlp_encoding
    from order_service.adapters.telemetry import start_tracing

    monkeypatch.setattr(trace_exporter, "encode_spans", trace_exporter.encode_spans)
    running = start_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert running is not None
    try:
        assert trace_exporter.encode_spans is otlp_encoding.encode_spans
    finally:
        running.provider.shutdown()
