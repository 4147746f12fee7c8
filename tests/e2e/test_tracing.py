"""A traced order, end to end: the producer sends with its trace context, the real worker
process exports over OTLP/HTTP (protobuf) to a receiver in this test, and the spans form
producer -> batch (linked) -> PostgreSQL -> delete, for applied, duplicate, deferred and
invalid messages (and one from an X-Ray-instrumented producer, by its AWSTraceHeader)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from order_service.adapters.spans import OtelSpans
from order_service.adapters.sqs import SqsQueue
from order_service.metrics import Metrics
from tests import factories
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.waiting import wait_for

AWS_TRACE_ID, AWS_PARENT = "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


def _outcomes(spans: list[ReceivedSpan]) -> dict[str, str]:
    """{message id: outcome} over every `process` span's events."""
    return {
        attributes["messaging.message.id"]: attributes["order_service.outcome"]
        for s in spans
        if s.name.startswith("process ")
        for name, attributes in s.events
        if name == "message"
    }


async def test_spans_follow_each_message_from_its_producer_through_the_batch_to_its_settlement(
    sqs, e2e_queues, start_worker, receiver
):
    producer_spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(producer_spans))
    producer = SqsQueue(
        sqs,
        e2e_queues.url,
        e2e_queues.dlq_url,
        spans=OtelSpans(provider.get_tracer("p")),
        metrics=Metrics(),
    )
    placed = factories.placed(str(uuid.uuid4()))
    kinds = {
        "applied": factories.body(placed),
        "duplicate": factories.body(placed),  # the same event again
        "deferred": factories.body(factories.paid(str(uuid.uuid4()))),  # before its order.placed
        "invalid": "not json",
    }
    sent: dict[str, str] = {}  # kind: the producer's send span id
    for kind, body in kinds.items():  # one send each: each its own producer context
        await producer.send(e2e_queues.url, [body])
        sent[kind] = format(producer_spans.get_finished_spans()[-1].context.span_id, "016x")
    x_ray = factories.placed(str(uuid.uuid4()))
    await sqs.send_message(
        QueueUrl=e2e_queues.url,
        MessageBody=factories.body(x_ray),
        MessageSystemAttributes={
            "AWSTraceHeader": {
                "DataType": "String",
                "StringValue": f"Root=1-{AWS_TRACE_ID[:8]}-{AWS_TRACE_ID[8:]};"
                f"Parent={AWS_PARENT};Sampled=1",
            }
        },
    )
    worker = start_worker(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="order-worker-e2e",
        OTEL_BSP_SCHEDULE_DELAY="100",
        LOG_LEVEL="INFO",
        LOG_MESSAGES="all",
    )

    def every_kind_settled() -> list[ReceivedSpan] | None:
        spans = receiver.snapshot()
        seen = set(_outcomes(spans).values())
        settled = {s.name.partition(" ")[0] for s in spans}
        every_outcome = seen >= {"applied", "duplicate", "deferred", "invalid"}
        if every_outcome and len(_outcomes(spans)) >= 5 and {"delete", "send"} <= settled:
            return spans if "change_visibility" in settled else None
        return None

    spans = await wait_for(every_kind_settled, 60, "spans of every outcome")
    queue = e2e_queues.url.rsplit("/", 1)[-1]
    dlq = e2e_queues.dlq_url.rsplit("/", 1)[-1]
    by_id = {s.span_id: s for s in spans}
    assert {s.service for s in spans} == {"order-worker-e2e"}

    receives = [s for s in spans if s.name == f"receive {queue}"]
    assert receives and all(s.kind == "CLIENT" and not s.parent_span_id for s in receives)
    assert all(s.attributes["messaging.operation.type"] == "receive" for s in receives)
    assert sum(s.attributes["messaging.batch.message_count"] for s in receives) >= 5

    # Each message's outcome is an event of a `process` span that links to its producer.
    processes = [s for s in spans if s.name == f"process {queue}"]
    assert all(s.kind == "CONSUMER" and not s.parent_span_id for s in processes)
    assert all(s.attributes["messaging.system"] == "aws_sqs" for s in processes)
    batch_of: dict[str, ReceivedSpan] = {}  # kind: the first batch that settled it
    for kind, producer_span in [*sent.items(), ("x-ray", AWS_PARENT)]:
        for batch in processes:
            links = [link for link in batch.links if link[1] == producer_span]
            if links:
                (link,) = links
                events = [
                    a
                    for name, a in batch.events
                    if a["messaging.message.id"] == link[2]["messaging.message.id"]
                ]
                assert len(events) == 1, (kind, batch.events)
                expected = "applied" if kind == "x-ray" else kind
                assert events[0]["order_service.outcome"] == expected
                assert events[0]["order_service.receive_count"] >= 1
                batch_of.setdefault(kind, batch)
        assert kind in batch_of, f"no batch links to the {kind} message's producer"
    applied_event = next(
        a for _, a in batch_of["applied"].events if a["order_service.outcome"] == "applied"
    )
    assert applied_event["order_service.order_id"] == placed["order_id"]
    assert applied_event["order_service.event_id"] in {placed["event_id"], x_ray["event_id"]}
    x_ray_link = next(link for link in batch_of["x-ray"].links if link[1] == AWS_PARENT)
    assert x_ray_link[0] == AWS_TRACE_ID
    trace_ids = {link[0] for b in processes for link in b.links}
    producer_trace_ids = {
        format(s.context.trace_id, "032x") for s in producer_spans.get_finished_spans()
    }
    assert producer_trace_ids <= trace_ids

    def children(batch: ReceivedSpan, prefix: str) -> list[ReceivedSpan]:
        return [s for s in spans if s.parent_span_id == batch.span_id and s.name.startswith(prefix)]

    # PostgreSQL statements under the batches that reached the database.
    for kind in ("applied", "duplicate", "deferred"):
        statements = [
            s for s in spans
            if s.parent_span_id == batch_of[kind].span_id
            and s.attributes.get("db.system.name") == "postgresql"
        ]  # fmt: skip
        names = {s.name for s in statements}
        assert {"SELECT orders", "SELECT order_events", "COMMIT"} <= names, (kind, names)
        for s in statements:
            assert s.kind == "CLIENT"
            assert s.attributes["db.namespace"].startswith("t_")
            assert s.attributes["server.address"]  # a host, or the socket's directory
            assert s.attributes["db.operation.name"] in {"SELECT", "INSERT", "COMMIT"}
    writes = [s for s in spans if s.name.startswith("INSERT orders")]
    assert any(s.parent_span_id == batch_of["applied"].span_id for s in writes)
    assert all(by_id[s.parent_span_id].name in ("probe", f"process {queue}") for s in writes)

    # The settlement: applied, duplicate and (after its DLQ copy) invalid are deleted; the
    # deferred one's visibility is changed; all under the batch that decided.
    for kind in ("applied", "duplicate", "invalid"):
        (delete,) = children(batch_of[kind], f"delete {queue}")
        assert delete.attributes["messaging.operation.type"] == "settle"
        assert delete.attributes["rpc.method"] == "DeleteMessageBatch"
        assert delete.attributes["messaging.batch.message_count"] >= 1
    (visibility,) = children(batch_of["deferred"], f"change_visibility {queue}")
    assert visibility.attributes["messaging.operation.type"] == "settle"
    (copy,) = children(batch_of["invalid"], f"send {dlq}")
    assert copy.kind == "PRODUCER"
    assert copy.attributes["messaging.operation.type"] == "send"
    assert copy.attributes["messaging.destination.name"] == dlq

    # Every per-message log line written names its batch's span (all exported once the
    # worker has stopped: its shutdown flushes the spans still buffered).
    worker.stop()
    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line]
    per_message = [line for line in lines if line.get("event") == "message"]
    assert len(per_message) >= 5
    process_ids = {
        (s.trace_id, s.span_id) for s in receiver.snapshot() if s.name.startswith("process ")
    }
    for line in per_message:
        assert (line["trace_id"], line["span_id"]) in process_ids, line
