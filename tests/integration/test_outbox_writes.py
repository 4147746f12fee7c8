"""Outbox rows against a real PostgreSQL: one per applied event, in the batch's transaction,
numbered 1..n per order without gaps, none for anything else or with the outbox off."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg

from order_service.adapters.migrations import upgrade
from order_service.adapters.postgres import PostgresStore
from order_service.domain.lifecycle import Outcome
from order_service.service.ports import Message
from order_service.service.processing import BatchProcessor
from tests.factories import cancelled, paid, placed, shipped
from tests.support.batches import messages
from tests.support.database import query


async def outbox(dsn: str) -> list[dict]:
    rows = await query(
        dsn,
        "SELECT id, aggregatetype, aggregateid, type, sequence, payload::text, published_at "
        "FROM order_outbox ORDER BY aggregateid, sequence",
    )
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]


async def test_each_applied_event_writes_one_row_and_nothing_else_does(outbox_store, database):
    order, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    first, pay, ship = placed(order), paid(order), shipped(order)
    results = await BatchProcessor(outbox_store).process(
        [
            *messages(
                first,
                pay,
                ship,
                paid(order, payment_id="pay-x"),  # rejected
                first,  # duplicate by event id
                placed(order),  # duplicate by content
                shipped(unknown),  # deferred: no such order
            ),
            Message("m-bad", "rh-bad", "{not json"),  # invalid
        ]
    )
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 3 + [
        Outcome.REJECTED,
        Outcome.DUPLICATE,
        Outcome.DUPLICATE,
        Outcome.DEFERRED,
        Outcome.INVALID,
    ]
    rows = await outbox(database)
    assert [(str(r["aggregateid"]), r["sequence"], r["type"]) for r in rows] == [
        (order, 1, "order.status.placed"),
        (order, 2, "order.status.paid"),
        (order, 3, "order.status.shipped"),
    ]
    assert {r["aggregatetype"] for r in rows} == {"order"}
    assert all(r["published_at"] is None for r in rows)
    assert [r["payload"]["event_id"] for r in rows] == [e["event_id"] for e in (first, pay, ship)]
    assert all(r["payload"]["id"] == str(r["id"]) for r in rows)
    # Each payload is the order's state after its event; the last one is the stored order.
    assert [(r["payload"]["status"], r["payload"]["payment"]) for r in rows] == [
        ("PLACED", None),
        ("PAID", {"payment_id": "pay-1", "amount": "28.99", "currency": "EUR"}),
        ("SHIPPED", {"payment_id": "pay-1", "amount": "28.99", "currency": "EUR"}),
    ]
    (stored,) = await query(database, "SELECT * FROM orders")
    last = rows[-1]["payload"]
    assert (last["status"], last["currency"], last["total_amount"], last["sequence"]) == (
        stored["status"],
        stored["currency"],
        str(stored["total_amount"]),
        stored["last_sequence"],
    )
    assert last["shipment"] == {
        "carrier": stored["carrier"],
        "tracking_number": stored["tracking_number"],
    }


async def test_sequences_run_on_across_batches_without_gaps(outbox_store, database):
    order = str(uuid.uuid4())
    deferred = await BatchProcessor(outbox_store).process(messages(shipped(order), paid(order)))
    assert {r.outcome for r in deferred} == {Outcome.DEFERRED}
    assert await outbox(database) == []
    await BatchProcessor(outbox_store).process(messages(placed(order)))
    await BatchProcessor(outbox_store).process(messages(shipped(order), paid(order)))
    await BatchProcessor(outbox_store).process(messages(cancelled(order)))  # rejected: shipped
    rows = await outbox(database)
    assert [(r["sequence"], r["payload"]["status"]) for r in rows] == [
        (1, "PLACED"),
        (2, "PAID"),
        (3, "SHIPPED"),
    ]


async def test_four_concurrent_writers_number_each_order_1_to_n(database):
    orders = [str(uuid.uuid4()) for _ in range(40)]
    events = [e for o in orders for e in (placed(o), paid(o), shipped(o))]
    batch = messages(*events)
    stores = [PostgresStore(database, outbox=True, pool_size=4) for _ in range(4)]
    for s in stores:
        await s.connect()
    try:
        await asyncio.gather(
            *(
                BatchProcessor(s).process(batch[i::3] + batch[::-1][:50])
                for i, s in enumerate(stores)
            )
        )
        # What was deferred (a payment before its order) comes round again.
        await BatchProcessor(stores[0]).process(batch)
    finally:
        for s in stores:
            await s.close()
    applied = await query(
        database,
        "SELECT order_id, count(*) AS n FROM order_events WHERE outcome = 'applied' "
        "GROUP BY order_id",
    )
    sequences: dict[uuid.UUID, list[int]] = {}
    for r in await outbox(database):
        sequences.setdefault(r["aggregateid"], []).append(r["sequence"])
    assert {o: list(range(1, n + 1)) for o, n in applied} == sequences
    assert len(sequences) == len(orders)


async def test_a_rolled_back_batch_writes_no_outbox_row(outbox_store, database):
    # The outbox insert fails for one event: the batch is rolled back whole (its orders too)
    # and retried one message at a time; the refused one leaves neither its row nor its order.
    conn = await asyncpg.connect(database)
    await conn.execute("""
        CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
        BEGIN
          IF NEW.payload->>'cancel_reason' = 'poison' THEN RAISE EXCEPTION 'poison'; END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER refuse_poison BEFORE INSERT ON order_outbox
          FOR EACH ROW EXECUTE FUNCTION refuse_poison();
    """)
    await conn.close()
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    await BatchProcessor(outbox_store).process(messages(placed(good), placed(bad)))
    results = await BatchProcessor(outbox_store).process(
        messages(paid(good), cancelled(bad, reason="poison"))
    )
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.INVALID]
    rows = await outbox(database)
    assert sorted((str(r["aggregateid"]), r["sequence"]) for r in rows) == sorted(
        [(good, 1), (good, 2), (bad, 1)]
    )
    statuses = dict(await query(database, "SELECT order_id::text, status FROM orders"))
    assert statuses == {good: "PAID", bad: "PLACED"}


async def test_with_the_outbox_off_nothing_is_written_but_orders_still_count(database):
    store = PostgresStore(database, pool_size=4)
    await store.connect()
    try:
        order = str(uuid.uuid4())
        await BatchProcessor(store).process(messages(placed(order), paid(order)))
    finally:
        await store.close()
    assert await outbox(database) == []
    assert [r["last_sequence"] for r in await query(database, "SELECT * FROM orders")] == [2]


async def test_the_migration_starts_each_order_from_its_applied_events(empty_database):
    await asyncio.to_thread(upgrade, empty_database, "0002")
    store = PostgresStore(empty_database, pool_size=4)
    order = str(uuid.uuid4())
    conn = await asyncpg.connect(empty_database)
    try:
        # Written as a 0002 worker would: the applied events and a rejected one.
        await conn.execute(
            "INSERT INTO orders (order_id, customer_id, status, currency, total_amount, "
            "placed_at, placed_event_id, placed_digest) "
            "VALUES ($1, 'c', 'PAID', 'EUR', 1, now(), gen_random_uuid(), 'd')",
            uuid.UUID(order),
        )
        await conn.execute(
            "INSERT INTO order_events (event_id, order_id, event_type, outcome, reason, "
            "occurred_at) SELECT gen_random_uuid(), $1, 'order.paid', o, r, now() "
            "FROM (VALUES ('applied', NULL), ('applied', NULL), ('rejected', 'x')) AS v(o, r)",
            uuid.UUID(order),
        )
        await asyncio.to_thread(upgrade, empty_database)
        assert await conn.fetchval("SELECT last_sequence FROM orders") == 2
    finally:
        await conn.close()
        await store.close()
