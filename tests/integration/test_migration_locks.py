"""Migrations never queue the fleet behind them (issue 22): a statement waits at most
LOCK_TIMEOUT for its table lock, then gives way, retries, and finally fails naming the session
in the way; 0003's backfill runs in short batches after its schema change committed."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path

import asyncpg
import pytest

from order_service.adapters.migrations import MigrationBlocked, shipped_revisions, upgrade
from order_service.adapters.sqs import SqsQueue
from order_service.metrics import Metrics
from tests import factories
from tests.support.database import query
from tests.support.waiting import wait_for

# A revision on top of what ships: an `ALTER TABLE orders`, the statement that needs
# `ACCESS EXCLUSIVE` on the table every batch writes.
EXTRA_REVISION = """
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE orders ADD COLUMN lock_test_note text")


def downgrade() -> None:
    op.execute("ALTER TABLE orders DROP COLUMN lock_test_note")
"""


@pytest.fixture
def extra_revision(tmp_path: Path) -> str:
    folder = tmp_path / "versions"
    folder.mkdir()
    head, _ = shipped_revisions()
    (folder / "9001_lock_test.py").write_text(EXTRA_REVISION.format(head=head))
    return str(folder)


async def reader_holding_orders(dsn: str) -> asyncpg.Connection:
    """A BI query's session: an open transaction that has read `orders` (ACCESS SHARE)."""
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "bi-report"})
    await conn.execute("BEGIN")
    await conn.fetch("SELECT count(*) FROM orders")
    return conn


async def applied(dsn: str, order_ids: list[str]) -> bool:
    """Whether every order is in; False while the check itself waits behind a lock (it queues
    like the workers do), so that a blocked fleet fails the test instead of hanging it."""
    conn = await asyncpg.connect(dsn, server_settings={"lock_timeout": "1s"})
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE order_id = ANY($1::uuid[])", order_ids
        )
    except asyncpg.LockNotAvailableError:
        return False
    finally:
        await conn.close()
    return bool(count == len(order_ids))


async def test_a_migration_behind_a_reader_never_holds_the_workers_and_completes_after_it(
    database, sqs, e2e_queues, start_worker, extra_revision
):
    start_worker()
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())
    reader = await reader_holding_orders(database)
    outcome: dict[str, BaseException | None] = {}

    def migrate() -> None:
        try:
            upgrade(database, lock_retry_delays=(0.5,) * 60, version_locations=[extra_revision])
            outcome["error"] = None
        except BaseException as exc:  # reported to the test below
            outcome["error"] = exc

    migration = threading.Thread(target=migrate, daemon=True)
    migration.start()
    try:
        # While the reader holds its lock and the migration keeps trying, orders go through:
        # each statement of the migration gives way after LOCK_TIMEOUT instead of queueing
        # every batch behind its ACCESS EXCLUSIVE request for as long as the reader runs.
        for round_ in range(3):
            order_ids = [str(uuid.uuid4()) for _ in range(5)]
            await queue.send(
                e2e_queues.url, [factories.body(factories.placed(o)) for o in order_ids]
            )
            await wait_for(lambda ids=order_ids: applied(database, ids), 20, f"round {round_}")
        assert migration.is_alive(), "the migration did not wait for the reader"
        columns = await query(
            database,
            "SELECT 1 FROM information_schema.columns WHERE column_name = 'lock_test_note'",
        )
        assert not columns
    finally:
        await reader.execute("COMMIT")
        await reader.close()
    await wait_for(lambda: "error" in outcome, 60, "the migration to finish")
    assert outcome["error"] is None
    version = await query(database, "SELECT version_num FROM alembic_version")
    assert version[0]["version_num"] == "9001"
    # The worker carries on on the newer schema, as an old build does during a deploy.
    order_id = str(uuid.uuid4())
    await queue.send(e2e_queues.url, [factories.body(factories.placed(order_id))])
    await wait_for(lambda: applied(database, [order_id]), 20, "an order after the migration")


async def test_a_migration_that_cannot_get_its_lock_fails_naming_the_session_in_the_way(
    database, extra_revision
):
    reader = await reader_holding_orders(database)
    try:
        with pytest.raises(MigrationBlocked) as info:
            await asyncio.to_thread(
                upgrade, database, lock_retry_delays=(0.1,), version_locations=[extra_revision]
            )
    finally:
        await reader.execute("ROLLBACK")
        await reader.close()
    message = str(info.value)
    assert "\n" not in message
    assert "2 tries" in message and "bi-report" in message and "orders" in message
    assert "SELECT count(*) FROM orders" in message
    version = await query(database, "SELECT version_num FROM alembic_version")
    assert version[0]["version_num"] == shipped_revisions()[0]  # nothing half-applied


async def test_0003_backfills_each_orders_applied_events_in_batches(empty_database):
    await asyncio.to_thread(upgrade, empty_database, "0002")
    conn = await asyncpg.connect(empty_database)
    try:
        orders = [str(uuid.uuid4()) for _ in range(3)]
        for n, order_id in enumerate(orders):
            await conn.execute(
                "INSERT INTO orders (order_id, customer_id, status, currency, total_amount, "
                "placed_at, placed_event_id, placed_digest) "
                "VALUES ($1, 'c', 'PLACED', 'EUR', 1, now(), $2, 'd')",
                uuid.UUID(order_id),
                uuid.uuid4(),
            )
            for _ in range(n + 1):  # order n: n + 1 applied events and one rejected
                await conn.execute(
                    "INSERT INTO order_events (event_id, order_id, event_type, outcome, "
                    "occurred_at) VALUES ($1, $2, 'order.paid', 'applied', now())",
                    uuid.uuid4(),
                    uuid.UUID(order_id),
                )
            await conn.execute(
                "INSERT INTO order_events (event_id, order_id, event_type, outcome, reason, "
                "occurred_at) VALUES ($1, $2, 'order.paid', 'rejected', 'r', now())",
                uuid.uuid4(),
                uuid.UUID(order_id),
            )
    finally:
        await conn.close()
    await asyncio.to_thread(upgrade, empty_database)
    rows = await query(empty_database, "SELECT order_id::text, last_sequence FROM orders")
    assert {r["order_id"]: r["last_sequence"] for r in rows} == {
        order_id: n + 1 for n, order_id in enumerate(orders)
    }
