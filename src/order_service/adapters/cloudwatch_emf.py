"""The worker's metrics in CloudWatch: a snapshot of the Prometheus registry every interval,
written to stdout as one embedded metric format (EMF) line.

EMF rather than a collector sidecar: the awslogs driver already ships stdout to CloudWatch
Logs, which turns the lines into metrics. No sidecar to size and keep alive, no IAM for
PutMetricData, no network call from the worker, and a line a minute costs next to nothing.
The registry is read by sample name, so this module needs nothing from metrics.py but names.
The metric names are pinned to infra/order_infra/worker_metrics.py by a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from order_service.domain.lifecycle import Outcome
from order_service.domain.queue_type import queue_name

NAMESPACE = "OrderService"
QUEUE_DIMENSION = "QueueName"
FAULT_KIND_DIMENSION = "FaultKind"
OUTCOMES = tuple(outcome.value for outcome in Outcome)  # one metric each
BATCHES = "Batches"
BATCH_SECONDS_MEAN = "BatchDurationMeanSeconds"
BATCH_SECONDS_P99 = "BatchDurationP99Seconds"
SYSTEM_FAULTS = "SystemFaults"
PAUSED = "Paused"
OUTBOX_LAG = "OutboxOldestUnpublishedSeconds"  # infra/order_infra/status_events.py LAG_METRIC
OUTBOX_PARKED = "OutboxParkedRows"  # infra/order_infra/status_events.py PARKED_METRIC
RELAY_FAULTS = "OutboxRelayFaults"

# Prometheus sample names read from the registry.
OUTCOME_SAMPLE = "order_messages_total"
BATCH_SAMPLE = "order_batch_duration_seconds"
FAULT_SAMPLE = "order_service_system_faults_total"
PAUSED_SAMPLE = "order_service_paused"
OUTBOX_LAG_SAMPLE = "order_service_outbox_oldest_unpublished_seconds"
OUTBOX_PARKED_SAMPLE = "order_service_outbox_parked_rows"
RELAY_FAULT_SAMPLE = "order_service_relay_faults_total"

Labels = tuple[tuple[str, str], ...]
log = structlog.get_logger("order_service.metrics")


def outcome_metric_name(outcome: str) -> str:
    return f"Messages{outcome.capitalize()}"


def _samples(registry: CollectorRegistry) -> dict[str, dict[Labels, float]]:
    found: dict[str, dict[Labels, float]] = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


class EmfSnapshots:
    """Turns successive registry readings into EMF documents: counters as the delta since
    the previous snapshot, the batch duration as this interval's mean and p99 (upper bound of
    the histogram bucket), the pause gauge as read."""

    def __init__(
        self,
        registry: CollectorRegistry,
        queue: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._queue = queue
        self._clock = clock
        self._previous: dict[str, dict[Labels, float]] = {}

    def take(self) -> list[dict[str, Any]]:
        current = _samples(self._registry)
        delta = {
            name: {
                labels: value - self._previous.get(name, {}).get(labels, 0.0)
                for labels, value in values.items()
            }
            for name, values in current.items()
        }
        self._previous = current
        timestamp = int(self._clock() * 1000)
        values: dict[str, float] = {}
        units: dict[str, str] = {}

        outcomes = {dict(k).get("outcome"): v for k, v in delta.get(OUTCOME_SAMPLE, {}).items()}
        for outcome in OUTCOMES:
            values[outcome_metric_name(outcome)] = outcomes.get(outcome, 0.0)
            units[outcome_metric_name(outcome)] = "Count"

        count = sum(delta.get(f"{BATCH_SAMPLE}_count", {}).values())
        values[BATCHES], units[BATCHES] = count, "Count"
        if count > 0:
            total = sum(delta.get(f"{BATCH_SAMPLE}_sum", {}).values())
            values[BATCH_SECONDS_MEAN], units[BATCH_SECONDS_MEAN] = total / count, "Seconds"
            p99 = _bucket_quantile(delta.get(f"{BATCH_SAMPLE}_bucket", {}), 0.99)
            values[BATCH_SECONDS_P99], units[BATCH_SECONDS_P99] = p99, "Seconds"

        faults = delta.get(FAULT_SAMPLE)
        if faults is not None:
            values[SYSTEM_FAULTS], units[SYSTEM_FAULTS] = sum(faults.values()), "Count"
        paused = current.get(PAUSED_SAMPLE)
        if paused is not None:
            values[PAUSED], units[PAUSED] = max(paused.values(), default=0.0), "None"
        # Only what was measured: a process that does not relay (or whose database does not
        # answer) holds NaN and reports nothing, never a lag of 0.
        for sample, name, unit in (
            (OUTBOX_LAG_SAMPLE, OUTBOX_LAG, "Seconds"),
            (OUTBOX_PARKED_SAMPLE, OUTBOX_PARKED, "Count"),
        ):
            measured = [v for v in current.get(sample, {}).values() if math.isfinite(v)]
            if measured:
                values[name], units[name] = max(measured), unit
        relay_faults = delta.get(RELAY_FAULT_SAMPLE)
        if relay_faults is not None:
            values[RELAY_FAULTS], units[RELAY_FAULTS] = sum(relay_faults.values()), "Count"

        documents = [self._document(timestamp, [QUEUE_DIMENSION], {}, values, units)]
        for labels, value in sorted((faults or {}).items()):
            if value > 0:
                kind = dict(labels).get("kind", "unknown")
                documents.append(
                    self._document(
                        timestamp,
                        [QUEUE_DIMENSION, FAULT_KIND_DIMENSION],
                        {FAULT_KIND_DIMENSION: kind},
                        {SYSTEM_FAULTS: value},
                        {SYSTEM_FAULTS: "Count"},
                    )
                )
        return documents

    def _document(
        self,
        timestamp: int,
        dimensions: list[str],
        extra: dict[str, str],
        values: dict[str, float],
        units: dict[str, str],
    ) -> dict[str, Any]:
        return {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [dimensions],
                        "Metrics": [{"Name": n, "Unit": units[n]} for n in values],
                    }
                ],
            },
            QUEUE_DIMENSION: self._queue,
            **extra,
            **values,
        }


def _bucket_quantile(buckets: dict[Labels, float], q: float) -> float:
    """Upper bound of the first cumulative bucket holding the q-th observation (the largest
    finite bound if it lies beyond all of them)."""
    bounds = sorted((float(dict(k)["le"]), v) for k, v in buckets.items())
    if not bounds or bounds[-1][1] <= 0:
        return 0.0
    wanted = q * bounds[-1][1]
    finite = [b for b, _ in bounds if not math.isinf(b)]
    for bound, cumulative in bounds:
        if cumulative >= wanted:
            return bound if not math.isinf(bound) else (finite[-1] if finite else 0.0)
    return finite[-1] if finite else 0.0


def write_lines(documents: Iterable[dict[str, Any]]) -> None:
    for document in documents:
        sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class EmfPublisher:
    """Writes a snapshot every `interval` seconds (`run`, a side task of the worker's
    supervisor), and a last one on the way out (`write_last`: the final minute's counts reach
    CloudWatch too)."""

    def __init__(
        self,
        snapshots: EmfSnapshots,
        interval: float,
        write: Callable[[Iterable[dict[str, Any]]], None] = write_lines,
    ) -> None:
        self._snapshots = snapshots
        self._interval = interval
        self._write = write

    async def run(self) -> None:
        """Never ends by itself: metrics must never stop the worker, a failed write is retried
        at the next tick."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                self._write(self._snapshots.take())
            except Exception as exc:  # metrics must never stop the worker; next tick retries
                log.warning("could not write the metrics snapshot", error=str(exc))

    def write_last(self) -> None:
        with contextlib.suppress(Exception):
            self._write(self._snapshots.take())


def emf_publisher(
    registry: CollectorRegistry, queue_url: str, interval: float
) -> EmfPublisher | None:
    """The publisher, or None when EMF_INTERVAL_SECONDS is 0 (off: local runs)."""
    if interval <= 0:
        return None
    return EmfPublisher(EmfSnapshots(registry, queue_name(queue_url)), interval)
