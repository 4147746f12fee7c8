"""Rollout safety of the status events (issue 21 item 5): changes that no build published are
noted by the database, and a schema can say which builds it needs.

1. `order_status_backlog`: one row per order that a change left without its status event. A
   build from before the outbox (before 0003) still running during a rollout, or rolled back
   to, applies events without advancing `orders.last_sequence`; every build since 0003 advances
   it in the same statement as the change (whether or not it writes outbox rows). Two triggers
   on `orders` catch exactly the writes that do not: a new order inserted with
   `last_sequence = 0`, and a status changed with `last_sequence` unchanged. The relay catches
   these orders up (domain/status_catch_up.py) and deletes their backlog row. The triggers'
   `WHEN` is evaluated in the executor for each written row, without calling the function, so
   a build that advances the counter pays a comparison per row and no write.
2. `schema_requirements`: the oldest revision a build must know to run on this schema. Builds
   from this one on check it at start-up and every minute while consuming, and pause (naming
   the revision) when they do not know it: a future migration that contracts what an older
   build still uses raises it, and an older build left running pauses instead of writing what
   the schema no longer means. This revision sets it to itself: nothing older checks it.

Both tables are small; the application role gets DML through 0002's default privileges (the
trigger function runs as the writer). Expand-only: an older build reads and writes as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STATEMENTS = """
    CREATE TABLE IF NOT EXISTS order_status_backlog (
        order_id    uuid PRIMARY KEY,
        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
    );

    CREATE OR REPLACE FUNCTION order_status_backlog_note() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO order_status_backlog (order_id) VALUES (NEW.order_id)
        ON CONFLICT (order_id) DO NOTHING;
        RETURN NULL;
    END
    $$;

    CREATE OR REPLACE TRIGGER orders_inserted_without_sequence
        AFTER INSERT ON orders FOR EACH ROW
        WHEN (NEW.last_sequence = 0)
        EXECUTE FUNCTION order_status_backlog_note();

    CREATE OR REPLACE TRIGGER orders_changed_without_sequence
        AFTER UPDATE ON orders FOR EACH ROW
        WHEN (NEW.status IS DISTINCT FROM OLD.status AND NEW.last_sequence = OLD.last_sequence)
        EXECUTE FUNCTION order_status_backlog_note();

    CREATE TABLE IF NOT EXISTS schema_requirements (
        singleton              boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        minimum_build_revision text NOT NULL
    );

    INSERT INTO schema_requirements (minimum_build_revision) VALUES ('0007')
    ON CONFLICT (singleton) DO NOTHING
"""


def upgrade() -> None:
    # One statement per execute: asyncpg prepares each, and a prepared statement holds one.
    for statement in STATEMENTS.split(";\n\n"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE schema_requirements")
    op.execute("DROP TRIGGER orders_changed_without_sequence ON orders")
    op.execute("DROP TRIGGER orders_inserted_without_sequence ON orders")
    op.execute("DROP FUNCTION order_status_backlog_note()")
    op.execute("DROP TABLE order_status_backlog")
