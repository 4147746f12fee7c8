"""The transactional outbox: order status changes for other systems, in the batch's transaction.

`order_outbox` is part of the read contract (docs/contract/ORDER_STATUS_EVENTS.md). Its first
five columns carry the names Debezium's outbox event router reads by default (`id`,
`aggregatetype`, `aggregateid`, `type`, `payload`), so that a team running CDC can read the
table instead of the relay. `orders.last_sequence` is the per-order counter: it lives with the
order, so deleting published outbox rows never restarts a sequence. Existing orders start
from their number of applied events. That backfill runs after the schema change has committed,
in batches of BACKFILL_BATCH orders each committed on its own: the `ALTER TABLE`'s lock is held
for a catalogue change only, and no batch holds an order's row for long (changed in place from
one UPDATE of every order inside the lock: the schema it leaves is the same). The application
role gets DML on the new table through 0002's default privileges.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATEMENTS = """
    ALTER TABLE orders
        ADD COLUMN IF NOT EXISTS last_sequence int NOT NULL DEFAULT 0 CHECK (last_sequence >= 0);

    CREATE TABLE IF NOT EXISTS order_outbox (
        id            uuid PRIMARY KEY,
        aggregatetype text NOT NULL DEFAULT 'order',
        aggregateid   uuid NOT NULL,
        type          text NOT NULL,
        payload       jsonb NOT NULL,
        sequence      int NOT NULL CHECK (sequence >= 1),
        created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
        published_at  timestamptz,
        -- One row per step of an order: a second writer of the same step fails the batch.
        UNIQUE (aggregateid, sequence)
    );

    -- What the relay scans (oldest first) and what retention deletes: both stay small.
    CREATE INDEX IF NOT EXISTS order_outbox_unpublished_idx ON order_outbox (created_at)
        WHERE published_at IS NULL;
    CREATE INDEX IF NOT EXISTS order_outbox_published_idx ON order_outbox (published_at)
        WHERE published_at IS NOT NULL
"""


BACKFILL_BATCH = 1000
# The next batch of orders after :after (by key), each set to its number of applied events;
# returns the batch's last key (NULL once no order is left).
BACKFILL = sa.text("""
    WITH batch AS (
        SELECT order_id FROM orders
        WHERE CAST(:after AS uuid) IS NULL OR order_id > CAST(:after AS uuid)
        ORDER BY order_id LIMIT :size
    ), applied AS (
        UPDATE orders AS o SET last_sequence = (
            SELECT count(*) FROM order_events AS e
            WHERE e.order_id = o.order_id AND e.outcome = 'applied')
        FROM batch WHERE o.order_id = batch.order_id
    )
    SELECT max(order_id::text) FROM batch
""")


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each, and a prepared statement holds one.
    for statement in STATEMENTS.split(";\n"):
        if statement.strip():
            op.execute(statement)
    # The backfill outside the migration's transaction (Alembic commits it first): each
    # batch is its own short transaction. A retry (a lock refused in the backfill, a killed
    # task) runs this revision again: its statements are idempotent, and so is the backfill.
    with op.get_context().autocommit_block():
        after = None
        while True:
            after = op.get_bind().execute(BACKFILL, {"after": after, "size": BACKFILL_BATCH})
            after = after.scalar()
            if after is None:
                break


def downgrade() -> None:
    op.execute("DROP TABLE order_outbox")
    op.execute("ALTER TABLE orders DROP COLUMN last_sequence")
