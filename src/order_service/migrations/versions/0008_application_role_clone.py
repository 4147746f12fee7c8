"""The application's second login role, for credentials that rotate with alternating users.

A rotation (ops/rotate_credentials.py) sets a new password on the user the application secret
does not name and then points the secret at it; the user it named keeps its password, so a
worker that has not read the secret again yet still logs in. The second user is a member of
the application role (INHERIT): it holds exactly the grants revision 0002 gives `orders_app`,
today's and every later one (default privileges included), with none to copy or keep in step.
Cluster-wide like the first, created once, NOLOGIN until a rotation gives it a password.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from alembic import op
from sqlalchemy import text

from order_service.migrations.app_role import APP_ROLE, APP_ROLE_CLONE

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

CREATE_CLONE = f"""
    DO $$
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE_CLONE}') THEN
            CREATE ROLE {APP_ROLE_CLONE} NOLOGIN INHERIT IN ROLE {APP_ROLE};
        END IF;
    EXCEPTION WHEN duplicate_object THEN
        NULL;  -- another database's migration created it at the same moment
    END
    $$
"""


def upgrade() -> None:
    op.get_bind().execute(text(CREATE_CLONE))


def downgrade() -> None:
    # Cluster-wide, and it may be the user the application logs in as now: left in place (it
    # has no grant of its own in this database to take back).
    pass
