"""Attacks on "a schema that needs a newer build" (migration 0007's schema_requirements,
adapters/store_probe.py, service/pause.py): a build that does not know the required revision
pauses (kind build_too_old, /ready 503) and writes nothing, and resumes once the requirement
is lowered. A real worker process, real PostgreSQL, ministack SQS/SNS; the change waiting for
its status event is applied by the real build from before the outbox (commit OLD_BUILD)."""

from __future__ import annotations

import asyncio
import uuid

from tests.e2e.test_rollout_catch_up_order import old_batch
from tests.e2e.test_rollout_with_an_old_build import old_build  # noqa: F401 (the fixture)
from tests.factories import body, placed
from tests.support.database import execute, query
from tests.support.waiting import wait_for


def paused_too_old(worker) -> bool:
    status, answer = worker.get("/ready")
    # /ready names the fault by its message (the kind is in the log line and the metric).
    return status == 503 and "needs a build that knows revision 9999" in str(answer)


async def writes_for(database: str, order: str) -> dict[str, int]:
    """What anything wrote for `order` after the old build changed it."""
    order_id = uuid.UUID(order)
    rows = await query(
        database,
        "SELECT (SELECT count(*) FROM order_outbox WHERE aggregateid = $1) AS outbox,"
        " (SELECT count(*) FROM order_outbox WHERE aggregateid = $1"
        "  AND published_at IS NOT NULL) AS published,"
        " (SELECT last_sequence FROM orders WHERE order_id = $1) AS last_sequence,"
        " (SELECT count(*) FROM order_status_backlog WHERE order_id = $1) AS noted",
        order_id,
    )
    return dict(rows[0])


async def test_a_worker_paused_as_too_old_writes_nothing_not_even_its_relay(
    old_build,  # noqa: F811
    database,
    start_worker,
    status_topic,
):
    """The old build changed an order (noted in the backlog); then a migration this build does
    not know raised the requirement. The new build starts with its relay: it must stay paused
    and write nothing (docs/migrations.md: "pauses (kind build_too_old, /ready 503, writing
    nothing)"), its relay included. Before the fix the relay never looked: within its first
    pass it caught the order up (an outbox row, orders.last_sequence, the backlog row deleted)
    and published it, on a schema whose meaning this build no longer knows."""
    order = str(uuid.uuid4())
    assert await old_batch(old_build, database, [placed(order)]) == ["applied"]
    await execute(database, "UPDATE schema_requirements SET minimum_build_revision = '9999'")
    before = await writes_for(database, order)
    assert before == {"outbox": 0, "published": 0, "last_sequence": 0, "noted": 1}
    worker = start_worker(ORDER_EVENTS_TOPIC_ARN=status_topic.arn)
    await wait_for(lambda: paused_too_old(worker), 30, "the worker to pause as too old")
    await asyncio.sleep(8)  # past the relay's first catch-up pass (every 5 s, first at start)
    assert paused_too_old(worker)
    assert await writes_for(database, order) == before


async def test_a_worker_paused_as_too_old_consumes_nothing_and_resumes_when_lowered(
    database, start_worker, e2e_queues, sqs
):
    """Holds: with the requirement above what it knows, the worker is 503 build_too_old and a
    message on the queue stays unapplied; lowered to 0007, it resumes and applies it."""
    await execute(database, "UPDATE schema_requirements SET minimum_build_revision = '9999'")
    worker = start_worker()
    await wait_for(lambda: paused_too_old(worker), 30, "the worker to pause as too old")
    order = str(uuid.uuid4())
    await sqs.send_message(QueueUrl=e2e_queues.url, MessageBody=body(placed(order)))
    await asyncio.sleep(4)
    assert await query(database, "SELECT * FROM orders WHERE order_id = $1", uuid.UUID(order)) == []
    assert paused_too_old(worker)
    await execute(database, "UPDATE schema_requirements SET minimum_build_revision = '0007'")

    async def applied() -> bool:
        rows = await query(database, "SELECT 1 FROM orders WHERE order_id = $1", uuid.UUID(order))
        return bool(rows)

    await wait_for(applied, 30, "the order once the requirement is lowered")
    assert worker.get("/ready")[0] == 200
