"""The transactional outbox: order status changes for other systems, in the batch's transaction.

`order_outbox` is part of the read contract (docs/contract/ORDER_STATUS_EVENTS.md). Its first
five columns carry the names Debezium's outbox event router reads by default (`id`,
`aggregatetype`, `aggregateid`, `type`, `payload`), so that a team running CDC can read the
table instead of the relay. `orders.last_sequence` is the per-order counter: it lives with the
order, so deleting published outbox rows never restarts a sequence. Existing orders start
from their number of applied events (one UPDATE of every order: on a large table run this
revision in a quiet hour). The application role gets DML on the new table through 0002's
default privileges.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATEMENTS = """
    ALTER TABLE orders
        ADD COLUMN last_sequence int NOT NULL DEFAULT 0 CHECK (last_sequence >= 0);

    UPDATE orders AS o SET last_sequence = e.applied
    FROM (SELECT order_id, count(*) AS applied FROM order_events
          WHERE outcome = 'applied' GROUP BY order_id) AS e
    WHERE o.order_id = e.order_id;

    CREATE TABLE order_outbox (
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
    CREATE INDEX order_outbox_unpublished_idx ON order_outbox (created_at)
        WHERE published_at IS NULL;
    CREATE INDEX order_outbox_published_idx ON order_outbox (published_at)
        WHERE published_at IS NOT NULL
"""


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each, and a prepared statement holds one.
    for statement in STATEMENTS.split(";\n"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE order_outbox")
    op.execute("ALTER TABLE orders DROP COLUMN last_sequence")
