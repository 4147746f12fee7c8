"""The worker process's telemetry as ECS ships it: EMF lines on stdout with every outcome
counted once, and a log line for each message that is not simply applied."""

from __future__ import annotations

import json
import signal

from order_service.adapters.sqs import SqsQueue
from order_service.generator import generate
from order_service.metrics import Metrics
from tests.support.waiting import wait_for


async def test_emf_counts_every_outcome_and_logs_keep_only_what_is_not_applied(
    sqs, e2e_queues, start_worker
):
    stream = generate(300, seed=12, duplicate_rate=0.0, out_of_order_rate=0.0, invalid_rate=0.05)
    assert stream.invalid > 0
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, stream.bodies)
    worker = start_worker(LOG_LEVEL="INFO", LOG_MESSAGES="not-applied", EMF_INTERVAL_SECONDS="1")

    async def drained() -> bool:
        return await queue.depth(e2e_queues.url) == (0, 0)

    await wait_for(drained, 120, "the queue to drain")
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0  # the last snapshot is written on the way out

    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line]
    documents = [d for d in lines if "_aws" in d and "FaultKind" not in d]
    assert documents, "no EMF line"
    assert {d["QueueName"] for d in documents} == {e2e_queues.url.rsplit("/", 1)[-1]}
    totals = {
        name: sum(d[name] for d in documents) for name in ("MessagesApplied", "MessagesInvalid")
    }
    assert totals["MessagesInvalid"] == stream.invalid
    assert totals["MessagesApplied"] + totals["MessagesInvalid"] == len(stream.bodies)

    per_message = [d for d in lines if d.get("event") == "message"]
    assert per_message, "no per-message line"
    assert {d["outcome"] for d in per_message} <= {"invalid", "deferred", "duplicate"}
    assert sum(d["outcome"] == "invalid" for d in per_message) == stream.invalid
    batches = [d for d in lines if d.get("event") == "batch"]
    assert batches and all(d["level"] == "info" for d in batches)
    # A standard queue may deliver an order's payment before its placement: that message is
    # deferred, comes back, and is in a second batch.
    deferred = sum(d["outcome"] == "deferred" for d in per_message)
    assert sum(d["messages"] for d in batches) == len(stream.bodies) + deferred
