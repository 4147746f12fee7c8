"""The relay against a real PostgreSQL and ministack's SNS -> SQS (raw delivery): every row
arrives once, deleted when published (or marked, with a retention), attributes set; whole
orders claimed; retention; relays that delete and relays that mark on one table."""

from __future__ import annotations

import asyncio
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
from tests.factories import paid, placed
from tests.support.batches import lifecycles, messages
from tests.support.downstream import check_downstream, receive_all
from tests.support.status_contract import validate_status_event

DEFAULTS = Settings.model_construct()  # the settings' defaults


async def unpublished(dsn: str) -> int:
    return await rows_left(dsn, "WHERE published_at IS NULL")


async def rows_left(dsn: str, where: str = "") -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM order_outbox {where}")
    finally:
        await conn.close()


@pytest.mark.parametrize("fifo", [False, True])
async def test_every_row_reaches_the_downstream_queue_in_sequence(
    outbox_store, database, sns, sqs, fifo
):
    await lifecycles(outbox_store, 25)  # 75 rows (cancelling a shipped order is rejected)
    topic_arn, downstream = await create_topic_with_queue(
        sns, sqs, f"status-{uuid.uuid4().hex[:8]}", fifo=fifo
    )
    outbox = PostgresOutbox(database)
    relay = Relay(
        outbox,
        SnsTopic(sns, topic_arn, metrics=Metrics()),
        relay_config(DEFAULTS, claim_orders=7),
        Metrics(),
    )
    try:
        while await relay.publish_once():  # a claim of 7 orders is full: more are waiting
            pass
        assert await relay.publish_once() is False
    finally:
        await outbox.close()
    assert relay.published == 75 and await unpublished(database) == 0
    assert await rows_left(database) == 0  # no retention: each row deleted when published
    bodies = await receive_all(sqs, downstream, expect=75)
    counts = await check_downstream(database, bodies, validate_status_event)
    assert counts == {"orders": 25, "rows": 75, "duplicates": 0}


async def test_a_claimed_order_is_skipped_by_another_relay_not_waited_for(outbox_store, database):
    orders = await lifecycles(outbox_store, 4)
    first, second = PostgresOutbox(database), PostgresOutbox(database)
    try:
        async with first.claim(2) as held:
            claimed = {r.order_id for r in held.rows}
            assert len(claimed) == 2 and [r.sequence for r in held.rows[:3]] == [1, 2, 3]
            async with second.claim(10) as other:
                rest = {r.order_id for r in other.rows}
            assert rest == {uuid.UUID(o) for o in orders} - claimed
            assert not other.full
    finally:
        await first.close()
        await second.close()


async def test_a_dead_relays_claim_ends_with_its_connection(outbox_store, database):
    await lifecycles(outbox_store, 1)
    dying, other = PostgresOutbox(database), PostgresOutbox(database)
    try:

        async def claim_then_lose_the_connection() -> None:
            async with dying.claim(5) as held:
                assert held.rows
                # The server ends the session as after a SIGKILL or the 30 s idle limit.
                admin = await asyncpg.connect(database)
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'order-service-relay' AND state LIKE 'idle in%'"
                )
                await admin.close()
                await held.mark_published([held.rows[0].id])

        with pytest.raises(StoreUnavailable):
            await claim_then_lose_the_connection()
        async with other.claim(5) as taken:
            assert len(taken.rows) == 3
    finally:
        await dying.close()
        await other.close()


async def test_the_claim_connection_ends_an_idle_claim_within_30_seconds(database):
    outbox = PostgresOutbox(database)
    try:
        async with outbox.claim(1) as claim:
            conn = claim._conn
            assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "30s"
    finally:
        await outbox.close()


async def test_retention_deletes_published_rows_only(outbox_store, database):
    await lifecycles(outbox_store, 2)
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "UPDATE order_outbox SET published_at = now() - interval '2 hours' WHERE sequence < 3"
        )
        outbox = PostgresOutbox(database)
        try:
            assert await outbox.delete_published(3600) == 4
            assert await outbox.delete_published(0) == 0  # what is left is unpublished
            status = await outbox.status()
        finally:
            await outbox.close()
        assert (status.unpublished, status.published_retained) == (2, 0)
        assert await conn.fetchval("SELECT count(*) FROM order_outbox") == 2
    finally:
        await conn.close()


async def test_a_relay_woken_by_its_worker_publishes_without_waiting_for_the_poll(
    outbox_store, database, sns, sqs
):
    topic_arn, downstream = await create_topic_with_queue(sns, sqs, f"w-{uuid.uuid4().hex[:8]}")
    outbox = PostgresOutbox(database)
    relay = Relay(
        outbox,
        SnsTopic(sns, topic_arn, metrics=Metrics()),
        relay_config(DEFAULTS, poll_interval=10),
        Metrics(),
    )
    outbox_store.on_outbox_written = relay.wake.set
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.2)  # the relay's first claim found nothing and sleeps (10 s)
        order = str(uuid.uuid4())
        await BatchProcessor(outbox_store).process(messages(placed(order)))
        bodies = await receive_all(sqs, downstream, expect=1, timeout=5)
        assert [b["sequence"] for b in bodies] == [1]
    finally:
        stop.set()
        await task
        await outbox.close()


async def test_a_traced_batch_s_rows_carry_its_traceparent_to_the_published_messages(
    database, sns, sqs
):
    from opentelemetry.sdk.trace import TracerProvider

    from order_service.adapters.spans import OtelSpans

    tracer = TracerProvider().get_tracer("test")
    traced = PostgresStore(database, outbox=True, spans=OtelSpans(tracer), pool_size=4)
    await traced.connect()
    order = str(uuid.uuid4())
    try:
        with tracer.start_as_current_span("process orders") as batch:
            await BatchProcessor(traced).process(messages(placed(order)))
        await BatchProcessor(traced).process(messages(paid(order)))  # outside any span
    finally:
        await traced.close()
    topic_arn, downstream = await create_topic_with_queue(
        sns, sqs, f"status-{uuid.uuid4().hex[:8]}"
    )
    outbox = PostgresOutbox(database)
    try:
        await Relay(
            outbox, SnsTopic(sns, topic_arn, metrics=Metrics()), relay_config(DEFAULTS), Metrics()
        ).publish_once()
    finally:
        await outbox.close()
    bodies = await receive_all(sqs, downstream, 2)
    context = batch.get_span_context()
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    by_sequence = {b["sequence"]: b["_attributes"] for b in bodies}
    assert by_sequence[1]["traceparent"] == expected
    assert "traceparent" not in by_sequence[2]  # written untraced: NULL, no attribute


async def test_relays_that_mark_and_relays_that_delete_share_the_table(
    outbox_store, database, sns, sqs
):
    """A rollout from a build that kept published rows (marked, OUTBOX_RETENTION_HOURS 24 by
    its default) to one that deletes them, both relays running: each order still goes out
    1..n once, and the new relay's retention pass deletes what the old one marked."""
    await lifecycles(outbox_store, 40)
    topic_arn, downstream = await create_topic_with_queue(sns, sqs, f"mix-{uuid.uuid4().hex[:8]}")
    outboxes = [PostgresOutbox(database), PostgresOutbox(database)]
    relays = [
        Relay(
            outbox,
            SnsTopic(sns, topic_arn, metrics=Metrics()),
            relay_config(DEFAULTS, claim_orders=3, retention_seconds=hours * 3600),
            Metrics(),
        )
        for outbox, hours in zip(outboxes, (24, 0), strict=True)
    ]

    async def drain(relay: Relay) -> None:
        while await relay.publish_once():
            pass

    try:
        await asyncio.gather(*(drain(r) for r in relays))
        await asyncio.gather(*(drain(r) for r in relays))  # what a skipped claim left
        marked, deleted = (r.published for r in relays)
        assert marked > 0 and deleted > 0 and marked + deleted == 120
        assert await rows_left(database) == marked  # the old build's, kept
        assert await outboxes[1].delete_published(0) == marked  # the new relay's retention
    finally:
        for outbox in outboxes:
            await outbox.close()
    assert await rows_left(database) == 0
    bodies = await receive_all(sqs, downstream, expect=120)
    assert (await check_downstream(database, bodies))["rows"] == 120
