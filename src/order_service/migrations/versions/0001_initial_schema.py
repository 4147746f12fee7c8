"""Initial schema: the read contract (orders, order_items, order_events) and a quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


STATEMENTS = """
    CREATE TABLE orders (
        order_id        uuid PRIMARY KEY,
        customer_id     text NOT NULL,
        status          text NOT NULL
                        CHECK (status IN ('PLACED', 'PAID', 'SHIPPED', 'CANCELLED')),
        currency        char(3) NOT NULL,
        total_amount    numeric(14, 2) NOT NULL CHECK (total_amount >= 0),
        placed_at       timestamptz NOT NULL,
        updated_at      timestamptz NOT NULL DEFAULT now(),
        -- What the lifecycle compares: the placed event's content and the applied payment
        -- and shipment (a repeated event with the same content is a duplicate).
        placed_event_id uuid NOT NULL,
        placed_digest   text NOT NULL,
        payment_id      text,
        paid_amount     numeric(14, 2),
        paid_currency   char(3),
        carrier         text,
        tracking_number text,
        cancel_reason   text
    );

    CREATE TABLE order_items (
        order_id   uuid NOT NULL REFERENCES orders (order_id),
        line_no    int NOT NULL CHECK (line_no >= 1),
        sku        text NOT NULL,
        quantity   int NOT NULL CHECK (quantity >= 1),
        unit_price numeric(14, 2) NOT NULL CHECK (unit_price >= 0),
        PRIMARY KEY (order_id, line_no)
    );

    -- The processed-events table: one row per event applied or rejected; its primary key is
    -- what makes a redelivered event change the database once.
    CREATE TABLE order_events (
        event_id     uuid PRIMARY KEY,
        order_id     uuid NOT NULL,
        event_type   text NOT NULL,
        outcome      text NOT NULL CHECK (outcome IN ('applied', 'rejected')),
        reason       text,
        occurred_at  timestamptz NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((outcome = 'applied') = (reason IS NULL))
    );
    CREATE INDEX order_events_order_id_idx ON order_events (order_id);

    -- Invalid messages that the DLQ refused (e.g. too large): kept, never dropped.
    CREATE TABLE quarantined_messages (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        message_id  text NOT NULL,
        body        text NOT NULL,
        reason      text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now()
    );
"""


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each, and a prepared statement holds one.
    for statement in STATEMENTS.split(";\n"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE quarantined_messages, order_events, order_items, orders")
