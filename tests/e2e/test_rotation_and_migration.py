"""Attack on issue 26 item 5 (credentials that rotate without an outage): the deploy's migration
task and the scheduled rotation both change the application users' passwords, and take turns
on the same lock (MIGRATION_LOCK_ID). The migration sets the password of APP_DB_USER to
APP_DB_PASSWORD, which ECS resolved from the application secret when the task's container
started; a rotation that runs while the migration waits for the lock changes what the secret
says after that. The real users (orders_app and its clone of revision 0008) with passwords
checked by the server, the real `order-service migrate` and `rotate()` against the local
Secrets Manager."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from order_service.migrations.app_role import ALTERNATING_ROLES, APP_ROLE
from order_service.ops.rotate_credentials import SecretsManagerAppSecret, rotate
from tests.support.database import execute, query
from tests.support.rotation_fixtures import ROTATING
from tests.support.worker import cli


@pytest.fixture
async def real_pair_with_passwords(password_logins, postgres_server) -> AsyncIterator[None]:
    """The application's own two users, their passwords checked by the server for this test
    (cluster-wide: their login and password are put back as they were afterwards)."""
    base = postgres_server.base_uri
    before = await query(
        base,
        "SELECT rolname, rolcanlogin, rolpassword FROM pg_authid WHERE rolname = ANY($1)",
        list(ALTERNATING_ROLES),
    )
    for user in ALTERNATING_ROLES:
        await execute(base, f"GRANT {ROTATING} TO {user}")
    await execute(base, f"ALTER ROLE {APP_ROLE} LOGIN PASSWORD 'first-pass'")
    yield
    for row in before:
        login = "LOGIN" if row["rolcanlogin"] else "NOLOGIN"
        await execute(base, f"ALTER ROLE {row['rolname']} {login} PASSWORD NULL")
        if row["rolpassword"] is not None:  # the stored verifier, as it was
            verifier = row["rolpassword"].replace("'", "''")
            await execute(base, f"ALTER ROLE {row['rolname']} PASSWORD '{verifier}'")
    for user in ALTERNATING_ROLES:
        await execute(base, f"REVOKE {ROTATING} FROM {user}")


async def logs_in(dsn: str, user: str, password: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, user=user, password=password)
    except asyncpg.InvalidPasswordError:
        return False
    await conn.close()
    return True


async def secret_value(secrets: Any, arn: str) -> dict[str, Any]:
    return dict(json.loads((await secrets.get_secret_value(SecretId=arn))["SecretString"]))


async def test_a_migration_waiting_behind_two_rotations_leaves_a_secret_that_logs_in(
    real_pair_with_passwords, secrets, database, worker_env
):
    """The deploy's migration task starts: ECS injects APP_DB_USER=orders_app and
    APP_DB_PASSWORD=first-pass, the secret's value then. Before it reaches the lock, the
    schedule fires twice (docs: "a schedule may fire twice"; or an operator's "rotate now"
    after a scheduled run): run 1 points the secret at the clone, run 2 back at orders_app
    with a new password. The migration then takes the lock and sets orders_app's password to
    first-pass (env.py _run -> set_app_role_password), two rotations old. Expected: the
    secret's user and password log in (no outage). Actual: refused; every worker's next new
    connection is refused, reads the secret again, gets the same and pauses (login_refused)
    until the next rotation."""
    created = await secrets.create_secret(
        Name=f"orders-app-{database.rsplit('/', 1)[-1]}",
        SecretString=json.dumps({"username": APP_ROLE, "password": "first-pass"}),
    )
    arn = str(created["ARN"])
    injected = await secret_value(secrets, arn)  # what the migration task's env holds
    first = await rotate(database, SecretsManagerAppSecret(arn, "us-east-1"))
    second = await rotate(database, SecretsManagerAppSecret(arn, "us-east-1"))
    assert (first.current, second.current) == (ALTERNATING_ROLES[1], APP_ROLE)
    now = await secret_value(secrets, arn)
    assert await logs_in(database, now["username"], now["password"])

    # Before the fix the task had APP_DB_USER/APP_DB_PASSWORD injected at its start and set
    # them (it still does without DB_SECRET_ARN, as `make run` does): that login was refused.
    stale = cli(
        "migrate",
        env={
            **worker_env,
            "APP_DB_USER": injected["username"],
            "APP_DB_PASSWORD": injected["password"],
            "DB_SECRET_ARN": arn,  # as the stack gives the migration task: it wins
        },
    )
    assert stale.returncode == 0, stale.stderr
    assert await logs_in(database, now["username"], now["password"])
    migrated = cli("migrate", env={**worker_env, "DB_SECRET_ARN": arn})
    assert migrated.returncode == 0, migrated.stderr
    assert await logs_in(database, now["username"], now["password"])
