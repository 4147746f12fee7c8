"""The application role: what the worker connects as, DML on the service's tables and no more.

The migrations run as the database owner (on RDS the master user); the worker gets only this
role's secret, so a compromised or buggy worker cannot DROP, ALTER or TRUNCATE anything.
Roles are cluster-wide: every database of the cluster that runs this revision finds the role
already there (created once, NOLOGIN until a password is given), and grants on its own tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from alembic import op
from sqlalchemy import text

from order_service.migrations.app_role import APP_ROLE

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"  # what a batch writes, nothing else

CREATE_ROLE = f"""
    DO $$
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object THEN
        NULL;  -- another database's migration created it at the same moment
    END
    $$
"""
GRANTS = f"""
    GRANT USAGE ON SCHEMA public TO {APP_ROLE};
    GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {TABLE_PRIVILEGES} ON TABLES TO {APP_ROLE};
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE};
    REVOKE ALL ON alembic_version FROM {APP_ROLE};
    GRANT SELECT ON alembic_version TO {APP_ROLE};
"""


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(text(CREATE_ROLE))
    # CONNECT needs no grant: PUBLIC has it on every database (and on the clones of one).
    for statement in GRANTS.split(";"):
        if statement.strip():
            bind.execute(text(statement))
    # NOLOGIN until a migration run is given the application secret's password (env.py).


def downgrade() -> None:
    # The role is cluster-wide and other databases may use it: only this database's grants go.
    bind = op.get_bind()
    bind.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}"))
    bind.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}"))
    bind.execute(
        text(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"REVOKE {TABLE_PRIVILEGES} ON TABLES FROM {APP_ROLE}"
        )
    )
    bind.execute(text(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}"))
