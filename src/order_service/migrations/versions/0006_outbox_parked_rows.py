"""Outbox rows SNS refuses for good are parked (issue 21): a state of the row, not a loss.

`parked_at` (when the relay parked it) and `park_reason` (SNS's code and message) are set on
an unpublished row that SNS refused for what it holds (`InvalidParameter`): the relay claims
that order no more, so the order's later rows wait behind it (its sequence holds) while every
other order flows; `order-service outbox status` lists them and `order-service outbox retry`
gives them back to the relay. Both nullable, without default or index: adding them is a
catalogue change only, on a table of any size (expand-only: a build before this one reads and
writes the table as before, and would simply try a parked row again). The relay finds parked
rows through the partial index of unpublished rows and the (aggregateid, sequence) key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE order_outbox ADD COLUMN parked_at timestamptz")
    op.execute("ALTER TABLE order_outbox ADD COLUMN park_reason text")


def downgrade() -> None:
    op.execute("ALTER TABLE order_outbox DROP COLUMN park_reason")
    op.execute("ALTER TABLE order_outbox DROP COLUMN parked_at")
