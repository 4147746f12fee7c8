"""The application role the worker connects as (revision 0002 creates it) and its password.

The password is set on every migration run, not only when the role is created, so a rotated
application secret takes effect with the next deploy's migration (docs/runbook.md).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

APP_ROLE = "orders_app"  # infra/order_infra/database.py APP_USERNAME

# The password travels as a bind parameter and the server quotes it (format %L): it is never
# formatted into SQL here.
_SET_PASSWORD = f"""
    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            EXECUTE format(
                'ALTER ROLE {APP_ROLE} WITH LOGIN PASSWORD %L',
                current_setting('order_service.app_role_password')
            );
        END IF;
    END
    $$
"""


def set_app_role_password(connection: Connection, password: str) -> None:
    """Let the application role log in with `password` (in the caller's transaction)."""
    connection.execute(
        text("SELECT set_config('order_service.app_role_password', :password, true)"),
        {"password": password},
    )
    connection.execute(text(_SET_PASSWORD))
