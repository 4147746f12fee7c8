"""Prometheus metrics of one worker process, on a registry of its own."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "order_messages", "Messages processed, by outcome", ["outcome"], registry=self.registry
        )
        self.batch_seconds = Histogram(
            "order_batch_duration_seconds",
            "Time to process one batch (parse, transaction, acknowledgement)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "order_batch_size",
            "Messages per processed batch",
            buckets=(1, 5, 10, 20, 50, 100, 200, 500),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "order_messages_in_flight",
            "Messages received and not yet acknowledged",
            registry=self.registry,
        )
        self.sqs_requests = Counter(
            "order_sqs_requests",
            "SQS API requests made, by action",
            ["action"],
            registry=self.registry,
        )
        self.errors = Counter("order_errors", "Errors, by kind", ["kind"], registry=self.registry)
        self.system_faults = Counter(
            "order_service_system_faults",
            "Faults of the system that paused consuming (database down, read-only, unmigrated,"
            " refusing connections, lacking a privilege, ...), by kind",
            ["kind"],
            registry=self.registry,
        )
        self.paused = Gauge(
            "order_service_paused",
            "1 while consuming is paused for a fault of the system (or before the first probe)",
            registry=self.registry,
        )
        # The outbox relay. Its gauges are measured from the table by whoever relays; NaN
        # (left out of EMF) in a process that does not, or while the database does not answer.
        self.outbox_oldest_unpublished = Gauge(
            "order_service_outbox_oldest_unpublished_seconds",
            "Age of the oldest outbox row the relay can publish (0 when none): the relay's lag",
            registry=self.registry,
        )
        self.outbox_oldest_unpublished.set(math.nan)
        self.outbox_parked = Gauge(
            "order_service_outbox_parked_rows",
            "Outbox rows SNS refused for good, parked until an operator retries them",
            registry=self.registry,
        )
        self.outbox_parked.set(math.nan)
        self.relay_faults = Counter(
            "order_service_relay_faults",
            "Faults the outbox relay met and backed off from (or rows it parked), by kind",
            ["kind"],
            registry=self.registry,
        )
        self.outbox_published = Counter(
            "order_outbox_published", "Outbox rows published to SNS", registry=self.registry
        )
        self.sns_requests = Counter(
            "order_sns_requests",
            "SNS API requests made, by action",
            ["action"],
            registry=self.registry,
        )
