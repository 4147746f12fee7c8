"""EMF snapshots of a registry: deltas, batch duration, faults by kind, pause state."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from order_service.adapters import cloudwatch_emf as emf
from order_service.domain.queue_type import queue_name
from order_service.metrics import Metrics
from tests.support.waiting import wait_for


def _metrics_with_faults_and_pause() -> tuple[Metrics, Counter, Gauge]:
    """The worker's registry with its system-fault counter and pause gauge."""
    metrics = Metrics()
    return metrics, metrics.system_faults, metrics.paused


def _declared(document: dict) -> dict[str, str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "OrderService"
    for dimension_set in directive["Dimensions"]:
        for dimension in dimension_set:
            assert isinstance(document[dimension], str)
    return {m["Name"]: m["Unit"] for m in directive["Metrics"]}


def test_counters_are_published_as_deltas_per_interval() -> None:
    metrics, _, _ = _metrics_with_faults_and_pause()
    snapshots = emf.EmfSnapshots(metrics.registry, "orders-prod", clock=lambda: 1700000000.5)
    metrics.messages.labels("applied").inc(90)
    metrics.messages.labels("invalid").inc(10)
    (first, *_) = snapshots.take()
    assert first["_aws"]["Timestamp"] == 1700000000500
    assert first["QueueName"] == "orders-prod"
    assert (first["MessagesApplied"], first["MessagesInvalid"]) == (90, 10)
    assert first["MessagesDeferred"] == 0  # every outcome has a datapoint: rates stay defined
    metrics.messages.labels("applied").inc(5)
    (second, *_) = snapshots.take()
    assert (second["MessagesApplied"], second["MessagesInvalid"]) == (5, 0)


def test_batch_duration_mean_and_p99_only_when_batches_ran() -> None:
    metrics, _, _ = _metrics_with_faults_and_pause()
    snapshots = emf.EmfSnapshots(metrics.registry, "q")
    (idle, *_) = snapshots.take()
    assert idle["Batches"] == 0
    assert "BatchDurationMeanSeconds" not in idle
    assert "BatchDurationMeanSeconds" not in _declared(idle)
    for seconds in [0.02] * 99 + [4.0]:
        metrics.batch_seconds.observe(seconds)
    (busy, *_) = snapshots.take()
    assert busy["Batches"] == 100
    assert busy["BatchDurationMeanSeconds"] == pytest.approx((0.02 * 99 + 4.0) / 100)
    assert busy["BatchDurationP99Seconds"] == 0.025  # the bucket holding the 99th batch
    assert _declared(busy)["BatchDurationMeanSeconds"] == "Seconds"


def test_faults_by_kind_and_pause_state() -> None:
    metrics, faults, paused = _metrics_with_faults_and_pause()
    snapshots = emf.EmfSnapshots(metrics.registry, "q")
    faults.labels("database").inc(3)
    faults.labels("queue").inc(1)
    paused.set(1)
    main, *by_kind = snapshots.take()
    assert main["SystemFaults"] == 4
    assert main["Paused"] == 1
    assert _declared(main)["Paused"] == "None"
    assert {(d["FaultKind"], d["SystemFaults"]) for d in by_kind} == {("database", 3), ("queue", 1)}
    for document in by_kind:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["QueueName", "FaultKind"]]
    paused.set(0)
    main, *by_kind = snapshots.take()
    assert (main["SystemFaults"], main["Paused"], by_kind) == (0, 0, [])


def test_every_declared_metric_has_a_value() -> None:
    metrics, faults, _ = _metrics_with_faults_and_pause()
    faults.labels("database").inc()
    metrics.batch_seconds.observe(0.1)
    for document in emf.EmfSnapshots(metrics.registry, "q").take():
        for name in _declared(document):
            assert isinstance(document[name], int | float), name


def test_a_registry_without_fault_or_pause_metrics_publishes_the_rest() -> None:
    registry = CollectorRegistry()
    Counter("order_messages", "m", ["outcome"], registry=registry).labels("applied").inc(2)
    (document,) = emf.EmfSnapshots(registry, "q").take()
    assert document["MessagesApplied"] == 2
    assert "Paused" not in document and "SystemFaults" not in document


def test_queue_name_is_the_url_tail() -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/OrderService-prod-Queue4A7E3555"
    assert queue_name(url) == "OrderService-prod-Queue4A7E3555"
    assert queue_name(url + "/") == queue_name(url)  # one parser: EMF, spans and settings


def test_off_unless_an_interval_is_set() -> None:
    assert emf.emf_publisher(Metrics().registry, "http://x/q", 0) is None


async def test_publisher_writes_each_interval_and_a_last_snapshot_on_stop() -> None:
    metrics = Metrics()
    written: list[dict] = []
    publisher = emf.EmfPublisher(
        emf.EmfSnapshots(metrics.registry, "q"), 0.01, write=written.extend
    )
    running = asyncio.create_task(publisher.run())
    await wait_for(lambda: written, 5, "a first snapshot", interval=0.005)
    metrics.messages.labels("applied").inc(7)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    publisher.write_last()
    assert sum(d["MessagesApplied"] for d in written) == 7
    json.dumps(written)  # serialisable as the lines are


def test_lines_are_compact_json_on_stdout(capsys) -> None:
    emf.write_lines([{"a": 1}, {"b": 2}])
    assert capsys.readouterr().out == '{"a":1}\n{"b":2}\n'


def test_the_outbox_lag_is_published() -> None:
    metrics = Metrics()
    metrics.outbox_oldest_unpublished.set(42)
    (document, *_) = emf.EmfSnapshots(metrics.registry, "orders-prod").take()
    assert document[emf.OUTBOX_LAG] == 42
    assert _declared(document)[emf.OUTBOX_LAG] == "Seconds"


def test_a_process_that_does_not_relay_reports_no_lag_rather_than_zero() -> None:
    (document, *_) = emf.EmfSnapshots(Metrics().registry, "orders-prod").take()
    assert emf.OUTBOX_LAG not in document and emf.OUTBOX_PARKED not in document


def test_the_parked_rows_and_the_relay_faults_are_published() -> None:
    metrics = Metrics()
    metrics.outbox_parked.set(2)
    metrics.relay_faults.labels("sns_denied").inc(3)
    (document, *_) = emf.EmfSnapshots(metrics.registry, "orders-prod").take()
    assert (document[emf.OUTBOX_PARKED], document[emf.RELAY_FAULTS]) == (2, 3)
