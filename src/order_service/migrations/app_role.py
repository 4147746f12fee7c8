"""The application role the worker connects as (revision 0002 creates it) and its password.

The password is set on every migration run, not only when the role is created, so a rotated
application secret takes effect with the next deploy's migration (docs/runbook.md).

It never reaches the server in clear: the migration sends the SCRAM-SHA-256 verifier computed
here (RFC 5802/7677, what PostgreSQL itself stores), which PostgreSQL accepts in place of a
password. A statement holding the password would be written to the database log, and from
there to CloudWatch Logs, by any error raised while it runs (its error context quotes it), or
by an audit setting that logs role changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlalchemy import Connection, text

APP_ROLE = "orders_app"  # infra/order_infra/database.py APP_USERNAME
SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)

# The verifier travels as a bind parameter and the server quotes it (format %L).
_SET_PASSWORD = f"""
    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            EXECUTE format(
                'ALTER ROLE {APP_ROLE} WITH LOGIN PASSWORD %L',
                current_setting('order_service.app_role_verifier')
            );
        END IF;
    END
    $$
"""


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """PostgreSQL's stored form of `password`: SCRAM-SHA-256$<iterations>:<salt>$<stored key>:
    <server key>. ASCII only: PostgreSQL normalises other passwords with SASLprep first, which
    this does not reproduce (the generated secrets are ASCII)."""
    if not password.isascii():
        raise ValueError("the application role's password must be ASCII")
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_app_role_password(connection: Connection, password: str) -> None:
    """Let the application role log in with `password` (in the caller's transaction)."""
    connection.execute(
        text("SELECT set_config('order_service.app_role_verifier', :verifier, true)"),
        {"verifier": scram_verifier(password)},
    )
    connection.execute(text(_SET_PASSWORD))
