"""The rotation (ops/rotate_credentials.py) against real PostgreSQL, which checks the passwords,
and the local Secrets Manager: alternation, a run killed half way, two runs at once, and what it
refuses. Each test has its own pair of users (members of the application role, like the clone
of revision 0008); the e2e test rotates the real pair under a running worker."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from order_service.adapters.migrations import MIGRATION_LOCK_ID
from order_service.errors import RotationFailed
from order_service.ops.rotate_credentials import SecretsManagerAppSecret, rotate
from tests.support.database import execute, query
from tests.support.rotation_fixtures import ROTATING, Killed, KilledBeforeTheSecretIsWritten


@pytest.fixture
async def pair(password_logins, postgres_server) -> tuple[str, str]:
    base = f"rot_{uuid.uuid4().hex[:8]}"
    users = (f"{base}_a", f"{base}_b")
    for user in users:
        await execute(
            postgres_server.base_uri, f"CREATE ROLE {user} NOLOGIN IN ROLE orders_app, {ROTATING}"
        )
    await execute(postgres_server.base_uri, f"ALTER ROLE {users[0]} LOGIN PASSWORD 'first-pass'")
    return users


@pytest.fixture
async def app_secret(secrets, pair) -> str:
    created = await secrets.create_secret(
        Name=f"orders-app-{pair[0]}",
        SecretString=json.dumps({"username": pair[0], "password": "first-pass", "port": 5432}),
    )
    return str(created["ARN"])


async def secret_value(secrets: Any, arn: str) -> dict[str, Any]:
    return dict(json.loads((await secrets.get_secret_value(SecretId=arn))["SecretString"]))


async def logs_in(dsn: str, user: str, password: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, user=user, password=password)
    except asyncpg.InvalidPasswordError:
        return False
    try:
        return bool(await conn.fetchval("SELECT count(*) >= 0 FROM orders"))  # its grants too
    finally:
        await conn.close()


async def verifier(dsn: str, user: str) -> str | None:
    rows = await query(dsn, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", user)
    return rows[0]["rolpassword"]


async def test_two_rotations_back_to_back_alternate_and_keep_the_previous_login(
    database, secrets, app_secret, pair
):
    a, b = pair
    first = await rotate(database, SecretsManagerAppSecret(app_secret, "us-east-1"), users=pair)
    assert (first.previous, first.current) == (a, b)
    after_first = await secret_value(secrets, app_secret)
    assert after_first["username"] == b and after_first["port"] == 5432  # other keys kept
    assert len(after_first["password"]) == 40
    assert await logs_in(database, b, after_first["password"])
    assert await logs_in(database, a, "first-pass")  # a cached copy still logs in

    second = await rotate(database, SecretsManagerAppSecret(app_secret, "us-east-1"), users=pair)
    assert (second.previous, second.current) == (b, a)
    after_second = await secret_value(secrets, app_secret)
    assert after_second["username"] == a
    assert await logs_in(database, a, after_second["password"])
    assert not await logs_in(database, a, "first-pass")  # two rotations old: gone
    assert await logs_in(database, b, after_first["password"])  # the previous one: kept
    previous = await secrets.get_secret_value(SecretId=app_secret, VersionStage="AWSPREVIOUS")
    assert json.loads(previous["SecretString"])["username"] == b


async def test_a_run_killed_after_the_password_before_the_secret_changes_nothing_in_use(
    database, secrets, app_secret, pair, postgres_server
):
    a, b = pair
    before = await verifier(database, b)
    with pytest.raises(Killed):
        await rotate(database, KilledBeforeTheSecretIsWritten(app_secret, "us-east-1"), users=pair)
    assert await verifier(database, b) != before  # killed after the password was set
    assert await secret_value(secrets, app_secret) == {
        "username": a,
        "password": "first-pass",
        "port": 5432,
    }
    assert await logs_in(database, a, "first-pass")  # what every worker uses: unchanged
    held = await query(
        postgres_server.base_uri,
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' "
        "AND (objid::bigint | (classid::bigint << 32)) = $1",
        MIGRATION_LOCK_ID,
    )
    assert held[0]["n"] == 0  # the roles' lock went with the session

    # The next run starts again from the secret: the same user, a new password.
    again = await rotate(database, SecretsManagerAppSecret(app_secret, "us-east-1"), users=pair)
    assert again.current == b
    value = await secret_value(secrets, app_secret)
    assert value["username"] == b and await logs_in(database, b, value["password"])


async def test_two_runs_at_once_take_turns_and_leave_a_secret_that_logs_in(
    database, secrets, app_secret, pair
):
    """A schedule may fire twice: without the lock, the last password set and the last secret
    written could belong to different runs, and the application would be locked out."""
    runs = await asyncio.gather(
        *(
            rotate(database, SecretsManagerAppSecret(app_secret, "us-east-1"), users=pair)
            for _ in range(2)
        )
    )
    assert sorted((r.previous, r.current) for r in runs) == sorted([pair, pair[::-1]])
    value = await secret_value(secrets, app_secret)
    assert value["username"] == pair[0]
    assert await logs_in(database, value["username"], value["password"])


async def test_a_secret_naming_another_user_is_refused_and_nothing_changes(
    database, secrets, app_secret, pair
):
    await secrets.put_secret_value(
        SecretId=app_secret, SecretString=json.dumps({"username": "postgres", "password": "x"})
    )
    before = [await verifier(database, user) for user in pair]
    with pytest.raises(RotationFailed, match="not one of the alternating users"):
        await rotate(database, SecretsManagerAppSecret(app_secret, "us-east-1"), users=pair)
    assert [await verifier(database, user) for user in pair] == before


async def test_without_the_second_user_it_says_to_migrate_and_nothing_changes(
    database, secrets, app_secret, pair
):
    with pytest.raises(RotationFailed, match="order-service migrate"):
        await rotate(
            database,
            SecretsManagerAppSecret(app_secret, "us-east-1"),
            users=(pair[0], f"{pair[0]}_missing"),
        )
    assert (await secret_value(secrets, app_secret))["username"] == pair[0]


async def test_a_login_the_server_refuses_is_never_written_to_the_secret(
    database, secrets, app_secret, pair, postgres_server
):
    """The new password is tried before the secret names it: here the user's validity has
    expired (ALTER ROLE ... PASSWORD keeps VALID UNTIL), so its login is refused."""
    await execute(postgres_server.base_uri, f"ALTER ROLE {pair[1]} VALID UNTIL '2000-01-01'")
    with pytest.raises(RotationFailed, match="cannot log in with its new password"):
        await rotate(database, SecretsManagerAppSecret(app_secret, "us-east-1"), users=pair)
    value = await secret_value(secrets, app_secret)
    assert value["username"] == pair[0] and await logs_in(database, pair[0], "first-pass")
