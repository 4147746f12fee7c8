"""pgaudit's extension, where the server has it loaded (issue 19, the database audit trail).

Staging's and prod's parameter group preloads pgaudit (infra/order_infra/database.py); its DDL
auditing also needs `CREATE EXTENSION pgaudit` in the database (the extension installs event
triggers). Created only where the server offers the extension and has loaded its library
(migrations/extensions.py): the local and test servers do not offer it, dev's RDS instance does
not load it, and both skip it. An expand step: nothing the workers read changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from alembic import op

from order_service.migrations.extensions import create_where_loaded

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(create_where_loaded("pgaudit"))


def downgrade() -> None:
    op.execute("DROP EXTENSION IF EXISTS pgaudit")
