"""The application's two login roles (revisions 0002 and 0008 create them) and their passwords.

The application logs in as one of two alternating users, APP_ROLE or APP_ROLE_CLONE (a member
of APP_ROLE, so it holds every privilege APP_ROLE is granted): a rotation
(ops/rotate_credentials.py) sets a new password on the one the application secret does not
name, then points the secret at it, so the other one's password stays valid until the next
rotation and a worker still holding it never meets a refusal.

The migration sets the password of the user the application secret names (APP_DB_USER), on
every run: on a first deploy that makes APP_ROLE able to log in; afterwards it sets what is
already set. It never touches the other user, whose password a running worker may still use.

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
APP_ROLE_CLONE = "orders_app_clone"
ALTERNATING_ROLES = (APP_ROLE, APP_ROLE_CLONE)
SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)

# The role and its verifier travel as settings of the transaction (set_config: bind
# parameters, which ALTER ROLE takes none of) and the server quotes them (format %I, %L).
# A role that does not exist (yet: before its revision) is left alone.
VERIFIER_SETTING = "order_service.app_role_verifier"
ROLE_SETTING = "order_service.app_role_name"
SET_PASSWORD = f"""
    DO $$
    BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = current_setting('{ROLE_SETTING}')) THEN
            EXECUTE format(
                'ALTER ROLE %I WITH LOGIN PASSWORD %L',
                current_setting('{ROLE_SETTING}'),
                current_setting('{VERIFIER_SETTING}')
            );
        END IF;
    END
    $$
"""


def check_role(role: str) -> str:
    """`role` if it is one of the application's alternating users."""
    if role not in ALTERNATING_ROLES:
        raise ValueError(f"{role!r} is not one of the application's users {ALTERNATING_ROLES}")
    return role


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


def set_app_role_password(connection: Connection, password: str, role: str = APP_ROLE) -> None:
    """Let `role`, one of the alternating users, log in with `password` (in the caller's
    transaction)."""
    connection.execute(
        text(
            f"SELECT set_config('{ROLE_SETTING}', :role, true), "
            f"set_config('{VERIFIER_SETTING}', :verifier, true)"
        ),
        {"role": check_role(role), "verifier": scram_verifier(password)},
    )
    connection.execute(text(SET_PASSWORD))
