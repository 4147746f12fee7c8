"""Rollout safety of the status events against a real PostgreSQL and ministack's SNS -> SQS
(issue 21 item 5): changes written the way a build from before the outbox writes them (no
outbox row, `last_sequence` untouched) are noted by migration 0007's triggers and published,
in sequence, by the relay's catch-up or by the next batch that changes the order; a schema that
needs a newer build pauses this one. The real older build runs in
tests/e2e/test_rollout_with_an_old_build.py."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from order_service.adapters.outbox import PostgresOutbox
from order_service.adapters.postgres import PostgresStore
from order_service.adapters.sns import SnsTopic
from order_service.bootstrap import relay_config
from order_service.entrypoints.local_servers import create_topic_with_queue
from order_service.errors import StoreUnavailable
from order_service.metrics import Metrics
from order_service.service.processing import BatchProcessor
from order_service.service.relay import Relay
from order_service.settings import Settings
from tests.factories import paid, placed, shipped
from tests.support.batches import messages
from tests.support.database import query
from tests.support.downstream import check_downstream, receive_all
from tests.support.old_builds import old_build_pays, old_build_places
from tests.support.status_contract import validate_status_event

CONFIG = relay_config(Settings.model_construct())  # the settings' defaults


@pytest.fixture
async def conn(database):
    c = await asyncpg.connect(database)
    yield c
    await c.close()


async def backlog(dsn: str) -> set[str]:
    return {str(r["order_id"]) for r in await query(dsn, "SELECT * FROM order_status_backlog")}


async def test_only_writes_that_skip_the_counter_are_noted(outbox_store, conn, database):
    new, old = str(uuid.uuid4()), str(uuid.uuid4())
    await BatchProcessor(outbox_store).process(messages(placed(new), paid(new)))
    await old_build_places(conn, old)
    assert await backlog(database) == {old}
    await old_build_pays(conn, old)  # noted once per order
    assert await backlog(database) == {old}
    # A change of the counter alone (the catch-up's own) is not a change of status.
    await conn.execute("DELETE FROM order_status_backlog")
    await conn.execute("UPDATE orders SET last_sequence = 2 WHERE order_id = $1", uuid.UUID(old))
    assert await backlog(database) == set()


async def test_the_relay_publishes_what_an_older_build_applied_in_sequence(
    outbox_store, conn, database, sns, sqs
):
    # Orders of the new build, an old build's, and one each wrote a step of.
    new, old, mixed = (str(uuid.uuid4()) for _ in range(3))
    await BatchProcessor(outbox_store).process(messages(placed(new), placed(mixed)))
    await old_build_places(conn, old)
    await old_build_pays(conn, old)
    await old_build_pays(conn, mixed)
    topic_arn, downstream = await create_topic_with_queue(
        sns, sqs, f"status-{uuid.uuid4().hex[:8]}", fifo=False
    )
    outbox = PostgresOutbox(database)
    relay = Relay(outbox, SnsTopic(sns, topic_arn, metrics=Metrics()), CONFIG, Metrics())
    try:
        assert await outbox.catch_up(10) == 3  # old: placed, paid; mixed: paid
        assert await backlog(database) == set()
        while await relay.publish_once():
            pass
    finally:
        await outbox.close()
    bodies = await receive_all(sqs, downstream, expect=5)
    counts = await check_downstream(database, bodies, validate_status_event)
    assert counts == {"orders": 3, "rows": 5, "duplicates": 0}
    late = {b["order_id"]: b for b in bodies if b["order_id"] == mixed}
    assert late[mixed]["sequence"] == 2 and late[mixed]["status"] == "PAID"


async def test_a_batch_catches_an_order_up_before_its_own_change(
    outbox_store, conn, database, sns, sqs
):
    order = str(uuid.uuid4())
    await BatchProcessor(outbox_store).process(messages(placed(order)))
    await old_build_pays(conn, order)
    await BatchProcessor(outbox_store).process(messages(shipped(order)))
    assert await backlog(database) == set()
    rows = await query(
        database,
        "SELECT sequence, type, payload->>'status' AS status FROM order_outbox "
        "WHERE aggregateid = $1 ORDER BY sequence",
        uuid.UUID(order),
    )
    assert [(r["sequence"], r["status"]) for r in rows] == [
        (1, "PLACED"),
        (2, "PAID"),
        (3, "SHIPPED"),
    ]
    topic_arn, downstream = await create_topic_with_queue(
        sns, sqs, f"status-{uuid.uuid4().hex[:8]}", fifo=False
    )
    outbox = PostgresOutbox(database)
    try:
        while await Relay(
            outbox, SnsTopic(sns, topic_arn, metrics=Metrics()), CONFIG, Metrics()
        ).publish_once():
            pass
    finally:
        await outbox.close()
    bodies = await receive_all(sqs, downstream, expect=3)
    assert (await check_downstream(database, bodies, validate_status_event))["rows"] == 3


async def test_without_an_outbox_reader_only_the_counter_catches_up(database, conn):
    quiet = PostgresStore(database, outbox=False, pool_size=4)
    await quiet.connect()
    try:
        order = str(uuid.uuid4())
        await old_build_places(conn, order)
        await BatchProcessor(quiet).process(messages(paid(order, amount="28.99")))
    finally:
        await quiet.close()
    stored = await query(
        database, "SELECT last_sequence FROM orders WHERE order_id = $1", uuid.UUID(order)
    )
    assert stored[0]["last_sequence"] == 2
    assert await query(database, "SELECT * FROM order_outbox") == []
    assert await backlog(database) == set()


async def test_a_schema_that_needs_a_newer_build_pauses_this_one(outbox_store, conn):
    await outbox_store.probe()
    await outbox_store.check_schema()
    await conn.execute("UPDATE schema_requirements SET minimum_build_revision = '9999'")
    for check in (outbox_store.probe, outbox_store.check_schema):
        with pytest.raises(StoreUnavailable) as fault:
            await check()
        assert fault.value.kind == "build_too_old" and "9999" in str(fault.value)
    await conn.execute("UPDATE schema_requirements SET minimum_build_revision = '0007'")
    await outbox_store.probe()
