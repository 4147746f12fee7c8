"""The relay's catch-up of changes a build without the outbox applied (migration 0007's
backlog; the rows to write are decided by domain/status_catch_up.py).

Two callers. The relay, every few seconds: the backlog's oldest orders whose writers' lock is
free, in one transaction of its own. And a batch that is about to change an order still in the
backlog, inside the batch's transaction, before its own rows: the late status events then come
before the batch's, so a consumer reads an order's changes in the order they were applied
(load_orders says which orders are behind). Either way: their state, applied events and outbox
event ids read, the missing status events written with the counters and the backlog rows
deleted in one statement. The order's lock is the one every batch takes (queries.sql
lock_keys), held to the commit, so no batch changes an order between its read and the write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from uuid import UUID

import asyncpg

from order_service.adapters.order_rows import order_state
from order_service.adapters.queries import NamedQuery, load
from order_service.domain.events import EventType
from order_service.domain.status_catch_up import AppliedEvent, plan_catch_up
from order_service.domain.status_events import OutboxRow

Q = load("queries.sql")
CATCH_UP_WRITE = NamedQuery.parse(Q["catch_up_write"])


async def catch_up(conn: asyncpg.Connection, max_orders: int) -> int:
    """Catches up to `max_orders` orders of the backlog, in the caller's transaction (its
    commit releases the locks); returns the number of status events written."""
    claimed = [r["order_id"] for r in await conn.fetch(Q["catch_up_claim"], max_orders)]
    if not claimed:
        return 0
    return sum((await catch_up_orders(conn, claimed, write_rows=True)).values())


async def catch_up_orders(
    conn: asyncpg.Connection, order_ids: Sequence[UUID], *, write_rows: bool
) -> dict[UUID, int]:
    """Catches up `order_ids`, whose writers' locks the caller's transaction holds: writes
    their missing status events (only their counters when `write_rows` is false: nobody reads
    the outbox) and takes them out of the backlog. Returns the rows written per order (each
    order's counter advanced by as many)."""
    orders = {r["order_id"]: r for r in await conn.fetch(Q["load_orders"], order_ids)}
    applied: dict[UUID, list[AppliedEvent]] = defaultdict(list)
    for r in await conn.fetch(Q["catch_up_applied_events"], order_ids):
        applied[r["order_id"]].append(
            AppliedEvent(r["event_id"], EventType(r["event_type"]), r["occurred_at"])
        )
    published: dict[UUID, set[UUID]] = defaultdict(set)
    for r in await conn.fetch(Q["catch_up_published_event_ids"], order_ids):
        if r["event_id"] is not None:
            published[r["order_id"]].add(r["event_id"])
    rows: list[OutboxRow] = []
    for order_id, row in orders.items():
        rows += plan_catch_up(
            order_state(row), row["last_sequence"], applied[order_id], published[order_id]
        )
    counters = {row.order_id: row.sequence for row in rows}  # each order's last one
    written = [] if not write_rows else rows
    await conn.execute(
        CATCH_UP_WRITE.sql,
        *CATCH_UP_WRITE.arguments(
            outbox={
                "id": [r.id for r in written],
                "aggregateid": [r.order_id for r in written],
                "type": [r.type for r in written],
                "sequence": [r.sequence for r in written],
                "payload": [r.payload_json() for r in written],
            },
            sequenced={
                "order_id": list(counters),
                "last_sequence": list(counters.values()),
            },
            caught_up={"order_id": list(order_ids)},
        ),
    )
    return {o: n - orders[o]["last_sequence"] for o, n in counters.items()}
