"""The status events a downstream team receives: read from its queue (raw SNS delivery) and
checked against the database, the invariant of every outbox test."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg


async def receive_all(sqs: Any, queue_url: str, expect: int, timeout: float = 60) -> list[dict]:
    """Every body that arrives until `expect` distinct ids came or `timeout` passed (then
    one more short poll, so that extra copies are seen too); deletes what it reads."""
    bodies: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len({b["id"] for b in bodies}) < expect:
        bodies += await _receive(sqs, queue_url, wait=1)
    bodies += await _receive(sqs, queue_url, wait=1)
    return bodies


async def _receive(sqs: Any, queue_url: str, wait: int) -> list[dict]:
    response = await sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait,
        MessageAttributeNames=["All"],
    )
    messages = response.get("Messages", [])
    if messages:
        await sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    out = []
    for m in messages:
        body = json.loads(m["Body"])
        body["_attributes"] = {
            k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()
        }
        out.append(body)
    return out


async def check_downstream(
    dsn: str,
    bodies: list[dict],
    validate: Callable[[dict], None] | None = None,
    published_after: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """The invariant: for every order the sequences that arrived are exactly 1..n (n its
    applied events), each payload is the order's state after the event recorded under its
    `event_id`, the last one equals the stored order, and copies carry the same id and body.
    `published_after`: per order, the sequence its status events start after (the changes
    applied before a database had the outbox, which migration 0003 counted and never
    publishes); 0 for the others. Returns counts for the test's report."""
    conn = await asyncpg.connect(dsn)
    try:
        applied = {
            str(r["order_id"]): r["n"]
            for r in await conn.fetch(
                "SELECT order_id, count(*) AS n FROM order_events WHERE outcome = 'applied' "
                "GROUP BY order_id"
            )
        }
        events = {
            str(r["event_id"]): (str(r["order_id"]), r["event_type"])
            for r in await conn.fetch(
                "SELECT event_id, order_id, event_type FROM order_events WHERE outcome = 'applied'"
            )
        }
        orders = {str(r["order_id"]): r for r in await conn.fetch("SELECT * FROM orders")}
    finally:
        await conn.close()
    by_id: dict[str, dict] = {}
    duplicates = 0
    for body in bodies:
        attributes = body.pop("_attributes", {})
        if attributes:
            assert attributes["outbox_id"] == body["id"], attributes
            assert attributes["order_id"] == body["order_id"], attributes
            assert attributes["sequence"] == str(body["sequence"]), attributes
            assert attributes["type"] == body["type"], attributes
        if validate is not None:
            validate(body)
        if body["id"] in by_id:
            duplicates += 1
            assert by_id[body["id"]] == body, "a copy with the same id differs"
        by_id[body["id"]] = body
    sequences: dict[str, list[dict]] = {}
    for body in by_id.values():
        sequences.setdefault(body["order_id"], []).append(body)
    after = published_after or {}
    expected = {o for o, n in applied.items() if n > after.get(o, 0)}
    assert set(sequences) == expected, "orders with applied events != orders published"
    for order_id, published in sequences.items():
        published.sort(key=lambda b: b["sequence"])
        first = after.get(order_id, 0) + 1
        assert [b["sequence"] for b in published] == list(range(first, applied[order_id] + 1)), (
            order_id
        )
        for body in published:
            assert events[body["event_id"]] == (order_id, body["event_type"]), body
        last, stored = published[-1], orders[order_id]
        assert (last["status"], last["currency"], last["total_amount"]) == (
            stored["status"],
            stored["currency"],
            f"{stored['total_amount']:.2f}",
        )
        assert last["cancel_reason"] == stored["cancel_reason"]
        assert (last["payment"] or {}).get("payment_id") == stored["payment_id"]
        assert (last["shipment"] or {}).get("tracking_number") == stored["tracking_number"]
        assert last["sequence"] == stored["last_sequence"]
    return {"orders": len(sequences), "rows": len(by_id), "duplicates": duplicates}
