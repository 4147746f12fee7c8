"""Attacks on the catch-up's order (issue 21 item 5, docs/contract/ORDER_STATUS_EVENTS.md "Late
events"): the late status events of changes that the build from before the outbox applied must
come numbered in the order the changes were applied, each payload the order's state right after
its own event, the last one the stored order.

The old build's real write path (its PostgresStore.run_batch and plan_batch, from git's copy of
commit OLD_BUILD) writes the changes in a subprocess, on the head schema (the rollout's state
after `migrate`); the relay's catch-up (adapters/status_catch_up.catch_up) then writes the late
events. No queue is needed: a batch of the old build is exactly those two calls."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg

from order_service.adapters.status_catch_up import catch_up
from tests.e2e.test_rollout_with_an_old_build import old_build  # noqa: F401 (the fixture)
from tests.factories import cancelled, paid, placed, shipped
from tests.support.database import query
from tests.support.waiting import wait_for

OLD_BATCH = """
import asyncio, json, sys
from functools import partial
from order_service.adapters.postgres import PostgresStore
from order_service.domain.batch import plan_batch
from order_service.domain.parsing import parse_body

async def main():
    store = PostgresStore(sys.argv[1])
    await store.connect()
    events = [parse_body(b) for b in json.loads(sys.stdin.read())]
    print("started", flush=True)
    plan = await store.run_batch(events, partial(plan_batch, events))
    print(json.dumps([d.outcome.value for d in plan.decisions]), flush=True)
    await store.close()

asyncio.run(main())
"""


def start_old_batch(old_src: Path, dsn: str, events: list[dict]) -> subprocess.Popen[str]:
    """One batch of the old build, as its worker runs it, in a process of its own."""
    process = subprocess.Popen(
        [sys.executable, "-c", OLD_BATCH, dsn],
        env={"PYTHONPATH": str(old_src), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps([json.dumps(e) for e in events]))
    process.stdin.close()
    return process


async def old_batch(old_src: Path, dsn: str, events: list[dict]) -> list[str]:
    process = start_old_batch(old_src, dsn, events)
    assert process.stdout is not None and process.stderr is not None
    out = await asyncio.to_thread(process.stdout.read)
    err = process.stderr.read()
    assert await asyncio.to_thread(process.wait, 60) == 0, err
    return json.loads(out.splitlines()[-1])


async def relay_catch_up(dsn: str, orders_per_pass: int = 100) -> int:
    """One pass of the relay's catch-up, in its own transaction, as the relay runs it."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            return await catch_up(conn, orders_per_pass)
    finally:
        await conn.close()


async def published(dsn: str, order_id: str) -> list[asyncpg.Record]:
    return await query(
        dsn,
        "SELECT sequence, payload FROM order_outbox WHERE aggregateid = $1 ORDER BY sequence",
        uuid.UUID(order_id),
    )


def at(event: dict, occurred_at: str) -> dict:
    return {**event, "occurred_at": occurred_at}


def statuses(rows: list[asyncpg.Record]) -> list[tuple[int, str, bool, bool]]:
    """(sequence, status, has payment, has shipment) of each late event."""
    out = []
    for r in rows:
        p = json.loads(r["payload"])
        out.append(
            (r["sequence"], p["status"], p["payment"] is not None, p["shipment"] is not None)
        )
    return out


LIFECYCLE = [(1, "PLACED", False, False), (2, "PAID", True, False), (3, "SHIPPED", True, True)]


async def test_late_events_of_one_old_batch_follow_the_lifecycle(old_build, database):  # noqa: F811
    """Control: producers' clocks agree; the late events are placed, paid, shipped."""
    order = str(uuid.uuid4())
    events = [
        at(placed(order), "2026-11-26T09:15:00Z"),
        at(paid(order), "2026-11-26T09:16:00Z"),
        at(shipped(order), "2026-11-26T09:17:00Z"),
    ]
    assert await old_batch(old_build, database, events) == ["applied"] * 3
    assert await relay_catch_up(database) == 3
    assert statuses(await published(database, order)) == LIFECYCLE


async def test_late_events_follow_the_applied_order_when_producer_clocks_disagree(
    old_build,  # noqa: F811
    database,
):
    """The shipping service's clock is a minute behind the payment service's: its
    order.shipped carries an occurred_at before the order.paid it followed. The old build
    applies them in arrival order (placed, paid, shipped; the lifecycle never looks at
    occurred_at), so the late events must say placed, paid, shipped, the last one the stored
    SHIPPED order. queries.sql catch_up_applied_events sorts by (processed_at, occurred_at):
    processed_at is the batch's now(), the same for all three, so occurred_at decides and the
    late events say placed, SHIPPED (seq 2), PAID (seq 3): a consumer ordering by sequence
    ends with an order that is paid and not shipped."""
    order = str(uuid.uuid4())
    events = [
        at(placed(order), "2026-11-26T09:15:00Z"),
        at(paid(order), "2026-11-26T09:17:00Z"),
        at(shipped(order), "2026-11-26T09:16:00Z"),
    ]
    assert await old_batch(old_build, database, events) == ["applied"] * 3
    stored = await query(
        database, "SELECT status FROM orders WHERE order_id = $1", uuid.UUID(order)
    )
    assert stored[0]["status"] == "SHIPPED"
    assert await relay_catch_up(database) == 3
    assert statuses(await published(database, order)) == LIFECYCLE


async def event_locked_before_order(conn: asyncpg.Connection, order: str) -> str:
    """An event id whose lock key sorts before the order's (queries.sql lock_keys takes the
    batch's keys in hash order): a batch of it blocked on its event key holds no order lock."""
    while True:
        candidate = str(uuid.uuid4())
        if await conn.fetchval(
            "SELECT hashtextextended('e:' || $1, 0) < hashtextextended('o:' || $2, 0)",
            candidate,
            order,
        ):
            return candidate


async def waiting_on_a_lock(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
    )


async def test_late_events_follow_the_applied_order_across_two_old_batches(
    old_build,  # noqa: F811
    database,
):
    """Two workers of the old build, clocks in agreement. Batch A (order.shipped) begins its
    transaction, then waits for its event's lock (another worker holds it: a copy of the same
    SQS message delivered twice; here the test holds it). Meanwhile batch B applies
    order.paid and commits. A then gets its locks, reads a PAID order and applies
    order.shipped. Applied order: placed, paid, shipped. But order_events.processed_at
    defaults to now(), the transaction's start, so A's shipped carries an earlier
    processed_at than B's paid, and catch_up_applied_events (ORDER BY processed_at, ...)
    numbers SHIPPED before PAID."""
    order = str(uuid.uuid4())
    assert await old_batch(old_build, database, [at(placed(order), "2026-11-26T09:15:00Z")]) == [
        "applied"
    ]
    holder = await asyncpg.connect(database)
    try:
        ship = at(shipped(order), "2026-11-26T09:17:00Z")
        ship["event_id"] = await event_locked_before_order(holder, order)
        await holder.execute(
            "SELECT pg_advisory_lock(hashtextextended('e:' || $1, 0))", ship["event_id"]
        )
        batch_a = start_old_batch(old_build, database, [ship])
        await wait_for(lambda: waiting_on_a_lock(holder), 30, "batch A to wait for its event lock")
        pay = at(paid(order), "2026-11-26T09:16:00Z")
        assert await old_batch(old_build, database, [pay]) == ["applied"]
        await holder.execute(
            "SELECT pg_advisory_unlock(hashtextextended('e:' || $1, 0))", ship["event_id"]
        )
        assert batch_a.stdout is not None and batch_a.stderr is not None
        out = await asyncio.to_thread(batch_a.stdout.read)
        assert await asyncio.to_thread(batch_a.wait, 60) == 0, batch_a.stderr.read()
        assert json.loads(out.splitlines()[-1]) == ["applied"]
    finally:
        await holder.close()
    stored = await query(
        database, "SELECT status FROM orders WHERE order_id = $1", uuid.UUID(order)
    )
    assert stored[0]["status"] == "SHIPPED"
    assert await relay_catch_up(database) == 3
    assert statuses(await published(database, order)) == LIFECYCLE


async def test_late_events_of_a_cancelled_order_keep_its_payment_and_reason(
    old_build,  # noqa: F811
    database,
):
    """Paid, then cancelled by the old build (a hostile reason: U+2028 and markup): placed
    without payment, paid with it, cancelled with the payment kept and the reason; the
    counter is the stored order's, and a second pass writes nothing."""
    order = str(uuid.uuid4())
    events = [
        at(placed(order), "2026-11-26T09:15:00Z"),
        at(paid(order), "2026-11-26T09:16:00Z"),
        at(cancelled(order, reason="fraud \u2028 <script>"), "2026-11-26T09:17:00Z"),
    ]
    assert await old_batch(old_build, database, events) == ["applied"] * 3
    assert await relay_catch_up(database) == 3
    rows = await published(database, order)
    assert statuses(rows) == [
        (1, "PLACED", False, False),
        (2, "PAID", True, False),
        (3, "CANCELLED", True, False),
    ]
    reasons = [json.loads(r["payload"])["cancel_reason"] for r in rows]
    assert reasons == [None, None, "fraud \u2028 <script>"]
    stored = await query(
        database, "SELECT last_sequence FROM orders WHERE order_id = $1", uuid.UUID(order)
    )
    assert stored[0]["last_sequence"] == 3
    assert await relay_catch_up(database) == 0  # nothing twice


BACKLOG_ORDERS = 2000
OLD_BATCH_SIZE = 500


async def test_a_backlog_of_thousands_is_caught_up_in_short_passes_in_sequence(
    old_build,  # noqa: F811
    database,
):
    """The old build alone for a while (a rollback that lasted): 2000 orders placed and paid.
    The relay's passes (200 orders each, RelayConfig.catch_up_orders) each hold their orders'
    locks for one short transaction, and together leave every order with sequences 1, 2 in
    lifecycle order and an empty backlog; a pass after that writes nothing."""
    orders = [str(uuid.uuid4()) for _ in range(BACKLOG_ORDERS)]
    for start in range(0, BACKLOG_ORDERS, OLD_BATCH_SIZE):
        chunk = orders[start : start + OLD_BATCH_SIZE]
        events = [at(placed(o), "2026-11-26T09:15:00Z") for o in chunk]
        events += [at(paid(o), "2026-11-26T09:16:00Z") for o in chunk]
        assert set(await old_batch(old_build, database, events)) == {"applied"}
    noted = await query(database, "SELECT count(*) AS n FROM order_status_backlog")
    assert noted[0]["n"] == BACKLOG_ORDERS
    passes: list[float] = []
    written = 0
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        n = await relay_catch_up(database, orders_per_pass=200)
        passes.append(loop.time() - started)
        if n == 0:
            break
        written += n
    assert written == 2 * BACKLOG_ORDERS
    assert len(passes) == BACKLOG_ORDERS // 200 + 1
    # A pass holds 200 orders' locks for its one transaction: a batch for one of them waits
    # that long at most. Generous for a loaded 2-core host; measured 0.03-0.05 s a pass here.
    assert max(passes) < 3.0, passes
    rows = await query(
        database,
        "SELECT aggregateid, array_agg(payload ->> 'status' ORDER BY sequence) AS statuses,"
        " array_agg(sequence ORDER BY sequence) AS sequences FROM order_outbox GROUP BY 1",
    )
    assert len(rows) == BACKLOG_ORDERS
    assert {(tuple(r["statuses"]), tuple(r["sequences"])) for r in rows} == {
        (("PLACED", "PAID"), (1, 2))
    }


async def test_late_events_follow_the_applied_order_when_stamped_the_same_second(
    old_build,  # noqa: F811
    database,
):
    """Producers that stamp whole seconds (or one that emits placed and paid together): the
    same occurred_at for placed, paid and shipped of one order, applied in that order by one
    batch of the old build. catch_up_applied_events' last tie-break is event_id, a random
    uuid; here ids that sort shipped < paid < placed, as 1 in 6 random ids do."""
    order = str(uuid.uuid4())
    second = "2026-11-26T09:15:00Z"
    events = [at(placed(order), second), at(paid(order), second), at(shipped(order), second)]
    for event, first_digit in zip(events, "c84", strict=True):
        event["event_id"] = first_digit + str(uuid.uuid4())[1:]
    assert await old_batch(old_build, database, events) == ["applied"] * 3
    assert await relay_catch_up(database) == 3
    assert statuses(await published(database, order)) == LIFECYCLE
