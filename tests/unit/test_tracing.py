"""The pure parts of tracing: the on/off decision, the AWSTraceHeader parser, the carrier's
extraction, the SDK set-up from the standard variables, and the batch span's links and events
(with the SDK's in-memory exporter: no network)."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from order_service.adapters import trace_context as tracing
from order_service.adapters.spans import NO_SPAN, NO_SPANS, OtelSpans, database_attributes
from order_service.adapters.telemetry import TracingOff, TracingSdk, otlp_protocol, start_tracing
from order_service.adapters.trace_context import add_trace_ids
from order_service.domain.lifecycle import Outcome
from order_service.errors import ConfigError
from order_service.service.ports import Message, Result

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("environ", "traces_file", "on"),
    [
        ({}, None, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, None, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, None, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, None, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, None, False),
        ({ENDPOINT: "http://c:4318", "OTEL_SDK_DISABLED": "true"}, None, False),
        ({ENDPOINT: "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, None, False),
        ({ENDPOINT: "http://c:4318", "OTEL_SDK_DISABLED": "false"}, None, True),
        ({}, ".local/traces.jsonl", True),
        ({"OTEL_SDK_DISABLED": "true"}, ".local/traces.jsonl", False),
    ],
)  # fmt: skip
def test_tracing_is_on_only_when_configured_the_standard_way(environ, traces_file, on):
    assert tracing.enabled(environ, traces_file) is on
    if traces_file is None:  # (with one, start_tracing would open the file)
        started = start_tracing(environ)
        assert isinstance(started, TracingSdk) is on
        started.shutdown()


def test_off_builds_no_sdk_and_hands_out_the_no_op_spans():
    off = start_tracing({})
    assert isinstance(off, TracingOff) and off.spans is NO_SPANS
    assert tracing.log_processors({}) == []  # no log line looks for a span
    assert tracing.log_processors({}, "t.jsonl") == [add_trace_ids]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            (0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8, True),
        ),
        (
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
            (0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8, False),
        ),
        (  # order and spacing do not matter; Lineage and unknown keys are ignored
            "Sampled=1; Lineage=a87bd80c:1|68fd508a:5 ;Parent=53995C3F42CD8AD8;"
            "Root=1-5759E988-BD862E3FE1BE46A994272793",
            (0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8, True),
        ),
        (  # Sampled=? (the receiver decides): a link, not sampled
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?",
            (0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8, False),
        ),
    ],
)
def test_aws_trace_header_gives_the_producers_span_context(header, expected):
    context = tracing.parse_aws_trace_header(header)
    assert context is not None and context.is_valid and context.is_remote
    assert (context.trace_id, context.span_id, context.trace_flags.sampled) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Root=1-5759e988-bd862e3fe1be46a994272793",  # no parent: a trace, no span to link
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",  # 15 hex
        "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",  # version 2
        "Root=1-5759e988bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",  # no dash
        "Root=1-5759e988-bd862e3fe1be46a99427279z;Parent=53995c3f42cd8ad8",  # not hex
        "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",  # zero trace
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",  # zero span
        "garbage",
    ],
)
def test_a_malformed_aws_trace_header_gives_nothing(header):
    assert tracing.parse_aws_trace_header(header) is None


def test_traceparent_wins_over_the_aws_header_and_keeps_tracestate():
    aws = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    context = tracing.producer_context(
        {"traceparent": TRACEPARENT, "tracestate": "vendor=value", "AWSTraceHeader": aws}
    )
    assert context is not None
    assert format(context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(context.span_id, "016x") == "b7ad6b7169203331"
    assert context.trace_flags == TraceFlags.SAMPLED
    assert context.trace_state.get("vendor") == "value"


def test_a_malformed_traceparent_falls_back_to_the_aws_header():
    aws = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    context = tracing.producer_context({"traceparent": "00-zz-yy-01", "AWSTraceHeader": aws})
    assert context is not None and context.span_id == 0x53995C3F42CD8AD8
    assert tracing.producer_context({"traceparent": "00-zz-yy-01"}) is None
    assert tracing.producer_context({}) is None


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]
)
@pytest.mark.parametrize("protocol", ["grpc", "http/json"])
def test_a_protocol_this_build_does_not_ship_is_refused_in_one_line(variable, protocol):
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", variable: protocol}
    with pytest.raises(ConfigError, match=variable):
        start_tracing(environ)
    assert otlp_protocol({}) == otlp_protocol({variable: "http/protobuf"}) == "http/protobuf"


def test_the_sdk_reads_the_service_name_and_sampler_itself(monkeypatch, tmp_path):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders-eu")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    started = start_tracing({}, str(tmp_path / "t.jsonl"))
    assert isinstance(started, TracingSdk)
    try:
        assert started.provider.resource.attributes["service.name"] == "orders-eu"
        assert "0.25" in started.provider.sampler.get_description()
    finally:
        started.shutdown()
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    started = start_tracing({}, str(tmp_path / "t.jsonl"))
    assert isinstance(started, TracingSdk)
    started.shutdown()
    assert started.provider.resource.attributes["service.name"] == "order-service"


def test_the_traces_file_gets_one_json_span_per_line(tmp_path):
    path = tmp_path / "sub" / "traces.jsonl"
    started = start_tracing({}, str(path))
    assert isinstance(started, TracingSdk)
    with started.tracer.start_as_current_span("one"), started.tracer.start_as_current_span("two"):
        pass
    started.shutdown()
    spans = [json.loads(line) for line in path.read_text().splitlines()]
    assert [s["name"] for s in spans] == ["two", "one"]
    assert spans[0]["parent_id"] == spans[1]["context"]["span_id"]


@pytest.fixture
def exporter():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    exporter.tracer = provider.get_tracer("test")
    return exporter


def _message(i: int, carrier: tuple[tuple[str, str], ...] = ()) -> Message:
    return Message(f"m-{i}", f"r-{i}", "{}", receive_count=i + 1, trace_carrier=carrier)


def test_the_process_span_links_each_producer_and_records_each_outcome(exporter):
    aws = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    messages = [
        _message(0, (("traceparent", TRACEPARENT),)),
        _message(1, (("AWSTraceHeader", aws),)),
        _message(2),  # no context: no link
    ]
    spans = OtelSpans(exporter.tracer).batches("http://sqs/1/orders")
    with spans.process(messages) as span:
        span.outcomes(
            [
                Result(messages[0], Outcome.APPLIED),
                Result(messages[1], Outcome.DEFERRED, "paid before placed"),
                Result(messages[2], Outcome.INVALID, "not JSON"),
            ],
        )
    (finished,) = exporter.get_finished_spans()
    assert finished.name == "process orders" and finished.kind is SpanKind.CONSUMER
    assert finished.parent is None  # a root: its messages come from many traces
    assert finished.attributes["messaging.system"] == "aws_sqs"
    assert finished.attributes["messaging.operation.type"] == "process"
    assert finished.attributes["messaging.destination.name"] == "orders"
    assert finished.attributes["messaging.batch.message_count"] == 3
    links = [
        (link.context.span_id, link.attributes["messaging.message.id"]) for link in finished.links
    ]
    assert links == [(0xB7AD6B7169203331, "m-0"), (0x53995C3F42CD8AD8, "m-1")]
    events = [dict(e.attributes) for e in finished.events]
    assert [e["order_service.outcome"] for e in events] == ["applied", "deferred", "invalid"]
    assert [e["order_service.receive_count"] for e in events] == [1, 2, 3]
    assert events[1]["order_service.reason"] == "paid before placed"


def test_a_batch_that_is_not_sampled_builds_no_links_or_events(exporter):
    provider = TracerProvider(sampler=ALWAYS_OFF)
    spans = OtelSpans(provider.get_tracer("t")).batches("http://sqs/1/orders")
    with spans.process([_message(0, (("traceparent", TRACEPARENT),))]) as span:
        assert not span.span.is_recording()
        span.outcomes([Result(_message(0), Outcome.APPLIED)])


def test_log_lines_carry_the_current_span_ids(exporter):
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}
    with exporter.tracer.start_as_current_span("batch") as span:
        event = add_trace_ids(None, "info", {"event": "message"})
        context = span.get_span_context()
    assert event["trace_id"] == format(context.trace_id, "032x")
    assert event["span_id"] == format(context.span_id, "016x")


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        (
            "postgresql://app:pw@db.example:6432/orders?sslmode=require",
            {"db.namespace": "orders", "server.address": "db.example", "server.port": 6432},
        ),
        ("postgresql://app@db.example/orders", {"db.namespace": "orders", "server.port": 5432}),
        ("postgresql://app@h1:5432,h2:5432/orders", {"db.namespace": "orders"}),
        (
            "postgresql:///orders?host=/run/pg",
            {"db.namespace": "orders", "server.address": "/run/pg"},
        ),
    ],
)
def test_the_database_attributes_come_from_the_dsn_without_a_query(dsn, expected):
    attributes = database_attributes(dsn)
    assert attributes["db.system.name"] == "postgresql"
    assert {k: attributes[k] for k in expected} == expected
    assert "pw" not in json.dumps(attributes)
    if "," in dsn:
        assert "server.address" not in attributes


def test_inject_outside_a_span_gives_nothing(exporter):
    assert tracing.inject_current() == {}
    with exporter.tracer.start_as_current_span("s") as span:
        carrier = tracing.inject_current()
    assert carrier["traceparent"].split("-")[2] == format(span.get_span_context().span_id, "016x")


@pytest.mark.parametrize(
    ("traceparent", "tracestate"),
    [
        (TRACEPARENT, None),
        (TRACEPARENT, "vendor=value,other=x"),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", None),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03", None),
        ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future", None),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", None),
        ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", None),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", None),
        ("00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", None),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01", None),
        ("garbage", None),
    ],
)
def test_the_traceparent_parser_agrees_with_the_sdk_propagator(traceparent, tracestate):
    carrier = {"traceparent": traceparent} | ({"tracestate": tracestate} if tracestate else {})
    expected = trace.get_current_span(
        TraceContextTextMapPropagator().extract(carrier)
    ).get_span_context()
    parsed = tracing.parse_traceparent(traceparent, tracestate)
    if not expected.is_valid:
        assert parsed is None
    else:
        assert parsed == expected
        assert parsed.trace_flags == expected.trace_flags and parsed.is_remote
        assert dict(parsed.trace_state) == dict(expected.trace_state)


def test_within_an_unsampled_batch_no_child_span_is_built(exporter):
    ratio = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    ratio.add_span_processor(SimpleSpanProcessor(exporter))
    database = OtelSpans(ratio.get_tracer("t")).database("postgresql://app@db/orders")
    queue = OtelSpans(exporter.tracer)
    assert not tracing.under_unsampled_parent()  # outside any span: roots are built
    with ratio.get_tracer("t").start_as_current_span("process") as batch:
        assert not batch.is_recording() and tracing.under_unsampled_parent()
        assert database.statement("commit") is NO_SPAN  # the plain path
        assert database.statement("lock_keys") is NO_SPAN
        span = queue.messaging("delete", "settle", "http://sqs/1/orders", "DeleteMessageBatch", 1)
        assert span is NO_SPAN
    with exporter.tracer.start_as_current_span("process"):
        assert not tracing.under_unsampled_parent()
        with database.statement("commit") as span:
            assert span is not NO_SPAN and span.span.is_recording()
    commit = next(s for s in exporter.get_finished_spans() if s.name == "COMMIT")
    assert commit.attributes["db.system"] == "postgresql"
    assert commit.attributes["db.operation.name"] == "COMMIT"


def test_a_span_scope_records_the_exception_and_ends_the_span(exporter):
    scope = OtelSpans(exporter.tracer).messaging("receive", "receive", "http://q/orders", "Receive")
    current = []

    def fail() -> None:
        with scope as span:
            current.append(trace.get_current_span() is span.span)
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fail()
    assert current == [True]
    assert not trace.get_current_span().get_span_context().is_valid  # detached again
    (finished,) = exporter.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.events[0].name == "exception"
    assert finished.attributes["rpc.method"] == "Receive"
