"""The worker's database role, against a real PostgreSQL: revision 0002 creates it (cluster-
wide, idempotently) and grants it what a batch needs, and nothing that changes the schema."""

from __future__ import annotations

import asyncio
import base64
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from order_service.adapters.migrations import upgrade
from order_service.adapters.postgres import PostgresStore
from order_service.domain.lifecycle import Outcome
from order_service.migrations.app_role import APP_ROLE, APP_ROLE_CLONE
from order_service.service.ports import Message
from order_service.service.processing import BatchProcessor
from tests.factories import body, paid, placed, shipped


def as_role(dsn: str, role: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


@pytest.fixture
async def app_dsn(empty_database: str) -> str:
    # The migration task's path: the owner migrates and gives the app role its password.
    await asyncio.to_thread(upgrade, empty_database, app_role_password=f"pw-{uuid.uuid4()}")
    return as_role(empty_database, APP_ROLE)


async def test_migrations_create_the_role_with_login_and_no_power(app_dsn, empty_database):
    conn = await asyncpg.connect(empty_database)
    try:
        role = await conn.fetchrow(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolpassword IS NOT NULL"
            " AS has_password FROM pg_authid WHERE rolname = $1",
            APP_ROLE,
        )
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = $1",
            APP_ROLE,
        )
    finally:
        await conn.close()
    assert dict(role) == {
        "rolcanlogin": True,
        "rolsuper": False,
        "rolcreatedb": False,
        "rolcreaterole": False,
        "has_password": True,
    }
    assert owned == 0


async def test_the_role_survives_a_second_database_of_the_cluster(postgres_server, app_dsn):
    # Roles are cluster-wide: a second database's migration finds the role and only grants.
    other = await postgres_server.create_database(f"r_{uuid.uuid4().hex[:12]}")
    await asyncio.to_thread(upgrade, other, app_role_password="another")
    conn = await asyncpg.connect(as_role(other, APP_ROLE))
    try:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    finally:
        await conn.close()


async def test_the_app_role_runs_a_batch_and_quarantines(app_dsn):
    store = PostgresStore(app_dsn, pool_size=4)
    await store.connect()
    try:
        await store.probe()  # the worker's readiness probe: revision, known-good batch
        order = str(uuid.uuid4())
        events = [placed(order), paid(order), shipped(order), placed(order)]
        messages = [Message(str(uuid.uuid4()), f"rh-{i}", body(e)) for i, e in enumerate(events)]
        results = await BatchProcessor(store).process(messages)
        assert [r.outcome for r in results] == [Outcome.APPLIED] * 3 + [Outcome.DUPLICATE]
        await store.quarantine(str(uuid.uuid4()), "not json", "invalid: not JSON")
        counts = await store.counts()
    finally:
        await store.close()
    assert counts["orders_by_status"] == {"SHIPPED": 1}


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE order_events",
        "ALTER TABLE orders ADD COLUMN x int",
        "TRUNCATE orders",
        "CREATE TABLE intruder (id int)",
        "DELETE FROM alembic_version",
    ],
)
async def test_the_app_role_cannot_change_the_schema(app_dsn, statement):
    conn = await asyncpg.connect(app_dsn)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_a_rotated_password_takes_effect_on_the_next_migration(app_dsn, empty_database):
    async def verifier() -> str:
        conn = await asyncpg.connect(empty_database)
        try:
            return await conn.fetchval(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1", APP_ROLE
            )
        finally:
            await conn.close()

    before = await verifier()
    await asyncio.to_thread(upgrade, empty_database, app_role_password="rotated")  # at head
    assert await verifier() != before


async def test_the_password_is_stored_as_the_verifier_the_migration_computed(empty_database):
    """The migration sends PostgreSQL's SCRAM verifier, never the password: what the server
    stores is the verifier of that password (its salt, its keys)."""
    from order_service.migrations.app_role import scram_verifier

    password = f"pw-{uuid.uuid4()}"
    await asyncio.to_thread(upgrade, empty_database, app_role_password=password)
    conn = await asyncpg.connect(empty_database)
    try:
        stored = await conn.fetchval(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1", APP_ROLE
        )
    finally:
        await conn.close()
    salt = base64.b64decode(stored.split("$")[1].split(":")[1])
    assert stored == scram_verifier(password, salt)


async def test_the_second_user_holds_the_app_roles_grants_and_no_login_until_rotated(
    app_dsn, empty_database
):
    """Revision 0008: the rotation's other user, a member of the application role."""
    conn = await asyncpg.connect(empty_database)
    try:
        role = await conn.fetchrow(
            "SELECT rolinherit, rolsuper, rolcreaterole, "
            "pg_has_role(rolname, $2, 'USAGE') AS uses_app_role "
            "FROM pg_roles WHERE rolname = $1",
            APP_ROLE_CLONE,
            APP_ROLE,
        )
        await conn.execute(f"ALTER ROLE {APP_ROLE_CLONE} LOGIN")  # the rotation's part
    finally:
        await conn.close()
    assert dict(role) == {
        "rolinherit": True,
        "rolsuper": False,
        "rolcreaterole": False,
        "uses_app_role": True,
    }
    store = PostgresStore(as_role(empty_database, APP_ROLE_CLONE), pool_size=4)
    await store.connect()
    try:
        await store.probe()
        order = str(uuid.uuid4())
        message = Message(str(uuid.uuid4()), "rh-0", body(placed(order)))
        results = await BatchProcessor(store).process([message])
    finally:
        await store.close()
    assert [r.outcome for r in results] == [Outcome.APPLIED]


async def test_the_migration_sets_the_password_of_the_user_the_secret_names_only(
    app_dsn, empty_database
):
    """After a rotation the secret names the second user: the next deploy's migration must
    not give the first one a new password (a worker may still log in with its own)."""

    async def verifiers() -> dict[str, str | None]:
        conn = await asyncpg.connect(empty_database)
        try:
            rows = await conn.fetch(
                "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1::text[])",
                [APP_ROLE, APP_ROLE_CLONE],
            )
        finally:
            await conn.close()
        return {r["rolname"]: r["rolpassword"] for r in rows}

    before = await verifiers()
    await asyncio.to_thread(
        upgrade, empty_database, app_role_password="the-clones", app_role=APP_ROLE_CLONE
    )
    after = await verifiers()
    assert after[APP_ROLE] == before[APP_ROLE]
    assert after[APP_ROLE_CLONE] != before[APP_ROLE_CLONE]


def test_the_migration_refuses_a_user_that_is_not_one_of_the_two(empty_database):
    with pytest.raises(ValueError, match="not one of the application's users"):
        upgrade(empty_database, app_role_password="x", app_role="postgres")
