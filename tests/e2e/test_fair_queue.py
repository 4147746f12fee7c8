"""A fair queue (issue 24): a standard queue whose producer sets MessageGroupId to the
customer, one customer sending most of the traffic. The worker applies every order and keeps
each invalid body's tenant on its DLQ copy, with its reason, exactly once."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from order_service.adapters.sqs import SqsQueue
from order_service.domain.events import OrderEvent
from order_service.domain.parsing import parse_body
from order_service.metrics import Metrics
from order_service.producer import send_keys
from tests.factories import body, paid, placed
from tests.support.database import query
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def noisy_tenant_stream() -> list[str]:
    """cust-noisy places 150 orders, twenty quiet customers two each; an invalid body follows
    some events (so it is sent in that event's customer's group)."""
    bodies: list[str] = []
    customers = ["cust-noisy"] * 150 + [f"cust-{n}" for n in range(20) for _ in range(2)]
    for n, customer in enumerate(customers):
        order = str(uuid.uuid4())
        bodies += [body(placed(order, customer_id=customer)), body(paid(order))]
        if n % 15 == 0:
            bodies.append(f"not json {n}")
    return bodies


async def test_a_noisy_tenant_every_order_applied_and_each_dlq_copy_keeps_its_tenant(
    sqs: Any, e2e_queues, database, start_worker
):
    bodies = noisy_tenant_stream()
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    await queue.send(e2e_queues.url, bodies, group_by="customer")
    worker = start_worker(LOG_LEVEL="INFO")
    orders = sum(isinstance(parse_body(b), OrderEvent) for b in bodies) // 2

    async def drained() -> bool:
        rows = await query(database, "SELECT count(*) n FROM orders WHERE status = 'PAID'")
        return rows[0]["n"] == orders and await queue.depth(e2e_queues.url) == (0, 0)

    await wait_for(drained, 180, "every order paid and the queue empty", interval=0.5)

    keys = send_keys(bodies, fifo=False, group_by="customer")
    expected = sorted(
        (k.group_id, b)
        for b, k in zip(bodies, keys, strict=True)
        if not isinstance(parse_body(b), OrderEvent)
    )
    copies: list[dict[str, Any]] = []
    while response := (
        await sqs.receive_message(
            QueueUrl=e2e_queues.dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=300,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
    ).get("Messages"):
        copies += response
    assert sorted((c["Attributes"].get("MessageGroupId"), c["Body"]) for c in copies) == expected
    assert all(c["MessageAttributes"]["invalid_reason"]["StringValue"] for c in copies)
    assert {g for g, _ in expected} >= {"cust-noisy"}

    records = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line]
    assert not [r for r in records if r.get("level") in ("error", "critical")]
    invalid_lines = [
        r for r in records if r.get("event") == "message" and r["outcome"] == "invalid"
    ]
    assert len(invalid_lines) == len(expected)
    assert {r["group_id"] for r in invalid_lines} == {g for g, _ in expected}
