"""Issue 26 item 5: the application's database credentials rotate under a running worker, as
Secrets Manager's alternating-users rotation does, with no restart, no pause, nothing
dead-lettered or lost. The worker reads the secret from the local endpoint (ministack) with
the production client code; the server checks the passwords (scram) of the two users."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from order_service.adapters.sqs import SqsQueue
from order_service.metrics import Metrics
from tests import factories
from tests.support.database import PostgresServer, execute, query
from tests.support.waiting import wait_for

ROTATING = "rotating_logins"  # members log in with a password: pg_hba says so


@pytest.fixture
async def password_logins(postgres_server: PostgresServer) -> AsyncIterator[None]:
    """The embedded server checks the passwords of ROTATING's members (trust for the rest)."""
    if postgres_server.local is None:
        pytest.skip("needs the embedded server: the test edits its pg_hba.conf")
    hba = postgres_server.local.data_dir / "pg_hba.conf"
    before = hba.read_text()
    await execute(
        postgres_server.base_uri,
        f"DO $$ BEGIN CREATE ROLE {ROTATING} NOLOGIN; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    hba.write_text(f"local all +{ROTATING} scram-sha-256\n{before}")
    await execute(postgres_server.base_uri, "SELECT pg_reload_conf()")
    yield
    hba.write_text(before)
    await execute(postgres_server.base_uri, "SELECT pg_reload_conf()")


@pytest.fixture
async def secrets(sqs_server: Any) -> AsyncIterator[Any]:
    from aiobotocore.session import get_session

    async with get_session().create_client("secretsmanager", region_name="us-east-1") as client:
        yield client


async def faults(worker: Any) -> float:
    samples = worker.metrics() or {}
    return sum(samples.get("order_service_system_faults_total", {}).values())


async def test_a_rotation_under_a_running_worker_pauses_nothing_and_loses_nothing(
    password_logins, secrets, database, postgres_server, sqs, e2e_queues, start_worker, status_topic
):
    base = f"rot_{uuid.uuid4().hex[:8]}"
    user_a, user_b = f"{base}_a", f"{base}_b"
    for user, password in ((user_a, "first-pass"), (user_b, "second-pass")):
        await execute(
            postgres_server.base_uri,
            f"CREATE ROLE {user} LOGIN PASSWORD '{password}' IN ROLE orders_app, {ROTATING}",
        )
    secret = await secrets.create_secret(
        Name=f"orders-app-{base}",
        SecretString=json.dumps({"username": user_a, "password": "first-pass"}),
    )
    # With its relay: its own connections log in with the secret too.
    worker = start_worker(
        DB_SECRET_ARN=secret["ARN"], LOG_LEVEL="INFO", ORDER_EVENTS_TOPIC_ARN=status_topic.arn
    )
    queue = SqsQueue(sqs, e2e_queues.url, e2e_queues.dlq_url, metrics=Metrics())

    async def applied(order_ids: list[str]) -> bool:
        rows = await query(
            database, "SELECT count(*) AS n FROM orders WHERE order_id = ANY($1::uuid[])", order_ids
        )
        return bool(rows[0]["n"] == len(order_ids))

    before = [str(uuid.uuid4()) for _ in range(5)]
    await queue.send(e2e_queues.url, [factories.body(factories.placed(o)) for o in before])
    await wait_for(lambda: applied(before), 30, "orders before the rotation")
    sessions = await query(
        postgres_server.base_uri,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1",
        user_a,
    )
    assert sessions[0]["n"] >= 1  # the worker logged in with the secret's user

    # The rotation: the secret names the other user, whose password was just set; the next
    # rotation changes the first user's password. Connections already open stay open until the
    # pool recycles them (here: closed by the server while idle, as a failover would).
    await execute(postgres_server.base_uri, f"ALTER ROLE {user_b} PASSWORD 'third-pass'")
    await secrets.put_secret_value(
        SecretId=secret["ARN"],
        SecretString=json.dumps({"username": user_b, "password": "third-pass"}),
    )
    await execute(postgres_server.base_uri, f"ALTER ROLE {user_a} PASSWORD 'fourth-pass'")
    await execute(
        postgres_server.base_uri,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE usename = $1 AND state = 'idle'",
        user_a,
    )

    after = [str(uuid.uuid4()) for _ in range(20)]
    for chunk in (after[:10], after[10:]):
        await queue.send(e2e_queues.url, [factories.body(factories.placed(o)) for o in chunk])
    await wait_for(lambda: applied(after), 60, "orders after the rotation")
    assert await queue.depth(e2e_queues.dlq_url) == (0, 0)
    assert await faults(worker) == 0, worker.log_path.read_text()[-3000:]
    log = worker.log_path.read_text()
    assert "database credentials rotated" in log
    with_b = await query(
        postgres_server.base_uri,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1",
        user_b,
    )
    assert with_b[0]["n"] >= 1

    async def all_published() -> bool:
        rows = await query(
            database, "SELECT count(*) AS n FROM order_outbox WHERE published_at IS NULL"
        )
        return bool(rows[0]["n"] == 0)

    await wait_for(all_published, 60, "the relay to publish every status event")
    relay = await query(
        database,
        "SELECT DISTINCT usename FROM pg_stat_activity "
        "WHERE application_name LIKE 'order-service-relay%' AND datname = current_database()",
    )
    # The relay logged in with the secret's users (the first one's sessions may stay open).
    assert relay and {r["usename"] for r in relay} <= {user_a, user_b}
    with pytest.raises(asyncpg.InvalidPasswordError):  # the server does check passwords
        await asyncpg.connect(postgres_server.base_uri, user=user_a, password="first-pass")


async def test_the_server_logs_in_with_a_password_set_by_its_verifier(
    password_logins, postgres_server
):
    """The form the migration sends (migrations/app_role.py) is one PostgreSQL accepts."""
    from order_service.migrations.app_role import scram_verifier

    user = f"rot_{uuid.uuid4().hex[:8]}_v"
    verifier = scram_verifier("the-password")
    await execute(
        postgres_server.base_uri,
        f"CREATE ROLE {user} LOGIN PASSWORD '{verifier}' IN ROLE {ROTATING}",
    )
    conn = await asyncpg.connect(postgres_server.base_uri, user=user, password="the-password")
    await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(postgres_server.base_uri, user=user, password="another")
