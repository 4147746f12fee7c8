"""The outbox keeps the trace context of the batch that wrote each row (issue 15).

`traceparent` (W3C, 55 characters) is the `process` span of that batch, written only when the
worker traces; the relay puts it in the published message's attributes, so that a consumer of
the status events continues the order's trace. Stored with the row rather than recomputed: by
the time the relay publishes, the batch and its span are gone, and the row is the one thing
that links the two. Nullable, with no default and no index: adding it rewrites nothing (a
catalogue change only, on a table of any size), and rows written untraced keep NULL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE order_outbox ADD COLUMN traceparent text")


def downgrade() -> None:
    op.execute("ALTER TABLE order_outbox DROP COLUMN traceparent")
