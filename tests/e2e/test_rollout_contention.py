"""Attack on issue 21 item 5's "no deadlock or stall": the build from before the outbox (its
real write path, commit OLD_BUILD), the new build's batches (PostgresStore with the outbox,
BatchProcessor) and the relay's catch-up, all at once on the same orders; both builds are
handed the same shipment events (a rollout: one queue, two builds), so they race to apply
each. Afterwards every order reads placed, paid, shipped as sequences 1, 2, 3, the backlog is
empty, and PostgreSQL counted no deadlock."""

from __future__ import annotations

import asyncio
import json
import uuid

from order_service.adapters.postgres import PostgresStore
from order_service.domain.lifecycle import Outcome
from order_service.service.processing import BatchProcessor
from tests.e2e.test_rollout_catch_up_order import at, old_batch, relay_catch_up
from tests.e2e.test_rollout_with_an_old_build import old_build  # noqa: F401 (the fixture)
from tests.factories import paid, placed, shipped
from tests.support.batches import messages
from tests.support.database import query

ORDERS = 60
OLD_ONLY = 30  # orders 0..29 paid by the old build, 30..59 by the new one; all shipped by both


async def deadlocks(dsn: str) -> int:
    rows = await query(
        dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(rows[0]["deadlocks"])


async def new_build(store: PostgresStore, events: list[dict], size: int) -> dict[str, int]:
    """Feeds `events` in batches of `size` until each is decided for good (deferred and
    transient ones come back, as SQS would hand them back)."""
    outcomes: dict[str, int] = {}
    pending = list(events)
    for _ in range(400):
        if not pending:
            return outcomes
        batch, pending = pending[:size], pending[size:]
        for result in await BatchProcessor(store).process(messages(*batch)):
            event = json.loads(result.message.body)
            if result.outcome in (Outcome.DEFERRED, Outcome.TRANSIENT):
                pending.append(event)
            else:
                outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(pending)} events never decided")


async def test_old_build_new_build_and_relay_on_the_same_orders_never_deadlock(
    old_build,  # noqa: F811
    database,
):
    orders = [str(uuid.uuid4()) for _ in range(ORDERS)]
    assert set(await old_batch(old_build, database, [placed(o) for o in orders])) == {"applied"}
    pays = [at(paid(o), "2026-11-26T09:16:00Z") for o in orders]
    ships = [at(shipped(o), "2026-11-26T09:17:00Z") for o in orders]
    before = await deadlocks(database)
    store = PostgresStore(database, outbox=True, pool_size=4)
    await store.connect()
    stop = asyncio.Event()
    passes = 0

    async def relay() -> None:
        nonlocal passes
        while not stop.is_set():
            await relay_catch_up(database, orders_per_pass=200)
            passes += 1
            await asyncio.sleep(0.02)

    async def old() -> None:
        for chunk in range(0, OLD_ONLY, 10):
            assert set(await old_batch(old_build, database, pays[chunk : chunk + 10])) == {
                "applied"
            }
        for chunk in range(0, ORDERS, 20):  # deferred where not paid yet: SQS hands it back
            await old_batch(old_build, database, ships[chunk : chunk + 20])

    relaying = asyncio.create_task(relay())
    try:
        await asyncio.wait_for(
            asyncio.gather(
                old(),
                new_build(store, pays[OLD_ONLY:] + ships, size=5),
            ),
            120,
        )
    finally:
        stop.set()
        await relaying
        await store.close()
    while await relay_catch_up(database):
        pass
    assert passes > 0
    assert await deadlocks(database) == before
    assert await query(database, "SELECT * FROM order_status_backlog") == []
    rows = await query(
        database,
        "SELECT o.order_id, o.last_sequence,"
        " array_agg(x.payload ->> 'status' ORDER BY x.sequence) AS statuses,"
        " array_agg(x.sequence ORDER BY x.sequence) AS sequences"
        " FROM orders o JOIN order_outbox x ON x.aggregateid = o.order_id"
        " WHERE o.order_id = ANY($1::uuid[]) GROUP BY 1, 2",
        orders,
    )
    assert len(rows) == ORDERS
    shapes = {(r["last_sequence"], tuple(r["statuses"]), tuple(r["sequences"])) for r in rows}
    assert shapes == {(3, ("PLACED", "PAID", "SHIPPED"), (1, 2, 3))}
